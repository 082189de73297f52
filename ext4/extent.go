package ext4

import (
	"github.com/e4box/e4box/ext4/disk"
)

// extent is one leaf entry, normalised.
type extent struct {
	lblk      uint64 // first logical block
	len       uint64 // number of blocks
	pblk      PBlk
	unwritten bool
}

func extentAt(node []byte, i int) extent {
	e := disk.ExtentAt(node, i)
	return extent{lblk: uint64(e.Block), len: uint64(e.Length()), pblk: PBlk(e.Start()), unwritten: e.Unwritten()}
}

func extentIdxAt(node []byte, i int) (lblk uint64, child PBlk) {
	x := disk.ExtentIdxAt(node, i)
	return uint64(x.Block), PBlk(x.Leaf())
}

// extentLookup is the result of looking up one logical block.
type extentLookup struct {
	found bool
	ext   extent // the extent containing the block, if found
	// holeEnd is, when !found, the first logical block after the hole that
	// contains the block (maxLBlk if the hole runs to the end).
	holeEnd uint64
}

// lookupExtent finds the extent mapping logical block lblk of inode in. It
// walks from the root in i_block, verifying each node: magic, entry counts,
// depth decreasing by one per level, entries sorted and inside the range the
// parent index assigns, physical blocks inside the filesystem, and the
// checksum of every non-root node.
func (fs *FS) lookupExtentLocked(in *Inode, lblk uint64) (extentLookup, error) {
	node := in.raw.Block[:]
	var nodeBlk PBlk // 0 for the root in the inode
	lo, hi := uint64(0), uint64(maxLBlk)
	wantDepth := -1
	// Each level's depth is strictly smaller, so the walk ends after at
	// most maxExtentDepth+1 nodes; the bound makes that explicit.
	for level := 0; level <= disk.MaxExtentDepth; level++ {
		h, err := fs.checkExtentNode(in, node, nodeBlk, wantDepth)
		if err != nil {
			return extentLookup{}, err
		}
		n := int(h.Entries)
		if h.Depth == 0 {
			return fs.searchLeaf(in, nodeBlk, node, n, lblk, lo, hi)
		}
		// Index node: last entry whose ei_block <= lblk (the first one if
		// lblk precedes them all, as the kernel's binsearch does).
		i := 0
		for j := 1; j < n; j++ { // entries are few (<= 340 per 4 KiB block)
			start, _ := extentIdxAt(node, j)
			if start > lblk {
				break
			}
			i = j
		}
		var prev uint64
		for j := 0; j < n; j++ {
			start, child := extentIdxAt(node, j)
			if j > 0 && start <= prev || start < lo || start >= hi || j == 0 && nodeBlk != 0 && start != lo {
				return extentLookup{}, fs.corruptf("extent index", in.Ino, nodeBlk,
					"index %d starts at %d, outside node range [%d,%d) or unsorted", j, start, lo, hi)
			}
			if !fs.validBlockRange(child, 1) {
				return extentLookup{}, fs.corruptf("extent index", in.Ino, nodeBlk, "child block %d out of range", child)
			}
			prev = start
		}
		start, child := extentIdxAt(node, i)
		if i+1 < n {
			hi, _ = extentIdxAt(node, i+1)
		}
		lo = start
		b, err := fs.readBlockLocked(child, "extent block", in.Ino)
		if err != nil {
			return extentLookup{}, err
		}
		// Copy out so the buffer is released before descending; nodes are
		// at most one block.
		node = append(node[:0:0], b.Data...)
		fs.cache.Put(b)
		nodeBlk = child
		wantDepth = int(h.Depth) - 1
	}
	return extentLookup{}, fs.corruptf("extent tree", in.Ino, nodeBlk, "deeper than %d levels", disk.MaxExtentDepth)
}

// searchLeaf finds lblk among the leaf's extents, after validating them.
func (fs *FS) searchLeaf(in *Inode, nodeBlk PBlk, node []byte, n int, lblk, lo, hi uint64) (extentLookup, error) {
	res := extentLookup{holeEnd: hi}
	var prevEnd uint64
	for j := 0; j < n; j++ {
		e := extentAt(node, j)
		end := e.lblk + e.len
		// Like the kernel, a non-root leaf must start exactly where its
		// parent index says.
		if e.len == 0 || e.lblk < lo || end > hi || (j > 0 && e.lblk < prevEnd) || j == 0 && nodeBlk != 0 && e.lblk != lo {
			return extentLookup{}, fs.corruptf("extent", in.Ino, nodeBlk,
				"extent %d [%d,+%d) outside node range [%d,%d) or overlapping", j, e.lblk, e.len, lo, hi)
		}
		if !fs.validBlockRange(e.pblk, e.len) {
			return extentLookup{}, fs.corruptf("extent", in.Ino, nodeBlk,
				"extent %d maps to blocks [%d,+%d) outside the filesystem", j, e.pblk, e.len)
		}
		prevEnd = end
		switch {
		case res.found || res.holeEnd != hi:
			// already decided; keep validating the rest of the leaf
		case lblk >= e.lblk && lblk < end:
			res.found, res.ext = true, e
		case lblk < e.lblk:
			res.holeEnd = e.lblk
		}
	}
	return res, nil
}

// checkExtentNode validates a node's header (disk.DecodeExtentHeader's
// checks plus the expected depth) and, for a node read from a block, its
// checksum. wantDepth is -1 for the root.
func (fs *FS) checkExtentNode(in *Inode, node []byte, blk PBlk, wantDepth int) (disk.ExtentHeader, error) {
	h, err := disk.DecodeExtentHeader(node)
	if err != nil {
		return h, fs.corrupt("extent header", in.Ino, blk, err)
	}
	if h.Max == 0 || wantDepth >= 0 && int(h.Depth) != wantDepth {
		return h, fs.corruptf("extent header", in.Ino, blk, "depth %d (want %d), max %d", h.Depth, wantDepth, h.Max)
	}
	if blk != 0 && fs.csum {
		if err := disk.VerifyExtentBlockChecksum(fs.inodeSeed(in), node); err != nil {
			return h, fs.corrupt("extent block", in.Ino, blk, err)
		}
	}
	return h, nil
}

// inodeSeed is the inode's checksum seed for its dependent metadata.
func (fs *FS) inodeSeed(in *Inode) uint32 {
	return disk.InodeCsumSeed(fs.seed, uint32(in.Ino), in.Generation)
}
