package ext4

import "encoding/binary"

// Indirect block maps (ext2/ext3 and ext4 files without EXTENTS_FL):
// i_block[0..11] map the first 12 blocks directly; i_block[12], [13] and
// [14] point to single, double and triple indirect blocks of bsize/4
// little-endian block numbers each. 0 means a hole (of the whole subtree,
// for an indirect pointer).
const (
	nDirect    = 12
	indSingle  = 12
	indDouble  = 13
	indTriple  = 14
	maxBmapRun = 1 << 16 // blocks examined per lookup when extending a run
)

// bmapLookup maps logical block lblk of inode in through its block map. It
// returns the physical block (0 for a hole) and the number of blocks from
// lblk on that continue the same state: physically contiguous mapped
// blocks, or hole blocks. The run never crosses into another indirect block
// (that would cost further reads) and is capped at maxBmapRun.
func (fs *FS) bmapLookupLocked(in *Inode, lblk uint64) (PBlk, uint64, error) {
	apb := uint64(fs.bsize / 4) // addresses per block
	iblock := func(i int) PBlk { return PBlk(in.raw.IBlock(i)) }

	if lblk < nDirect {
		return fs.bmapRun(in, 0, func(i uint64) PBlk { return iblock(int(i)) }, lblk, nDirect)
	}
	rel := lblk - nDirect
	// Walk down: root pointer, then `levels` indirect blocks, each level
	// selecting a child by the digit of rel in base apb.
	var root PBlk
	var levels int
	var span uint64 // blocks covered by the subtree at the current level
	switch {
	case rel < apb:
		root, levels, span = iblock(indSingle), 1, apb
	case rel-apb < apb*apb:
		rel -= apb
		root, levels, span = iblock(indDouble), 2, apb*apb
	default:
		rel -= apb + apb*apb
		if rel >= apb*apb*apb {
			return 0, 0, fs.corruptf("block map", in.Ino, 0, "logical block %d beyond triple indirect range", lblk)
		}
		root, levels, span = iblock(indTriple), 3, apb*apb*apb
	}
	ptr := root
	var holder PBlk // block holding ptr (0 = the inode)
	for lvl := levels; lvl >= 1; lvl-- {
		if ptr == 0 {
			// The whole subtree below this pointer is a hole.
			return 0, span - rel%span, nil
		}
		if !fs.validBlockRange(ptr, 1) {
			return 0, 0, fs.corruptf("block map", in.Ino, holder, "indirect block %d out of range", ptr)
		}
		b, err := fs.readBlockLocked(ptr, "indirect block", in.Ino)
		if err != nil {
			return 0, 0, err
		}
		span /= apb
		idx := rel / span
		if lvl == 1 {
			data := b.Data
			at := func(i uint64) PBlk { return PBlk(binary.LittleEndian.Uint32(data[4*i:])) }
			p, n, err := fs.bmapRun(in, ptr, at, idx, apb)
			fs.cache.Put(b)
			return p, n, err
		}
		holder = ptr
		ptr = PBlk(binary.LittleEndian.Uint32(b.Data[4*idx:]))
		fs.cache.Put(b)
		rel %= span
	}
	return 0, 0, nil // unreachable: levels >= 1
}

// bmapRun reads slot idx of a pointer array of n slots and extends the run
// of same-state blocks after it.
func (fs *FS) bmapRun(in *Inode, holder PBlk, at func(uint64) PBlk, idx, n uint64) (PBlk, uint64, error) {
	p := at(idx)
	if p != 0 && !fs.validBlockRange(p, 1) {
		return 0, 0, fs.corruptf("block map", in.Ino, holder, "data block %d out of range", p)
	}
	run := uint64(1)
	for i := idx + 1; i < n && run < maxBmapRun; i++ {
		q := at(i)
		if p == 0 && q != 0 || p != 0 && q != p+PBlk(run) {
			break
		}
		if q != 0 && !fs.validBlockRange(q, 1) {
			break // reported when that block itself is looked up
		}
		run++
	}
	return p, run, nil
}
