package server

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// Destroy is the end of the session (DESTROY at unmount, or the
// connection going away). Unlinked inodes the kernel never forgot are
// freed now, as the kernel's own unmount would, and everything written is
// flushed; the caller closes the FS, which marks it clean.
func (s *Server) Destroy() {
	if !s.destroyed.CompareAndSwap(false, true) {
		return
	}
	if n := s.nodes.len(); n > 0 {
		s.log.Debug("session ended with nodes still referenced", "nodes", n)
	}
	if s.opts.ReadOnly {
		return
	}
	for _, id := range s.nodes.drainUnlinked() {
		s.evict(id)
	}
	if err := s.fs.Sync(); err != nil {
		s.log.Error("flushing at unmount", "err", err)
	}
}

func (s *Server) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	ino, err := s.fs.Lookup(dir, name)
	if errors.Is(err, syscall.ENOENT) {
		// A zero nodeid is ENOENT that the kernel may cache for the entry
		// timeout: a name can only appear through the kernel, which then
		// replaces the negative entry itself.
		out.SetEntryTimeout(s.opts.EntryTimeout)
		return 0
	}
	if err != nil {
		return s.toErrno(err)
	}
	inode, err := s.fs.Inode(ino)
	if errors.Is(err, syscall.ESTALE) {
		// The entry names an inode that is not in use: the directory is
		// damaged, as the kernel's ext4_lookup reports ("deleted inode
		// referenced"), not a stale handle of the caller's.
		err = &ext4.CorruptError{Kind: "directory entry", Ino: dir, Err: fmt.Errorf("%q names unused inode %d", name, ino)}
	}
	if err != nil {
		return s.toErrno(err)
	}
	if errno := s.entryFor(out, inode); errno != 0 {
		return errno
	}
	s.nodes.ref(out.NodeID)
	return 0
}

// Forget drops kernel references; an unlinked inode with none left and
// no open handle is freed.
func (s *Server) Forget(nodeID, nlookup uint64) {
	if s.nodes.forget(nodeID, nlookup) {
		s.evict(nodeID)
	}
}

func (s *Server) GetAttr(r *fuse.Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	inode, errno := s.inode(r.NodeID)
	if errno != 0 {
		return errno
	}
	s.fillAttr(&out.Attr, inode)
	out.SetAttrTimeout(s.opts.AttrTimeout)
	return 0
}

func (s *Server) Statx(r *fuse.Request, in *fuseproto.StatxIn, out *fuseproto.StatxOut) syscall.Errno {
	inode, errno := s.inode(r.NodeID)
	if errno != 0 {
		return errno
	}
	s.fillStatx(&out.Stat, inode)
	out.AttrValid, out.AttrValidNsec = splitDuration(s.opts.AttrTimeout)
	return 0
}

func (s *Server) ReadLink(r *fuse.Request) ([]byte, syscall.Errno) {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return nil, errno
	}
	target, err := s.fs.ReadLink(ino)
	if err != nil {
		return nil, s.toErrno(err)
	}
	return target, 0
}

// Open admits opens. On a read-only mount the kernel refuses writable
// opens itself (EROFS, like any ro filesystem); answering the same here
// keeps a misconfigured mount honest.
//
// A read-only server has no per-open state, so when the kernel supports
// it Open answers ENOSYS: the kernel then stops sending OPEN and RELEASE
// altogether and treats every open as FOPEN_KEEP_CACHE, saving two
// round trips per open(2). A read-write server counts handles, because
// an unlinked file lives until its last one is released, and truncates
// for O_TRUNC (ATOMIC_O_TRUNC leaves that to OPEN).
//
// Either way, every change to the image goes through the kernel, so
// pages it cached from an earlier open are still valid (KEEP_CACHE).
func (s *Server) Open(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	trunc := in.Flags&syscall.O_TRUNC != 0 && in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if s.readOnly() && (in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY || in.Flags&syscall.O_TRUNC != 0) {
		return syscall.EROFS
	}
	inode, errno := s.inode(r.NodeID)
	if errno != 0 {
		return errno
	}
	if s.opts.ReadOnly {
		if kernelHas(r, fuseproto.InitNoOpenSupport) {
			return syscall.ENOSYS
		}
		out.OpenFlags = fuseproto.FopenKeepCache | fuseproto.FopenNoflush
		return 0
	}
	if trunc && inode.IsReg() {
		unlock := s.locks.lock(inode.Ino)
		_, err := s.fs.SetAttr(inode.Ino, &ext4.SetAttr{Valid: ext4.SetSize | ext4.SetMtimeNow})
		unlock()
		if err != nil {
			return s.writeErrno(err)
		}
	}
	s.nodes.open(r.NodeID)
	out.OpenFlags = fuseproto.FopenKeepCache
	return 0
}

// kernelHas reports whether the kernel offered capability f at INIT.
func kernelHas(r *fuse.Request, f fuseproto.InitFlags) bool {
	return r.Proto != nil && r.Proto.KernelFlags&f == f
}

func (s *Server) Read(r *fuse.Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return nil, errno
	}
	if in.Offset > 1<<63-1 {
		return nil, syscall.EINVAL
	}
	n, err := s.eng.read(ino, buf, int64(in.Offset))
	if err != nil {
		return nil, s.toErrno(err)
	}
	s.accessed(r.NodeID, ino)
	return buf[:n], 0
}

// Release closes a file handle; the last one of an unlinked inode the
// kernel has forgotten frees it.
func (s *Server) Release(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno {
	if s.nodes.release(r.NodeID) {
		s.evict(r.NodeID)
	}
	return 0
}

// Flush (each close(2)) has nothing to do: writes are on disk when
// answered, and durability is fsync's business, as on the kernel's ext4.
// ENOSYS tells the kernel to stop sending it.
func (s *Server) Flush(r *fuse.Request, in *fuseproto.FlushIn) syscall.Errno {
	return syscall.ENOSYS
}

// accessed updates the access time after a read, per Options.Atime: the
// kernel leaves atime to FUSE servers (its inodes are S_NOATIME). The
// kernel's cached attributes are invalidated so stat shows it.
func (s *Server) accessed(nodeid uint64, ino ext4.Ino) {
	if s.readOnly() || s.opts.Atime == AtimeNever {
		return
	}
	inode, err := s.fs.Inode(ino)
	if err != nil || inode.Nlink == 0 && !inode.IsReg() {
		return
	}
	now := time.Now()
	if s.opts.Atime == AtimeRelative && inode.Atime.After(inode.Mtime) && inode.Atime.After(inode.Ctime) &&
		now.Sub(inode.Atime) < 24*time.Hour {
		return
	}
	// ctime stays as it is: an atime update is not a change.
	a := ext4.SetAttr{Valid: ext4.SetAtimeNow | ext4.SetCtime, Ctime: inode.Ctime}
	if _, err := s.fs.SetAttr(ino, &a); err != nil {
		s.writeErrno(err)
		return
	}
	s.invalAttr(nodeid)
}

// flushForSeek makes the kernel write back its dirty pages of the file
// before SEEK_DATA/SEEK_HOLE is answered from the disk: with the
// writeback cache the kernel asks without flushing, and data it has not
// written back yet would be reported as a hole (or past the end). An
// inode invalidation with a data range launders dirty pages through
// WRITE first. Without a way to notify, ENOSYS sends the kernel to its
// generic lseek (everything below i_size is data), which is coarse but
// right.
func (s *Server) flushForSeek(r *fuse.Request) syscall.Errno {
	if s.opts.ReadOnly || r.Proto == nil || r.Proto.Flags&fuseproto.InitWritebackCache == 0 {
		return 0
	}
	p := s.notifier.Load()
	if p == nil {
		return syscall.ENOSYS
	}
	if err := (*p).InvalInode(r.NodeID, 0, -1); err != nil && !errors.Is(err, syscall.ENOENT) {
		s.log.Error("flushing cached pages before lseek", "nodeid", r.NodeID, "err", err)
		return syscall.EIO
	}
	return 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE; the kernel handles the others.
func (s *Server) Lseek(r *fuse.Request, in *fuseproto.LseekIn, out *fuseproto.LseekOut) syscall.Errno {
	const seekData, seekHole = 3, 4
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	if in.Offset > 1<<63-1 {
		return syscall.ENXIO
	}
	if errno := s.flushForSeek(r); errno != 0 {
		return errno
	}
	var off int64
	var err error
	switch in.Whence {
	case seekData:
		off, err = s.eng.seekData(ino, int64(in.Offset))
	case seekHole:
		off, err = s.eng.seekHole(ino, int64(in.Offset))
	default:
		return syscall.EINVAL
	}
	if err != nil {
		return s.toErrno(err)
	}
	out.Offset = uint64(off)
	return 0
}

func (s *Server) StatFs(r *fuse.Request, out *fuseproto.StatfsOut) syscall.Errno {
	st := s.fs.Statfs()
	out.St = fuseproto.Kstatfs{
		Blocks:  st.Blocks,
		Bfree:   st.Bfree,
		Bavail:  st.Bavail,
		Files:   st.Files,
		Ffree:   st.Ffree,
		Bsize:   st.Bsize,
		Namelen: st.Namelen,
		Frsize:  st.Frsize,
	}
	return 0
}

// OpenDir has no per-open state either: with the kernel's support it
// answers ENOSYS, after which the kernel opens directories itself with
// FOPEN_KEEP_CACHE|FOPEN_CACHE_DIR, keeping listings in its page cache.
func (s *Server) OpenDir(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	inode, errno := s.inode(r.NodeID)
	if errno != 0 {
		return errno
	}
	if !inode.IsDir() {
		return syscall.ENOTDIR
	}
	if s.opts.ReadOnly {
		if kernelHas(r, fuseproto.InitNoOpendirSupport) {
			return syscall.ENOSYS
		}
		out.OpenFlags = fuseproto.FopenCacheDir | fuseproto.FopenKeepCache
		return 0
	}
	s.nodes.open(r.NodeID)
	return 0
}

// ReadDir lists entries after cookie in.Offset. Cookies come from ext4
// (DirEntry.Next) and are stable, so no per-handle state is needed.
func (s *Server) ReadDir(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	err := s.fs.ReadDir(dir, in.Offset, func(e ext4.DirEntry) bool {
		if !s.listable(dir, e.Name) {
			return true
		}
		return out.Add(e.Name, uint64(e.Ino), uint32(e.Type), e.Next)
	})
	if in.Offset == 0 {
		s.accessed(r.NodeID, dir)
	}
	return s.dirResult(err, out)
}

// ReadDirPlus lists entries with their attributes. Each entry with a
// nonzero nodeid counts one lookup, exactly as the kernel will forget it;
// "." and ".." carry nodeid 0 because the kernel neither links nor
// forgets them. An entry whose inode cannot be read is still listed,
// without attributes, so one damaged inode does not hide its siblings; a
// later LOOKUP reports the error.
func (s *Server) ReadDirPlus(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	err := s.fs.ReadDir(dir, in.Offset, func(e ext4.DirEntry) bool {
		if !s.listable(dir, e.Name) {
			return true
		}
		var entry fuseproto.EntryOut
		entry.Attr.Ino = uint64(e.Ino)
		entry.Attr.Mode = uint32(e.Type) << 12
		if !isDotOrDotDot(e.Name) {
			if inode, err := s.fs.Inode(e.Ino); err != nil {
				s.toErrno(err) // logged; the entry goes out without attributes
			} else if s.entryFor(&entry, inode) != 0 {
				entry = fuseproto.EntryOut{Attr: fuseproto.Attr{Ino: uint64(e.Ino), Mode: uint32(e.Type) << 12}}
			}
		}
		if !out.AddPlus(e.Name, &entry, e.Next) {
			return false
		}
		s.nodes.ref(entry.NodeID)
		return true
	})
	if in.Offset == 0 {
		s.accessed(r.NodeID, dir)
	}
	return s.dirResult(err, out)
}

// dirResult turns a ReadDir error into the reply: entries already added
// are returned (the next READDIR will hit the error again if it persists).
func (s *Server) dirResult(err error, out *fuse.DirList) syscall.Errno {
	if err == nil {
		return 0
	}
	errno := s.toErrno(err)
	if out.Len() > 0 {
		return 0
	}
	return errno
}

// listable reports whether a name can go to the kernel in a listing. A
// damaged entry can hold a '/' (the kernel then rejects the whole READDIR
// reply with EIO, hiding the intact siblings) or a NUL (getdents callers
// see a truncated name, "" or "." for instance, and walk in circles). Such
// an entry is left out and reported as corruption.
func (s *Server) listable(dir ext4.Ino, name []byte) bool {
	if bytes.IndexByte(name, '/') < 0 && bytes.IndexByte(name, 0) < 0 {
		return true
	}
	s.toErrno(&ext4.CorruptError{Kind: "directory entry name", Ino: dir, Err: fmt.Errorf("name %q", name)})
	return false
}

func isDotOrDotDot(name []byte) bool {
	return bytes.Equal(name, []byte(".")) || bytes.Equal(name, []byte(".."))
}

func (s *Server) ReleaseDir(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno {
	return s.Release(r, in)
}

func (s *Server) GetXattr(r *fuse.Request, name []byte, dest []byte) (int, syscall.Errno) {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return 0, errno
	}
	val, err := s.fs.GetXattr(ino, string(name))
	if err != nil {
		return 0, s.toErrno(err)
	}
	return copySized(dest, val)
}

// ListXattr lists attribute names. trusted.* names are listed only to
// root, as the kernel's ext4 lists them only to CAP_SYS_ADMIN.
func (s *Server) ListXattr(r *fuse.Request, dest []byte) (int, syscall.Errno) {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return 0, errno
	}
	names, err := s.fs.ListXattr(ino)
	if err != nil {
		return 0, s.toErrno(err)
	}
	var buf []byte
	for _, n := range names {
		if r.Uid != 0 && strings.HasPrefix(n, "trusted.") {
			continue
		}
		buf = append(buf, n...)
		buf = append(buf, 0)
	}
	return copySized(dest, buf)
}

// copySized implements the xattr size protocol: an empty dest asks for
// the size, a too-small one is ERANGE.
func copySized(dest, val []byte) (int, syscall.Errno) {
	if len(dest) == 0 {
		return len(val), 0
	}
	if len(val) > len(dest) {
		return 0, syscall.ERANGE
	}
	return copy(dest, val), 0
}

// Access checks mask against the inode's mode, uid and gid. The kernel
// usually decides itself (default_permissions), so this is a faithful
// fallback: W_OK on a read-only mount is EROFS for the file types whose
// writes would touch the image; only the caller's primary gid is known.
func (s *Server) Access(r *fuse.Request, in *fuseproto.AccessIn) syscall.Errno {
	const rOK, wOK, xOK = 4, 2, 1
	inode, errno := s.inode(r.NodeID)
	if errno != 0 {
		return errno
	}
	mask := in.Mask & (rOK | wOK | xOK)
	if mask&wOK != 0 && s.readOnly() && (inode.IsReg() || inode.IsDir() || inode.IsSymlink()) {
		return syscall.EROFS
	}
	if mask == 0 {
		return 0
	}
	mode := uint32(inode.Mode)
	if r.Uid == 0 {
		// root may read and write anything; it may execute only what
		// someone may execute (directories are always searchable).
		if mask&xOK != 0 && !inode.IsDir() && mode&0o111 == 0 {
			return syscall.EACCES
		}
		return 0
	}
	var perm uint32
	switch {
	case r.Uid == inode.Uid:
		perm = mode >> 6
	case r.Gid == inode.Gid:
		perm = mode >> 3
	default:
		perm = mode
	}
	if perm&mask != mask {
		return syscall.EACCES
	}
	return 0
}

// Bmap maps a file block to a device block (FIBMAP; the kernel sends it
// only for fuseblk mounts). It comes from the same mapping engine as the
// data path. Holes, unwritten extents and inline data have no device
// block and map to 0, as the kernel's ext4 reports them.
func (s *Server) Bmap(r *fuse.Request, in *fuseproto.BmapIn, out *fuseproto.BmapOut) syscall.Errno {
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	bs := uint64(in.Blocksize)
	if bs == 0 || bs&(bs-1) != 0 || in.Block > (1<<63-1)/bs {
		return syscall.EINVAL
	}
	off := int64(in.Block * bs)
	m, err := s.eng.mapping(ino, off, int64(bs))
	if err != nil {
		return s.toErrno(err)
	}
	if m.Type == ext4.MapMapped && off >= m.Offset {
		out.Block = uint64(m.Addr+(off-m.Offset)) / bs
	}
	return 0
}
