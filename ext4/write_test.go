package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/testutil"
)

// Write-path tests on real images: mkfs.ext4 builds an image with a few
// files, the test changes them through the library, closes it, and then
// e2fsck -fn must find the image clean and the kernel's own ext4 (a
// read-only loop mount) must read back what an in-memory model says.

// Variants of the write tests; ^64bit with uninit_bg exercises crc16
// group descriptor checksums.
var coreVariants = []testutil.Variant{
	testutil.Ext4,
	testutil.Ext4Block1K,
	testutil.Ext4NoCsum,
	{Name: "ext4-gdtcsum", Args: []string{"-t", "ext4", "-b", "4096", "-O", "^64bit,^metadata_csum,uninit_bg"}, BlockSize: 4096},
	testutil.Ext4MetaBG,
	testutil.Ext3,
	testutil.Ext2,
}

// coreImage builds an image of sizeMB with files named by files (content
// from the map) and opens it read-write through a file device.
func coreImage(t *testing.T, v testutil.Variant, sizeMB int, files map[string][]byte) (string, *FS) {
	t.Helper()
	testutil.RequireE2fsprogs(t)
	src := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, sizeMB)
	return img, coreOpen(t, img)
}

func coreOpen(t *testing.T, img string) *FS {
	t.Helper()
	dev, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	fs, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fs.ReadOnly() {
		t.Fatal("opened read-only")
	}
	return fs
}

// coreClose closes fs and checks the image with e2fsck.
func coreClose(t *testing.T, fs *FS, img string) {
	t.Helper()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if !testutil.E2fsckClean(t, img) {
		t.FailNow()
	}
}

// model is the expected content of a file, sparse: chunks never written
// read as zeros.
//
// A literal model{data: p} starts as the bytes p (the first method call
// takes them over).
type model struct {
	data   []byte
	size   int64
	chunks map[int64][]byte // chunk index -> modelChunk bytes
}

// init takes over the literal's data.
func (m *model) init() {
	if m.chunks != nil {
		return
	}
	m.chunks = map[int64][]byte{}
	p := m.data
	m.data = nil
	m.write(0, p)
}

const modelChunk = 64 << 10

func newModelOf(p []byte) *model { return &model{data: p} }

// len is the model's file size.
func (m *model) len() int64 {
	m.init()
	return m.size
}

func (m *model) write(off int64, p []byte) {
	m.init()
	for i := int64(0); i < int64(len(p)); {
		c, o := (off+i)/modelChunk, (off+i)%modelChunk
		ch, ok := m.chunks[c]
		if !ok {
			ch = make([]byte, modelChunk)
			m.chunks[c] = ch
		}
		i += int64(copy(ch[o:], p[i:]))
	}
	m.size = max(m.size, off+int64(len(p)))
}

// read returns the n bytes at off (within size).
func (m *model) read(off, n int64) []byte {
	m.init()
	out := make([]byte, n)
	for i := int64(0); i < n; {
		c, o := (off+i)/modelChunk, (off+i)%modelChunk
		k := min(n-i, modelChunk-o)
		if ch, ok := m.chunks[c]; ok {
			copy(out[i:i+k], ch[o:])
		}
		i += k
	}
	return out
}

func (m *model) zero(off, n int64) {
	m.init()
	end := min(off+n, m.size)
	for c, ch := range m.chunks {
		a, b := max(off, c*modelChunk), min(end, (c+1)*modelChunk)
		if a < b {
			clear(ch[a-c*modelChunk : b-c*modelChunk])
		}
	}
}

func (m *model) truncate(size int64) {
	m.init()
	if size < m.size {
		m.zero(size, m.size-size)
		for c := range m.chunks {
			if c*modelChunk >= size {
				delete(m.chunks, c)
			}
		}
	}
	m.size = size
}

// compare checks a file against the model through readAt (which must
// read zeros in holes) and dataRegions (the file's data extents): every
// chunk the model holds and every data region of the file is compared.
func (m *model) compare(size int64, readAt func(p []byte, off int64) error, regions [][2]int64) error {
	m.init()
	if size != m.size {
		return fmt.Errorf("size %d, want %d", size, m.size)
	}
	check := func(off, n int64) error {
		n = min(n, m.size-off)
		if n <= 0 {
			return nil
		}
		got := make([]byte, n)
		if err := readAt(got, off); err != nil {
			return err
		}
		if i := firstDiffByte(got, m.read(off, n)); i >= 0 {
			return fmt.Errorf("byte %d is %#x, want %#x", off+int64(i), got[i], m.read(off+int64(i), 1)[0])
		}
		return nil
	}
	for c := range m.chunks {
		if err := check(c*modelChunk, modelChunk); err != nil {
			return err
		}
	}
	for _, r := range regions {
		for off := r[0]; off < r[1]; off += modelChunk {
			if err := check(off, min(modelChunk, r[1]-off)); err != nil {
				return err
			}
		}
	}
	return nil
}

// engineWrite writes p at off the way the server's classic write path
// does: MapWrite, pwrite (zero-filling the parts of new or unwritten
// blocks the write does not cover), ConvertUnwritten, ExtendSize.
func engineWrite(fs *FS, ino Ino, off int64, p []byte) error {
	bs := int64(fs.BlockSize())
	pos, end := off, off+int64(len(p))
	for pos < end {
		m, err := fs.MapWrite(ino, pos, end-pos)
		if err != nil {
			return err
		}
		if m.Offset > pos || m.Offset+m.Length <= pos {
			return fmt.Errorf("MapWrite(%d, %d) = %+v does not cover the offset", pos, end-pos, m)
		}
		seg := min(end, m.Offset+m.Length)
		if m.New || m.Type == MapUnwritten {
			bstart := pos &^ (bs - 1)
			bend := (seg + bs - 1) &^ (bs - 1)
			buf := make([]byte, bend-bstart)
			copy(buf[pos-bstart:], p[pos-off:seg-off])
			if _, err := fs.WriteData(buf, m.Addr+bstart-m.Offset); err != nil {
				return err
			}
			if m.Type == MapUnwritten {
				if err := fs.ConvertUnwritten(ino, bstart, bend-bstart); err != nil {
					return err
				}
			}
		} else {
			if m.Type != MapMapped {
				return fmt.Errorf("MapWrite returned %v", m.Type)
			}
			if _, err := fs.WriteData(p[pos-off:seg-off], m.Addr+pos-m.Offset); err != nil {
				return err
			}
		}
		pos = seg
	}
	return fs.ExtendSize(ino, end, true)
}

func lookup(t *testing.T, fs *FS, name string) Ino {
	t.Helper()
	ino, err := fs.Lookup(RootIno, []byte(name))
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return ino
}

// checkFile compares a file read through fs with the model.
func checkFile(t *testing.T, fs *FS, ino Ino, m *model) {
	t.Helper()
	in, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	var regions [][2]int64
	for off := int64(0); off < int64(in.Size); {
		d, err := fs.SeekData(ino, off)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, err := fs.SeekHole(ino, d)
		if err != nil {
			t.Fatal(err)
		}
		regions = append(regions, [2]int64{d, h})
		off = h
	}
	readAt := func(p []byte, off int64) error {
		_, err := fs.ReadAt(ino, p, off)
		return err
	}
	if err := m.compare(int64(in.Size), readAt, regions); err != nil {
		t.Fatalf("inode %d: %v", ino, err)
	}
}

func firstDiffByte(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// kernelCheck mounts img read-only with the kernel's ext4 and compares the
// named files with their models.
func kernelCheck(t *testing.T, v testutil.Variant, img string, files map[string]*model) {
	t.Helper()
	if os.Getuid() != 0 || !v.KernelMountable() {
		return
	}
	testutil.RequireLoop(t)
	dir := t.TempDir()
	testutil.LoopMount(t, img, dir, true)
	defer testutil.Unmount(t, dir)
	for name, m := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		var regions [][2]int64
		for off := int64(0); off < st.Size(); {
			d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
			if err != nil {
				break // ENXIO: no more data
			}
			h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
			if err != nil {
				t.Fatal(err)
			}
			regions = append(regions, [2]int64{d, h})
			off = h
		}
		readAt := func(p []byte, off int64) error {
			_, err := f.ReadAt(p, off)
			return err
		}
		err = m.compare(st.Size(), readAt, regions)
		f.Close()
		if err != nil {
			t.Fatalf("kernel reads %s: %v", name, err)
		}
	}
}

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32()) | 1 // never zero, so holes show
	}
	return b
}

// extentDepth returns the depth of an extent inode's tree.
func extentDepth(t *testing.T, fs *FS, ino Ino) int {
	in, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	h, err := disk.DecodeExtentHeader(in.raw.Block[:])
	if err != nil {
		t.Fatal(err)
	}
	return int(h.Depth)
}

func TestWriteOps(t *testing.T) {
	for _, v := range coreVariants {
		t.Run(v.Name, func(t *testing.T) { testWriteOps(t, v) })
	}
}

func testWriteOps(t *testing.T, v testutil.Variant) {
	initial := pattern(1, 10000)
	img, fs := coreImage(t, v, 64, map[string][]byte{"a": initial, "b": nil, "c": nil, "sparse": nil, "deep": nil})
	extents := fs.features.extents
	bs := int64(fs.BlockSize())
	models := map[string]*model{"a": newModelOf(initial), "b": newModelOf(nil), "c": newModelOf(nil),
		"sparse": newModelOf(nil), "deep": newModelOf(nil)}
	ino := map[string]Ino{}
	for name := range models {
		ino[name] = lookup(t, fs, name)
	}
	write := func(name string, off int64, p []byte) {
		t.Helper()
		if err := engineWrite(fs, ino[name], off, p); err != nil {
			t.Fatalf("write %s at %d (+%d): %v", name, off, len(p), err)
		}
		models[name].write(off, p)
	}

	// Overwrite inside, and append to, a file mkfs wrote.
	write("a", 100, pattern(2, 5000))
	write("a", 9000, pattern(3, 3*int(bs)+17))
	// Interleaved small appends fragment two files.
	for i := range 200 {
		write("b", models["b"].len(), pattern(uint64(10+i), 700))
		write("c", models["c"].len(), pattern(uint64(1000+i), 1300))
	}
	// Sparse writes far apart, past 4 GiB.
	write("sparse", 5<<30+123, pattern(4, 2*int(bs)))
	write("sparse", 1<<20, pattern(5, 100))
	write("sparse", 0, pattern(6, 10))
	// A deep extent tree: every other block written, so no two extents
	// merge.
	nDeep := 1500
	if bs == 1024 {
		nDeep = 800
	}
	for i := range nDeep {
		write("deep", int64(2*i)*bs, pattern(uint64(5000+i), int(bs)))
	}
	if extents {
		if d := extentDepth(t, fs, ino["deep"]); d < 2 {
			t.Errorf("deep file has extent depth %d, want >= 2", d)
		}
	}
	for name, m := range models {
		checkFile(t, fs, ino[name], m)
	}

	// Truncate down to a partial block, then up again: the tail must read
	// as zeros.
	setSize := func(name string, size int64) {
		t.Helper()
		if _, err := fs.SetAttr(ino[name], &SetAttr{Valid: SetSize, Size: uint64(size)}); err != nil {
			t.Fatalf("truncate %s to %d: %v", name, size, err)
		}
		models[name].truncate(size)
	}
	setSize("a", 5000)
	setSize("a", 20000)
	setSize("c", 12345)
	setSize("sparse", 1<<20+50)
	// Punch holes (block-mapped files too) and drop half the deep tree.
	punch := func(name string, off, n int64) {
		t.Helper()
		if err := fs.Fallocate(ino[name], FallocPunchHole|FallocKeepSize, off, n); err != nil {
			t.Fatalf("punch %s [%d,+%d): %v", name, off, n, err)
		}
		models[name].zero(off, n)
	}
	punch("b", 1000, 50000)
	punch("b", 70001, 3)
	punch("deep", bs*100+5, bs*(int64(nDeep)))
	if extents {
		// Preallocation and zeroing.
		if err := fs.Fallocate(ino["c"], 0, 20000, 100000); err != nil {
			t.Fatal(err)
		}
		models["c"].truncate(120000)
		if err := fs.Fallocate(ino["c"], FallocKeepSize, 120000, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := fs.Fallocate(ino["b"], FallocZeroRange, 3000, 20000); err != nil {
			t.Fatal(err)
		}
		models["b"].zero(3000, 20000)
		write("c", 30000, pattern(7, 5000)) // into preallocated blocks
	} else {
		if err := fs.Fallocate(ino["c"], 0, 0, 100); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("fallocate on a block-mapped file: %v, want EOPNOTSUPP", err)
		}
	}
	for name, m := range models {
		checkFile(t, fs, ino[name], m)
	}
	// Statfs follows the descriptors.
	st := fs.Statfs()
	coreClose(t, fs, img)
	fs2 := coreOpen(t, img)
	if st2 := fs2.Statfs(); st2.Bfree != st.Bfree || st2.Ffree != st.Ffree {
		t.Errorf("statfs before close %+v, after reopen %+v", st, st2)
	}
	for name, m := range models {
		checkFile(t, fs2, ino[name], m)
	}
	coreClose(t, fs2, img)
	kernelCheck(t, v, img, models)
}

func TestTruncateToZeroAndShrink(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := coreImage(t, v, 32, map[string][]byte{"f": nil})
			ino := lookup(t, fs, "f")
			bs := int64(fs.BlockSize())
			before := fs.Statfs().Bfree
			for i := range 600 {
				if err := engineWrite(fs, ino, int64(2*i)*bs, pattern(uint64(i), int(bs))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := fs.SetAttr(ino, &SetAttr{Valid: SetSize, Size: 0}); err != nil {
				t.Fatal(err)
			}
			in, err := fs.Inode(ino)
			if err != nil {
				t.Fatal(err)
			}
			if in.Blocks512() != 0 {
				t.Errorf("i_blocks %d after truncate to 0", in.Blocks512())
			}
			if fs.features.extents && extentDepth(t, fs, ino) != 0 {
				t.Errorf("extent depth %d after truncate to 0", extentDepth(t, fs, ino))
			}
			if after := fs.Statfs().Bfree; after != before {
				t.Errorf("free blocks %d after truncate, %d before writing", after, before)
			}
			coreClose(t, fs, img)
		})
	}
}

// TestENOSPC fills a tiny filesystem: the write that does not fit fails
// with ENOSPC, what was written stays readable, and the image is clean.
func TestENOSPC(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4Block1K, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := coreImage(t, v, 4, map[string][]byte{"f": nil})
			ino := lookup(t, fs, "f")
			m := newModelOf(nil)
			chunk := 64 << 10
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				p := pattern(uint64(i), chunk)
				off := m.len()
				if err = engineWrite(fs, ino, off, p); err == nil {
					m.write(off, p)
				}
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the filesystem ended with %v, want ENOSPC", err)
			}
			// The failed write may have allocated blocks past i_size; the
			// file reads as the model up to i_size.
			in, _ := fs.Inode(ino)
			m.truncate(int64(in.Size))
			checkFile(t, fs, ino, m)
			if st := fs.Statfs(); st.Bavail != 0 {
				t.Errorf("statfs after ENOSPC: %+v", st)
			}
			// Freeing space makes writes possible again.
			if _, err := fs.SetAttr(ino, &SetAttr{Valid: SetSize, Size: uint64(chunk)}); err != nil {
				t.Fatal(err)
			}
			m.truncate(int64(chunk))
			if err := engineWrite(fs, ino, int64(chunk), pattern(99, chunk)); err != nil {
				t.Fatal(err)
			}
			m.write(int64(chunk), pattern(99, chunk))
			checkFile(t, fs, ino, m)
			coreClose(t, fs, img)
			kernelCheck(t, v, img, map[string]*model{"f": m})
		})
	}
}

// TestAbortedTx checks that a failed transaction leaves no trace: the
// allocation it made is undone in the cache, counters and on disk.
func TestAbortedTx(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, map[string][]byte{"f": pattern(1, 5000)})
	ino := lookup(t, fs, "f")
	st := fs.Statfs()
	errStop := errors.New("stop")
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if _, err := tx.mapWriteLocked(r, 1<<20, 1<<20); err != nil {
			return err
		}
		if _, err := tx.newInodeLocked(RootIno, sIFREG|0o644, Cred{}); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	if st2 := fs.Statfs(); st2 != st {
		t.Errorf("statfs after an aborted tx %+v, before %+v", st2, st)
	}
	m, err := fs.Map(ino, 1<<20, 4096)
	if err != nil || m.Type != MapHole {
		t.Errorf("Map after aborted allocation: %+v, %v", m, err)
	}
	coreClose(t, fs, img)
}

// TestNewAndFreeInode allocates inodes (directories spread Orlov-style),
// gives one data, and frees them all again.
func TestNewAndFreeInode(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4NoCsum, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := coreImage(t, v, 64, map[string][]byte{"f": nil})
			st := fs.Statfs()
			var inos []Ino
			groups := map[Group]bool{}
			err := fs.Update(func(tx *Tx) error {
				for i := range 20 {
					mode := uint16(sIFREG | 0o644)
					if i%2 == 0 {
						mode = sIFDIR | 0o755
					}
					r, err := tx.newInodeLocked(RootIno, mode, Cred{Uid: 1000, Gid: 1000})
					if err != nil {
						return err
					}
					if r.Ino < fs.firstIno {
						return fmt.Errorf("reserved inode %d handed out", r.Ino)
					}
					if r.Raw.Mode&sIFMT == sIFDIR {
						groups[fs.inodeGroup(r.Ino)] = true
					}
					inos = append(inos, r.Ino)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fs.groups > 4 && len(groups) < 2 {
				t.Errorf("10 top-level directories all went to one group")
			}
			if got := fs.Statfs().Ffree; got != st.Ffree-20 {
				t.Errorf("free inodes %d, want %d", got, st.Ffree-20)
			}
			if err := engineWrite(fs, inos[1], 0, pattern(3, 100000)); err != nil {
				t.Fatal(err)
			}
			err = fs.Update(func(tx *Tx) error {
				for _, ino := range inos {
					r, err := tx.inodeLocked(ino)
					if err != nil {
						return err
					}
					r.Raw.LinksCount = 0
					if err := tx.freeInodeLocked(r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := fs.Statfs(); got.Ffree != st.Ffree || got.Bfree != st.Bfree {
				t.Errorf("statfs after freeing %+v, at start %+v", got, st)
			}
			coreClose(t, fs, img)
		})
	}
}

// TestConcurrentReadersDuringUpdates runs readers against a file while
// it is being rewritten; run with -race.
func TestConcurrentReadersDuringUpdates(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, map[string][]byte{"f": pattern(1, 100000), "g": pattern(2, 3000)})
	f, g := lookup(t, fs, "f"), lookup(t, fs, "g")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8192)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := fs.ReadAt(g, buf[:3000], 0); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:3000], pattern(2, 3000)) {
					errs <- fmt.Errorf("reader %d: g changed", w)
					return
				}
				if _, err := fs.Map(f, int64(i%50)*4096, 8192); err != nil {
					errs <- err
					return
				}
				fs.Statfs()
				if _, err := fs.Inode(f); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	m := newModelOf(pattern(1, 100000))
	for i := range 100 {
		p := pattern(uint64(100+i), 5000)
		off := int64(i * 3000)
		if err := engineWrite(fs, f, off, p); err != nil {
			t.Fatal(err)
		}
		m.write(off, p)
		if i%10 == 9 {
			if _, err := fs.SetAttr(f, &SetAttr{Valid: SetSize, Size: uint64(off)}); err != nil {
				t.Fatal(err)
			}
			m.truncate(off)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkFile(t, fs, f, m)
	coreClose(t, fs, img)
}

// TestSuperblockState checks the mount/unmount superblock protocol.
func TestSuperblockState(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, nil)
	readSB := func() *disk.Superblock {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := disk.DecodeSuperblock(b[disk.SuperblockOffset:])
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.VerifyChecksum(); err != nil {
			t.Fatal(err)
		}
		return sb
	}
	sb := readSB()
	if sb.State&disk.StateValid != 0 {
		t.Error("mounted filesystem marked clean")
	}
	mnt := sb.MntCount
	coreClose(t, fs, img)
	sb = readSB()
	if sb.State&disk.StateValid == 0 {
		t.Error("cleanly closed filesystem not marked clean")
	}
	if sb.Wtime == 0 || sb.KbytesWritten == 0 {
		t.Errorf("wtime %d, kbytes_written %d", sb.Wtime, sb.KbytesWritten)
	}
	fs = coreOpen(t, img)
	if got := readSB().MntCount; got != mnt+1 {
		t.Errorf("mount count %d after a second mount, want %d", got, mnt+1)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Update(func(*Tx) error { return nil }); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Update after Close: %v", err)
	}
}

// checkIBlocks recounts the blocks of an extent file (data and tree
// blocks) and compares them with i_blocks.
func checkIBlocks(t *testing.T, fs *FS, ino Ino) {
	t.Helper()
	var count uint64
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if r.Raw.Flags&disk.ExtentsFL == 0 {
			return errSkip
		}
		var walk func(node []byte) error
		walk = func(node []byte) error {
			h, err := disk.DecodeExtentHeader(node)
			if err != nil {
				return err
			}
			for i := 0; i < int(h.Entries); i++ {
				if h.Depth == 0 {
					count += extentAt(node, i).len
					continue
				}
				_, child := extentIdxAt(node, i)
				count++
				b, _, err := tx.extentBlockLocked(r, child, int(h.Depth)-1)
				if err != nil {
					return err
				}
				if err := walk(b.Data); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(r.Raw.Block[:]); err != nil {
			return err
		}
		if r.Raw.FileACL() != 0 {
			count++
		}
		if got := r.Raw.Blocks512(fs.features.hugeFile, fs.bsize) >> (fs.bshift - 9); got != count {
			return fmt.Errorf("inode %d: i_blocks says %d blocks, tree has %d", ino, got, count)
		}
		return errSkip
	})
	if err != errSkip {
		t.Fatal(err)
	}
}

var errSkip = errors.New("skip")

func TestIBlocksAccounting(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, map[string][]byte{"f": nil})
	ino := lookup(t, fs, "f")
	bs := int64(fs.BlockSize())
	for i := range 1500 {
		if err := engineWrite(fs, ino, int64(2*i)*bs, pattern(uint64(i), int(bs))); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			checkIBlocks(t, fs, ino)
		}
	}
	checkIBlocks(t, fs, ino)
	for _, r := range [][2]int64{{bs*100 + 5, bs * 1500}, {0, 3 * bs}, {bs * 2000, bs * 10}} {
		if err := fs.Fallocate(ino, FallocPunchHole|FallocKeepSize, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
		checkIBlocks(t, fs, ino)
	}
	coreClose(t, fs, img)
}

// TestKernelDifferential applies one random sequence of writes,
// truncates and fallocates to a file through the library and, on a copy
// of the same image, through the kernel's ext4 (loop mount), then compares
// size, bytes and data/hole layout as the kernel reads both.
func TestKernelDifferential(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireLoop(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext3} {
		t.Run(v.Name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				testKernelDifferential(t, v, seed)
			}
		})
	}
}

func testKernelDifferential(t *testing.T, v testutil.Variant, seed uint64) {
	img, fs := coreImage(t, v, 64, map[string][]byte{"f": pattern(seed, 30000)})
	ino := lookup(t, fs, "f")
	kimg := filepath.Join(t.TempDir(), "kimg")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kimg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	kdir := t.TempDir()
	testutil.LoopMount(t, kimg, kdir, false)
	kf, err := os.OpenFile(filepath.Join(kdir, "f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	extents := fs.features.extents
	rng := rand.New(rand.NewPCG(seed, 7))
	const span = 3 << 20
	for i := range 60 {
		off := rng.Int64N(span)
		n := 1 + rng.Int64N(200000)
		var what string
		var ours, theirs error
		switch op := rng.IntN(10); {
		case op < 4:
			p := pattern(seed*1000+uint64(i), int(n))
			what = fmt.Sprintf("write %d+%d", off, n)
			ours = engineWrite(fs, ino, off, p)
			_, theirs = kf.WriteAt(p, off)
		case op < 5:
			what = fmt.Sprintf("truncate %d", off)
			_, ours = fs.SetAttr(ino, &SetAttr{Valid: SetSize, Size: uint64(off)})
			theirs = kf.Truncate(off)
		default:
			modes := []uint32{0, FallocKeepSize, FallocPunchHole | FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize}
			mode := modes[rng.IntN(len(modes))]
			if !extents && mode != FallocPunchHole|FallocKeepSize {
				mode = FallocPunchHole | FallocKeepSize
			}
			what = fmt.Sprintf("fallocate %#x %d+%d", mode, off, n)
			ours = fs.Fallocate(ino, mode, off, n)
			theirs = unix.Fallocate(int(kf.Fd()), mode, off, n)
		}
		if (ours == nil) != (theirs == nil) {
			t.Fatalf("seed %d op %d %s: library %v, kernel %v", seed, i, what, ours, theirs)
		}
	}
	kf.Close()
	testutil.Unmount(t, kdir)
	coreClose(t, fs, img)
	if !testutil.E2fsckClean(t, kimg) {
		t.FailNow()
	}
	view := func(img string) (int64, []byte, [][2]int64) {
		dir := t.TempDir()
		testutil.LoopMount(t, img, dir, true)
		defer testutil.Unmount(t, dir)
		f, err := os.Open(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		b := make([]byte, st.Size())
		if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
			t.Fatal(err)
		}
		var regions [][2]int64
		for off := int64(0); off < st.Size(); {
			d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
			if err != nil {
				break
			}
			h, _ := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
			regions = append(regions, [2]int64{d, h})
			off = h
		}
		return st.Size(), b, regions
	}
	osize, ob, oreg := view(img)
	ksize, kb, kreg := view(kimg)
	if osize != ksize {
		t.Fatalf("seed %d: size %d, kernel %d", seed, osize, ksize)
	}
	if i := firstDiffByte(ob, kb); i >= 0 {
		t.Fatalf("seed %d: byte %d is %#x, kernel has %#x", seed, i, ob[i], kb[i])
	}
	if fmt.Sprint(oreg) != fmt.Sprint(kreg) {
		t.Errorf("seed %d: data regions %v, kernel %v", seed, oreg, kreg)
	}
}

// TestEvict frees an unlinked inode with data when the last reference
// goes, and leaves linked or already freed inodes alone.
func TestEvict(t *testing.T) {
	small := testutil.Variant{Name: "ext4-128", Args: []string{"-t", "ext4", "-b", "4096", "-I", "128"}, BlockSize: 4096}
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2, small} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := coreImage(t, v, 32, map[string][]byte{"keep": pattern(1, 9000)})
			st := fs.Statfs()
			in, err := fs.Mknod(RootIno, []byte("x"), sIFREG|0o600, 0, Cred{Uid: 7, Gid: 8})
			if err != nil {
				t.Fatal(err)
			}
			if in.Uid != 7 || in.Gid != 8 || in.Nlink != 1 {
				t.Errorf("new inode %+v", in)
			}
			if err := engineWrite(fs, in.Ino, 0, pattern(2, 200000)); err != nil {
				t.Fatal(err)
			}
			if err := fs.Evict(in.Ino); err != nil { // still linked: no-op
				t.Fatal(err)
			}
			if _, err := fs.Unlink(RootIno, []byte("x")); err != nil {
				t.Fatal(err)
			}
			// Open but unlinked: still writable and truncatable.
			if err := engineWrite(fs, in.Ino, 300000, pattern(3, 100)); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.SetAttr(in.Ino, &SetAttr{Valid: SetSize, Size: 1000}); err != nil {
				t.Fatal(err)
			}
			if err := fs.Evict(in.Ino); err != nil {
				t.Fatal(err)
			}
			if err := fs.Evict(in.Ino); err != nil {
				t.Fatalf("second Evict: %v", err)
			}
			if got := fs.Statfs(); got.Bfree != st.Bfree || got.Ffree != st.Ffree {
				t.Errorf("statfs after evict %+v, before create %+v", got, st)
			}
			if sb := fs.Superblock(); sb.LastOrphan != 0 {
				t.Errorf("orphan list head %d after evict", sb.LastOrphan)
			}
			coreClose(t, fs, img)
		})
	}
}

// TestReservedBlocks checks that unprivileged callers stop at
// s_r_blocks_count while root may go on.
func TestReservedBlocks(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, map[string][]byte{"f": nil})
	ino := lookup(t, fs, "f")
	fs.mu.Lock()
	free := fs.sb.FreeBlocksCount()
	rsv := free - fs.resvClusters() - 5 // leave 5 blocks to unprivileged users
	fs.sb.SetRBlocksCount(rsv)
	fs.mu.Unlock()
	m, err := fs.MapWrite(ino, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if m.Length != 5*int64(fs.BlockSize()) {
		t.Errorf("unprivileged MapWrite got %d bytes, want 5 blocks", m.Length)
	}
	if _, err := fs.MapWrite(ino, m.Length, 4096); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("unprivileged MapWrite past the reserve: %v", err)
	}
	if _, err := fs.MapWriteAs(Cred{Uid: 1}, ino, m.Length, 4096); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("MapWriteAs uid 1 past the reserve: %v", err)
	}
	if _, err := fs.MapWriteAs(Cred{Uid: 0}, ino, m.Length, 4096); err != nil {
		t.Errorf("root allocation from the reserve: %v", err)
	}
	fs.mu.Lock()
	fs.sb.SetRBlocksCount(0)
	fs.mu.Unlock()
	coreClose(t, fs, img)
}

// TestSetAttr changes mode, owner and times and checks them through the
// kernel.
func TestSetAttr(t *testing.T) {
	v := testutil.Ext4
	img, fs := coreImage(t, v, 32, map[string][]byte{"f": pattern(1, 100)})
	ino := lookup(t, fs, "f")
	at := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	mt := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	in, err := fs.SetAttr(ino, &SetAttr{Valid: SetMode | SetUid | SetGid | SetAtime | SetMtime,
		Mode: 0o4751, Uid: 100000, Gid: 70000, Atime: at, Mtime: mt})
	if err != nil {
		t.Fatal(err)
	}
	if in.Mode != sIFREG|0o4751 || in.Uid != 100000 || in.Gid != 70000 || !in.Atime.Equal(at) || !in.Mtime.Equal(mt) {
		t.Errorf("after SetAttr: %+v", in)
	}
	if time.Since(in.Ctime) > time.Minute {
		t.Errorf("ctime %v not updated", in.Ctime)
	}
	coreClose(t, fs, img)
	if os.Getuid() != 0 {
		return
	}
	dir := t.TempDir()
	testutil.LoopMount(t, img, dir, true)
	defer testutil.Unmount(t, dir)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFREG|0o4751 || st.Uid != 100000 || st.Gid != 70000 ||
		st.Atim.Nano() != at.UnixNano() || st.Mtim.Nano() != mt.UnixNano() || st.Size != 100 {
		t.Errorf("kernel stat: mode %o uid %d gid %d atime %v mtime %v size %d", st.Mode, st.Uid, st.Gid,
			time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), st.Size)
	}
}

// TestAllocSkipsDamagedGroups: a block bitmap failing its checksum, or
// one offering a metadata block, makes allocation move on to other
// groups instead of failing or handing out metadata.
func TestAllocSkipsDamagedGroups(t *testing.T) {
	for _, tc := range []struct {
		v      testutil.Variant
		damage string
	}{
		{testutil.Ext4Block1K, "checksum"},
		{testutil.Variant{Name: "nocsum-1k", Args: []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum"}, BlockSize: 1024}, "metadata bit"},
	} {
		t.Run(tc.damage, func(t *testing.T) {
			img, fs := coreImage(t, tc.v, 64, map[string][]byte{"f": nil})
			ino := lookup(t, fs, "f")
			d, err := fs.groupDescLocked(0)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			bm := data[fs.pblkOff(PBlk(d.BlockBitmap())):][:fs.bsize]
			switch tc.damage {
			case "checksum":
				bm[fs.bsize/8-1] ^= 0x80 // a bit the checksum covers
			case "metadata bit":
				// Free every block from the inode table on: the first one
				// offered is metadata.
				it := d.InodeTable() - uint64(fs.groupFirstBlock(0))
				for i := it; i < uint64(fs.bpg); i++ {
					clearBit(bm, i)
				}
			}
			dev := blockdev.NewMemFrom(data, false)
			fs, err = Open(dev, Options{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := fs.MapWrite(ino, 0, 8192)
			if err != nil {
				t.Fatalf("MapWrite with group 0 damaged: %v", err)
			}
			if g := fs.blockGroup(PBlk(m.Addr >> fs.bshift)); g == 0 {
				t.Errorf("allocated block %d from the damaged group", m.Addr>>fs.bshift)
			}
			if !fs.wr.badBlockGroups[0] {
				t.Error("damaged group not marked")
			}
		})
	}
}

// TestOrlovSpread creates top-level directories (spread over groups,
// initialising INODE_UNINIT/BLOCK_UNINIT groups) with files in them (kept
// near their directory), and checks the result with e2fsck.
func TestOrlovSpread(t *testing.T) {
	v := testutil.Variant{Name: "noflex-1k", Args: []string{"-t", "ext4", "-b", "1024", "-O", "^flex_bg"}, BlockSize: 1024}
	img, fs := coreImage(t, v, 64, nil)
	groups := map[Group]bool{}
	for i := range 12 {
		d, err := fs.Mkdir(RootIno, []byte(fmt.Sprintf("d%d", i)), 0o755, Cred{})
		if err != nil {
			t.Fatal(err)
		}
		groups[fs.inodeGroup(d.Ino)] = true
		f, err := fs.Mknod(d.Ino, []byte("f"), sIFREG|0o644, 0, Cred{})
		if err != nil {
			t.Fatal(err)
		}
		if fs.inodeGroup(f.Ino) != fs.inodeGroup(d.Ino) {
			t.Errorf("file %d not in its directory %d's group", f.Ino, d.Ino)
		}
		if err := engineWrite(fs, f.Ino, 0, pattern(uint64(i), 5000)); err != nil {
			t.Fatal(err)
		}
		m, err := fs.Map(f.Ino, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if g := fs.blockGroup(PBlk(m.Addr >> fs.bshift)); g != fs.inodeGroup(f.Ino) {
			t.Logf("file %d (group %d) data in group %d", f.Ino, fs.inodeGroup(f.Ino), g)
		}
	}
	if len(groups) < 3 {
		t.Errorf("12 top-level directories in %d groups", len(groups))
	}
	coreClose(t, fs, img)
}

// TestFileSizeLimits checks EFBIG at the format's limits.
func TestFileSizeLimits(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext3} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := coreImage(t, v, 32, map[string][]byte{"f": nil})
			ino := lookup(t, fs, "f")
			var max int64
			fs.Update(func(tx *Tx) error {
				r, err := tx.inodeLocked(ino)
				if err == nil {
					max = fs.maxFileBytes(r)
				}
				return errSkip
			})
			if v.HasFeature("extent") || fs.features.extents {
				if max != (1<<32-1)*4096 {
					t.Errorf("extent file limit %d", max)
				}
			}
			if _, err := fs.MapWrite(ino, max, 1); !errors.Is(err, syscall.EFBIG) {
				t.Errorf("MapWrite at the limit: %v", err)
			}
			if err := fs.ExtendSize(ino, max+1, false); !errors.Is(err, syscall.EFBIG) {
				t.Errorf("ExtendSize past the limit: %v", err)
			}
			// The last block below the limit can be written.
			if err := engineWrite(fs, ino, max-10, pattern(1, 10)); err != nil {
				t.Errorf("write just below the limit: %v", err)
			}
			if in, _ := fs.Inode(ino); in.Size != uint64(max) {
				t.Errorf("size %d, want %d", in.Size, max)
			}
			coreClose(t, fs, img)
		})
	}
}

// TestCommitWriteError fails the write of the inode table block in the
// middle of a commit: the operation fails, the filesystem is marked with
// errors, later operations work, and e2fsck -fy repairs what the crash-like
// failure left (leaked blocks only, by the write order).
func TestCommitWriteError(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4, 32, map[string][]byte{"f": pattern(1, 5000)})
	ino := lookup(t, fs, "f")
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs.dev.Close()
	file, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	dev := blockdev.NewFault(file)
	defer dev.Close()
	fs, err = Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var itBlk PBlk
	fs.Update(func(tx *Tx) error {
		itBlk, _, err = tx.inodeLocLocked(ino)
		return errSkip
	})
	dev.Add(blockdev.Rule{Op: blockdev.OpWrite, Off: fs.pblkOff(itBlk), Len: int64(fs.bsize), Count: 1})
	if _, err := fs.MapWrite(ino, 1<<20, 1<<16); !errors.Is(err, blockdev.ErrInjected) {
		t.Fatalf("MapWrite with a failing inode write: %v", err)
	}
	m := newModelOf(pattern(1, 5000))
	if err := engineWrite(fs, ino, 8000, pattern(2, 3000)); err != nil {
		t.Fatalf("write after the failure: %v", err)
	}
	m.write(8000, pattern(2, 3000))
	checkFile(t, fs, ino, m)
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	sb := fs.Superblock()
	if sb.State&disk.StateError == 0 {
		t.Error("superblock not marked with errors after a failed commit")
	}
	if code, out, err := testutil.E2fsck(img, "-fy"); err != nil || code > 1 {
		t.Fatalf("e2fsck -fy: exit %d %v\n%s", code, err, out)
	}
	testutil.E2fsckClean(t, img)
	// The repair lost nothing committed.
	fs = coreOpen(t, img)
	checkFile(t, fs, ino, m)
	coreClose(t, fs, img)
}

// TestReadOnlyFeatures: filesystems with features the write path cannot
// keep consistent are served read-only (with a warning naming them).
func TestReadOnlyFeatures(t *testing.T) {
	for _, f := range []string{"orphan_file", "quota", "project"} {
		t.Run(f, func(t *testing.T) {
			testutil.RequireE2fsprogs(t)
			img := filepath.Join(t.TempDir(), "img")
			v := testutil.Variant{Name: f, Args: []string{"-t", "ext4", "-b", "4096", "-O", f}, BlockSize: 4096}
			testutil.MkfsD(t, img, t.TempDir(), v, 64)
			dev, err := blockdev.Open(img, false)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			var logBuf bytes.Buffer
			fs, err := Open(dev, Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !fs.ReadOnly() {
				t.Errorf("%s filesystem opened read-write", f)
			}
			if !bytes.Contains(logBuf.Bytes(), []byte(f)) {
				t.Errorf("warning does not name %s: %s", f, logBuf.String())
			}
			if err := fs.Update(func(*Tx) error { return nil }); !errors.Is(err, syscall.EROFS) {
				t.Errorf("Update: %v", err)
			}
		})
	}
}

// checkTree validates the whole extent tree of ino: header depths, no
// empty node but an empty root, index keys sorted and equal to their
// child's first key, extents sorted, inside their node's range, within
// the length limits.
func checkTree(t *testing.T, fs *FS, ino Ino) {
	t.Helper()
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		var walk func(node []byte, blk PBlk, depth int, lo, hi uint64) error
		walk = func(node []byte, blk PBlk, depth int, lo, hi uint64) error {
			h, err := disk.DecodeExtentHeader(node)
			if err != nil {
				return err
			}
			if depth >= 0 && int(h.Depth) != depth {
				return fmt.Errorf("node %d: depth %d, want %d", blk, h.Depth, depth)
			}
			if blk != 0 && h.Entries == 0 {
				return fmt.Errorf("empty non-root node %d", blk)
			}
			var prevEnd uint64
			for i := 0; i < int(h.Entries); i++ {
				if h.Depth == 0 {
					e := extentAt(node, i)
					if e.len == 0 || e.len > extMaxLen(e.unwritten) || e.lblk < lo || e.lblk+e.len > hi || i > 0 && e.lblk < prevEnd || i == 0 && blk != 0 && e.lblk != lo {
						return fmt.Errorf("node %d extent %d %+v outside [%d,%d) or misordered", blk, i, e, lo, hi)
					}
					prevEnd = e.lblk + e.len
					continue
				}
				k, child := extentIdxAt(node, i)
				if i > 0 && k <= prevEnd || k < lo || i == 0 && blk != 0 && k != lo {
					return fmt.Errorf("node %d index %d key %d misordered in [%d,%d)", blk, i, k, lo, hi)
				}
				prevEnd = k
				chi := hi
				if i+1 < int(h.Entries) {
					chi, _ = extentIdxAt(node, i+1)
				}
				b, _, err := tx.extentBlockLocked(r, child, int(h.Depth)-1)
				if err != nil {
					return err
				}
				if err := walk(b.Data, child, int(h.Depth)-1, k, chi); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(r.Raw.Block[:], 0, -1, 0, maxLBlk); err != nil {
			return err
		}
		return errSkip
	})
	if err != errSkip {
		t.Fatal(err)
	}
}

// TestExtentTreeStress runs random writes, punches, zero ranges,
// preallocations and truncates on 1 KiB blocks (84 entries a node, so the
// tree splits, grows and shrinks often), validating the tree, i_blocks
// and contents as it goes.
func TestExtentTreeStress(t *testing.T) {
	img, fs := coreImage(t, testutil.Ext4Block1K, 64, map[string][]byte{"f": nil})
	ino := lookup(t, fs, "f")
	m := newModelOf(nil)
	rng := rand.New(rand.NewPCG(42, 42))
	const span = 16 << 20
	maxDepth := 0
	for i := range 2500 {
		off := rng.Int64N(span)
		switch op := rng.IntN(40); {
		case op < 30:
			n := 1 + rng.Int64N(3000)
			p := pattern(uint64(i), int(n))
			if err := engineWrite(fs, ino, off, p); err != nil {
				t.Fatalf("op %d write %d+%d: %v", i, off, n, err)
			}
			m.write(off, p)
		case op < 34:
			n := 1 + rng.Int64N(100000)
			if err := fs.Fallocate(ino, FallocPunchHole|FallocKeepSize, off, n); err != nil {
				t.Fatalf("op %d punch: %v", i, err)
			}
			if off < m.len() {
				page := int64(os.Getpagesize())
				end := off + n
				if end > m.len() {
					end = (m.len() + page) &^ (page - 1)
				}
				m.zero(off, end-off)
			}
		case op < 36:
			n := 1 + rng.Int64N(100000)
			if err := fs.Fallocate(ino, FallocZeroRange|FallocKeepSize, off, n); err != nil {
				t.Fatalf("op %d zero range: %v", i, err)
			}
			m.zero(off, n)
		case op < 39:
			n := 1 + rng.Int64N(50000)
			if err := fs.Fallocate(ino, FallocKeepSize, off, n); err != nil {
				t.Fatalf("op %d prealloc: %v", i, err)
			}
		default:
			size := rng.Int64N(span)
			if _, err := fs.SetAttr(ino, &SetAttr{Valid: SetSize, Size: uint64(size)}); err != nil {
				t.Fatalf("op %d truncate: %v", i, err)
			}
			m.truncate(size)
		}
		maxDepth = max(maxDepth, extentDepth(t, fs, ino))
		if i%50 == 0 {
			checkTree(t, fs, ino)
			checkIBlocks(t, fs, ino)
			checkFile(t, fs, ino, m)
		}
	}
	checkTree(t, fs, ino)
	checkIBlocks(t, fs, ino)
	checkFile(t, fs, ino, m)
	if maxDepth < 2 {
		t.Errorf("tree never reached depth 2 (max %d)", maxDepth)
	}
	coreClose(t, fs, img)
	kernelCheck(t, testutil.Ext4Block1K, img, map[string]*model{"f": m})
}
