package server

import (
	"math"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// The modifying opcodes. Each runs one ext4 public write call (one
// transaction), or a short sequence of them, and answers with the
// inode's fresh attributes where the reply carries them. A read-only
// server answers EROFS (the kernel refuses most of these itself on a
// read-only mount).

const (
	sIFMT  = 0o170000
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sISUID = 0o4000
	sISGID = 0o2000
	sIXGRP = 0o010
)

// writable returns EROFS when modifications are refused.
func (s *Server) writable() syscall.Errno {
	if s.readOnly() {
		return syscall.EROFS
	}
	return 0
}

// writeErrno translates the error of a modifying request and applies the
// errors= policy to corruption and device failures.
func (s *Server) writeErrno(err error) syscall.Errno {
	errno := s.toErrno(err)
	if errno == syscall.EUCLEAN || errno == syscall.EIO {
		s.onError(err)
	}
	return errno
}

// onError applies the errors= policy after a failed modification.
func (s *Server) onError(err error) {
	switch s.opts.Errors {
	case ErrorsContinue:
	case ErrorsRemountRO:
		if s.ro.CompareAndSwap(false, true) {
			s.log.Error("errors=remount-ro: filesystem error; refusing further modifications", "err", err)
			if s.opts.RemountReadOnly != nil {
				go s.opts.RemountReadOnly()
			}
		}
	case ErrorsPanic:
		s.ro.Store(true)
		if !s.stopping.CompareAndSwap(false, true) {
			return
		}
		s.log.Error("errors=panic: filesystem error; flushing and stopping", "err", err)
		go func() {
			if err := s.fs.Sync(); err != nil {
				s.log.Error("errors=panic: flush failed", "err", err)
			}
			if s.opts.Shutdown != nil {
				s.opts.Shutdown()
			}
		}()
	}
}

func cred(r *fuse.Request) ext4.Cred { return ext4.Cred{Uid: r.Uid, Gid: r.Gid} }

// reply fills an entry for a new or newly linked inode and counts the
// lookup it hands to the kernel.
func (s *Server) newEntry(out *fuseproto.EntryOut, inode *ext4.Inode) syscall.Errno {
	if errno := s.entryFor(out, inode); errno != 0 {
		return errno
	}
	s.nodes.ref(out.NodeID)
	return 0
}

// create makes name in r.NodeID with mode (type and permissions) through
// mk, applying the umask or the parent's default ACL first and setting
// the inherited ACLs after. If the ACLs cannot be set, the new name is
// removed again so a failed create leaves nothing behind.
func (s *Server) create(r *fuse.Request, name []byte, mode, umask uint32,
	mk func(dir ext4.Ino, mode uint32) (*ext4.Inode, error)) (*ext4.Inode, syscall.Errno) {
	if errno := s.writable(); errno != 0 {
		return nil, errno
	}
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return nil, errno
	}
	mode, access, dflt, err := s.newInodeACLs(r, dir, mode, umask)
	if err != nil {
		return nil, s.writeErrno(err)
	}
	inode, err := mk(dir, mode)
	if err != nil {
		return nil, s.writeErrno(err)
	}
	if access == nil && dflt == nil {
		return inode, 0
	}
	for _, a := range []struct {
		name string
		val  []byte
	}{{aclAccessName, access}, {aclDefaultName, dflt}} {
		if a.val == nil {
			continue
		}
		if err = s.fs.SetXattr(inode.Ino, a.name, a.val, 0); err != nil {
			break
		}
	}
	if err == nil {
		inode, err = s.fs.Inode(inode.Ino)
	}
	if err != nil {
		s.undoCreate(dir, name, inode)
		return nil, s.writeErrno(err)
	}
	return inode, 0
}

// undoCreate removes a name create just made; the inode, unreferenced,
// is freed.
func (s *Server) undoCreate(dir ext4.Ino, name []byte, inode *ext4.Inode) {
	var err error
	if inode.IsDir() {
		_, err = s.fs.Rmdir(dir, name)
	} else {
		_, err = s.fs.Unlink(dir, name)
	}
	if err == nil {
		err = s.fs.Evict(inode.Ino)
	}
	if err != nil {
		s.log.Error("removing a half-created inode", "ino", uint32(inode.Ino), "err", err)
	}
}

func (s *Server) Mknod(r *fuse.Request, in *fuseproto.MknodIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	inode, errno := s.create(r, name, in.Mode, in.Umask, func(dir ext4.Ino, mode uint32) (*ext4.Inode, error) {
		return s.fs.Mknod(dir, name, mode, in.Rdev, cred(r))
	})
	if errno != 0 {
		return errno
	}
	return s.newEntry(out, inode)
}

func (s *Server) Mkdir(r *fuse.Request, in *fuseproto.MkdirIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	inode, errno := s.create(r, name, sIFDIR|in.Mode&0o7777, in.Umask, func(dir ext4.Ino, mode uint32) (*ext4.Inode, error) {
		return s.fs.Mkdir(dir, name, mode, cred(r))
	})
	if errno != 0 {
		return errno
	}
	return s.newEntry(out, inode)
}

func (s *Server) Symlink(r *fuse.Request, name, target []byte, out *fuseproto.EntryOut) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	inode, err := s.fs.Symlink(dir, name, target, cred(r))
	if err != nil {
		return s.writeErrno(err)
	}
	return s.newEntry(out, inode)
}

// Create creates and opens a regular file. CREATE comes only for a name
// the kernel found absent, so O_TRUNC and O_EXCL have nothing to do.
func (s *Server) Create(r *fuse.Request, in *fuseproto.CreateIn, name []byte, out *fuseproto.CreateOut) syscall.Errno {
	inode, errno := s.create(r, name, sIFREG|in.Mode&0o7777, in.Umask, func(dir ext4.Ino, mode uint32) (*ext4.Inode, error) {
		return s.fs.Mknod(dir, name, mode, 0, cred(r))
	})
	if errno != 0 {
		return errno
	}
	if errno := s.newEntry(&out.Entry, inode); errno != 0 {
		return errno
	}
	s.nodes.open(out.Entry.NodeID)
	out.Open.OpenFlags = fuseproto.FopenKeepCache
	return 0
}

// Tmpfile (O_TMPFILE) is not supported; ENOSYS makes the kernel answer
// EOPNOTSUPP from now on without asking, as for a filesystem without it.
func (s *Server) Tmpfile(r *fuse.Request, in *fuseproto.CreateIn, out *fuseproto.CreateOut) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	return syscall.ENOSYS
}

func (s *Server) Link(r *fuse.Request, in *fuseproto.LinkIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	ino, errno := inoOf(in.Oldnodeid)
	if errno != 0 {
		return errno
	}
	inode, err := s.fs.Link(ino, dir, name)
	if err != nil {
		return s.writeErrno(err)
	}
	return s.newEntry(out, inode)
}

func (s *Server) Unlink(r *fuse.Request, name []byte) syscall.Errno {
	return s.remove(r, name, s.fs.Unlink)
}

func (s *Server) Rmdir(r *fuse.Request, name []byte) syscall.Errno {
	return s.remove(r, name, s.fs.Rmdir)
}

func (s *Server) remove(r *fuse.Request, name []byte, rm func(ext4.Ino, []byte) (*ext4.Inode, error)) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	inode, err := rm(dir, name)
	if err != nil {
		return s.writeErrno(err)
	}
	s.dropped(inode)
	return 0
}

// dropped records an inode that lost a link: without links it stays on
// the orphan list until the kernel forgets it and its handles are closed.
func (s *Server) dropped(inode *ext4.Inode) {
	if inode == nil || inode.Nlink != 0 {
		return
	}
	id, err := nodeID(inode.Ino)
	if err != nil {
		return
	}
	if s.nodes.unlink(id) {
		s.evict(id)
	}
}

// evict frees an unlinked inode nothing references any more.
func (s *Server) evict(nodeid uint64) {
	ino, errno := inoOf(nodeid)
	if errno != 0 {
		return
	}
	if err := s.fs.Evict(ino); err != nil {
		s.writeErrno(err) // logged; the orphan list frees it at the next mount
	}
}

// Rename serves RENAME and RENAME2: RENAME_NOREPLACE and RENAME_EXCHANGE
// as the kernel's ext4 does, RENAME_WHITEOUT (overlayfs only) is EINVAL.
func (s *Server) Rename(r *fuse.Request, in *fuseproto.Rename2In, oldName, newName []byte) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	odir, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	ndir, errno := inoOf(in.Newdir)
	if errno != 0 {
		return errno
	}
	replaced, err := s.fs.Rename(odir, oldName, ndir, newName, in.Flags)
	if err != nil {
		return s.writeErrno(err)
	}
	s.dropped(replaced)
	return 0
}

// SetAttr serves chmod, chown, truncate and utimens. The kernel has
// already checked permissions and computed set-ID clearing (chown by
// non-root, write by non-owner) into the mode it sends. Times come as
// given, or now with FATTR_ATIME_NOW/MTIME_NOW; with the writeback cache
// the kernel sends its own mtime and ctime (FATTR_CTIME).
func (s *Server) SetAttr(r *fuse.Request, in *fuseproto.SetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	v := in.Valid
	a := ext4.SetAttr{
		Valid: uint32(v) & (ext4.SetMode | ext4.SetUid | ext4.SetGid | ext4.SetSize | ext4.SetAtime |
			ext4.SetMtime | ext4.SetAtimeNow | ext4.SetMtimeNow | ext4.SetCtime),
		Mode:  in.Mode,
		Uid:   in.Uid,
		Gid:   in.Gid,
		Size:  in.Size,
		Atime: time.Unix(int64(in.Atime), int64(in.Atimensec)),
		Mtime: time.Unix(int64(in.Mtime), int64(in.Mtimensec)),
		Ctime: time.Unix(int64(in.Ctime), int64(in.Ctimensec)),
	}
	if a.Valid&ext4.SetSize != 0 && in.Size > math.MaxInt64 {
		return syscall.EFBIG
	}
	if a.Valid&ext4.SetSize != 0 || v&fuseproto.FattrKillSuidgid != 0 {
		defer s.locks.lock(ino)()
	}
	if v&fuseproto.FattrKillSuidgid != 0 {
		// Only sent with HANDLE_KILLPRIV_V2; honoured all the same.
		mode := in.Mode
		if a.Valid&ext4.SetMode == 0 {
			inode, err := s.fs.Inode(ino)
			if err != nil {
				return s.writeErrno(err)
			}
			mode = uint32(inode.Mode)
		}
		a.Mode, a.Valid = killSuidgid(mode), a.Valid|ext4.SetMode
	}
	inode, err := s.fs.SetAttr(ino, &a)
	if err != nil {
		return s.writeErrno(err)
	}
	if a.Valid&ext4.SetMode != 0 {
		if err := s.chmodACL(ino, a.Mode); err != nil {
			return s.writeErrno(err)
		}
	}
	s.fillAttr(&out.Attr, inode)
	out.SetAttrTimeout(s.opts.AttrTimeout)
	return 0
}

// killSuidgid is the kernel's set-ID clearing on write or truncate by an
// unprivileged caller: set-user-ID always, set-group-ID only when group
// execute is on (otherwise it marks mandatory locking).
func killSuidgid(mode uint32) uint32 {
	mode &^= sISUID
	if mode&sIXGRP != 0 {
		mode &^= sISGID
	}
	return mode
}

// Write is the classic FUSE WRITE, a client of the engine. With the
// writeback cache the kernel owns mtime and ctime of regular files (it
// sets them at write(2) and sends them in SETATTR) and writes back pages
// no further than its i_size, which the write then brings to disk;
// without it, the write sets mtime and ctime here. O_APPEND needs
// nothing: the kernel sends the append offset.
func (s *Server) Write(r *fuse.Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno) {
	if errno := s.writable(); errno != 0 {
		return 0, errno
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return 0, errno
	}
	if in.Offset > math.MaxInt64-uint64(len(data)) {
		return 0, syscall.EFBIG
	}
	if len(data) == 0 {
		return 0, 0
	}
	defer s.locks.lock(ino)()
	inode, err := s.fs.Inode(ino)
	if err != nil {
		return 0, s.writeErrno(err)
	}
	if in.WriteFlags&fuseproto.WriteKillSuidgid != 0 && inode.Mode&(sISUID|sISGID) != 0 {
		a := ext4.SetAttr{Valid: ext4.SetMode, Mode: killSuidgid(uint32(inode.Mode))}
		if _, err := s.fs.SetAttr(ino, &a); err != nil {
			return 0, s.writeErrno(err)
		}
	}
	touch := !writebackCache(r)
	n, err := s.eng.write(cred(r), ino, data, int64(in.Offset), int64(inode.Size), touch)
	if err != nil {
		errno := s.writeErrno(err)
		if n == 0 {
			return 0, errno
		}
	}
	return uint32(n), 0
}

// Fallocate serves fallocate(2): preallocation (with or without
// KEEP_SIZE), PUNCH_HOLE and ZERO_RANGE; COLLAPSE_RANGE, INSERT_RANGE and
// anything else is EOPNOTSUPP. The kernel drops its cached pages of the
// range and updates its size itself.
func (s *Server) Fallocate(r *fuse.Request, in *fuseproto.FallocateIn) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	if in.Offset > math.MaxInt64 || in.Length > math.MaxInt64 {
		return syscall.EFBIG
	}
	defer s.locks.lock(ino)()
	var before *ext4.Inode
	if writebackCache(r) {
		var err error
		if before, err = s.fs.Inode(ino); err != nil {
			return s.writeErrno(err)
		}
	}
	if err := s.fs.Fallocate(ino, in.Mode, int64(in.Offset), int64(in.Length)); err != nil {
		return s.writeErrno(err)
	}
	if before != nil {
		// The kernel keeps its own mtime and ctime of a cached file and
		// never takes ours; it updates them itself only when fallocate
		// grew the file (and then sends them in SETATTR). Keep the disk
		// equal to what it shows.
		a := ext4.SetAttr{Valid: ext4.SetMtime | ext4.SetCtime, Mtime: before.Mtime, Ctime: before.Ctime}
		if _, err := s.fs.SetAttr(ino, &a); err != nil {
			return s.writeErrno(err)
		}
	}
	return 0
}

// writebackCache reports whether the kernel caches writes (and so owns
// size, mtime and ctime of regular files).
func writebackCache(r *fuse.Request) bool {
	return r.Proto != nil && r.Proto.Flags&fuseproto.InitWritebackCache != 0
}

// SetXattr sets an attribute. Setting system.posix_acl_access also sets
// the mode's permission bits (ext4 does that), and clears set-group-ID
// when the kernel asks (the caller is outside the file's group and lacks
// CAP_FSETID).
func (s *Server) SetXattr(r *fuse.Request, in *fuseproto.SetxattrIn, name, value []byte) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	if err := s.fs.SetXattr(ino, string(name), value, int(in.Flags)); err != nil {
		return s.writeErrno(err)
	}
	if string(name) == aclAccessName && in.SetxattrFlags&fuseproto.SetxattrACLKillSgid != 0 {
		inode, err := s.fs.Inode(ino)
		if err == nil && inode.Mode&sISGID != 0 {
			a := ext4.SetAttr{Valid: ext4.SetMode, Mode: uint32(inode.Mode) &^ sISGID}
			_, err = s.fs.SetAttr(ino, &a)
		}
		if err != nil {
			return s.writeErrno(err)
		}
	}
	return 0
}

func (s *Server) RemoveXattr(r *fuse.Request, name []byte) syscall.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	if err := s.fs.RemoveXattr(ino, string(name)); err != nil {
		return s.writeErrno(err)
	}
	return 0
}

// CopyFileRange is left to the kernel's generic copy (read then write).
func (s *Server) CopyFileRange(r *fuse.Request, in *fuseproto.CopyFileRangeIn) (uint64, syscall.Errno) {
	if errno := s.writable(); errno != 0 {
		return 0, errno
	}
	return 0, syscall.ENOSYS
}

// Fsync, FsyncDir and SyncFs make what was written durable: transactions
// write through at commit, so this is a device flush (SyncFs also writes
// the superblock's counters).
func (s *Server) Fsync(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	return s.fsync(r, in)
}

func (s *Server) FsyncDir(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	return s.fsync(r, in)
}

func (s *Server) fsync(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	if s.opts.ReadOnly {
		return 0
	}
	ino, errno := inoOf(r.NodeID)
	if errno != 0 {
		return errno
	}
	if err := s.fs.FsyncInode(ino, in.FsyncFlags&fuseproto.FsyncFdatasync != 0); err != nil {
		return s.writeErrno(err)
	}
	return 0
}

func (s *Server) SyncFs(r *fuse.Request) syscall.Errno {
	if s.opts.ReadOnly {
		return 0
	}
	if err := s.fs.Sync(); err != nil {
		return s.writeErrno(err)
	}
	return 0
}
