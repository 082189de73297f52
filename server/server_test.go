package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// protoFixture is a small hand-made tree whose every byte the protocol
// tests know, served through an in-memory FUSE session.
type protoFixture struct {
	t      *testing.T
	fs     *ext4.FS
	srv    *Server
	sess   *fusetest.Session
	xattrs bool // the source filesystem took user xattrs
}

const (
	helloData  = "hello world\n"
	sparseSize = 1 << 20
	sparseData = 512 << 10 // offset of the only data in "sparse"
)

func newProtoFixture(t *testing.T) *protoFixture {
	t.Helper()
	return newProtoFixtureWithout(t, 0)
}

// newProtoFixtureWithout is newProtoFixture with a kernel that does not
// offer the INIT capabilities in missing.
func newProtoFixtureWithout(t *testing.T, missing fuseproto.InitFlags) *protoFixture {
	t.Helper()
	mkfs := testutil.RequireTool(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(os.WriteFile(filepath.Join(src, "hello"), []byte(helloData), 0o644))
	must(os.WriteFile(filepath.Join(src, "secret"), []byte("x"), 0o600))
	must(os.WriteFile(filepath.Join(src, "d", "f"), bytes.Repeat([]byte("0123456789"), 1000), 0o644))
	must(os.Symlink("hello", filepath.Join(src, "s")))
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0xaa}, 4096), sparseData)
	must(err)
	must(f.Truncate(sparseSize))
	must(f.Close())
	for i := range 40 { // enough names that READDIR needs several calls with small buffers
		must(os.WriteFile(filepath.Join(src, "d", "n"+string(rune('A'+i%26))+string(rune('a'+i/26))), nil, 0o644))
	}
	xattrs := unix.Setxattr(filepath.Join(src, "hello"), "user.color", []byte("blue"), 0) == nil &&
		unix.Setxattr(filepath.Join(src, "hello"), "user.shape", []byte("round"), 0) == nil

	img := filepath.Join(dir, "img")
	out, err := exec.Command(mkfs, "-q", "-F", "-b", "4096", "-d", src, img, "16M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dev, err := blockdev.Open(img, true)
	must(err)
	fsys, err := ext4.Open(dev, ext4.Options{ReadOnly: true})
	must(err)
	t.Cleanup(func() { fsys.Close() })
	srv := New(fsys, Options{ReadOnly: true})
	sess := fusetest.StartNoInit(t, srv, nil)
	in := fusetest.DefaultInit()
	in.Flags, in.Flags2 = (in.Flags64() &^ missing).Split()
	if h, _ := sess.Init(&in); h.Error != 0 {
		t.Fatalf("INIT: errno %d", -h.Error)
	}
	return &protoFixture{t: t, fs: fsys, srv: srv, sess: sess, xattrs: xattrs}
}

// do runs one request and fails the test on an unexpected errno.
func (p *protoFixture) do(op fuseproto.Opcode, node uint64, want syscall.Errno, parts ...[]byte) []byte {
	p.t.Helper()
	h, body := p.sess.Do(op, node, parts...)
	if got := syscall.Errno(-h.Error); got != want {
		p.t.Fatalf("%v on node %d: errno %v, want %v", op, node, got, want)
	}
	return body
}

func (p *protoFixture) lookup(parent uint64, name string) fuseproto.EntryOut {
	p.t.Helper()
	return fusetest.Decode[fuseproto.EntryOut](p.do(fuseproto.OpLookup, parent, 0, fusetest.Name(name)))
}

func TestProtoLookupGetattr(t *testing.T) {
	p := newProtoFixture(t)
	e := p.lookup(1, "hello")
	ino, err := p.fs.Lookup(ext4.RootIno, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	inode, err := p.fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	if e.NodeID != uint64(ino) || e.Attr.Ino != uint64(ino) {
		t.Errorf("nodeid %d, attr.ino %d; want inode %d", e.NodeID, e.Attr.Ino, ino)
	}
	if e.Generation != uint64(inode.Generation) {
		t.Errorf("generation %d, want %d", e.Generation, inode.Generation)
	}
	if e.Attr.Size != uint64(len(helloData)) || e.Attr.Mode != 0o100644 || e.Attr.Nlink != 1 ||
		e.Attr.Blksize != 4096 || e.Attr.Blocks != inode.Blocks512() {
		t.Errorf("attr %+v", e.Attr)
	}
	if e.Attr.Mtime != uint64(inode.Mtime.Unix()) || e.Attr.Mtimensec != uint32(inode.Mtime.Nanosecond()) {
		t.Errorf("mtime %d.%d, want %v", e.Attr.Mtime, e.Attr.Mtimensec, inode.Mtime)
	}
	if e.EntryValid < uint64(time.Hour/time.Second) || e.AttrValid < uint64(time.Hour/time.Second) {
		t.Errorf("timeouts entry %d attr %d, want >= 1h", e.EntryValid, e.AttrValid)
	}
	if c := p.srv.nodes.count(e.NodeID); c != 1 {
		t.Errorf("lookup count %d after one LOOKUP", c)
	}
	p.lookup(1, "hello")
	if c := p.srv.nodes.count(e.NodeID); c != 2 {
		t.Errorf("lookup count %d after two LOOKUPs", c)
	}

	// The root: nodeid 1, st_ino 2, never counted.
	a := fusetest.Decode[fuseproto.AttrOut](p.do(fuseproto.OpGetattr, 1, 0, fusetest.Bytes(&fuseproto.GetattrIn{})))
	if a.Attr.Ino != 2 || a.Attr.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("root attr %+v", a.Attr)
	}
	d := p.lookup(1, "d")
	sub := p.lookup(d.NodeID, "..")
	if sub.NodeID != 1 || sub.Attr.Ino != 2 {
		t.Errorf(`lookup "d/.." = nodeid %d ino %d, want the root`, sub.NodeID, sub.Attr.Ino)
	}
	if p.srv.nodes.count(1) != 0 {
		t.Errorf("root is lookup-counted")
	}

	// Nodeid 2 is never handed out.
	p.do(fuseproto.OpGetattr, 2, syscall.ESTALE, fusetest.Bytes(&fuseproto.GetattrIn{}))

	// A missing name is a cacheable negative entry on a read-only mount.
	neg := p.lookup(1, "missing")
	if neg.NodeID != 0 || neg.EntryValid == 0 {
		t.Errorf("negative entry %+v", neg)
	}
	// Looking up inside a file is ENOTDIR.
	p.do(fuseproto.OpLookup, e.NodeID, syscall.ENOTDIR, fusetest.Name("x"))
}

func TestProtoForget(t *testing.T) {
	p := newProtoFixture(t)
	e := p.lookup(1, "hello")
	p.lookup(1, "hello")
	p.lookup(1, "hello")
	s := p.lookup(1, "s")
	p.sess.Conn.Feed(fusetest.Request(fuseproto.OpForget, 7, e.NodeID, fusetest.Bytes(&fuseproto.ForgetIn{Nlookup: 2})))
	waitCount(t, p.srv, e.NodeID, 1)
	batch := append(fusetest.Bytes(&fuseproto.BatchForgetIn{Count: 2}),
		fusetest.Bytes(&fuseproto.ForgetOne{NodeID: e.NodeID, Nlookup: 1})...)
	batch = append(batch, fusetest.Bytes(&fuseproto.ForgetOne{NodeID: s.NodeID, Nlookup: 1})...)
	p.sess.Conn.Feed(fusetest.Request(fuseproto.OpBatchForget, 9, 0, batch))
	waitCount(t, p.srv, e.NodeID, 0)
	waitCount(t, p.srv, s.NodeID, 0)
	if n := p.srv.nodes.len(); n != 0 {
		t.Errorf("%d nodes still referenced", n)
	}
}

// waitCount polls: FORGET has no reply to wait for.
func waitCount(t *testing.T, s *Server, id, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.nodes.count(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("lookup count of %d is %d, want %d", id, s.nodes.count(id), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProtoRead(t *testing.T) {
	p := newProtoFixture(t)
	e := p.lookup(1, "hello")
	// The kernel offers NO_OPEN_SUPPORT: a read-only open needs no round
	// trip at all, a writable one is still refused.
	p.do(fuseproto.OpOpen, e.NodeID, syscall.ENOSYS, fusetest.Bytes(&fuseproto.OpenIn{Flags: syscall.O_RDONLY}))
	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		p.do(fuseproto.OpOpen, e.NodeID, syscall.EROFS, fusetest.Bytes(&fuseproto.OpenIn{Flags: flags}))
	}
	// FLUSH has nothing to do on a read-only mount; ENOSYS stops it.
	p.do(fuseproto.OpFlush, e.NodeID, syscall.ENOSYS, fusetest.Bytes(&fuseproto.FlushIn{}))
	read := func(node, off uint64, size uint32) []byte {
		return p.do(fuseproto.OpRead, node, 0, fusetest.Bytes(&fuseproto.ReadIn{Offset: off, Size: size}))
	}
	if got := string(read(e.NodeID, 0, 4096)); got != helloData {
		t.Errorf("read %q, want %q", got, helloData)
	}
	if got := string(read(e.NodeID, 6, 3)); got != "wor" {
		t.Errorf("read at 6 = %q", got)
	}
	if got := read(e.NodeID, 100, 10); len(got) != 0 {
		t.Errorf("read past EOF returned %d bytes", len(got))
	}
	d := p.lookup(1, "d")
	f := p.lookup(d.NodeID, "f")
	want := bytes.Repeat([]byte("0123456789"), 1000)
	if got := read(f.NodeID, 4090, 20); !bytes.Equal(got, want[4090:4110]) {
		t.Errorf("read across a block boundary = %q", got)
	}
	sp := p.lookup(1, "sparse")
	got := read(sp.NodeID, sparseData-8, 16)
	if !bytes.Equal(got, append(make([]byte, 8), bytes.Repeat([]byte{0xaa}, 8)...)) {
		t.Errorf("read across hole/data = %x", got)
	}
	p.do(fuseproto.OpRelease, e.NodeID, 0, fusetest.Bytes(&fuseproto.ReleaseIn{}))

	// SEEK_DATA / SEEK_HOLE.
	seek := func(off uint64, whence uint32, want syscall.Errno) uint64 {
		body := p.do(fuseproto.OpLseek, sp.NodeID, want, fusetest.Bytes(&fuseproto.LseekIn{Offset: off, Whence: whence}))
		return fusetest.Decode[fuseproto.LseekOut](body).Offset
	}
	if got := seek(0, unix.SEEK_DATA, 0); got != sparseData {
		t.Errorf("SEEK_DATA from 0 = %d, want %d", got, sparseData)
	}
	if got := seek(sparseData, unix.SEEK_HOLE, 0); got != sparseData+4096 {
		t.Errorf("SEEK_HOLE from data = %d, want %d", got, sparseData+4096)
	}
	seek(sparseSize+1, unix.SEEK_DATA, syscall.ENXIO)
}

func TestProtoReaddir(t *testing.T) {
	p := newProtoFixture(t)
	d := p.lookup(1, "d")
	p.do(fuseproto.OpOpendir, d.NodeID, syscall.ENOSYS, fusetest.Bytes(&fuseproto.OpenIn{}))
	want, err := listNames(p.fs, ext4.Ino(d.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 43 { // . .. f and 40 empty files
		t.Fatalf("ext4 lists %d names: %q", len(want), want)
	}
	for _, plus := range []bool{false, true} {
		for _, size := range []uint32{4096, 200} { // 200: a few entries per call
			names, ids := p.readdirAll(d.NodeID, size, plus)
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("plus=%v size=%d: names %q, want %q", plus, size, names, want)
			}
			if !plus {
				continue
			}
			// Every entry but "." and ".." counted one lookup.
			for name, id := range ids {
				c := p.srv.nodes.count(id)
				if name == "." || name == ".." {
					if id != 0 {
						t.Errorf("%q carries nodeid %d", name, id)
					}
					continue
				}
				if c != 1 {
					t.Errorf("%q: lookup count %d after one READDIRPLUS", name, c)
				}
				p.srv.nodes.forget(id, c)
			}
		}
	}
	p.do(fuseproto.OpReleasedir, d.NodeID, 0, fusetest.Bytes(&fuseproto.ReleaseIn{}))
	e := p.lookup(1, "hello")
	p.do(fuseproto.OpOpendir, e.NodeID, syscall.ENOTDIR, fusetest.Bytes(&fuseproto.OpenIn{}))
}

// TestProtoOpenCaching: without the kernel's no-open support, opens are
// answered with the caching flags a read-only image allows.
func TestProtoOpenCaching(t *testing.T) {
	p := newProtoFixtureWithout(t, fuseproto.InitNoOpenSupport|fuseproto.InitNoOpendirSupport)
	e := p.lookup(1, "hello")
	open := fusetest.Decode[fuseproto.OpenOut](p.do(fuseproto.OpOpen, e.NodeID, 0,
		fusetest.Bytes(&fuseproto.OpenIn{Flags: syscall.O_RDONLY})))
	if want := fuseproto.FopenKeepCache | fuseproto.FopenNoflush; open.OpenFlags != want {
		t.Errorf("open flags %v, want %v", open.OpenFlags, want)
	}
	p.do(fuseproto.OpOpen, e.NodeID, syscall.EROFS, fusetest.Bytes(&fuseproto.OpenIn{Flags: syscall.O_WRONLY}))
	dir := fusetest.Decode[fuseproto.OpenOut](p.do(fuseproto.OpOpendir, 1, 0, fusetest.Bytes(&fuseproto.OpenIn{})))
	if want := fuseproto.FopenKeepCache | fuseproto.FopenCacheDir; dir.OpenFlags != want {
		t.Errorf("opendir flags %v, want %v", dir.OpenFlags, want)
	}
}

func listNames(fsys *ext4.FS, dir ext4.Ino) ([]string, error) {
	var names []string
	err := fsys.ReadDir(dir, 0, func(e ext4.DirEntry) bool {
		names = append(names, string(e.Name))
		return true
	})
	slices.Sort(names)
	return names, err
}

// readdirAll lists a directory with READDIR(PLUS) calls of the given
// size, resuming from each batch's last cookie, and returns the names and
// (for plus) each entry's nodeid.
func (p *protoFixture) readdirAll(node uint64, size uint32, plus bool) ([]string, map[string]uint64) {
	p.t.Helper()
	op := fuseproto.OpReaddir
	hdr := fuseproto.DirentNameOffset
	if plus {
		op, hdr = fuseproto.OpReaddirplus, fuseproto.DirentplusNameOffset
	}
	var names []string
	ids := map[string]uint64{}
	var off uint64
	for calls := 0; ; calls++ {
		if calls > 1000 {
			p.t.Fatal("readdir does not terminate")
		}
		body := p.do(op, node, 0, fusetest.Bytes(&fuseproto.ReadIn{Offset: off, Size: size}))
		if len(body) == 0 {
			return names, ids
		}
		for len(body) > 0 {
			var de fuseproto.Dirent
			var id uint64
			if plus {
				dp := fusetest.Decode[fuseproto.Direntplus](body)
				de, id = dp.Dirent, dp.EntryOut.NodeID
			} else {
				de = fusetest.Decode[fuseproto.Dirent](body)
			}
			name := string(body[hdr : hdr+int(de.Namelen)])
			if de.Off == 0 || de.Off == off {
				p.t.Fatalf("entry %q has cookie %d after cookie %d", name, de.Off, off)
			}
			names = append(names, name)
			ids[name] = id
			off = de.Off
			body = body[fuseproto.DirentAlignSize(hdr+int(de.Namelen)):]
		}
	}
}

func TestProtoReadlinkXattrStatfs(t *testing.T) {
	p := newProtoFixture(t)
	s := p.lookup(1, "s")
	if got := string(p.do(fuseproto.OpReadlink, s.NodeID, 0)); got != "hello" {
		t.Errorf("readlink = %q", got)
	}
	st := fusetest.Decode[fuseproto.StatfsOut](p.do(fuseproto.OpStatfs, 1, 0))
	want := p.fs.Statfs()
	if st.St.Blocks != want.Blocks || st.St.Bfree != want.Bfree || st.St.Files != want.Files ||
		st.St.Bsize != 4096 || st.St.Namelen != 255 {
		t.Errorf("statfs %+v, want %+v", st.St, want)
	}

	e := p.lookup(1, "hello")
	getxattr := func(name string, size uint32, want syscall.Errno) []byte {
		return p.do(fuseproto.OpGetxattr, e.NodeID, want,
			fusetest.Bytes(&fuseproto.GetxattrIn{Size: size}), fusetest.Name(name))
	}
	getxattr("user.nope", 0, syscall.ENODATA)
	if !p.xattrs {
		t.Skip("source filesystem does not take user xattrs")
	}
	if got := fusetest.Decode[fuseproto.GetxattrOut](getxattr("user.color", 0, 0)).Size; got != 4 {
		t.Errorf("size probe = %d, want 4", got)
	}
	getxattr("user.color", 3, syscall.ERANGE)
	if got := string(getxattr("user.color", 100, 0)); got != "blue" {
		t.Errorf("getxattr = %q", got)
	}
	list := func(size uint32, want syscall.Errno) []byte {
		return p.do(fuseproto.OpListxattr, e.NodeID, want, fusetest.Bytes(&fuseproto.GetxattrIn{Size: size}))
	}
	wantList := "user.color\x00user.shape\x00"
	if got := fusetest.Decode[fuseproto.GetxattrOut](list(0, 0)).Size; got != uint32(len(wantList)) {
		t.Errorf("list size probe = %d, want %d", got, len(wantList))
	}
	list(5, syscall.ERANGE)
	got := bytes.Split(bytes.TrimSuffix(list(1000, 0), []byte{0}), []byte{0})
	slices.SortFunc(got, bytes.Compare)
	if string(bytes.Join(got, []byte{0}))+"\x00" != wantList {
		t.Errorf("listxattr = %q, want %q", got, wantList)
	}
}

func TestProtoAccessStatx(t *testing.T) {
	p := newProtoFixture(t)
	e := p.lookup(1, "hello")    // 0644 root:root (mkfs -d keeps uid 0 when run as root)
	sec := p.lookup(1, "secret") // 0600
	access := func(node uint64, mask uint32, want syscall.Errno) {
		t.Helper()
		p.do(fuseproto.OpAccess, node, want, fusetest.Bytes(&fuseproto.AccessIn{Mask: mask}))
	}
	// fusetest requests come from uid 1000, gid 1000.
	access(e.NodeID, unix.F_OK, 0)
	access(e.NodeID, unix.R_OK, 0)
	access(e.NodeID, unix.W_OK, syscall.EROFS)
	access(e.NodeID, unix.X_OK, syscall.EACCES)
	if sec.Attr.Uid != 1000 {
		access(sec.NodeID, unix.R_OK, syscall.EACCES)
	}
	access(1, unix.X_OK, 0)

	sx := fusetest.Decode[fuseproto.StatxOut](p.do(fuseproto.OpStatx, e.NodeID, 0, fusetest.Bytes(&fuseproto.StatxIn{SxMask: 0xfff})))
	inode, err := p.fs.Inode(ext4.Ino(e.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	if sx.Stat.Mask&statxBtime == 0 || sx.Stat.Btime.Sec != inode.Crtime.Unix() {
		t.Errorf("statx btime %+v (mask %#x), want %v", sx.Stat.Btime, sx.Stat.Mask, inode.Crtime)
	}
	if sx.Stat.Ino != e.Attr.Ino || uint32(sx.Stat.Mode) != e.Attr.Mode || sx.Stat.Size != e.Attr.Size {
		t.Errorf("statx %+v disagrees with attr %+v", sx.Stat, e.Attr)
	}
}

// TestProtoCorruptInode flips a byte of one inode: operations touching
// it fail with EUCLEAN and are logged with the inode number, while its
// directory still lists and its siblings still work.
func TestProtoCorruptInode(t *testing.T) {
	debugfs := testutil.RequireTool(t, "debugfs")
	mkfs := testutil.RequireTool(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"good", "bad"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "img")
	if out, err := exec.Command(mkfs, "-q", "-F", "-b", "4096", "-O", "metadata_csum", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v\n%s", err, out)
	}
	out, err := exec.Command(debugfs, "-R", "imap /bad", img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	var group, block, offset int64
	var ino int
	if _, err := fmt.Sscanf(string(out[bytes.Index(out, []byte("Inode ")):]),
		"Inode %d is part of block group %d\n\tlocated at block %d, offset %v", &ino, &group, &block, &offset); err != nil {
		t.Fatalf("parsing %q: %v", out, err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := block*4096 + offset + 0x10 // i_mtime: the checksum no longer matches
	var b [1]byte
	if _, err := f.ReadAt(b[:], pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], pos); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dev, err := blockdev.Open(img, true)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(dev, ext4.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	var logBuf syncBuffer
	srv := New(fsys, Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	p := &protoFixture{t: t, fs: fsys, srv: srv, sess: fusetest.Start(t, srv, nil)}

	p.do(fuseproto.OpLookup, 1, syscall.EUCLEAN, fusetest.Name("bad"))
	p.do(fuseproto.OpGetattr, uint64(ino), syscall.EUCLEAN, fusetest.Bytes(&fuseproto.GetattrIn{}))
	good := p.lookup(1, "good")
	if got := string(p.do(fuseproto.OpRead, good.NodeID, 0, fusetest.Bytes(&fuseproto.ReadIn{Size: 100}))); got != "good" {
		t.Errorf("read good = %q", got)
	}
	names, ids := p.readdirAll(1, 4096, true)
	slices.Sort(names)
	if want := []string{".", "..", "bad", "good", "lost+found"}; !slices.Equal(names, want) {
		t.Errorf("readdirplus names %q, want %q", names, want)
	}
	if ids["bad"] != 0 {
		t.Errorf("corrupt entry handed out as nodeid %d", ids["bad"])
	}
	if p.srv.nodes.count(uint64(ino)) != 0 {
		t.Errorf("corrupt inode lookup-counted")
	}
	if log := logBuf.String(); !strings.Contains(log, fmt.Sprintf("ino=%d", ino)) || strings.Count(log, "filesystem corruption") != 1 {
		t.Errorf("want one corruption report naming inode %d, log:\n%s", ino, log)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of
// request goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProtoBmap(t *testing.T) {
	p := newProtoFixture(t)
	sp := p.lookup(1, "sparse")
	bmap := func(block uint64, bs uint32, want syscall.Errno) uint64 {
		t.Helper()
		body := p.do(fuseproto.OpBmap, sp.NodeID, want, fusetest.Bytes(&fuseproto.BmapIn{Block: block, Blocksize: bs}))
		return fusetest.Decode[fuseproto.BmapOut](body).Block
	}
	m, err := p.fs.Map(ext4.Ino(sp.NodeID), sparseData, 4096)
	if err != nil || m.Type != ext4.MapMapped {
		t.Fatalf("Map = %+v, %v", m, err)
	}
	if got, want := bmap(sparseData/4096, 4096, 0), uint64(m.Addr/4096); got != want {
		t.Errorf("bmap of the data block = %d, want %d", got, want)
	}
	if got, want := bmap(sparseData/512+1, 512, 0), uint64(m.Addr/512+1); got != want {
		t.Errorf("bmap in 512-byte units = %d, want %d", got, want)
	}
	if got := bmap(0, 4096, 0); got != 0 {
		t.Errorf("bmap of a hole = %d, want 0", got)
	}
	bmap(0, 0, syscall.EINVAL)
	bmap(0, 1000, syscall.EINVAL)
}
