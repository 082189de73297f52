package ext4

import (
	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/disk"
)

// groupRef is a transaction's working copy of one group descriptor, with
// the group's bitmaps once loaded. At commit the bitmap checksums are
// stored in the descriptor, which is encoded into its descriptor block
// with its own checksum.
type groupRef struct {
	g     Group
	d     disk.GroupDesc
	dirty bool

	bbuf, ibuf       *bcache.Buf // block and inode bitmaps, once loaded
	bbDirty, ibDirty bool
}

// groupLocked returns the transaction's working copy of group g's
// descriptor (verified when first read).
func (tx *Tx) groupLocked(g Group) (*groupRef, error) {
	if gr, ok := tx.groups[g]; ok {
		return gr, nil
	}
	d, err := tx.fs.groupDescLocked(g)
	if err != nil {
		return nil, err
	}
	gr := &groupRef{g: g, d: d}
	tx.groups[g] = gr
	return gr, nil
}

// groupBlocks is the number of blocks in group g (the last may be short).
func (fs *FS) groupBlocks(g Group) uint64 {
	first := uint64(fs.groupFirstBlock(g))
	return min(uint64(fs.bpg), fs.nblocks-first)
}

// blockBitmapLocked returns group gr's block bitmap. For a group whose
// bitmap was never initialised (BLOCK_UNINIT) it is built in memory the
// way the kernel's ext4_init_block_bitmap does; the group's flag is
// cleared only when a bit is first set (markBlocksLocked).
func (tx *Tx) blockBitmapLocked(gr *groupRef) ([]byte, error) {
	if gr.bbuf != nil {
		return gr.bbuf.Data, nil
	}
	fs := tx.fs
	blk := PBlk(gr.d.BlockBitmap())
	if !fs.validBlockRange(blk, 1) {
		return nil, fs.corruptf("group descriptor", 0, 0, "group %d block bitmap at %d outside filesystem", gr.g, blk)
	}
	if fs.gdtCsum && gr.d.Flags&disk.BgBlockUninit != 0 {
		b, err := tx.synthBlockLocked(blk, "block bitmap")
		if err != nil {
			return nil, err
		}
		if err := fs.initBlockBitmap(gr, b.Data); err != nil {
			return nil, err
		}
		gr.bbuf = b
		return b.Data, nil
	}
	b, err := tx.metaBlockLocked(blk, "block bitmap")
	if err != nil {
		return nil, err
	}
	if err := disk.VerifyBlockBitmapChecksum(fs.geo, fs.seed, &gr.d, b.Data); err != nil {
		return nil, fs.corruptf("block bitmap", 0, blk, "group %d: %w", gr.g, err)
	}
	gr.bbuf = b
	return b.Data, nil
}

// inodeBitmapLocked returns group gr's inode bitmap; an INODE_UNINIT
// group's is all free (built in memory, like ext4_read_inode_bitmap).
func (tx *Tx) inodeBitmapLocked(gr *groupRef) ([]byte, error) {
	if gr.ibuf != nil {
		return gr.ibuf.Data, nil
	}
	fs := tx.fs
	blk := PBlk(gr.d.InodeBitmap())
	if !fs.validBlockRange(blk, 1) {
		return nil, fs.corruptf("group descriptor", 0, 0, "group %d inode bitmap at %d outside filesystem", gr.g, blk)
	}
	if fs.gdtCsum && gr.d.Flags&disk.BgInodeUninit != 0 {
		b, err := tx.synthBlockLocked(blk, "inode bitmap")
		if err != nil {
			return nil, err
		}
		markBitmapEnd(b.Data, uint64(fs.ipg))
		gr.ibuf = b
		return b.Data, nil
	}
	b, err := tx.metaBlockLocked(blk, "inode bitmap")
	if err != nil {
		return nil, err
	}
	if err := disk.VerifyInodeBitmapChecksum(fs.geo, fs.seed, &gr.d, b.Data); err != nil {
		return nil, fs.corruptf("inode bitmap", 0, blk, "group %d: %w", gr.g, err)
	}
	gr.ibuf = b
	return b.Data, nil
}

// synthBlockLocked returns a zeroed buffer for a bitmap block whose disk
// contents are undefined (an uninitialised group's). It is not dirty: it
// is written only if a bit gets set, and otherwise forgotten when the
// transaction ends.
func (tx *Tx) synthBlockLocked(blk PBlk, kind string) (*bcache.Buf, error) {
	if tb, ok := tx.bufs[uint64(blk)]; ok {
		return tb.b, nil
	}
	tx.fs.cache.Forget(uint64(blk))
	b, err := tx.fs.cache.GetZero(uint64(blk))
	if err != nil {
		return nil, err
	}
	clear(b.Data)
	tx.bufs[uint64(blk)] = &txBuf{b: b, kind: kind, phase: phaseMeta, synth: true}
	return b, nil
}

// initBlockBitmap fills the block bitmap of an uninitialised group: the
// superblock and descriptor copies at its start, its own bitmaps and inode
// table if they lie inside it, and the padding past the group's end.
func (fs *FS) initBlockBitmap(gr *groupRef, bm []byte) error {
	base := fs.superAndGDTBlocks(gr.g)
	if base>>3 >= uint64(len(bm)) {
		return fs.corruptf("group descriptor", 0, 0, "group %d: %d metadata blocks overflow its bitmap", gr.g, base)
	}
	for i := uint64(0); i < base; i++ {
		setBit(bm, i)
	}
	first := fs.groupFirstBlock(gr.g)
	n := fs.groupBlocks(gr.g)
	in := func(b uint64) {
		if b >= uint64(first) && b-uint64(first) < n {
			setBit(bm, b-uint64(first))
		}
	}
	in(gr.d.BlockBitmap())
	in(gr.d.InodeBitmap())
	for i := uint64(0); i < fs.itableBlocks(); i++ {
		in(gr.d.InodeTable() + i)
	}
	markBitmapEnd(bm, n)
	return nil
}

// itableBlocks is the number of inode table blocks per group.
func (fs *FS) itableBlocks() uint64 {
	return (uint64(fs.ipg)*uint64(fs.isize) + uint64(fs.bsize) - 1) >> fs.bshift
}

// markBitmapEnd sets the bits from n to the end of the bitmap block, as
// ext4_mark_bitmap_end does (they stand for blocks/inodes that do not
// exist).
func markBitmapEnd(bm []byte, n uint64) {
	total := uint64(len(bm)) * 8
	for i := n; i < total; {
		if i&7 == 0 && i+8 <= total {
			bm[i>>3] = 0xFF
			i += 8
			continue
		}
		setBit(bm, i)
		i++
	}
}

func testBit(bm []byte, i uint64) bool { return bm[i>>3]&(1<<(i&7)) != 0 }
func setBit(bm []byte, i uint64)       { bm[i>>3] |= 1 << (i & 7) }
func clearBit(bm []byte, i uint64)     { bm[i>>3] &^= 1 << (i & 7) }

// nextZeroBit returns the first clear bit in [from, n), or n.
func nextZeroBit(bm []byte, from, n uint64) uint64 {
	i := from
	for i < n {
		if i&7 == 0 && i+8 <= n && bm[i>>3] == 0xFF {
			i += 8
			continue
		}
		if !testBit(bm, i) {
			return i
		}
		i++
	}
	return n
}

// zeroRun returns how many clear bits follow from i (inclusive), up to max
// and not beyond n.
func zeroRun(bm []byte, i, n, max uint64) uint64 {
	run := uint64(0)
	for i+run < n && run < max && !testBit(bm, i+run) {
		run++
	}
	return run
}

// dirtyBlockBitmapLocked records a block bitmap change: the bitmap is
// written in the second phase, and an uninitialised group becomes
// initialised.
func (tx *Tx) dirtyBlockBitmapLocked(gr *groupRef) {
	tb := tx.bufs[gr.bbuf.Blk]
	tb.dirty = true
	gr.bbDirty, gr.dirty = true, true
	gr.d.Flags &^= disk.BgBlockUninit
}

// dirtyInodeBitmapLocked records an inode bitmap change.
func (tx *Tx) dirtyInodeBitmapLocked(gr *groupRef) {
	tb := tx.bufs[gr.ibuf.Blk]
	tb.dirty = true
	gr.ibDirty, gr.dirty = true, true
	gr.d.Flags &^= disk.BgInodeUninit
}

// encodeGroupsLocked stores the bitmap checksums of changed groups in
// their descriptors and encodes the descriptors (with their checksums)
// into the descriptor blocks.
func (tx *Tx) encodeGroupsLocked() error {
	fs := tx.fs
	for _, g := range sortedKeys(tx.groups) {
		gr := tx.groups[g]
		if !gr.dirty {
			continue
		}
		if gr.bbDirty {
			disk.SetBlockBitmapChecksum(fs.geo, fs.seed, &gr.d, gr.bbuf.Data)
			gr.bbDirty = false
		}
		if gr.ibDirty {
			disk.SetInodeBitmapChecksum(fs.geo, fs.seed, &gr.d, gr.ibuf.Data)
			gr.ibDirty = false
		}
		blk, off := fs.descLocation(g)
		b, err := tx.metaBlockLocked(blk, "group descriptor")
		if err != nil {
			return err
		}
		ds := fs.geo.DescSize()
		rec := b.Data[off : off+ds]
		gr.d.Encode(rec, ds)
		disk.SetGroupDescChecksum(fs.geo, fs.seed, uint32(g), rec)
		tx.bufs[uint64(blk)].dirty = true
		gr.dirty = false
	}
	return nil
}

// addFreeBlocksLocked adjusts the free block counts of group gr, the
// superblock and statfs by delta.
func (tx *Tx) addFreeBlocksLocked(gr *groupRef, delta int64) {
	fs := tx.fs
	gr.d.SetFreeBlocksCount(uint32(int64(gr.d.FreeBlocksCount()) + delta))
	gr.dirty = true
	fs.sb.SetFreeBlocksCount(uint64(int64(fs.sb.FreeBlocksCount()) + delta))
	tx.sbDirty = true
	fs.stat.Bfree = uint64(max(0, int64(fs.stat.Bfree)+delta))
	rsv := fs.reservedBlocks()
	fs.stat.Bavail = 0
	if fs.stat.Bfree > rsv {
		fs.stat.Bavail = fs.stat.Bfree - rsv
	}
}

// addFreeInodesLocked adjusts the free inode counts (and the group's
// directory count by dirs) of group gr, the superblock and statfs.
func (tx *Tx) addFreeInodesLocked(gr *groupRef, delta int64, dirs int64) {
	fs := tx.fs
	gr.d.SetFreeInodesCount(uint32(int64(gr.d.FreeInodesCount()) + delta))
	if dirs != 0 {
		gr.d.SetUsedDirsCount(uint32(max(0, int64(gr.d.UsedDirsCount())+dirs)))
	}
	gr.dirty = true
	fs.sb.FreeInodesCount = uint32(int64(fs.sb.FreeInodesCount) + delta)
	tx.sbDirty = true
	fs.stat.Ffree = uint64(max(0, int64(fs.stat.Ffree)+delta))
}

// inodeInUseLocked reports whether inode ino's bit is set in its bitmap.
func (tx *Tx) inodeInUseLocked(ino Ino) (bool, error) {
	fs := tx.fs
	gr, err := tx.groupLocked(fs.inodeGroup(ino))
	if err != nil {
		return false, err
	}
	bm, err := tx.inodeBitmapLocked(gr)
	if err != nil {
		return false, err
	}
	return testBit(bm, uint64((uint32(ino)-1)%fs.ipg)), nil
}
