package ext4

import (
	"bytes"
	"errors"
	"syscall"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/disk"
)

// Directory writes: the block-level edits of directory entries (find room,
// insert, delete with record merging, pack fresh blocks) and, on top of
// them, adding, finding, changing and removing entries in a directory of
// any of the three kinds (linear, htree in htree_write.go, inline in
// inline_dir_write.go). The edits mirror fs/ext4/namei.c so that the
// kernel and e2fsck see the layouts they produce themselves.

// errNoSpace reports that a directory block (or inline region) has no room
// for an entry; callers then split, convert or append.
var errNoSpace = errors.New("no room in directory block")

// errEmptyName reports a live entry without a name, which the read path
// also calls corrupt.
var errEmptyName = errors.New("live directory entry with an empty name")

// dent is a directory entry to write.
type dent struct {
	name []byte
	ino  uint32
	ft   uint8 // EXT4_FT_*, 0 without the filetype feature
	size int   // for an entry read from a block: its record length there
}

// recLen is the space the entry needs (EXT4_DIR_REC_LEN).
func (e *dent) recLen() int { return disk.DirRecLen(len(e.name)) }

// leafEnd is where the entries of a leaf block end: before the checksum
// tail with metadata_csum.
func (fs *FS) leafEnd() int {
	if fs.csum {
		return fs.bsize - disk.DirTailSize
	}
	return fs.bsize
}

// findSlot looks for room for e in region b, as the kernel's
// ext4_find_dest_de: the first unused entry large enough, or live one
// whose slack past its own record is. It returns the offset of that
// entry, errNoSpace, EEXIST if e's name is anywhere in the region (the
// kernel stops looking at the slot; the whole region costs little more),
// or the decode error of a malformed entry. recBlock is the block size
// for rec_len decoding (len(b) for inline regions).
func findSlot(b []byte, recBlock int, e *dent) (int, error) {
	need := e.recLen()
	slot := -1
	it := disk.NewDirIter(b, recBlock)
	for {
		off := it.Offset()
		de, ok := it.Next()
		if !ok {
			break
		}
		if de.Inode != 0 && de.NameLen == 0 {
			return 0, errEmptyName // splitting it would leave an 8-byte record
		}
		if de.Inode != 0 && bytes.Equal(de.Name, e.name) {
			return 0, syscall.EEXIST
		}
		free := it.Offset() - off
		if de.Inode != 0 {
			free -= disk.DirRecLen(int(de.NameLen))
		}
		if slot < 0 && free >= need {
			slot = off
		}
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	if slot < 0 {
		return 0, errNoSpace
	}
	return slot, nil
}

// putEntry writes e into the slot at off that findSlot chose (the
// kernel's ext4_insert_dentry): a live entry is shortened to its own
// record and e takes the rest; an unused one is taken whole.
func putEntry(b []byte, off, recBlock int, e *dent) {
	de, rl, _ := disk.DecodeDirEntry(b[off:], recBlock) // findSlot validated it
	if de.Inode != 0 {
		own := disk.DirRecLen(int(de.NameLen))
		disk.EncodeDirEntry(b[off:], de.Inode, own, de.FileType, de.Name, recBlock)
		off += own
		rl -= own
	}
	disk.EncodeDirEntry(b[off:], e.ino, rl, e.ft, e.name, recBlock)
}

// insertEntry finds room for e in region b and writes it there.
func insertEntry(b []byte, recBlock int, e *dent) error {
	off, err := findSlot(b, recBlock, e)
	if err != nil {
		return err
	}
	putEntry(b, off, recBlock, e)
	return nil
}

// findEntry returns the offset and contents of the live entry called name
// in region b; ok is false if there is none.
func findEntry(b []byte, recBlock int, name []byte) (off int, de disk.DirEntry, ok bool, err error) {
	it := disk.NewDirIter(b, recBlock)
	for {
		off = it.Offset()
		de, more := it.Next()
		if !more {
			return 0, de, false, it.Err()
		}
		if de.Inode != 0 && bytes.Equal(de.Name, name) {
			return off, de, true, nil
		}
	}
}

// deleteAt removes the entry at offset at of region b as the kernel's
// ext4_generic_delete_entry: its space joins the previous entry's record,
// or, for the first entry of the region, it becomes unused. The removed
// bytes are wiped (past the surviving rec_len), as the kernel does, so
// deleted names do not linger on disk.
func deleteAt(b []byte, recBlock int, at int) error {
	it := disk.NewDirIter(b, recBlock)
	prev := -1
	for {
		off := it.Offset()
		if _, ok := it.Next(); !ok {
			if err := it.Err(); err != nil {
				return err
			}
			return errors.New("directory entry to delete not found")
		}
		if off != at {
			prev = off
			continue
		}
		rl := it.Offset() - off
		if prev < 0 {
			// Keep rec_len: the region must still be covered.
			clear(b[off : off+4])
			clear(b[off+6 : off+rl])
			return nil
		}
		pde, prl, _ := disk.DecodeDirEntry(b[prev:], recBlock)
		disk.EncodeDirEntry(b[prev:], pde.Inode, prl+rl, pde.FileType, pde.Name, recBlock)
		clear(b[off : off+rl])
		return nil
	}
}

// initLeaf formats b (a whole block) as an empty leaf: one unused entry
// spanning the entry area, then the checksum tail with metadata_csum.
func (fs *FS) initLeaf(b []byte) {
	clear(b)
	end := fs.leafEnd()
	disk.EncodeDirEntry(b, 0, end, 0, nil, fs.bsize)
	if fs.csum {
		disk.InitDirTail(b)
	}
}

// packLeaf formats b (a whole block) as a leaf holding es in order, packed
// from the start, the last record spanning to the end of the entry area.
// It reports false, leaving b unspecified, if they do not fit.
func (fs *FS) packLeaf(b []byte, es []dent) bool {
	end := fs.leafEnd()
	total := 0
	for i := range es {
		total += es[i].recLen()
	}
	if total > end {
		return false
	}
	if len(es) == 0 {
		fs.initLeaf(b)
		return true
	}
	clear(b)
	off := 0
	for i := range es {
		rl := es[i].recLen()
		if i == len(es)-1 {
			rl = end - off
		}
		disk.EncodeDirEntry(b[off:], es[i].ino, rl, es[i].ft, es[i].name, fs.bsize)
		off += rl
	}
	if fs.csum {
		disk.InitDirTail(b)
	}
	return true
}

// liveEntries returns copies of the live entries of region b, in order,
// with their record lengths.
func liveEntries(b []byte, recBlock int) ([]dent, error) {
	var es []dent
	it := disk.NewDirIter(b, recBlock)
	for {
		off := it.Offset()
		de, ok := it.Next()
		if !ok {
			break
		}
		if de.Inode != 0 && de.NameLen != 0 {
			es = append(es, dent{name: append([]byte(nil), de.Name...), ino: de.Inode, ft: de.FileType, size: it.Offset() - off})
		}
	}
	return es, it.Err()
}

// ---------------------------------------------------------------------------
// Directory-level operations inside a transaction.

// dirSlot locates a live directory entry for in-place changes.
type dirSlot struct {
	lblk   uint64      // directory block (block directories)
	buf    *bcache.Buf // nil for inline directories
	inline []byte      // inline directories: the whole inline data (i_block, then system.data)
	region [2]int      // the region of buf.Data or inline holding the entry
	off    int         // entry offset within the region
	ino    Ino
	ft     uint8
}

// dirFtype is the file_type byte for an inode of mode m.
func (fs *FS) dirFtype(mode uint16) uint8 {
	if !fs.features.filetype {
		return disk.FtUnknown
	}
	return disk.FileTypeFromMode(mode)
}

// isDxRef is isDx for a transaction's working inode.
func (fs *FS) isDxRef(r *inodeRef) bool {
	return fs.features.dirIndex && r.Raw.Flags&disk.IndexFL != 0
}

// dirSeed is the checksum seed of directory r's blocks.
func (fs *FS) dirSeed(r *inodeRef) uint32 {
	return disk.InodeCsumSeed(fs.seed, uint32(r.Ino), r.Raw.Generation)
}

// leafCsum returns the write-back hook that sets a leaf block's checksum.
func (fs *FS) leafCsum(r *inodeRef) func([]byte) {
	if !fs.csum {
		return nil
	}
	seed := fs.dirSeed(r)
	return func(b []byte) { _ = disk.SetDirBlockChecksum(seed, b) } // blocks always get a tail here
}

// dxCsum returns the write-back hook that sets an htree index block's
// checksum.
func (fs *FS) dxCsum(r *inodeRef) func([]byte) {
	if !fs.csum {
		return nil
	}
	seed := fs.dirSeed(r)
	return func(b []byte) { _ = disk.SetDxChecksum(seed, b) } // built by us, always well-formed
}

// dirNBlocks is the number of blocks of block directory r.
func (fs *FS) dirNBlocks(r *inodeRef) (uint64, error) {
	size := r.Raw.Size()
	n := (size + uint64(fs.bsize) - 1) >> fs.bshift
	if n > maxLBlk || size&uint64(fs.bsize-1) != 0 {
		return 0, fs.corruptf("directory", r.Ino, 0, "i_size %d is not a whole number of blocks", size)
	}
	return n, nil
}

// dirBufLocked returns directory block lblk of r for modification, or nil
// for a hole. A block read from disk has its checksum verified first, as
// an index block or a leaf by the kernel's rule (__ext4_read_dirblock: in
// an indexed directory, block 0 and blocks whose first entry is an unused
// one spanning the block are index blocks); one already changed in this
// transaction is trusted, its checksum being set only at commit.
func (tx *Tx) dirBufLocked(r *inodeRef, lblk uint64) (*bcache.Buf, error) {
	fs := tx.fs
	pblk, _, err := tx.mapBlocksLocked(r, lblk, 1, false)
	if err != nil {
		return nil, err
	}
	if pblk == 0 {
		return nil, nil
	}
	b, err := tx.getBlockLocked(pblk, "directory block", r.Ino)
	if err != nil {
		return nil, err
	}
	if fs.csum && !tx.changedLocked(b) {
		if fs.isDxBlock(r, lblk, b.Data) {
			err = disk.VerifyDxChecksum(fs.dirSeed(r), b.Data)
		} else {
			err = disk.VerifyDirBlockChecksum(fs.dirSeed(r), b.Data)
		}
		if err != nil {
			return nil, fs.corrupt("directory block", r.Ino, pblk, err)
		}
	}
	return b, nil
}

// changedLocked reports whether b was changed earlier in this transaction
// (its checksum is then stale until commit).
func (tx *Tx) changedLocked(b *bcache.Buf) bool {
	tb, ok := tx.bufs[b.Blk]
	return ok && tb.dirty
}

// isDxBlock tells index blocks from leaves (see dirBufLocked).
func (fs *FS) isDxBlock(r *inodeRef, lblk uint64, data []byte) bool {
	if !fs.isDxRef(r) {
		return false
	}
	if lblk == 0 {
		return true
	}
	de, _, err := disk.DecodeDirEntry(data, fs.bsize)
	return err == nil && de.Inode == 0 && disk.RecLenFromDisk(de.RecLen, fs.bsize) == fs.bsize
}

// leafBufLocked is dirBufLocked for a leaf that must exist.
func (tx *Tx) leafBufLocked(r *inodeRef, lblk uint64) (*bcache.Buf, error) {
	b, err := tx.dirBufLocked(r, lblk)
	if err == nil && b == nil {
		err = tx.fs.corruptf("directory", r.Ino, 0, "leaf block %d is a hole", lblk)
	}
	return b, err
}

// appendDirBlockLocked adds a block at the end of directory r (the
// kernel's ext4_append): allocated, i_size grown by a block, and returned
// zeroed for the caller to format and dirty.
func (tx *Tx) appendDirBlockLocked(r *inodeRef) (uint64, *bcache.Buf, error) {
	fs := tx.fs
	lblk, err := fs.dirNBlocks(r)
	if err != nil {
		return 0, nil, err
	}
	// Without large_dir the kernel keeps directories under 2 GiB (i_size_high
	// is not a directory field there); beyond that the index is full anyway.
	if !fs.features.largeDir && (lblk+1)<<fs.bshift >= 1<<31 || lblk+1 >= maxLBlk {
		return 0, nil, syscall.ENOSPC
	}
	pblk, _, err := tx.mapBlocksLocked(r, lblk, 1, true)
	if err != nil {
		return 0, nil, err
	}
	b, err := tx.newBlockLocked(pblk, "directory block", r.Ino)
	if err != nil {
		return 0, nil, err
	}
	r.Raw.SetSize((lblk + 1) << fs.bshift)
	tx.dirtyInodeLocked(r)
	return lblk, b, nil
}

// checkName validates a name for a new entry.
func checkName(name []byte) error {
	switch {
	case len(name) > disk.MaxNameLen:
		return syscall.ENAMETOOLONG
	case len(name) == 0:
		return syscall.ENOENT
	case string(name) == "." || string(name) == "..":
		return syscall.EEXIST
	case bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0:
		return syscall.EINVAL
	}
	return nil
}

// addEntryLocked adds the entry name -> ino (file type ft) to directory d,
// which must not hold name already (the search finds duplicates in the
// blocks it scans and reports EEXIST, but callers look up first).
func (tx *Tx) addEntryLocked(d *inodeRef, name []byte, ino Ino, ft uint8) error {
	fs := tx.fs
	e := &dent{name: name, ino: uint32(ino), ft: ft}
	if d.Raw.Flags&disk.InlineDataFL != 0 {
		done, err := tx.inlineAddLocked(d, e)
		if err != nil || done {
			return err
		}
		// Converted to a one-block directory: go on below.
	}
	if fs.isDxRef(d) {
		return tx.dxAddLocked(d, e)
	}
	if !fs.features.dirIndex && d.Raw.Flags&disk.IndexFL != 0 {
		// A stale index flag (dir_index turned off): the kernel's
		// ext4_update_dx_flag drops it, and the blocks read linearly.
		d.Raw.Flags &^= disk.IndexFL
		tx.dirtyInodeLocked(d)
	}
	n, err := fs.dirNBlocks(d)
	if err != nil {
		return err
	}
	end := fs.leafEnd()
	for lblk := uint64(0); lblk < n; lblk++ {
		b, err := tx.dirBufLocked(d, lblk)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		switch err := insertEntry(b.Data[:end], fs.bsize, e); {
		case err == nil:
			tx.dirtyLocked(b, fs.leafCsum(d))
			return nil
		case err == errNoSpace:
		case errors.Is(err, syscall.EEXIST):
			return err
		default:
			return fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err)
		}
		// The kernel indexes a directory when its only block is full.
		if n == 1 && fs.features.dirIndex {
			ok, err := tx.makeIndexedLocked(d, b, e)
			if err != nil || ok {
				return err
			}
		}
	}
	_, b, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return err
	}
	fs.initLeaf(b.Data)
	if err := insertEntry(b.Data[:end], fs.bsize, e); err != nil {
		return fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err) // cannot happen: empty block
	}
	tx.dirtyLocked(b, fs.leafCsum(d))
	return nil
}

// findEntryLocked locates the live entry called name in directory d
// (not "." or ".."): ENOENT if there is none.
func (tx *Tx) findEntryLocked(d *inodeRef, name []byte) (*dirSlot, error) {
	fs := tx.fs
	if d.Raw.Flags&disk.InlineDataFL != 0 {
		return tx.inlineFindLocked(d, name)
	}
	if fs.isDxRef(d) {
		return tx.dxFindLocked(d, name)
	}
	n, err := fs.dirNBlocks(d)
	if err != nil {
		return nil, err
	}
	for lblk := uint64(0); lblk < n; lblk++ {
		b, err := tx.dirBufLocked(d, lblk)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		if s, err := tx.searchLeafLocked(d, lblk, b, name); s != nil || err != nil {
			return s, err
		}
	}
	return nil, syscall.ENOENT
}

// searchLeafLocked looks for name in leaf block b.
func (tx *Tx) searchLeafLocked(d *inodeRef, lblk uint64, b *bcache.Buf, name []byte) (*dirSlot, error) {
	fs := tx.fs
	end := fs.leafEnd()
	off, de, ok, err := findEntry(b.Data[:end], fs.bsize, name)
	if err != nil {
		return nil, fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err)
	}
	if !ok {
		return nil, nil
	}
	if de.Inode > fs.geo.InodesCount {
		return nil, fs.corruptf("directory entry", d.Ino, PBlk(b.Blk), "inode %d beyond %d inodes", de.Inode, fs.geo.InodesCount)
	}
	return &dirSlot{lblk: lblk, buf: b, region: [2]int{0, end}, off: off, ino: Ino(de.Inode), ft: de.FileType}, nil
}

// removeEntryLocked deletes the entry at s from directory d.
func (tx *Tx) removeEntryLocked(d *inodeRef, s *dirSlot) error {
	fs := tx.fs
	if s.buf == nil {
		reg := s.inline[s.region[0]:s.region[1]]
		if err := deleteAt(reg, len(reg), s.off); err != nil {
			return fs.corrupt("inline directory", d.Ino, 0, err)
		}
		return tx.setInlineDataLocked(d, s.inline)
	}
	if err := deleteAt(s.buf.Data[:s.region[1]], fs.bsize, s.off); err != nil {
		return fs.corrupt("directory entry", d.Ino, PBlk(s.buf.Blk), err)
	}
	tx.dirtyLocked(s.buf, fs.leafCsum(d))
	return nil
}

// setEntryLocked points the entry at s to another inode (the kernel's
// ext4_setent, used by rename over an existing name).
func (tx *Tx) setEntryLocked(d *inodeRef, s *dirSlot, ino Ino, ft uint8) error {
	var reg []byte
	if s.buf == nil {
		reg = s.inline[s.region[0]:s.region[1]]
	} else {
		reg = s.buf.Data[s.region[0]:s.region[1]]
	}
	de := reg[s.off:]
	de[0], de[1], de[2], de[3] = byte(ino), byte(ino>>8), byte(ino>>16), byte(ino>>24)
	if tx.fs.features.filetype {
		de[7] = ft
	}
	s.ino, s.ft = ino, ft
	if s.buf == nil {
		return tx.setInlineDataLocked(d, s.inline)
	}
	tx.dirtyLocked(s.buf, tx.fs.leafCsum(d))
	return nil
}

// dotDotLocked returns the ".." entry of block directory d (the second
// entry of block 0) for reading or changing in place.
func (tx *Tx) dotDotLocked(d *inodeRef) (*dirSlot, error) {
	fs := tx.fs
	if d.Raw.Flags&disk.InlineDataFL != 0 {
		return tx.inlineDotDotLocked(d)
	}
	b, err := tx.dirBufLocked(d, 0)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fs.corruptf("directory", d.Ino, 0, "block 0 is a hole")
	}
	bad := func() error {
		return fs.corruptf("directory", d.Ino, PBlk(b.Blk), "block 0 does not start with '.' and '..'")
	}
	dot, n, err := disk.DecodeDirEntry(b.Data, fs.bsize)
	if err != nil || string(dot.Name) != "." {
		return nil, bad()
	}
	dd, _, err := disk.DecodeDirEntry(b.Data[n:], fs.bsize)
	if err != nil || string(dd.Name) != ".." || dd.Inode == 0 || dd.Inode > fs.geo.InodesCount {
		return nil, bad()
	}
	return &dirSlot{buf: b, region: [2]int{0, fs.bsize}, off: n, ino: Ino(dd.Inode), ft: dd.FileType}, nil
}

// setDotDotLocked makes ".." of directory d point to parent.
func (tx *Tx) setDotDotLocked(d *inodeRef, parent Ino) error {
	s, err := tx.dotDotLocked(d)
	if err != nil {
		return err
	}
	if s.buf == nil {
		return tx.inlineSetParentLocked(d, parent)
	}
	de := s.buf.Data[s.off:]
	de[0], de[1], de[2], de[3] = byte(parent), byte(parent>>8), byte(parent>>16), byte(parent>>24)
	if tx.fs.isDxRef(d) {
		tx.dirtyLocked(s.buf, tx.fs.dxCsum(d))
	} else {
		tx.dirtyLocked(s.buf, tx.fs.leafCsum(d))
	}
	return nil
}

// dirEmptyLocked reports whether directory d holds nothing but "." and
// ".." (the kernel's ext4_empty_dir). htree index blocks hold no live
// entries, so a linear scan of every block is right for both kinds.
func (tx *Tx) dirEmptyLocked(d *inodeRef) (bool, error) {
	fs := tx.fs
	if d.Raw.Flags&disk.InlineDataFL != 0 {
		return tx.inlineEmptyLocked(d)
	}
	n, err := fs.dirNBlocks(d)
	if err != nil {
		return false, err
	}
	for lblk := uint64(0); lblk < n; lblk++ {
		b, err := tx.dirBufLocked(d, lblk)
		if err != nil {
			return false, err
		}
		if b == nil {
			continue
		}
		it := disk.NewDirIter(b.Data, fs.bsize)
		for de, ok := it.Next(); ok; de, ok = it.Next() {
			if de.Inode == 0 {
				continue
			}
			if lblk == 0 && (string(de.Name) == "." || string(de.Name) == "..") {
				continue
			}
			return false, nil
		}
		if err := it.Err(); err != nil {
			return false, fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err)
		}
	}
	return true, nil
}

// initDirBlockLocked gives new directory r its first block with "." and
// ".." (the kernel's ext4_init_dirblock).
func (tx *Tx) initDirBlockLocked(r *inodeRef, parent Ino) error {
	fs := tx.fs
	_, b, err := tx.appendDirBlockLocked(r)
	if err != nil {
		return err
	}
	ok := fs.packLeaf(b.Data, []dent{
		{name: []byte("."), ino: uint32(r.Ino), ft: fs.dirFtype(sIFDIR)},
		{name: []byte(".."), ino: uint32(parent), ft: fs.dirFtype(sIFDIR)},
	})
	if !ok {
		return fs.corruptf("directory", r.Ino, PBlk(b.Blk), "block too small for '.' and '..'")
	}
	tx.dirtyLocked(b, fs.leafCsum(r))
	return nil
}
