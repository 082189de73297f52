// Package iomaptest plays the kernel side of fuse-iomap (the seed ABI of
// fuseproto/iomap.go) against a FUSE filesystem running on an in-memory
// transport (fuse/fusetest), so a server can be tested without a kernel
// carrying the series.
//
// A Kernel sends the wire bytes the seed kernel sends — INIT offering the
// iomap flags (fusetest.StartIomap), device registration through the
// notification, IOMAP_BEGIN/END/IOEND with the opflags of each kernel
// path — and models what the kernel does with the answers:
//   - every BEGIN reply is checked like fuse_iomap_validate (the exact
//     48-byte length, fuseproto.ValidateBeginOut in the kernel's order,
//     then device resolution: an unregistered cookie is ENODEV) and used
//     as iomap_iter does (iomap/srcmap selection, trimming to the
//     request);
//   - a page cache per file (uptodate and dirty blocks) with buffered
//     reads and writes, the post-EOF gap zeroing of extending writes, short
//     copies, and writeback (WRITE|DIRECT mappings cached like the wpc,
//     ioends merged and clamped to EOF, IOEND with UNWRITTEN/APPEND);
//   - O_DIRECT reads and writes with their IOEND, and the ENOSYS fallback
//     to FUSE_READ/FUSE_WRITE;
//   - truncate and fallocate with the kernel's zeroing around FUSE_SETATTR
//     and FUSE_FALLOCATE, FIEMAP (iomap_fiemap) and SEEK_DATA/SEEK_HOLE
//     (iomap_seek_*, unwritten ranges checked against the page cache);
//   - an in-core i_size, which the server learns only through END,
//     IOEND, SETATTR and FALLOCATE.
//
// The data I/O is done by the harness itself, with pread/pwrite on the
// registered fd at the returned addresses: wrong mappings corrupt files
// the way they would under a real kernel. The seed kernel registers only
// block devices; a test Kernel accepts a regular file (the image) through
// fusetest.IomapDevices.AnyFile, which a real kernel never does.
//
// The page cache is modelled per filesystem block (the kernel tracks
// per-block uptodate and dirty state in iomap folios); readahead beyond
// the request, large folios and concurrency are not modelled.
//
// Classic (in classic.go) drives the same operations through the classic
// FUSE opcodes, for differential tests.
//
// It may import fuse, fuse/fusetest and fuseproto (and the standard
// library); it knows nothing about the filesystem behind the session.
package iomaptest

import (
	"fmt"
	"math"
	"syscall"
	"unsafe"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

// Kernel is the simulated kernel of one iomap session. It is not safe for
// concurrent use (the kernel's inode locks are modelled by running one
// operation at a time).
type Kernel struct {
	S    *fusetest.Session
	Devs *fusetest.IomapDevices
	// BlockSize is i_blocksize: fuse_attr.blksize of the files, the fs
	// block size.
	BlockSize int64
	// Inject, if set, may rewrite each BEGIN reply (header included)
	// before it is checked: tests feed malformed replies through it.
	Inject func(in *fuseproto.IomapBeginIn, reply []byte) []byte
	// ShortCopy, if set, is asked before each buffered write how many
	// bytes of it copy from user memory (a fault ends the copy there);
	// a negative answer copies everything.
	ShortCopy func(off int64, n int) int

	// OnMap, if set, sees every mapping the kernel accepted and uses.
	OnMap func(nodeid uint64, op fuseproto.IomapOpFlags, m Mapping)

	// Rejected collects every BEGIN reply the checks refused.
	Rejected []error
	Stats    Stats

	files map[uint64]*file
	uniq  uint64 // last unique of an upcall: odd, far from Session.Do's
}

// Stats counts upcalls and what they answered.
type Stats struct {
	Begin    map[fuseproto.IomapOpFlags]int
	Types    map[fuseproto.IomapType]int
	End      int
	Ioend    int
	Fallback int // ENOSYS answers that fell back to FUSE_READ/FUSE_WRITE
}

// New returns a kernel for a session started with fusetest.StartIomap.
func New(s *fusetest.Session, devs *fusetest.IomapDevices, blockSize int64) *Kernel {
	return &Kernel{S: s, Devs: devs, BlockSize: blockSize, files: map[uint64]*file{}, uniq: 1<<40 | 1,
		Stats: Stats{Begin: map[fuseproto.IomapOpFlags]int{}, Types: map[fuseproto.IomapType]int{}}}
}

// Mapping is a checked BEGIN answer as iomap_iter uses it.
type Mapping struct {
	Offset, Length int64
	Type           fuseproto.IomapType
	Flags          fuseproto.IomapFlags
	Addr           uint64
	fd             int // resolved device
}

// End is the first byte past the mapping.
func (m *Mapping) End() int64 { return m.Offset + m.Length }

// DeviceError is a mapping whose device cookie is not registered: the
// kernel answers ENODEV.
type DeviceError struct {
	Cookie uint32
	Out    fuseproto.IomapBeginOut
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("iomap begin reply names unregistered device %#x", e.Cookie)
}

func (e *DeviceError) Unwrap() error { return syscall.ENODEV }

// LengthError is a BEGIN success reply that is not exactly 48 bytes: the
// kernel's write(2) of it fails (EINVAL) and the request ends with EIO.
type LengthError struct{ Len int }

func (e *LengthError) Error() string {
	return fmt.Sprintf("iomap begin reply payload is %d bytes, want 48", e.Len)
}

func (e *LengthError) Unwrap() error { return syscall.EIO }

// Begin sends FUSE_IOMAP_BEGIN for f and returns the mapping iomap_iter
// would use (iomap, and srcmap for an out-of-place write), or the error
// the kernel's I/O path would see.
func (k *Kernel) begin(f *file, op fuseproto.IomapOpFlags, pos, count int64) (iomap, srcmap Mapping, err error) {
	in := fuseproto.IomapBeginIn{Opflags: op, AttrIno: f.ino, Pos: uint64(pos), Count: uint64(count)}
	k.Stats.Begin[op]++
	out, err := k.sendBegin(f.nodeid, &in)
	if err != nil {
		return Mapping{}, Mapping{}, err
	}
	// loff_t arithmetic: a mapping reaching past 2^63 ends there.
	length := int64(min(out.Length, uint64(math.MaxInt64)-out.Offset))
	read := Mapping{Offset: int64(out.Offset), Length: length, Type: out.ReadType,
		Flags: out.ReadFlags, Addr: out.ReadAddr}
	if read.fd, err = k.resolve(out.ReadDev, out); err != nil {
		return Mapping{}, Mapping{}, k.reject(err)
	}
	srcmap = Mapping{Type: fuseproto.IomapTypeHole, Addr: fuseproto.IomapNullAddr}
	iomap = read
	if out.OutOfPlace(op) {
		iomap = Mapping{Offset: read.Offset, Length: read.Length, Type: out.WriteType,
			Flags: out.WriteFlags, Addr: out.WriteAddr}
		if iomap.fd, err = k.resolve(out.WriteDev, out); err != nil {
			return Mapping{}, Mapping{}, k.reject(err)
		}
		srcmap = read
	}
	k.Stats.Types[iomap.Type]++
	if k.OnMap != nil {
		k.OnMap(f.nodeid, op, iomap)
	}
	return iomap, srcmap, nil
}

// sendBegin does the round trip and the kernel's checks of the reply.
func (k *Kernel) sendBegin(nodeid uint64, in *fuseproto.IomapBeginIn) (*fuseproto.IomapBeginOut, error) {
	msg := k.S.Roundtrip(fusetest.Request(fuseproto.OpIomapBegin, k.unique(), nodeid, fusetest.Bytes(in)))
	if k.Inject != nil {
		msg = k.Inject(in, msg)
	}
	out, err := CheckBeginReply(in, msg, nil)
	if _, plain := err.(syscall.Errno); err != nil && !plain {
		k.reject(err) // the server's own errors are answers, not rejections
	}
	return out, err
}

func (k *Kernel) reject(err error) error {
	k.Rejected = append(k.Rejected, err)
	return err
}

// CheckBeginReply applies the seed kernel's checks to a BEGIN reply
// message (header included) for request in: an error reply is that
// errno; a success must be exactly 48 bytes and pass
// fuseproto.ValidateBeginOut; then, if registered is not nil, the read
// device (and the write device of an out-of-place write) must be in it.
func CheckBeginReply(in *fuseproto.IomapBeginIn, msg []byte, registered func(cookie uint32) bool) (*fuseproto.IomapBeginOut, error) {
	h, body := fusetest.Reply(msg)
	if len(msg) < int(unsafe.Sizeof(h)) || int(h.Len) != len(msg) {
		return nil, &LengthError{Len: len(body)}
	}
	if h.Error != 0 {
		if h.Error > 0 || h.Error < -4095 || len(body) != 0 {
			return nil, &LengthError{Len: len(body)}
		}
		return nil, syscall.Errno(-h.Error)
	}
	if len(body) != int(unsafe.Sizeof(fuseproto.IomapBeginOut{})) {
		return nil, &LengthError{Len: len(body)}
	}
	out := fusetest.Decode[fuseproto.IomapBeginOut](body)
	if err := fuseproto.ValidateBeginOut(in.Opflags, in.Pos, &out); err != nil {
		return nil, err
	}
	if registered != nil {
		if !registered(out.ReadDev) {
			return nil, &DeviceError{Cookie: out.ReadDev, Out: out}
		}
		if out.OutOfPlace(in.Opflags) && !registered(out.WriteDev) {
			return nil, &DeviceError{Cookie: out.WriteDev, Out: out}
		}
	}
	return &out, nil
}

// resolve maps a device cookie to the registered fd (fuse_iomap_find_dev).
func (k *Kernel) resolve(cookie uint32, out *fuseproto.IomapBeginOut) (int, error) {
	fds := k.Devs.Registered()
	idx := int64(cookie)
	if k.Devs.Fuseblk {
		idx-- // cookie 0 is the fuseblk device, which this harness lacks
	}
	if idx < 0 || idx >= int64(len(fds)) {
		return -1, &DeviceError{Cookie: cookie, Out: *out}
	}
	return int(fds[idx]), nil
}

// Registered reports whether cookie names a registered device.
func (k *Kernel) Registered(cookie uint32) bool {
	_, err := k.resolve(cookie, &fuseproto.IomapBeginOut{})
	return err == nil
}

// end sends FUSE_IOMAP_END when iomap_end would (§2.5 of the spec): the
// mapping asked for it, a write or zeroing grew i_size, or it was short.
func (k *Kernel) end(f *file, op fuseproto.IomapOpFlags, pos, count, written int64, m *Mapping, sizeChanged bool) error {
	flags := m.Flags
	if sizeChanged {
		flags |= fuseproto.IomapFSizeChanged
	}
	wz := op&(fuseproto.IomapOpWrite|fuseproto.IomapOpZero) != 0
	if flags&fuseproto.IomapFWantIomapEnd == 0 && !(wz && (sizeChanged || written < count)) {
		return nil
	}
	in := fuseproto.IomapEndIn{Opflags: op, AttrIno: f.ino, Pos: uint64(pos), Count: uint64(count),
		Written: written, MapLength: uint64(m.Length), MapAddr: m.Addr, MapType: m.Type, MapFlags: flags}
	k.Stats.End++
	return k.headerOnly(fuseproto.OpIomapEnd, f.nodeid, fusetest.Bytes(&in))
}

// ioend sends FUSE_IOMAP_IOEND when the kernel would: on an error, or for
// written bytes needing SHARED, UNWRITTEN or APPEND handling.
func (k *Kernel) ioend(f *file, flags fuseproto.IomapIoendFlags, pos, written int64, ioErr syscall.Errno) error {
	if pos+written > f.size {
		flags |= fuseproto.IomapIoendAppend
	}
	need := fuseproto.IomapIoendShared | fuseproto.IomapIoendUnwritten | fuseproto.IomapIoendAppend
	if ioErr == 0 && (written == 0 || flags&need == 0) {
		return nil
	}
	in := fuseproto.IomapIoendIn{Ioendflags: flags, Error: -int32(ioErr), AttrIno: f.ino, Pos: uint64(pos),
		NewAddr: fuseproto.IomapNullAddr, Written: uint32(written)}
	k.Stats.Ioend++
	return k.headerOnly(fuseproto.OpIomapIoend, f.nodeid, fusetest.Bytes(&in))
}

// headerOnly sends a request whose reply must be a bare header.
func (k *Kernel) headerOnly(op fuseproto.Opcode, nodeid uint64, body []byte) error {
	h, payload := fusetest.Reply(k.S.Roundtrip(fusetest.Request(op, k.unique(), nodeid, body)))
	if len(payload) != 0 {
		return &LengthError{Len: len(payload)}
	}
	if h.Error != 0 {
		return syscall.Errno(-h.Error)
	}
	return nil
}

// Destroy is the end of an iomap mount: dirty pages are written back and
// FUSE_DESTROY is sent (the kernel sends it to iomap sessions, fuseblk or
// not) and its reply awaited, so the server flushes before umount
// returns.
func (k *Kernel) Destroy() error {
	if err := k.Sync(); err != nil {
		return err
	}
	return k.headerOnly(fuseproto.OpDestroy, 0, nil)
}

// do sends a classic request and returns its payload or errno.
func (k *Kernel) do(op fuseproto.Opcode, nodeid uint64, parts ...[]byte) ([]byte, error) {
	return doRequest(k.S, op, nodeid, parts...)
}

func doRequest(s *fusetest.Session, op fuseproto.Opcode, nodeid uint64, parts ...[]byte) ([]byte, error) {
	h, payload := s.Do(op, nodeid, parts...)
	if h.Error != 0 {
		return nil, syscall.Errno(-h.Error)
	}
	return payload, nil
}

// unique numbers for iomap upcalls, apart from Session.Do's.
func (k *Kernel) unique() uint64 {
	k.uniq += 2
	return k.uniq
}
