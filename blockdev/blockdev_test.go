package blockdev

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// exercise runs the Device contract against d, which must be writable and
// hold size bytes of zeros.
func exercise(t *testing.T, d Device, size int64) {
	t.Helper()
	if d.Size() != size {
		t.Fatalf("Size = %d, want %d", d.Size(), size)
	}
	msg := []byte("hello, device")
	if n, err := d.WriteAt(msg, 100); err != nil || n != len(msg) {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := make([]byte, len(msg))
	if n, err := d.ReadAt(got, 100); err != nil || n != len(msg) || !bytes.Equal(got, msg) {
		t.Fatalf("ReadAt = %d, %v, %q", n, err, got)
	}
	// A read straddling the end returns the available bytes and io.EOF.
	buf := make([]byte, 10)
	n, err := d.ReadAt(buf, size-4)
	if n != 4 || err != io.EOF {
		t.Fatalf("ReadAt at end = %d, %v; want 4, EOF", n, err)
	}
	if _, err := d.ReadAt(buf, size); err != io.EOF {
		t.Fatalf("ReadAt past end err = %v, want EOF", err)
	}
	if _, err := d.ReadAt(buf, -1); err == nil {
		t.Fatal("ReadAt at negative offset succeeded")
	}
	if _, err := d.WriteAt(buf, size-4); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt past end err = %v, want ENOSPC", err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestMem(t *testing.T) {
	m := NewMem(4096)
	exercise(t, m, 4096)
	if !bytes.Contains(m.Bytes(), []byte("hello, device")) {
		t.Fatal("Bytes does not reflect write")
	}
	ro := NewMemFrom(m.Bytes(), true)
	if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write on ro mem: %v", err)
	}
	m.Close()
	if _, err := m.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(p, false)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, d, 8192)
	d.Close()

	ro, err := Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !ro.ReadOnly() {
		t.Fatal("ReadOnly false")
	}
	if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write on ro file: %v", err)
	}
	got := make([]byte, 13)
	if _, err := ro.ReadAt(got, 100); err != nil || string(got) != "hello, device" {
		t.Fatalf("reopen read %q, %v", got, err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), true); err == nil {
		t.Fatal("Open of missing file succeeded")
	}
}

// TestBlockDevice checks BLKGETSIZE64 and O_EXCL on a loop device.
func TestBlockDevice(t *testing.T) {
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		skipOrFail(t, "losetup not installed")
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", p).CombinedOutput()
	if err != nil {
		skipOrFail(t, "losetup: "+strings.TrimSpace(string(out)))
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })

	d, err := Open(loop, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exercise(t, d, 1<<20)
	// O_EXCL: a second exclusive open of the same device must fail.
	if d2, err := Open(loop, false); err == nil {
		d2.Close()
		t.Fatal("second read-write open of block device succeeded despite O_EXCL")
	}
	ro, err := Open(loop, true)
	if err != nil {
		t.Fatalf("read-only open alongside exclusive one: %v", err)
	}
	ro.Close()
}

func TestFault(t *testing.T) {
	f := NewFault(NewMem(4096))
	f.Add(Rule{Op: OpRead, Off: 1024, Len: 1024, Count: 1})
	f.Add(Rule{Op: OpWrite, Off: 0, Len: 512, Err: syscall.EIO})
	buf := make([]byte, 100)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read outside fault range: %v", err)
	}
	if _, err := f.ReadAt(buf, 1000); !errors.Is(err, ErrInjected) {
		t.Fatalf("overlapping read: %v, want ErrInjected", err)
	}
	if _, err := f.ReadAt(buf, 1000); err != nil {
		t.Fatalf("exhausted rule still fires: %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := f.WriteAt(buf, 500); !errors.Is(err, syscall.EIO) {
			t.Fatalf("write %d: %v, want EIO", i, err)
		}
	}
	if _, err := f.WriteAt(buf, 512); err != nil {
		t.Fatalf("write just past range: %v", err)
	}
	if f.Hits() != 4 {
		t.Fatalf("Hits = %d, want 4", f.Hits())
	}
	f.Add(Rule{Op: OpFlush})
	if err := f.Flush(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Flush: %v", err)
	}
	f.Clear()
	exercise(t, f, 4096)
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
