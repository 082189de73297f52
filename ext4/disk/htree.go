package disk

import (
	"encoding/binary"

	"github.com/e4box/e4box/internal/crc"
)

// Hash versions (dx_root_info.hash_version and s_def_hash_version). The
// unsigned variants are never stored in a dx_root: the kernel adds 3 to
// the stored version when the superblock's s_flags say FlagUnsignedHash.
const (
	DxHashLegacy          = 0
	DxHashHalfMD4         = 1
	DxHashTea             = 2
	DxHashLegacyUnsigned  = 3
	DxHashHalfMD4Unsigned = 4
	DxHashTeaUnsigned     = 5
	DxHashSipHash         = 6
)

// Htree geometry.
const (
	DxRootInfoOff  = 0x18 // dx_root_info within block 0
	DxRootInfoLen  = 8    // dx_root_info.info_length
	DxEntriesRoot  = DxRootInfoOff + DxRootInfoLen
	DxEntriesNode  = 8 // after the fake dirent of an interior node
	DxEntrySize    = 8
	DxTailSize     = 8
	HtreeLevels    = 2 // EXT4_HTREE_LEVEL_COMPAT: levels without large_dir
	HtreeLevelsMax = 3 // EXT4_HTREE_LEVEL: with large_dir
)

// DxRootInfo is struct dx_root_info, at 0x18 of an htree directory's first
// block, after the fake "." and ".." entries. Kernel doc: "Hash Tree
// Directories".
type DxRootInfo struct {
	ReservedZero   uint32 // 0x0 reserved_zero
	HashVersion    uint8  // 0x4 hash_version
	InfoLength     uint8  // 0x5 info_length (8)
	IndirectLevels uint8  // 0x6 indirect_levels: interior levels below the root
	UnusedFlags    uint8  // 0x7 unused_flags
}

// DxRootHeader is the fixed part of struct dx_root: fake "." and ".."
// entries (rec_len 12 and blocksize-12) and the info; dx_entries follow.
type DxRootHeader struct {
	DotInode       uint32     // 0x00 dot.inode
	DotRecLen      uint16     // 0x04 dot.rec_len (12)
	DotNameLen     uint8      // 0x06 dot.name_len (1)
	DotFileType    uint8      // 0x07 dot.file_type
	DotName        [4]byte    // 0x08 dot.name ".\0\0\0"
	DotDotInode    uint32     // 0x0C dotdot.inode
	DotDotRecLen   uint16     // 0x10 dotdot.rec_len (blocksize - 12)
	DotDotNameLen  uint8      // 0x12 dotdot.name_len (2)
	DotDotFileType uint8      // 0x13 dotdot.file_type
	DotDotName     [4]byte    // 0x14 dotdot.name "..\0\0"
	Info           DxRootInfo // 0x18 info
}

// DxCountLimit is struct dx_countlimit; it overlays the hash of the first
// dx_entry of every index block.
type DxCountLimit struct {
	Limit uint16 // 0x0 limit: capacity in entries
	Count uint16 // 0x2 count: entries in use
}

// DxEntry is struct dx_entry: the hash range starting at Hash lives in
// the directory's logical block Block. Entry 0's Hash is implicitly 0.
type DxEntry struct {
	Hash  uint32 // 0x0 hash
	Block uint32 // 0x4 block (logical, within the directory)
}

// DxTail is struct dx_tail, after Limit entries in index blocks with
// metadata_csum.
type DxTail struct {
	Reserved uint32 // 0x0 dt_reserved
	Checksum uint32 // 0x4 dt_checksum
}

// DxNode is a decoded htree index block: the root (block 0) or an
// interior node. Entries holds Count entries; Entries[0].Hash is 0.
type DxNode struct {
	Root        bool
	Info        DxRootInfo // root only
	DotInode    uint32     // root only: the directory itself
	DotDotInode uint32     // root only: the parent
	CountOffset int        // byte offset of dx_countlimit (DxEntriesRoot or DxEntriesNode)
	Limit       uint16
	Entries     []DxEntry
}

// DxLimit is the expected dx_countlimit.limit of a root or interior node
// in a block of blockSize bytes, leaving room for the dx_tail when csum.
func DxLimit(root bool, blockSize int, csum bool) int {
	space := blockSize - DxEntriesNode
	if root {
		space = blockSize - DxEntriesRoot
	}
	if csum {
		space -= DxTailSize
	}
	return max(space, 0) / DxEntrySize
}

const dxStruct = "dx_root"

// DecodeDxRoot decodes and validates block 0 of an indexed directory, b
// being the whole block. Checks follow the kernel's dx_probe: the fake
// entries' shape, reserved_zero, info_length 8, a known hash version, at
// most HtreeLevelsMax-1 indirect levels (callers check large_dir), no
// unknown flags, limit equal to the block's capacity (with or without a
// tail, per csum) and 0 < count <= limit. Entry hashes must not decrease.
func DecodeDxRoot(b []byte, csum bool) (*DxNode, error) {
	if len(b) < DxEntriesRoot+4 {
		return nil, corrupt(dxStruct, 0, "short block: %d bytes", len(b))
	}
	le := binary.LittleEndian
	n := &DxNode{Root: true, CountOffset: DxEntriesRoot}
	n.DotInode = le.Uint32(b[0x00:])
	n.DotDotInode = le.Uint32(b[0x0C:])
	switch {
	case le.Uint16(b[0x04:]) != 12 || b[0x06] != 1 || b[0x08] != '.':
		return nil, corrupt(dxStruct, 0x00, "bad fake '.' entry")
	case RecLenFromDisk(le.Uint16(b[0x10:]), len(b)) != len(b)-12 || b[0x12] != 2 || b[0x14] != '.' || b[0x15] != '.':
		return nil, corrupt(dxStruct, 0x0C, "bad fake '..' entry")
	}
	i := b[DxRootInfoOff:]
	n.Info = DxRootInfo{ReservedZero: le.Uint32(i[0:]), HashVersion: i[4], InfoLength: i[5],
		IndirectLevels: i[6], UnusedFlags: i[7]}
	switch hv := n.Info.HashVersion; {
	case n.Info.ReservedZero != 0:
		return nil, corrupt(dxStruct, 0x18, "reserved_zero is %#x", n.Info.ReservedZero)
	case n.Info.InfoLength != DxRootInfoLen:
		return nil, corrupt(dxStruct, 0x1D, "info_length %d", n.Info.InfoLength)
	case hv != DxHashLegacy && hv != DxHashHalfMD4 && hv != DxHashTea && hv != DxHashSipHash:
		return nil, corrupt(dxStruct, 0x1C, "unknown hash version %d", hv)
	case n.Info.IndirectLevels >= HtreeLevelsMax:
		return nil, corrupt(dxStruct, 0x1E, "%d indirect levels", n.Info.IndirectLevels)
	case n.Info.UnusedFlags&1 != 0:
		return nil, corrupt(dxStruct, 0x1F, "unimplemented hash flags %#x", n.Info.UnusedFlags)
	}
	if err := n.decodeEntries(b, csum); err != nil {
		return nil, err
	}
	return n, nil
}

// DecodeDxNode decodes and validates an interior index block: a fake
// empty entry spanning the block, then the count/limit and entries.
func DecodeDxNode(b []byte, csum bool) (*DxNode, error) {
	if len(b) < DxEntriesNode+4 {
		return nil, corrupt("dx_node", 0, "short block: %d bytes", len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != 0 || RecLenFromDisk(le.Uint16(b[4:]), len(b)) != len(b) || b[6] != 0 {
		return nil, corrupt("dx_node", 0, "bad fake entry")
	}
	n := &DxNode{CountOffset: DxEntriesNode}
	if err := n.decodeEntries(b, csum); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *DxNode) decodeEntries(b []byte, csum bool) error {
	le := binary.LittleEndian
	off := n.CountOffset
	n.Limit = le.Uint16(b[off:])
	count := int(le.Uint16(b[off+2:]))
	st := "dx_countlimit"
	if want := DxLimit(n.Root, len(b), csum); int(n.Limit) != want {
		return corrupt(st, off, "limit %d, want %d", n.Limit, want)
	}
	if count == 0 || count > int(n.Limit) {
		return corrupt(st, off+2, "count %d, limit %d", count, n.Limit)
	}
	n.Entries = make([]DxEntry, count)
	for i := range n.Entries {
		p := b[off+i*DxEntrySize:]
		e := DxEntry{Block: le.Uint32(p[4:])}
		if i > 0 {
			e.Hash = le.Uint32(p[0:])
			if e.Hash < n.Entries[i-1].Hash {
				return corrupt("dx_entry", off+i*DxEntrySize, "hash %#x below its predecessor's", e.Hash)
			}
		}
		n.Entries[i] = e
	}
	return nil
}

// Encode writes the index entries and count/limit into b (the whole block);
// for a root it also writes the info. The fake entries are not touched.
func (n *DxNode) Encode(b []byte) {
	le := binary.LittleEndian
	if n.Root {
		i := b[DxRootInfoOff:]
		le.PutUint32(i[0:], n.Info.ReservedZero)
		i[4], i[5], i[6], i[7] = n.Info.HashVersion, n.Info.InfoLength, n.Info.IndirectLevels, n.Info.UnusedFlags
	}
	off := n.CountOffset
	for i, e := range n.Entries {
		p := b[off+i*DxEntrySize:]
		if i > 0 {
			le.PutUint32(p[0:], e.Hash)
		}
		le.PutUint32(p[4:], e.Block)
	}
	le.PutUint16(b[off:], n.Limit)
	le.PutUint16(b[off+2:], uint16(len(n.Entries)))
}

// Search returns the index of the entry whose hash range holds hash: the
// last entry with Hash <= hash (entry 0 covers everything below entry 1).
func (n *DxNode) Search(hash uint32) int {
	lo, hi := 1, len(n.Entries) // find the first entry with Hash > hash
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.Entries[m].Hash > hash {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// dxCountOffset finds dx_countlimit in an index block from its shape, as
// the kernel's ext4_get_dx_countlimit does for checksumming.
func dxCountOffset(b []byte) (int, error) {
	if len(b) < DxEntriesRoot+4 {
		return 0, corrupt("dx_tail", 0, "short block: %d bytes", len(b))
	}
	le := binary.LittleEndian
	switch RecLenFromDisk(le.Uint16(b[4:]), len(b)) {
	case len(b):
		return DxEntriesNode, nil
	case 12:
		if RecLenFromDisk(le.Uint16(b[12+4:]), len(b)) != len(b)-12 ||
			le.Uint32(b[DxRootInfoOff:]) != 0 || b[DxRootInfoOff+5] != DxRootInfoLen {
			return 0, corrupt("dx_root", 0, "not an htree root")
		}
		return DxEntriesRoot, nil
	}
	return 0, corrupt("dx_node", 4, "not an htree index block")
}

// dxChecksum computes an index block's checksum and locates the tail.
func dxChecksum(inodeSeed uint32, b []byte) (sum uint32, tailOff int, err error) {
	off, err := dxCountOffset(b)
	if err != nil {
		return 0, 0, err
	}
	le := binary.LittleEndian
	limit, count := int(le.Uint16(b[off:])), int(le.Uint16(b[off+2:]))
	tailOff = off + limit*DxEntrySize
	if tailOff+DxTailSize > len(b) || count > limit {
		return 0, 0, corrupt("dx_tail", off, "limit %d, count %d leave no room for the tail", limit, count)
	}
	// Covered: the block up to the last used entry, then the tail with
	// dt_checksum as zeros.
	c := crc.Crc32c(inodeSeed, b[:off+count*DxEntrySize])
	c = crc.Crc32c(c, b[tailOff:tailOff+4])
	c = crc.Crc32c(c, []byte{0, 0, 0, 0})
	return c, tailOff, nil
}

// VerifyDxChecksum checks the dx_tail checksum of an htree root or
// interior block: crc32c from the directory inode's seed over the block up
// to the end of the used entries (count_offset + count*8), then over the
// 8-byte dx_tail with dt_checksum zeroed. (The kernel doc only says "the
// htree"; this coverage is the kernel's ext4_dx_csum, verified against
// e2fsprogs-built images.)
func VerifyDxChecksum(inodeSeed uint32, b []byte) error {
	want, off, err := dxChecksum(inodeSeed, b)
	if err != nil {
		return err
	}
	if got := binary.LittleEndian.Uint32(b[off+4:]); got != want {
		return badChecksum("dx_tail", off+4, got, want)
	}
	return nil
}

// SetDxChecksum stores the dx_tail checksum of an htree index block.
func SetDxChecksum(inodeSeed uint32, b []byte) error {
	sum, off, err := dxChecksum(inodeSeed, b)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[off+4:], sum)
	return nil
}
