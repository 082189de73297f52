package server

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// Real-mount tests of the read-write server: operations through the
// kernel's syscalls on an in-process e4box mount, then unmount, wait for
// the server, e2fsck -fn clean, and the kernel's own ext4 must see what
// e4box showed.

type rwMount struct {
	dir   string
	img   string
	fs    *ext4.FS
	dev   *blockdev.File
	srv   *Server
	serve chan error
}

func mountRW(t *testing.T, img string, opts Options) *rwMount {
	t.Helper()
	return mountRWWith(t, img, opts, &fuse.Options{FsName: img, DefaultPermissions: true})
}

func mountRWWith(t *testing.T, img string, opts Options, fopts *fuse.Options) *rwMount {
	t.Helper()
	dev, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(dev, ext4.Options{})
	if err != nil {
		dev.Close()
		t.Fatalf("ext4.Open: %v", err)
	}
	m := &rwMount{dir: t.TempDir(), img: img, fs: fsys, dev: dev, serve: make(chan error, 1)}
	m.srv = New(fsys, opts)
	sess, err := fuse.Mount(m.dir, m.srv, fopts)
	if err != nil {
		fsys.Close()
		dev.Close()
		t.Fatalf("fuse.Mount: %v", err)
	}
	m.srv.SetNotifier(sess)
	go func() { m.serve <- sess.Serve() }()
	waitReady(t, sess, m.serve)
	t.Cleanup(func() { m.unmount(t) })
	return m
}

// unmount unmounts, waits for the session to end, and closes the file
// system (the clean unmount). It is idempotent.
func (m *rwMount) unmount(t *testing.T) {
	t.Helper()
	if m.fs == nil {
		return
	}
	if ok, _ := testutil.IsMountPoint(m.dir); ok {
		testutil.Unmount(t, m.dir)
	}
	select {
	case err := <-m.serve:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Serve did not return after unmounting %s", m.dir)
	}
	if err := m.fs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	m.dev.Close()
	m.fs = nil
}

func (m *rwMount) p(rel string) string { return filepath.Join(m.dir, rel) }

// newRWImage makes an image of variant v holding a small tree.
func newRWImage(t *testing.T, v testutil.Variant) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"src/d/e", "src/full"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte(helloData), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "full", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "xattrs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A value too big for the inode puts the attributes in a block.
	if err := unix.Setxattr(filepath.Join(src, "xattrs"), "user.big", bytes.Repeat([]byte("v"), 700), 0); err != nil {
		t.Skipf("source file system takes no user xattrs: %v", err)
	}
	img := filepath.Join(dir, "img")
	v.Args = append(append([]string(nil), v.Args...), "-N", "4096") // room for the tests' files
	testutil.MkfsD(t, img, src, v, 64)
	return img
}

func requireRWMount(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireLoop(t)
	testutil.RequireE2fsprogs(t)
}

// TestRWMountOps runs each kind of modification through the kernel on
// every variant, then requires a clean image whose kernel view equals
// what e4box showed.
func TestRWMountOps(t *testing.T) {
	requireRWMount(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext4NoCsum, testutil.Ext3, testutil.Ext2, testutil.Ext4Inline} {
		t.Run(v.Name, func(t *testing.T) {
			img := newRWImage(t, v)
			m := mountRW(t, img, Options{})
			rwOps(t, m, v)
			unix.Sync()
			ours, err := testutil.Snapshot(m.dir)
			if err != nil {
				t.Fatal(err)
			}
			m.unmount(t)
			testutil.E2fsckClean(t, img)
			kernel, _ := kernelSnapshot(t, img)
			opts := testutil.SameImageOptions()
			opts.Ignore |= testutil.FieldAtime
			testutil.CompareSnapshots(t, kernel, ours, opts)
		})
	}
}

// rwOps does one of each modification under m, checking results the
// kernel reports back along the way.
func rwOps(t *testing.T, m *rwMount, v testutil.Variant) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	extents := !v.HasFeature("^extent") && v.Name != "ext2" && v.Name != "ext3"
	// Data: sparse writes, overwrite, append, truncate both ways.
	f, err := os.OpenFile(m.p("data"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	must(err)
	big := bytes.Repeat([]byte("e4box-data:"), 100000)
	_, err = f.WriteAt(big, 0)
	must(err)
	_, err = f.WriteAt([]byte("far away"), 5<<20+3)
	must(err)
	_, err = f.WriteAt([]byte("OVER"), 1000)
	must(err)
	must(f.Truncate(700001))
	must(f.Truncate(900000))
	must(f.Sync())
	must(f.Close())
	a, err := os.OpenFile(m.p("d/log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(err)
	for i := range 50 {
		_, err = a.WriteString("line " + strconv.Itoa(i) + "\n")
		must(err)
	}
	must(a.Close())
	got, err := os.ReadFile(m.p("d/log"))
	must(err)
	if !strings.HasPrefix(string(got), "line 0\nline 1\n") || !strings.HasSuffix(string(got), "line 49\n") {
		t.Errorf("O_APPEND file: %q", got)
	}
	// fallocate modes on extent files; punch hole everywhere.
	g, err := os.OpenFile(m.p("prealloc"), os.O_RDWR|os.O_CREATE, 0o644)
	must(err)
	_, err = g.Write(bytes.Repeat([]byte{7}, 64<<10))
	must(err)
	must(unix.Fallocate(int(g.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 4096, 8192))
	if extents {
		must(unix.Fallocate(int(g.Fd()), 0, 64<<10, 64<<10))
		must(unix.Fallocate(int(g.Fd()), unix.FALLOC_FL_KEEP_SIZE, 128<<10, 64<<10))
		must(unix.Fallocate(int(g.Fd()), unix.FALLOC_FL_ZERO_RANGE, 20000, 30000))
		if err := unix.Fallocate(int(g.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, 4096); err != unix.EOPNOTSUPP {
			t.Errorf("COLLAPSE_RANGE: %v, want EOPNOTSUPP", err)
		}
		st, _ := g.Stat()
		if st.Size() != 128<<10 {
			t.Errorf("size after fallocate: %d", st.Size())
		}
	}
	must(g.Close())
	// Attributes.
	must(os.Chmod(m.p("hello"), 0o4750))
	must(os.Chown(m.p("hello"), 1000, 2000))
	st, err := os.Stat(m.p("hello"))
	must(err)
	if st.Mode()&os.ModeSetuid != 0 {
		t.Errorf("chown kept set-user-ID: %v", st.Mode())
	}
	ts := []unix.Timespec{{Sec: 1_234_567_890, Nsec: 123_456_789}, {Sec: 1_111_111_111, Nsec: 999_999_999}}
	must(unix.UtimesNanoAt(unix.AT_FDCWD, m.p("hello"), ts, 0))
	must(unix.UtimesNanoAt(unix.AT_FDCWD, m.p("d"), []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_OMIT}}, 0))
	var sx unix.Stat_t
	must(unix.Stat(m.p("hello"), &sx))
	if sx.Mtim != ts[1] || sx.Atim != ts[0] {
		t.Errorf("utimens: atime %v mtime %v", sx.Atim, sx.Mtim)
	}
	// Namespace.
	must(os.Symlink("hello", m.p("fast")))
	must(os.Symlink(strings.Repeat("slow/", 50), m.p("slow")))
	must(os.Link(m.p("hello"), m.p("d/e/hardlink")))
	must(unix.Mkfifo(m.p("d/fifo"), 0o600))
	must(unix.Mknod(m.p("d/chr"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(m.p("d/sock"), unix.S_IFSOCK|0o600, 0))
	for i := range 200 { // enough to need more directory blocks
		must(os.WriteFile(m.p("d/e/f"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644))
	}
	for i := 0; i < 200; i += 3 {
		must(os.Remove(m.p("d/e/f" + strconv.Itoa(i))))
	}
	if err := unix.Renameat2(unix.AT_FDCWD, m.p("fast"), unix.AT_FDCWD, m.p("slow"), unix.RENAME_NOREPLACE); err != unix.EEXIST {
		t.Errorf("RENAME_NOREPLACE onto an existing name: %v", err)
	}
	must(unix.Renameat2(unix.AT_FDCWD, m.p("fast"), unix.AT_FDCWD, m.p("d/fifo"), unix.RENAME_EXCHANGE))
	must(os.Rename(m.p("d/e/f1"), m.p("d/e/f2"))) // replaces f2
	must(os.Rename(m.p("d/e"), m.p("moved")))
	if err := os.Remove(m.p("full")); !isErrno(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty directory: %v", err)
	}
	must(os.Remove(m.p("full/x")))
	must(os.Remove(m.p("full")))
	// Extended attributes.
	must(unix.Setxattr(m.p("hello"), "user.color", []byte("blue"), unix.XATTR_CREATE))
	if err := unix.Setxattr(m.p("hello"), "user.color", []byte("red"), unix.XATTR_CREATE); err != unix.EEXIST {
		t.Errorf("XATTR_CREATE on an existing attribute: %v", err)
	}
	must(unix.Setxattr(m.p("data"), "user.shape", []byte("round"), 0))
	must(unix.Removexattr(m.p("data"), "user.shape"))
	must(unix.Setxattr(m.p("d"), "trusted.x", []byte("t"), 0))
}

func isErrno(err error, want syscall.Errno) bool {
	var e syscall.Errno
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return e == want
}

// TestRWMountACL: ACLs set through the mount are enforced by the kernel
// and stored so that the kernel's ext4 reads them; default ACLs are
// inherited.
func TestRWMountACL(t *testing.T) {
	requireRWMount(t)
	setfacl := testutil.RequireTool(t, "setfacl")
	img := newRWImage(t, testutil.Ext4)
	m := mountRWWith(t, img, Options{}, &fuse.Options{FsName: img, DefaultPermissions: true, AllowOther: true})
	// Let other users reach the mount point (t.TempDir makes 0700 dirs).
	for d := m.dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(setfacl, args...).CombinedOutput(); err != nil {
			t.Fatalf("setfacl %v: %v\n%s", args, err, out)
		}
	}
	run("-m", "u:4242:rw", m.p("hello"))
	run("-d", "-m", "u:4242:rwx,g::rx,o::-", m.p("d"))
	if err := os.WriteFile(m.p("d/inherits"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.p("d/sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(m.p("d/inherits"))
	if err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("file under a default ACL: %v, %v (want 0660: mask rw, other none)", st.Mode(), err)
	}
	// The kernel enforces the ACL: user 4242 may write hello, user 4243
	// may not.
	for uid, want := range map[int]error{4242: nil, 4243: syscall.EACCES} {
		cmd := exec.Command("sh", "-c", "echo x >> "+m.p("hello"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		out, err := cmd.CombinedOutput()
		if (err == nil) != (want == nil) {
			t.Errorf("uid %d writing hello: %v %s", uid, err, out)
		}
	}
	ours, err := testutil.Snapshot(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	m.unmount(t)
	testutil.E2fsckClean(t, img)
	kernel, _ := kernelSnapshot(t, img)
	opts := testutil.SameImageOptions()
	opts.Ignore |= testutil.FieldAtime
	testutil.CompareSnapshots(t, kernel, ours, opts)
}

// TestRWMountOrphan: a file unlinked while open keeps its data until the
// last close, then its blocks return.
func TestRWMountOrphan(t *testing.T) {
	requireRWMount(t)
	img := newRWImage(t, testutil.Ext4)
	m := mountRW(t, img, Options{})
	free := func() uint64 {
		var st unix.Statfs_t
		if err := unix.Statfs(m.dir, &st); err != nil {
			t.Fatal(err)
		}
		return st.Bfree
	}
	before := free()
	f, err := os.Create(m.p("doomed"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(m.p("doomed")); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("z"), 4<<20)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading the unlinked file back: %v", err)
	}
	if free() >= before {
		t.Errorf("blocks of the open unlinked file not in use")
	}
	f.Close()
	deadline := time.Now().Add(20 * time.Second)
	for free() < before {
		if time.Now().After(deadline) {
			t.Fatalf("blocks not freed after the last close: %d free, %d before", free(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.unmount(t)
	testutil.E2fsckClean(t, img)
}

// TestRWMountErrorsRemountRO: corruption met by a modification (an
// xattr block whose checksum fails, found by SETXATTR) fails it with
// EUCLEAN and, with errors=remount-ro, every later modification with
// EROFS; reads go on.
func TestRWMountErrorsRemountRO(t *testing.T) {
	requireRWMount(t)
	img := newRWImage(t, testutil.Ext4)
	out := testutil.Debugfs(t, img, "stat /xattrs")
	_, rest, ok := strings.Cut(out, "File ACL: ")
	if !ok {
		t.Fatalf("no xattr block in debugfs output:\n%s", out)
	}
	blk, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	if err != nil || blk == 0 {
		t.Fatalf("xattr block %q: %v", strings.Fields(rest)[0], err)
	}
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(bytes.Repeat([]byte{0x5a}, 16), blk*4096+4000); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	m := mountRW(t, img, Options{Errors: ErrorsRemountRO})
	if err := unix.Setxattr(m.p("xattrs"), "user.new", []byte("x"), 0); !isErrno(err, syscall.EUCLEAN) {
		t.Fatalf("setxattr on an inode with a corrupt xattr block: %v, want EUCLEAN", err)
	}
	if err := os.Mkdir(m.p("later"), 0o755); !isErrno(err, syscall.EROFS) {
		t.Errorf("mkdir after the error: %v, want EROFS", err)
	}
	if got, err := os.ReadFile(m.p("hello")); err != nil || string(got) != helloData {
		t.Errorf("read after remount-ro: %q, %v", got, err)
	}
	m.unmount(t)
}
