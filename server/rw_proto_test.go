package server

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
)

// Protocol tests of the write opcodes: a read-write server on a real
// image, driven through an in-memory FUSE session; every test ends by
// closing the session and the file system and requiring e2fsck -fn to
// find the image clean.

type rwFixture struct {
	t    *testing.T
	img  string
	fs   *ext4.FS
	srv  *Server
	sess *fusetest.Session

	closeDev func() error
}

// newRWFixture serves a fresh image of variant v (with "hello" at the
// root) read-write, the session negotiated with every capability a
// current kernel offers, less missing.
func newRWFixture(t *testing.T, v testutil.Variant, opts Options, missing fuseproto.InitFlags) *rwFixture {
	t.Helper()
	testutil.RequireE2fsprogs(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte(helloData), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	testutil.MkfsD(t, img, src, v, 32)
	f := &rwFixture{t: t, img: img}
	f.open(opts, missing)
	return f
}

func (f *rwFixture) open(opts Options, missing fuseproto.InitFlags) {
	t := f.t
	t.Helper()
	dev, err := blockdev.Open(f.img, false)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(dev, ext4.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	if fsys.ReadOnly() {
		t.Fatal("ext4.Open: read-only")
	}
	f.fs = fsys
	f.srv = New(fsys, opts)
	f.sess = fusetest.StartNoInit(t, f.srv, nil)
	in := fusetest.DefaultInit()
	in.Flags, in.Flags2 = (in.Flags64() &^ missing).Split()
	if h, _ := f.sess.Init(&in); h.Error != 0 {
		t.Fatalf("INIT: errno %d", -h.Error)
	}
	t.Cleanup(func() {
		if f.fs != nil {
			f.sess.Close()
			f.fs.Close()
			dev.Close()
		}
	})
	f.closeDev = dev.Close
}

// close ends the session (Destroy runs), closes the file system and
// checks the image.
func (f *rwFixture) close() {
	f.t.Helper()
	if err := f.sess.Close(); err != nil {
		f.t.Errorf("Serve: %v", err)
	}
	if err := f.fs.Close(); err != nil {
		f.t.Errorf("Close: %v", err)
	}
	f.closeDev()
	f.fs = nil
	testutil.E2fsckClean(f.t, f.img)
}

func (f *rwFixture) do(op fuseproto.Opcode, node uint64, want syscall.Errno, parts ...[]byte) []byte {
	f.t.Helper()
	h, body := f.sess.Do(op, node, parts...)
	if got := syscall.Errno(-h.Error); got != want {
		f.t.Fatalf("%v on node %d: errno %v, want %v", op, node, got, want)
	}
	return body
}

func (f *rwFixture) lookup(parent uint64, name string) fuseproto.EntryOut {
	f.t.Helper()
	return fusetest.Decode[fuseproto.EntryOut](f.do(fuseproto.OpLookup, parent, 0, fusetest.Name(name)))
}

// absent checks that name is not in parent: a negative entry (nodeid 0).
func (f *rwFixture) absent(parent uint64, name string) {
	f.t.Helper()
	if e := f.lookup(parent, name); e.NodeID != 0 {
		f.t.Fatalf("%s in node %d still found (nodeid %d)", name, parent, e.NodeID)
	}
}

func (f *rwFixture) getattr(node uint64) fuseproto.Attr {
	f.t.Helper()
	return fusetest.Decode[fuseproto.AttrOut](f.do(fuseproto.OpGetattr, node, 0, fusetest.Bytes(&fuseproto.GetattrIn{}))).Attr
}

func (f *rwFixture) create(parent uint64, name string, mode, umask uint32) fuseproto.CreateOut {
	f.t.Helper()
	in := fuseproto.CreateIn{Flags: uint32(os.O_RDWR | os.O_CREATE), Mode: mode, Umask: umask}
	return fusetest.Decode[fuseproto.CreateOut](f.do(fuseproto.OpCreate, parent, 0, fusetest.Bytes(&in), fusetest.Name(name)))
}

func (f *rwFixture) write(node uint64, off int64, data []byte, flags fuseproto.WriteFlags) {
	f.t.Helper()
	in := fuseproto.WriteIn{Offset: uint64(off), Size: uint32(len(data)), WriteFlags: flags}
	out := fusetest.Decode[fuseproto.WriteOut](f.do(fuseproto.OpWrite, node, 0, fusetest.Bytes(&in), data))
	if int(out.Size) != len(data) {
		f.t.Fatalf("WRITE %d bytes at %d: wrote %d", len(data), off, out.Size)
	}
}

func (f *rwFixture) read(node uint64, off int64, n int) []byte {
	f.t.Helper()
	in := fuseproto.ReadIn{Offset: uint64(off), Size: uint32(n)}
	return f.do(fuseproto.OpRead, node, 0, fusetest.Bytes(&in))
}

func (f *rwFixture) setattr(node uint64, in fuseproto.SetattrIn) fuseproto.Attr {
	f.t.Helper()
	return fusetest.Decode[fuseproto.AttrOut](f.do(fuseproto.OpSetattr, node, 0, fusetest.Bytes(&in))).Attr
}

func (f *rwFixture) mkdir(parent uint64, name string, mode, umask uint32) fuseproto.EntryOut {
	f.t.Helper()
	in := fuseproto.MkdirIn{Mode: mode, Umask: umask}
	return fusetest.Decode[fuseproto.EntryOut](f.do(fuseproto.OpMkdir, parent, 0, fusetest.Bytes(&in), fusetest.Name(name)))
}

func (f *rwFixture) setxattr(node uint64, name string, val []byte, flags uint32, want syscall.Errno) {
	f.t.Helper()
	in := fuseproto.SetxattrIn{Size: uint32(len(val)), Flags: flags}
	f.do(fuseproto.OpSetxattr, node, want, fusetest.Bytes(&in), fusetest.Name(name), val)
}

func (f *rwFixture) getxattr(node uint64, name string) ([]byte, syscall.Errno) {
	f.t.Helper()
	in := fuseproto.GetxattrIn{Size: 65536}
	h, body := f.sess.Do(fuseproto.OpGetxattr, node, fusetest.Bytes(&in), fusetest.Name(name))
	return body, syscall.Errno(-h.Error)
}

// forget sends FORGET (which has no reply) and waits until the server
// has counted it.
func (f *rwFixture) forget(node, n uint64) {
	f.t.Helper()
	before := f.srv.nodes.count(node)
	in := fuseproto.ForgetIn{Nlookup: n}
	f.sess.Conn.Feed(fusetest.Request(fuseproto.OpForget, 7, node, fusetest.Bytes(&in)))
	for deadline := time.Now().Add(10 * time.Second); f.srv.nodes.count(node) == before; {
		if time.Now().After(deadline) {
			f.t.Fatalf("FORGET of node %d not processed", node)
		}
		time.Sleep(time.Millisecond)
	}
}

// inodeInUse reports whether ino is still allocated, as debugfs sees it
// after the session ended.
func inodeFree(t *testing.T, img string, ino uint64) bool {
	t.Helper()
	out := testutil.Debugfs(t, img, "testi <"+itoa(ino)+">")
	return bytes.Contains([]byte(out), []byte("not in use"))
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	if n >= 10 {
		b = appendUint(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestRWProtoWriteRead(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2, testutil.Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) {
			f := newRWFixture(t, v, Options{}, 0)
			c := f.create(1, "f", sIFREG|0o644, 0)
			id := c.Entry.NodeID
			if c.Entry.Attr.Size != 0 || c.Entry.Attr.Mode != sIFREG|0o644 {
				t.Fatalf("new file attr %+v", c.Entry.Attr)
			}
			// Unaligned writes into fresh blocks, leaving holes between.
			f.write(id, 5, []byte("hello"), 0)
			f.write(id, 70000, []byte("far"), fuseproto.WriteCache)
			want := make([]byte, 70003)
			copy(want[5:], "hello")
			copy(want[70000:], "far")
			if a := f.getattr(id); a.Size != 70003 {
				t.Fatalf("size %d after writes, want 70003", a.Size)
			}
			if got := f.read(id, 0, 80000); !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, differing from what was written", len(got))
			}
			// Overwrite inside written data, and a large write spanning
			// several mappings.
			f.write(id, 7, []byte("LL"), 0)
			copy(want[7:], "LL")
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
			f.write(id, 3000, big, fuseproto.WriteCache)
			want = append(want, make([]byte, 3000+len(big)-len(want))...)
			copy(want[3000:], big)
			if got := f.read(id, 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatalf("read back after overwrite differs (len %d want %d)", len(got), len(want))
			}
			// A write past the end of the mapping limit is EFBIG.
			in := fuseproto.WriteIn{Offset: 1<<63 - 2, Size: 4}
			f.do(fuseproto.OpWrite, id, syscall.EFBIG, fusetest.Bytes(&in), []byte("xxxx"))
			f.do(fuseproto.OpRelease, id, 0, fusetest.Bytes(&fuseproto.ReleaseIn{}))
			f.close()
		})
	}
}

// TestRWProtoUnwrittenTail: a small write into preallocated (unwritten)
// blocks must leave the rest of the block reading as zeros, even where
// the disk held old data.
func TestRWProtoUnwrittenTail(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	c := f.create(1, "f", sIFREG|0o644, 0)
	id := c.Entry.NodeID
	f.write(id, 0, bytes.Repeat([]byte{0xee}, 8192), 0)
	// Punch the blocks out (their 0xee stays on disk), preallocate them
	// again, then write a little in the middle of the first.
	fa := fuseproto.FallocateIn{Offset: 0, Length: 8192, Mode: ext4.FallocPunchHole | ext4.FallocKeepSize}
	f.do(fuseproto.OpFallocate, id, 0, fusetest.Bytes(&fa))
	fa = fuseproto.FallocateIn{Offset: 0, Length: 8192, Mode: ext4.FallocKeepSize}
	f.do(fuseproto.OpFallocate, id, 0, fusetest.Bytes(&fa))
	f.write(id, 100, []byte("x"), 0)
	got := f.read(id, 0, 8192)
	want := make([]byte, 8192)
	want[100] = 'x'
	if !bytes.Equal(got, want) {
		t.Fatalf("unwritten block read back with stale bytes: %x...", got[:16])
	}
	f.close()
}

func TestRWProtoNamespace(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	d := f.mkdir(1, "d", 0o755, 0)
	if d.Attr.Mode != sIFDIR|0o755 || d.Attr.Nlink != 2 {
		t.Fatalf("mkdir attr %+v", d.Attr)
	}
	f.do(fuseproto.OpMkdir, 1, syscall.EEXIST, fusetest.Bytes(&fuseproto.MkdirIn{Mode: 0o755}), fusetest.Name("d"))
	// mknod: fifo, socket, devices.
	for _, n := range []struct {
		name string
		mode uint32
		rdev uint32
	}{{"fifo", syscall.S_IFIFO | 0o600, 0}, {"sock", syscall.S_IFSOCK | 0o644, 0},
		{"chr", syscall.S_IFCHR | 0o600, 1<<8 | 3}, {"blk", syscall.S_IFBLK | 0o660, 7<<8 | 1}} {
		in := fuseproto.MknodIn{Mode: n.mode, Rdev: n.rdev}
		e := fusetest.Decode[fuseproto.EntryOut](f.do(fuseproto.OpMknod, d.NodeID, 0, fusetest.Bytes(&in), fusetest.Name(n.name)))
		if e.Attr.Mode != n.mode || e.Attr.Rdev != n.rdev {
			t.Errorf("mknod %s: mode %o rdev %#x, want %o %#x", n.name, e.Attr.Mode, e.Attr.Rdev, n.mode, n.rdev)
		}
	}
	// Fast and slow symlinks read back.
	for _, target := range []string{"short", string(bytes.Repeat([]byte("long/"), 100))} {
		e := fusetest.Decode[fuseproto.EntryOut](f.do(fuseproto.OpSymlink, d.NodeID, 0, fusetest.Name("l"+itoa(uint64(len(target)))), fusetest.Name(target)))
		if got := f.do(fuseproto.OpReadlink, e.NodeID, 0); string(got) != target {
			t.Errorf("readlink = %q, want %q", got, target)
		}
	}
	// link counts, rename variants.
	hello := f.lookup(1, "hello")
	e := fusetest.Decode[fuseproto.EntryOut](f.do(fuseproto.OpLink, d.NodeID, 0,
		fusetest.Bytes(&fuseproto.LinkIn{Oldnodeid: hello.NodeID}), fusetest.Name("hello2")))
	if e.NodeID != hello.NodeID || e.Attr.Nlink != 2 {
		t.Fatalf("link: %+v", e)
	}
	f.do(fuseproto.OpLink, d.NodeID, syscall.EPERM, fusetest.Bytes(&fuseproto.LinkIn{Oldnodeid: d.NodeID}), fusetest.Name("dirlink"))
	rename := func(odir uint64, oname string, ndir uint64, nname string, flags uint32, want syscall.Errno) {
		t.Helper()
		in := fuseproto.Rename2In{Newdir: ndir, Flags: flags}
		f.do(fuseproto.OpRename2, odir, want, fusetest.Bytes(&in), fusetest.Name(oname), fusetest.Name(nname))
	}
	const noreplace, exchange, whiteout = 1, 2, 4
	rename(1, "hello", d.NodeID, "fifo", noreplace, syscall.EEXIST)
	rename(1, "hello", d.NodeID, "fifo", whiteout, syscall.EINVAL)
	rename(1, "hello", d.NodeID, "fifo", exchange, 0)
	if got := f.lookup(1, "hello"); got.Attr.Mode&sIFMT != syscall.S_IFIFO {
		t.Errorf("after exchange /hello is mode %o", got.Attr.Mode)
	}
	rename(d.NodeID, "fifo", 1, "moved", 0, 0)
	f.absent(d.NodeID, "fifo")
	// Replacing a file by rename drops its last link.
	rename(d.NodeID, "sock", 1, "hello", 0, 0)
	// unlink, rmdir.
	f.do(fuseproto.OpRmdir, 1, syscall.ENOTEMPTY, fusetest.Name("d"))
	f.do(fuseproto.OpUnlink, 1, syscall.EISDIR, fusetest.Name("d"))
	f.do(fuseproto.OpRmdir, d.NodeID, syscall.ENOTDIR, fusetest.Name("chr"))
	for _, n := range []string{"chr", "blk", "hello2", "l5", "l500"} {
		f.do(fuseproto.OpUnlink, d.NodeID, 0, fusetest.Name(n))
	}
	f.do(fuseproto.OpRmdir, 1, 0, fusetest.Name("d"))
	f.absent(1, "d")
	if a := f.getattr(1); a.Nlink != 3 { // ., .., lost+found
		t.Errorf("root nlink %d after rmdir", a.Nlink)
	}
	f.do(fuseproto.OpTmpfile, 1, syscall.ENOSYS, fusetest.Bytes(&fuseproto.CreateIn{Mode: sIFREG | 0o600}))
	f.close()
}

func TestRWProtoSetattr(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	c := f.create(1, "f", sIFREG|0o644, 0)
	id := c.Entry.NodeID
	f.write(id, 0, bytes.Repeat([]byte("a"), 10000), 0)
	// chmod and chown.
	a := f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrMode, Mode: sIFREG | 0o4755})
	if a.Mode != sIFREG|0o4755 {
		t.Errorf("chmod: mode %o", a.Mode)
	}
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrUid | fuseproto.FattrGid, Uid: 1234, Gid: 5678})
	if a.Uid != 1234 || a.Gid != 5678 {
		t.Errorf("chown: %d:%d", a.Uid, a.Gid)
	}
	// Set-ID kill as HANDLE_KILLPRIV_V2 would ask.
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrKillSuidgid})
	if a.Mode != sIFREG|0o755 {
		t.Errorf("kill suidgid: mode %o", a.Mode)
	}
	// Truncate down to a partial block, then up: the old tail reads zero.
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrSize, Size: 5000})
	if a.Size != 5000 {
		t.Errorf("truncate: size %d", a.Size)
	}
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrSize, Size: 9000})
	got := f.read(id, 0, 10000)
	want := append(bytes.Repeat([]byte("a"), 5000), make([]byte, 4000)...)
	if !bytes.Equal(got, want) {
		t.Errorf("truncate down then up: %d bytes, tail not zero", len(got))
	}
	// utimens with nanoseconds, and "now".
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrAtime | fuseproto.FattrMtime,
		Atime: 1_600_000_000, Atimensec: 123456789, Mtime: 1_500_000_000, Mtimensec: 987654321})
	if a.Atime != 1_600_000_000 || a.Atimensec != 123456789 || a.Mtime != 1_500_000_000 || a.Mtimensec != 987654321 {
		t.Errorf("utimens: atime %d.%d mtime %d.%d", a.Atime, a.Atimensec, a.Mtime, a.Mtimensec)
	}
	before := uint64(time.Now().Unix())
	a = f.setattr(id, fuseproto.SetattrIn{Valid: fuseproto.FattrMtime | fuseproto.FattrMtimeNow})
	if a.Mtime < before || a.Atime != 1_600_000_000 {
		t.Errorf("MTIME_NOW: mtime %d (before %d), atime %d", a.Mtime, before, a.Atime)
	}
	// Directories cannot be truncated.
	f.do(fuseproto.OpSetattr, 1, syscall.EISDIR, fusetest.Bytes(&fuseproto.SetattrIn{Valid: fuseproto.FattrSize}))
	// OPEN with O_TRUNC truncates.
	f.do(fuseproto.OpOpen, id, 0, fusetest.Bytes(&fuseproto.OpenIn{Flags: uint32(os.O_WRONLY | os.O_TRUNC)}))
	if a := f.getattr(id); a.Size != 0 || a.Blocks != 0 {
		t.Errorf("O_TRUNC: size %d blocks %d", a.Size, a.Blocks)
	}
	f.close()
}

func TestRWProtoFallocate(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	id := f.create(1, "f", sIFREG|0o644, 0).Entry.NodeID
	falloc := func(off, n uint64, mode uint32, want syscall.Errno) {
		t.Helper()
		in := fuseproto.FallocateIn{Offset: off, Length: n, Mode: mode}
		f.do(fuseproto.OpFallocate, id, want, fusetest.Bytes(&in))
	}
	falloc(0, 1<<20, 0, 0)
	if a := f.getattr(id); a.Size != 1<<20 || a.Blocks != 2048 {
		t.Errorf("fallocate: size %d blocks %d", a.Size, a.Blocks)
	}
	falloc(1<<20, 1<<20, ext4.FallocKeepSize, 0)
	if a := f.getattr(id); a.Size != 1<<20 || a.Blocks != 4096 {
		t.Errorf("fallocate KEEP_SIZE: size %d blocks %d", a.Size, a.Blocks)
	}
	f.write(id, 0, bytes.Repeat([]byte{1}, 1<<20), 0)
	falloc(4096, 8192, ext4.FallocPunchHole|ext4.FallocKeepSize, 0)
	falloc(100, 50, ext4.FallocZeroRange, 0)
	got := f.read(id, 0, 1<<20)
	want := bytes.Repeat([]byte{1}, 1<<20)
	clear(want[4096:12288])
	clear(want[100:150])
	if !bytes.Equal(got, want) {
		t.Errorf("punch hole / zero range: contents differ")
	}
	if a := f.getattr(id); a.Blocks != 4096-16 {
		t.Errorf("punch hole: blocks %d, want %d", a.Blocks, 4096-16)
	}
	falloc(0, 4096, ext4.FallocCollapseRange, syscall.EOPNOTSUPP)
	falloc(0, 4096, ext4.FallocInsertRange, syscall.EOPNOTSUPP)
	falloc(0, 4096, ext4.FallocPunchHole, syscall.EOPNOTSUPP) // needs KEEP_SIZE
	f.close()
}

func TestRWProtoXattrACL(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	hello := f.lookup(1, "hello").NodeID
	const create, replace = 1, 2
	f.setxattr(hello, "user.a", []byte("1"), 0, 0)
	f.setxattr(hello, "user.a", []byte("2"), create, syscall.EEXIST)
	f.setxattr(hello, "user.b", []byte("2"), replace, syscall.ENODATA)
	f.setxattr(hello, "user.a", []byte("22"), replace, 0)
	if v, errno := f.getxattr(hello, "user.a"); errno != 0 || string(v) != "22" {
		t.Errorf("getxattr = %q, %v", v, errno)
	}
	f.setxattr(hello, "user.big", bytes.Repeat([]byte("x"), 8000), 0, syscall.ENOSPC)
	f.do(fuseproto.OpRemovexattr, hello, 0, fusetest.Name("user.a"))
	f.do(fuseproto.OpRemovexattr, hello, syscall.ENODATA, fusetest.Name("user.a"))

	// A default ACL on a directory is inherited at create, the umask
	// not applied; without one the umask is.
	d := f.mkdir(1, "d", 0o777, 0o022)
	if d.Attr.Mode != sIFDIR|0o755 {
		t.Errorf("mkdir with umask 022: mode %o", d.Attr.Mode)
	}
	def := testutil.EncodeACL([]testutil.ACLEntry{
		{Tag: testutil.ACLUserObj, Perm: 7}, {Tag: testutil.ACLUser, Perm: 6, ID: 1000},
		{Tag: testutil.ACLGroupObj, Perm: 5}, {Tag: testutil.ACLMask, Perm: 7}, {Tag: testutil.ACLOther, Perm: 5}})
	f.setxattr(d.NodeID, testutil.XattrACLDefault, def, 0, 0)
	c := f.create(d.NodeID, "f", sIFREG|0o666, 0o077)
	if c.Entry.Attr.Mode != sIFREG|0o664 {
		t.Errorf("create under a default ACL: mode %o, want 664 (umask ignored, mask rw)", c.Entry.Attr.Mode)
	}
	acc, errno := f.getxattr(c.Entry.NodeID, testutil.XattrACLAccess)
	if errno != 0 {
		t.Fatalf("inherited access ACL: %v", errno)
	}
	if got, want := testutil.FormatACL(acc), "u::rw-,u:1000:rw-,g::r-x,m::rw-,o::r--"; got != want {
		t.Errorf("inherited access ACL %s, want %s", got, want)
	}
	sub := f.mkdir(d.NodeID, "sub", 0o777, 0o077)
	if v, errno := f.getxattr(sub.NodeID, testutil.XattrACLDefault); errno != 0 || !bytes.Equal(v, def) {
		t.Errorf("subdirectory default ACL %s, %v", testutil.FormatACL(v), errno)
	}
	// chmod rewrites the access ACL's mask.
	f.setattr(c.Entry.NodeID, fuseproto.SetattrIn{Valid: fuseproto.FattrMode, Mode: sIFREG | 0o640})
	acc, _ = f.getxattr(c.Entry.NodeID, testutil.XattrACLAccess)
	if got, want := testutil.FormatACL(acc), "u::rw-,u:1000:rw-,g::r-x,m::r--,o::---"; got != want {
		t.Errorf("access ACL after chmod 640: %s, want %s", got, want)
	}
	// Setting an access ACL sets the mode; ACL_KILL_SGID clears setgid.
	f.setattr(hello, fuseproto.SetattrIn{Valid: fuseproto.FattrMode, Mode: sIFREG | 0o2644})
	acl := testutil.EncodeACL([]testutil.ACLEntry{{Tag: testutil.ACLUserObj, Perm: 6},
		{Tag: testutil.ACLGroup, Perm: 7, ID: 5}, {Tag: testutil.ACLGroupObj, Perm: 4},
		{Tag: testutil.ACLMask, Perm: 5}, {Tag: testutil.ACLOther, Perm: 0}})
	in := fuseproto.SetxattrIn{Size: uint32(len(acl)), SetxattrFlags: fuseproto.SetxattrACLKillSgid}
	f.do(fuseproto.OpSetxattr, hello, 0, fusetest.Bytes(&in), fusetest.Name(testutil.XattrACLAccess), acl)
	if a := f.getattr(hello); a.Mode != sIFREG|0o650 {
		t.Errorf("mode after setting the access ACL: %o, want 650", a.Mode)
	}
	f.close()
}

// TestRWProtoOrphan: an unlinked inode lives while the kernel references
// it and is freed at the last release or forget, or at unmount.
func TestRWProtoOrphan(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	c := f.create(1, "f", sIFREG|0o644, 0)
	id := c.Entry.NodeID
	f.do(fuseproto.OpUnlink, 1, 0, fusetest.Name("f"))
	f.write(id, 0, []byte("still here"), 0)
	if got := f.read(id, 0, 100); string(got) != "still here" {
		t.Fatalf("read of an unlinked open file: %q", got)
	}
	f.do(fuseproto.OpRelease, id, 0, fusetest.Bytes(&fuseproto.ReleaseIn{}))
	if _, err := f.fs.Inode(ext4.Ino(id)); err != nil {
		t.Fatalf("inode freed while the kernel still references it: %v", err)
	}
	f.forget(id, 1)
	if inode, err := f.fs.Inode(ext4.Ino(id)); err == nil && inode.Mode != 0 {
		t.Errorf("inode %d not freed after the last release and forget: %+v", id, inode)
	}
	// One left referenced at unmount is freed by Destroy.
	c2 := f.create(1, "g", sIFREG|0o644, 0)
	f.write(c2.Entry.NodeID, 0, bytes.Repeat([]byte("g"), 50000), 0)
	f.do(fuseproto.OpUnlink, 1, 0, fusetest.Name("g"))
	f.close()
	for _, n := range []uint64{id, c2.Entry.NodeID} {
		if !inodeFree(t, f.img, n) {
			t.Errorf("inode %d still in use after unmount", n)
		}
	}
}

func TestRWProtoErrorPolicy(t *testing.T) {
	corrupt := &ext4.CorruptError{Kind: "test", Ino: 12, Err: syscall.EUCLEAN}
	t.Run("continue", func(t *testing.T) {
		f := newRWFixture(t, testutil.Ext4, Options{Errors: ErrorsContinue}, 0)
		if errno := f.srv.writeErrno(corrupt); errno != syscall.EUCLEAN {
			t.Errorf("errno %v", errno)
		}
		f.mkdir(1, "d", 0o755, 0)
		f.close()
	})
	t.Run("remount-ro", func(t *testing.T) {
		f := newRWFixture(t, testutil.Ext4, Options{Errors: ErrorsRemountRO}, 0)
		f.srv.writeErrno(corrupt)
		f.do(fuseproto.OpMkdir, 1, syscall.EROFS, fusetest.Bytes(&fuseproto.MkdirIn{Mode: 0o755}), fusetest.Name("d"))
		hello := f.lookup(1, "hello").NodeID
		f.do(fuseproto.OpOpen, hello, syscall.EROFS, fusetest.Bytes(&fuseproto.OpenIn{Flags: uint32(os.O_WRONLY)}))
		if got := f.read(hello, 0, 100); string(got) != helloData {
			t.Errorf("read after remount-ro: %q", got)
		}
		f.close()
	})
	t.Run("panic", func(t *testing.T) {
		stopped := make(chan struct{})
		f := newRWFixture(t, testutil.Ext4, Options{Errors: ErrorsPanic, Shutdown: func() { close(stopped) }}, 0)
		f.srv.writeErrno(corrupt)
		f.srv.writeErrno(corrupt) // once only
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown not called")
		}
		f.do(fuseproto.OpMkdir, 1, syscall.EROFS, fusetest.Bytes(&fuseproto.MkdirIn{Mode: 0o755}), fusetest.Name("d"))
		f.close()
	})
}

// TestRWProtoInit: a read-write server asks for the writeback cache,
// POSIX ACLs, DONT_MASK and SETXATTR_EXT, and leaves set-ID clearing to
// the kernel.
func TestRWProtoInit(t *testing.T) {
	f := newRWFixture(t, testutil.Ext4, Options{}, 0)
	got := f.sess.Server.Protocol().Flags
	want := fuseproto.InitWritebackCache | fuseproto.InitPosixACL | fuseproto.InitDontMask | fuseproto.InitSetxattrExt
	if got&want != want || got&(fuseproto.InitHandleKillpriv|fuseproto.InitHandleKillprivV2) != 0 {
		t.Errorf("negotiated %v", got)
	}
	f.close()
	g := newRWFixture(t, testutil.Ext4, Options{NoWritebackCache: true}, 0)
	if g.sess.Server.Protocol().Flags&fuseproto.InitWritebackCache != 0 {
		t.Error("writeback cache negotiated though disabled")
	}
	g.close()
}

// TestRWProtoReadOnly: a read-only server refuses every modification.
func TestRWProtoReadOnly(t *testing.T) {
	p := newProtoFixture(t)
	for _, op := range []struct {
		op    fuseproto.Opcode
		parts [][]byte
	}{
		{fuseproto.OpMkdir, [][]byte{fusetest.Bytes(&fuseproto.MkdirIn{Mode: 0o755}), fusetest.Name("x")}},
		{fuseproto.OpUnlink, [][]byte{fusetest.Name("hello")}},
		{fuseproto.OpSetattr, [][]byte{fusetest.Bytes(&fuseproto.SetattrIn{Valid: fuseproto.FattrMode, Mode: 0o600})}},
		{fuseproto.OpSymlink, [][]byte{fusetest.Name("x"), fusetest.Name("y")}},
		{fuseproto.OpCreate, [][]byte{fusetest.Bytes(&fuseproto.CreateIn{Mode: sIFREG | 0o644}), fusetest.Name("x")}},
	} {
		p.do(op.op, 1, syscall.EROFS, op.parts...)
	}
}
