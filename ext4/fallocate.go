package ext4

import (
	"os"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// fallocate(2) modes (FALLOC_FL_*).
const (
	FallocKeepSize      = 0x01
	FallocPunchHole     = 0x02
	FallocCollapseRange = 0x08
	FallocZeroRange     = 0x10
	FallocInsertRange   = 0x20
)

// fallocChunk bounds the blocks one transaction of a large preallocation
// allocates, so a huge fallocate does not pin every bitmap it touches
// until the end. Like the kernel, an ENOSPC part-way keeps what was
// allocated.
const fallocChunk = 1 << 18

// Fallocate implements fallocate(2) on regular file ino, as the kernel's
// ext4 does for the modes it supports:
//   - 0 and KEEP_SIZE preallocate the range as unwritten extents (extent
//     files only: EOPNOTSUPP on block-mapped files, like the kernel), and
//     without KEEP_SIZE raise i_size to the range's end;
//   - PUNCH_HOLE|KEEP_SIZE frees the whole blocks inside the range (extent
//     and block-mapped files) and zeroes the partial blocks at its edges on
//     disk: a classic FUSE kernel does not zero them for the server;
//   - ZERO_RANGE (optionally with KEEP_SIZE) makes the whole blocks of the
//     range unwritten (allocating holes), zeroes partial edge blocks, and
//     extends i_size unless KEEP_SIZE (extent files only).
//
// COLLAPSE_RANGE, INSERT_RANGE and unknown modes are EOPNOTSUPP. An
// inline-data file is moved to blocks first, as the kernel does. mtime and
// ctime are set to now.
func (fs *FS) Fallocate(ino Ino, mode uint32, off, length int64) error {
	if off < 0 || length <= 0 {
		return syscall.EINVAL
	}
	if off > 1<<63-1-length {
		return syscall.EFBIG
	}
	switch mode {
	case 0, FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize:
	case FallocPunchHole | FallocKeepSize:
		return fs.Update(func(tx *Tx) error {
			r, err := tx.fallocInodeLocked(ino)
			if err != nil {
				return err
			}
			return tx.punchLocked(r, off, length)
		})
	default:
		return syscall.EOPNOTSUPP
	}
	end := off + length
	bs := int64(fs.bsize)
	startBlk := uint64(off / bs)
	endBlk := uint64((end + bs - 1) / bs)
	if mode&FallocZeroRange != 0 {
		// Zeroing converts existing data, which must happen in one
		// transaction with the edge zeroing; preallocate first (in
		// chunks), then convert.
		if err := fs.preallocate(ino, mode|FallocKeepSize, startBlk, endBlk, end); err != nil {
			return err
		}
		return fs.Update(func(tx *Tx) error {
			r, err := tx.fallocInodeLocked(ino)
			if err != nil {
				return err
			}
			return tx.zeroRangeLocked(r, off, end, mode&FallocKeepSize == 0)
		})
	}
	return fs.preallocate(ino, mode, startBlk, endBlk, end)
}

// fallocInodeLocked loads the target of a fallocate.
func (tx *Tx) fallocInodeLocked(ino Ino) (*inodeRef, error) {
	r, err := tx.inodeLocked(ino)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Raw.IsDir():
		return nil, syscall.EISDIR
	case !r.Raw.IsReg():
		return nil, syscall.ENODEV
	}
	// Like ext4_fallocate, an inline file moves to blocks first.
	if err := tx.convertInlineToBlocksLocked(r); err != nil {
		return nil, err
	}
	return r, nil
}

// preallocate allocates the holes of blocks [start, end) as unwritten
// extents, a chunk per transaction, raising i_size towards byteEnd as it
// goes unless KEEP_SIZE.
func (fs *FS) preallocate(ino Ino, mode uint32, start, end uint64, byteEnd int64) error {
	for pos := start; pos < end; {
		chunkEnd := min(end, pos+fallocChunk)
		err := fs.Update(func(tx *Tx) error {
			r, err := tx.fallocInodeLocked(ino)
			if err != nil {
				return err
			}
			if r.Raw.Flags&disk.ExtentsFL == 0 {
				return syscall.EOPNOTSUPP
			}
			if byteEnd > fs.maxFileBytes(r) {
				return syscall.EFBIG
			}
			if err := tx.allocUnwrittenLocked(r, pos, chunkEnd); err != nil {
				return err
			}
			if mode&FallocKeepSize == 0 {
				if size := min(fs.blockBytes(chunkEnd), byteEnd); uint64(size) > r.Raw.Size() {
					tx.setSizeLocked(r, uint64(size))
				}
			}
			touch(r, true, true)
			tx.dirtyInodeLocked(r)
			return nil
		})
		if err != nil {
			return err
		}
		pos = chunkEnd
	}
	return nil
}

// allocUnwrittenLocked fills the holes of blocks [start, end) of extent
// file r with unwritten extents.
func (tx *Tx) allocUnwrittenLocked(r *inodeRef, start, end uint64) error {
	for pos := start; pos < end; {
		res, err := tx.extentLookupLocked(r, pos)
		if err != nil {
			return err
		}
		if res.found {
			pos = res.ext.lblk + res.ext.len
			continue
		}
		want := min(end-pos, res.holeEnd-pos, maxUnwrittenLen)
		p, got, err := tx.allocDataLocked(r, res.goal, want)
		if err != nil {
			return err
		}
		if err := tx.insertExtentLocked(r, extent{lblk: pos, len: got, pblk: p, unwritten: true}); err != nil {
			return err
		}
		pos += got
	}
	return nil
}

// punchLocked frees the whole blocks of [off, off+length) and zeroes the
// partial blocks at the edges. Like ext4_punch_hole, nothing happens at or
// past the end of file, and a hole reaching past it ends at the end of
// the page holding the end of file (so the partial last block goes too).
func (tx *Tx) punchLocked(r *inodeRef, off, length int64) error {
	fs := tx.fs
	size := int64(r.Raw.Size())
	if off >= size {
		return nil
	}
	end := off + length
	if end > size {
		page := int64(os.Getpagesize())
		end = (size + page) &^ (page - 1)
	}
	bs := int64(fs.bsize)
	first := (off + bs - 1) / bs // first whole block
	last := end / bs             // end of whole blocks
	if err := tx.zeroEdgesLocked(r, off, end); err != nil {
		return err
	}
	if first < last {
		if r.Raw.Flags&disk.ExtentsFL != 0 {
			if err := tx.removeExtentsLocked(r, uint64(first), uint64(last)); err != nil {
				return err
			}
		} else if err := tx.bmapRemoveLocked(r, uint64(first), uint64(last)); err != nil {
			return err
		}
	}
	touch(r, true, true)
	tx.dirtyInodeLocked(r)
	return nil
}

// zeroEdgesLocked zeroes, on disk, the parts of [off, end) lying in
// partial blocks at either edge.
func (tx *Tx) zeroEdgesLocked(r *inodeRef, off, end int64) error {
	bs := int64(tx.fs.bsize)
	if off/bs == (end-1)/bs {
		if off%bs != 0 || end%bs != 0 {
			return tx.zeroPartialLocked(r, uint64(off), uint64(end-off))
		}
		return nil
	}
	if off%bs != 0 {
		if err := tx.zeroPartialLocked(r, uint64(off), uint64(bs-off%bs)); err != nil {
			return err
		}
	}
	if end%bs != 0 {
		return tx.zeroPartialLocked(r, uint64(end-end%bs), uint64(end%bs))
	}
	return nil
}

// zeroRangeLocked is ZERO_RANGE after preallocation: whole blocks become
// unwritten, partial edges are zeroed, and i_size grows if asked.
func (tx *Tx) zeroRangeLocked(r *inodeRef, off, end int64, extend bool) error {
	fs := tx.fs
	if r.Raw.Flags&disk.ExtentsFL == 0 {
		return syscall.EOPNOTSUPP
	}
	bs := int64(fs.bsize)
	first := (off + bs - 1) / bs
	last := end / bs
	if err := tx.zeroEdgesLocked(r, off, end); err != nil {
		return err
	}
	if first < last {
		if err := tx.setExtentStateLocked(r, uint64(first), uint64(last), true); err != nil {
			return err
		}
	}
	if extend && uint64(end) > r.Raw.Size() {
		tx.setSizeLocked(r, uint64(end))
	}
	touch(r, true, true)
	tx.dirtyInodeLocked(r)
	return nil
}
