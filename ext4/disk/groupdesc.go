package disk

import (
	"encoding/binary"

	"github.com/e4box/e4box/internal/crc"
)

// bg_flags bits.
const (
	BgInodeUninit = 0x1 // inode table and bitmap not initialised
	BgBlockUninit = 0x2 // block bitmap not initialised
	BgInodeZeroed = 0x4 // inode table zeroed
)

// GroupDesc is struct ext4_group_desc. The record is 32 bytes without the
// 64bit feature and s_desc_size (>= 64) bytes with it; both decode into this
// one struct, with the hi half zero for 32-byte records. Kernel doc: "Block
// Group Descriptors".
type GroupDesc struct {
	BlockBitmapLo     uint32 // 0x00 bg_block_bitmap_lo
	InodeBitmapLo     uint32 // 0x04 bg_inode_bitmap_lo
	InodeTableLo      uint32 // 0x08 bg_inode_table_lo
	FreeBlocksCountLo uint16 // 0x0C bg_free_blocks_count_lo
	FreeInodesCountLo uint16 // 0x0E bg_free_inodes_count_lo
	UsedDirsCountLo   uint16 // 0x10 bg_used_dirs_count_lo
	Flags             uint16 // 0x12 bg_flags
	ExcludeBitmapLo   uint32 // 0x14 bg_exclude_bitmap_lo
	BlockBitmapCsumLo uint16 // 0x18 bg_block_bitmap_csum_lo
	InodeBitmapCsumLo uint16 // 0x1A bg_inode_bitmap_csum_lo
	ItableUnusedLo    uint16 // 0x1C bg_itable_unused_lo
	Checksum          uint16 // 0x1E bg_checksum
	BlockBitmapHi     uint32 // 0x20 bg_block_bitmap_hi
	InodeBitmapHi     uint32 // 0x24 bg_inode_bitmap_hi
	InodeTableHi      uint32 // 0x28 bg_inode_table_hi
	FreeBlocksCountHi uint16 // 0x2C bg_free_blocks_count_hi
	FreeInodesCountHi uint16 // 0x2E bg_free_inodes_count_hi
	UsedDirsCountHi   uint16 // 0x30 bg_used_dirs_count_hi
	ItableUnusedHi    uint16 // 0x32 bg_itable_unused_hi
	ExcludeBitmapHi   uint32 // 0x34 bg_exclude_bitmap_hi
	BlockBitmapCsumHi uint16 // 0x38 bg_block_bitmap_csum_hi
	InodeBitmapCsumHi uint16 // 0x3A bg_inode_bitmap_csum_hi
	Reserved          uint32 // 0x3C bg_reserved
}

const (
	gdStruct      = "ext4_group_desc"
	gdChecksumOff = 0x1E
	gdFullSize    = 64

	// The bitmap checksum hi halves exist only if the record reaches them
	// (EXT4_BG_{BLOCK,INODE}_BITMAP_CSUM_HI_END).
	gdBlockBitmapCsumHiEnd = 0x3A
	gdInodeBitmapCsumHiEnd = 0x3C
)

// DecodeGroupDesc decodes a descriptor record of descSize bytes (32, or
// s_desc_size with 64bit) from the start of b. Bytes beyond 64 in larger
// records are not represented; EncodeGroupDesc leaves them untouched.
func DecodeGroupDesc(b []byte, descSize int) (GroupDesc, error) {
	var g GroupDesc
	if descSize < MinDescSize || descSize > MaxDescSize {
		return g, corrupt(gdStruct, 0, "descriptor size %d invalid", descSize)
	}
	if len(b) < descSize {
		return g, corrupt(gdStruct, 0, "short buffer: %d < %d bytes", len(b), descSize)
	}
	le := binary.LittleEndian
	g.BlockBitmapLo = le.Uint32(b[0x00:])
	g.InodeBitmapLo = le.Uint32(b[0x04:])
	g.InodeTableLo = le.Uint32(b[0x08:])
	g.FreeBlocksCountLo = le.Uint16(b[0x0C:])
	g.FreeInodesCountLo = le.Uint16(b[0x0E:])
	g.UsedDirsCountLo = le.Uint16(b[0x10:])
	g.Flags = le.Uint16(b[0x12:])
	g.ExcludeBitmapLo = le.Uint32(b[0x14:])
	g.BlockBitmapCsumLo = le.Uint16(b[0x18:])
	g.InodeBitmapCsumLo = le.Uint16(b[0x1A:])
	g.ItableUnusedLo = le.Uint16(b[0x1C:])
	g.Checksum = le.Uint16(b[0x1E:])
	if descSize < gdFullSize {
		return g, nil
	}
	g.BlockBitmapHi = le.Uint32(b[0x20:])
	g.InodeBitmapHi = le.Uint32(b[0x24:])
	g.InodeTableHi = le.Uint32(b[0x28:])
	g.FreeBlocksCountHi = le.Uint16(b[0x2C:])
	g.FreeInodesCountHi = le.Uint16(b[0x2E:])
	g.UsedDirsCountHi = le.Uint16(b[0x30:])
	g.ItableUnusedHi = le.Uint16(b[0x32:])
	g.ExcludeBitmapHi = le.Uint32(b[0x34:])
	g.BlockBitmapCsumHi = le.Uint16(b[0x38:])
	g.InodeBitmapCsumHi = le.Uint16(b[0x3A:])
	g.Reserved = le.Uint32(b[0x3C:])
	return g, nil
}

// Encode writes the first min(descSize, 64) bytes of the record into b; the
// hi half is dropped for 32-byte records. b must hold descSize bytes.
func (g *GroupDesc) Encode(b []byte, descSize int) {
	le := binary.LittleEndian
	_ = b[descSize-1]
	le.PutUint32(b[0x00:], g.BlockBitmapLo)
	le.PutUint32(b[0x04:], g.InodeBitmapLo)
	le.PutUint32(b[0x08:], g.InodeTableLo)
	le.PutUint16(b[0x0C:], g.FreeBlocksCountLo)
	le.PutUint16(b[0x0E:], g.FreeInodesCountLo)
	le.PutUint16(b[0x10:], g.UsedDirsCountLo)
	le.PutUint16(b[0x12:], g.Flags)
	le.PutUint32(b[0x14:], g.ExcludeBitmapLo)
	le.PutUint16(b[0x18:], g.BlockBitmapCsumLo)
	le.PutUint16(b[0x1A:], g.InodeBitmapCsumLo)
	le.PutUint16(b[0x1C:], g.ItableUnusedLo)
	le.PutUint16(b[0x1E:], g.Checksum)
	if descSize < gdFullSize {
		return
	}
	le.PutUint32(b[0x20:], g.BlockBitmapHi)
	le.PutUint32(b[0x24:], g.InodeBitmapHi)
	le.PutUint32(b[0x28:], g.InodeTableHi)
	le.PutUint16(b[0x2C:], g.FreeBlocksCountHi)
	le.PutUint16(b[0x2E:], g.FreeInodesCountHi)
	le.PutUint16(b[0x30:], g.UsedDirsCountHi)
	le.PutUint16(b[0x32:], g.ItableUnusedHi)
	le.PutUint32(b[0x34:], g.ExcludeBitmapHi)
	le.PutUint16(b[0x38:], g.BlockBitmapCsumHi)
	le.PutUint16(b[0x3A:], g.InodeBitmapCsumHi)
	le.PutUint32(b[0x3C:], g.Reserved)
}

func join32(lo, hi uint32) uint64 { return uint64(hi)<<32 | uint64(lo) }
func join16(lo, hi uint16) uint32 { return uint32(hi)<<16 | uint32(lo) }

// BlockBitmap is the block number of the group's block bitmap.
func (g *GroupDesc) BlockBitmap() uint64 { return join32(g.BlockBitmapLo, g.BlockBitmapHi) }

// InodeBitmap is the block number of the group's inode bitmap.
func (g *GroupDesc) InodeBitmap() uint64 { return join32(g.InodeBitmapLo, g.InodeBitmapHi) }

// InodeTable is the first block of the group's inode table.
func (g *GroupDesc) InodeTable() uint64 { return join32(g.InodeTableLo, g.InodeTableHi) }

// ExcludeBitmap is the snapshot exclude bitmap block (unused by Linux).
func (g *GroupDesc) ExcludeBitmap() uint64 { return join32(g.ExcludeBitmapLo, g.ExcludeBitmapHi) }

// FreeBlocksCount is the group's free block (cluster) count.
func (g *GroupDesc) FreeBlocksCount() uint32 { return join16(g.FreeBlocksCountLo, g.FreeBlocksCountHi) }

// FreeInodesCount is the group's free inode count.
func (g *GroupDesc) FreeInodesCount() uint32 { return join16(g.FreeInodesCountLo, g.FreeInodesCountHi) }

// UsedDirsCount is the number of directories in the group.
func (g *GroupDesc) UsedDirsCount() uint32 { return join16(g.UsedDirsCountLo, g.UsedDirsCountHi) }

// ItableUnused is the number of never-used inodes at the end of the table.
func (g *GroupDesc) ItableUnused() uint32 { return join16(g.ItableUnusedLo, g.ItableUnusedHi) }

// BlockBitmapCsum is the block bitmap checksum (hi half only in 64-byte records).
func (g *GroupDesc) BlockBitmapCsum() uint32 {
	return join16(g.BlockBitmapCsumLo, g.BlockBitmapCsumHi)
}

// InodeBitmapCsum is the inode bitmap checksum (hi half only in 64-byte records).
func (g *GroupDesc) InodeBitmapCsum() uint32 {
	return join16(g.InodeBitmapCsumLo, g.InodeBitmapCsumHi)
}

// SetBlockBitmap and the other setters split a value into its halves; hi
// halves are silently dropped by Encode for 32-byte records, so callers must
// not store values that need them without 64bit.
func (g *GroupDesc) SetBlockBitmap(v uint64) {
	g.BlockBitmapLo, g.BlockBitmapHi = uint32(v), uint32(v>>32)
}

// SetInodeBitmap sets the inode bitmap block.
func (g *GroupDesc) SetInodeBitmap(v uint64) {
	g.InodeBitmapLo, g.InodeBitmapHi = uint32(v), uint32(v>>32)
}

// SetInodeTable sets the first inode table block.
func (g *GroupDesc) SetInodeTable(v uint64) {
	g.InodeTableLo, g.InodeTableHi = uint32(v), uint32(v>>32)
}

// SetFreeBlocksCount sets the free block count.
func (g *GroupDesc) SetFreeBlocksCount(v uint32) {
	g.FreeBlocksCountLo, g.FreeBlocksCountHi = uint16(v), uint16(v>>16)
}

// SetFreeInodesCount sets the free inode count.
func (g *GroupDesc) SetFreeInodesCount(v uint32) {
	g.FreeInodesCountLo, g.FreeInodesCountHi = uint16(v), uint16(v>>16)
}

// SetUsedDirsCount sets the directory count.
func (g *GroupDesc) SetUsedDirsCount(v uint32) {
	g.UsedDirsCountLo, g.UsedDirsCountHi = uint16(v), uint16(v>>16)
}

// SetItableUnused sets the unused inode count.
func (g *GroupDesc) SetItableUnused(v uint32) {
	g.ItableUnusedLo, g.ItableUnusedHi = uint16(v), uint16(v>>16)
}

// GroupDescChecksum computes bg_checksum for the descSize-byte record rec of
// group number group. With metadata_csum it is the low 16 bits of
// crc32c(seed, le32 group, rec with bg_checksum zeroed); with gdt_csum it is
// crc16(~0, uuid, le32 group, rec without bg_checksum). ok is false if the
// filesystem has neither feature (the field is then unused).
func GroupDescChecksum(sb *Superblock, seed uint32, group uint32, rec []byte) (sum uint16, ok bool) {
	var g [4]byte
	binary.LittleEndian.PutUint32(g[:], group)
	switch {
	case sb.HasMetadataCsum():
		c := crc.Crc32c(seed, g[:])
		c = crc.Crc32c(c, rec[:gdChecksumOff])
		c = crc.Crc32c(c, []byte{0, 0})
		c = crc.Crc32c(c, rec[gdChecksumOff+2:])
		return uint16(c), true
	case sb.HasGdtCsum():
		c := crc.Crc16(0xFFFF, sb.UUID[:])
		c = crc.Crc16(c, g[:])
		c = crc.Crc16(c, rec[:gdChecksumOff])
		// The kernel covers the tail only for 64bit (s_desc_size records).
		if sb.Is64Bit() {
			c = crc.Crc16(c, rec[gdChecksumOff+2:])
		}
		return c, true
	}
	return 0, false
}

// VerifyGroupDescChecksum checks bg_checksum of the encoded record rec
// (exactly sb.DescSize() bytes) for group number group.
func VerifyGroupDescChecksum(sb *Superblock, seed uint32, group uint32, rec []byte) error {
	if len(rec) != sb.DescSize() {
		return corrupt(gdStruct, 0, "record is %d bytes, want %d", len(rec), sb.DescSize())
	}
	want, ok := GroupDescChecksum(sb, seed, group, rec)
	if !ok {
		return nil
	}
	if got := binary.LittleEndian.Uint16(rec[gdChecksumOff:]); got != want {
		return badChecksum(gdStruct, gdChecksumOff, uint32(got), uint32(want))
	}
	return nil
}

// SetGroupDescChecksum recomputes and stores bg_checksum in the encoded
// record rec (sb.DescSize() bytes), if the filesystem has group checksums.
func SetGroupDescChecksum(sb *Superblock, seed uint32, group uint32, rec []byte) {
	if sum, ok := GroupDescChecksum(sb, seed, group, rec[:sb.DescSize()]); ok {
		binary.LittleEndian.PutUint16(rec[gdChecksumOff:], sum)
	}
}

// BitmapChecksum is crc32c(seed, bitmap): the checksum stored, split in
// halves, in bg_{block,inode}_bitmap_csum. The bitmap passed is the part the
// kernel covers: clusters_per_group/8 bytes for block bitmaps,
// inodes_per_group/8 for inode bitmaps (see BlockBitmapBytes, InodeBitmapBytes).
func BitmapChecksum(seed uint32, bitmap []byte) uint32 { return crc.Crc32c(seed, bitmap) }

// BlockBitmapBytes is how many bytes of a block bitmap the checksum covers.
func (sb *Superblock) BlockBitmapBytes() int {
	if sb.HasRoCompat(RoCompatBigalloc) {
		return int(sb.ClustersPerGroup / 8)
	}
	return int(sb.BlocksPerGroup / 8)
}

// InodeBitmapBytes is how many bytes of an inode bitmap the checksum covers.
func (sb *Superblock) InodeBitmapBytes() int { return int(sb.InodesPerGroup / 8) }

// VerifyBlockBitmapChecksum checks g's block bitmap checksum against the
// bitmap block contents (only with metadata_csum). The hi half is compared
// only when the descriptor record has it.
func VerifyBlockBitmapChecksum(sb *Superblock, seed uint32, g *GroupDesc, bitmap []byte) error {
	n := sb.BlockBitmapBytes()
	if !sb.HasMetadataCsum() {
		return nil
	}
	if len(bitmap) < n {
		return corrupt("block bitmap", 0, "short bitmap: %d < %d bytes", len(bitmap), n)
	}
	c := BitmapChecksum(seed, bitmap[:n])
	got, want := uint32(g.BlockBitmapCsumLo), c&0xFFFF
	if sb.DescSize() >= gdBlockBitmapCsumHiEnd {
		got, want = g.BlockBitmapCsum(), c
	}
	if got != want {
		return badChecksum("block bitmap", 0, got, want)
	}
	return nil
}

// SetBlockBitmapChecksum stores the checksum of bitmap in g.
func SetBlockBitmapChecksum(sb *Superblock, seed uint32, g *GroupDesc, bitmap []byte) {
	if !sb.HasMetadataCsum() {
		return
	}
	c := BitmapChecksum(seed, bitmap[:sb.BlockBitmapBytes()])
	g.BlockBitmapCsumLo = uint16(c)
	if sb.DescSize() >= gdBlockBitmapCsumHiEnd {
		g.BlockBitmapCsumHi = uint16(c >> 16)
	}
}

// VerifyInodeBitmapChecksum checks g's inode bitmap checksum.
func VerifyInodeBitmapChecksum(sb *Superblock, seed uint32, g *GroupDesc, bitmap []byte) error {
	n := sb.InodeBitmapBytes()
	if !sb.HasMetadataCsum() {
		return nil
	}
	if len(bitmap) < n {
		return corrupt("inode bitmap", 0, "short bitmap: %d < %d bytes", len(bitmap), n)
	}
	c := BitmapChecksum(seed, bitmap[:n])
	got, want := uint32(g.InodeBitmapCsumLo), c&0xFFFF
	if sb.DescSize() >= gdInodeBitmapCsumHiEnd {
		got, want = g.InodeBitmapCsum(), c
	}
	if got != want {
		return badChecksum("inode bitmap", 0, got, want)
	}
	return nil
}

// SetInodeBitmapChecksum stores the checksum of bitmap in g.
func SetInodeBitmapChecksum(sb *Superblock, seed uint32, g *GroupDesc, bitmap []byte) {
	if !sb.HasMetadataCsum() {
		return
	}
	c := BitmapChecksum(seed, bitmap[:sb.InodeBitmapBytes()])
	g.InodeBitmapCsumLo = uint16(c)
	if sb.DescSize() >= gdInodeBitmapCsumHiEnd {
		g.InodeBitmapCsumHi = uint16(c >> 16)
	}
}
