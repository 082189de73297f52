package fusetest

import (
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// IomapInit is the INIT a kernel with the seed fuse-iomap series sends when
// its enable_iomap parameter is on: minor 44, every capability of
// DefaultInit, and FUSE_IOMAP, IOMAP_DIRECTIO and IOMAP_PAGECACHE in flags2.
func IomapInit() fuseproto.InitIn {
	in := DefaultInit()
	in.Minor = fuseproto.IomapMinorVersion
	in.Flags, in.Flags2 = (in.Flags64() | fuseproto.InitIomapAll).Split()
	return in
}

// IomapDevices is the kernel's per-connection table of iomap block
// devices. Register checks an fd as the seed kernel does and returns the
// cookie (the table index).
type IomapDevices struct {
	// AnyFile accepts any open file, not only block devices (the kernel
	// answers ENODEV), for tests that have no block device at hand.
	AnyFile bool
	// Fuseblk says the mount is fuseblk: the kernel registered the mounted
	// device as cookie 0 at INIT, so added devices start at 1.
	Fuseblk bool

	mu  sync.Mutex // protects fds
	fds []int32
}

// maxIomapDevices is the seed kernel's limit, PAGE_SIZE/4 with 4 KiB pages.
const maxIomapDevices = 1024

// Register adds fd: EBADF if it is not open, ENODEV if it is not a block
// device, EMFILE when the table is full.
func (d *IomapDevices) Register(fd int32) (uint32, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fd), &st); err != nil {
		return fuseproto.IomapDevNull, syscall.EBADF
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFBLK && !d.AnyFile {
		return fuseproto.IomapDevNull, syscall.ENODEV
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	limit := maxIomapDevices
	if d.Fuseblk {
		limit--
	}
	if len(d.fds) >= limit {
		return fuseproto.IomapDevNull, syscall.EMFILE
	}
	d.fds = append(d.fds, fd)
	cookie := uint32(len(d.fds) - 1)
	if d.Fuseblk {
		cookie++
	}
	return cookie, 0
}

// Registered returns the fds added through Register, in cookie order.
func (d *IomapDevices) Registered() []int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int32(nil), d.fds...)
}

// AddIomapDeviceHook returns a Conn write hook that plays the seed kernel's
// handling of FUSE_NOTIFY_ADD_IOMAP_DEVICE: an exact payload size and a
// zero reserved field (else EINVAL), then register decides the cookie or
// the errno, and the cookie is stored through the payload's map_dev
// pointer, as the kernel's put_user() does during the write. Other
// messages pass untouched.
//
// Storing through the pointer is only possible in-process: the message was
// written by this process and the pointer is into its own heap. A harness
// in another process must return the cookie out of band.
func AddIomapDeviceHook(register func(fd int32) (uint32, syscall.Errno)) func(msg []byte) error {
	return func(msg []byte) error {
		h, body := Reply(msg)
		if h.Unique != 0 || h.Error != int32(fuseproto.NotifyAddIomapDevice) {
			return nil
		}
		if len(body) != int(unsafe.Sizeof(fuseproto.IomapAddDeviceOut{})) {
			return syscall.EINVAL
		}
		out := Decode[fuseproto.IomapAddDeviceOut](body)
		if out.Reserved != 0 {
			return syscall.EINVAL
		}
		cookie, errno := register(out.Fd)
		if errno != 0 {
			return errno
		}
		if out.MapDev == nil {
			return syscall.EFAULT
		}
		*out.MapDev = cookie // put_user()
		return nil
	}
}

// StartIomap runs fs as an iomap session: Options.Iomap (default all modes)
// with kernel support injected, INIT answered as IomapInit, and a write hook
// playing the kernel's device registration against the returned table
// (which accepts any open file). It fails the test unless iomap was
// negotiated.
func StartIomap(t testing.TB, fs fuse.FileSystem, opts *fuse.Options) (*Session, *IomapDevices) {
	t.Helper()
	o := fuse.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Iomap == 0 {
		o.Iomap = fuseproto.IomapSupportAll
	}
	if o.IomapDiscover == nil {
		o.IomapDiscover = func() (fuseproto.IomapSupport, error) { return fuseproto.IomapSupportAll, nil }
	}
	s := StartNoInit(t, fs, &o)
	devs := &IomapDevices{AnyFile: true, Fuseblk: o.BlockDevice}
	s.Conn.SetWriteHook(AddIomapDeviceHook(devs.Register))
	in := IomapInit()
	if h, _ := s.Init(&in); h.Error != 0 {
		t.Fatalf("fusetest: INIT failed: errno %d", -h.Error)
	}
	if p := s.Server.Protocol(); p == nil || !p.Has(fuseproto.InitIomap) {
		t.Fatalf("fusetest: iomap not negotiated")
	}
	return s, devs
}
