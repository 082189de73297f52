package ext4

import (
	"encoding/binary"
	"errors"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// Inline directories (inline_data), after fs/ext4/inline.c. The inline
// data is i_block (60 bytes) followed by the value of the in-inode
// system.data attribute. A directory keeps its parent's inode number in
// the first 4 bytes, then entries in two regions: the rest of i_block, and
// the attribute value, each a self-contained run of records. A new
// directory starts with an empty attribute; when i_block is full the
// attribute grows at once to all the room the inode body has left (the
// kernel's ext4_update_inline_dir), and when that is full too the
// directory moves to a block (ext4_convert_inline_dir).

const inlineRegion1 = disk.InlineDirParentSize // region 1: i_block[4:60]

// inlineAddLocked adds e to inline directory d. It reports false, with the
// directory converted to a one-block directory, when the inline area is
// full; the caller then adds e there.
func (tx *Tx) inlineAddLocked(d *inodeRef, e *dent) (bool, error) {
	fs := tx.fs
	data, err := tx.inlineDataLocked(d)
	if err != nil {
		return false, err
	}
	try := func(reg []byte) (bool, error) {
		switch err := insertEntry(reg, len(reg), e); {
		case err == nil:
			return true, tx.setInlineDataLocked(d, data)
		case err == errNoSpace:
			return false, nil
		case errors.Is(err, syscall.EEXIST):
			return false, err
		default:
			return false, fs.corrupt("inline directory", d.Ino, 0, err)
		}
	}
	if ok, err := try(data[inlineRegion1:disk.InlineDataIBlockSize]); ok || err != nil {
		return ok, err
	}
	if len(data) == disk.InlineDataIBlockSize {
		// Grow the attribute to all the room there is, with one unused
		// record spanning it (ext4_update_inline_dir).
		grown, err := tx.inlineGrowLocked(d, data)
		if err != nil {
			return false, err
		}
		data = grown
	}
	if len(data) > disk.InlineDataIBlockSize {
		if ok, err := try(data[disk.InlineDataIBlockSize:]); ok || err != nil {
			return ok, err
		}
	}
	return false, tx.convertInlineDirLocked(d, data)
}

// inlineGrowLocked grows the (empty) system.data value of d to its
// maximum and returns the new inline data; unchanged data if there is not
// room for an entry.
func (tx *Tx) inlineGrowLocked(d *inodeRef, data []byte) ([]byte, error) {
	n, err := tx.inlineValueMaxLocked(d)
	if err != nil {
		return nil, err
	}
	if n <= disk.DirRecLen(1) {
		return data, nil
	}
	grown := make([]byte, disk.InlineDataIBlockSize+n)
	copy(grown, data)
	disk.EncodeDirEntry(grown[disk.InlineDataIBlockSize:], 0, n, 0, nil, n)
	switch err := tx.setInlineDataLocked(d, grown); {
	case err == nil:
	case errors.Is(err, syscall.ENOSPC):
		return data, nil // the xattr code found less room: convert instead
	default:
		return nil, err
	}
	d.Raw.SetSize(uint64(len(grown)))
	tx.dirtyInodeLocked(d)
	return grown, nil
}

// convertInlineDirLocked moves inline directory d (inline data data) to a
// block: "." and "..", then the entries of both regions as they are, the
// last record stretched to the end (ext4_finish_convert_inline_dir).
func (tx *Tx) convertInlineDirLocked(d *inodeRef, data []byte) error {
	fs := tx.fs
	parent := binary.LittleEndian.Uint32(data)
	body := data[inlineRegion1:]
	// Validate before moving anything: both regions must parse.
	for _, reg := range [][]byte{data[inlineRegion1:disk.InlineDataIBlockSize], data[disk.InlineDataIBlockSize:]} {
		if _, err := liveEntries(reg, len(reg)); err != nil {
			return fs.corrupt("inline directory", d.Ino, 0, err)
		}
	}
	head := 2 * disk.DirRecLen(2) // "." and ".." at 12 bytes each
	if head+len(body) > fs.leafEnd() {
		return fs.corruptf("inline directory", d.Ino, 0, "%d bytes of entries do not fit a block", len(body))
	}
	if err := tx.dropInlineDataLocked(d); err != nil {
		return err
	}
	d.Raw.SetSize(0)
	_, b, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return err
	}
	blk := b.Data
	ft := fs.dirFtype(sIFDIR)
	disk.EncodeDirEntry(blk, uint32(d.Ino), disk.DirRecLen(1), ft, []byte("."), fs.bsize)
	disk.EncodeDirEntry(blk[disk.DirRecLen(1):], parent, disk.DirRecLen(2), ft, []byte(".."), fs.bsize)
	copy(blk[head:], body)
	// Stretch the last record to the end of the entry area.
	last, off := 0, 0
	it := disk.NewDirIter(blk[:head+len(body)], fs.bsize)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		last, off = off, it.Offset()
	}
	if err := it.Err(); err != nil || off != head+len(body) {
		return fs.corruptf("inline directory", d.Ino, 0, "entries do not tile the inline area")
	}
	de, _, _ := disk.DecodeDirEntry(blk[last:], fs.bsize)
	disk.EncodeDirEntry(blk[last:], de.Inode, fs.leafEnd()-last, de.FileType, de.Name, fs.bsize)
	if fs.csum {
		disk.InitDirTail(blk)
	}
	tx.dirtyLocked(b, fs.leafCsum(d))
	return nil
}

// inlineFindLocked finds name in inline directory d.
func (tx *Tx) inlineFindLocked(d *inodeRef, name []byte) (*dirSlot, error) {
	fs := tx.fs
	data, err := tx.inlineDataLocked(d)
	if err != nil {
		return nil, err
	}
	for _, reg := range [][2]int{{inlineRegion1, disk.InlineDataIBlockSize}, {disk.InlineDataIBlockSize, len(data)}} {
		b := data[reg[0]:reg[1]]
		off, de, ok, err := findEntry(b, len(b), name)
		if err != nil {
			return nil, fs.corrupt("inline directory", d.Ino, 0, err)
		}
		if ok {
			if de.Inode > fs.geo.InodesCount {
				return nil, fs.corruptf("inline directory", d.Ino, 0, "inode %d beyond %d inodes", de.Inode, fs.geo.InodesCount)
			}
			return &dirSlot{inline: data, region: reg, off: off, ino: Ino(de.Inode), ft: de.FileType}, nil
		}
	}
	return nil, syscall.ENOENT
}

// inlineDotDotLocked returns the parent of inline directory d as a slot
// (its changes go through inlineSetParentLocked).
func (tx *Tx) inlineDotDotLocked(d *inodeRef) (*dirSlot, error) {
	p := binary.LittleEndian.Uint32(d.Raw.Block[:])
	if p == 0 || p > tx.fs.geo.InodesCount {
		return nil, tx.fs.corruptf("inline directory", d.Ino, 0, "parent inode %d invalid", p)
	}
	return &dirSlot{ino: Ino(p), ft: tx.fs.dirFtype(sIFDIR)}, nil
}

// inlineSetParentLocked stores the parent of inline directory d.
func (tx *Tx) inlineSetParentLocked(d *inodeRef, parent Ino) error {
	binary.LittleEndian.PutUint32(d.Raw.Block[:], uint32(parent))
	tx.dirtyInodeLocked(d)
	return nil
}

// inlineEmptyLocked reports whether inline directory d has no entries
// (ext4_empty_inline_dir).
func (tx *Tx) inlineEmptyLocked(d *inodeRef) (bool, error) {
	data, err := tx.inlineDataLocked(d)
	if err != nil {
		return false, err
	}
	for _, reg := range [][]byte{data[inlineRegion1:disk.InlineDataIBlockSize], data[disk.InlineDataIBlockSize:]} {
		es, err := liveEntries(reg, len(reg))
		if err != nil {
			return false, tx.fs.corrupt("inline directory", d.Ino, 0, err)
		}
		if len(es) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// initInlineDirLocked makes new directory r an empty inline directory
// (ext4_try_create_inline_dir): the parent, then one unused record over
// the rest of i_block, and an empty system.data. It reports false if the
// inode body has no room for the attribute.
func (tx *Tx) initInlineDirLocked(r *inodeRef, parent Ino) (bool, error) {
	data := make([]byte, disk.InlineDataIBlockSize)
	binary.LittleEndian.PutUint32(data, uint32(parent))
	n := disk.InlineDataIBlockSize - inlineRegion1
	disk.EncodeDirEntry(data[inlineRegion1:], 0, n, 0, nil, n)
	saved := r.Raw
	r.Raw.Flags &^= disk.ExtentsFL
	r.Raw.Flags |= disk.InlineDataFL
	switch err := tx.setInlineDataLocked(r, data); {
	case err == nil:
	case errors.Is(err, syscall.ENOSPC):
		r.Raw = saved // back to the block layout newInodeLocked set up
		return false, nil
	default:
		return false, err
	}
	r.Raw.SetSize(disk.InlineDataIBlockSize)
	tx.dirtyInodeLocked(r)
	return true, nil
}
