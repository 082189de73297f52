package fuse_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// requireMount skips unless the test can mount FUSE (root and /dev/fuse);
// under CI=true a missing requirement fails instead.
func requireMount(t *testing.T) {
	t.Helper()
	var missing string
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = "/dev/fuse"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("requirement missing under CI: %s", missing)
	}
	t.Skipf("requirement missing: %s", missing)
}

// tinyFS is a read-only tree: / with "hello" (small file), "big" (3 MiB,
// multi-request reads) and "sub/" (empty directory).
type tinyFS struct {
	fuse.NotImplemented
	big       []byte
	destroyed atomic.Bool
	forgets   atomic.Int64
}

const (
	tinyHello = 2
	tinyBig   = 3
	tinySub   = 4
)

var helloData = []byte("hello, world\n")

func newTinyFS() *tinyFS {
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	return &tinyFS{big: big}
}

func (fs *tinyFS) attr(ino uint64, a *fuseproto.Attr) bool {
	a.Ino = ino
	a.Blksize = 4096
	a.Uid, a.Gid = 0, 0
	now := time.Unix(1700000000, 123456789)
	a.SetTimes(now, now, now)
	switch ino {
	case fuseproto.RootID:
		a.Mode, a.Nlink = syscall.S_IFDIR|0o755, 3
	case tinySub:
		a.Mode, a.Nlink = syscall.S_IFDIR|0o755, 2
	case tinyHello:
		a.Mode, a.Nlink, a.Size = syscall.S_IFREG|0o644, 1, uint64(len(helloData))
	case tinyBig:
		a.Mode, a.Nlink, a.Size = syscall.S_IFREG|0o644, 1, uint64(len(fs.big))
	default:
		return false
	}
	a.Blocks = (a.Size + 511) / 512
	return true
}

func (fs *tinyFS) child(name string) uint64 {
	switch name {
	case "hello":
		return tinyHello
	case "big":
		return tinyBig
	case "sub":
		return tinySub
	}
	return 0
}

func (fs *tinyFS) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	if r.NodeID != fuseproto.RootID {
		return syscall.ENOENT
	}
	ino := fs.child(string(name))
	if ino == 0 {
		return syscall.ENOENT
	}
	out.NodeID = ino
	out.SetEntryTimeout(time.Second)
	out.SetAttrTimeout(time.Second)
	fs.attr(ino, &out.Attr)
	return 0
}

func (fs *tinyFS) Forget(nodeID, nlookup uint64) { fs.forgets.Add(int64(nlookup)) }

func (fs *tinyFS) GetAttr(r *fuse.Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	if !fs.attr(r.NodeID, &out.Attr) {
		return syscall.ENOENT
	}
	out.SetAttrTimeout(time.Second)
	return 0
}

func (fs *tinyFS) Open(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	if in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return syscall.EROFS
	}
	return 0
}

func (fs *tinyFS) Read(r *fuse.Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	var data []byte
	switch r.NodeID {
	case tinyHello:
		data = helloData
	case tinyBig:
		data = fs.big
	default:
		return nil, syscall.EISDIR
	}
	if in.Offset >= uint64(len(data)) {
		return nil, 0
	}
	return buf[:copy(buf, data[in.Offset:])], 0
}

func (fs *tinyFS) OpenDir(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	return 0
}

type tinyEnt struct {
	name string
	ino  uint64
	typ  uint32
}

func (fs *tinyFS) entries(dir uint64) []tinyEnt {
	ents := []tinyEnt{{".", dir, syscall.DT_DIR}, {"..", fuseproto.RootID, syscall.DT_DIR}}
	if dir == fuseproto.RootID {
		ents = append(ents,
			tinyEnt{"hello", tinyHello, syscall.DT_REG},
			tinyEnt{"big", tinyBig, syscall.DT_REG},
			tinyEnt{"sub", tinySub, syscall.DT_DIR})
	}
	return ents
}

func (fs *tinyFS) ReadDir(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	for i, e := range fs.entries(r.NodeID) {
		if uint64(i) < in.Offset {
			continue
		}
		if !out.Add([]byte(e.name), e.ino, e.typ, uint64(i+1)) {
			break
		}
	}
	return 0
}

func (fs *tinyFS) ReadDirPlus(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	for i, e := range fs.entries(r.NodeID) {
		if uint64(i) < in.Offset {
			continue
		}
		var ent fuseproto.EntryOut
		fs.attr(e.ino, &ent.Attr)
		if e.name != "." && e.name != ".." {
			ent.NodeID = e.ino
			ent.SetEntryTimeout(time.Second)
			ent.SetAttrTimeout(time.Second)
		}
		if !out.AddPlus([]byte(e.name), &ent, uint64(i+1)) {
			break
		}
	}
	return 0
}

func (fs *tinyFS) ReleaseDir(*fuse.Request, *fuseproto.ReleaseIn) syscall.Errno { return 0 }
func (fs *tinyFS) Release(*fuse.Request, *fuseproto.ReleaseIn) syscall.Errno    { return 0 }

func (fs *tinyFS) StatFs(r *fuse.Request, out *fuseproto.StatfsOut) syscall.Errno {
	out.St = fuseproto.Kstatfs{Blocks: 1000, Bfree: 10, Bavail: 10, Files: 5, Bsize: 4096, Namelen: 255, Frsize: 4096}
	return 0
}

func (fs *tinyFS) Destroy() { fs.destroyed.Store(true) }

func TestRealMount(t *testing.T) {
	requireMount(t)
	dir := t.TempDir()
	fs := newTinyFS()
	srv, err := fuse.Mount(dir, fs, &fuse.Options{FsName: "tinyfs", ReadOnly: true, NoExec: true, Debug: os.Getenv("FUSE_DEBUG") != ""})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			_ = fuse.Unmount(dir, true)
		}
	})

	fi, err := os.Stat(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatalf("stat hello: %v", err)
	}
	if fi.Size() != int64(len(helloData)) || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("stat hello: size %d mode %v", fi.Size(), fi.Mode())
	}
	if got := fi.ModTime(); !got.Equal(time.Unix(1700000000, 123456789)) {
		t.Errorf("hello mtime = %v", got)
	}
	got, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil || !bytes.Equal(got, helloData) {
		t.Errorf("read hello = %q, %v", got, err)
	}
	got, err = os.ReadFile(filepath.Join(dir, "big"))
	if err != nil || !bytes.Equal(got, fs.big) {
		t.Errorf("read big: %d bytes, equal=%v, err %v", len(got), bytes.Equal(got, fs.big), err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if e.Name() == "sub" && !e.IsDir() {
			t.Errorf("sub is not a directory in readdir")
		}
	}
	if want := []string{"big", "hello", "sub"}; !slices.Equal(names, want) {
		t.Errorf("readdir names = %v, want %v", names, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat missing: %v, want ENOENT", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("x"), 0o644); err == nil {
		t.Errorf("write to read-only mount succeeded")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks != 1000 || st.Bsize != 4096 {
		t.Errorf("statfs = %+v, %v", st, err)
	}
	if p := srv.Protocol(); p == nil || p.Minor < 12 || !p.Has(fuseproto.InitMaxPages) {
		t.Errorf("negotiated protocol = %+v", p)
	}
	select {
	case <-srv.Ready():
	default:
		t.Error("Ready not closed after INIT")
	}
	if opts := mountOptions(t, dir); !strings.Contains(opts, "ro,nosuid,nodev,noexec") || !strings.Contains(opts, "fuse.e4box tinyfs") {
		t.Errorf("mount options %q", opts)
	}

	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	unmounted = true
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v after unmount", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after unmount")
	}
	if !fs.destroyed.Load() {
		t.Error("Destroy not called")
	}
	select {
	case <-srv.Done():
	default:
		t.Error("Done not closed after Serve returned")
	}
}

// mountedAt reports whether dir is a mount point in /proc/self/mountinfo.
func mountedAt(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// mountOptions returns dir's mountinfo line.
func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return line
		}
	}
	return ""
}

func waitServe(t *testing.T, served <-chan error) error {
	t.Helper()
	select {
	case err := <-served:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// TestRealMountFuseblk mounts as fuseblk on a loop device: the kernel then
// sends DESTROY at unmount and waits for its reply.
func TestRealMountFuseblk(t *testing.T) {
	requireMount(t)
	if _, err := exec.LookPath("losetup"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("losetup missing under CI")
		}
		t.Skip("losetup missing")
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })

	dir := t.TempDir()
	fs := newTinyFS()
	srv, err := fuse.Mount(dir, fs, &fuse.Options{FsName: dev, BlockDevice: true, BlockSize: 4096, ReadOnly: true})
	if err != nil {
		t.Fatalf("Mount fuseblk: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		if mountedAt(t, dir) {
			_ = fuse.Unmount(dir, true)
		}
	})
	got, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil || !bytes.Equal(got, helloData) {
		t.Fatalf("read hello = %q, %v", got, err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || !strings.Contains(string(info), " "+dir+" ") || !strings.Contains(string(info), "fuseblk.e4box "+dev) {
		t.Errorf("mountinfo lacks fuseblk.e4box %s on %s", dev, dir)
	}
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := waitServe(t, served); err != nil {
		t.Errorf("Serve = %v", err)
	}
	if !fs.destroyed.Load() {
		t.Error("Destroy not called")
	}
}

// TestRealMountAbort aborts the connection through fusectl: Serve returns
// ErrAborted and detaches the dead mount.
func TestRealMountAbort(t *testing.T) {
	requireMount(t)
	dir := t.TempDir()
	srv, err := fuse.Mount(dir, newTinyFS(), &fuse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		if mountedAt(t, dir) {
			_ = fuse.Unmount(dir, true)
		}
	})
	abort := fuseConnAbortPath(t, dir)
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		_ = fuse.Unmount(dir, true)
		t.Fatalf("abort: %v", err)
	}
	if err := waitServe(t, served); !errors.Is(err, fuse.ErrAborted) {
		t.Errorf("Serve = %v, want ErrAborted", err)
	}
	if mountedAt(t, dir) {
		t.Error("aborted mount still attached")
		_ = fuse.Unmount(dir, true)
	}
}

func TestMountErrors(t *testing.T) {
	requireMount(t)
	if _, err := fuse.Mount(filepath.Join(t.TempDir(), "missing"), newTinyFS(), nil); err == nil ||
		!errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "mountpoint") {
		t.Errorf("missing mountpoint: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := fuse.Mount(file, newTinyFS(), nil); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("file as mountpoint: %v", err)
	}
	if _, err := fuse.Mount(t.TempDir(), newTinyFS(), &fuse.Options{BlockDevice: true, FsName: file}); err == nil ||
		!strings.Contains(err.Error(), "block device") {
		t.Errorf("fuseblk on a regular file: %v", err)
	}
}
