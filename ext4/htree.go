package ext4

import (
	"syscall"

	"github.com/e4box/e4box/ext4/dirhash"
	"github.com/e4box/e4box/ext4/disk"
)

// dxFrame is one level of an htree descent: an index node and the entry
// chosen in it.
type dxFrame struct {
	node *disk.DxNode
	at   int
}

// dxLookup finds name in an indexed directory as the kernel's
// ext4_dx_find_entry does: hash the name, descend the index to the leaf
// block whose range holds the hash, search it, and continue to following
// leaves while their starting hash says the collision chain continues.
// A corrupt index is reported, not bypassed by a linear scan.
func (fs *FS) dxLookupLocked(in *Inode, name []byte) (Ino, error) {
	nblocks, err := fs.dirBlocks(in)
	if err != nil {
		return 0, err
	}
	d, err := fs.dirBlockLocked(in, 0)
	if err != nil {
		return 0, err
	}
	if d.data == nil {
		return 0, fs.corruptf("htree root", in.Ino, 0, "directory block 0 is a hole")
	}
	pblk := d.pblk
	root, err := disk.DecodeDxRoot(d.data, fs.csum)
	if err != nil {
		return 0, fs.corrupt("htree root", in.Ino, pblk, err)
	}
	levels := int(root.Info.IndirectLevels) + 1
	maxLevels := disk.HtreeLevels
	if fs.features.largeDir {
		maxLevels = disk.HtreeLevelsMax
	}
	if levels > maxLevels {
		return 0, fs.corruptf("htree root", in.Ino, pblk, "%d levels, at most %d allowed", levels, maxLevels)
	}
	// siphash is only used by casefolded directories, which Open refuses;
	// dirhash reports it (and unknown versions) as unsupported.
	hash, _, err := dirhash.Hash(dirhash.Effective(root.Info.HashVersion, fs.features.unsignedHash), name, fs.geo.HashSeed)
	if err != nil {
		return 0, fs.corrupt("htree root", in.Ino, pblk, err)
	}

	// Descend, remembering the path for moving to the next leaf.
	frames := make([]dxFrame, 0, levels)
	node := root
	for {
		at := node.Search(hash)
		frames = append(frames, dxFrame{node: node, at: at})
		if len(frames) == levels {
			break
		}
		if node, err = fs.dxChildLocked(in, node.Entries[at].Block, nblocks); err != nil {
			return 0, err
		}
	}

	// Each pass moves to a new leaf block, so nblocks bounds the loop.
	for range nblocks {
		leaf := frames[len(frames)-1]
		lblk := uint64(leaf.node.Entries[leaf.at].Block & 0x0FFFFFFF)
		if lblk >= nblocks {
			return 0, fs.corruptf("htree index", in.Ino, 0, "leaf block %d beyond %d", lblk, nblocks)
		}
		d, err := fs.dirBlockLocked(in, lblk)
		if err != nil {
			return 0, err
		}
		// Without metadata_csum a leaf whose names were all removed (one
		// unused record spanning the block) looks like an index node, as it
		// does to the kernel; searching it just finds nothing.
		if d.data == nil {
			return 0, fs.corruptf("htree leaf", in.Ino, d.pblk, "logical block %d is not a leaf", lblk)
		}
		ino, err := fs.searchEntriesLocked(in, d.pblk, d.data, fs.bsize, name)
		if ino != 0 || err != nil {
			return ino, err
		}
		next, ok, err := fs.dxNextLeafLocked(in, frames, nblocks)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		// A hash collision spills into the next leaf only if its range
		// starts with the same hash (low bit = continuation flag).
		if next&^1 != hash {
			break
		}
	}
	return 0, syscall.ENOENT
}

// dxChild reads and verifies the interior index node at logical block blk.
func (fs *FS) dxChildLocked(in *Inode, blk uint32, nblocks uint64) (*disk.DxNode, error) {
	lblk := uint64(blk & 0x0FFFFFFF)
	if lblk == 0 || lblk >= nblocks {
		return nil, fs.corruptf("htree index", in.Ino, 0, "index block %d invalid (directory has %d)", lblk, nblocks)
	}
	d, err := fs.dirBlockLocked(in, lblk)
	if err != nil {
		return nil, err
	}
	if d.data == nil || !d.dx {
		return nil, fs.corruptf("htree index", in.Ino, d.pblk, "logical block %d is not an index node", lblk)
	}
	n, err := disk.DecodeDxNode(d.data, fs.csum)
	if err != nil {
		return nil, fs.corrupt("htree node", in.Ino, d.pblk, err)
	}
	return n, nil
}

// dxNextLeaf advances frames to the next leaf in hash order (the kernel's
// ext4_htree_next_block) and returns the hash its range starts with; ok is
// false at the end of the index.
func (fs *FS) dxNextLeafLocked(in *Inode, frames []dxFrame, nblocks uint64) (hash uint32, ok bool, err error) {
	i := len(frames) - 1
	for i >= 0 && frames[i].at+1 >= len(frames[i].node.Entries) {
		i--
	}
	if i < 0 {
		return 0, false, nil
	}
	frames[i].at++
	hash = frames[i].node.Entries[frames[i].at].Hash
	for j := i + 1; j < len(frames); j++ {
		parent := frames[j-1]
		n, err := fs.dxChildLocked(in, parent.node.Entries[parent.at].Block, nblocks)
		if err != nil {
			return 0, false, err
		}
		frames[j] = dxFrame{node: n, at: 0}
	}
	return hash, true, nil
}
