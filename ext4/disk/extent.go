package disk

import (
	"encoding/binary"

	"github.com/e4box/e4box/internal/crc"
)

// Extent tree constants.
const (
	ExtentMagic    = 0xF30A // eh_magic
	MaxExtentDepth = 5      // EXT4_MAX_EXTENT_DEPTH

	ExtentHeaderSize = 12 // sizeof(struct ext4_extent_header)
	ExtentEntrySize  = 12 // sizeof(struct ext4_extent) == sizeof(struct ext4_extent_idx)
	ExtentTailSize   = 4  // sizeof(struct ext4_extent_tail)

	// MaxInitExtentLen is the longest initialized extent (EXT_INIT_MAX_LEN);
	// ee_len values above it mark unwritten extents of ee_len-32768 blocks.
	MaxInitExtentLen = 1 << 15
	// MaxUnwrittenExtentLen is EXT_UNWRITTEN_MAX_LEN.
	MaxUnwrittenExtentLen = MaxInitExtentLen - 1
)

// ExtentHeader is struct ext4_extent_header, at the start of every extent
// tree node (i_block or a tree block). Kernel doc: "Extent Tree".
type ExtentHeader struct {
	Magic      uint16 // 0x0 eh_magic
	Entries    uint16 // 0x2 eh_entries: valid entries following the header
	Max        uint16 // 0x4 eh_max: capacity of the node in entries
	Depth      uint16 // 0x6 eh_depth: 0 for leaves
	Generation uint32 // 0x8 eh_generation
}

// Extent is struct ext4_extent, a leaf entry.
type Extent struct {
	Block   uint32 // 0x0 ee_block: first logical block covered
	Len     uint16 // 0x4 ee_len: > 32768 means unwritten (see Length)
	StartHi uint16 // 0x6 ee_start_hi
	StartLo uint32 // 0x8 ee_start_lo
}

// ExtentIdx is struct ext4_extent_idx, an interior entry.
type ExtentIdx struct {
	Block  uint32 // 0x0 ei_block: first logical block of the subtree
	LeafLo uint32 // 0x4 ei_leaf_lo: block of the child node
	LeafHi uint16 // 0x8 ei_leaf_hi
	Unused uint16 // 0xA ei_unused
}

// ExtentTail is struct ext4_extent_tail, after eh_max entries in tree
// blocks (not in i_block, which the inode checksum covers).
type ExtentTail struct {
	Checksum uint32 // 0x0 et_checksum
}

// Start is the first physical block of the extent (48 bits).
func (e *Extent) Start() uint64 { return uint64(e.StartHi)<<32 | uint64(e.StartLo) }

// SetStart sets the physical start (low 48 bits of v).
func (e *Extent) SetStart(v uint64) { e.StartLo, e.StartHi = uint32(v), uint16(v>>32) }

// Unwritten reports an unwritten (preallocated) extent, whose blocks read
// as zeros.
func (e *Extent) Unwritten() bool { return e.Len > MaxInitExtentLen }

// Length is the number of blocks the extent covers, with the unwritten
// flag removed (ee_len 32768 is an initialized extent of 32768 blocks).
func (e *Extent) Length() uint32 {
	if e.Len > MaxInitExtentLen {
		return uint32(e.Len) - MaxInitExtentLen
	}
	return uint32(e.Len)
}

// SetLength encodes n blocks (1..32768, or 1..32767 if unwritten).
func (e *Extent) SetLength(n uint32, unwritten bool) {
	if unwritten {
		n += MaxInitExtentLen
	}
	e.Len = uint16(n)
}

// Leaf is the physical block of the child node (48 bits).
func (x *ExtentIdx) Leaf() uint64 { return uint64(x.LeafHi)<<32 | uint64(x.LeafLo) }

// SetLeaf sets the child node block.
func (x *ExtentIdx) SetLeaf(v uint64) { x.LeafLo, x.LeafHi = uint32(v), uint16(v>>32) }

// ExtentNode is a decoded extent tree node: the header and either leaf
// extents (Depth == 0) or index entries. It references no input memory.
type ExtentNode struct {
	Header  ExtentHeader
	Extents []Extent    // when Header.Depth == 0
	Index   []ExtentIdx // when Header.Depth > 0
}

const extentStruct = "ext4_extent_header"

// ExtentCapacity is how many entries fit in a node buffer of n bytes: 4 in
// i_block (60 bytes), (blocksize-12)/12 in a tree block.
func ExtentCapacity(n int) int {
	if n < ExtentHeaderSize {
		return 0
	}
	return (n - ExtentHeaderSize) / ExtentEntrySize
}

// DecodeExtentHeader decodes and validates the header at the start of b,
// which is the whole node buffer (the 60-byte i_block or a tree block):
// magic, eh_entries <= eh_max <= capacity of b, depth <= 5, and no empty
// interior node.
func DecodeExtentHeader(b []byte) (ExtentHeader, error) {
	var h ExtentHeader
	if len(b) < ExtentHeaderSize {
		return h, corrupt(extentStruct, 0, "short node: %d bytes", len(b))
	}
	le := binary.LittleEndian
	h.Magic = le.Uint16(b[0:])
	h.Entries = le.Uint16(b[2:])
	h.Max = le.Uint16(b[4:])
	h.Depth = le.Uint16(b[6:])
	h.Generation = le.Uint32(b[8:])
	switch {
	case h.Magic != ExtentMagic:
		return h, corrupt(extentStruct, 0, "bad magic %#04x", h.Magic)
	case int(h.Max) > ExtentCapacity(len(b)):
		return h, corrupt(extentStruct, 4, "eh_max %d exceeds node capacity %d", h.Max, ExtentCapacity(len(b)))
	case h.Entries > h.Max:
		return h, corrupt(extentStruct, 2, "eh_entries %d > eh_max %d", h.Entries, h.Max)
	case h.Depth > MaxExtentDepth:
		return h, corrupt(extentStruct, 6, "depth %d > %d", h.Depth, MaxExtentDepth)
	case h.Depth > 0 && h.Entries == 0:
		return h, corrupt(extentStruct, 2, "empty index node at depth %d", h.Depth)
	}
	return h, nil
}

// Encode writes the header into b[:12].
func (h *ExtentHeader) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], h.Magic)
	le.PutUint16(b[2:], h.Entries)
	le.PutUint16(b[4:], h.Max)
	le.PutUint16(b[6:], h.Depth)
	le.PutUint32(b[8:], h.Generation)
}

// ExtentAt decodes leaf entry i of the node in b (no bounds check against
// the header; callers iterate i < Entries of a validated header).
func ExtentAt(b []byte, i int) Extent {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	le := binary.LittleEndian
	return Extent{Block: le.Uint32(p[0:]), Len: le.Uint16(p[4:]), StartHi: le.Uint16(p[6:]), StartLo: le.Uint32(p[8:])}
}

// ExtentIdxAt decodes index entry i of the node in b.
func ExtentIdxAt(b []byte, i int) ExtentIdx {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	le := binary.LittleEndian
	return ExtentIdx{Block: le.Uint32(p[0:]), LeafLo: le.Uint32(p[4:]), LeafHi: le.Uint16(p[8:]), Unused: le.Uint16(p[10:])}
}

// Encode writes the extent as entry i of the node in b.
func (e *Extent) Encode(b []byte, i int) {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	le := binary.LittleEndian
	le.PutUint32(p[0:], e.Block)
	le.PutUint16(p[4:], e.Len)
	le.PutUint16(p[6:], e.StartHi)
	le.PutUint32(p[8:], e.StartLo)
}

// Encode writes the index entry as entry i of the node in b.
func (x *ExtentIdx) Encode(b []byte, i int) {
	p := b[ExtentHeaderSize+i*ExtentEntrySize:]
	le := binary.LittleEndian
	le.PutUint32(p[0:], x.Block)
	le.PutUint32(p[4:], x.LeafLo)
	le.PutUint16(p[8:], x.LeafHi)
	le.PutUint16(p[10:], x.Unused)
}

// DecodeExtentNode decodes and validates a whole node. Beyond the header
// checks it requires entries to be sorted by strictly increasing logical
// block, leaf extents not to overlap, and extent lengths to be nonzero.
// Allocation is bounded by len(b)/12 entries.
func DecodeExtentNode(b []byte) (*ExtentNode, error) {
	h, err := DecodeExtentHeader(b)
	if err != nil {
		return nil, err
	}
	n := &ExtentNode{Header: h}
	if h.Depth == 0 {
		n.Extents = make([]Extent, h.Entries)
		var end uint64
		for i := range n.Extents {
			e := ExtentAt(b, i)
			off := ExtentHeaderSize + i*ExtentEntrySize
			if e.Length() == 0 {
				return nil, corrupt("ext4_extent", off+4, "zero-length extent")
			}
			if i > 0 && uint64(e.Block) < end {
				return nil, corrupt("ext4_extent", off, "extent at block %d overlaps or is out of order", e.Block)
			}
			end = uint64(e.Block) + uint64(e.Length())
			if end > 1<<32 {
				return nil, corrupt("ext4_extent", off, "extent at block %d runs past the 32-bit block space", e.Block)
			}
			n.Extents[i] = e
		}
		return n, nil
	}
	n.Index = make([]ExtentIdx, h.Entries)
	for i := range n.Index {
		x := ExtentIdxAt(b, i)
		if i > 0 && x.Block <= n.Index[i-1].Block {
			return nil, corrupt("ext4_extent_idx", ExtentHeaderSize+i*ExtentEntrySize,
				"index at block %d out of order", x.Block)
		}
		n.Index[i] = x
	}
	return n, nil
}

// Encode writes the node into b: header then entries. It does not touch
// the unused slots or the tail.
func (n *ExtentNode) Encode(b []byte) {
	n.Header.Encode(b)
	for i := range n.Extents {
		n.Extents[i].Encode(b, i)
	}
	for i := range n.Index {
		n.Index[i].Encode(b, i)
	}
}

// extentTailOffset is where et_checksum lives: after eh_max entries.
func extentTailOffset(b []byte) (int, error) {
	if len(b) < ExtentHeaderSize {
		return 0, corrupt(extentStruct, 0, "short node: %d bytes", len(b))
	}
	off := ExtentHeaderSize + ExtentEntrySize*int(binary.LittleEndian.Uint16(b[4:]))
	if off+ExtentTailSize > len(b) {
		return 0, corrupt("ext4_extent_tail", off, "no room for the tail in a %d-byte block", len(b))
	}
	return off, nil
}

// VerifyExtentBlockChecksum checks the tail checksum of an extent tree
// block (not i_block): crc32c from the inode seed (InodeCsumSeed) over the
// block up to the tail, which sits right after eh_max entries.
func VerifyExtentBlockChecksum(inodeSeed uint32, b []byte) error {
	off, err := extentTailOffset(b)
	if err != nil {
		return err
	}
	want := crc.Crc32c(inodeSeed, b[:off])
	if got := binary.LittleEndian.Uint32(b[off:]); got != want {
		return badChecksum("ext4_extent_tail", off, got, want)
	}
	return nil
}

// SetExtentBlockChecksum stores the tail checksum of an extent tree block.
func SetExtentBlockChecksum(inodeSeed uint32, b []byte) error {
	off, err := extentTailOffset(b)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[off:], crc.Crc32c(inodeSeed, b[:off]))
	return nil
}
