package disk

// Code below mirrors the field order of Superblock; TestHandCodecsMatchLayout
// checks it against encoding/binary's reading of the struct. A hand codec,
// because reflection-based decoding is slow under the fuzzer's coverage
// instrumentation (a few executions per second).

import "encoding/binary"

// cursor reads or writes little-endian fields in sequence.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) u8() uint8      { v := c.b[c.off]; c.off++; return v }
func (c *cursor) u16() uint16    { v := binary.LittleEndian.Uint16(c.b[c.off:]); c.off += 2; return v }
func (c *cursor) u32() uint32    { v := binary.LittleEndian.Uint32(c.b[c.off:]); c.off += 4; return v }
func (c *cursor) u64() uint64    { v := binary.LittleEndian.Uint64(c.b[c.off:]); c.off += 8; return v }
func (c *cursor) bytes(p []byte) { c.off += copy(p, c.b[c.off:]) }

func (c *cursor) put8(v uint8)      { c.b[c.off] = v; c.off++ }
func (c *cursor) put16(v uint16)    { binary.LittleEndian.PutUint16(c.b[c.off:], v); c.off += 2 }
func (c *cursor) put32(v uint32)    { binary.LittleEndian.PutUint32(c.b[c.off:], v); c.off += 4 }
func (c *cursor) put64(v uint64)    { binary.LittleEndian.PutUint64(c.b[c.off:], v); c.off += 8 }
func (c *cursor) putBytes(p []byte) { c.off += copy(c.b[c.off:], p) }

// decode fills sb from b[:SuperblockSize] (which the caller checked).
func (sb *Superblock) decode(b []byte) {
	c := cursor{b: b[:SuperblockSize]}
	sb.InodesCount = c.u32()
	sb.BlocksCountLo = c.u32()
	sb.RBlocksCountLo = c.u32()
	sb.FreeBlocksCountLo = c.u32()
	sb.FreeInodesCount = c.u32()
	sb.FirstDataBlock = c.u32()
	sb.LogBlockSize = c.u32()
	sb.LogClusterSize = c.u32()
	sb.BlocksPerGroup = c.u32()
	sb.ClustersPerGroup = c.u32()
	sb.InodesPerGroup = c.u32()
	sb.Mtime = c.u32()
	sb.Wtime = c.u32()
	sb.MntCount = c.u16()
	sb.MaxMntCount = c.u16()
	sb.Magic = c.u16()
	sb.State = c.u16()
	sb.Errors = c.u16()
	sb.MinorRevLevel = c.u16()
	sb.Lastcheck = c.u32()
	sb.Checkinterval = c.u32()
	sb.CreatorOS = c.u32()
	sb.RevLevel = c.u32()
	sb.DefResuid = c.u16()
	sb.DefResgid = c.u16()
	sb.FirstIno = c.u32()
	sb.InodeSizeRaw = c.u16()
	sb.BlockGroupNr = c.u16()
	sb.FeatureCompat = CompatFeature(c.u32())
	sb.FeatureIncompat = IncompatFeature(c.u32())
	sb.FeatureRoCompat = RoCompatFeature(c.u32())
	c.bytes(sb.UUID[:])
	c.bytes(sb.VolumeName[:])
	c.bytes(sb.LastMounted[:])
	sb.AlgorithmUsageBmp = c.u32()
	sb.PreallocBlocks = c.u8()
	sb.PreallocDirBlocks = c.u8()
	sb.ReservedGdtBlocks = c.u16()
	c.bytes(sb.JournalUUID[:])
	sb.JournalInum = c.u32()
	sb.JournalDev = c.u32()
	sb.LastOrphan = c.u32()
	for i := range sb.HashSeed {
		sb.HashSeed[i] = c.u32()
	}
	sb.DefHashVersion = c.u8()
	sb.JnlBackupType = c.u8()
	sb.DescSizeRaw = c.u16()
	sb.DefaultMountOpts = c.u32()
	sb.FirstMetaBg = c.u32()
	sb.MkfsTime = c.u32()
	for i := range sb.JnlBlocks {
		sb.JnlBlocks[i] = c.u32()
	}
	sb.BlocksCountHi = c.u32()
	sb.RBlocksCountHi = c.u32()
	sb.FreeBlocksCountHi = c.u32()
	sb.MinExtraIsize = c.u16()
	sb.WantExtraIsize = c.u16()
	sb.Flags = c.u32()
	sb.RaidStride = c.u16()
	sb.MmpInterval = c.u16()
	sb.MmpBlock = c.u64()
	sb.RaidStripeWidth = c.u32()
	sb.LogGroupsPerFlex = c.u8()
	sb.ChecksumType = c.u8()
	sb.EncryptionLevel = c.u8()
	sb.ReservedPad = c.u8()
	sb.KbytesWritten = c.u64()
	sb.SnapshotInum = c.u32()
	sb.SnapshotID = c.u32()
	sb.SnapshotRBlocks = c.u64()
	sb.SnapshotList = c.u32()
	sb.ErrorCount = c.u32()
	sb.FirstErrorTime = c.u32()
	sb.FirstErrorIno = c.u32()
	sb.FirstErrorBlock = c.u64()
	c.bytes(sb.FirstErrorFunc[:])
	sb.FirstErrorLine = c.u32()
	sb.LastErrorTime = c.u32()
	sb.LastErrorIno = c.u32()
	sb.LastErrorLine = c.u32()
	sb.LastErrorBlock = c.u64()
	c.bytes(sb.LastErrorFunc[:])
	c.bytes(sb.MountOpts[:])
	sb.UsrQuotaInum = c.u32()
	sb.GrpQuotaInum = c.u32()
	sb.OverheadClusters = c.u32()
	for i := range sb.BackupBgs {
		sb.BackupBgs[i] = c.u32()
	}
	c.bytes(sb.EncryptAlgos[:])
	c.bytes(sb.EncryptPwSalt[:])
	sb.LpfIno = c.u32()
	sb.PrjQuotaInum = c.u32()
	sb.ChecksumSeed = c.u32()
	sb.WtimeHi = c.u8()
	sb.MtimeHi = c.u8()
	sb.MkfsTimeHi = c.u8()
	sb.LastcheckHi = c.u8()
	sb.FirstErrorTimeHi = c.u8()
	sb.LastErrorTimeHi = c.u8()
	sb.FirstErrorErrcode = c.u8()
	sb.LastErrorErrcode = c.u8()
	sb.Encoding = c.u16()
	sb.EncodingFlags = c.u16()
	sb.OrphanFileInum = c.u32()
	for i := range sb.Reserved {
		sb.Reserved[i] = c.u32()
	}
	sb.Checksum = c.u32()
}

// encode writes sb into b[:SuperblockSize].
func (sb *Superblock) encode(b []byte) {
	c := cursor{b: b[:SuperblockSize]}
	c.put32(sb.InodesCount)
	c.put32(sb.BlocksCountLo)
	c.put32(sb.RBlocksCountLo)
	c.put32(sb.FreeBlocksCountLo)
	c.put32(sb.FreeInodesCount)
	c.put32(sb.FirstDataBlock)
	c.put32(sb.LogBlockSize)
	c.put32(sb.LogClusterSize)
	c.put32(sb.BlocksPerGroup)
	c.put32(sb.ClustersPerGroup)
	c.put32(sb.InodesPerGroup)
	c.put32(sb.Mtime)
	c.put32(sb.Wtime)
	c.put16(sb.MntCount)
	c.put16(sb.MaxMntCount)
	c.put16(sb.Magic)
	c.put16(sb.State)
	c.put16(sb.Errors)
	c.put16(sb.MinorRevLevel)
	c.put32(sb.Lastcheck)
	c.put32(sb.Checkinterval)
	c.put32(sb.CreatorOS)
	c.put32(sb.RevLevel)
	c.put16(sb.DefResuid)
	c.put16(sb.DefResgid)
	c.put32(sb.FirstIno)
	c.put16(sb.InodeSizeRaw)
	c.put16(sb.BlockGroupNr)
	c.put32(uint32(sb.FeatureCompat))
	c.put32(uint32(sb.FeatureIncompat))
	c.put32(uint32(sb.FeatureRoCompat))
	c.putBytes(sb.UUID[:])
	c.putBytes(sb.VolumeName[:])
	c.putBytes(sb.LastMounted[:])
	c.put32(sb.AlgorithmUsageBmp)
	c.put8(sb.PreallocBlocks)
	c.put8(sb.PreallocDirBlocks)
	c.put16(sb.ReservedGdtBlocks)
	c.putBytes(sb.JournalUUID[:])
	c.put32(sb.JournalInum)
	c.put32(sb.JournalDev)
	c.put32(sb.LastOrphan)
	for _, v := range sb.HashSeed {
		c.put32(v)
	}
	c.put8(sb.DefHashVersion)
	c.put8(sb.JnlBackupType)
	c.put16(sb.DescSizeRaw)
	c.put32(sb.DefaultMountOpts)
	c.put32(sb.FirstMetaBg)
	c.put32(sb.MkfsTime)
	for _, v := range sb.JnlBlocks {
		c.put32(v)
	}
	c.put32(sb.BlocksCountHi)
	c.put32(sb.RBlocksCountHi)
	c.put32(sb.FreeBlocksCountHi)
	c.put16(sb.MinExtraIsize)
	c.put16(sb.WantExtraIsize)
	c.put32(sb.Flags)
	c.put16(sb.RaidStride)
	c.put16(sb.MmpInterval)
	c.put64(sb.MmpBlock)
	c.put32(sb.RaidStripeWidth)
	c.put8(sb.LogGroupsPerFlex)
	c.put8(sb.ChecksumType)
	c.put8(sb.EncryptionLevel)
	c.put8(sb.ReservedPad)
	c.put64(sb.KbytesWritten)
	c.put32(sb.SnapshotInum)
	c.put32(sb.SnapshotID)
	c.put64(sb.SnapshotRBlocks)
	c.put32(sb.SnapshotList)
	c.put32(sb.ErrorCount)
	c.put32(sb.FirstErrorTime)
	c.put32(sb.FirstErrorIno)
	c.put64(sb.FirstErrorBlock)
	c.putBytes(sb.FirstErrorFunc[:])
	c.put32(sb.FirstErrorLine)
	c.put32(sb.LastErrorTime)
	c.put32(sb.LastErrorIno)
	c.put32(sb.LastErrorLine)
	c.put64(sb.LastErrorBlock)
	c.putBytes(sb.LastErrorFunc[:])
	c.putBytes(sb.MountOpts[:])
	c.put32(sb.UsrQuotaInum)
	c.put32(sb.GrpQuotaInum)
	c.put32(sb.OverheadClusters)
	for _, v := range sb.BackupBgs {
		c.put32(v)
	}
	c.putBytes(sb.EncryptAlgos[:])
	c.putBytes(sb.EncryptPwSalt[:])
	c.put32(sb.LpfIno)
	c.put32(sb.PrjQuotaInum)
	c.put32(sb.ChecksumSeed)
	c.put8(sb.WtimeHi)
	c.put8(sb.MtimeHi)
	c.put8(sb.MkfsTimeHi)
	c.put8(sb.LastcheckHi)
	c.put8(sb.FirstErrorTimeHi)
	c.put8(sb.LastErrorTimeHi)
	c.put8(sb.FirstErrorErrcode)
	c.put8(sb.LastErrorErrcode)
	c.put16(sb.Encoding)
	c.put16(sb.EncodingFlags)
	c.put32(sb.OrphanFileInum)
	for _, v := range sb.Reserved {
		c.put32(v)
	}
	c.put32(sb.Checksum)
}
