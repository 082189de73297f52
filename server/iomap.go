package server

// fuse-iomap (seed ABI, fuseproto/iomap.go): the kernel asks for mappings
// with IOMAP_BEGIN, reports their use with IOMAP_END and completed writes
// with IOMAP_IOEND, and does the data I/O itself on a block device the
// server registered. The answers come from the same engine the classic
// READ, WRITE and LSEEK use (engine.go): begin for the mapping, end and
// ioend for completion.
//
// What each BEGIN gets (opflags are the kernel's IOMAP_* bits):
//   - REPORT (FIEMAP, SEEK_DATA/HOLE): the extent or hole at pos, bounded
//     by the extent and the request; INLINE for inline-data files. Never
//     allocates.
//   - reads (0x0, DIRECT): MAPPED, UNWRITTEN or HOLE. An inline-data file
//     answers ENOSYS: O_DIRECT falls back to FUSE_READ; buffered reads in
//     pagecache mode have no fallback (the seed's inline wart).
//   - ZERO: the read mapping, never allocating; an inline file is a HOLE
//     (the kernel can hold no pages of it: it cannot read them).
//   - WRITE (buffered 0x1, page fault 0x9, O_DIRECT and writeback 0x11):
//     holes in the range are allocated as unwritten extents (fresh,
//     zeroed blocks on block-mapped files), flagged NEW|DIRTY; UNWRITTEN
//     or size-extending mappings are DIRTY (completion changes metadata).
//     An inline-data file is moved to blocks first. The write mapping is
//     PURE_OVERWRITE on the same device. NOWAIT answers EAGAIN where the
//     write would allocate or wait for the inode.
//
// Every reply carries the registered device's cookie in both mappings and
// passes fuseproto.ValidateBeginOut, which is checked again before it goes
// out.
//
// END records i_size for a buffered write that grew the file
// (SIZE_CHANGED) and releases the blocks a short extending buffered write
// reserved past the new end of file. IOEND converts the written range's
// unwritten extents and, with APPEND, raises i_size; an ioend carrying an
// error changes nothing.
//
// Device registration is lazy, like fuse2fs: the first BEGIN registers
// the fd given to EnableIomap through fuse's AddIomapDevice. The seed
// kernel accepts only block devices (ENODEV otherwise); on a fuseblk mount
// the mounted device is cookie 0 without a notification. An image file
// can only be served through a harness that accepts regular files (see
// server/iomaptest), never by a real kernel.

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

var _ fuse.IomapFileSystem = (*Server)(nil)

// IomapRegistrar registers a block device with the kernel for fuse-iomap
// and returns its cookie: *fuse.Server.
type IomapRegistrar interface {
	AddIomapDevice(fd int) (uint32, error)
}

// iomapDev is the engine's device for fuse-iomap mappings.
type iomapDev struct {
	mu     sync.Mutex // protects the fields below
	reg    IomapRegistrar
	fd     int
	cookie uint32
	ok     bool // cookie is valid
}

// EnableIomap lets the server answer fuse-iomap upcalls with mappings on
// the device open as fd: the block device (or, for a test harness only,
// the image file) the FS reads, registered through reg on the first
// IOMAP_BEGIN. Whether the session uses iomap at all is fuse's
// negotiation (fuse.Options.Iomap, gated by kernel discovery); without
// EnableIomap every BEGIN of such a session fails with EIO.
func (s *Server) EnableIomap(reg IomapRegistrar, fd int) {
	d := &s.eng.iomap
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reg, d.fd, d.ok = reg, fd, false
}

// iomapCookie returns the device cookie, registering the device first.
func (s *Server) iomapCookie() (uint32, error) {
	d := &s.eng.iomap
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ok {
		return d.cookie, nil
	}
	if d.reg == nil {
		return fuseproto.IomapDevNull, errors.New("fuse-iomap negotiated but no device given (EnableIomap)")
	}
	c, err := d.reg.AddIomapDevice(d.fd)
	if err != nil {
		return fuseproto.IomapDevNull, err
	}
	if c == fuseproto.IomapDevNull {
		return c, errors.New("kernel returned the null device cookie")
	}
	d.cookie, d.ok = c, true
	return c, nil
}

// iomapIno returns the inode of an upcall: the nodeid's, which must be the
// one whose attributes the kernel last saw (attr_ino).
func iomapIno(r *fuse.Request, attrIno uint64) (ext4.Ino, syscall.Errno) {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return 0, errno
	}
	if attrIno != uint64(ino) {
		return 0, syscall.ESTALE
	}
	return ino, 0
}

// lockData takes ino's data lock; with nowait it fails instead of waiting.
func (s *Server) lockData(ino ext4.Ino, nowait bool) (func(), bool) {
	if !nowait {
		return s.locks.lock(ino), true
	}
	m := &s.locks[uint32(ino)%uint32(len(s.locks))]
	if !m.TryLock() {
		return nil, false
	}
	return m.Unlock, true
}

// IomapBegin answers FUSE_IOMAP_BEGIN (see the file comment).
func (s *Server) IomapBegin(r *fuse.Request, in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno {
	ino, errno := iomapIno(r, in.AttrIno)
	if errno != 0 {
		return errno
	}
	op := in.Opflags
	write := op&fuseproto.IomapOpWrite != 0
	switch {
	case in.Count == 0:
		return syscall.EINVAL
	case in.Pos > math.MaxInt64 && write: // past any file the kernel allows
		return syscall.EFBIG
	case in.Pos > math.MaxInt64:
		return syscall.EINVAL
	}
	if write {
		if errno := s.writable(); errno != 0 {
			return errno
		}
		unlock, ok := s.lockData(ino, op&fuseproto.IomapOpNowait != 0)
		if !ok {
			return syscall.EAGAIN
		}
		defer unlock()
	}
	cookie, err := s.iomapCookie()
	if err != nil {
		s.log.Error("fuse-iomap: registering the device", "ino", uint32(ino), "err", err)
		return syscall.EIO
	}
	count := int64(min(in.Count, math.MaxInt64-in.Pos))
	if count == 0 {
		return syscall.EFBIG
	}
	m, err := s.eng.iomapBegin(cred(r), ino, int64(in.Pos), count, op)
	if err != nil {
		if write {
			return s.writeErrno(err)
		}
		return s.toErrno(err)
	}
	*out = fuseproto.IomapBeginOut{
		Offset:     uint64(m.offset),
		Length:     uint64(m.length),
		ReadAddr:   m.addr,
		ReadType:   m.typ,
		ReadFlags:  m.flags,
		ReadDev:    cookie,
		WriteAddr:  fuseproto.IomapNullAddr,
		WriteType:  fuseproto.IomapTypePureOverwrite,
		WriteDev:   cookie,
		WriteFlags: 0,
	}
	if err := fuseproto.ValidateBeginOut(op, in.Pos, out); err != nil {
		// The engine broke its contract: say so rather than let the
		// kernel fail the I/O with a bare EIO.
		s.log.Error("fuse-iomap: engine produced an invalid mapping", "ino", uint32(ino), "err", err)
		return syscall.EIO
	}
	return 0
}

// IomapEnd answers FUSE_IOMAP_END.
func (s *Server) IomapEnd(r *fuse.Request, in *fuseproto.IomapEndIn) syscall.Errno {
	ino, errno := iomapIno(r, in.AttrIno)
	if errno != 0 {
		return errno
	}
	op := in.Opflags
	if op&(fuseproto.IomapOpWrite|fuseproto.IomapOpZero) == 0 {
		return 0 // reads and reports hold nothing to release
	}
	if errno := s.writable(); errno != 0 {
		return errno
	}
	if in.Pos > math.MaxInt64 || in.Count > math.MaxInt64-in.Pos || in.Written < 0 || uint64(in.Written) > in.Count {
		return syscall.EINVAL
	}
	defer s.locks.lock(ino)()
	if err := s.eng.iomapEnd(ino, int64(in.Pos), int64(in.Count), in.Written, op, in.MapFlags); err != nil {
		return s.writeErrno(err)
	}
	return 0
}

// IomapIoend answers FUSE_IOMAP_IOEND. It runs in the kernel's writeback
// context, so it waits for nothing but the inode's data lock and ext4.
func (s *Server) IomapIoend(r *fuse.Request, in *fuseproto.IomapIoendIn) syscall.Errno {
	ino, errno := iomapIno(r, in.AttrIno)
	if errno != 0 {
		return errno
	}
	if in.Error != 0 {
		// The I/O failed: change nothing (unwritten blocks keep reading as
		// zeros) and hand the error back, as fuse2fs does.
		if in.Error < 0 && in.Error > -4096 {
			return syscall.Errno(-in.Error)
		}
		return syscall.EIO
	}
	if errno := s.writable(); errno != 0 {
		return errno
	}
	if in.NewAddr != fuseproto.IomapNullAddr || in.Ioendflags&fuseproto.IomapIoendShared != 0 {
		// ext4 never hands out out-of-place write mappings.
		s.log.Error("fuse-iomap: copy-on-write ioend on ext4", "ino", uint32(ino),
			"flags", in.Ioendflags.String(), "new_addr", in.NewAddr)
		return syscall.EINVAL
	}
	if in.Pos > math.MaxInt64-uint64(in.Written) {
		return syscall.EFBIG
	}
	defer s.locks.lock(ino)()
	if err := s.eng.ioend(ino, int64(in.Pos), int64(in.Written), uint16(in.Ioendflags), nil, false); err != nil {
		return s.writeErrno(err)
	}
	return 0
}

// iomapMap is one BEGIN answer before the device cookie is added.
type iomapMap struct {
	offset, length int64
	typ            fuseproto.IomapType
	addr           uint64
	flags          fuseproto.IomapFlags
}

// extentsFL is EXT4_EXTENTS_FL in i_flags (FS_EXTENT_FL to lsattr).
const extentsFL = 0x80000

// iomapBegin maps [pos, pos+count) of ino for the kernel operation op.
func (e *engine) iomapBegin(c ext4.Cred, ino ext4.Ino, pos, count int64, op fuseproto.IomapOpFlags) (iomapMap, error) {
	m, err := e.iomapBeginOp(c, ino, pos, count, op)
	if err != nil || m.typ != fuseproto.IomapTypeMapped {
		return m, err
	}
	// Like ext4_set_iomap, a block-mapped file's runs are MERGED: built
	// from many single-block pointers, not one extent.
	inode, err := e.fs.Inode(ino)
	if err != nil {
		return iomapMap{}, err
	}
	if inode.Flags&extentsFL == 0 {
		m.flags |= fuseproto.IomapFMerged
	}
	return m, nil
}

func (e *engine) iomapBeginOp(c ext4.Cred, ino ext4.Ino, pos, count int64, op fuseproto.IomapOpFlags) (iomapMap, error) {
	switch {
	case op&fuseproto.IomapOpReport != 0:
		return e.iomapRead(ino, pos, count, true)
	case op&fuseproto.IomapOpZero != 0:
		m, err := e.iomapRead(ino, pos, count, false)
		if errors.Is(err, syscall.ENOSYS) { // inline: nothing cached to zero
			return iomapMap{offset: pos, length: count, typ: fuseproto.IomapTypeHole, addr: fuseproto.IomapNullAddr}, nil
		}
		return m, err
	case op&fuseproto.IomapOpWrite != 0:
		return e.iomapWrite(c, ino, pos, count, op&fuseproto.IomapOpNowait != 0)
	}
	return e.iomapRead(ino, pos, count, false)
}

// iomapRead answers reads, ZERO and (report) REPORT: the mapping as it is.
func (e *engine) iomapRead(ino ext4.Ino, pos, count int64, report bool) (iomapMap, error) {
	m, err := e.begin(ext4.Cred{}, ino, pos, count, opReport)
	if err != nil {
		return iomapMap{}, err
	}
	if m.Type == ext4.MapInline {
		if !report {
			return iomapMap{}, syscall.ENOSYS
		}
		if pos >= m.Length { // past the inline data: a hole to the request's end
			return iomapMap{offset: pos, length: count, typ: fuseproto.IomapTypeHole, addr: fuseproto.IomapNullAddr}, nil
		}
		return iomapMap{offset: 0, length: m.Length, typ: fuseproto.IomapTypeInline, addr: fuseproto.IomapNullAddr}, nil
	}
	return e.toIomap(ino, m, 0)
}

// iomapWrite answers WRITE: the range at pos allocated.
func (e *engine) iomapWrite(c ext4.Cred, ino ext4.Ino, pos, count int64, nowait bool) (iomapMap, error) {
	if nowait {
		// Allocation takes the filesystem's write lock: only a range that
		// is already allocated is answered without waiting.
		m, err := e.begin(c, ino, pos, count, opReport)
		if err != nil {
			return iomapMap{}, err
		}
		if m.Type != ext4.MapMapped && m.Type != ext4.MapUnwritten {
			return iomapMap{}, syscall.EAGAIN
		}
	}
	var flags fuseproto.IomapFlags
	for range maxInlineRetries {
		m, err := e.begin(c, ino, pos, count, opWrite)
		if err != nil {
			return iomapMap{}, err
		}
		if m.Type != ext4.MapInline {
			if m.New {
				flags |= fuseproto.IomapFNew | fuseproto.IomapFDirty
				if m.Type == ext4.MapMapped {
					// A block-mapped file has no unwritten state: fresh
					// blocks are zeroed now, so a short write or a crash
					// never exposes what they held before.
					if err := e.zeroBlocks(m.Addr, m.Length); err != nil {
						return iomapMap{}, err
					}
				}
			}
			return e.toIomap(ino, m, flags)
		}
		// The kernel cannot write into the inode: move the file to
		// blocks, allocating (unwritten) the block at pos on the way.
		// Not NEW: block 0 now holds the inline bytes, which a partial
		// write must read back.
		if err := e.fs.Fallocate(ino, ext4.FallocKeepSize, pos, 1); err != nil {
			return iomapMap{}, err
		}
		flags |= fuseproto.IomapFDirty
	}
	return iomapMap{}, fmt.Errorf("server: inode %d stays inline under writes: %w", ino, syscall.EIO)
}

// toIomap converts an ext4 block mapping. Unwritten and size-extending
// mappings are DIRTY: their completion changes metadata (what O_DSYNC
// needs to know, as ext4_set_iomap reports it).
func (e *engine) toIomap(ino ext4.Ino, m ext4.Mapping, flags fuseproto.IomapFlags) (iomapMap, error) {
	if m.Length <= 0 || m.Offset < 0 {
		return iomapMap{}, fmt.Errorf("server: empty %v mapping of inode %d at %d: %w", m.Type, ino, m.Offset, syscall.EIO)
	}
	out := iomapMap{offset: m.Offset, length: m.Length, addr: fuseproto.IomapNullAddr, flags: flags}
	switch m.Type {
	case ext4.MapHole:
		out.typ = fuseproto.IomapTypeHole
		return out, nil
	case ext4.MapMapped:
		out.typ = fuseproto.IomapTypeMapped
	case ext4.MapUnwritten:
		out.typ = fuseproto.IomapTypeUnwritten
		if flags != 0 {
			out.flags |= fuseproto.IomapFDirty
		}
	default:
		return iomapMap{}, fmt.Errorf("server: unexpected %v mapping of inode %d: %w", m.Type, ino, syscall.EIO)
	}
	if m.Addr < 0 {
		return iomapMap{}, fmt.Errorf("server: %v mapping of inode %d without an address: %w", m.Type, ino, syscall.EIO)
	}
	out.addr = uint64(m.Addr)
	return out, nil
}

// zeroBlocks writes zeros over n bytes at device offset addr.
func (e *engine) zeroBlocks(addr, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if err := e.writeAt(buf[:k], addr); err != nil {
			return err
		}
		addr, n = addr+k, n-k
	}
	return nil
}

// iomapEnd completes one mapping of a buffered write or zeroing: the
// size of a write that grew the file is recorded (end), and what a short
// write reserved past the new end of file is released, as the kernel's
// ext4_truncate_failed_write does (its blocks hold nothing: unwritten,
// or zeroed on block-mapped files). A short O_DIRECT write keeps its
// blocks: its IOEND, which may extend i_size over them, comes later.
func (e *engine) iomapEnd(ino ext4.Ino, pos, count, written int64, op fuseproto.IomapOpFlags, mapFlags fuseproto.IomapFlags) error {
	if err := e.end(ino, pos, count, written, uint32(op), uint16(mapFlags)); err != nil {
		return err
	}
	if op&fuseproto.IomapOpWrite == 0 || op&fuseproto.IomapOpDirect != 0 || written >= count {
		return nil
	}
	inode, err := e.fs.Inode(ino)
	if err != nil {
		return err
	}
	size := int64(inode.Size)
	keep := max(size, pos+written)
	if pos+count <= (keep+e.bs-1)/e.bs*e.bs {
		return nil // nothing reserved past the end of file
	}
	// ext4's truncate frees what lies past a smaller size: grow to the
	// reserved end, then cut back, keeping the times as they were.
	if err := e.fs.ExtendSize(ino, pos+count, false); err != nil {
		if errors.Is(err, syscall.EFBIG) {
			return nil // nothing can have been reserved past the limit
		}
		return err
	}
	_, err = e.fs.SetAttr(ino, &ext4.SetAttr{
		Valid: ext4.SetSize | ext4.SetMtime | ext4.SetCtime,
		Size:  uint64(size),
		Mtime: inode.Mtime,
		Ctime: inode.Ctime,
	})
	return err
}
