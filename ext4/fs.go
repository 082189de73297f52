package ext4

import (
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"strings"
	"sync"
	"syscall"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4/disk"
)

// Options control Open.
type Options struct {
	ReadOnly         bool
	NoRecovery       bool // allow mounting with needs_recovery set (journal not replayed); forces read-only
	IgnoreErrorState bool // allow mounting when s_state has the error bit
	Logger           *slog.Logger
}

// Statfs is the statfs(2) view of the filesystem.
type Statfs struct {
	Blocks, Bfree, Bavail uint64 // in Frsize units
	Files, Ffree          uint64
	Bsize, Frsize         uint32
	Namelen               uint32
}

// Feature masks this library implements. Incompat bits outside
// supportedIncompat refuse the mount; ro_compat bits outside
// supportedRoCompat force read-only (the write path must understand them).
const (
	supportedIncompat = disk.IncompatFiletype | disk.IncompatRecover | disk.IncompatMetaBG |
		disk.IncompatExtents | disk.Incompat64Bit | disk.IncompatFlexBG | disk.IncompatEAInode |
		disk.IncompatCsumSeed | disk.IncompatLargeDir | disk.IncompatInlineData
	supportedRoCompat = disk.RoCompatSparseSuper | disk.RoCompatLargeFile | disk.RoCompatHugeFile |
		disk.RoCompatGdtCsum | disk.RoCompatDirNlink | disk.RoCompatExtraIsize |
		disk.RoCompatMetadataCsum | disk.RoCompatOrphanPresent
)

// maxCacheBytes bounds the clean metadata kept by the buffer cache.
const maxCacheBytes = 32 << 20

// FS is an open ext2/3/4 filesystem.
type FS struct {
	// Immutable after Open.
	dev      blockdev.Device
	cache    *bcache.Cache
	log      *slog.Logger
	ro       bool
	bsize    int
	bshift   uint
	groups   uint32
	ipg      uint32 // inodes per group
	bpg      uint32 // blocks per group
	isize    int    // on-disk inode record size
	firstIno Ino
	nblocks  uint64 // s_blocks_count
	csum     bool   // metadata_csum
	gdtCsum  bool   // group descriptors carry a checksum (metadata_csum or gdt_csum)
	seed     uint32 // metadata checksum seed
	features featureSet

	// geo is the superblock as read at Open. The write path never changes
	// the fields read from it (geometry, features, seeds), so it is used
	// without locking; sb is the live copy whose counters Update changes.
	geo *disk.Superblock

	mu sync.RWMutex // protects sb and stat; held shared by readers, exclusively by Update
	sb *disk.Superblock
	// stat holds the statfs counts computed at Open from the group descriptors
	// (like the kernel's percpu counters); the write path updates it.
	stat Statfs
	// orphans holds the inodes unlinked during this mount while still in
	// use (on the on-disk orphan list, nlink 0): they stay readable until
	// Evict frees them. Changed only at commit, under mu held exclusively.
	orphans map[Ino]struct{}

	icache inodeCache

	wr writeState // write-path state (sbstate.go)
}

// featureSet caches the feature tests used on hot paths.
type featureSet struct {
	filetype, extents, metaBG, flexBG, is64, inlineData, eaInode, largeDir, hugeFile,
	dirIndex, extAttr, unsignedHash bool
}

// Open opens the filesystem on dev.
func Open(dev blockdev.Device, opts Options) (*FS, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	buf := make([]byte, disk.SuperblockSize)
	if n, err := dev.ReadAt(buf, disk.SuperblockOffset); n != len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ext4: read superblock: %w", err)
	}
	sb, err := disk.DecodeSuperblock(buf)
	if err != nil {
		return nil, &CorruptError{Kind: "superblock", Err: err}
	}
	if err := sb.VerifyChecksum(); err != nil {
		return nil, &CorruptError{Kind: "superblock", Err: err}
	}
	if bad := sb.UnsupportedFeatures(^disk.CompatFeature(0), supportedIncompat, ^disk.RoCompatFeature(0)); len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedFeature, strings.Join(bad, ", "))
	}
	if sb.State&disk.StateError != 0 && !opts.IgnoreErrorState {
		return nil, ErrErrorState
	}
	ro := opts.ReadOnly || dev.ReadOnly()
	if sb.HasIncompat(disk.IncompatRecover) {
		if !opts.NoRecovery {
			return nil, ErrNeedsRecovery
		}
		ro = true
		log.Warn("ext4: journal needs recovery; not replayed, mounting read-only")
	}
	if bad := (sb.FeatureRoCompat &^ supportedRoCompat).Names(); len(bad) > 0 && !ro {
		ro = true
		log.Warn("ext4: read-only: unsupported ro_compat features", slog.String("features", strings.Join(bad, ",")))
	}
	if bad := rwBlockers(sb); len(bad) > 0 && !ro {
		ro = true
		log.Warn("ext4: read-only: cannot write filesystems with these features", slog.String("features", strings.Join(bad, ",")))
	}

	fs := &FS{
		dev:      dev,
		log:      log,
		ro:       ro,
		sb:       sb,
		geo:      func() *disk.Superblock { c := *sb; return &c }(),
		bsize:    sb.BlockSize(),
		bshift:   uint(bits.TrailingZeros(uint(sb.BlockSize()))),
		ipg:      sb.InodesPerGroup,
		bpg:      sb.BlocksPerGroup,
		isize:    sb.InodeSize(),
		firstIno: Ino(sb.FirstInode()),
		nblocks:  sb.BlocksCount(),
		csum:     sb.HasMetadataCsum(),
		gdtCsum:  sb.HasMetadataCsum() || sb.HasGdtCsum(),
		seed:     sb.CsumSeed(),
	}
	fs.features = featureSet{
		filetype:     sb.HasIncompat(disk.IncompatFiletype),
		extents:      sb.HasIncompat(disk.IncompatExtents),
		metaBG:       sb.HasIncompat(disk.IncompatMetaBG),
		flexBG:       sb.HasIncompat(disk.IncompatFlexBG),
		is64:         sb.Is64Bit(),
		inlineData:   sb.HasIncompat(disk.IncompatInlineData),
		eaInode:      sb.HasIncompat(disk.IncompatEAInode),
		largeDir:     sb.HasIncompat(disk.IncompatLargeDir),
		hugeFile:     sb.HasRoCompat(disk.RoCompatHugeFile),
		dirIndex:     sb.HasCompat(disk.CompatDirIndex),
		extAttr:      sb.HasCompat(disk.CompatExtAttr),
		unsignedHash: sb.UnsignedHash(),
	}
	if err := fs.checkGeometry(); err != nil {
		return nil, err
	}
	fs.cache, err = bcache.New(dev, fs.bsize, maxCacheBytes/fs.bsize)
	if err != nil {
		return nil, err
	}
	fs.icache.init(4096)
	fs.orphans = make(map[Ino]struct{})

	fs.computeStatfsLocked()
	root, err := fs.inodeLocked(RootIno)
	if err != nil {
		return nil, fmt.Errorf("ext4: root inode: %w", err)
	}
	if !root.IsDir() {
		return nil, fs.corruptf("root inode", RootIno, 0, "not a directory (mode %#o)", root.Mode)
	}
	if !ro {
		if err := fs.mountRW(); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// checkGeometry validates the superblock fields Open relies on beyond what
// disk.Superblock.Validate checks, with overflow-safe arithmetic.
func (fs *FS) checkGeometry() error {
	sb := fs.geo
	bad := func(format string, args ...any) error {
		return &CorruptError{Kind: "superblock geometry", Err: fmt.Errorf(format, args...)}
	}
	devBlocks := uint64(fs.dev.Size()) >> fs.bshift
	if fs.nblocks > devBlocks {
		return bad("block count %d exceeds device size (%d blocks)", fs.nblocks, devBlocks)
	}
	groups := sb.GroupCount()
	if groups == 0 || groups > 1<<32-1 {
		return bad("group count %d invalid", groups)
	}
	fs.groups = uint32(groups)
	if !fs.features.is64 && fs.nblocks > 1<<32-1 {
		return bad("%d blocks without 64bit", fs.nblocks)
	}
	// The inode table of a group must fit in a group's worth of blocks.
	itBlocks := (uint64(fs.ipg)*uint64(fs.isize) + uint64(fs.bsize) - 1) >> fs.bshift
	if itBlocks > uint64(fs.bpg) {
		return bad("inode table of %d blocks exceeds %d blocks per group", itBlocks, fs.bpg)
	}
	dpb := uint64(sb.DescPerBlock())
	descBlocks := (groups + dpb - 1) / dpb
	if fs.features.metaBG && uint64(sb.FirstMetaBg) > descBlocks {
		return bad("first_meta_bg %d beyond %d descriptor blocks", sb.FirstMetaBg, descBlocks)
	}
	if !fs.features.metaBG && descBlocks >= uint64(fs.bpg) {
		return bad("%d descriptor blocks do not fit in group 0", descBlocks)
	}
	if uint32(fs.firstIno) > sb.InodesCount || fs.firstIno <= RootIno {
		return bad("first inode %d invalid", fs.firstIno)
	}
	if sb.RevLevel > 0 && fs.isize > disk.GoodOldInodeSize && sb.HasRoCompat(disk.RoCompatExtraIsize) {
		if int(sb.MinExtraIsize) > fs.isize-disk.GoodOldInodeSize {
			return bad("min_extra_isize %d too large for inode size %d", sb.MinExtraIsize, fs.isize)
		}
	}
	return nil
}

// Close releases the filesystem. On a read-write mount it is the clean
// unmount (see sbstate.go): the superblock is marked clean again and the
// device flushed. It closes nothing else: the device belongs to the
// caller.
func (fs *FS) Close() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return nil
	}
	return fs.unmountLocked()
}

// BlockSize returns the filesystem block size in bytes.
func (fs *FS) BlockSize() int { return fs.bsize }

// ReadOnly reports whether the filesystem was opened (or forced) read-only.
func (fs *FS) ReadOnly() bool { return fs.ro }

// Superblock returns a copy of the superblock in use.
func (fs *FS) Superblock() disk.Superblock {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	return *fs.sb
}

// Statfs returns filesystem usage like statfs(2) on the kernel's ext4.
func (fs *FS) Statfs() Statfs {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	return fs.stat
}

// computeStatfs derives the statfs counts the way the kernel does: free
// counts summed from the group descriptors, and f_blocks net of the
// metadata overhead (s_overhead_clusters if set, else computed). A bad
// descriptor is skipped: its group then counts as fully used.
func (fs *FS) computeStatfsLocked() {
	sb := fs.geo
	var freeBlocks, freeInodes, overhead uint64
	for g := range fs.groups {
		d, err := fs.groupDescLocked(Group(g))
		if err != nil {
			continue // logged by groupDesc
		}
		freeBlocks += uint64(d.FreeBlocksCount())
		freeInodes += uint64(d.FreeInodesCount())
		if sb.OverheadClusters == 0 {
			overhead += fs.groupOverhead(Group(g))
		}
	}
	if sb.OverheadClusters != 0 {
		overhead = uint64(sb.OverheadClusters)
	} else if sb.HasCompat(disk.CompatHasJournal) && sb.JournalInum != 0 {
		if j, err := fs.inodeLocked(Ino(sb.JournalInum)); err == nil {
			overhead += j.Size >> fs.bshift
		}
	}
	// Descriptor free counts and s_overhead_clusters are in clusters
	// (bigalloc); statfs reports blocks, like the kernel's EXT4_C2B.
	ratio := uint64(sb.ClusterSize() / fs.bsize)
	freeBlocks *= ratio
	if sb.OverheadClusters != 0 {
		overhead *= ratio
	}
	blocks := fs.nblocks - min(overhead, fs.nblocks)
	freeBlocks = min(freeBlocks, blocks)
	// The kernel also holds back s_resv_clusters (2% of the filesystem, at
	// most 4096 clusters, on extent filesystems) from unprivileged users.
	rsv := sb.RBlocksCount()
	if fs.features.extents {
		clusterShift := uint(bits.TrailingZeros(uint(sb.ClusterSize()))) - fs.bshift
		rsv += min((fs.nblocks>>clusterShift)/50, 4096) << clusterShift
	}
	avail := uint64(0)
	if freeBlocks > rsv {
		avail = freeBlocks - rsv
	}
	fs.stat = Statfs{
		Blocks: blocks, Bfree: freeBlocks, Bavail: avail,
		Files: uint64(sb.InodesCount), Ffree: min(freeInodes, uint64(sb.InodesCount)),
		Bsize: uint32(fs.bsize), Frsize: uint32(fs.bsize), Namelen: 255,
	}
}

// groupOverhead counts the metadata blocks the kernel's
// ext4_calculate_overhead attributes to group g: superblock and descriptor
// copies, plus the bitmaps and inode tables of every group (counted once,
// at their owning descriptor, which gives the same total).
func (fs *FS) groupOverhead(g Group) uint64 {
	n := fs.superAndGDTBlocks(g)
	n += 2 // block and inode bitmap
	n += (uint64(fs.ipg)*uint64(fs.isize) + uint64(fs.bsize) - 1) >> fs.bshift
	// The first_data_block (block 0 with 1 KiB blocks) precedes group 0.
	if g == 0 {
		n += uint64(fs.geo.FirstDataBlock)
	}
	return n
}

// superAndGDTBlocks is the number of blocks group g spends on a superblock
// copy and group descriptor (incl. reserved GDT) copies.
func (fs *FS) superAndGDTBlocks(g Group) uint64 {
	sb := fs.geo
	hasSuper := fs.bgHasSuper(g)
	dpb := uint64(sb.DescPerBlock())
	descBlocks := (uint64(fs.groups) + dpb - 1) / dpb
	var n uint64
	if hasSuper {
		n = 1
	}
	if !fs.features.metaBG || uint64(g)/dpb < uint64(sb.FirstMetaBg) {
		if hasSuper {
			firstMeta := descBlocks
			if fs.features.metaBG {
				firstMeta = uint64(sb.FirstMetaBg)
			}
			n += firstMeta + uint64(sb.ReservedGdtBlocks)
		}
		return n
	}
	// meta_bg: a meta group's descriptor block is replicated in its first,
	// second and last group.
	idx := uint64(g) % dpb
	if idx == 0 || idx == 1 || idx == dpb-1 {
		n++
	}
	return n
}

// bgHasSuper mirrors the kernel's ext4_bg_has_super: which groups hold a
// superblock backup under sparse_super / sparse_super2.
func (fs *FS) bgHasSuper(g Group) bool {
	sb := fs.geo
	if g == 0 {
		return true
	}
	if sb.HasCompat(disk.CompatSparseSuper2) {
		return uint32(g) == sb.BackupBgs[0] || uint32(g) == sb.BackupBgs[1]
	}
	if g <= 1 || !sb.HasRoCompat(disk.RoCompatSparseSuper) {
		return true
	}
	if g&1 == 0 {
		return false
	}
	return isPowerOf(uint32(g), 3) || isPowerOf(uint32(g), 5) || isPowerOf(uint32(g), 7)
}

func isPowerOf(n, base uint32) bool {
	p := uint64(1)
	for p < uint64(n) {
		p *= uint64(base)
	}
	return p == uint64(n)
}

// errReadOnly is returned by Update on a read-only filesystem.
var errReadOnly = syscall.EROFS

// readBlock returns the cached metadata block blk with a reference held,
// after checking that blk lies inside the filesystem. The caller must Put it.
func (fs *FS) readBlockLocked(blk PBlk, kind string, ino Ino) (*bcache.Buf, error) {
	if !fs.validBlockRange(blk, 1) {
		return nil, fs.corruptf(kind, ino, blk, "block %d outside filesystem (%d blocks)", blk, fs.nblocks)
	}
	b, err := fs.cache.Get(uint64(blk))
	if err != nil {
		return nil, fmt.Errorf("ext4: reading %s block %d (inode %d): %w", kind, blk, ino, err)
	}
	return b, nil
}

// validBlockRange reports whether blocks [start, start+n) lie after the
// superblock's first data block and within the filesystem, like the
// kernel's ext4_sb_block_valid (minus its system-zone tree).
func (fs *FS) validBlockRange(start PBlk, n uint64) bool {
	if uint64(start) <= uint64(fs.geo.FirstDataBlock) {
		return false
	}
	end, carry := bits.Add64(uint64(start), n, 0)
	return carry == 0 && end <= fs.nblocks
}
