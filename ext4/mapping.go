package ext4

import (
	"fmt"
	"io"
	"math"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// MapType says what a Mapping describes.
type MapType uint8

const (
	MapHole      MapType = iota // no blocks: reads as zeros
	MapMapped                   // written blocks at Addr
	MapUnwritten                // allocated but unwritten (reads as zeros) at Addr
	MapInline                   // data stored in the inode, in Inline
)

func (t MapType) String() string {
	switch t {
	case MapHole:
		return "hole"
	case MapMapped:
		return "mapped"
	case MapUnwritten:
		return "unwritten"
	case MapInline:
		return "inline"
	}
	return fmt.Sprintf("MapType(%d)", uint8(t))
}

// Mapping describes how a byte range of a file is stored.
//
// For MapHole, MapMapped and MapUnwritten, Offset is the requested offset
// rounded down to a block boundary and Length a whole number of blocks
// covering the extent (or hole) from Offset, clipped to the request (rounded
// up to a block) and to i_size rounded up to a block. Addr is the device
// byte offset of Offset (-1 for holes). A request at or past the rounded
// end of file is answered with a hole covering the request.
//
// For MapInline (inline_data files), Offset is 0, Length is i_size and
// Inline holds the stored bytes; bytes in [len(Inline), Length) read as
// zeros, as in the kernel. Addr is -1.
type Mapping struct {
	Offset, Length int64
	Type           MapType
	Addr           int64
	Inline         []byte
	// New is set by MapWrite when it allocated the blocks: their contents
	// are undefined until written.
	New bool
}

// blockMapping is the internal form: n >= 1 blocks from a logical block.
type blockMapping struct {
	kind MapType
	pblk PBlk // first physical block (mapped/unwritten)
	n    uint64
}

// mapBlock maps logical block lblk of a block-based inode (extents or
// block map). lblk must be < maxLBlk.
func (fs *FS) mapBlockLocked(in *Inode, lblk uint64) (blockMapping, error) {
	if in.hasFlag(disk.ExtentsFL) {
		r, err := fs.lookupExtentLocked(in, lblk)
		if err != nil {
			return blockMapping{}, err
		}
		if !r.found {
			return blockMapping{kind: MapHole, n: r.holeEnd - lblk}, nil
		}
		kind := MapMapped
		if r.ext.unwritten {
			kind = MapUnwritten
		}
		d := lblk - r.ext.lblk
		return blockMapping{kind: kind, pblk: r.ext.pblk + PBlk(d), n: r.ext.len - d}, nil
	}
	p, n, err := fs.bmapLookupLocked(in, lblk)
	if err != nil {
		return blockMapping{}, err
	}
	if n == 0 {
		return blockMapping{}, fs.corruptf("block map", in.Ino, 0, "empty run at block %d", lblk)
	}
	if p == 0 {
		return blockMapping{kind: MapHole, n: n}, nil
	}
	return blockMapping{kind: MapMapped, pblk: p, n: n}, nil
}

// hasBlocks reports whether the inode's i_block holds a block map or
// extent tree (as opposed to inline data, a fast symlink or a device number).
func (fs *FS) hasBlocks(in *Inode) bool {
	switch in.Mode & sIFMT {
	case sIFREG, sIFDIR:
		return !in.hasFlag(disk.InlineDataFL)
	case sIFLNK:
		return !in.hasFlag(disk.InlineDataFL) && !fs.isFastSymlink(in)
	}
	return false
}

// Map describes how the bytes of file ino starting at off are stored; see
// Mapping. length bounds the answer and must be positive.
func (fs *FS) Map(ino Ino, off int64, length int64) (Mapping, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return Mapping{}, err
	}
	if off < 0 || length <= 0 {
		return Mapping{}, syscall.EINVAL
	}
	if in.hasFlag(disk.InlineDataFL) {
		data, err := fs.inlineData(in)
		if err != nil {
			return Mapping{}, err
		}
		return Mapping{Offset: 0, Length: int64(in.Size), Type: MapInline, Addr: -1, Inline: data}, nil
	}
	if !fs.hasBlocks(in) {
		return Mapping{}, syscall.EINVAL
	}
	return fs.mapRangeLocked(in, off, length)
}

func (fs *FS) mapRangeLocked(in *Inode, off, length int64) (Mapping, error) {
	bs := int64(fs.bsize)
	start := off &^ (bs - 1)
	// Ends round up to a block, except in the last block below 2^63
	// (reachable with a damaged i_size), which ends at MaxInt64: a zero
	// Length would make callers that advance by it loop forever.
	reqEnd, eof := int64(math.MaxInt64), int64(math.MaxInt64)
	if off <= math.MaxInt64-length-(bs-1) {
		reqEnd = (off + length + bs - 1) &^ (bs - 1)
	}
	if int64(in.Size) <= math.MaxInt64-(bs-1) { // i_size < 2^63 (checked at decode)
		eof = (int64(in.Size) + bs - 1) &^ (bs - 1)
	}
	lblk := fs.lblkOf(start)
	if start >= eof || lblk >= maxLBlk {
		return Mapping{Offset: start, Length: reqEnd - start, Type: MapHole, Addr: -1}, nil
	}
	end := min(reqEnd, eof)
	want := fs.lblkOf(end) - lblk
	bm, err := fs.mapBlockLocked(in, lblk)
	if err != nil {
		return Mapping{}, err
	}
	n := min(bm.n, want)
	m := Mapping{Offset: start, Length: fs.blockBytes(n), Type: bm.kind, Addr: -1}
	if bm.kind != MapHole {
		m.Addr = fs.pblkOff(bm.pblk)
	}
	return m, nil
}

// ReadAt reads file data like os.File.ReadAt: it returns io.EOF when fewer
// than len(p) bytes are read because the file ends. Data is read straight
// from the device at mapped offsets (never through the buffer cache); holes
// and unwritten extents read as zeros.
func (fs *FS) ReadAt(ino Ino, p []byte, off int64) (int, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return 0, err
	}
	if in.IsDir() {
		return 0, syscall.EISDIR
	}
	if !in.IsReg() {
		return 0, syscall.EINVAL // symlinks are read with ReadLink
	}
	return fs.readAtLocked(in, p, off)
}

// readAt is ReadAt for callers holding FS.mu, on any inode with data.
func (fs *FS) readAtLocked(in *Inode, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	size := int64(in.Size)
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := int64(len(p))
	if want > size-off {
		want = size - off
	}
	if in.hasFlag(disk.InlineDataFL) {
		data, err := fs.inlineData(in)
		if err != nil {
			return 0, err
		}
		n := int64(0)
		if off < int64(len(data)) {
			n = int64(copy(p[:want], data[off:]))
		}
		clear(p[n:want])
	} else if err := fs.readBlocksLocked(in, p[:want], off); err != nil {
		return 0, err
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// readBlocks fills p with the file bytes at off (all within i_size).
func (fs *FS) readBlocksLocked(in *Inode, p []byte, off int64) error {
	if !fs.hasBlocks(in) {
		return fs.corruptf("inode", in.Ino, 0, "no data blocks for read")
	}
	pos, end := off, off+int64(len(p))
	for pos < end { // each pass covers at least one block
		lblk := fs.lblkOf(pos)
		if lblk >= maxLBlk {
			return fs.corruptf("inode", in.Ino, 0, "i_size %d beyond the 2^32-block limit", in.Size)
		}
		bm, err := fs.mapBlockLocked(in, lblk)
		if err != nil {
			return err
		}
		segEnd := end
		if e := fs.blockBytes(lblk + bm.n); e < segEnd {
			segEnd = e
		}
		dst := p[pos-off : segEnd-off]
		if bm.kind == MapMapped {
			devOff := fs.pblkOff(bm.pblk) + pos - fs.blockBytes(lblk)
			if n, err := fs.dev.ReadAt(dst, devOff); n != len(dst) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("ext4: reading data of inode %d at block %d: %w", in.Ino, bm.pblk, err)
			}
		} else {
			clear(dst)
		}
		pos = segEnd
	}
	return nil
}

// SeekData returns the first offset >= off that holds data (lseek
// SEEK_DATA). Unwritten extents count as holes, as on the kernel with a
// clean page cache. ENXIO if there is no data at or after off.
func (fs *FS) SeekData(ino Ino, off int64) (int64, error) {
	return fs.seek(ino, off, true)
}

// SeekHole returns the first offset >= off inside a hole (lseek
// SEEK_HOLE); the end of file counts as a hole. ENXIO if off >= i_size.
func (fs *FS) SeekHole(ino Ino, off int64) (int64, error) {
	return fs.seek(ino, off, false)
}

func (fs *FS) seek(ino Ino, off int64, data bool) (int64, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return 0, err
	}
	size := int64(in.Size)
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	if !fs.hasBlocks(in) {
		// Inline data (or no block mapping at all): one data segment.
		if data {
			return off, nil
		}
		return size, nil
	}
	pos := off
	for pos < size { // each pass advances to the end of a mapping
		lblk := fs.lblkOf(pos)
		if lblk >= maxLBlk {
			break
		}
		bm, err := fs.mapBlockLocked(in, lblk)
		if err != nil {
			return 0, err
		}
		if (bm.kind == MapMapped) == data {
			return pos, nil
		}
		pos = fs.blockBytes(lblk + bm.n)
	}
	if data {
		return 0, syscall.ENXIO
	}
	return size, nil
}
