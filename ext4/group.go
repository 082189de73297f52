package ext4

import (
	"github.com/e4box/e4box/ext4/disk"
)

// groupFirstBlock is the first block of group g.
func (fs *FS) groupFirstBlock(g Group) PBlk {
	return PBlk(uint64(g)*uint64(fs.bpg) + uint64(fs.geo.FirstDataBlock))
}

// descLocation returns the block holding group g's descriptor and the byte
// offset of the record in it, following the kernel's descriptor_loc: the
// descriptor table follows the superblock, except that with meta_bg the
// descriptor blocks from s_first_meta_bg on each live at the start of their
// own meta group (after its superblock backup, if any).
func (fs *FS) descLocation(g Group) (PBlk, int) {
	dpb := uint32(fs.bsize / fs.geo.DescSize())
	nr := uint32(g) / dpb
	off := int(uint32(g)%dpb) * fs.geo.DescSize()
	logicalSB := uint64(disk.SuperblockOffset) >> fs.bshift // 1 with 1 KiB blocks, else 0
	if !fs.features.metaBG || nr < fs.geo.FirstMetaBg {
		return PBlk(logicalSB + uint64(nr) + 1), off
	}
	bg := Group(nr * dpb) // cannot overflow: nr*dpb <= g
	var hasSuper uint64
	if fs.bgHasSuper(bg) {
		hasSuper = 1
	}
	if fs.bsize == 1024 && nr == 0 && fs.geo.FirstDataBlock == 0 {
		hasSuper++
	}
	return PBlk(uint64(fs.groupFirstBlock(bg)) + hasSuper), off
}

// groupDesc reads and verifies group g's descriptor. A bad checksum fails
// only callers touching group g.
func (fs *FS) groupDescLocked(g Group) (disk.GroupDesc, error) {
	if uint32(g) >= fs.groups {
		return disk.GroupDesc{}, fs.corruptf("group descriptor", 0, 0, "group %d beyond %d groups", g, fs.groups)
	}
	blk, off := fs.descLocation(g)
	b, err := fs.readBlockLocked(blk, "group descriptor", 0)
	if err != nil {
		return disk.GroupDesc{}, err
	}
	defer fs.cache.Put(b)
	ds := fs.geo.DescSize()
	rec := b.Data[off : off+ds]
	if err := disk.VerifyGroupDescChecksum(fs.sb, fs.seed, uint32(g), rec); err != nil {
		return disk.GroupDesc{}, fs.corruptf("group descriptor", 0, blk, "group %d: %w", g, err)
	}
	d, err := disk.DecodeGroupDesc(rec, ds)
	if err != nil {
		return disk.GroupDesc{}, fs.corruptf("group descriptor", 0, blk, "group %d: %w", g, err)
	}
	return d, nil
}
