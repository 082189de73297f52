package ext4

import (
	"slices"
	"syscall"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/dirhash"
	"github.com/e4box/e4box/ext4/disk"
)

// htree (dir_index) writes, after fs/ext4/namei.c: insertion through the
// index (ext4_dx_add_entry) with leaf splits by hash (do_split), index
// node splits and a new index level when the root is full, and the
// conversion of a full one-block directory into an indexed one
// (make_indexed_dir). Entries are never removed from the index, as in the
// kernel: emptied leaves stay in place.

// dxLevel is one index block on the path from the root to a leaf.
type dxLevel struct {
	lblk uint64
	buf  *bcache.Buf
	node *disk.DxNode
	at   int // the entry followed to the next level
}

// full reports whether the index block has no room for another entry.
func (l *dxLevel) full() bool { return len(l.node.Entries) >= int(l.node.Limit) }

// child is the logical block the chosen entry points to.
func (l *dxLevel) child() uint64 { return uint64(l.node.Entries[l.at].Block & 0x0FFFFFFF) }

// hashed is a leaf entry with its name hash, for splitting.
type hashed struct {
	dent
	hash uint32
}

// maxHtreeLevels is the number of index levels (root included) allowed.
func (fs *FS) maxHtreeLevels() int {
	if fs.features.largeDir {
		return disk.HtreeLevelsMax
	}
	return disk.HtreeLevels
}

// dxNameHash is the major hash of name in a directory whose dx_root
// stores hash version stored.
func (fs *FS) dxNameHash(stored uint8, name []byte) (uint32, error) {
	h, _, err := dirhash.Hash(dirhash.Effective(stored, fs.features.unsignedHash), name, fs.geo.HashSeed)
	return h, err
}

// dxProbeLocked descends the index of directory d towards name's hash
// (the kernel's dx_probe) and returns the path, root first, the hash and
// the stored hash version.
func (tx *Tx) dxProbeLocked(d *inodeRef, name []byte) (path []dxLevel, hash uint32, hv uint8, err error) {
	fs := tx.fs
	nblocks, err := fs.dirNBlocks(d)
	if err != nil {
		return nil, 0, 0, err
	}
	b, err := tx.dirBufLocked(d, 0)
	if err != nil {
		return nil, 0, 0, err
	}
	if b == nil {
		return nil, 0, 0, fs.corruptf("htree root", d.Ino, 0, "directory block 0 is a hole")
	}
	root, err := disk.DecodeDxRoot(b.Data, fs.csum)
	if err != nil {
		return nil, 0, 0, fs.corrupt("htree root", d.Ino, PBlk(b.Blk), err)
	}
	levels := int(root.Info.IndirectLevels) + 1
	if levels > fs.maxHtreeLevels() {
		return nil, 0, 0, fs.corruptf("htree root", d.Ino, PBlk(b.Blk), "%d levels, at most %d allowed", levels, fs.maxHtreeLevels())
	}
	if root.Info.HashVersion == disk.DxHashSipHash {
		return nil, 0, 0, fs.corruptf("htree root", d.Ino, PBlk(b.Blk), "siphash directory without casefold")
	}
	hv = root.Info.HashVersion
	if hash, err = fs.dxNameHash(hv, name); err != nil {
		return nil, 0, 0, fs.corrupt("htree root", d.Ino, PBlk(b.Blk), err)
	}
	path = make([]dxLevel, 0, levels)
	lv := dxLevel{lblk: 0, buf: b, node: root}
	for {
		lv.at = lv.node.Search(hash)
		path = append(path, lv)
		if len(path) == levels {
			break
		}
		if lv, err = tx.dxNodeLocked(d, lv.child(), nblocks); err != nil {
			return nil, 0, 0, err
		}
	}
	return path, hash, hv, nil
}

// dxNodeLocked reads the interior index node at logical block lblk.
func (tx *Tx) dxNodeLocked(d *inodeRef, lblk, nblocks uint64) (dxLevel, error) {
	fs := tx.fs
	if lblk == 0 || lblk >= nblocks {
		return dxLevel{}, fs.corruptf("htree index", d.Ino, 0, "index block %d invalid (directory has %d)", lblk, nblocks)
	}
	b, err := tx.dirBufLocked(d, lblk)
	if err != nil {
		return dxLevel{}, err
	}
	if b == nil || !fs.isDxBlock(d, lblk, b.Data) {
		return dxLevel{}, fs.corruptf("htree index", d.Ino, 0, "logical block %d is not an index node", lblk)
	}
	n, err := disk.DecodeDxNode(b.Data, fs.csum)
	if err != nil {
		return dxLevel{}, fs.corrupt("htree node", d.Ino, PBlk(b.Blk), err)
	}
	return dxLevel{lblk: lblk, buf: b, node: n}, nil
}

// dxLeafLocked returns the leaf the last level of path points to.
func (tx *Tx) dxLeafLocked(d *inodeRef, path []dxLevel) (uint64, *bcache.Buf, error) {
	fs := tx.fs
	nblocks, err := fs.dirNBlocks(d)
	if err != nil {
		return 0, nil, err
	}
	lblk := path[len(path)-1].child()
	if lblk == 0 || lblk >= nblocks {
		return 0, nil, fs.corruptf("htree index", d.Ino, 0, "leaf block %d invalid (directory has %d)", lblk, nblocks)
	}
	b, err := tx.leafBufLocked(d, lblk)
	return lblk, b, err
}

// writeNodeLocked encodes an index level back into its buffer and schedules it.
func (tx *Tx) writeNodeLocked(d *inodeRef, l *dxLevel) {
	fs := tx.fs
	l.node.Encode(l.buf.Data)
	// Wipe entries past count left by a split, so the block holds no
	// stale pointers.
	start := l.node.CountOffset + len(l.node.Entries)*disk.DxEntrySize
	end := l.node.CountOffset + int(l.node.Limit)*disk.DxEntrySize
	if start < end && end <= len(l.buf.Data) {
		clear(l.buf.Data[start:end])
	}
	tx.dirtyLocked(l.buf, fs.dxCsum(d))
}

// dxInsert adds the entry (hash -> lblk) after the chosen one of l.
func dxInsert(l *dxLevel, hash uint32, lblk uint64) {
	l.node.Entries = slices.Insert(l.node.Entries, l.at+1, disk.DxEntry{Hash: hash, Block: uint32(lblk)})
}

// dxAddLocked adds e to indexed directory d (the kernel's
// ext4_dx_add_entry).
func (tx *Tx) dxAddLocked(d *inodeRef, e *dent) error {
	fs := tx.fs
	// Each pass either inserts, or grows the index by one node or level
	// and probes again; the index depth bounds the passes.
	for range 2*disk.HtreeLevelsMax + 2 {
		path, hash, hv, err := tx.dxProbeLocked(d, e.name)
		if err != nil {
			return err
		}
		_, b, err := tx.dxLeafLocked(d, path)
		if err != nil {
			return err
		}
		switch err := insertEntry(b.Data[:fs.leafEnd()], fs.bsize, e); {
		case err == nil:
			tx.dirtyLocked(b, fs.leafCsum(d))
			return nil
		case err != errNoSpace:
			if err == syscall.EEXIST {
				return err
			}
			return fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err)
		}
		// The leaf is full. Its parent needs room for the new leaf's entry:
		// split the highest full index block whose parent has room, or add a
		// level when every block up to the root is full.
		if last := len(path) - 1; path[last].full() {
			i := last
			for i > 0 && path[i-1].full() {
				i--
			}
			if i == 0 {
				if len(path) >= fs.maxHtreeLevels() {
					fs.log.Warn("ext4: directory index full", "ino", d.Ino, "levels", len(path))
					return syscall.ENOSPC
				}
				err = tx.dxAddLevelLocked(d, &path[0])
			} else {
				err = tx.dxSplitNodeLocked(d, &path[i-1], &path[i])
			}
			if err != nil {
				return err
			}
			continue
		}
		return tx.dxSplitLeafLocked(d, &path[len(path)-1], b, e, hash, hv)
	}
	return fs.corruptf("htree index", d.Ino, 0, "no room after growing the index")
}

// splitIndex picks where to split hash-sorted entries as the kernel's
// do_split: move entries from the top until the moved ones fill about
// half a block; if that leaves too few behind, split by count. Like the
// kernel it weighs entries by their record length in the full block,
// slack included.
func splitIndex(es []hashed, blockSize int) int {
	size, move := 0, 0
	i := len(es) - 1
	for ; i >= 0; i-- {
		rl := es[i].size
		if rl == 0 {
			rl = es[i].recLen()
		}
		if size+rl/2 > blockSize/2 {
			break
		}
		size += rl
		move++
	}
	split := len(es) / 2
	if i > 0 {
		split = len(es) - move
	}
	return min(max(split, 1), len(es)-1)
}

// hashEntries computes the hashes of es and sorts them by hash.
func (fs *FS) hashEntries(es []dent, hv uint8) ([]hashed, error) {
	hs := make([]hashed, len(es))
	for i := range es {
		h, err := fs.dxNameHash(hv, es[i].name)
		if err != nil {
			return nil, err
		}
		hs[i] = hashed{dent: es[i], hash: h}
	}
	slices.SortStableFunc(hs, func(a, b hashed) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return hs, nil
}

// splitLeafEntries divides the leaf entries es plus the new entry e
// (hash hash) between a lower and an upper leaf as do_split does, and
// returns the hash the upper leaf's range starts at, with the collision
// continuation bit when the split falls inside a run of equal hashes.
func (fs *FS) splitLeafEntries(es []dent, e *dent, hash uint32, hv uint8) (lower, upper []dent, start uint32, err error) {
	hs, err := fs.hashEntries(es, hv)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(hs) < 2 {
		return nil, nil, 0, errNoSpace
	}
	split := splitIndex(hs, fs.bsize)
	hash2 := hs[split].hash
	start = hash2
	if hs[split-1].hash == hash2 {
		start |= 1
	}
	for i := range hs {
		if i < split {
			lower = append(lower, hs[i].dent)
		} else {
			upper = append(upper, hs[i].dent)
		}
	}
	// The kernel puts the new entry in the upper leaf from hash2 on.
	if hash >= hash2 {
		upper = append(upper, *e)
	} else {
		lower = append(lower, *e)
	}
	return lower, upper, start, nil
}

// dxSplitLeafLocked splits the full leaf b under index level parent into
// two, adding e to the right half and the new leaf to the index.
func (tx *Tx) dxSplitLeafLocked(d *inodeRef, parent *dxLevel, b *bcache.Buf, e *dent, hash uint32, hv uint8) error {
	fs := tx.fs
	es, err := liveEntries(b.Data[:fs.leafEnd()], fs.bsize)
	if err != nil {
		return fs.corrupt("directory entry", d.Ino, PBlk(b.Blk), err)
	}
	lower, upper, start, err := fs.splitLeafEntries(es, e, hash, hv)
	if err != nil {
		return fs.corruptf("htree leaf", d.Ino, PBlk(b.Blk), "full leaf with %d entries cannot be split", len(es))
	}
	nlblk, nb, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return err
	}
	if !fs.packLeaf(b.Data, lower) || !fs.packLeaf(nb.Data, upper) {
		return fs.corruptf("htree leaf", d.Ino, PBlk(b.Blk), "split halves do not fit")
	}
	tx.dirtyLocked(b, fs.leafCsum(d))
	tx.dirtyLocked(nb, fs.leafCsum(d))
	dxInsert(parent, start, nlblk)
	tx.writeNodeLocked(d, parent)
	return nil
}

// newDxNodeLocked appends an interior index node holding entries.
func (tx *Tx) newDxNodeLocked(d *inodeRef, entries []disk.DxEntry) (uint64, error) {
	fs := tx.fs
	lblk, b, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return 0, err
	}
	// The fake entry: unused, spanning the block, so linear readers skip it.
	disk.EncodeDirEntry(b.Data, 0, fs.bsize, 0, nil, fs.bsize)
	n := &dxLevel{lblk: lblk, buf: b, node: &disk.DxNode{
		CountOffset: disk.DxEntriesNode,
		Limit:       uint16(disk.DxLimit(false, fs.bsize, fs.csum)),
		Entries:     entries,
	}}
	tx.writeNodeLocked(d, n)
	return lblk, nil
}

// dxSplitNodeLocked moves the upper half of the full index node l to a new
// node and adds that to parent, which has room.
func (tx *Tx) dxSplitNodeLocked(d *inodeRef, parent, l *dxLevel) error {
	half := len(l.node.Entries) / 2
	moved := slices.Clone(l.node.Entries[half:])
	nlblk, err := tx.newDxNodeLocked(d, moved)
	if err != nil {
		return err
	}
	l.node.Entries = l.node.Entries[:half]
	tx.writeNodeLocked(d, l)
	dxInsert(parent, moved[0].Hash, nlblk)
	tx.writeNodeLocked(d, parent)
	return nil
}

// dxAddLevelLocked moves all entries of the full root to a new node, which
// becomes the root's only child: the tree grows by one level.
func (tx *Tx) dxAddLevelLocked(d *inodeRef, root *dxLevel) error {
	nlblk, err := tx.newDxNodeLocked(d, slices.Clone(root.node.Entries))
	if err != nil {
		return err
	}
	root.node.Entries = []disk.DxEntry{{Block: uint32(nlblk)}}
	root.node.Info.IndirectLevels++
	tx.writeNodeLocked(d, root)
	return nil
}

// dxFindLocked finds name in indexed directory d, following a hash
// collision chain into the next leaves like the kernel's
// ext4_dx_find_entry.
func (tx *Tx) dxFindLocked(d *inodeRef, name []byte) (*dirSlot, error) {
	fs := tx.fs
	nblocks, err := fs.dirNBlocks(d)
	if err != nil {
		return nil, err
	}
	path, hash, _, err := tx.dxProbeLocked(d, name)
	if err != nil {
		return nil, err
	}
	for range nblocks {
		lblk, b, err := tx.dxLeafLocked(d, path)
		if err != nil {
			return nil, err
		}
		if s, err := tx.searchLeafLocked(d, lblk, b, name); s != nil || err != nil {
			return s, err
		}
		next, ok, err := tx.dxNextLeafLocked(d, path, nblocks)
		if err != nil || !ok || next&^1 != hash {
			return nil, err2(err, syscall.ENOENT)
		}
	}
	return nil, syscall.ENOENT
}

// err2 returns err if set, else def.
func err2(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// dxNextLeafLocked advances path to the next leaf in hash order (the
// kernel's ext4_htree_next_block) and returns the hash its range starts
// with; ok is false at the end of the index.
func (tx *Tx) dxNextLeafLocked(d *inodeRef, path []dxLevel, nblocks uint64) (hash uint32, ok bool, err error) {
	i := len(path) - 1
	for i >= 0 && path[i].at+1 >= len(path[i].node.Entries) {
		i--
	}
	if i < 0 {
		return 0, false, nil
	}
	path[i].at++
	hash = path[i].node.Entries[path[i].at].Hash
	for j := i + 1; j < len(path); j++ {
		if path[j], err = tx.dxNodeLocked(d, path[j-1].child(), nblocks); err != nil {
			return 0, false, err
		}
	}
	return hash, true, nil
}

// makeIndexedLocked turns the full one-block linear directory d, whose
// block is b0, into an indexed one holding e as well (the kernel's
// make_indexed_dir): block 0 becomes the dx_root after "." and "..", and
// the other entries go to two new leaves split by hash. It reports false,
// changing nothing, when block 0 does not have the layout the root needs
// or the default hash is unusable; the directory then grows linearly.
func (tx *Tx) makeIndexedLocked(d *inodeRef, b0 *bcache.Buf, e *dent) (bool, error) {
	fs := tx.fs
	hv := fs.geo.DefHashVersion
	if hv > disk.DxHashTea {
		return false, nil
	}
	data := b0.Data
	dot, n1, err := disk.DecodeDirEntry(data, fs.bsize)
	if err != nil || n1 != 12 || string(dot.Name) != "." {
		return false, nil
	}
	dd, n2, err := disk.DecodeDirEntry(data[n1:], fs.bsize)
	if err != nil || string(dd.Name) != ".." {
		return false, nil
	}
	rest := n1 + n2
	end := fs.leafEnd()
	if rest >= end {
		return false, nil
	}
	// The kernel copies the records after ".." to the start of a new block
	// and stretches the last one to its end, then splits that block: weigh
	// the entries the same way.
	moved := make([]byte, end)
	copy(moved, data[rest:end])
	last, off := 0, 0
	it := disk.NewDirIter(moved[:end-rest], fs.bsize)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		last, off = off, it.Offset()
	}
	if err := it.Err(); err != nil {
		return false, fs.corrupt("directory entry", d.Ino, PBlk(b0.Blk), err)
	}
	lde, _, _ := disk.DecodeDirEntry(moved[last:], fs.bsize)
	disk.EncodeDirEntry(moved[last:], lde.Inode, end-last, lde.FileType, lde.Name, fs.bsize)
	es, err := liveEntries(moved, fs.bsize)
	if err != nil {
		return false, fs.corrupt("directory entry", d.Ino, PBlk(b0.Blk), err)
	}
	hash, err := fs.dxNameHash(hv, e.name)
	if err != nil {
		return false, err
	}
	lower, upper, start, err := fs.splitLeafEntries(es, e, hash, hv)
	if err != nil {
		return false, nil // fewer than two entries: cannot be full
	}
	l1, b1, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return false, err
	}
	l2, b2, err := tx.appendDirBlockLocked(d)
	if err != nil {
		return false, err
	}
	if !fs.packLeaf(b1.Data, lower) || !fs.packLeaf(b2.Data, upper) {
		return false, fs.corruptf("htree leaf", d.Ino, PBlk(b0.Blk), "split halves do not fit")
	}
	tx.dirtyLocked(b1, fs.leafCsum(d))
	tx.dirtyLocked(b2, fs.leafCsum(d))

	// The root: "." as it is, ".." spanning the rest of the block, then the
	// info and entries; the old entries are wiped.
	clear(data[n1+disk.DirEntryHeaderSize+2:])
	disk.EncodeDirEntry(data[n1:], dd.Inode, fs.bsize-n1, dd.FileType, dd.Name, fs.bsize)
	root := &dxLevel{buf: b0, node: &disk.DxNode{
		Root:        true,
		Info:        disk.DxRootInfo{HashVersion: hv, InfoLength: disk.DxRootInfoLen},
		CountOffset: disk.DxEntriesRoot,
		Limit:       uint16(disk.DxLimit(true, fs.bsize, fs.csum)),
		Entries:     []disk.DxEntry{{Block: uint32(l1)}, {Hash: start, Block: uint32(l2)}},
	}}
	tx.writeNodeLocked(d, root)
	d.Raw.Flags |= disk.IndexFL
	tx.dirtyInodeLocked(d)
	return true, nil
}
