package ext4

import (
	"bytes"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// Namespace operations (after fs/ext4/namei.c): creating inodes of every
// kind, hard links, unlink and rmdir. Each is one transaction; each
// returns the inode as the operation left it. Rename is in rename.go.

// linkMax is EXT4_LINK_MAX: the most links an inode may have (for a
// directory, the most subdirectories plus two, unless dir_nlink lets an
// indexed directory go past it with i_links_count 1).
const linkMax = 65000

// dirLinkMax reports whether directory d cannot take another
// subdirectory (the kernel's EXT4_DIR_LINK_MAX): it is at the limit and
// not an indexed directory on a dir_nlink filesystem.
func (fs *FS) dirLinkMax(d *inodeRef) bool {
	return d.Raw.LinksCount >= linkMax && !(fs.geo.HasRoCompat(disk.RoCompatDirNlink) && fs.isDxRef(d))
}

// incDirCount raises a directory's link count for a new subdirectory
// (ext4_inc_count): past EXT4_LINK_MAX, or already saturated at 1, an
// indexed directory's count becomes 1, meaning "not counted".
func (fs *FS) incDirCount(d *inodeRef) {
	n := uint32(d.Raw.LinksCount) + 1
	if fs.isDxRef(d) && (n > linkMax || n == 2) {
		n = 1
	}
	d.Raw.LinksCount = uint16(min(n, 0xFFFF))
}

// decDirCount drops a directory's link count for a removed subdirectory
// (ext4_dec_count): a count of 1 (saturated) or 2 stays.
func decDirCount(d *inodeRef) {
	if d.Raw.LinksCount > 2 {
		d.Raw.LinksCount--
	}
}

// dirLocked returns directory dir for adding or removing entries:
// ENOTDIR if it is not one, ENOENT if it was removed (no links).
func (tx *Tx) dirLocked(dir Ino) (*inodeRef, error) {
	d, err := tx.inodeLocked(dir)
	if err != nil {
		return nil, err
	}
	if !d.Raw.IsDir() {
		return nil, syscall.ENOTDIR
	}
	if d.Raw.LinksCount == 0 {
		return nil, syscall.ENOENT
	}
	return d, nil
}

// absentLocked returns EEXIST if d has an entry called name.
func (tx *Tx) absentLocked(d *inodeRef, name []byte) error {
	switch _, err := tx.findEntryLocked(d, name); err {
	case nil:
		return syscall.EEXIST
	case syscall.ENOENT:
		return nil
	default:
		return err
	}
}

// lookupNameLocked finds name in directory d and loads its inode.
func (tx *Tx) lookupNameLocked(d *inodeRef, name []byte) (*dirSlot, *inodeRef, error) {
	if len(name) > disk.MaxNameLen {
		return nil, nil, syscall.ENAMETOOLONG
	}
	s, err := tx.findEntryLocked(d, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := tx.inodeLocked(s.ino)
	if err != nil {
		if err == syscall.ESTALE {
			return nil, nil, tx.fs.corruptf("directory entry", d.Ino, 0, "entry %q names unused inode %d", name, s.ino)
		}
		return nil, nil, err
	}
	return s, r, nil
}

// touchDirLocked sets a directory's mtime and ctime after an entry change.
func (tx *Tx) touchDirLocked(d *inodeRef) {
	touch(d, true, true)
	tx.dirtyInodeLocked(d)
}

// create is the common part of Mknod, Mkdir and Symlink: in one
// transaction, check the name, allocate an inode of the given mode, let
// setup fill it in, and link it into dir.
func (fs *FS) create(dir Ino, name []byte, mode uint16, c Cred, setup func(tx *Tx, d, r *inodeRef) error) (*Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var out *Inode
	err := fs.update(&c, func(tx *Tx) error {
		d, err := tx.dirLocked(dir)
		if err != nil {
			return err
		}
		if err := tx.absentLocked(d, name); err != nil {
			return err
		}
		if mode&sIFMT == sIFDIR && fs.dirLinkMax(d) {
			return syscall.EMLINK
		}
		r, err := tx.newInodeLocked(dir, mode, c)
		if err != nil {
			return err
		}
		if err := setup(tx, d, r); err != nil {
			return err
		}
		if err := tx.addEntryLocked(d, name, r.Ino, fs.dirFtype(mode)); err != nil {
			return err
		}
		if mode&sIFMT == sIFDIR {
			fs.incDirCount(d) // after the add: it may have indexed d
		}
		tx.touchDirLocked(d)
		tx.dirtyInodeLocked(r)
		out = fs.inodeSnapshot(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Mknod creates a regular file, FIFO, socket, or character or block
// device (rdev in the kernel's new_encode_dev form, as stat reports it)
// called name in dir. mode holds the file type and permission bits.
func (fs *FS) Mknod(dir Ino, name []byte, mode, rdev uint32, c Cred) (*Inode, error) {
	t := uint16(mode) & sIFMT
	switch t {
	case sIFREG, sIFIFO, sIFSOCK, sIFCHR, sIFBLK:
	default:
		return nil, syscall.EINVAL
	}
	return fs.create(dir, name, t|uint16(mode&0o7777), c, func(tx *Tx, d, r *inodeRef) error {
		if t == sIFCHR || t == sIFBLK {
			// new_decode_dev; SetRdev picks the old or new encoding as the
			// kernel's ext4_do_update_inode does.
			major := (rdev & 0xFFF00) >> 8
			minor := rdev&0xFF | (rdev>>12)&0xFFF00
			r.Raw.SetRdev(major, minor)
		}
		return nil
	})
}

// Mkdir creates directory name in dir: inline when the filesystem has
// inline_data and the inode has room (as the kernel does), else with a
// first block holding "." and "..".
func (fs *FS) Mkdir(dir Ino, name []byte, mode uint32, c Cred) (*Inode, error) {
	return fs.create(dir, name, sIFDIR|uint16(mode&0o7777), c, func(tx *Tx, d, r *inodeRef) error {
		if r.MayInline {
			ok, err := tx.initInlineDirLocked(r, d.Ino)
			if err != nil || ok {
				return err
			}
		}
		return tx.initDirBlockLocked(r, d.Ino)
	})
}

// Symlink creates symbolic link name in dir pointing to target. Targets
// shorter than 60 bytes live in i_block (fast symlinks, no extent flag);
// longer ones, up to a block less one byte, get a data block holding the
// target and a NUL, as the kernel's ext4_symlink does.
func (fs *FS) Symlink(dir Ino, name, target []byte, c Cred) (*Inode, error) {
	switch {
	case len(target) == 0:
		return nil, syscall.ENOENT
	case bytes.IndexByte(target, 0) >= 0: // a C string on every path in
		return nil, syscall.EINVAL
	case len(target)+1 > fs.bsize:
		return nil, syscall.ENAMETOOLONG
	}
	return fs.create(dir, name, sIFLNK|0o777, c, func(tx *Tx, d, r *inodeRef) error {
		r.Raw.SetSize(uint64(len(target)))
		if len(target) < disk.InlineDataIBlockSize {
			r.Raw.Flags &^= disk.ExtentsFL
			clear(r.Raw.Block[:])
			copy(r.Raw.Block[:], target)
			return nil
		}
		pblk, _, err := tx.mapBlocksLocked(r, 0, 1, true)
		if err != nil {
			return err
		}
		b, err := tx.newBlockLocked(pblk, "symlink", r.Ino)
		if err != nil {
			return err
		}
		copy(b.Data, target)
		tx.dirtyLocked(b, nil)
		return nil
	})
}

// Link adds the name name in dir for inode ino (not a directory).
func (fs *FS) Link(ino, dir Ino, name []byte) (*Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var out *Inode
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		switch {
		case r.Raw.IsDir():
			return syscall.EPERM
		case r.Raw.LinksCount == 0:
			return syscall.ENOENT
		case r.Raw.LinksCount >= linkMax:
			return syscall.EMLINK
		}
		d, err := tx.dirLocked(dir)
		if err != nil {
			return err
		}
		if err := tx.absentLocked(d, name); err != nil {
			return err
		}
		if err := tx.addEntryLocked(d, name, ino, fs.dirFtype(r.Raw.Mode)); err != nil {
			return err
		}
		r.Raw.LinksCount++
		touch(r, false, true)
		tx.dirtyInodeLocked(r)
		tx.touchDirLocked(d)
		out = fs.inodeSnapshot(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unlink removes the entry name (not a directory: EISDIR) from dir. The
// inode loses a link; at zero links it goes on the orphan list until
// Evict frees it.
func (fs *FS) Unlink(dir Ino, name []byte) (*Inode, error) {
	var out *Inode
	err := fs.Update(func(tx *Tx) error {
		d, err := tx.dirLocked(dir)
		if err != nil {
			return err
		}
		if string(name) == "." || string(name) == ".." {
			return syscall.EISDIR
		}
		s, r, err := tx.lookupNameLocked(d, name)
		if err != nil {
			return err
		}
		if r.Raw.IsDir() {
			return syscall.EISDIR
		}
		if err := tx.removeEntryLocked(d, s); err != nil {
			return err
		}
		tx.touchDirLocked(d)
		tx.dropLinkLocked(r)
		out = fs.inodeSnapshot(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dropLinkLocked takes one link from non-directory r (the entry is gone)
// and puts it on the orphan list at zero.
func (tx *Tx) dropLinkLocked(r *inodeRef) {
	if r.Raw.LinksCount > 0 { // the kernel warns about 0 and goes on
		r.Raw.LinksCount--
	}
	touch(r, false, true)
	tx.dirtyInodeLocked(r)
	if r.Raw.LinksCount == 0 {
		tx.orphanAddLocked(r)
	}
}

// Rmdir removes the empty directory name from dir (ENOTEMPTY otherwise).
// The removed directory keeps its blocks, with no links, on the orphan
// list until Evict frees it.
func (fs *FS) Rmdir(dir Ino, name []byte) (*Inode, error) {
	switch string(name) {
	case ".":
		return nil, syscall.EINVAL
	case "..":
		return nil, syscall.ENOTEMPTY
	}
	var out *Inode
	err := fs.Update(func(tx *Tx) error {
		d, err := tx.dirLocked(dir)
		if err != nil {
			return err
		}
		s, r, err := tx.lookupNameLocked(d, name)
		if err != nil {
			return err
		}
		if !r.Raw.IsDir() {
			return syscall.ENOTDIR
		}
		empty, err := tx.dirEmptyLocked(r)
		if err != nil {
			return err
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
		if err := tx.removeEntryLocked(d, s); err != nil {
			return err
		}
		tx.killDirLocked(r)
		decDirCount(d)
		tx.touchDirLocked(d)
		out = fs.inodeSnapshot(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// killDirLocked drops all links of directory r, whose entry is gone, and
// puts it on the orphan list.
func (tx *Tx) killDirLocked(r *inodeRef) {
	r.Raw.LinksCount = 0
	touch(r, false, true)
	tx.dirtyInodeLocked(r)
	tx.orphanAddLocked(r)
}
