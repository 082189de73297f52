package ext4

import (
	"syscall"
)

// Rename flags (renameat2(2)); the values are Linux's.
const (
	RenameNoReplace = 1 << 0 // RENAME_NOREPLACE: fail with EEXIST if the new name exists
	RenameExchange  = 1 << 1 // RENAME_EXCHANGE: swap the two names atomically
	RenameWhiteout  = 1 << 2 // RENAME_WHITEOUT: overlayfs whiteouts, not supported (EINVAL)
)

// renameEnd is one side of a rename: a directory and an entry in it.
type renameEnd struct {
	dir  *inodeRef
	name []byte
	slot *dirSlot  // nil if the entry does not exist (new side)
	ino  *inodeRef // the inode the entry names
}

// Rename moves the entry oname of odir to nname in ndir, in one
// transaction, with the semantics of rename(2) and renameat2(2) flags
// RenameNoReplace and RenameExchange. An existing nname is replaced
// (a file by a non-directory, an empty directory by a directory); the
// replaced inode, returned, loses that link and at zero links goes on the
// orphan list. Moving a directory updates its ".." and the parents' link
// counts; moving one into its own subtree is EINVAL.
func (fs *FS) Rename(odir Ino, oname []byte, ndir Ino, nname []byte, flags uint32) (*Inode, error) {
	switch {
	case flags&^(RenameNoReplace|RenameExchange|RenameWhiteout) != 0,
		flags&RenameWhiteout != 0,
		flags&RenameNoReplace != 0 && flags&RenameExchange != 0:
		return nil, syscall.EINVAL
	}
	for _, n := range [][]byte{oname, nname} {
		if string(n) == "." || string(n) == ".." {
			return nil, syscall.EBUSY
		}
		if err := checkName(n); err != nil {
			return nil, err
		}
	}
	var replaced *Inode
	err := fs.Update(func(tx *Tx) error {
		o, n, err := tx.renameEndsLocked(odir, oname, ndir, nname, flags)
		if err != nil || o == nil {
			return err
		}
		if flags&RenameExchange != 0 {
			return tx.exchangeLocked(o, n)
		}
		if err := tx.renameLocked(o, n); err != nil {
			return err
		}
		if n.ino != nil {
			replaced = fs.inodeSnapshot(n.ino)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// renameEndsLocked resolves both sides and applies the checks that do not
// depend on the kind of rename. It returns nil ends (and no error) when
// both names already refer to the same inode, where rename does nothing.
func (tx *Tx) renameEndsLocked(odir Ino, oname []byte, ndir Ino, nname []byte, flags uint32) (o, n *renameEnd, err error) {
	o = &renameEnd{name: oname}
	n = &renameEnd{name: nname}
	if o.dir, err = tx.dirLocked(odir); err != nil {
		return nil, nil, err
	}
	if n.dir, err = tx.dirLocked(ndir); err != nil {
		return nil, nil, err
	}
	if o.slot, o.ino, err = tx.lookupNameLocked(o.dir, oname); err != nil {
		return nil, nil, err
	}
	switch n.slot, n.ino, err = tx.lookupNameLocked(n.dir, nname); {
	case err == syscall.ENOENT:
		if flags&RenameExchange != 0 {
			return nil, nil, err
		}
		n.slot, n.ino = nil, nil
	case err != nil:
		return nil, nil, err
	case flags&RenameNoReplace != 0:
		return nil, nil, syscall.EEXIST
	case n.ino == o.ino:
		return nil, nil, nil
	}
	// A directory must not move below itself.
	if o.ino.Raw.IsDir() && o.dir != n.dir {
		if err := tx.checkNotAncestorLocked(o.ino, n.dir); err != nil {
			return nil, nil, err
		}
	}
	if flags&RenameExchange != 0 && n.ino.Raw.IsDir() && o.dir != n.dir {
		if err := tx.checkNotAncestorLocked(n.ino, o.dir); err != nil {
			return nil, nil, err
		}
	}
	return o, n, nil
}

// checkNotAncestorLocked returns EINVAL if directory a is dir or one of its
// ancestors, walking ".." up to the root (a cycle is corruption).
func (tx *Tx) checkNotAncestorLocked(a, dir *inodeRef) error {
	fs := tx.fs
	seen := make(map[Ino]struct{})
	for cur := dir; ; {
		if cur.Ino == a.Ino {
			return syscall.EINVAL
		}
		if cur.Ino == RootIno {
			return nil
		}
		if _, dup := seen[cur.Ino]; dup {
			return fs.corruptf("directory", cur.Ino, 0, "'..' chain loops")
		}
		seen[cur.Ino] = struct{}{}
		s, err := tx.dotDotLocked(cur)
		if err != nil {
			return err
		}
		if cur, err = tx.inodeLocked(s.ino); err != nil {
			return err
		}
		if !cur.Raw.IsDir() {
			return fs.corruptf("directory", s.ino, 0, "'..' names a non-directory")
		}
	}
}

// renameLocked moves o to n, replacing n's inode if there is one (the
// kernel's ext4_rename).
func (tx *Tx) renameLocked(o, n *renameEnd) error {
	fs := tx.fs
	isDir := o.ino.Raw.IsDir()
	if n.ino != nil {
		switch {
		case isDir && !n.ino.Raw.IsDir():
			return syscall.ENOTDIR
		case !isDir && n.ino.Raw.IsDir():
			return syscall.EISDIR
		case isDir:
			empty, err := tx.dirEmptyLocked(n.ino)
			if err != nil {
				return err
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
		}
	} else if isDir && o.dir != n.dir && fs.dirLinkMax(n.dir) {
		return syscall.EMLINK
	}

	ft := fs.dirFtype(o.ino.Raw.Mode)
	if n.slot != nil {
		if err := tx.setEntryLocked(n.dir, n.slot, o.ino.Ino, ft); err != nil {
			return err
		}
	} else if err := tx.addEntryLocked(n.dir, n.name, o.ino.Ino, ft); err != nil {
		return err
	}
	// Adding may have moved the old entry (a split, an htree or block
	// conversion): find it again before deleting it.
	s, err := tx.findEntryLocked(o.dir, o.name)
	if err != nil {
		return err
	}
	if s.ino != o.ino.Ino {
		return fs.corruptf("directory", o.dir.Ino, 0, "entry %q changed during rename", o.name)
	}
	if err := tx.removeEntryLocked(o.dir, s); err != nil {
		return err
	}
	touch(o.ino, false, true)
	tx.dirtyInodeLocked(o.ino)

	if n.ino != nil {
		if n.ino.Raw.IsDir() {
			tx.killDirLocked(n.ino)
		} else {
			tx.dropLinkLocked(n.ino)
		}
	}
	if isDir {
		if o.dir != n.dir {
			if err := tx.setDotDotLocked(o.ino, n.dir.Ino); err != nil {
				return err
			}
		}
		// The moved directory's ".." left o.dir; n.dir gains it unless it
		// replaced a directory whose ".." pointed there already.
		decDirCount(o.dir)
		if n.ino == nil {
			fs.incDirCount(n.dir)
		}
	}
	tx.touchDirLocked(o.dir)
	tx.touchDirLocked(n.dir)
	return nil
}

// exchangeLocked swaps the inodes of two existing entries (the kernel's
// ext4_cross_rename).
func (tx *Tx) exchangeLocked(o, n *renameEnd) error {
	fs := tx.fs
	oDir, nDir := o.ino.Raw.IsDir(), n.ino.Raw.IsDir()
	cross := o.dir != n.dir
	if cross && oDir != nDir {
		// The directory's ".." changes parent: the receiving parent must
		// have room for another subdirectory.
		gains := n.dir
		if nDir {
			gains = o.dir
		}
		if fs.dirLinkMax(gains) {
			return syscall.EMLINK
		}
	}
	oft, nft := fs.dirFtype(o.ino.Raw.Mode), fs.dirFtype(n.ino.Raw.Mode)
	if err := tx.setEntryLocked(n.dir, n.slot, o.ino.Ino, oft); err != nil {
		return err
	}
	// The first change may have rewritten o's block or inline area (same
	// directory): find o's entry again.
	s, err := tx.findEntryLocked(o.dir, o.name)
	if err != nil {
		return err
	}
	if err := tx.setEntryLocked(o.dir, s, n.ino.Ino, nft); err != nil {
		return err
	}
	for _, r := range []*inodeRef{o.ino, n.ino} {
		touch(r, false, true)
		tx.dirtyInodeLocked(r)
	}
	if cross {
		if oDir {
			if err := tx.setDotDotLocked(o.ino, n.dir.Ino); err != nil {
				return err
			}
		}
		if nDir {
			if err := tx.setDotDotLocked(n.ino, o.dir.Ino); err != nil {
				return err
			}
		}
		if oDir && !nDir {
			decDirCount(o.dir)
			fs.incDirCount(n.dir)
		} else if nDir && !oDir {
			decDirCount(n.dir)
			fs.incDirCount(o.dir)
		}
	}
	tx.touchDirLocked(o.dir)
	tx.touchDirLocked(n.dir)
	return nil
}
