package server

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"github.com/e4box/e4box/server/iomaptest"
)

// Upcall semantics, request by request, on the wire.

func (f *iomapFixture) begin(node uint64, op fuseproto.IomapOpFlags, pos, count uint64) (fuseproto.IomapBeginOut, syscall.Errno) {
	f.t.Helper()
	in := fuseproto.IomapBeginIn{Opflags: op, AttrIno: node, Pos: pos, Count: count}
	h, body := f.sess.Do(fuseproto.OpIomapBegin, node, fusetest.Bytes(&in))
	if h.Error != 0 {
		return fuseproto.IomapBeginOut{}, syscall.Errno(-h.Error)
	}
	return fusetest.Decode[fuseproto.IomapBeginOut](body), 0
}

func (f *iomapFixture) ioend(node uint64, in fuseproto.IomapIoendIn) syscall.Errno {
	f.t.Helper()
	in.AttrIno = node
	h, _ := f.sess.Do(fuseproto.OpIomapIoend, node, fusetest.Bytes(&in))
	return syscall.Errno(-h.Error)
}

func (f *iomapFixture) size(node uint64) int64 {
	f.t.Helper()
	s, err := (&iomaptest.Classic{S: f.sess}).Size(node)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func TestIomapUpcallSemantics(t *testing.T) {
	f := openIomap(t, newIomapImage(t, testutil.Ext4, 32))
	k := f.k
	node, err := k.Create(rootNodeID, "f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const wb = fuseproto.IomapOpWrite | fuseproto.IomapOpDirect

	// NOWAIT: a hole would need allocation, so EAGAIN, and nothing is
	// allocated; once allocated, the same request is answered.
	free := f.fs.Statfs().Bfree
	if _, e := f.begin(node, wb|fuseproto.IomapOpNowait, 0, 8192); e != syscall.EAGAIN {
		t.Errorf("NOWAIT write onto a hole: errno %v, want EAGAIN", e)
	}
	if f.fs.Statfs().Bfree != free {
		t.Errorf("NOWAIT allocated")
	}
	out, e := f.begin(node, wb, 0, 8192)
	if e != 0 || out.ReadType != fuseproto.IomapTypeUnwritten || out.ReadFlags&(fuseproto.IomapFNew|fuseproto.IomapFDirty) != fuseproto.IomapFNew|fuseproto.IomapFDirty {
		t.Fatalf("write onto a hole: %+v errno %v, want UNWRITTEN NEW|DIRTY", out, e)
	}
	if out.Offset != 0 || out.Length != 8192 {
		t.Errorf("mapping [%d,+%d), want the requested two blocks", out.Offset, out.Length)
	}
	// ZERO and REPORT see the unwritten blocks and allocate nothing.
	free = f.fs.Statfs().Bfree
	for _, op := range []fuseproto.IomapOpFlags{fuseproto.IomapOpZero, fuseproto.IomapOpReport} {
		if m, e := f.begin(node, op, 100, 9000); e != 0 || m.ReadType != fuseproto.IomapTypeHole {
			// Past i_size (0) the blocks are not the file's yet.
			t.Errorf("%v past EOF: %+v errno %v", op, m, e)
		}
		if m, e := f.begin(node, op, 1<<20, 4096); e != 0 || m.ReadType != fuseproto.IomapTypeHole {
			t.Errorf("%v on a hole: %+v errno %v", op, m, e)
		}
	}
	if f.fs.Statfs().Bfree != free {
		t.Errorf("ZERO or REPORT allocated")
	}

	// The data goes to the device through the mapping, as the kernel's
	// bios would; then IOEND.
	data := bytes.Repeat([]byte{0x5a}, 8192)
	if _, err := f.dev.WriteAt(data, int64(out.ReadAddr)); err != nil {
		t.Fatal(err)
	}
	// A failed I/O changes nothing: no conversion, no size.
	if e := f.ioend(node, fuseproto.IomapIoendIn{Ioendflags: fuseproto.IomapIoendUnwritten | fuseproto.IomapIoendAppend | fuseproto.IomapIoendDirect,
		Error: -int32(syscall.EIO), Pos: 0, NewAddr: fuseproto.IomapNullAddr, Written: 8192}); e != syscall.EIO {
		t.Errorf("ioend with an error answered %v, want the error back", e)
	}
	if m, _ := f.begin(node, fuseproto.IomapOpReport, 0, 8192); m.ReadType != fuseproto.IomapTypeHole || f.size(node) != 0 {
		t.Errorf("after a failed ioend: %v, size %d", m.ReadType, f.size(node))
	}
	// Copy-on-write completions are refused: ext4 has none.
	for _, in := range []fuseproto.IomapIoendIn{
		{Ioendflags: fuseproto.IomapIoendShared, NewAddr: fuseproto.IomapNullAddr, Written: 8192},
		{Ioendflags: fuseproto.IomapIoendUnwritten, NewAddr: 4096, Written: 8192},
	} {
		if e := f.ioend(node, in); e != syscall.EINVAL {
			t.Errorf("ioend %v new_addr %#x: %v, want EINVAL", in.Ioendflags, in.NewAddr, e)
		}
	}
	// A successful DIO ioend converts the range and raises i_size.
	if e := f.ioend(node, fuseproto.IomapIoendIn{Ioendflags: fuseproto.IomapIoendUnwritten | fuseproto.IomapIoendAppend | fuseproto.IomapIoendDirect,
		NewAddr: fuseproto.IomapNullAddr, Written: 6000}); e != 0 {
		t.Fatalf("ioend: %v", e)
	}
	if m, _ := f.begin(node, fuseproto.IomapOpReport, 0, 8192); m.ReadType != fuseproto.IomapTypeMapped || m.Length != 8192 || f.size(node) != 6000 {
		t.Errorf("after ioend: %+v, size %d; want [0,8192) MAPPED, size 6000", m, f.size(node))
	}
	got, err := (&iomaptest.Classic{S: f.sess}).Read(node, 0, 10000)
	if err != nil || !bytes.Equal(got, data[:6000]) {
		t.Errorf("read back %d bytes, %v", len(got), err)
	}
	// NOWAIT is answered where nothing needs allocating.
	if again, e := f.begin(node, wb|fuseproto.IomapOpNowait, 0, 8192); e != 0 || again.ReadAddr != out.ReadAddr || again.ReadFlags&fuseproto.IomapFNew != 0 {
		t.Errorf("NOWAIT over allocated blocks: %+v errno %v", again, e)
	}

	// END with SIZE_CHANGED from a buffered write records the size.
	end := fuseproto.IomapEndIn{Opflags: fuseproto.IomapOpWrite, AttrIno: node, Pos: 6000, Count: 100, Written: 100,
		MapType: fuseproto.IomapTypeMapped, MapFlags: fuseproto.IomapFSizeChanged}
	if h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&end)); h.Error != 0 || f.size(node) != 6100 {
		t.Errorf("END SIZE_CHANGED: errno %d, size %d, want 6100", -h.Error, f.size(node))
	}
	// ...but not from writeback or DIO, whose size comes with IOEND.
	end.Opflags, end.Pos = wb, 7000
	if h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&end)); h.Error != 0 || f.size(node) != 6100 {
		t.Errorf("END SIZE_CHANGED on WRITE|DIRECT: errno %d, size %d, want 6100", -h.Error, f.size(node))
	}

	// A short extending write releases what BEGIN reserved past EOF.
	free = f.fs.Statfs().Bfree
	m, e := f.begin(node, fuseproto.IomapOpWrite, 8192, 1<<20)
	if e != 0 || f.fs.Statfs().Bfree >= free {
		t.Fatalf("buffered write BEGIN: %+v %v (free %d -> %d)", m, e, free, f.fs.Statfs().Bfree)
	}
	end = fuseproto.IomapEndIn{Opflags: fuseproto.IomapOpWrite, AttrIno: node, Pos: 8192, Count: m.Offset + m.Length - 8192,
		Written: 0, MapType: m.ReadType, MapFlags: m.ReadFlags}
	if h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&end)); h.Error != 0 {
		t.Fatalf("short END: errno %d", -h.Error)
	}
	if f.fs.Statfs().Bfree != free || f.size(node) != 6100 {
		t.Errorf("after a failed write: %d free blocks, want %d; size %d", f.fs.Statfs().Bfree, free, f.size(node))
	}

	// attr_ino must be the node's inode.
	in := fuseproto.IomapBeginIn{Opflags: fuseproto.IomapOpReport, AttrIno: node + 1, Count: 4096}
	if h, _ := f.sess.Do(fuseproto.OpIomapBegin, node, fusetest.Bytes(&in)); h.Error != -int32(syscall.ESTALE) {
		t.Errorf("mismatched attr_ino: errno %d, want ESTALE", -h.Error)
	}
	// Past the extent format's limit (2^32 blocks): EFBIG.
	if _, e := f.begin(node, fuseproto.IomapOpWrite, 1<<44, 4096); e != syscall.EFBIG {
		t.Errorf("write at 16 TiB: %v, want EFBIG", e)
	}
	f.finish()
}

// Block-mapped files: EFBIG at the triple-indirect limit, and fresh blocks
// come back zeroed and NEW.
func TestIomapBlockMapped(t *testing.T) {
	f := openIomap(t, newIomapImage(t, testutil.Ext2, 32))
	node, err := f.k.Create(rootNodeID, "f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// Leave garbage in the blocks a write will get, as a deleted file
	// would: see where the allocator puts them, free them, then scribble.
	probe, e := f.begin(node, fuseproto.IomapOpWrite|fuseproto.IomapOpDirect, 4096*3, 3*4096)
	if e != 0 {
		t.Fatal(e)
	}
	release := fuseproto.IomapEndIn{Opflags: fuseproto.IomapOpWrite, AttrIno: node, Pos: 4096 * 3, Count: 3 * 4096}
	if h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&release)); h.Error != 0 {
		t.Fatalf("END: %d", -h.Error)
	}
	if _, err := f.dev.WriteAt(bytes.Repeat([]byte{0xee}, int(probe.Length)), int64(probe.ReadAddr)); err != nil {
		t.Fatal(err)
	}
	m, e := f.begin(node, fuseproto.IomapOpWrite|fuseproto.IomapOpDirect, 4096*3, 3*4096)
	if e != 0 || m.ReadType != fuseproto.IomapTypeMapped || m.ReadFlags&(fuseproto.IomapFNew|fuseproto.IomapFMerged) != fuseproto.IomapFNew|fuseproto.IomapFMerged {
		t.Fatalf("write BEGIN: %+v %v, want MAPPED NEW|MERGED", m, e)
	}
	got := make([]byte, m.Length)
	if _, err := f.dev.ReadAt(got, int64(m.ReadAddr)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, m.Length)) {
		t.Errorf("fresh blocks hold old data")
	}
	if m.ReadAddr != probe.ReadAddr {
		t.Logf("allocator moved: %#x then %#x", probe.ReadAddr, m.ReadAddr)
	}
	// s_bitmap_maxbytes for 4 KiB blocks is about 4 TiB.
	if _, e := f.begin(node, fuseproto.IomapOpWrite, 5<<40, 4096); e != syscall.EFBIG {
		t.Errorf("write at 5 TiB: %v, want EFBIG", e)
	}
	// Nothing was written: END releases the blocks past EOF.
	end := fuseproto.IomapEndIn{Opflags: fuseproto.IomapOpWrite, AttrIno: node, Pos: 4096 * 3, Count: 3 * 4096}
	if h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&end)); h.Error != 0 {
		t.Fatalf("END: %d", -h.Error)
	}
	f.finish() // e2fsck would flag blocks past EOF of a block-mapped file
}

// Inline-data files: REPORT says INLINE; O_DIRECT reads get ENOSYS and
// fall back to FUSE_READ; a write moves the file to blocks first;
// buffered reads of a never-written inline file fail (the seed's wart).
func TestIomapInlineData(t *testing.T) {
	f := openIomap(t, newIomapImage(t, testutil.Ext4Inline, 32))
	c := iomaptest.Classic{S: f.sess}
	node, err := c.Create(rootNodeID, "tiny", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("small enough to live in the inode")
	if _, err := c.Write(node, 0, text); err != nil {
		t.Fatal(err)
	}
	ext, err := f.k.Fiemap(node, 0, 1<<20)
	if err != nil || len(ext) != 1 || ext[0].Flags&iomaptest.FiemapExtentDataInline == 0 || ext[0].Length != uint64(len(text)) {
		t.Fatalf("fiemap of an inline file: %v, %v", ext, err)
	}
	if o, err := f.k.SeekHole(node, 3); err != nil || o != int64(len(text)) {
		t.Errorf("SEEK_HOLE: %d, %v", o, err)
	}
	if _, err := f.k.Read(node, 0, 100); !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("buffered read of an inline file: %v, want ENOSYS", err)
	}
	fallback := f.k.Stats.Fallback
	got, err := f.k.DirectRead(node, 0, 4096)
	if err != nil || !bytes.Equal(got, text) || f.k.Stats.Fallback != fallback+1 {
		t.Errorf("direct read: %q, %v (fallbacks %d)", got, err, f.k.Stats.Fallback-fallback)
	}
	// A buffered write moves it to blocks, keeping the bytes.
	if _, err := f.k.Write(node, 5, []byte("SMALL")); err != nil {
		t.Fatal(err)
	}
	if err := f.k.Fsync(node); err != nil {
		t.Fatal(err)
	}
	f.k.Forget(node)
	want := append([]byte(nil), text...)
	copy(want[5:], "SMALL")
	if got, err := f.k.Read(node, 0, 100); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after the write: %q, %v", got, err)
	}
	if ext, _ := f.k.Fiemap(node, 0, 1<<20); len(ext) != 1 || ext[0].Flags&iomaptest.FiemapExtentDataInline != 0 {
		t.Errorf("still inline: %v", ext)
	}
	// A new file that would go inline goes to blocks under iomap writes.
	n2, err := f.k.Create(rootNodeID, "new", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.k.Write(n2, 0, text); err != nil {
		t.Fatal(err)
	}
	if err := f.k.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Read(n2, 0, 100); err != nil || !bytes.Equal(got, text) {
		t.Errorf("new file: %q, %v", got, err)
	}
	if len(f.k.Rejected) != 0 {
		t.Errorf("rejected: %v", f.k.Rejected)
	}
	f.finish()
}
