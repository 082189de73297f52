package ext4

import (
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4/disk"
)

// SetAttr Valid bits: the FUSE FATTR_* values, so the server can pass
// fuse_setattr_in.valid through.
const (
	SetMode     = 1 << 0
	SetUid      = 1 << 1
	SetGid      = 1 << 2
	SetSize     = 1 << 3
	SetAtime    = 1 << 4
	SetMtime    = 1 << 5
	SetAtimeNow = 1 << 7
	SetMtimeNow = 1 << 8
	SetCtime    = 1 << 10
)

// SetAttr is a set of attribute changes; Valid says which fields apply.
type SetAttr struct {
	Valid               uint32
	Mode, Uid, Gid      uint32
	Size                uint64
	Atime, Mtime, Ctime time.Time
}

// SetAttr changes the attributes of inode ino and returns the result:
//   - Mode replaces the permission bits (07777); the file type stays;
//   - Uid/Gid change the owner. Like ext4_setattr, the library clears no
//     set-ID bits itself: the kernel's VFS sends that as a mode change in
//     the same request (chown by a non-root caller clears S_ISUID, and
//     S_ISGID when group-executable), which the server passes on;
//   - Size (regular files only; EISDIR for directories, EINVAL otherwise)
//     truncates or extends: blocks past the new end are freed (including
//     preallocated ones), the partial tail block is zeroed on disk, and
//     mtime and ctime are set unless given;
//   - Atime/Mtime take the given times, or now with SetAtimeNow/
//     SetMtimeNow;
//   - ctime becomes now on any change, unless SetCtime gives it.
func (fs *FS) SetAttr(ino Ino, a *SetAttr) (*Inode, error) {
	var out *Inode
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if err := tx.setAttrLocked(r, a); err != nil {
			return err
		}
		out = r.inode(fs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (tx *Tx) setAttrLocked(r *inodeRef, a *SetAttr) error {
	fs := tx.fs
	v := a.Valid
	if v == 0 {
		return nil
	}
	if v&SetSize != 0 {
		switch {
		case r.Raw.IsDir():
			return syscall.EISDIR
		case !r.Raw.IsReg():
			return syscall.EINVAL
		}
		if a.Size > uint64(fs.maxFileBytes(r)) && r.Raw.Flags&disk.InlineDataFL == 0 {
			return syscall.EFBIG
		}
		if a.Size != r.Raw.Size() {
			if err := tx.truncateLocked(r, a.Size); err != nil {
				return err
			}
			if v&(SetMtime|SetMtimeNow) == 0 {
				touch(r, true, false)
			}
		}
	}
	if v&SetMode != 0 {
		r.Raw.Mode = r.Raw.Mode&sIFMT | uint16(a.Mode&0o7777)
	}
	if v&SetUid != 0 {
		r.Raw.SetUid(a.Uid)
	}
	if v&SetGid != 0 {
		r.Raw.SetGid(a.Gid)
	}
	s, ns := now()
	switch {
	case v&SetAtimeNow != 0:
		r.Raw.SetAtime(s, ns)
	case v&SetAtime != 0:
		r.Raw.SetAtime(a.Atime.Unix(), uint32(a.Atime.Nanosecond()))
	}
	switch {
	case v&SetMtimeNow != 0:
		r.Raw.SetMtime(s, ns)
	case v&SetMtime != 0:
		r.Raw.SetMtime(a.Mtime.Unix(), uint32(a.Mtime.Nanosecond()))
	}
	if v&SetCtime != 0 {
		r.Raw.SetCtime(a.Ctime.Unix(), uint32(a.Ctime.Nanosecond()))
	} else {
		r.Raw.SetCtime(s, ns)
	}
	tx.dirtyInodeLocked(r)
	return nil
}

// truncateLocked sets the size of regular file r, freeing what lies past
// a smaller size. Inline files are the inline-data code's.
func (tx *Tx) truncateLocked(r *inodeRef, size uint64) error {
	if r.Raw.Flags&disk.InlineDataFL != 0 {
		return tx.truncateInlineLocked(r, size)
	}
	if size < r.Raw.Size() {
		if err := tx.truncateBlocksLocked(r, size); err != nil {
			return err
		}
	}
	tx.setSizeLocked(r, size)
	tx.dirtyInodeLocked(r)
	return nil
}

// truncateBlocksLocked frees every block of r from the one containing
// byte newSize on (rounded up: a partial last block stays), including
// preallocated blocks past i_size, and schedules zeroing the rest of a
// partial last block on disk, so bytes past the new end read as zeros if
// the file grows again. i_size is the caller's. For directories and
// symlinks with blocks as well as regular files.
func (tx *Tx) truncateBlocksLocked(r *inodeRef, newSize uint64) error {
	fs := tx.fs
	if !fs.refHasBlocks(r) {
		return nil
	}
	first := (newSize + uint64(fs.bsize) - 1) >> fs.bshift
	if r.Raw.Flags&disk.ExtentsFL != 0 {
		if first < maxLBlk {
			if err := tx.removeExtentsLocked(r, first, maxLBlk); err != nil {
				return err
			}
		}
	} else if err := tx.bmapRemoveLocked(r, first, fs.bmapMaxBlocks()); err != nil {
		return err
	}
	if off := newSize & uint64(fs.bsize-1); off != 0 {
		if err := tx.zeroPartialLocked(r, newSize, uint64(fs.bsize)-off); err != nil {
			return err
		}
	}
	return nil
}

// zeroPartialLocked schedules zeroing n bytes from byte pos of r (within
// one block) if that block holds written data; holes and unwritten blocks
// read as zeros already.
func (tx *Tx) zeroPartialLocked(r *inodeRef, pos, n uint64) error {
	fs := tx.fs
	lblk := pos >> fs.bshift
	p, _, err := tx.mapBlocksLocked(r, lblk, 1, false)
	if err != nil {
		return err
	}
	if p != 0 {
		tx.zeroDataLocked(fs.pblkOff(p)+int64(pos&uint64(fs.bsize-1)), int64(n))
	}
	return nil
}

// Evict is called when the kernel holds no reference to inode ino and no
// file handle remains open: an inode without links is then taken off the
// orphan list and freed. Linked inodes are left alone.
func (fs *FS) Evict(ino Ino) error {
	return fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			if err == syscall.ESTALE {
				return nil // already gone
			}
			return err
		}
		if r.Raw.LinksCount != 0 || ino < fs.firstIno {
			return nil
		}
		if used, err := tx.inodeInUseLocked(ino); err != nil || !used {
			return err // a second Evict of a freed inode is a no-op
		}
		if err := tx.orphanDelLocked(r); err != nil {
			return err
		}
		return tx.freeInodeLocked(r)
	})
}
