package fuse

// fuse-iomap (seed ABI, fuseproto/iomap.go): discovery, INIT negotiation,
// the three upcalls and block device registration.
//
// Lifecycle of an iomap session:
//
//  1. Before mounting, NewServer (called by Mount) runs discovery when
//     Options.Iomap asks for iomap: the FUSE_DEV_IOC_IOMAP_SUPPORT ioctl on
//     a fresh /dev/fuse. A kernel without the series fails it (ENOTTY) and
//     the session is an ordinary one: IomapStatus says so.
//  2. INIT: the iomap bits go into flags2 (with INIT_EXT) only if the kernel
//     offered them, discovery found support and the options (or the Init
//     hook) want them. Anything else is stripped from the reply.
//  3. After INIT, AddIomapDevice registers the block device and returns the
//     cookie mappings carry. fuseblk mounts use cookie 0 for their own
//     device, which the kernel registered at INIT.
//  4. IOMAP_BEGIN/END/IOEND go to the optional IomapFileSystem methods.
//  5. At unmount the kernel sends DESTROY to iomap sessions (fuseblk or
//     not) and waits for the reply: FileSystem.Destroy runs before umount
//     returns, so it is where the filesystem flushes and closes its block
//     devices.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/fuseproto"
)

// IomapFileSystem is implemented by filesystems that answer fuse-iomap
// upcalls. It is optional: the runtime checks for it with a type assertion,
// so FileSystem and NotImplemented are unchanged. Without it IOMAP_BEGIN
// gets ENOSYS and IOMAP_END/IOMAP_IOEND are acknowledged with 0, as libfuse
// does.
//
// Each request's r.NodeID is the inode's nodeid and in.AttrIno the
// fuse_attr.ino last reported for it. Semantics per opflags are in the
// seed spec (§2): the kernel consumes the mappings as described there.
type IomapFileSystem interface {
	// IomapBegin maps [in.Pos, in.Pos+in.Count) for the operation in
	// in.Opflags. out arrives zeroed except WriteType, preset to
	// PURE_OVERWRITE (write through the read mapping); set the write
	// mapping only for an out-of-place write. A reply the kernel would
	// reject (fuseproto.ValidateBeginOut) is logged and answered EIO.
	IomapBegin(r *Request, in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno

	// IomapEnd reports how much of a mapping was used, when the mapping
	// asked for it (F_WANT_IOMAP_END), a write grew i_size
	// (F_SIZE_CHANGED) or a write was short. The kernel treats any nonzero
	// errno, ENOSYS included, as a failure.
	IomapEnd(r *Request, in *fuseproto.IomapEndIn) syscall.Errno

	// IomapIoend reports completed write I/O (O_DIRECT or writeback):
	// convert unwritten extents, remap COW staging, record an append, and
	// persist that before returning. It runs in kernel writeback context:
	// it must never wait for writeback of this mount.
	IomapIoend(r *Request, in *fuseproto.IomapIoendIn) syscall.Errno
}

// Iomap errors.
var (
	// ErrNoKernelIomap means the running kernel has no fuse-iomap: the
	// discovery ioctl is unknown (ENOTTY, EINVAL) or not permitted (EPERM).
	ErrNoKernelIomap = errors.New("fuse: kernel has no fuse-iomap")
	// ErrIomapNotNegotiated is returned by AddIomapDevice when INIT did not
	// turn iomap on.
	ErrIomapNotNegotiated = errors.New("fuse: fuse-iomap was not negotiated at INIT")
)

// NoKernelIomapMessage is IomapStatus on a kernel without fuse-iomap; the
// CLI logs it at verbose level.
const NoKernelIomapMessage = "kernel has no fuse-iomap; using the classic read/write path"

// DiscoverIomap asks the kernel which fuse-iomap modes it supports, through
// the FUSE_DEV_IOC_IOMAP_SUPPORT ioctl on a freshly opened /dev/fuse; call
// it before mounting. Support is never inferred from the protocol minor,
// which mainline reused. A kernel without the series answers ENOTTY (or
// EINVAL), an unprivileged caller gets EPERM: those return 0 and an error
// wrapping ErrNoKernelIomap. A kernel with the series but enable_iomap off
// returns 0 and nil.
func DiscoverIomap() (fuseproto.IomapSupport, error) {
	fd, err := openDevFuse()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var arg fuseproto.IomapSupportOut
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd),
		uintptr(fuseproto.DevIocIomapSupport), uintptr(unsafe.Pointer(&arg)))
	switch errno {
	case 0:
		return arg.Flags & fuseproto.IomapSupportAll, nil
	case syscall.ENOTTY, syscall.EINVAL, syscall.EPERM:
		return 0, fmt.Errorf("%w (FUSE_DEV_IOC_IOMAP_SUPPORT: %v)", ErrNoKernelIomap, errno)
	}
	return 0, fmt.Errorf("fuse: FUSE_DEV_IOC_IOMAP_SUPPORT: %w", errno)
}

// iomapState is a Server's fuse-iomap state.
type iomapState struct {
	kernel fuseproto.IomapSupport // discovery result; 0 if not run or failed
	err    error                  // discovery error

	mu sync.Mutex // protects devs; held across a registration write
	// devs caches the cookie of each registered fd. The *uint32 is the
	// memory the kernel wrote the cookie into: heap-allocated and kept
	// reachable here, so it was live and unmoved during the write.
	devs map[int]*uint32
}

// discoverIomap runs discovery when the options ask for iomap.
func (s *Server) discoverIomap() {
	if s.opts.Iomap == 0 {
		return
	}
	discover := s.opts.IomapDiscover
	if discover == nil {
		discover = DiscoverIomap
	}
	s.iomap.kernel, s.iomap.err = discover()
	if s.iomap.err != nil {
		s.iomap.kernel = 0
	}
	if s.iomap.kernel == 0 {
		s.log.Debug("fuse: "+NoKernelIomapMessage, "err", s.iomap.err)
	} else {
		s.log.Debug("fuse: kernel supports fuse-iomap", "modes", s.iomap.kernel.String())
	}
}

// iomapWant is the iomap INIT bits to request: what Options.Iomap asks for
// and the kernel supports. IOMAP is implied by the other two modes.
func (s *Server) iomapWant() fuseproto.InitFlags {
	if s.opts.Iomap == 0 || s.iomap.kernel&fuseproto.IomapSupportBasics == 0 {
		return 0
	}
	return ((s.opts.Iomap | fuseproto.IomapSupportBasics) & s.iomap.kernel).InitFlags()
}

// iomapFilter strips from an INIT reply the iomap bits that discovery does
// not back, DIRECTIO and PAGECACHE without IOMAP, and all of them without
// INIT_EXT (they travel in flags2).
func iomapFilter(f fuseproto.InitFlags, kernel fuseproto.IomapSupport) fuseproto.InitFlags {
	f &^= fuseproto.InitIomapAll &^ kernel.InitFlags()
	if f&fuseproto.InitIomap == 0 || f&fuseproto.InitExt == 0 {
		f &^= fuseproto.InitIomapAll
	}
	return f
}

// IomapStatus describes the session's fuse-iomap state in one line, for the
// CLI's verbose output: NoKernelIomapMessage when the kernel lacks it.
func (s *Server) IomapStatus() string {
	if s.opts.Iomap == 0 {
		return "fuse-iomap not requested; using the classic read/write path"
	}
	if s.iomap.kernel == 0 {
		return NoKernelIomapMessage
	}
	p := s.proto.Load()
	switch {
	case p == nil:
		return "kernel supports fuse-iomap (" + s.iomap.kernel.String() + "); INIT not answered yet"
	case p.KernelFlags&fuseproto.InitIomap == 0:
		return "kernel supports fuse-iomap but did not offer it at INIT (fuse enable_iomap off?); using the classic read/write path"
	case p.Flags&fuseproto.InitIomap == 0:
		return "filesystem declined fuse-iomap at INIT; using the classic read/write path"
	}
	return "fuse-iomap on: " + (p.Flags & fuseproto.InitIomapAll).String()
}

// AddIomapDevice registers the block device open as fd with the kernel
// (FUSE_NOTIFY_ADD_IOMAP_DEVICE) and returns the cookie mappings on it
// carry. Call it after INIT turned iomap on, from the process that owns fd
// (the kernel resolves fd in the writer's table). The cookie is cached per
// fd, so repeated calls return it without another registration; the kernel
// keeps the device until the connection ends.
//
// On a fuseblk mount the kernel registered the mounted device as cookie 0
// (IomapDevFuseblk) at INIT: an fd on that same device gets 0 without a
// notification.
//
// Errors: ErrNotInitialized before INIT, ErrIomapNotNegotiated without
// iomap, ENOSYS if the negotiated minor is below 44 (as libfuse), and the
// kernel's verdict (EINVAL, EBADF, ENODEV for a non-block fd, EMFILE).
func (s *Server) AddIomapDevice(fd int) (uint32, error) {
	p := s.proto.Load()
	switch {
	case p == nil:
		return fuseproto.IomapDevNull, ErrNotInitialized
	case !p.Has(fuseproto.InitIomap):
		return fuseproto.IomapDevNull, ErrIomapNotNegotiated
	case p.Minor < fuseproto.IomapMinorVersion:
		return fuseproto.IomapDevNull, fmt.Errorf("fuse: add iomap device: protocol 7.%d: %w", p.Minor, syscall.ENOSYS)
	case fd < 0:
		return fuseproto.IomapDevNull, fmt.Errorf("fuse: add iomap device: fd %d: %w", fd, syscall.EBADF)
	}

	s.iomap.mu.Lock()
	defer s.iomap.mu.Unlock()
	if c, ok := s.iomap.devs[fd]; ok {
		return *c, nil
	}
	if s.iomap.devs == nil {
		s.iomap.devs = map[int]*uint32{}
	}
	if s.opts.BlockDevice && sameBlockDevice(fd, s.opts.FsName) {
		c := fuseproto.IomapDevFuseblk
		s.iomap.devs[fd] = &c
		return c, nil
	}

	// The kernel put_user()s the cookie through msg.MapDev during the
	// write: it must be a live heap word (Go never moves heap objects),
	// kept reachable until the write returns.
	cookie := new(uint32)
	*cookie = fuseproto.IomapDevNull
	msg := fuseproto.IomapAddDeviceOut{Fd: int32(fd), MapDev: cookie}
	hdr := fuseproto.OutHeader{
		Len:   uint32(unsafe.Sizeof(fuseproto.OutHeader{}) + unsafe.Sizeof(msg)),
		Error: int32(fuseproto.NotifyAddIomapDevice),
	}
	if s.opts.Debug {
		s.log.Debug("fuse: notify", "code", "NOTIFY_ADD_IOMAP_DEVICE", "len", hdr.Len, "fd", fd)
	}
	err := s.conn.WriteReply([][]byte{structBytes(&hdr), structBytes(&msg)})
	runtime.KeepAlive(&msg)
	runtime.KeepAlive(cookie)
	if err != nil {
		return fuseproto.IomapDevNull, fmt.Errorf("fuse: add iomap device fd %d: %w", fd, err)
	}
	if *cookie == fuseproto.IomapDevNull {
		return fuseproto.IomapDevNull, fmt.Errorf("fuse: add iomap device fd %d: kernel accepted it but returned no cookie: %w", fd, syscall.EIO)
	}
	s.iomap.devs[fd] = cookie
	return *cookie, nil
}

// sameBlockDevice reports whether fd and path are the same block device.
func sameBlockDevice(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Mode&unix.S_IFMT == unix.S_IFBLK && b.Mode&unix.S_IFMT == unix.S_IFBLK && a.Rdev == b.Rdev
}

// Handlers. BEGIN answers exactly 48 bytes; END and IOEND are header-only.

func doIomapBegin(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	fs, ok := s.fs.(IomapFileSystem)
	if !ok {
		return nil, nil, syscall.ENOSYS
	}
	in := argAs[fuseproto.IomapBeginIn](c)
	out := outStruct[fuseproto.IomapBeginOut](c)
	out.WriteType = fuseproto.IomapTypePureOverwrite
	if e := fs.IomapBegin(&c.Request, in, out); e != 0 {
		return nil, nil, e
	}
	// The kernel would fail the I/O with EIO (and WARN); say why here.
	if err := fuseproto.ValidateBeginOut(in.Opflags, in.Pos, out); err != nil {
		s.log.Error("fuse: invalid IOMAP_BEGIN reply; replying EIO", "node", c.NodeID,
			"ino", in.AttrIno, "err", err)
		return nil, nil, syscall.EIO
	}
	return structBytes(out), nil, 0
}

func doIomapEnd(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	fs, ok := s.fs.(IomapFileSystem)
	if !ok {
		return nil, nil, 0
	}
	return nil, nil, fs.IomapEnd(&c.Request, argAs[fuseproto.IomapEndIn](c))
}

func doIomapIoend(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	fs, ok := s.fs.(IomapFileSystem)
	if !ok {
		return nil, nil, 0
	}
	return nil, nil, fs.IomapIoend(&c.Request, argAs[fuseproto.IomapIoendIn](c))
}
