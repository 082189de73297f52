package fusetest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// addDevice builds the notification a server writes, with map_dev
// pointing at cookie.
func addDevice(fd int32, reserved uint32, cookie *uint32) []byte {
	out := fuseproto.IomapAddDeviceOut{Fd: fd, Reserved: reserved, MapDev: cookie}
	h := fuseproto.OutHeader{Len: 16 + uint32(unsafe.Sizeof(out)), Error: int32(fuseproto.NotifyAddIomapDevice)}
	return append(Bytes(&h), Bytes(&out)...)
}

func TestAddIomapDeviceHook(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int32(f.Fd())

	devs := &IomapDevices{AnyFile: true}
	hook := AddIomapDeviceHook(devs.Register)
	cookie := fuseproto.IomapDevNull
	if err := hook(addDevice(fd, 0, &cookie)); err != nil || cookie != 0 {
		t.Fatalf("first device: %v, cookie %#x", err, cookie)
	}
	if err := hook(addDevice(fd, 0, &cookie)); err != nil || cookie != 1 {
		t.Fatalf("second device: %v, cookie %#x", err, cookie)
	}

	cookie = 77
	for _, c := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"reserved set", addDevice(fd, 1, &cookie), syscall.EINVAL},
		{"short payload", addDevice(fd, 0, &cookie)[:20], syscall.EINVAL},
		{"NULL pointer", addDevice(fd, 0, nil), syscall.EFAULT},
		{"closed fd", addDevice(1<<30, 0, &cookie), syscall.EBADF},
	} {
		if err := hook(c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if cookie != 77 {
		t.Errorf("a refused registration wrote cookie %d", cookie)
	}
	// Replies and other notifications pass.
	if err := hook(Hex("10000000 00000000", "0500000000000000")); err != nil {
		t.Errorf("reply: %v", err)
	}
	if err := hook(Hex("10000000 02000000", "0000000000000000")); err != nil {
		t.Errorf("INVAL_INODE: %v", err)
	}

	// The seed kernel takes block devices only.
	strict := &IomapDevices{}
	if _, errno := strict.Register(fd); errno != syscall.ENODEV {
		t.Errorf("regular file: %v, want ENODEV", errno)
	}
	// fuseblk: the mounted device holds 0; the table fills at 1024.
	blk := &IomapDevices{AnyFile: true, Fuseblk: true}
	for i := range maxIomapDevices - 1 {
		if c, errno := blk.Register(fd); errno != 0 || c != uint32(i+1) {
			t.Fatalf("device %d: cookie %d, %v", i, c, errno)
		}
	}
	if _, errno := blk.Register(fd); errno != syscall.EMFILE {
		t.Errorf("past the limit: %v, want EMFILE", errno)
	}
}

func TestWriteHook(t *testing.T) {
	c := NewConn()
	var seen []byte
	c.SetWriteHook(func(msg []byte) error { seen = msg; return syscall.ENOENT })
	if err := c.WriteReply([][]byte{[]byte("ab"), []byte("c")}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("WriteReply = %v, want the hook's error", err)
	}
	if string(seen) != "abc" {
		t.Errorf("hook saw %q", seen)
	}
	if m, ok := c.Next(time.Second); !ok || string(m) != "abc" {
		t.Errorf("message not captured: %q", m)
	}
	c.SetWriteHook(nil)
	if err := c.WriteReply([][]byte{[]byte("x")}); err != nil {
		t.Errorf("without hook: %v", err)
	}
}
