package ext4

import (
	"fmt"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// Inline data writes (inline_data feature), after fs/ext4/inline.c. An
// inline inode keeps its first 60 bytes in i_block and the rest in the
// value of its in-inode "system.data" attribute, which every inline inode
// has (empty while the data fits i_block). The data never moves to the
// xattr block: when it outgrows the inode body the file is converted to
// blocks.
//
// New regular files behave as on the kernel: created with EXTENTS_FL and
// no data, they become inline on their first write if it fits
// (ext4_try_to_write_inline_data for EXT4_STATE_MAY_INLINE_DATA inodes),
// otherwise they stay block-mapped. This library has no in-memory inode
// state, so "may inline" is read from the inode itself: an empty regular
// file without blocks on an inline_data filesystem.

// errInlineFull reports that inline data does not fit the inode body; the
// caller moves the data to blocks. It matches syscall.ENOSPC.
var errInlineFull = fmt.Errorf("ext4: inline data does not fit the inode: %w", syscall.ENOSPC)

var inlineName = []byte(disk.InlineDataXattrName)

// inlineDataLocked returns a copy of r's whole inline area: the 60 bytes
// of i_block followed by the system.data value. i_size may be smaller:
// bytes past it are not file data (an inline directory's area is exactly
// i_size long).
func (tx *Tx) inlineDataLocked(r *inodeRef) ([]byte, error) {
	fs := tx.fs
	items, err := fs.ibodyItemsLocked(r)
	if err != nil {
		return nil, err
	}
	i := findItem(items, disk.InlineDataXattrIndex, inlineName)
	if i < 0 {
		return nil, fs.corruptf("inline data", r.Ino, 0, "no system.data attribute")
	}
	if items[i].inum != 0 {
		return nil, fs.corruptf("inline data", r.Ino, 0, "system.data stored in an EA inode")
	}
	data := make([]byte, 0, disk.InlineDataIBlockSize+len(items[i].value))
	return append(append(data, r.Raw.Block[:]...), items[i].value...), nil
}

// setInlineDataLocked stores data as r's inline area: the first 60 bytes
// in i_block (zero padded), the rest as the system.data value in the
// inode body, created if missing. It returns errInlineFull (matching
// ENOSPC), with r unchanged, when the inode body has no room. Flags and
// i_size are the caller's.
func (tx *Tx) setInlineDataLocked(r *inodeRef, data []byte) error {
	fs := tx.fs
	items, err := fs.ibodyItemsLocked(r)
	if err != nil {
		return err
	}
	var extra []byte
	if len(data) > disk.InlineDataIBlockSize {
		extra = data[disk.InlineDataIBlockSize:]
	}
	it := xattrItem{index: disk.InlineDataXattrIndex, name: inlineName, value: append([]byte{}, extra...)}
	items = withItem(items, it, false)
	if !fs.ibodyFits(r, items) {
		return errInlineFull
	}
	clear(r.Raw.Block[:])
	copy(r.Raw.Block[:], data)
	tx.writeIbodyLocked(r, items)
	return nil
}

// dropInlineDataLocked ends r's inline storage (ext4_destroy_inline_data):
// system.data is removed, i_block cleared, INLINE_DATA_FL dropped, and on
// an extent filesystem r gets EXTENTS_FL and an empty tree. The data is
// the caller's to move first.
func (tx *Tx) dropInlineDataLocked(r *inodeRef) error {
	fs := tx.fs
	items, err := fs.ibodyItemsLocked(r)
	if err != nil {
		return err
	}
	if i := findItem(items, disk.InlineDataXattrIndex, inlineName); i >= 0 {
		tx.writeIbodyLocked(r, withoutItem(items, i))
	}
	clear(r.Raw.Block[:])
	r.Raw.Flags &^= disk.InlineDataFL
	if fs.features.extents {
		switch r.Raw.Mode & sIFMT {
		case sIFREG, sIFDIR, sIFLNK:
			r.Raw.Flags |= disk.ExtentsFL
			initExtentRoot(&r.Raw)
		}
	}
	tx.dirtyInodeLocked(r)
	return nil
}

// inlineValueMaxLocked is the largest system.data value r's inode body can
// hold, its current value's room included
// (get_max_inline_xattr_value_size).
func (tx *Tx) inlineValueMaxLocked(r *inodeRef) (int, error) {
	fs := tx.fs
	region := fs.ibodyRegion(r)
	if region == nil {
		return 0, nil
	}
	items, err := fs.ibodyItemsLocked(r)
	if err != nil {
		return 0, err
	}
	if i := findItem(items, disk.InlineDataXattrIndex, inlineName); i >= 0 {
		items = withoutItem(items, i)
	}
	free := len(region) - disk.XattrIbodyHeaderLen - itemsSpace(items) - disk.XattrEntryLen(len(inlineName))
	return max(free, 0) &^ 3, nil
}

// maxInlineSizeLocked is the largest file r can keep inline
// (ext4_get_max_inline_size): 0 without an extra inode area or without
// room for any system.data value.
func (tx *Tx) maxInlineSizeLocked(r *inodeRef) (int64, error) {
	n, err := tx.inlineValueMaxLocked(r) // first: it may adopt an i_extra_isize
	if err != nil || n == 0 || r.Raw.ExtraIsize == 0 {
		return 0, err
	}
	return int64(disk.InlineDataIBlockSize + n), nil
}

// mayInline reports whether regular file r may still become inline on
// its first write: an inline_data filesystem, and an empty file with no
// blocks (see the file comment).
func (fs *FS) mayInline(r *inodeRef) bool {
	if !fs.features.inlineData || !r.Raw.IsReg() || r.Raw.Flags&disk.InlineDataFL != 0 || r.Raw.Size() != 0 {
		return false
	}
	var xattrBlocks uint64
	if r.Raw.FileACL() != 0 {
		xattrBlocks = uint64(fs.bsize >> 9)
	}
	if r.Raw.Blocks512(fs.features.hugeFile, fs.bsize) != xattrBlocks {
		return false
	}
	if r.Raw.Flags&disk.ExtentsFL != 0 {
		h, err := disk.DecodeExtentHeader(r.Raw.Block[:])
		return err == nil && h.Entries == 0
	}
	return r.Raw.Block == [len(r.Raw.Block)]byte{}
}

// inlineWriteFitsLocked reports whether a write of [off, off+length) to
// regular file r goes to the inline area: r is inline or may become so
// (mayInline), and the range ends within the maximum inline size.
func (tx *Tx) inlineWriteFitsLocked(r *inodeRef, off, length int64) (bool, error) {
	if r.Raw.Flags&disk.InlineDataFL == 0 && !tx.fs.mayInline(r) {
		return false, nil
	}
	limit, err := tx.maxInlineSizeLocked(r)
	if err != nil {
		return false, err
	}
	return off >= 0 && length >= 0 && off <= limit && length <= limit-off, nil
}

// mapWriteInlineLocked answers MapWrite for a file that is inline or may
// become inline (mayInline). When [off, off+length) fits the inline area
// it returns a MapInline mapping (Offset 0, Length covering i_size and the
// range, Inline the current bytes) and ok, changing nothing: the caller
// writes with WriteInline. Otherwise an inline file is converted to blocks
// and ok is false: the caller maps the range as for any block file.
func (tx *Tx) mapWriteInlineLocked(r *inodeRef, off, length int64) (m Mapping, ok bool, err error) {
	fits, err := tx.inlineWriteFitsLocked(r, off, length)
	if err != nil {
		return Mapping{}, false, err
	}
	if !fits {
		return Mapping{}, false, tx.convertInlineToBlocksLocked(r)
	}
	var data []byte
	if r.Raw.Flags&disk.InlineDataFL != 0 {
		if data, err = tx.inlineFileDataLocked(r); err != nil {
			return Mapping{}, false, err
		}
	}
	size := max(int64(r.Raw.Size()), off+length)
	return Mapping{Offset: 0, Length: size, Type: MapInline, Addr: -1, Inline: data}, true, nil
}

// inlineFileDataLocked returns the file bytes of inline file r: its
// inline area clipped to i_size.
func (tx *Tx) inlineFileDataLocked(r *inodeRef) ([]byte, error) {
	data, err := tx.inlineDataLocked(r)
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) > r.Raw.Size() {
		data = data[:r.Raw.Size()]
	}
	return data, nil
}

// convertInlineToBlocksLocked moves inline regular file r to blocks
// (ext4_convert_inline_data): its bytes go to a newly allocated, written
// block 0, the inline storage is dropped (EXTENTS_FL on an extent
// filesystem) and i_size is kept. An inline file of size 0 gets no block.
func (tx *Tx) convertInlineToBlocksLocked(r *inodeRef) error {
	if r.Raw.Flags&disk.InlineDataFL == 0 {
		return nil
	}
	if !r.Raw.IsReg() {
		return tx.fs.corruptf("inline data", r.Ino, 0, "converting mode %#o inline data to blocks", r.Raw.Mode)
	}
	data, err := tx.inlineFileDataLocked(r)
	if err != nil {
		return err
	}
	if err := tx.dropInlineDataLocked(r); err != nil {
		return err
	}
	return tx.writeNewBlocksLocked(r, data, nil, 0)
}

// writeNewBlocksLocked writes the bytes head at offset 0 and p at off into
// file r, which has no blocks yet: the blocks covering them are allocated
// (written, not unwritten) and filled, zeros around the bytes, straight
// to the device. Nothing links them in until the commit, which writes
// metadata only after this data, like the kernel's ordered mode.
func (tx *Tx) writeNewBlocksLocked(r *inodeRef, head, p []byte, off int64) error {
	fs := tx.fs
	bs := int64(fs.bsize)
	type span struct{ first, last uint64 } // logical blocks, inclusive
	var spans []span
	if len(head) > 0 {
		spans = append(spans, span{0, uint64((int64(len(head)) - 1) / bs)})
	}
	if len(p) > 0 {
		s := span{uint64(off / bs), uint64((off + int64(len(p)) - 1) / bs)}
		if len(spans) > 0 && s.first <= spans[0].last+1 {
			spans[0].last = max(spans[0].last, s.last)
		} else {
			spans = append(spans, s)
		}
	}
	for _, s := range spans {
		for lblk := s.first; lblk <= s.last; {
			pblk, n, err := tx.mapBlocksLocked(r, lblk, s.last-lblk+1, true)
			if err != nil {
				return err
			}
			if pblk == 0 || n == 0 {
				return fs.corruptf("inline data", r.Ino, 0, "no block allocated at %d", lblk)
			}
			buf := make([]byte, int64(n)*bs)
			base := int64(lblk) * bs
			if base < int64(len(head)) {
				copy(buf, head[base:])
			}
			if lo := max(off, base); lo < off+int64(len(p)) && lo < base+int64(len(buf)) {
				copy(buf[lo-base:], p[lo-off:])
			}
			for i := uint64(0); i < n; i++ {
				fs.cache.Forget(uint64(pblk) + i) // file data never lives in the cache
			}
			if _, err := fs.dev.WriteAt(buf, fs.pblkOff(pblk)); err != nil {
				return fmt.Errorf("ext4: writing data of inode %d at block %d: %w", r.Ino, pblk, err)
			}
			fs.wr.bytesWritten.Add(uint64(len(buf)))
			lblk += n
		}
	}
	return nil
}

// WriteInline writes p at off into regular file ino's inline area, for a
// write MapWrite answered with MapInline: i_size grows to cover it, mtime
// and ctime are set. A file that may become inline (new and empty) turns
// inline here. If the range no longer fits (the inode body changed since
// MapWrite), the file is converted to blocks and p written there; a file
// that has meanwhile become block-mapped is EAGAIN: map it again.
func (fs *FS) WriteInline(ino Ino, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		switch {
		case r.Raw.IsDir():
			return syscall.EISDIR
		case !r.Raw.IsReg():
			return syscall.EINVAL
		}
		return tx.writeInlineLocked(r, p, off)
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (tx *Tx) writeInlineLocked(r *inodeRef, p []byte, off int64) error {
	inline := r.Raw.Flags&disk.InlineDataFL != 0
	if !inline && !tx.fs.mayInline(r) {
		return syscall.EAGAIN
	}
	end := off + int64(len(p))
	fits, err := tx.inlineWriteFitsLocked(r, off, int64(len(p)))
	if err != nil {
		return err
	}
	if fits {
		data := make([]byte, disk.InlineDataIBlockSize)
		if inline {
			if data, err = tx.inlineDataLocked(r); err != nil {
				return err
			}
			// Bytes between i_size and off read as zeros.
			if size := r.Raw.Size(); size < uint64(len(data)) {
				clear(data[size:])
			}
		}
		if end > int64(len(data)) {
			data = append(data, make([]byte, end-int64(len(data)))...)
		}
		copy(data[off:], p)
		switch err := tx.setInlineDataLocked(r, data); {
		case err == nil:
			if !inline {
				// ext4_create_inline_data: i_block holds data from now on.
				r.Raw.Flags = r.Raw.Flags&^disk.ExtentsFL | disk.InlineDataFL
			}
		case err == errInlineFull:
			// Not expected (maxInlineSizeLocked measured the same room),
			// but blocks always work.
			fits = false
		default:
			return err
		}
	}
	if !fits {
		if err := tx.writeConvertedLocked(r, p, off); err != nil {
			return err
		}
	}
	if uint64(end) > r.Raw.Size() {
		tx.setSizeLocked(r, uint64(end))
	}
	touch(r, true, true)
	tx.dirtyInodeLocked(r)
	return nil
}

// writeConvertedLocked writes p at off into r through blocks, converting
// an inline r first. r has no blocks before this (inline or mayInline).
func (tx *Tx) writeConvertedLocked(r *inodeRef, p []byte, off int64) error {
	var head []byte
	if r.Raw.Flags&disk.InlineDataFL != 0 {
		var err error
		if head, err = tx.inlineFileDataLocked(r); err != nil {
			return err
		}
		if err := tx.dropInlineDataLocked(r); err != nil {
			return err
		}
	}
	if end := off + int64(len(p)); end > tx.fs.maxFileBytes(r) {
		return syscall.EFBIG
	}
	return tx.writeNewBlocksLocked(r, head, p, off)
}

// truncateInlineLocked sets the size of inline file r like
// ext4_inline_data_truncate and ext4_setattr: a smaller size shrinks the
// system.data value to what remains past i_block and zeroes i_block past
// the new size; a larger size within the current inline area just sets
// i_size (the bytes in between read as zeros); a size beyond it converts
// the file to blocks first. Timestamps are the caller's.
func (tx *Tx) truncateInlineLocked(r *inodeRef, size uint64) error {
	data, err := tx.inlineDataLocked(r)
	if err != nil {
		return err
	}
	if size > uint64(len(data)) {
		if err := tx.convertInlineToBlocksLocked(r); err != nil {
			return err
		}
		tx.setSizeLocked(r, size)
		tx.dirtyInodeLocked(r)
		return nil
	}
	cur := min(r.Raw.Size(), uint64(len(data)))
	if size < cur {
		clear(data[size:])
		data = data[:max(size, disk.InlineDataIBlockSize)]
	} else {
		clear(data[cur:size])
	}
	if err := tx.setInlineDataLocked(r, data); err != nil {
		return err // cannot grow: data is never longer than before
	}
	tx.setSizeLocked(r, size)
	tx.dirtyInodeLocked(r)
	return nil
}
