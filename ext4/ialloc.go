package ext4

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// Inode allocation, after the kernel's ialloc.c: directories are spread
// Orlov-style (top-level directories go to lightly used groups, others
// stay near their parent unless its group is crowded), other inodes go
// near their parent. With flex_bg the unit of choice is the flex group.

// Flags a new inode inherits from its directory (EXT4_FL_INHERITED), and
// the masks ext4_mask_flags applies per file type.
const (
	flInherited = disk.SecrmFL | disk.UnrmFL | disk.ComprFL | disk.SyncFL | disk.NodumpFL |
		disk.NoatimeFL | disk.NocomprFL | disk.JournalDataFL | disk.NotailFL | disk.DirsyncFL |
		disk.ProjinheritFL | disk.CasefoldFL | disk.DaxFL
	flRegMask   = ^(disk.DirsyncFL | disk.TopdirFL | disk.CasefoldFL | disk.ProjinheritFL)
	flOtherMask = disk.NodumpFL | disk.NoatimeFL
)

const sISGID = 0o2000

// defaultExtraIsize is sizeof(struct ext4_inode) - 128, the kernel's
// default i_extra_isize for new inodes.
const defaultExtraIsize = disk.InodeFullSize - disk.GoodOldInodeSize

// newInodeLocked allocates and initialises an inode of the given mode
// (S_IFMT bits included) for an entry in directory dir:
//   - placement: Orlov for directories, near the parent otherwise;
//   - times (a/m/c/crtime) now with nanoseconds, i_extra_isize from the
//     superblock (s_want_extra_isize, at least 32), a random generation;
//   - owner c.Uid; group the parent's if it is set-group-ID (a new
//     directory then inherits S_ISGID too), else c.Gid;
//   - flags inherited from the parent like the kernel's ext4_mask_flags,
//     plus EXTENTS_FL with an empty tree for regular files, directories
//     and symlinks on an extent filesystem (a fast symlink must clear it
//     again and store its target in Raw.Block, as ext4_symlink does);
//   - i_links_count 1, or 2 for a directory ("." and its entry); the
//     caller links it into dir, and for a directory also raises dir's
//     link count.
//
// The new inode is dirty and charged to its group's counters.
func (tx *Tx) newInodeLocked(dir Ino, mode uint16, c Cred) (*inodeRef, error) {
	fs := tx.fs
	parent, err := tx.inodeLocked(dir)
	if err != nil {
		return nil, err
	}
	isDir := mode&sIFMT == sIFDIR
	ino, err := tx.allocInodeLocked(parent, isDir)
	if err != nil {
		return nil, err
	}
	r := &inodeRef{Ino: ino, Rec: make([]byte, fs.isize), fresh: true, MayInline: fs.features.inlineData}
	raw := &r.Raw
	if fs.isize > disk.GoodOldInodeSize {
		extra := max(int(fs.geo.WantExtraIsize), int(fs.geo.MinExtraIsize), defaultExtraIsize)
		extra = min(extra, fs.isize-disk.GoodOldInodeSize) &^ 3
		raw.ExtraIsize = uint16(extra)
	}
	raw.SetUid(c.Uid)
	gid := c.Gid
	if parent.Raw.Mode&sISGID != 0 {
		gid = parent.Raw.Gid()
		if isDir {
			mode |= sISGID
		}
	}
	raw.SetGid(gid)
	raw.Mode = mode
	raw.LinksCount = 1
	if isDir {
		raw.LinksCount = 2
	}
	s, ns := now()
	raw.SetAtime(s, ns)
	raw.SetMtime(s, ns)
	raw.SetCtime(s, ns)
	raw.SetCrtime(s, ns)
	raw.Generation = rand.Uint32()

	flags := parent.Raw.Flags & flInherited
	switch mode & sIFMT {
	case sIFDIR:
	case sIFREG:
		flags &= flRegMask
	default:
		flags &= flOtherMask
	}
	if fs.features.extents {
		switch mode & sIFMT {
		case sIFREG, sIFDIR, sIFLNK:
			flags |= disk.ExtentsFL
			initExtentRoot(raw)
		}
	}
	raw.Flags = flags
	tx.inodes[ino] = r
	tx.dirtyInodeLocked(r)
	return r, nil
}

// initExtentRoot stores an empty extent tree root in i_block.
func initExtentRoot(raw *disk.Inode) {
	clear(raw.Block[:])
	h := disk.ExtentHeader{Magic: disk.ExtentMagic, Max: uint16(disk.ExtentCapacity(len(raw.Block)))}
	h.Encode(raw.Block[:])
}

// allocInodeLocked picks a group and takes a free inode in it.
func (tx *Tx) allocInodeLocked(parent *inodeRef, isDir bool) (Ino, error) {
	fs := tx.fs
	if fs.sb.FreeInodesCount == 0 {
		return 0, syscall.ENOSPC
	}
	order, err := tx.inodeGroupOrderLocked(parent, isDir)
	if err != nil {
		return 0, err
	}
	for _, g := range order {
		if fs.wr.badInodeGroups[g] {
			continue
		}
		gr, err := tx.groupLocked(g)
		if err != nil || gr.d.FreeInodesCount() == 0 {
			continue
		}
		ino, ok, err := tx.takeInodeLocked(gr, isDir)
		if errors.Is(err, ErrCorrupt) {
			if fs.wr.badInodeGroups == nil {
				fs.wr.badInodeGroups = make(map[Group]bool)
			}
			fs.wr.badInodeGroups[g] = true
			continue
		}
		if err != nil {
			return 0, err
		}
		if ok {
			return ino, nil
		}
	}
	return 0, syscall.ENOSPC
}

// takeInodeLocked allocates the first free inode of group gr.
func (tx *Tx) takeInodeLocked(gr *groupRef, isDir bool) (Ino, bool, error) {
	fs := tx.fs
	bm, err := tx.inodeBitmapLocked(gr)
	if err != nil {
		return 0, false, err
	}
	base := uint64(gr.g) * uint64(fs.ipg)
	from := uint64(0)
	if first := uint64(fs.firstIno) - 1; base < first {
		from = first - base // never hand out reserved inodes
	}
	bit := nextZeroBit(bm, from, uint64(fs.ipg))
	if bit >= uint64(fs.ipg) {
		fs.log.Warn("ext4: group has free inodes by count but none in its bitmap", slog.Uint64("group", uint64(gr.g)))
		return 0, false, nil
	}
	// Like __ext4_new_inode, a group whose inodes get used has its block
	// bitmap initialised too (loaded first: it may fail).
	initBlocks := fs.gdtCsum && gr.d.Flags&disk.BgBlockUninit != 0
	if initBlocks {
		if _, err := tx.blockBitmapLocked(gr); err != nil {
			return 0, false, err
		}
	}
	setBit(bm, bit)
	wasUninit := fs.gdtCsum && gr.d.Flags&disk.BgInodeUninit != 0
	tx.dirtyInodeBitmapLocked(gr)
	if fs.gdtCsum {
		// Inodes past bg_itable_unused are known to be unused; keep the
		// boundary behind the new inode.
		used := fs.ipg - gr.d.ItableUnused()
		if wasUninit {
			used = 0
		}
		if uint32(bit)+1 > used {
			gr.d.SetItableUnused(fs.ipg - uint32(bit) - 1)
		}
		if initBlocks {
			tx.dirtyBlockBitmapLocked(gr)
		}
	}
	dirs := int64(0)
	if isDir {
		dirs = 1
	}
	tx.addFreeInodesLocked(gr, -1, dirs)
	return Ino(base + bit + 1), true, nil
}

// groupStats sums descriptor counts over a unit of groups.
type groupStats struct {
	freeInodes, freeBlocks, dirs uint64
}

// inodeGroupOrderLocked returns the groups to try, best first.
func (tx *Tx) inodeGroupOrderLocked(parent *inodeRef, isDir bool) ([]Group, error) {
	fs := tx.fs
	per := uint64(1)
	if fs.features.flexBG {
		per = max(1, fs.geo.GroupsPerFlex())
	}
	nunits := (uint64(fs.groups) + per - 1) / per
	pgroup := fs.inodeGroup(parent.Ino)
	punit := uint64(pgroup) / per

	stats := func(u uint64) groupStats {
		var s groupStats
		for g := u * per; g < min((u+1)*per, uint64(fs.groups)); g++ {
			gr, err := tx.groupLocked(Group(g))
			if err != nil {
				continue
			}
			s.freeInodes += uint64(gr.d.FreeInodesCount())
			s.freeBlocks += uint64(gr.d.FreeBlocksCount())
			s.dirs += uint64(gr.d.UsedDirsCount())
		}
		return s
	}
	var units []uint64
	if isDir {
		units = tx.orlovUnits(parent, punit, nunits, per, stats)
	}
	if units == nil {
		// Near the parent: its unit if it has room, then the others in
		// order.
		units = make([]uint64, 0, nunits)
		for i := uint64(0); i < nunits; i++ {
			units = append(units, (punit+i)%nunits)
		}
		if s := stats(punit); s.freeInodes == 0 || s.freeBlocks == 0 {
			// Move the parent's unit to the end: prefer one with blocks.
			units = append(units[1:], units[0])
		}
	}
	order := make([]Group, 0, uint64(fs.groups))
	for _, u := range units {
		start := u * per
		if u == punit {
			start = uint64(pgroup)
		}
		end := min((u+1)*per, uint64(fs.groups))
		for g := start; g < end; g++ {
			order = append(order, Group(g))
		}
		for g := u * per; g < start; g++ {
			order = append(order, Group(g))
		}
	}
	return order, nil
}

// orlovUnits implements the Orlov choice for a new directory: under the
// root (or a TOPDIR directory) the least crowded unit with above-average
// free inodes and blocks, from a random start; elsewhere the first unit
// from the parent's on that is not crowded with directories and has
// enough free inodes and blocks. nil means "no preference".
func (tx *Tx) orlovUnits(parent *inodeRef, punit, nunits, per uint64, stats func(uint64) groupStats) []uint64 {
	fs := tx.fs
	all := make([]groupStats, nunits)
	var tot groupStats
	for u := range nunits {
		all[u] = stats(u)
		tot.freeInodes += all[u].freeInodes
		tot.freeBlocks += all[u].freeBlocks
		tot.dirs += all[u].dirs
	}
	avgI, avgB := tot.freeInodes/nunits, tot.freeBlocks/nunits
	rest := func(first uint64) []uint64 {
		out := []uint64{first}
		for i := uint64(1); i < nunits; i++ {
			out = append(out, (first+i)%nunits)
		}
		return out
	}
	if parent.Ino == RootIno || parent.Raw.Flags&disk.TopdirFL != 0 {
		start := rand.Uint64N(nunits)
		best, found := uint64(0), false
		for i := range nunits {
			u := (start + i) % nunits
			s := all[u]
			if s.freeInodes == 0 || s.freeInodes < avgI || s.freeBlocks < avgB {
				continue
			}
			if !found || s.dirs < all[best].dirs {
				best, found = u, true
			}
		}
		if found {
			return rest(best)
		}
		return nil
	}
	ipu := uint64(fs.ipg) * per
	maxDirs := tot.dirs/nunits + ipu/16
	minI := uint64(1)
	if avgI > ipu/4 {
		minI = avgI - ipu/4
	}
	minB := uint64(0)
	if bpu := uint64(fs.bpg) * per; avgB > bpu/4 {
		minB = avgB - bpu/4
	}
	for i := range nunits {
		u := (punit + i) % nunits
		s := all[u]
		if s.dirs < maxDirs && s.freeInodes >= minI && s.freeBlocks >= minB {
			return rest(u)
		}
	}
	return nil
}
