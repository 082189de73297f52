package ext4

import (
	"encoding/binary"
	"syscall"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/disk"
)

// Extent tree mutation. Every operation works on one leaf at a time: it
// finds the path from the root (i_block) to the leaf covering a logical
// block, rewrites the leaf's entries, and stores them back with
// putNodeLocked, which splits full nodes (adding an index entry to the
// parent, recursively), grows the tree by a level when the root
// overflows, frees nodes that become empty, and keeps every index key
// equal to the first key of its child. Operations spanning several leaves
// loop, finding the path afresh for each leaf.
//
// Leaf and index entries are both 12 bytes with the 32-bit logical block
// first, which lets node storage treat them alike (rawEnt).

// Longest extents (EXT_INIT_MAX_LEN, EXT_UNWRITTEN_MAX_LEN).
const (
	maxWrittenLen   = disk.MaxInitExtentLen
	maxUnwrittenLen = disk.MaxUnwrittenExtentLen
)

// extMaxLen is the longest extent of the given state.
func extMaxLen(unwritten bool) uint64 {
	if unwritten {
		return maxUnwrittenLen
	}
	return maxWrittenLen
}

// lastLBlk is one past the highest logical block an extent may map
// (EXT_MAX_BLOCKS): files end at 2^32-1 blocks.
const lastLBlk = maxLBlk - 1

type rawEnt [disk.ExtentEntrySize]byte

func (e *rawEnt) key() uint64 { return uint64(binary.LittleEndian.Uint32(e[:4])) }
func (e *rawEnt) setKey(k uint64) {
	binary.LittleEndian.PutUint32(e[:4], uint32(k))
}

// encExt encodes a leaf entry (struct ext4_extent).
func encExt(x extent) rawEnt {
	var r rawEnt
	le := binary.LittleEndian
	n := uint16(x.len)
	if x.unwritten {
		n += disk.MaxInitExtentLen
	}
	le.PutUint32(r[0:], uint32(x.lblk))
	le.PutUint16(r[4:], n)
	le.PutUint16(r[6:], uint16(uint64(x.pblk)>>32))
	le.PutUint32(r[8:], uint32(x.pblk))
	return r
}

// encIdx encodes an index entry (struct ext4_extent_idx).
func encIdx(lblk uint64, child PBlk) rawEnt {
	var r rawEnt
	le := binary.LittleEndian
	le.PutUint32(r[0:], uint32(lblk))
	le.PutUint32(r[4:], uint32(child))
	le.PutUint16(r[8:], uint16(uint64(child)>>32))
	return r
}

func idxChild(r rawEnt) PBlk {
	return PBlk(uint64(binary.LittleEndian.Uint32(r[4:])) | uint64(binary.LittleEndian.Uint16(r[8:]))<<32)
}

// xlevel is one node on the path from the root to a leaf.
type xlevel struct {
	node   []byte      // r.Raw.Block[:] for the root, else the buffer's data
	buf    *bcache.Buf // nil for the root
	blk    PBlk
	hdr    disk.ExtentHeader
	idx    int    // index nodes: the entry followed
	lo, hi uint64 // logical blocks the node covers (from the parent's keys)
}

func nodeEntries(node []byte, n int) []rawEnt {
	out := make([]rawEnt, n)
	for i := range out {
		copy(out[i][:], node[disk.ExtentHeaderSize+i*disk.ExtentEntrySize:])
	}
	return out
}

// blockCapacity is eh_max of a new extent tree block.
func (fs *FS) blockCapacity() int { return disk.ExtentCapacity(fs.bsize) }

// extentPathLocked walks from r's root to the leaf whose range holds lblk
// (the first leaf if lblk precedes every key), validating each node.
func (tx *Tx) extentPathLocked(r *inodeRef, lblk uint64) ([]xlevel, error) {
	fs := tx.fs
	root := r.Raw.Block[:]
	h, err := disk.DecodeExtentHeader(root)
	if err != nil {
		return nil, fs.corrupt("extent header", r.Ino, 0, err)
	}
	path := []xlevel{{node: root, hdr: h, lo: 0, hi: maxLBlk}}
	for level := 0; ; level++ {
		lv := &path[level]
		if lv.hdr.Depth == 0 {
			if err := tx.checkLeafLocked(r, lv); err != nil {
				return nil, err
			}
			return path, nil
		}
		if level >= disk.MaxExtentDepth {
			return nil, fs.corruptf("extent tree", r.Ino, lv.blk, "deeper than %d levels", disk.MaxExtentDepth)
		}
		ents := nodeEntries(lv.node, int(lv.hdr.Entries))
		i := 0
		for j := range ents {
			k := ents[j].key()
			if j > 0 && k <= ents[j-1].key() || k < lv.lo || k >= lv.hi || j == 0 && lv.blk != 0 && k != lv.lo {
				return nil, fs.corruptf("extent index", r.Ino, lv.blk, "index %d at %d outside [%d,%d) or unsorted", j, k, lv.lo, lv.hi)
			}
			if k <= lblk {
				i = j
			}
		}
		lv.idx = i
		child := idxChild(ents[i])
		lo, hi := ents[i].key(), lv.hi
		if i+1 < len(ents) {
			hi = ents[i+1].key()
		}
		b, ch, err := tx.extentBlockLocked(r, child, int(lv.hdr.Depth)-1)
		if err != nil {
			return nil, err
		}
		path = append(path, xlevel{node: b.Data, buf: b, blk: child, hdr: ch, lo: lo, hi: hi})
	}
}

// extentBlockLocked reads a tree block for modification, verifying its
// header, depth and (unless this transaction already changed it) checksum.
func (tx *Tx) extentBlockLocked(r *inodeRef, blk PBlk, depth int) (*bcache.Buf, disk.ExtentHeader, error) {
	fs := tx.fs
	if !fs.validBlockRange(blk, 1) {
		return nil, disk.ExtentHeader{}, fs.corruptf("extent index", r.Ino, 0, "child block %d out of range", blk)
	}
	_, held := tx.bufs[uint64(blk)]
	b, err := tx.getBlockLocked(blk, "extent block", r.Ino)
	if err != nil {
		return nil, disk.ExtentHeader{}, err
	}
	tb := tx.bufs[uint64(blk)]
	if fs.csum && !(held && (tb.dirty || tb.phase == phaseNew)) {
		if err := disk.VerifyExtentBlockChecksum(fs.csumSeedOf(r), b.Data); err != nil {
			return nil, disk.ExtentHeader{}, fs.corrupt("extent block", r.Ino, blk, err)
		}
	}
	h, err := disk.DecodeExtentHeader(b.Data)
	if err != nil {
		return nil, h, fs.corrupt("extent header", r.Ino, blk, err)
	}
	if int(h.Depth) != depth || h.Max == 0 {
		return nil, h, fs.corruptf("extent header", r.Ino, blk, "depth %d (want %d), max %d", h.Depth, depth, h.Max)
	}
	return b, h, nil
}

// checkLeafLocked validates a leaf's extents as the read path does.
func (tx *Tx) checkLeafLocked(r *inodeRef, lv *xlevel) error {
	fs := tx.fs
	var prevEnd uint64
	for j := 0; j < int(lv.hdr.Entries); j++ {
		e := extentAt(lv.node, j)
		end := e.lblk + e.len
		if e.len == 0 || e.lblk < lv.lo || end > lv.hi || (j > 0 && e.lblk < prevEnd) || j == 0 && lv.blk != 0 && e.lblk != lv.lo {
			return fs.corruptf("extent", r.Ino, lv.blk, "extent %d [%d,+%d) outside node range [%d,%d) or overlapping", j, e.lblk, e.len, lv.lo, lv.hi)
		}
		if !fs.validBlockRange(e.pblk, e.len) {
			return fs.corruptf("extent", r.Ino, lv.blk, "extent %d maps to blocks [%d,+%d) outside the filesystem", j, e.pblk, e.len)
		}
		prevEnd = end
	}
	return nil
}

func leafExtents(lv *xlevel) []extent {
	out := make([]extent, lv.hdr.Entries)
	for i := range out {
		out[i] = extentAt(lv.node, i)
	}
	return out
}

// dirtyNodeLocked records a change to a node: the inode for the root, the
// block (checksummed at commit) otherwise.
func (tx *Tx) dirtyNodeLocked(r *inodeRef, lv *xlevel) {
	if lv.buf == nil {
		tx.dirtyInodeLocked(r)
		return
	}
	tx.dirtyLocked(lv.buf, tx.extentCsum(r))
}

// extentCsum returns the checksum function of r's extent tree blocks.
func (tx *Tx) extentCsum(r *inodeRef) func([]byte) {
	fs := tx.fs
	if !fs.csum {
		return nil
	}
	seed := fs.csumSeedOf(r)
	return func(b []byte) { _ = disk.SetExtentBlockChecksum(seed, b) }
}

// storeEntries writes ents into a node that has room for them.
func storeEntries(lv *xlevel, ents []rawEnt) {
	lv.hdr.Entries = uint16(len(ents))
	lv.hdr.Encode(lv.node)
	for i := range ents {
		copy(lv.node[disk.ExtentHeaderSize+i*disk.ExtentEntrySize:], ents[i][:])
	}
	// Clear the slot after the last entry, so stale entries do not linger
	// in the visible part of small nodes (purely cosmetic for debugfs).
	if off := disk.ExtentHeaderSize + len(ents)*disk.ExtentEntrySize; off+disk.ExtentEntrySize <= disk.ExtentHeaderSize+int(lv.hdr.Max)*disk.ExtentEntrySize {
		clear(lv.node[off : off+disk.ExtentEntrySize])
	}
}

// putNodeLocked stores ents as the entries of path[level], splitting,
// growing, freeing and re-keying as needed (see the file comment). hint is
// the position of a newly inserted entry (-1 if none): an entry appended
// at the end of a full node goes alone into the new right node, so that
// sequentially written files get full leaves, as in the kernel.
func (tx *Tx) putNodeLocked(r *inodeRef, path []xlevel, level int, ents []rawEnt, hint int) error {
	fs := tx.fs
	lv := &path[level]
	if len(ents) <= int(lv.hdr.Max) {
		if len(ents) == 0 && level > 0 {
			// An empty non-root node is dropped from its parent.
			if err := tx.freeTreeBlockLocked(r, lv.blk); err != nil {
				return err
			}
			p := &path[level-1]
			pents := nodeEntries(p.node, int(p.hdr.Entries))
			pents = append(pents[:p.idx], pents[p.idx+1:]...)
			return tx.putNodeLocked(r, path, level-1, pents, -1)
		}
		if len(ents) == 0 {
			lv.hdr.Depth = 0 // an empty tree is an empty leaf root
		}
		storeEntries(lv, ents)
		tx.dirtyNodeLocked(r, lv)
		if level > 0 {
			p := &path[level-1]
			pents := nodeEntries(p.node, int(p.hdr.Entries))
			if pents[p.idx].key() != ents[0].key() {
				pents[p.idx].setKey(ents[0].key())
				return tx.putNodeLocked(r, path, level-1, pents, -1)
			}
		}
		return nil
	}
	if level == 0 {
		return tx.growTreeLocked(r, lv, ents)
	}
	split := len(ents) / 2
	if hint == len(ents)-1 && len(ents)-1 <= int(lv.hdr.Max) {
		split = len(ents) - 1
	}
	left, right := ents[:split], ents[split:]
	if len(left) > int(lv.hdr.Max) || len(right) > fs.blockCapacity() {
		return fs.corruptf("extent tree", r.Ino, lv.blk, "node overflow by %d entries", len(ents)-int(lv.hdr.Max))
	}
	nb, err := tx.newTreeBlockLocked(r, lv.blk+1, lv.hdr.Depth, right)
	if err != nil {
		return err
	}
	storeEntries(lv, left)
	tx.dirtyNodeLocked(r, lv)
	p := &path[level-1]
	pents := nodeEntries(p.node, int(p.hdr.Entries))
	pents[p.idx].setKey(left[0].key())
	pents = append(pents[:p.idx+1], append([]rawEnt{encIdx(right[0].key(), nb)}, pents[p.idx+1:]...)...)
	return tx.putNodeLocked(r, path, level-1, pents, p.idx+1)
}

// growTreeLocked moves the overflowing root's entries into a new block
// and makes the root a one-entry index above it (ext4_ext_grow_indepth).
func (tx *Tx) growTreeLocked(r *inodeRef, root *xlevel, ents []rawEnt) error {
	fs := tx.fs
	if root.hdr.Depth >= disk.MaxExtentDepth {
		return syscall.EFBIG
	}
	if len(ents) > fs.blockCapacity() {
		return fs.corruptf("extent tree", r.Ino, 0, "root overflow by %d entries", len(ents))
	}
	nb, err := tx.newTreeBlockLocked(r, 0, root.hdr.Depth, ents)
	if err != nil {
		return err
	}
	root.hdr.Depth++
	storeEntries(root, []rawEnt{encIdx(ents[0].key(), nb)})
	tx.dirtyInodeLocked(r)
	return nil
}

// newTreeBlockLocked allocates a tree block near goal holding ents at the
// given depth.
func (tx *Tx) newTreeBlockLocked(r *inodeRef, goal PBlk, depth uint16, ents []rawEnt) (PBlk, error) {
	fs := tx.fs
	if goal == 0 {
		goal = fs.inodeGoal(r.Ino)
	}
	saved := tx.useReserved
	tx.useReserved = true // a split must not fail half-way for lack of space
	blk, _, err := tx.allocBlocksLocked(goal, 1, r.Ino)
	tx.useReserved = saved
	if err != nil {
		return 0, err
	}
	if err := tx.addBlocksLocked(r, 1); err != nil {
		return 0, err
	}
	b, err := tx.newBlockLocked(blk, "extent block", r.Ino)
	if err != nil {
		return 0, err
	}
	lv := &xlevel{node: b.Data, buf: b, blk: blk,
		hdr: disk.ExtentHeader{Magic: disk.ExtentMagic, Max: uint16(fs.blockCapacity()), Depth: depth}}
	storeEntries(lv, ents)
	tx.dirtyLocked(b, tx.extentCsum(r))
	return blk, nil
}

// freeTreeBlockLocked frees an extent tree block of r.
func (tx *Tx) freeTreeBlockLocked(r *inodeRef, blk PBlk) error {
	tx.freeBlocksLocked(blk, 1, r.Ino)
	return tx.addBlocksLocked(r, -1)
}

// shrinkTreeLocked pulls a lone child into the root while it fits, so a
// tree never stays deeper than needed (ext4_ext_try_to_merge_up).
func (tx *Tx) shrinkTreeLocked(r *inodeRef) error {
	for {
		root := r.Raw.Block[:]
		h, err := disk.DecodeExtentHeader(root)
		if err != nil {
			return tx.fs.corrupt("extent header", r.Ino, 0, err)
		}
		if h.Depth == 0 || h.Entries != 1 {
			return nil
		}
		ents := nodeEntries(root, 1)
		child := idxChild(ents[0])
		b, ch, err := tx.extentBlockLocked(r, child, int(h.Depth)-1)
		if err != nil {
			return err
		}
		if ch.Entries > h.Max {
			return nil
		}
		cents := nodeEntries(b.Data, int(ch.Entries))
		lv := &xlevel{node: root, hdr: disk.ExtentHeader{Magic: disk.ExtentMagic, Max: h.Max, Depth: ch.Depth}}
		storeEntries(lv, cents)
		tx.dirtyInodeLocked(r)
		if err := tx.freeTreeBlockLocked(r, child); err != nil {
			return err
		}
	}
}

// xlookup is the result of looking up a logical block in the tree.
type xlookup struct {
	found   bool
	ext     extent // the extent containing the block, if found
	holeEnd uint64 // if !found: first block after the hole
	goal    PBlk   // physical block where data for the block would best go
}

// extentLookupLocked finds lblk in r's tree (the transaction's view).
func (tx *Tx) extentLookupLocked(r *inodeRef, lblk uint64) (xlookup, error) {
	path, err := tx.extentPathLocked(r, lblk)
	if err != nil {
		return xlookup{}, err
	}
	leaf := &path[len(path)-1]
	res := xlookup{holeEnd: leaf.hi}
	var prev *extent
	for _, e := range leafExtents(leaf) {
		if lblk >= e.lblk && lblk < e.lblk+e.len {
			res.found, res.ext = true, e
			return res, nil
		}
		if lblk < e.lblk {
			res.holeEnd = e.lblk
			break
		}
		prev = &e
	}
	switch {
	case prev != nil:
		res.goal = prev.pblk + PBlk(lblk-prev.lblk)
	case leaf.blk != 0:
		res.goal = leaf.blk + 1
	default:
		res.goal = tx.fs.inodeGoal(r.Ino)
	}
	return res, nil
}

// canMerge reports whether b directly follows a, logically and
// physically, in the same state and within the length limit.
func canMerge(a, b extent) bool {
	return a.lblk+a.len == b.lblk && a.pblk+PBlk(a.len) == b.pblk && a.unwritten == b.unwritten &&
		a.len+b.len <= extMaxLen(a.unwritten)
}

// mergeExtents merges neighbours in a sorted list.
func mergeExtents(es []extent) []extent {
	out := es[:0:0]
	for _, e := range es {
		if k := len(out); k > 0 && canMerge(out[k-1], e) {
			out[k-1].len += e.len
			continue
		}
		out = append(out, e)
	}
	return out
}

func encExts(es []extent) []rawEnt {
	out := make([]rawEnt, len(es))
	for i, e := range es {
		out[i] = encExt(e)
	}
	return out
}

// insertExtentLocked adds e, which must cover a hole, to r's tree, merged
// with its neighbours when possible. i_blocks is not changed: callers
// charge the data blocks they allocated.
func (tx *Tx) insertExtentLocked(r *inodeRef, e extent) error {
	if e.len == 0 || e.len > extMaxLen(e.unwritten) || e.lblk+e.len > lastLBlk {
		return syscall.EINVAL
	}
	path, err := tx.extentPathLocked(r, e.lblk)
	if err != nil {
		return err
	}
	leaf := &path[len(path)-1]
	es := leafExtents(leaf)
	pos := 0
	for pos < len(es) && es[pos].lblk < e.lblk {
		pos++
	}
	if pos > 0 && es[pos-1].lblk+es[pos-1].len > e.lblk || pos < len(es) && e.lblk+e.len > es[pos].lblk {
		return tx.fs.corruptf("extent", r.Ino, leaf.blk, "new extent [%d,+%d) overlaps a mapped range", e.lblk, e.len)
	}
	es = append(es[:pos], append([]extent{e}, es[pos:]...)...)
	merged := mergeExtents(es)
	hint := -1
	if len(merged) == len(es) {
		hint = pos
	}
	return tx.putNodeLocked(r, path, len(path)-1, encExts(merged), hint)
}

// rangeOpLocked applies fn to the extents of each leaf overlapping
// [start, end), leaf by leaf. fn returns the leaf's new extents.
func (tx *Tx) rangeOpLocked(r *inodeRef, start, end uint64, fn func(es []extent) ([]extent, error)) error {
	for start < end {
		path, err := tx.extentPathLocked(r, start)
		if err != nil {
			return err
		}
		leaf := &path[len(path)-1]
		if leaf.blk == 0 && leaf.hdr.Entries == 0 {
			return nil // empty tree
		}
		es := leafExtents(leaf)
		out, err := fn(es)
		if err != nil {
			return err
		}
		if !sameExtents(es, out) {
			if err := tx.putNodeLocked(r, path, len(path)-1, encExts(out), -1); err != nil {
				return err
			}
		}
		if leaf.hi >= end || leaf.hi >= maxLBlk {
			return nil
		}
		start = leaf.hi
	}
	return nil
}

func sameExtents(a, b []extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// removeExtentsLocked unmaps [start, end) from r's tree, freeing the data
// blocks (and crediting i_blocks), splitting an extent that straddles the
// range, dropping emptied nodes and finally lowering the tree if it can.
func (tx *Tx) removeExtentsLocked(r *inodeRef, start, end uint64) error {
	err := tx.rangeOpLocked(r, start, end, func(es []extent) ([]extent, error) {
		out := make([]extent, 0, len(es)+1)
		for _, e := range es {
			eEnd := e.lblk + e.len
			if eEnd <= start || e.lblk >= end {
				out = append(out, e)
				continue
			}
			a, b := max(start, e.lblk), min(end, eEnd)
			tx.freeBlocksLocked(e.pblk+PBlk(a-e.lblk), b-a, r.Ino)
			if err := tx.addBlocksLocked(r, -int64(b-a)); err != nil {
				return nil, err
			}
			if e.lblk < a {
				out = append(out, extent{lblk: e.lblk, len: a - e.lblk, pblk: e.pblk, unwritten: e.unwritten})
			}
			if b < eEnd {
				out = append(out, extent{lblk: b, len: eEnd - b, pblk: e.pblk + PBlk(b-e.lblk), unwritten: e.unwritten})
			}
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	return tx.shrinkTreeLocked(r)
}

// setExtentStateLocked marks the mapped blocks of [start, end) unwritten
// or written, splitting extents at the range's edges and merging the
// results with their neighbours.
func (tx *Tx) setExtentStateLocked(r *inodeRef, start, end uint64, unwritten bool) error {
	err := tx.rangeOpLocked(r, start, end, func(es []extent) ([]extent, error) {
		out := make([]extent, 0, len(es)+2)
		changed := false
		for _, e := range es {
			eEnd := e.lblk + e.len
			if eEnd <= start || e.lblk >= end || e.unwritten == unwritten {
				out = append(out, e)
				continue
			}
			changed = true
			a, b := max(start, e.lblk), min(end, eEnd)
			if e.lblk < a {
				out = append(out, extent{lblk: e.lblk, len: a - e.lblk, pblk: e.pblk, unwritten: e.unwritten})
			}
			// The middle may exceed the new state's maximum length.
			for p := a; p < b; {
				n := min(b-p, extMaxLen(unwritten))
				out = append(out, extent{lblk: p, len: n, pblk: e.pblk + PBlk(p-e.lblk), unwritten: unwritten})
				p += n
			}
			if b < eEnd {
				out = append(out, extent{lblk: b, len: eEnd - b, pblk: e.pblk + PBlk(b-e.lblk), unwritten: e.unwritten})
			}
		}
		if !changed {
			return es, nil
		}
		return mergeExtents(out), nil
	})
	if err != nil {
		return err
	}
	return tx.shrinkTreeLocked(r)
}
