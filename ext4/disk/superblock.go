package disk

import (
	"bytes"

	"github.com/e4box/e4box/internal/crc"
)

// Superblock geometry constants.
const (
	SuperblockOffset = 1024   // byte offset of the primary superblock on the device
	SuperblockSize   = 1024   // bytes
	SuperMagic       = 0xEF53 // s_magic
	sbChecksumOff    = 0x3FC  // s_checksum

	GoodOldInodeSize = 128 // EXT4_GOOD_OLD_INODE_SIZE, rev 0 inodes
	GoodOldFirstIno  = 11  // EXT4_GOOD_OLD_FIRST_INO

	MinBlockLogSize = 10 // 1 KiB
	MaxBlockLogSize = 16 // 64 KiB

	MinDescSize      = 32   // EXT4_MIN_DESC_SIZE
	MinDescSize64Bit = 64   // EXT4_MIN_DESC_SIZE_64BIT
	MaxDescSize      = 1024 // EXT4_MAX_DESC_SIZE (EXT4_MIN_BLOCK_SIZE)

	ChecksumTypeCrc32c = 1 // s_checksum_type for metadata_csum
)

// s_state bits.
const (
	StateValid    = 0x1 // cleanly unmounted
	StateError    = 0x2 // errors detected
	StateOrphanFS = 0x4 // orphans being recovered
)

// s_flags bits.
const (
	FlagSignedHash   = 0x1 // htree hashes use signed char
	FlagUnsignedHash = 0x2 // htree hashes use unsigned char
	FlagTestFS       = 0x4
)

// Superblock is struct ext4_super_block, 1024 bytes at byte 1024 of the
// device (and in backup groups). Kernel doc: "Super Block".
//
// Reserved areas are exported fields so that Encode(Decode(b)) reproduces b
// exactly, which a writer needs when it rewrites a superblock it does not
// fully understand.
type Superblock struct {
	InodesCount       uint32          // 0x00 s_inodes_count
	BlocksCountLo     uint32          // 0x04 s_blocks_count_lo
	RBlocksCountLo    uint32          // 0x08 s_r_blocks_count_lo
	FreeBlocksCountLo uint32          // 0x0C s_free_blocks_count_lo
	FreeInodesCount   uint32          // 0x10 s_free_inodes_count
	FirstDataBlock    uint32          // 0x14 s_first_data_block
	LogBlockSize      uint32          // 0x18 s_log_block_size (block size = 2^(10+n))
	LogClusterSize    uint32          // 0x1C s_log_cluster_size
	BlocksPerGroup    uint32          // 0x20 s_blocks_per_group
	ClustersPerGroup  uint32          // 0x24 s_clusters_per_group
	InodesPerGroup    uint32          // 0x28 s_inodes_per_group
	Mtime             uint32          // 0x2C s_mtime
	Wtime             uint32          // 0x30 s_wtime
	MntCount          uint16          // 0x34 s_mnt_count
	MaxMntCount       uint16          // 0x36 s_max_mnt_count
	Magic             uint16          // 0x38 s_magic
	State             uint16          // 0x3A s_state
	Errors            uint16          // 0x3C s_errors
	MinorRevLevel     uint16          // 0x3E s_minor_rev_level
	Lastcheck         uint32          // 0x40 s_lastcheck
	Checkinterval     uint32          // 0x44 s_checkinterval
	CreatorOS         uint32          // 0x48 s_creator_os
	RevLevel          uint32          // 0x4C s_rev_level
	DefResuid         uint16          // 0x50 s_def_resuid
	DefResgid         uint16          // 0x52 s_def_resgid
	FirstIno          uint32          // 0x54 s_first_ino
	InodeSizeRaw      uint16          // 0x58 s_inode_size
	BlockGroupNr      uint16          // 0x5A s_block_group_nr
	FeatureCompat     CompatFeature   // 0x5C s_feature_compat
	FeatureIncompat   IncompatFeature // 0x60 s_feature_incompat
	FeatureRoCompat   RoCompatFeature // 0x64 s_feature_ro_compat
	UUID              [16]byte        // 0x68 s_uuid
	VolumeName        [16]byte        // 0x78 s_volume_name
	LastMounted       [64]byte        // 0x88 s_last_mounted
	AlgorithmUsageBmp uint32          // 0xC8 s_algorithm_usage_bitmap
	PreallocBlocks    uint8           // 0xCC s_prealloc_blocks
	PreallocDirBlocks uint8           // 0xCD s_prealloc_dir_blocks
	ReservedGdtBlocks uint16          // 0xCE s_reserved_gdt_blocks
	JournalUUID       [16]byte        // 0xD0 s_journal_uuid
	JournalInum       uint32          // 0xE0 s_journal_inum
	JournalDev        uint32          // 0xE4 s_journal_dev
	LastOrphan        uint32          // 0xE8 s_last_orphan
	HashSeed          [4]uint32       // 0xEC s_hash_seed
	DefHashVersion    uint8           // 0xFC s_def_hash_version
	JnlBackupType     uint8           // 0xFD s_jnl_backup_type
	DescSizeRaw       uint16          // 0xFE s_desc_size
	DefaultMountOpts  uint32          // 0x100 s_default_mount_opts
	FirstMetaBg       uint32          // 0x104 s_first_meta_bg
	MkfsTime          uint32          // 0x108 s_mkfs_time
	JnlBlocks         [17]uint32      // 0x10C s_jnl_blocks
	BlocksCountHi     uint32          // 0x150 s_blocks_count_hi
	RBlocksCountHi    uint32          // 0x154 s_r_blocks_count_hi
	FreeBlocksCountHi uint32          // 0x158 s_free_blocks_count_hi
	MinExtraIsize     uint16          // 0x15C s_min_extra_isize
	WantExtraIsize    uint16          // 0x15E s_want_extra_isize
	Flags             uint32          // 0x160 s_flags
	RaidStride        uint16          // 0x164 s_raid_stride
	MmpInterval       uint16          // 0x166 s_mmp_interval
	MmpBlock          uint64          // 0x168 s_mmp_block
	RaidStripeWidth   uint32          // 0x170 s_raid_stripe_width
	LogGroupsPerFlex  uint8           // 0x174 s_log_groups_per_flex
	ChecksumType      uint8           // 0x175 s_checksum_type
	EncryptionLevel   uint8           // 0x176 s_encryption_level
	ReservedPad       uint8           // 0x177 s_reserved_pad
	KbytesWritten     uint64          // 0x178 s_kbytes_written
	SnapshotInum      uint32          // 0x180 s_snapshot_inum
	SnapshotID        uint32          // 0x184 s_snapshot_id
	SnapshotRBlocks   uint64          // 0x188 s_snapshot_r_blocks_count
	SnapshotList      uint32          // 0x190 s_snapshot_list
	ErrorCount        uint32          // 0x194 s_error_count
	FirstErrorTime    uint32          // 0x198 s_first_error_time
	FirstErrorIno     uint32          // 0x19C s_first_error_ino
	FirstErrorBlock   uint64          // 0x1A0 s_first_error_block
	FirstErrorFunc    [32]byte        // 0x1A8 s_first_error_func
	FirstErrorLine    uint32          // 0x1C8 s_first_error_line
	LastErrorTime     uint32          // 0x1CC s_last_error_time
	LastErrorIno      uint32          // 0x1D0 s_last_error_ino
	LastErrorLine     uint32          // 0x1D4 s_last_error_line
	LastErrorBlock    uint64          // 0x1D8 s_last_error_block
	LastErrorFunc     [32]byte        // 0x1E0 s_last_error_func
	MountOpts         [64]byte        // 0x200 s_mount_opts
	UsrQuotaInum      uint32          // 0x240 s_usr_quota_inum
	GrpQuotaInum      uint32          // 0x244 s_grp_quota_inum
	OverheadClusters  uint32          // 0x248 s_overhead_clusters
	BackupBgs         [2]uint32       // 0x24C s_backup_bgs
	EncryptAlgos      [4]uint8        // 0x254 s_encrypt_algos
	EncryptPwSalt     [16]uint8       // 0x258 s_encrypt_pw_salt
	LpfIno            uint32          // 0x268 s_lpf_ino
	PrjQuotaInum      uint32          // 0x26C s_prj_quota_inum
	ChecksumSeed      uint32          // 0x270 s_checksum_seed
	WtimeHi           uint8           // 0x274 s_wtime_hi
	MtimeHi           uint8           // 0x275 s_mtime_hi
	MkfsTimeHi        uint8           // 0x276 s_mkfs_time_hi
	LastcheckHi       uint8           // 0x277 s_lastcheck_hi
	FirstErrorTimeHi  uint8           // 0x278 s_first_error_time_hi
	LastErrorTimeHi   uint8           // 0x279 s_last_error_time_hi
	FirstErrorErrcode uint8           // 0x27A s_first_error_errcode
	LastErrorErrcode  uint8           // 0x27B s_last_error_errcode
	Encoding          uint16          // 0x27C s_encoding
	EncodingFlags     uint16          // 0x27E s_encoding_flags
	OrphanFileInum    uint32          // 0x280 s_orphan_file_inum
	Reserved          [94]uint32      // 0x284 s_reserved
	Checksum          uint32          // 0x3FC s_checksum
}

const sbStruct = "ext4_super_block"

// DecodeSuperblock decodes the 1024-byte superblock at the start of b. It
// checks only what later geometry arithmetic relies on (see Validate); the
// checksum is checked separately by VerifyChecksum.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, corrupt(sbStruct, 0, "short buffer: %d bytes", len(b))
	}
	sb := new(Superblock)
	sb.decode(b)
	if err := sb.Validate(); err != nil {
		return nil, err
	}
	return sb, nil
}

// Encode writes the superblock into b[:1024] as is (it does not update the
// checksum; call SetChecksum first).
func (sb *Superblock) Encode(b []byte) { sb.encode(b) }

// Validate checks the fields the rest of the package does arithmetic with:
// magic, block and cluster sizes, inode size, group sizes and descriptor size,
// and that the group count is consistent with the inode count.
func (sb *Superblock) Validate() error {
	if sb.Magic != SuperMagic {
		return corrupt(sbStruct, 0x38, "bad magic %#04x", sb.Magic)
	}
	if sb.LogBlockSize > MaxBlockLogSize-MinBlockLogSize {
		return corrupt(sbStruct, 0x18, "block size log %d too large", sb.LogBlockSize)
	}
	bs := sb.BlockSize()
	if sb.HasRoCompat(RoCompatBigalloc) {
		if sb.LogClusterSize < sb.LogBlockSize || sb.LogClusterSize > 30 {
			return corrupt(sbStruct, 0x1C, "cluster size log %d invalid", sb.LogClusterSize)
		}
	}
	if sb.RevLevel > 0 {
		is := int(sb.InodeSizeRaw)
		if is < GoodOldInodeSize || is > bs || is&(is-1) != 0 {
			return corrupt(sbStruct, 0x58, "inode size %d invalid", is)
		}
		if sb.FirstIno < GoodOldFirstIno {
			return corrupt(sbStruct, 0x54, "first inode %d too small", sb.FirstIno)
		}
	}
	if sb.BlocksPerGroup == 0 || uint64(sb.BlocksPerGroup) > 8*uint64(bs) {
		return corrupt(sbStruct, 0x20, "blocks per group %d invalid", sb.BlocksPerGroup)
	}
	if sb.HasRoCompat(RoCompatBigalloc) &&
		(sb.ClustersPerGroup == 0 || uint64(sb.ClustersPerGroup) > 8*uint64(bs)) {
		return corrupt(sbStruct, 0x24, "clusters per group %d invalid", sb.ClustersPerGroup)
	}
	if sb.InodesPerGroup == 0 || uint64(sb.InodesPerGroup) > 8*uint64(bs) {
		return corrupt(sbStruct, 0x28, "inodes per group %d invalid", sb.InodesPerGroup)
	}
	if sb.HasIncompat(Incompat64Bit) {
		ds := int(sb.DescSizeRaw)
		if ds < MinDescSize64Bit || ds > MaxDescSize || ds&(ds-1) != 0 {
			return corrupt(sbStruct, 0xFE, "descriptor size %d invalid", ds)
		}
	}
	if uint64(sb.FirstDataBlock) >= sb.BlocksCount() {
		return corrupt(sbStruct, 0x14, "first data block %d beyond %d blocks", sb.FirstDataBlock, sb.BlocksCount())
	}
	groups := sb.GroupCount()
	if groups == 0 || groups > 1<<32-1 || groups*uint64(sb.InodesPerGroup) != uint64(sb.InodesCount) {
		return corrupt(sbStruct, 0x00, "inode count %d != %d groups * %d inodes per group",
			sb.InodesCount, groups, sb.InodesPerGroup)
	}
	if sb.HasRoCompat(RoCompatMetadataCsum) && sb.ChecksumType != ChecksumTypeCrc32c {
		return corrupt(sbStruct, 0x175, "unknown checksum type %d", sb.ChecksumType)
	}
	return nil
}

// BlockSize is 2^(10+s_log_block_size) bytes. Only meaningful after Validate.
func (sb *Superblock) BlockSize() int {
	return 1024 << (sb.LogBlockSize & 0x1f)
}

// ClusterSize is the allocation unit: the block size unless bigalloc.
func (sb *Superblock) ClusterSize() int {
	if !sb.HasRoCompat(RoCompatBigalloc) {
		return sb.BlockSize()
	}
	return 1024 << (sb.LogClusterSize & 0x1f)
}

// InodeSize is the on-disk inode record size: 128 for revision 0.
func (sb *Superblock) InodeSize() int {
	if sb.RevLevel == 0 {
		return GoodOldInodeSize
	}
	return int(sb.InodeSizeRaw)
}

// FirstInode is the first non-reserved inode number.
func (sb *Superblock) FirstInode() uint32 {
	if sb.RevLevel == 0 {
		return GoodOldFirstIno
	}
	return sb.FirstIno
}

// DescSize is the group descriptor size: s_desc_size with 64bit, else 32.
func (sb *Superblock) DescSize() int {
	if sb.HasIncompat(Incompat64Bit) {
		return int(sb.DescSizeRaw)
	}
	return MinDescSize
}

// Is64Bit reports the 64bit feature (48-bit block numbers in descriptors).
func (sb *Superblock) Is64Bit() bool { return sb.HasIncompat(Incompat64Bit) }

// BlocksCount is s_blocks_count (hi half only with 64bit).
func (sb *Superblock) BlocksCount() uint64 {
	return sb.join(sb.BlocksCountLo, sb.BlocksCountHi)
}

// RBlocksCount is s_r_blocks_count, the blocks reserved for root.
func (sb *Superblock) RBlocksCount() uint64 {
	return sb.join(sb.RBlocksCountLo, sb.RBlocksCountHi)
}

// FreeBlocksCount is s_free_blocks_count.
func (sb *Superblock) FreeBlocksCount() uint64 {
	return sb.join(sb.FreeBlocksCountLo, sb.FreeBlocksCountHi)
}

// SetBlocksCount, SetRBlocksCount and SetFreeBlocksCount split v into halves.
func (sb *Superblock) SetBlocksCount(v uint64) { sb.BlocksCountLo, sb.BlocksCountHi = sb.split(v) }

// SetRBlocksCount sets s_r_blocks_count.
func (sb *Superblock) SetRBlocksCount(v uint64) { sb.RBlocksCountLo, sb.RBlocksCountHi = sb.split(v) }

// SetFreeBlocksCount sets s_free_blocks_count.
func (sb *Superblock) SetFreeBlocksCount(v uint64) {
	sb.FreeBlocksCountLo, sb.FreeBlocksCountHi = sb.split(v)
}

// The kernel ignores the hi halves without 64bit (they may hold garbage from
// old tools), so the accessors do too.
func (sb *Superblock) join(lo, hi uint32) uint64 {
	if sb.Is64Bit() {
		return uint64(hi)<<32 | uint64(lo)
	}
	return uint64(lo)
}

func (sb *Superblock) split(v uint64) (lo, hi uint32) {
	if sb.Is64Bit() {
		return uint32(v), uint32(v >> 32)
	}
	return uint32(v), 0
}

// GroupCount is the number of block groups:
// ceil((blocks_count - first_data_block) / blocks_per_group). It returns 0
// when the fields are inconsistent (Validate rejects such superblocks).
func (sb *Superblock) GroupCount() uint64 {
	n, fdb, bpg := sb.BlocksCount(), uint64(sb.FirstDataBlock), uint64(sb.BlocksPerGroup)
	if bpg == 0 || fdb >= n {
		return 0
	}
	return (n-fdb-1)/bpg + 1
}

// GroupsPerFlex is 2^s_log_groups_per_flex with flex_bg, else 1.
func (sb *Superblock) GroupsPerFlex() uint64 {
	if !sb.HasIncompat(IncompatFlexBG) || sb.LogGroupsPerFlex > 31 {
		return 1
	}
	return 1 << sb.LogGroupsPerFlex
}

// DescPerBlock is the number of group descriptors in one block.
func (sb *Superblock) DescPerBlock() int { return sb.BlockSize() / sb.DescSize() }

// HasMetadataCsum reports metadata_csum: crc32c checksums on all metadata.
func (sb *Superblock) HasMetadataCsum() bool { return sb.HasRoCompat(RoCompatMetadataCsum) }

// HasGdtCsum reports gdt_csum (uninit_bg) without metadata_csum: crc16
// group descriptor checksums. metadata_csum supersedes it.
func (sb *Superblock) HasGdtCsum() bool {
	return sb.HasRoCompat(RoCompatGdtCsum) && !sb.HasMetadataCsum()
}

// ComputeChecksum is crc32c(~0, sb[0:0x3FC]) of the encoded superblock.
func (sb *Superblock) ComputeChecksum() uint32 {
	var b [SuperblockSize]byte
	sb.Encode(b[:])
	return crc.Crc32c(^uint32(0), b[:sbChecksumOff])
}

// VerifyChecksum checks s_checksum when metadata_csum is enabled (and
// succeeds trivially otherwise).
func (sb *Superblock) VerifyChecksum() error {
	if !sb.HasMetadataCsum() {
		return nil
	}
	if c := sb.ComputeChecksum(); c != sb.Checksum {
		return badChecksum(sbStruct, sbChecksumOff, sb.Checksum, c)
	}
	return nil
}

// SetChecksum updates s_checksum if metadata_csum is enabled.
func (sb *Superblock) SetChecksum() {
	if sb.HasMetadataCsum() {
		sb.Checksum = sb.ComputeChecksum()
	}
}

// CsumSeed is the seed of every metadata checksum except the superblock's:
// s_checksum_seed with metadata_csum_seed (so the UUID can change without
// rewriting metadata), else crc32c(~0, s_uuid).
func (sb *Superblock) CsumSeed() uint32 {
	if sb.HasIncompat(IncompatCsumSeed) {
		return sb.ChecksumSeed
	}
	return crc.Crc32c(^uint32(0), sb.UUID[:])
}

// UUIDString formats s_uuid the usual way.
func (sb *Superblock) UUIDString() string {
	const hex = "0123456789abcdef"
	var out []byte
	for i, c := range sb.UUID {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// VolumeLabel is s_volume_name up to its first NUL.
func (sb *Superblock) VolumeLabel() string {
	n, _, _ := bytes.Cut(sb.VolumeName[:], []byte{0})
	return string(n)
}

// Time joins a 32-bit superblock timestamp with its 8-bit _hi extension
// (s_mtime/s_mtime_hi and friends) into seconds since the epoch.
func Time(lo uint32, hi uint8) int64 { return int64(hi)<<32 | int64(lo) }

// HashSeedIsZero reports whether s_hash_seed is unset, in which case htree
// hashing uses the default seed.
func (sb *Superblock) HashSeedIsZero() bool { return sb.HashSeed == [4]uint32{} }

// UnsignedHash reports whether htree name hashing treats bytes as unsigned:
// the superblock's s_flags say which, and the hash version stored in a
// directory's dx_root is then shifted by 3 (DxHashLegacyUnsigned etc.).
func (sb *Superblock) UnsignedHash() bool { return sb.Flags&FlagUnsignedHash != 0 }
