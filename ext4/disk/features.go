package disk

import (
	"fmt"
	"math/bits"
	"strings"
)

// CompatFeature is s_feature_compat: features an implementation may ignore.
type CompatFeature uint32

// IncompatFeature is s_feature_incompat: an implementation that does not
// know one of these must refuse to mount.
type IncompatFeature uint32

// RoCompatFeature is s_feature_ro_compat: an implementation that does not
// know one of these may only mount read-only.
type RoCompatFeature uint32

// Compat features (EXT4_FEATURE_COMPAT_*).
const (
	CompatDirPrealloc   CompatFeature = 0x1
	CompatImagicInodes  CompatFeature = 0x2
	CompatHasJournal    CompatFeature = 0x4
	CompatExtAttr       CompatFeature = 0x8
	CompatResizeInode   CompatFeature = 0x10
	CompatDirIndex      CompatFeature = 0x20
	CompatLazyBG        CompatFeature = 0x40
	CompatExcludeInode  CompatFeature = 0x80
	CompatExcludeBitmap CompatFeature = 0x100
	CompatSparseSuper2  CompatFeature = 0x200
	CompatFastCommit    CompatFeature = 0x400
	CompatStableInodes  CompatFeature = 0x800
	CompatOrphanFile    CompatFeature = 0x1000
)

// Incompat features (EXT4_FEATURE_INCOMPAT_*).
const (
	IncompatCompression IncompatFeature = 0x1
	IncompatFiletype    IncompatFeature = 0x2
	IncompatRecover     IncompatFeature = 0x4 // needs_recovery: journal not replayed
	IncompatJournalDev  IncompatFeature = 0x8
	IncompatMetaBG      IncompatFeature = 0x10
	IncompatExtents     IncompatFeature = 0x40
	Incompat64Bit       IncompatFeature = 0x80
	IncompatMMP         IncompatFeature = 0x100
	IncompatFlexBG      IncompatFeature = 0x200
	IncompatEAInode     IncompatFeature = 0x400
	IncompatDirData     IncompatFeature = 0x1000
	IncompatCsumSeed    IncompatFeature = 0x2000
	IncompatLargeDir    IncompatFeature = 0x4000
	IncompatInlineData  IncompatFeature = 0x8000
	IncompatEncrypt     IncompatFeature = 0x10000
	IncompatCasefold    IncompatFeature = 0x20000
)

// RoCompat features (EXT4_FEATURE_RO_COMPAT_*).
const (
	RoCompatSparseSuper   RoCompatFeature = 0x1
	RoCompatLargeFile     RoCompatFeature = 0x2
	RoCompatBtreeDir      RoCompatFeature = 0x4
	RoCompatHugeFile      RoCompatFeature = 0x8
	RoCompatGdtCsum       RoCompatFeature = 0x10
	RoCompatDirNlink      RoCompatFeature = 0x20
	RoCompatExtraIsize    RoCompatFeature = 0x40
	RoCompatHasSnapshot   RoCompatFeature = 0x80
	RoCompatQuota         RoCompatFeature = 0x100
	RoCompatBigalloc      RoCompatFeature = 0x200
	RoCompatMetadataCsum  RoCompatFeature = 0x400
	RoCompatReplica       RoCompatFeature = 0x800
	RoCompatReadonly      RoCompatFeature = 0x1000
	RoCompatProject       RoCompatFeature = 0x2000
	RoCompatSharedBlocks  RoCompatFeature = 0x4000
	RoCompatVerity        RoCompatFeature = 0x8000
	RoCompatOrphanPresent RoCompatFeature = 0x10000
)

// Names follow e2fsprogs (lib/e2p/feature.c), so messages match what
// dumpe2fs and mkfs.ext4 -O print.
var compatNames = map[CompatFeature]string{
	CompatDirPrealloc: "dir_prealloc", CompatImagicInodes: "imagic_inodes",
	CompatHasJournal: "has_journal", CompatExtAttr: "ext_attr",
	CompatResizeInode: "resize_inode", CompatDirIndex: "dir_index",
	CompatLazyBG: "lazy_bg", CompatExcludeInode: "snapshot_exclude",
	CompatExcludeBitmap: "exclude_bitmap", CompatSparseSuper2: "sparse_super2",
	CompatFastCommit: "fast_commit", CompatStableInodes: "stable_inodes",
	CompatOrphanFile: "orphan_file",
}

var incompatNames = map[IncompatFeature]string{
	IncompatCompression: "compression", IncompatFiletype: "filetype",
	IncompatRecover: "needs_recovery", IncompatJournalDev: "journal_dev",
	IncompatMetaBG: "meta_bg", IncompatExtents: "extent", Incompat64Bit: "64bit",
	IncompatMMP: "mmp", IncompatFlexBG: "flex_bg", IncompatEAInode: "ea_inode",
	IncompatDirData: "dirdata", IncompatCsumSeed: "metadata_csum_seed",
	IncompatLargeDir: "large_dir", IncompatInlineData: "inline_data",
	IncompatEncrypt: "encrypt", IncompatCasefold: "casefold",
}

var roCompatNames = map[RoCompatFeature]string{
	RoCompatSparseSuper: "sparse_super", RoCompatLargeFile: "large_file",
	RoCompatBtreeDir: "btree_dir", RoCompatHugeFile: "huge_file",
	RoCompatGdtCsum: "uninit_bg", RoCompatDirNlink: "dir_nlink",
	RoCompatExtraIsize: "extra_isize", RoCompatHasSnapshot: "snapshot",
	RoCompatQuota: "quota", RoCompatBigalloc: "bigalloc",
	RoCompatMetadataCsum: "metadata_csum", RoCompatReplica: "replica",
	RoCompatReadonly: "read-only", RoCompatProject: "project",
	RoCompatSharedBlocks: "shared_blocks", RoCompatVerity: "verity",
	RoCompatOrphanPresent: "orphan_present",
}

// Known* are the masks of every feature bit this package can name. A bit
// outside them is one no ext4 implementation we know of defines.
const (
	KnownCompat   CompatFeature   = 0x1fff
	KnownIncompat IncompatFeature = 0x3f7df
	KnownRoCompat RoCompatFeature = 0x1ffff
)

// featureNames lists the names of the bits set in v, in bit order; bits
// without a name render as prefix+"_FEATURE_<bit>" like e2fsprogs does.
func featureNames[F ~uint32](v F, names map[F]string, prefix string) []string {
	var out []string
	for x := uint32(v); x != 0; x &= x - 1 {
		bit := F(1) << bits.TrailingZeros32(x)
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%s%d", prefix, bits.TrailingZeros32(x)))
		}
	}
	return out
}

// Names returns the feature names of the set bits.
func (f CompatFeature) Names() []string { return featureNames(f, compatNames, "C") }

// Names returns the feature names of the set bits.
func (f IncompatFeature) Names() []string { return featureNames(f, incompatNames, "I") }

// Names returns the feature names of the set bits.
func (f RoCompatFeature) Names() []string { return featureNames(f, roCompatNames, "R") }

func (f CompatFeature) String() string   { return strings.Join(f.Names(), " ") }
func (f IncompatFeature) String() string { return strings.Join(f.Names(), " ") }
func (f RoCompatFeature) String() string { return strings.Join(f.Names(), " ") }

// UnknownFeatures names the feature bits set in sb that are outside the
// Known masks, across all three families; nil when there are none.
func (sb *Superblock) UnknownFeatures() []string {
	return sb.UnsupportedFeatures(KnownCompat, KnownIncompat, KnownRoCompat)
}

// UnsupportedFeatures names the feature bits set in sb that are outside the
// given supported masks (an implementation passes what it implements).
// Callers usually ignore compat bits by passing ^CompatFeature(0).
func (sb *Superblock) UnsupportedFeatures(c CompatFeature, i IncompatFeature, r RoCompatFeature) []string {
	var out []string
	out = append(out, (sb.FeatureCompat &^ c).Names()...)
	out = append(out, (sb.FeatureIncompat &^ i).Names()...)
	out = append(out, (sb.FeatureRoCompat &^ r).Names()...)
	return out
}

// HasCompat reports whether all bits of f are set.
func (sb *Superblock) HasCompat(f CompatFeature) bool { return sb.FeatureCompat&f == f }

// HasIncompat reports whether all bits of f are set.
func (sb *Superblock) HasIncompat(f IncompatFeature) bool { return sb.FeatureIncompat&f == f }

// HasRoCompat reports whether all bits of f are set.
func (sb *Superblock) HasRoCompat(f RoCompatFeature) bool { return sb.FeatureRoCompat&f == f }
