package ext4

import (
	"bytes"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// DirEntry is one directory entry as ReadDir reports it.
type DirEntry struct {
	Name []byte // the caller's to keep or modify
	Ino  Ino
	Type uint8  // DT_* (DTUnknown without the filetype feature)
	Next uint64 // cookie that resumes the listing after this entry
}

// Directory cookies.
//
// Linear directories: a cookie is a byte position in the directory's block
// sequence: logical block << blockbits | offset within the block. The entry
// at that position (or the first one after it) is where a listing resumes;
// each entry's Next is the position just past it. Positions need no state;
// a resumed listing after the directory changed may repeat or miss entries
// that moved, which POSIX allows for concurrent modification.
//
// htree directories list in hash order with hash-derived cookies (see
// dxPos in htree.go): a leaf split moves entries between blocks, and byte
// positions would then skip or repeat entries that were never touched.
//
// Inline directories have no "." entry on disk and store ".." as a bare
// inode number: "." is synthesised at cookie 0 (Next 1) and ".." at cookie 1
// (Next inlineFirstPos); stored entries use their byte offset in i_block
// (from 4) continuing into the system.data value.
const inlineFirstPos = disk.InlineDirParentSize

// isDx reports whether a directory is htree-indexed (the kernel's is_dx).
func (fs *FS) isDx(in *Inode) bool {
	return fs.features.dirIndex && in.hasFlag(disk.IndexFL)
}

// dirBlocks is the number of blocks spanned by a block-based directory.
func (fs *FS) dirBlocks(in *Inode) (uint64, error) {
	n := (in.Size + uint64(fs.bsize) - 1) >> fs.bshift
	if n > maxLBlk {
		return 0, fs.corruptf("directory", in.Ino, 0, "i_size %d too large", in.Size)
	}
	return n, nil
}

// dirBlk is one directory block as dirBlock returns it.
type dirBlk struct {
	data []byte // private copy; nil for a hole
	pblk PBlk
	dx   bool   // an htree index block (root or interior node)
	hole uint64 // for a hole: blocks until the next mapped block
}

// dirBlock reads logical block lblk of a directory through the buffer
// cache and returns a private copy, or a hole (which the kernel's readdir
// skips; its length lets callers skip it whole). Leaf blocks have their
// checksum tail verified; htree index blocks (which have a different tail)
// get theirs verified here too and are reported with dx set.
func (fs *FS) dirBlockLocked(in *Inode, lblk uint64) (dirBlk, error) {
	bm, err := fs.mapBlockLocked(in, lblk)
	if err != nil {
		return dirBlk{}, err
	}
	if bm.kind != MapMapped {
		return dirBlk{hole: bm.n}, nil
	}
	b, err := fs.readBlockLocked(bm.pblk, "directory block", in.Ino)
	if err != nil {
		return dirBlk{}, err
	}
	d := dirBlk{data: append([]byte(nil), b.Data...), pblk: bm.pblk}
	fs.cache.Put(b)
	// Like the kernel's __ext4_read_dirblock: in an indexed directory,
	// block 0 and blocks holding a single empty entry spanning the block
	// are index blocks.
	if fs.isDx(in) {
		first, _, ferr := disk.DecodeDirEntry(d.data, fs.bsize)
		if lblk == 0 || ferr == nil && first.Inode == 0 && disk.RecLenFromDisk(first.RecLen, fs.bsize) == fs.bsize {
			d.dx = true
		}
	}
	if fs.csum {
		if d.dx {
			err = disk.VerifyDxChecksum(fs.inodeSeed(in), d.data)
		} else {
			err = disk.VerifyDirBlockChecksum(fs.inodeSeed(in), d.data)
		}
		if err != nil {
			return dirBlk{}, fs.corrupt("directory block", in.Ino, bm.pblk, err)
		}
	}
	return d, nil
}

// checkDirent applies the checks beyond disk.DecodeDirEntry's that need
// filesystem context.
func (fs *FS) checkDirent(dir *Inode, blk PBlk, e *disk.DirEntry) error {
	if e.Inode == 0 {
		return nil
	}
	if e.Inode > fs.geo.InodesCount {
		return fs.corruptf("directory entry", dir.Ino, blk, "inode %d beyond %d inodes", e.Inode, fs.geo.InodesCount)
	}
	if e.NameLen == 0 {
		return fs.corruptf("directory entry", dir.Ino, blk, "empty name for inode %d", e.Inode)
	}
	return nil
}

// dirType returns the DT_* of an entry.
func (fs *FS) dirType(e *disk.DirEntry) uint8 {
	if !fs.features.filetype {
		return DTUnknown
	}
	return ftypeToDT(e.FileType)
}

// walkBlock calls fn for each live entry of a directory block (or inline
// region) at offsets >= from. base is the cookie position of data[0]. fn
// returning false stops the walk (more=false).
func (fs *FS) walkBlockLocked(dir *Inode, blk PBlk, data []byte, recBlockSize int, base uint64, from int,
	fn func(e *disk.DirEntry, pos, next uint64) bool) (more bool, err error) {
	it := disk.NewDirIter(data, recBlockSize)
	for {
		off := it.Offset()
		e, ok := it.Next()
		if !ok {
			break
		}
		if off < from || e.Inode == 0 {
			continue
		}
		if err := fs.checkDirent(dir, blk, &e); err != nil {
			return false, err
		}
		if !fn(&e, base+uint64(off), base+uint64(it.Offset())) {
			return false, nil
		}
	}
	if err := it.Err(); err != nil {
		return false, fs.corrupt("directory entry", dir.Ino, blk, err)
	}
	return true, nil
}

// ReadDir lists directory dir from cookie (0 = start), calling fn for each
// entry until fn returns false. "." and ".." come first. See the cookie
// notes above for stability.
func (fs *FS) ReadDir(dir Ino, cookie uint64, fn func(e DirEntry) bool) error {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(dir)
	if err != nil {
		return err
	}
	if !in.IsDir() {
		return syscall.ENOTDIR
	}
	emit := func(e *disk.DirEntry, pos, next uint64) bool {
		// Copy: e.Name may alias a cached inode's inline data.
		return fn(DirEntry{Name: append([]byte(nil), e.Name...), Ino: Ino(e.Inode), Type: fs.dirType(e), Next: next})
	}
	if in.hasFlag(disk.InlineDataFL) {
		return fs.readInlineDirLocked(in, cookie, fn, emit)
	}
	if fs.isDx(in) {
		return fs.dxReadDirLocked(in, cookie, fn)
	}
	n, err := fs.dirBlocks(in)
	if err != nil {
		return err
	}
	mask := uint64(fs.bsize - 1)
	for lblk := cookie >> fs.bshift; lblk < n; lblk++ {
		d, err := fs.dirBlockLocked(in, lblk)
		if err != nil {
			return err
		}
		if d.data == nil {
			lblk += d.hole - 1 // holes hold no entries
			continue
		}
		from := 0
		if lblk == cookie>>fs.bshift {
			from = int(cookie & mask)
		}
		more, err := fs.walkBlockLocked(in, d.pblk, d.data, fs.bsize, lblk<<fs.bshift, from, emit)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// inlineDirRegions returns the parent inode and the two dirent regions of
// an inline directory, and the cookie base of the second region.
func (fs *FS) inlineDirRegions(in *Inode) (parent uint32, r1, r2 []byte, base2 uint64, err error) {
	es, err := fs.ibodyXattrs(in)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	var extra []byte
	found := false
	for i := range es {
		if es[i].NameIndex == disk.InlineDataXattrIndex && string(es[i].Name) == disk.InlineDataXattrName && es[i].ValueInum == 0 {
			extra, found = es[i].Value, true
		}
	}
	if !found {
		return 0, nil, nil, 0, fs.corruptf("inline directory", in.Ino, 0, "no system.data attribute")
	}
	block := in.raw.Block
	parent, r1, r2 = disk.InlineDirRegions(&block, extra)
	return parent, r1, r2, disk.InlineDataIBlockSize, nil
}

func (fs *FS) readInlineDirLocked(in *Inode, cookie uint64, fn func(DirEntry) bool,
	emit func(e *disk.DirEntry, pos, next uint64) bool) error {
	parent, r1, r2, base2, err := fs.inlineDirRegions(in)
	if err != nil {
		return err
	}
	if parent == 0 || parent > fs.geo.InodesCount {
		return fs.corruptf("inline directory", in.Ino, 0, "parent inode %d invalid", parent)
	}
	if cookie == 0 && !fn(DirEntry{Name: []byte("."), Ino: in.Ino, Type: DTDir, Next: 1}) {
		return nil
	}
	if cookie <= 1 && !fn(DirEntry{Name: []byte(".."), Ino: Ino(parent), Type: DTDir, Next: inlineFirstPos}) {
		return nil
	}
	pos := max(cookie, inlineFirstPos)
	if pos < base2 {
		more, err := fs.walkBlockLocked(in, 0, r1, len(r1), inlineFirstPos, int(pos-inlineFirstPos), emit)
		if err != nil || !more {
			return err
		}
		pos = base2
	}
	if pos-base2 < uint64(len(r2)) {
		_, err := fs.walkBlockLocked(in, 0, r2, len(r2), base2, int(pos-base2), emit)
		return err
	}
	return nil
}

// Lookup finds name in directory dir: ENOTDIR if dir is not a directory,
// ENOENT if there is no such entry, ENAMETOOLONG for names over 255 bytes.
func (fs *FS) Lookup(dir Ino, name []byte) (Ino, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(dir)
	if err != nil {
		return 0, err
	}
	if !in.IsDir() {
		return 0, syscall.ENOTDIR
	}
	switch {
	case len(name) > disk.MaxNameLen:
		return 0, syscall.ENAMETOOLONG
	case len(name) == 0:
		return 0, syscall.ENOENT
	case string(name) == ".":
		return dir, nil
	}
	if in.hasFlag(disk.InlineDataFL) {
		return fs.lookupInlineLocked(in, name)
	}
	if fs.isDx(in) && string(name) != ".." {
		// ".." lives in the root block, outside the hash index.
		return fs.dxLookupLocked(in, name)
	}
	return fs.lookupLinearLocked(in, name)
}

func (fs *FS) lookupInlineLocked(in *Inode, name []byte) (Ino, error) {
	parent, r1, r2, _, err := fs.inlineDirRegions(in)
	if err != nil {
		return 0, err
	}
	if string(name) == ".." {
		if parent == 0 || parent > fs.geo.InodesCount {
			return 0, fs.corruptf("inline directory", in.Ino, 0, "parent inode %d invalid", parent)
		}
		return Ino(parent), nil
	}
	for _, r := range [][]byte{r1, r2} {
		if ino, err := fs.searchEntriesLocked(in, 0, r, len(r), name); ino != 0 || err != nil {
			return ino, err
		}
	}
	return 0, syscall.ENOENT
}

// lookupLinear scans every block of a directory (the kernel's
// non-indexed lookup). ".." is always in block 0.
func (fs *FS) lookupLinearLocked(in *Inode, name []byte) (Ino, error) {
	n, err := fs.dirBlocks(in)
	if err != nil {
		return 0, err
	}
	if string(name) == ".." {
		n = min(n, 1)
	}
	for lblk := uint64(0); lblk < n; lblk++ {
		d, err := fs.dirBlockLocked(in, lblk)
		if err != nil {
			return 0, err
		}
		if d.data == nil {
			lblk += d.hole - 1
			continue
		}
		if d.dx && lblk != 0 {
			continue
		}
		if ino, err := fs.searchEntriesLocked(in, d.pblk, d.data, fs.bsize, name); ino != 0 || err != nil {
			return ino, err
		}
	}
	return 0, syscall.ENOENT
}

// searchEntries returns the inode of the live entry called name in data,
// or 0.
func (fs *FS) searchEntriesLocked(dir *Inode, blk PBlk, data []byte, recBlockSize int, name []byte) (Ino, error) {
	var found Ino
	_, err := fs.walkBlockLocked(dir, blk, data, recBlockSize, 0, 0, func(e *disk.DirEntry, _, _ uint64) bool {
		if bytes.Equal(e.Name, name) {
			found = Ino(e.Inode)
			return false
		}
		return true
	})
	return found, err
}
