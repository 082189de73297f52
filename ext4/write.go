package ext4

import (
	"fmt"
	"io"
	"math"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// Mapping-engine primitives: the server's write engine composes MapWrite
// (allocate), WriteData (pwrite the bytes), ConvertUnwritten and
// ExtendSize (complete the write), each its own transaction.

// maxFileBytes is the largest file size r's mapping can express, like the
// kernel's s_maxbytes (extents) and s_bitmap_maxbytes (block maps).
func (fs *FS) maxFileBytes(r *inodeRef) int64 {
	if r.Raw.Flags&disk.ExtentsFL != 0 {
		upper := int64(math.MaxInt64)
		if !fs.features.hugeFile {
			upper = ((1<<32 - 1) >> (fs.bshift - 9)) << fs.bshift
		}
		return min(int64(lastLBlk)<<fs.bshift, upper)
	}
	return fs.bitmapMaxBytes()
}

// bitmapMaxBytes mirrors ext4_max_bitmap_size: the largest dense
// block-mapped file whose data and indirect blocks fit in i_blocks.
func (fs *FS) bitmapMaxBytes() int64 {
	bits := fs.bshift
	ppb := uint64(1) << (bits - 2)
	var upper uint64
	if !fs.features.hugeFile {
		upper = (1<<32 - 1) >> (bits - 9)
	} else {
		upper = 1<<48 - 1
	}
	res := uint64(nDirect) + ppb + ppb*ppb + ppb*ppb*ppb
	meta := uint64(1) + 1 + ppb + 1 + ppb + ppb*ppb
	if res+meta > upper {
		res = upper
		u := upper - nDirect
		meta = 1
		u -= ppb
		if u < ppb*ppb {
			meta += 1 + (u+ppb-1)/ppb
		} else {
			meta += 1 + ppb
			u -= ppb * ppb
			meta += 1 + (u+ppb-1)/ppb + (u+ppb*ppb-1)/(ppb*ppb)
		}
		res -= meta
	}
	if res > uint64(math.MaxInt64)>>bits {
		return math.MaxInt64
	}
	return int64(res << bits)
}

// MapWrite is Map for a write of length bytes at off: a hole at off is
// allocated first. Extent files get an UNWRITTEN extent (Type
// MapUnwritten, New true) that the caller turns written with
// ConvertUnwritten once the data is on disk; block-mapped files get real
// blocks (Type MapMapped, New true) whose old contents are undefined until
// written. The allocation is one contiguous run of up to the requested
// length (and at most one extent), placed after the file's previous
// block when possible; the caller loops for the rest. An existing
// mapping at off is returned as Map would (New false), not clipped to
// i_size. EFBIG past the format's size limit, ENOSPC when full.
//
// MapWrite allocates as an unprivileged caller: it stops at the blocks
// s_r_blocks_count reserves; MapWriteAs lets root use them.
func (fs *FS) MapWrite(ino Ino, off, length int64) (Mapping, error) {
	return fs.mapWrite(nil, ino, off, length)
}

// MapWriteAs is MapWrite on behalf of c: uid 0 may allocate the reserved
// blocks, as the kernel lets CAP_SYS_RESOURCE do.
func (fs *FS) MapWriteAs(c Cred, ino Ino, off, length int64) (Mapping, error) {
	return fs.mapWrite(&c, ino, off, length)
}

func (fs *FS) mapWrite(c *Cred, ino Ino, off, length int64) (Mapping, error) {
	if off < 0 || length <= 0 {
		return Mapping{}, syscall.EINVAL
	}
	var m Mapping
	err := fs.update(c, func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		m, err = tx.mapWriteLocked(r, off, length)
		return err
	})
	return m, err
}

func (tx *Tx) mapWriteLocked(r *inodeRef, off, length int64) (Mapping, error) {
	fs := tx.fs
	switch {
	case r.Raw.IsDir():
		return Mapping{}, syscall.EISDIR
	case !r.Raw.IsReg():
		return Mapping{}, syscall.EINVAL
	case r.Raw.Flags&disk.InlineDataFL != 0 || fs.mayInline(r):
		// Inline files (and new ones that may become inline) are the
		// inline-data code's: MapInline while the data fits, else the
		// file is converted and mapped below.
		m, ok, err := tx.mapWriteInlineLocked(r, off, length)
		if ok || err != nil {
			return m, err
		}
	}
	maxBytes := fs.maxFileBytes(r)
	if off >= maxBytes {
		return Mapping{}, syscall.EFBIG
	}
	end := maxBytes
	if length < maxBytes-off {
		end = off + length
	}
	bs := int64(fs.bsize)
	lblk := fs.lblkOf(off)
	n := fs.lblkOf(end+bs-1) - lblk
	if r.Raw.Flags&disk.ExtentsFL == 0 {
		p, got, isNew, err := tx.bmapMapLocked(r, lblk, n, true)
		if err != nil {
			return Mapping{}, err
		}
		return Mapping{Offset: fs.blockBytes(lblk), Length: fs.blockBytes(got), Type: MapMapped,
			Addr: fs.pblkOff(p), New: isNew}, nil
	}
	res, err := tx.extentLookupLocked(r, lblk)
	if err != nil {
		return Mapping{}, err
	}
	if res.found {
		d := lblk - res.ext.lblk
		m := Mapping{Offset: fs.blockBytes(lblk), Length: fs.blockBytes(min(n, res.ext.len-d)),
			Type: MapMapped, Addr: fs.pblkOff(res.ext.pblk + PBlk(d))}
		if res.ext.unwritten {
			m.Type = MapUnwritten
		}
		return m, nil
	}
	want := min(n, res.holeEnd-lblk, maxUnwrittenLen)
	start, got, err := tx.allocDataLocked(r, res.goal, want)
	if err != nil {
		return Mapping{}, err
	}
	if err := tx.insertExtentLocked(r, extent{lblk: lblk, len: got, pblk: start, unwritten: true}); err != nil {
		return Mapping{}, err
	}
	return Mapping{Offset: fs.blockBytes(lblk), Length: fs.blockBytes(got), Type: MapUnwritten,
		Addr: fs.pblkOff(start), New: true}, nil
}

// allocDataLocked allocates up to want data blocks for r and charges them
// to its i_blocks.
func (tx *Tx) allocDataLocked(r *inodeRef, goal PBlk, want uint64) (PBlk, uint64, error) {
	start, got, err := tx.allocBlocksLocked(goal, want, r.Ino)
	if err != nil {
		return 0, 0, err
	}
	if err := tx.addBlocksLocked(r, int64(got)); err != nil {
		return 0, 0, err
	}
	return start, got, nil
}

// mapBlocksLocked maps n logical blocks from lblk of r (extents or block
// map) and returns the first physical block and the length of the run
// (<= n). A hole, or an unwritten extent, is pblk 0 without create. With
// create a hole is allocated as written blocks, and an unwritten range is
// zeroed on disk and marked written: this is for directories and
// symlinks, whose new blocks the caller initialises through
// newBlockLocked.
func (tx *Tx) mapBlocksLocked(r *inodeRef, lblk uint64, n uint64, create bool) (PBlk, uint64, error) {
	fs := tx.fs
	if n == 0 {
		return 0, 0, syscall.EINVAL
	}
	if r.Raw.Flags&disk.ExtentsFL == 0 {
		p, got, _, err := tx.bmapMapLocked(r, lblk, n, create)
		return p, got, err
	}
	if lblk >= lastLBlk {
		return 0, 0, syscall.EFBIG
	}
	n = min(n, lastLBlk-lblk)
	res, err := tx.extentLookupLocked(r, lblk)
	if err != nil {
		return 0, 0, err
	}
	if res.found {
		d := lblk - res.ext.lblk
		got := min(n, res.ext.len-d)
		p := res.ext.pblk + PBlk(d)
		if !res.ext.unwritten {
			return p, got, nil
		}
		if !create {
			return 0, got, nil
		}
		if err := fs.zeroDeviceLocked(fs.pblkOff(p), fs.blockBytes(got)); err != nil {
			return 0, 0, err
		}
		if err := tx.setExtentStateLocked(r, lblk, lblk+got, false); err != nil {
			return 0, 0, err
		}
		return p, got, nil
	}
	want := min(n, res.holeEnd-lblk)
	if !create {
		return 0, want, nil
	}
	start, got, err := tx.allocDataLocked(r, res.goal, min(want, maxWrittenLen))
	if err != nil {
		return 0, 0, err
	}
	if err := tx.insertExtentLocked(r, extent{lblk: lblk, len: got, pblk: start}); err != nil {
		return 0, 0, err
	}
	return start, got, nil
}

// WriteData writes p at device byte offset addr (from a Mapping), straight
// to the device: file data never goes through the buffer cache.
func (fs *FS) WriteData(p []byte, addr int64) (int, error) {
	if fs.ro {
		return 0, errReadOnly
	}
	if err := fs.checkDataRange(addr, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := fs.dev.WriteAt(p, addr)
	fs.wr.bytesWritten.Add(uint64(n))
	if err != nil {
		return n, fmt.Errorf("ext4: writing data at %d: %w", addr, err)
	}
	return n, nil
}

// ReadData reads len(p) bytes at device byte offset addr.
func (fs *FS) ReadData(p []byte, addr int64) (int, error) {
	if err := fs.checkDataRange(addr, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := fs.dev.ReadAt(p, addr)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("ext4: reading data at %d: %w", addr, err)
}

// checkDataRange refuses device ranges outside the data area: before the
// first data block's end or past the filesystem.
func (fs *FS) checkDataRange(addr, n int64) error {
	lo := fs.blockBytes(uint64(fs.geo.FirstDataBlock) + 1)
	hi := fs.blockBytes(fs.nblocks)
	if addr < lo || n < 0 || addr > hi || n > hi-addr {
		return syscall.EINVAL
	}
	return nil
}

// zeroDeviceLocked writes n zero bytes at device offset addr.
func (fs *FS) zeroDeviceLocked(addr, n int64) error {
	const chunk = 1 << 20
	buf := make([]byte, min(n, chunk))
	for n > 0 {
		k := min(n, chunk)
		if _, err := fs.WriteData(buf[:k], addr); err != nil {
			return err
		}
		addr += k
		n -= k
	}
	return nil
}

// ConvertUnwritten marks the unwritten blocks of [off, off+length) of file
// ino written, after their data reached the disk (the write's ioend).
// Block-mapped files have nothing to convert.
func (fs *FS) ConvertUnwritten(ino Ino, off, length int64) error {
	if off < 0 || length <= 0 {
		return syscall.EINVAL
	}
	return fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if r.Raw.Flags&disk.ExtentsFL == 0 {
			return nil
		}
		start, end := fs.blockSpan(off, length)
		return tx.setExtentStateLocked(r, start, end, false)
	})
}

// blockSpan returns the logical blocks [start, end) touching the byte
// range [off, off+length), capped at the extent limit.
func (fs *FS) blockSpan(off, length int64) (uint64, uint64) {
	end := uint64(math.MaxInt64)
	if length < math.MaxInt64-off {
		end = uint64(off + length)
	}
	s := fs.lblkOf(off)
	e := (end + uint64(fs.bsize) - 1) >> fs.bshift
	return min(s, lastLBlk), min(e, lastLBlk)
}

// ExtendSize raises i_size of file ino to newSize if it is smaller (the
// end of a write), and with touchMtime sets mtime and ctime to now.
func (fs *FS) ExtendSize(ino Ino, newSize int64, touchMtime bool) error {
	if newSize < 0 {
		return syscall.EINVAL
	}
	return fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		changed := false
		if uint64(newSize) > r.Raw.Size() {
			if newSize > fs.maxFileBytes(r) && r.Raw.Flags&disk.InlineDataFL == 0 {
				return syscall.EFBIG
			}
			tx.setSizeLocked(r, uint64(newSize))
			changed = true
		}
		if touchMtime {
			touch(r, true, true)
			changed = true
		}
		if changed {
			tx.dirtyInodeLocked(r)
		}
		return nil
	})
}

// setSizeLocked sets i_size, turning on large_file the first time a file
// passes 2 GiB, as ext4_update_inode_size does.
func (tx *Tx) setSizeLocked(r *inodeRef, size uint64) {
	r.Raw.SetSize(size)
	fs := tx.fs
	if size > 1<<31-1 && fs.sb.FeatureRoCompat&disk.RoCompatLargeFile == 0 {
		fs.sb.FeatureRoCompat |= disk.RoCompatLargeFile
		tx.sbDirty = true
	}
}
