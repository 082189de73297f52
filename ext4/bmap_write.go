package ext4

import (
	"encoding/binary"
	"syscall"
)

// Block-map (indirect) files: allocation of data and indirect blocks, and
// freeing on truncate and hole punching. Indirect blocks are allocated
// zeroed (new metadata, written before the pointer to them), data blocks
// near the previous block of the file. Block numbers are 32-bit, so
// allocations stay below 2^32.

const bmapBlockLimit = 1 << 32

// bmapMaxBlocks is the number of logical blocks the direct slots and the
// three indirect trees address.
func (fs *FS) bmapMaxBlocks() uint64 {
	apb := uint64(fs.bsize / 4)
	return nDirect + apb + apb*apb + apb*apb*apb
}

// bmapSlot locates, for logical block lblk, the tree (0 direct, else the
// number of indirect levels) and the per-level indices from the top.
func (fs *FS) bmapSlot(lblk uint64) (levels int, idx []uint64, ok bool) {
	apb := uint64(fs.bsize / 4)
	if lblk < nDirect {
		return 0, []uint64{lblk}, true
	}
	rel := lblk - nDirect
	span := apb
	for levels = 1; levels <= 3; levels++ {
		if rel < span {
			idx = make([]uint64, levels)
			for i := levels - 1; i >= 0; i-- {
				idx[i] = rel % apb
				rel /= apb
			}
			return levels, idx, true
		}
		rel -= span
		span *= apb
	}
	return 0, nil, false
}

// bmapMapLocked maps n blocks from lblk of block-mapped inode r. Without
// create it reports a hole as pblk 0. With create, holes are filled with
// newly allocated blocks (isNew true); the run returned never crosses an
// indirect block.
func (tx *Tx) bmapMapLocked(r *inodeRef, lblk, n uint64, create bool) (PBlk, uint64, bool, error) {
	fs := tx.fs
	levels, idx, ok := fs.bmapSlot(lblk)
	if !ok {
		return 0, 0, false, syscall.EFBIG
	}
	// slots is the pointer array holding the current level's pointer:
	// i_block for the first, then indirect blocks.
	iblock := r.Raw.Block[:]
	slots, holder := iblock, PBlk(0)
	var holderBuf []byte
	slot := uint64(idx[0])
	if levels > 0 {
		slot = uint64(indSingle + levels - 1)
	}
	get := func() PBlk { return PBlk(binary.LittleEndian.Uint32(slots[4*slot:])) }
	set := func(v PBlk) {
		binary.LittleEndian.PutUint32(slots[4*slot:], uint32(v))
		if holderBuf == nil {
			tx.dirtyInodeLocked(r)
		} else {
			b := tx.bufs[uint64(holder)].b
			tx.dirtyLocked(b, nil)
		}
	}
	goal := fs.inodeGoal(r.Ino)
	for lvl := 0; lvl < levels; lvl++ {
		ptr := get()
		if ptr == 0 {
			if !create {
				return 0, fs.bmapHoleRun(lblk, levels, lvl), false, nil
			}
			blk, _, err := tx.allocLimitLocked(goal, 1, r.Ino, bmapBlockLimit)
			if err != nil {
				return 0, 0, false, err
			}
			if err := tx.addBlocksLocked(r, 1); err != nil {
				return 0, 0, false, err
			}
			if _, err := tx.newBlockLocked(blk, "indirect block", r.Ino); err != nil {
				return 0, 0, false, err
			}
			set(blk)
			ptr = blk
		} else if !fs.validBlockRange(ptr, 1) {
			return 0, 0, false, fs.corruptf("block map", r.Ino, holder, "indirect block %d out of range", ptr)
		}
		b, err := tx.getBlockLocked(ptr, "indirect block", r.Ino)
		if err != nil {
			return 0, 0, false, err
		}
		slots, holder, holderBuf = b.Data, ptr, b.Data
		slot = idx[lvl]
		goal = ptr + 1
	}
	// slots/slot now address the data pointer; the run stays inside
	// this pointer array.
	nslots := uint64(len(slots) / 4)
	if levels == 0 {
		nslots = nDirect
	}
	n = min(n, nslots-slot)
	at := func(i uint64) PBlk { return PBlk(binary.LittleEndian.Uint32(slots[4*i:])) }
	p := at(slot)
	if p != 0 {
		if !fs.validBlockRange(p, 1) {
			return 0, 0, false, fs.corruptf("block map", r.Ino, holder, "data block %d out of range", p)
		}
		run := uint64(1)
		for run < n && at(slot+run) == p+PBlk(run) {
			run++
		}
		return p, run, false, nil
	}
	run := uint64(1)
	for run < n && at(slot+run) == 0 {
		run++
	}
	if !create {
		return 0, run, false, nil
	}
	// Goal: after the previous data block in this array, if any.
	for i := slot; i > 0; i-- {
		if q := at(i - 1); q != 0 {
			goal = q + PBlk(slot-(i-1))
			break
		}
	}
	start, got, err := tx.allocLimitLocked(goal, run, r.Ino, bmapBlockLimit)
	if err != nil {
		return 0, 0, false, err
	}
	if err := tx.addBlocksLocked(r, int64(got)); err != nil {
		return 0, 0, false, err
	}
	for i := uint64(0); i < got; i++ {
		binary.LittleEndian.PutUint32(slots[4*(slot+i):], uint32(start+PBlk(i)))
	}
	if holderBuf == nil {
		tx.dirtyInodeLocked(r)
	} else {
		tx.dirtyLocked(tx.bufs[uint64(holder)].b, nil)
	}
	return start, got, true, nil
}

// bmapHoleRun is the length of the hole from lblk when the pointer at
// level lvl (of levels) is zero: the rest of that subtree.
func (fs *FS) bmapHoleRun(lblk uint64, levels, lvl int) uint64 {
	apb := uint64(fs.bsize / 4)
	span := uint64(1)
	for i := lvl; i < levels; i++ {
		span *= apb
	}
	first := uint64(nDirect)
	for l := 1; l < levels; l++ {
		s := uint64(1)
		for i := 0; i < l; i++ {
			s *= apb
		}
		first += s
	}
	rel := lblk - first
	return span - rel%span
}

// bmapRemoveLocked frees the data blocks of [start, end) of block-mapped
// inode r and the indirect blocks left empty, crediting i_blocks.
func (tx *Tx) bmapRemoveLocked(r *inodeRef, start, end uint64) error {
	fs := tx.fs
	end = min(end, fs.bmapMaxBlocks())
	iblock := r.Raw.Block[:]
	changed := false
	var runs runFreer
	for i := start; i < min(end, nDirect); i++ {
		if p := PBlk(binary.LittleEndian.Uint32(iblock[4*i:])); p != 0 {
			if err := runs.add(tx, r, p); err != nil {
				return err
			}
			binary.LittleEndian.PutUint32(iblock[4*i:], 0)
			changed = true
		}
	}
	apb := uint64(fs.bsize / 4)
	first, span := uint64(nDirect), apb
	for levels := 1; levels <= 3; levels++ {
		slot := indSingle + levels - 1
		if start < first+span && end > first {
			p := PBlk(binary.LittleEndian.Uint32(iblock[4*slot:]))
			if p != 0 {
				a := max(start, first) - first
				b := min(end, first+span) - first
				empty, err := tx.bmapFreeSubtreeLocked(r, p, levels, a, b, &runs)
				if err != nil {
					return err
				}
				if empty {
					if err := runs.add(tx, r, p); err != nil {
						return err
					}
					binary.LittleEndian.PutUint32(iblock[4*slot:], 0)
					changed = true
				}
			}
		}
		first += span
		span *= apb
	}
	if err := runs.flush(tx, r); err != nil {
		return err
	}
	if changed {
		tx.dirtyInodeLocked(r)
	}
	return nil
}

// bmapFreeSubtreeLocked frees [a, b) (relative to the subtree) below
// indirect block blk of the given height, and reports whether blk is
// left without any pointer (the caller then frees it).
func (tx *Tx) bmapFreeSubtreeLocked(r *inodeRef, blk PBlk, height int, a, b uint64, runs *runFreer) (bool, error) {
	fs := tx.fs
	if !fs.validBlockRange(blk, 1) {
		return false, fs.corruptf("block map", r.Ino, 0, "indirect block %d out of range", blk)
	}
	buf, err := tx.getBlockLocked(blk, "indirect block", r.Ino)
	if err != nil {
		return false, err
	}
	apb := uint64(fs.bsize / 4)
	child := uint64(1)
	for i := 1; i < height; i++ {
		child *= apb
	}
	d := buf.Data
	changed := false
	for i := a / child; i < apb && i*child < b; i++ {
		p := PBlk(binary.LittleEndian.Uint32(d[4*i:]))
		if p == 0 {
			continue
		}
		if height == 1 {
			if err := runs.add(tx, r, p); err != nil {
				return false, err
			}
			binary.LittleEndian.PutUint32(d[4*i:], 0)
			changed = true
			continue
		}
		ca := max(a, i*child) - i*child
		cb := min(b, (i+1)*child) - i*child
		empty, err := tx.bmapFreeSubtreeLocked(r, p, height-1, ca, cb, runs)
		if err != nil {
			return false, err
		}
		if empty {
			if err := runs.add(tx, r, p); err != nil {
				return false, err
			}
			binary.LittleEndian.PutUint32(d[4*i:], 0)
			changed = true
		}
	}
	if changed {
		tx.dirtyLocked(buf, nil)
	}
	for i := uint64(0); i < apb; i++ {
		if binary.LittleEndian.Uint32(d[4*i:]) != 0 {
			return false, nil
		}
	}
	return true, nil
}

// runFreer coalesces consecutive freed blocks into runs.
type runFreer struct {
	start PBlk
	n     uint64
}

func (f *runFreer) add(tx *Tx, r *inodeRef, p PBlk) error {
	if !tx.fs.validBlockRange(p, 1) {
		return tx.fs.corruptf("block map", r.Ino, 0, "block %d out of range", p)
	}
	if f.n > 0 && p == f.start+PBlk(f.n) {
		f.n++
		return nil
	}
	if err := f.flush(tx, r); err != nil {
		return err
	}
	f.start, f.n = p, 1
	return nil
}

func (f *runFreer) flush(tx *Tx, r *inodeRef) error {
	if f.n == 0 {
		return nil
	}
	tx.freeBlocksLocked(f.start, f.n, r.Ino)
	err := tx.addBlocksLocked(r, -int64(f.n))
	f.n = 0
	return err
}
