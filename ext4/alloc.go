package ext4

import (
	"errors"
	"log/slog"
	"slices"
	"syscall"
)

// Block allocation. The bitmaps are the authority; the system zone (every
// group's superblock and descriptor copies, bitmaps and inode table) is a
// second opinion, like the kernel's ext4_sb_block_valid: a bitmap that
// offers a metadata block is corrupt, and the allocation fails rather than
// hand the block out.

// goodRun is the run length the allocator looks for beyond the goal before
// settling for any free block: long enough that a multi-block request is
// not shredded into single blocks by scattered holes.
const goodRun = 32

// allocBlocksLocked allocates between 1 and want contiguous blocks,
// preferring goal (typically the block after the file's previous extent)
// and its group. The blocks are marked in the bitmap now and recorded in
// the descriptor and superblock counters; callers charge them to the
// inode's i_blocks. ENOSPC when nothing is free for this caller.
func (tx *Tx) allocBlocksLocked(goal PBlk, want uint64, ino Ino) (PBlk, uint64, error) {
	return tx.allocLimitLocked(goal, want, ino, tx.fs.nblocks)
}

// allocLimitLocked is allocBlocksLocked restricted to blocks below limit
// (block-mapped files can only address 32-bit block numbers).
func (tx *Tx) allocLimitLocked(goal PBlk, want uint64, ino Ino, limit uint64) (PBlk, uint64, error) {
	fs := tx.fs
	if want == 0 {
		want = 1
	}
	limit = min(limit, fs.nblocks)
	avail := tx.allocatableBlocks()
	if avail == 0 {
		return 0, 0, syscall.ENOSPC
	}
	want = min(want, avail)

	if uint64(goal) < uint64(fs.geo.FirstDataBlock) || uint64(goal) >= limit {
		goal = fs.inodeGoal(ino)
	}
	if uint64(goal) >= limit {
		goal = PBlk(fs.geo.FirstDataBlock)
	}
	gGoal := fs.blockGroup(goal)
	// Candidate groups: those below limit.
	ngroups := fs.groups
	if last := fs.blockGroup(PBlk(limit - 1)); uint32(last)+1 < ngroups {
		ngroups = uint32(last) + 1
	}
	// Pass 0: the goal block itself; pass 1: a good run anywhere from
	// the goal on; pass 2: any free block.
	for pass := 0; pass < 3; pass++ {
		need := uint64(1)
		if pass == 1 {
			need = min(want, goodRun)
		}
		// Groups from the goal's on, wrapping around, and finally the
		// goal group again from its start.
		for i := uint32(0); i <= ngroups; i++ {
			g := Group((uint64(gGoal) + uint64(i)) % uint64(ngroups))
			if fs.wr.badBlockGroups[g] {
				continue
			}
			gr, err := tx.groupLocked(g)
			if err != nil {
				// A bad descriptor makes its group unusable, not the fs.
				continue
			}
			if uint64(gr.d.FreeBlocksCount()) < need {
				if pass == 0 {
					break
				}
				continue
			}
			from := uint64(0)
			if i == 0 {
				from = uint64(goal - fs.groupFirstBlock(g))
			}
			start, n, ok, err := tx.findRunLocked(gr, from, need, want, limit, pass == 0)
			if ok && err == nil {
				var blk PBlk
				if blk, n, err = tx.takeBlocksLocked(gr, start, n, ino); err == nil {
					return blk, n, nil
				}
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					return 0, 0, err
				}
				// Like the kernel's EXT4_GROUP_INFO_BBITMAP_CORRUPT: a
				// group whose bitmap cannot be trusted is skipped from
				// now on (the corruption is logged where found).
				fs.markBadBlockGroup(g)
				continue
			}
			if pass == 0 {
				break
			}
		}
	}
	return 0, 0, syscall.ENOSPC
}

// findRunLocked looks in group gr for a free run of at least need blocks
// starting at bit from or later (exactly at from if atGoal), and returns
// the first such run, extended up to want blocks.
func (tx *Tx) findRunLocked(gr *groupRef, from, need, want, limit uint64, atGoal bool) (uint64, uint64, bool, error) {
	fs := tx.fs
	bm, err := tx.blockBitmapLocked(gr)
	if err != nil {
		return 0, 0, false, err
	}
	first := uint64(fs.groupFirstBlock(gr.g))
	n := fs.groupBlocks(gr.g)
	if first+n > limit {
		n = limit - first
	}
	if from >= n {
		return 0, 0, false, nil
	}
	if atGoal {
		if run := zeroRun(bm, from, n, want); run > 0 {
			return from, run, true, nil
		}
		return 0, 0, false, nil
	}
	for i := nextZeroBit(bm, from, n); i < n; {
		run := zeroRun(bm, i, n, want)
		if run >= need {
			return i, run, true, nil
		}
		i = nextZeroBit(bm, i+run, n)
	}
	return 0, 0, false, nil
}

// takeBlocksLocked marks n blocks from bit start of group gr allocated.
func (tx *Tx) takeBlocksLocked(gr *groupRef, start, n uint64, ino Ino) (PBlk, uint64, error) {
	fs := tx.fs
	blk := fs.groupFirstBlock(gr.g) + PBlk(start)
	if zone, err := fs.systemZoneLocked(); err != nil {
		return 0, 0, err
	} else if zone.overlaps(uint64(blk), n) {
		return 0, 0, fs.corruptf("block bitmap", ino, PBlk(gr.d.BlockBitmap()),
			"group %d bitmap offers metadata blocks [%d,+%d)", gr.g, blk, n)
	}
	if !fs.validBlockRange(blk, n) {
		return 0, 0, fs.corruptf("block bitmap", ino, PBlk(gr.d.BlockBitmap()),
			"group %d bitmap offers blocks [%d,+%d) outside the filesystem", gr.g, blk, n)
	}
	bm := gr.bbuf.Data
	for i := start; i < start+n; i++ {
		setBit(bm, i)
	}
	tx.dirtyBlockBitmapLocked(gr)
	tx.addFreeBlocksLocked(gr, -int64(n))
	return blk, n, nil
}

// allocatableBlocks is how many blocks this transaction's caller may still
// allocate: the free count minus the root reserve (s_r_blocks_count) for
// unprivileged callers, minus the filesystem's last reserve unless the
// transaction may use it.
func (tx *Tx) allocatableBlocks() uint64 {
	fs := tx.fs
	free := fs.sb.FreeBlocksCount()
	var reserve uint64
	if !tx.useReserved {
		reserve = fs.resvClusters()
	}
	if !tx.privileged {
		reserve += fs.sb.RBlocksCount()
	}
	if free <= reserve {
		return 0
	}
	return free - reserve
}

// resvClusters mirrors the kernel's ext4_calculate_resv_clusters: on
// extent filesystems 2% of the blocks, at most 4096, are kept back so that
// extent tree splits can still allocate when the filesystem is full.
func (fs *FS) resvClusters() uint64 {
	if !fs.features.extents {
		return 0
	}
	return min(fs.nblocks/50, 4096)
}

// reservedBlocks is what statfs holds back from f_bavail.
func (fs *FS) reservedBlocks() uint64 {
	return fs.sb.RBlocksCount() + fs.resvClusters()
}

// blockGroup returns the group containing block b.
func (fs *FS) blockGroup(b PBlk) Group {
	return Group((uint64(b) - uint64(fs.geo.FirstDataBlock)) / uint64(fs.bpg))
}

// inodeGoal is where an inode with no other hint starts allocating: the
// start of its group (of its flex group's first group with flex_bg, where
// the kernel keeps data near the shared metadata).
func (fs *FS) inodeGoal(ino Ino) PBlk {
	if ino == 0 {
		return PBlk(fs.geo.FirstDataBlock)
	}
	g := Group((uint32(ino) - 1) / fs.ipg)
	if fs.features.flexBG {
		if per := fs.geo.GroupsPerFlex(); per > 1 {
			g = Group(uint64(g) / per * per)
		}
	}
	if uint32(g) >= fs.groups {
		g = 0
	}
	return fs.groupFirstBlock(g)
}

// freeBlocksLocked frees n blocks from start, owned by inode ino. The
// blocks leave the cache at once but stay allocated in the bitmap until
// the end of the commit, so this transaction cannot reuse them. Ranges
// outside the data area are reported as corruption and not freed.
func (tx *Tx) freeBlocksLocked(start PBlk, n uint64, ino Ino) {
	fs := tx.fs
	if n == 0 {
		return
	}
	if !fs.validBlockRange(start, n) {
		_ = fs.corruptf("free blocks", ino, start, "freeing blocks [%d,+%d) outside the filesystem", start, n)
		return
	}
	if zone, err := fs.systemZoneLocked(); err == nil && zone.overlaps(uint64(start), n) {
		_ = fs.corruptf("free blocks", ino, start, "freeing metadata blocks [%d,+%d)", start, n)
		return
	}
	tx.forgetBlocksLocked(start, n)
	tx.freeBlocks = append(tx.freeBlocks, blockRun{start: start, n: n, ino: ino})
}

// prepareFreesLocked loads, before commit writes anything, the bitmaps
// the deferred frees will change, so releasing them cannot fail half-way
// through a commit. Frees in a group whose bitmap is corrupt are dropped
// (the blocks or inodes leak, for e2fsck to reclaim), as the kernel's
// ext4_free_blocks gives up on such a group.
func (tx *Tx) prepareFreesLocked() {
	fs := tx.fs
	ok := func(g Group, inodes bool) bool {
		gr, err := tx.groupLocked(g)
		if err == nil {
			if inodes {
				_, err = tx.inodeBitmapLocked(gr)
			} else {
				_, err = tx.blockBitmapLocked(gr)
			}
		}
		if err != nil {
			fs.log.Warn("ext4: cannot free into a damaged group; leaking", slog.Uint64("group", uint64(g)), slog.Any("err", err))
		}
		return err == nil
	}
	runs := tx.freeBlocks[:0]
	for _, run := range tx.freeBlocks {
		good := true
		for g := fs.blockGroup(run.start); g <= fs.blockGroup(run.start+PBlk(run.n-1)); g++ {
			good = good && ok(g, false)
		}
		if good {
			runs = append(runs, run)
		}
	}
	tx.freeBlocks = runs
	inos := tx.freeInodes[:0]
	for _, fi := range tx.freeInodes {
		if ok(fs.inodeGroup(fi.ino), true) {
			inos = append(inos, fi)
		}
	}
	tx.freeInodes = inos
}

// releaseFreesLocked clears the bits of the blocks and inodes freed in
// this transaction and updates the counters.
func (tx *Tx) releaseFreesLocked() error {
	fs := tx.fs
	for _, run := range tx.freeBlocks {
		start, left := run.start, run.n
		for left > 0 {
			g := fs.blockGroup(start)
			gr, err := tx.groupLocked(g)
			if err != nil {
				return err
			}
			bm, err := tx.blockBitmapLocked(gr)
			if err != nil {
				return err
			}
			bit := uint64(start - fs.groupFirstBlock(g))
			n := min(left, fs.groupBlocks(g)-bit)
			var freed int64
			for i := bit; i < bit+n; i++ {
				if !testBit(bm, i) {
					fs.log.Warn("ext4: freeing a free block", slog.Uint64("block", uint64(fs.groupFirstBlock(g))+i),
						slog.Uint64("ino", uint64(run.ino)))
					continue
				}
				clearBit(bm, i)
				freed++
			}
			tx.dirtyBlockBitmapLocked(gr)
			tx.addFreeBlocksLocked(gr, freed)
			start += PBlk(n)
			left -= n
		}
	}
	tx.freeBlocks = nil
	for _, fi := range tx.freeInodes {
		g := Group((uint32(fi.ino) - 1) / fs.ipg)
		gr, err := tx.groupLocked(g)
		if err != nil {
			return err
		}
		bm, err := tx.inodeBitmapLocked(gr)
		if err != nil {
			return err
		}
		bit := uint64((uint32(fi.ino) - 1) % fs.ipg)
		if !testBit(bm, bit) {
			fs.log.Warn("ext4: freeing a free inode", slog.Uint64("ino", uint64(fi.ino)))
			continue
		}
		clearBit(bm, bit)
		tx.dirtyInodeBitmapLocked(gr)
		dirs := int64(0)
		if fi.dir {
			dirs = -1
		}
		tx.addFreeInodesLocked(gr, 1, dirs)
	}
	tx.freeInodes = nil
	return nil
}

// markBadBlockGroup stops block allocation from group g for the rest of
// the mount.
func (fs *FS) markBadBlockGroup(g Group) {
	if fs.wr.badBlockGroups == nil {
		fs.wr.badBlockGroups = make(map[Group]bool)
	}
	fs.wr.badBlockGroups[g] = true
}

// blockRange is a half-open range of physical blocks.
type blockRange struct{ start, end uint64 }

// systemZone is the sorted, merged set of metadata block ranges.
type systemZone []blockRange

func (z systemZone) overlaps(start, n uint64) bool {
	end := start + n
	i, _ := slices.BinarySearchFunc(z, start, func(r blockRange, b uint64) int {
		if r.end <= b {
			return -1
		}
		return 1
	})
	return i < len(z) && z[i].start < end
}

// systemZoneLocked returns the filesystem's metadata block ranges,
// computed on first use from the group descriptors (whose locations never
// change).
func (fs *FS) systemZoneLocked() (systemZone, error) {
	if fs.wr.zone != nil {
		return fs.wr.zone, nil
	}
	var z []blockRange
	add := func(start, n uint64) {
		if n > 0 {
			z = append(z, blockRange{start, start + n})
		}
	}
	add(0, uint64(fs.geo.FirstDataBlock)+1) // boot block / primary superblock
	itb := fs.itableBlocks()
	for g := range fs.groups {
		add(uint64(fs.groupFirstBlock(Group(g))), fs.superAndGDTBlocks(Group(g)))
		d, err := fs.groupDescLocked(Group(g))
		if err != nil {
			return nil, err
		}
		add(d.BlockBitmap(), 1)
		add(d.InodeBitmap(), 1)
		add(d.InodeTable(), itb)
	}
	slices.SortFunc(z, func(a, b blockRange) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var out systemZone
	for _, r := range z {
		if k := len(out); k > 0 && r.start <= out[k-1].end {
			out[k-1].end = max(out[k-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	fs.wr.zone = out
	return out, nil
}
