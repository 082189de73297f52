package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/internal/testutil"
)

// dumpe2fsState returns the "Filesystem state:" value of img.
func dumpe2fsState(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "dumpe2fs"), "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Filesystem state:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestMountReadWrite: without -o, a writable image is mounted read-write;
// changes made through it are on the image after unmount, which leaves it
// clean; a second mount of the image is refused while it is mounted.
func TestMountReadWrite(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireE2fsprogs(t)
	f := newFixture(t)
	mnt := f.mnt()
	if r := e4box(t, "mount", f.img, mnt); r.code != 0 {
		t.Fatalf("mount: %+v", r)
	}
	t.Cleanup(func() { unmountAndWait(t, mnt) })
	if line := mountLine(t, mnt); !strings.Contains(line, " fuse.e4box rw,") {
		t.Fatalf("mount line %q, want rw", line)
	}
	if st := dumpe2fsState(t, f.img); st != "not clean" {
		t.Errorf("state while mounted read-write: %q, want not clean", st)
	}
	// A second mount of the same image, read-write or read-only.
	other := filepath.Join(f.dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	e4box(t, "mount", f.img, other).wantError(t, `img\.ext4: image busy: another e4box mount is using it$`)
	e4box(t, "mount", "-o", "ro", f.img, other).wantError(t, `img\.ext4: image busy`)

	data := bytes.Repeat([]byte("0123456789"), 50000)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(mnt, "new"), data, 0o600))
	must(os.Mkdir(filepath.Join(mnt, "dir"), 0o750))
	must(os.Rename(filepath.Join(mnt, "hello.txt"), filepath.Join(mnt, "dir", "hello.txt")))
	fh, err := os.OpenFile(filepath.Join(mnt, "dir", "hello.txt"), os.O_WRONLY|os.O_APPEND, 0)
	must(err)
	_, err = fh.WriteString("appended\n")
	must(err)
	must(fh.Close())
	must(os.Remove(filepath.Join(mnt, "sub", "data")))
	unmountAndWait(t, mnt)

	testutil.E2fsckClean(t, f.img)
	if st := dumpe2fsState(t, f.img); st != "clean" {
		t.Errorf("state after unmount: %q, want clean", st)
	}
	// The offline reader and the kernel see the changes.
	if r := e4box(t, "cat", f.img, "/dir/hello.txt"); r.stdout != "hello, e4box\nappended\n" {
		t.Errorf("cat /dir/hello.txt: %+v", r)
	}
	k := t.TempDir()
	testutil.LoopMount(t, f.img, k, true)
	got, err := os.ReadFile(filepath.Join(k, "new"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("kernel reads /new: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(k, "sub", "data")); !os.IsNotExist(err) {
		t.Errorf("kernel still sees /sub/data: %v", err)
	}
}

// TestMountReadOnlyFallback: a filesystem ext4 cannot write (here with
// the quota feature) is mounted read-only with a warning by default, and
// -o rw fails naming the reason.
func TestMountReadOnlyFallback(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	f := newFixture(t, "-O", "quota")
	mnt := f.mnt()
	e4box(t, "mount", "-o", "rw", f.img, mnt).wantError(t, `cannot mount read-write: .*quota`)
	if mounted(t, mnt) {
		t.Fatal("refused mount left a mount behind")
	}
	r := e4box(t, "mount", f.img, mnt)
	if r.code != 0 {
		t.Fatalf("mount: %+v", r)
	}
	t.Cleanup(func() { unmountAndWait(t, mnt) })
	if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, "mounting read-only") || !strings.Contains(r.stderr, "quota") {
		t.Errorf("no read-only warning naming quota: %q", r.stderr)
	}
	if line := mountLine(t, mnt); !strings.Contains(line, " fuse.e4box ro,") {
		t.Errorf("mount line %q, want ro", line)
	}
	unmountAndWait(t, mnt)
}

// TestMountKilledOrphan: a file unlinked while open survives a server
// killed with SIGKILL on the orphan list, and the next read-write mount
// frees it.
func TestMountKilledOrphan(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireE2fsprogs(t)
	f := newFixture(t)
	mnt := f.mnt()
	cmd := exec.Command(e4boxBin, "mount", "-f", f.img, mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !mounted(t, mnt); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("mount never appeared: %s", stderr.String())
		}
	}
	fh, err := os.Create(filepath.Join(mnt, "doomed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "doomed")); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	fh.Close()
	syscall.Unmount(mnt, syscall.MNT_DETACH)
	if code, out, _ := testutil.E2fsck(f.img, "-fn"); code == 0 {
		t.Errorf("e2fsck finds nothing to repair after the kill (the orphan should be pending):\n%s", out)
	}
	if r := e4box(t, "mount", f.img, mnt); r.code != 0 {
		t.Fatalf("remount: %+v", r)
	}
	unmountAndWait(t, mnt)
	testutil.E2fsckClean(t, f.img)
}

// TestMountErrorsPanic: with errors=panic, corruption met by a
// modification (an xattr block failing its checksum) makes the server
// flush, unmount and exit with status 1 and a message.
func TestMountErrorsPanic(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireE2fsprogs(t)
	f := newFixture(t)
	corruptXattrBlock(t, f)

	mnt := f.mnt()
	cmd := exec.Command(e4boxBin, "mount", "-f", "-o", "errors=panic", f.img, mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); !mounted(t, mnt); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("mount never appeared: %s", stderr.String())
		}
	}
	if err := syscall.Setxattr(filepath.Join(mnt, "hello.txt"), "user.new", []byte("x"), 0); !isErrno(err, syscall.EUCLEAN) {
		t.Errorf("setxattr on a corrupt xattr block: %v, want EUCLEAN", err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("server exit: %v, want status 1", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("server did not stop after the error; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "errors=panic") {
		t.Errorf("stderr does not explain the stop:\n%s", stderr.String())
	}
	if mounted(t, mnt) {
		t.Error("still mounted after errors=panic")
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	}
}

// corruptXattrBlock gives /hello.txt an xattr block and breaks its
// checksum, so the next SETXATTR on it meets corruption.
func corruptXattrBlock(t *testing.T, f *fixture) {
	t.Helper()
	val := filepath.Join(f.dir, "val")
	if err := os.WriteFile(val, bytes.Repeat([]byte("v"), 600), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testutil.RequireTool(t, "debugfs"), "-w", "-R", "ea_set -f "+val+" /hello.txt user.big", f.img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs ea_set: %v\n%s", err, out)
	}
	stat := testutil.Debugfs(t, f.img, "stat /hello.txt")
	_, rest, ok := strings.Cut(stat, "File ACL: ")
	if !ok {
		t.Fatalf("no xattr block:\n%s", stat)
	}
	var blk int64
	if _, err := fmt.Sscan(strings.Fields(rest)[0], &blk); err != nil || blk == 0 {
		t.Fatalf("xattr block %q: %v", strings.Fields(rest)[0], err)
	}
	bs := int64(1024) // newFixture's 32 MiB image gets 1 KiB blocks
	if strings.Contains(testutil.Debugfs(t, f.img, "stats"), "Block size:               4096") {
		bs = 4096
	}
	fh, err := os.OpenFile(f.img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(bytes.Repeat([]byte{0x5a}, 16), blk*bs+bs-40); err != nil {
		t.Fatal(err)
	}
	fh.Close()

}

// TestMountErrorsRemountRO: with errors=remount-ro, corruption met by a
// modification makes the mount itself read-only; it unmounts normally.
func TestMountErrorsRemountRO(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireE2fsprogs(t)
	f := newFixture(t)
	corruptXattrBlock(t, f)
	mnt := f.mnt()
	if r := e4box(t, "mount", "-o", "errors=remount-ro", f.img, mnt); r.code != 0 {
		t.Fatalf("mount: %+v", r)
	}
	t.Cleanup(func() { unmountAndWait(t, mnt) })
	if err := syscall.Setxattr(filepath.Join(mnt, "hello.txt"), "user.new", []byte("x"), 0); !isErrno(err, syscall.EUCLEAN) {
		t.Errorf("setxattr on a corrupt xattr block: %v, want EUCLEAN", err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(mountLine(t, mnt), " fuse.e4box ro,"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("mount not read-only after the error: %q", mountLine(t, mnt))
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); !isErrno(err, syscall.EROFS) {
		t.Errorf("create after remount-ro: %v, want EROFS", err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(got) != "hello, e4box\n" {
		t.Errorf("read after remount-ro: %q, %v", got, err)
	}
	unmountAndWait(t, mnt)
}
