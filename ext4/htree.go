package ext4

import (
	"bytes"
	"cmp"
	"slices"
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
	ix, err := fs.dxRootLocked(in)
	if err != nil {
		return 0, err
	}
	hash, _, err := ix.hash(name)
	if err != nil {
		return 0, err
	}
	frames, err := fs.dxProbeLocked(in, ix, hash)
	if err != nil {
		return 0, err
	}
	nblocks := ix.nblocks

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

// dxIndex is a directory's decoded htree root with what hashing and
// descending need.
type dxIndex struct {
	fs      *FS
	in      *Inode
	root    *disk.DxNode
	pblk    PBlk // of the root, for error reports
	nblocks uint64
	levels  int
	version dirhash.Version
}

// dxRoot reads and checks the htree root (block 0) of an indexed directory.
func (fs *FS) dxRootLocked(in *Inode) (*dxIndex, error) {
	nblocks, err := fs.dirBlocks(in)
	if err != nil {
		return nil, err
	}
	d, err := fs.dirBlockLocked(in, 0)
	if err != nil {
		return nil, err
	}
	if d.data == nil {
		return nil, fs.corruptf("htree root", in.Ino, 0, "directory block 0 is a hole")
	}
	root, err := disk.DecodeDxRoot(d.data, fs.csum)
	if err != nil {
		return nil, fs.corrupt("htree root", in.Ino, d.pblk, err)
	}
	levels := int(root.Info.IndirectLevels) + 1
	maxLevels := disk.HtreeLevels
	if fs.features.largeDir {
		maxLevels = disk.HtreeLevelsMax
	}
	if levels > maxLevels {
		return nil, fs.corruptf("htree root", in.Ino, d.pblk, "%d levels, at most %d allowed", levels, maxLevels)
	}
	return &dxIndex{fs: fs, in: in, root: root, pblk: d.pblk, nblocks: nblocks, levels: levels,
		version: dirhash.Effective(root.Info.HashVersion, fs.features.unsignedHash)}, nil
}

// hash returns the (major, minor) hash of name in this directory.
// siphash is only used by casefolded directories, which Open refuses;
// dirhash reports it (and unknown versions) as unsupported.
func (ix *dxIndex) hash(name []byte) (major, minor uint32, err error) {
	major, minor, err = dirhash.Hash(ix.version, name, ix.fs.geo.HashSeed)
	if err != nil {
		return 0, 0, ix.fs.corrupt("htree root", ix.in.Ino, ix.pblk, err)
	}
	return major, minor, nil
}

// dxProbe descends the index to the leaf whose range holds hash (the
// kernel's dx_probe), returning the path for dxNextLeaf.
func (fs *FS) dxProbeLocked(in *Inode, ix *dxIndex, hash uint32) ([]dxFrame, error) {
	frames := make([]dxFrame, 0, ix.levels)
	node := ix.root
	for {
		at := node.Search(hash)
		frames = append(frames, dxFrame{node: node, at: at})
		if len(frames) == ix.levels {
			return frames, nil
		}
		var err error
		if node, err = fs.dxChildLocked(in, node.Entries[at].Block, ix.nblocks); err != nil {
			return nil, err
		}
	}
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

// htree listing positions.
//
// An indexed directory lists in hash order, as the kernel's ext4_dx_readdir
// does, so a cookie names a place in hash space and stays meaningful when
// leaf splits or compaction move entries between blocks: resuming at a
// cookie lists exactly the entries whose position is at or after it.
//
// "." is position 0 and ".." position 1. A stored entry's position is
//
//	dxFirstPos + (major>>1 << 23 | minor>>9) << dxRankBits | rank
//
// The key keeps all 31 significant bits of the major hash (its low bit is
// always clear) and the top 23 bits of the minor hash; entries sharing a
// key (a real collision) are ordered by (minor, name) and told apart by
// their rank among them, so every entry has its own position and a listing
// can stop anywhere without losing or repeating the rest of its collision
// group. Only a group of more than dxMaxRank entries with the same 54-bit
// key (which needs a deliberately crafted directory) shares its last
// position; those entries all get the next group's position as Next.
// Positions stay below 2^62, clear of the sign bit of the kernel's loff_t;
// the end of a listing is dxEOFPos, the kernel's EXT4_HTREE_EOF_64BIT.
// Unlike the kernel's hash2pos these positions are not the kernel's d_off
// values: the kernel keeps a per-open-file cursor for collisions, and we
// keep none.
const (
	dxDotPos    = 0
	dxDotDotPos = 1
	dxFirstPos  = 2
	dxRankBits  = 8
	dxMaxRank   = 1<<dxRankBits - 1
	dxMinorBits = 23
	dxKeyLimit  = 1 << (31 + dxMinorBits)
	dxEOFPos    = 1<<63 - 1
)

// dxKey is the part of an entry's hashes a position keeps.
func dxKey(major, minor uint32) uint64 {
	return uint64(major>>1)<<dxMinorBits | uint64(minor>>(32-dxMinorBits))
}

// dxPos is the position of the entry with the given key and rank.
func dxPos(key uint64, rank int) uint64 {
	return dxFirstPos + (key<<dxRankBits | uint64(rank))
}

// dxEnt is a stored entry collected from a leaf for sorting.
type dxEnt struct {
	major, minor uint32
	name         []byte
	ino          Ino
	typ          uint8
}

// dxReadDir lists an indexed directory in hash order from cookie (see the
// position notes above), the kernel's ext4_dx_readdir with
// ext4_htree_fill_tree. Each step descends the index to the leaf holding
// the resume hash, gathers that leaf and the leaves its collision chain
// continues into, and emits their entries sorted. Entries stored outside
// their leaf's hash range (a damaged index) are not listed, as lookup
// cannot find them either; a corrupt index is an error.
func (fs *FS) dxReadDirLocked(in *Inode, cookie uint64, fn func(DirEntry) bool) error {
	ix, err := fs.dxRootLocked(in)
	if err != nil {
		return err
	}
	dirType := uint8(DTUnknown)
	if fs.features.filetype {
		dirType = DTDir
	}
	if cookie == dxDotPos && !fn(DirEntry{Name: []byte("."), Ino: in.Ino, Type: dirType, Next: dxDotDotPos}) {
		return nil
	}
	if cookie <= dxDotDotPos {
		parent := ix.root.DotDotInode
		if parent == 0 || parent > fs.geo.InodesCount {
			return fs.corruptf("htree root", in.Ino, ix.pblk, "parent inode %d invalid", parent)
		}
		if !fn(DirEntry{Name: []byte(".."), Ino: Ino(parent), Type: dirType, Next: dxFirstPos}) {
			return nil
		}
	}
	lo := max(cookie, dxFirstPos) // listing resumes at the first position >= lo
	if (lo-dxFirstPos)>>dxRankBits >= dxKeyLimit {
		return nil // at or past the end
	}
	key := (lo - dxFirstPos) >> dxRankBits
	frames, err := fs.dxProbeLocked(in, ix, uint32(key>>dxMinorBits)<<1)
	if err != nil {
		return err
	}
	// Like the linear listing this goes on until fn refuses an entry (the
	// server's reply is full) or the index ends; it reads leaves from the
	// cookie's on, never the directory before it.
	for leaves := 0; ; {
		batch, next, more, err := fs.dxGatherLocked(ix, frames, &leaves)
		if err != nil {
			return err
		}
		pos := dxRank(batch)
		for i := range batch {
			if pos[i] < lo || pos[i] >= next {
				continue
			}
			// Next is the following position, skipping the shared last
			// rank of an oversized collision group.
			after := next
			for j := i + 1; j < len(batch); j++ {
				if pos[j] > pos[i] {
					after = min(pos[j], next)
					break
				}
			}
			e := &batch[i]
			if !fn(DirEntry{Name: e.name, Ino: e.ino, Type: e.typ, Next: after}) {
				return nil
			}
		}
		if !more {
			return nil
		}
		lo = next
	}
}

// dxGather reads the leaf frames point at and the leaves its collision
// chain continues into, advancing frames past them. It returns their live
// entries with hashes, the position where the following leaf's range
// starts (dxEOFPos at the end), and whether there is a following leaf.
func (fs *FS) dxGatherLocked(ix *dxIndex, frames []dxFrame, leaves *int) (batch []dxEnt, next uint64, more bool, err error) {
	in := ix.in
	for {
		// Each leaf read advances frames, and the index has finitely many
		// entries; nblocks bounds a chain that revisits blocks.
		if *leaves++; uint64(*leaves) > ix.nblocks {
			return nil, 0, false, fs.corruptf("htree index", in.Ino, ix.pblk, "more leaves than the directory's %d blocks", ix.nblocks)
		}
		leaf := frames[len(frames)-1]
		lblk := uint64(leaf.node.Entries[leaf.at].Block & 0x0FFFFFFF)
		if lblk == 0 || lblk >= ix.nblocks {
			return nil, 0, false, fs.corruptf("htree index", in.Ino, 0, "leaf block %d invalid (directory has %d)", lblk, ix.nblocks)
		}
		d, err := fs.dirBlockLocked(in, lblk)
		if err != nil {
			return nil, 0, false, err
		}
		if d.data == nil {
			return nil, 0, false, fs.corruptf("htree leaf", in.Ino, d.pblk, "logical block %d is not a leaf", lblk)
		}
		// A leaf holds at most bsize/12 entries, which bounds the batch.
		var herr error
		_, err = fs.walkBlockLocked(in, d.pblk, d.data, fs.bsize, 0, 0, func(e *disk.DirEntry, _, _ uint64) bool {
			major, minor, err := ix.hash(e.Name)
			if err != nil {
				herr = err
				return false
			}
			batch = append(batch, dxEnt{major: major, minor: minor, name: bytes.Clone(e.Name), ino: Ino(e.Inode), typ: fs.dirType(e)})
			return true
		})
		if err == nil {
			err = herr
		}
		if err != nil {
			return nil, 0, false, err
		}
		hash, ok, err := fs.dxNextLeafLocked(in, frames, ix.nblocks)
		switch {
		case err != nil:
			return nil, 0, false, err
		case !ok:
			return batch, dxEOFPos, false, nil
		case hash&1 == 0:
			return batch, dxPos(dxKey(hash, 0), 0), true, nil
		}
		// The next leaf continues this one's last hash: gather it too, so
		// a collision group is sorted and ranked whole.
	}
}

// dxRank sorts a batch into listing order and returns each entry's
// position.
func dxRank(batch []dxEnt) []uint64 {
	slices.SortFunc(batch, func(a, b dxEnt) int {
		return cmp.Or(cmp.Compare(a.major, b.major), cmp.Compare(a.minor, b.minor), bytes.Compare(a.name, b.name))
	})
	pos := make([]uint64, len(batch))
	rank := 0
	for i := range batch {
		k := dxKey(batch[i].major, batch[i].minor)
		if i > 0 && k == dxKey(batch[i-1].major, batch[i-1].minor) {
			rank = min(rank+1, dxMaxRank)
		} else {
			rank = 0
		}
		pos[i] = dxPos(k, rank)
	}
	return pos
}
