package server

import (
	"bytes"
	"errors"
	"strings"
	"syscall"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// Destroy is the end of the session; the caller owns and closes the FS.
func (s *Server) Destroy() {
	if n := s.nodes.len(); n > 0 {
		s.log.Debug("session ended with nodes still referenced", "nodes", n)
	}
}

func (s *Server) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	ino, err := s.fs.Lookup(dir, name)
	if errors.Is(err, syscall.ENOENT) && s.opts.ReadOnly {
		// A zero nodeid is ENOENT that the kernel may cache for the entry
		// timeout: on a read-only image the name cannot appear later.
		out.SetEntryTimeout(s.opts.EntryTimeout)
		return 0
	}
	if err != nil {
		return s.toErrno(err)
	}
	inode, err := s.fs.Inode(ino)
	if err != nil {
		return s.toErrno(err)
	}
	if errno := s.entryFor(out, inode); errno != 0 {
		return errno
	}
	s.nodes.ref(out.NodeID)
	return 0
}

func (s *Server) Forget(nodeID, nlookup uint64) {
	s.nodes.forget(nodeID, nlookup)
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

// Open admits read-only opens. On a read-only mount the kernel refuses
// writable opens itself (EROFS, like any ro filesystem); answering the
// same here keeps a misconfigured rw mount honest.
//
// A read-only server has no per-open state, so when the kernel supports
// it Open answers ENOSYS: the kernel then stops sending OPEN and RELEASE
// altogether and treats every open as FOPEN_KEEP_CACHE, saving two
// round trips per open(2).
func (s *Server) Open(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	if s.opts.ReadOnly && (in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY || in.Flags&syscall.O_TRUNC != 0) {
		return syscall.EROFS
	}
	if _, errno := s.inode(r.NodeID); errno != 0 {
		return errno
	}
	if s.opts.ReadOnly {
		if kernelHas(r, fuseproto.InitNoOpenSupport) {
			return syscall.ENOSYS
		}
		// Nothing but this server changes the image, so pages the kernel
		// cached from an earlier open are still valid.
		out.OpenFlags = fuseproto.FopenKeepCache | fuseproto.FopenNoflush
	}
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
	return buf[:n], 0
}

func (s *Server) Release(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno { return 0 }

// Flush has nothing to write back on a read-only mount; ENOSYS tells the
// kernel to stop sending FLUSH on every close(2).
func (s *Server) Flush(r *fuse.Request, in *fuseproto.FlushIn) syscall.Errno {
	if s.opts.ReadOnly {
		return syscall.ENOSYS
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
	}
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
		return out.Add(e.Name, uint64(e.Ino), uint32(e.Type), e.Next)
	})
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

func isDotOrDotDot(name []byte) bool {
	return bytes.Equal(name, []byte(".")) || bytes.Equal(name, []byte(".."))
}

func (s *Server) ReleaseDir(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno { return 0 }

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
	if mask&wOK != 0 && s.opts.ReadOnly && (inode.IsReg() || inode.IsDir() || inode.IsSymlink()) {
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

// Fsync, FsyncDir and SyncFs have nothing to write back on a read-only
// mount.
func (s *Server) Fsync(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	return s.syncResult()
}

func (s *Server) FsyncDir(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	return s.syncResult()
}

func (s *Server) SyncFs(r *fuse.Request) syscall.Errno { return s.syncResult() }

func (s *Server) syncResult() syscall.Errno {
	if s.opts.ReadOnly {
		return 0
	}
	return syscall.ENOSYS
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
