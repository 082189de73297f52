package disk

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/e4box/e4box/internal/crc"
)

// Extended attribute constants.
const (
	XattrMagic          = 0xEA020000 // h_magic of xattr blocks and in-inode areas
	XattrHeaderSize     = 32         // sizeof(struct ext4_xattr_header)
	XattrIbodyHeaderLen = 4          // sizeof(struct ext4_xattr_ibody_header)
	XattrEntrySize      = 16         // sizeof(struct ext4_xattr_entry) before the name
	XattrSizeMax        = 1 << 24    // EXT4_XATTR_SIZE_MAX: largest value
	xattrChecksumOff    = 0x10       // h_checksum
)

// Name indexes (e_name_index): the prefix an entry's name is stored without.
const (
	XattrIndexUser            = 1
	XattrIndexPosixACLAccess  = 2
	XattrIndexPosixACLDefault = 3
	XattrIndexTrusted         = 4
	XattrIndexLustre          = 5
	XattrIndexSecurity        = 6
	XattrIndexSystem          = 7
	XattrIndexRichACL         = 8
	XattrIndexEncryption      = 9 // fscrypt context, not visible to users
	XattrIndexHurd            = 10
	XattrNamePosixACLAccess   = "system.posix_acl_access"
	XattrNamePosixACLDefault  = "system.posix_acl_default"
	XattrNameRichACL          = "system.richacl"
	InlineDataXattrIndex      = XattrIndexSystem
	InlineDataXattrName       = "data" // system.data holds inline data past i_block
	InlineDataXattrFullName   = "system.data"
	InlineDataIBlockSize      = 60 // bytes of inline data in i_block
	InlineDirParentSize       = 4  // inline dirs start with the parent's inode number
	maxXattrNameLen           = 255
)

// xattrPrefixes maps the visible name indexes to their prefix. Indexes
// 2, 3 and 8 name a single attribute, stored with an empty suffix.
var xattrPrefixes = [...]string{
	XattrIndexUser:            "user.",
	XattrIndexPosixACLAccess:  XattrNamePosixACLAccess,
	XattrIndexPosixACLDefault: XattrNamePosixACLDefault,
	XattrIndexTrusted:         "trusted.",
	XattrIndexSecurity:        "security.",
	XattrIndexSystem:          "system.",
	XattrIndexRichACL:         XattrNameRichACL,
}

// XattrFullName joins an entry's name index and stored name into the name
// seen through getxattr/listxattr. ok is false for indexes that have no
// user-visible name (unknown, Lustre, encryption, Hurd).
func XattrFullName(index uint8, name []byte) (string, bool) {
	if int(index) >= len(xattrPrefixes) || xattrPrefixes[index] == "" {
		return "", false
	}
	return xattrPrefixes[index] + string(name), true
}

// XattrSplitName is the inverse of XattrFullName: it picks the name index
// and the stored suffix for a full attribute name. ok is false for names
// in no ext4 namespace, empty suffixes of the prefix namespaces, and
// suffixes longer than 255 bytes.
func XattrSplitName(full string) (index uint8, suffix string, ok bool) {
	switch full {
	case XattrNamePosixACLAccess:
		return XattrIndexPosixACLAccess, "", true
	case XattrNamePosixACLDefault:
		return XattrIndexPosixACLDefault, "", true
	case XattrNameRichACL:
		return XattrIndexRichACL, "", true
	}
	for _, i := range []uint8{XattrIndexUser, XattrIndexTrusted, XattrIndexSecurity, XattrIndexSystem} {
		if s, found := strings.CutPrefix(full, xattrPrefixes[i]); found {
			if s == "" || len(s) > maxXattrNameLen {
				return 0, "", false
			}
			return i, s, true
		}
	}
	return 0, "", false
}

// XattrHeader is struct ext4_xattr_header, at the start of an xattr block.
// Kernel doc: "Extended Attributes".
type XattrHeader struct {
	Magic    uint32    // 0x00 h_magic
	Refcount uint32    // 0x04 h_refcount: inodes sharing this block
	Blocks   uint32    // 0x08 h_blocks (must be 1)
	Hash     uint32    // 0x0C h_hash: hash of all entry hashes
	Checksum uint32    // 0x10 h_checksum
	Reserved [3]uint32 // 0x14 h_reserved
}

// XattrIbodyHeader is struct ext4_xattr_ibody_header, right after the
// inode's i_extra_isize bytes when the inode holds attributes.
type XattrIbodyHeader struct {
	Magic uint32 // 0x0 h_magic
}

// Encode writes the in-inode header (the magic) into b[:4].
func (h *XattrIbodyHeader) Encode(b []byte) { binary.LittleEndian.PutUint32(b, h.Magic) }

// XattrEntry is struct ext4_xattr_entry. Name (and Value, for values stored
// in the same buffer) alias the decoded buffer.
type XattrEntry struct {
	NameLen    uint8  // 0x0 e_name_len
	NameIndex  uint8  // 0x1 e_name_index
	ValueOffs  uint16 // 0x2 e_value_offs: from the block start, or the first in-inode entry
	ValueInum  uint32 // 0x4 e_value_inum: EA inode holding the value (ea_inode)
	ValueSize  uint32 // 0x8 e_value_size
	Hash       uint32 // 0xC e_hash
	Name       []byte // 0x10 e_name[e_name_len]
	Value      []byte // the value when ValueInum == 0 (not part of the entry)
	EntryOff   int    // offset of the entry in the decoded buffer
	EntryBytes int    // XattrEntryLen(NameLen)
}

// XattrEntryLen is the space an entry with an n-byte name takes, rounded
// to 4 bytes (EXT4_XATTR_LEN).
func XattrEntryLen(n int) int { return (n + XattrEntrySize + 3) &^ 3 }

// XattrValueLen is the space a value of n bytes takes (EXT4_XATTR_SIZE).
func XattrValueLen(n int) int { return (n + 3) &^ 3 }

const xattrStruct = "ext4_xattr_entry"

// DecodeXattrHeader decodes the header of an xattr block and checks magic
// and h_blocks.
func DecodeXattrHeader(b []byte) (XattrHeader, error) {
	var h XattrHeader
	if len(b) < XattrHeaderSize {
		return h, corrupt("ext4_xattr_header", 0, "short block: %d bytes", len(b))
	}
	le := binary.LittleEndian
	h.Magic = le.Uint32(b[0x00:])
	h.Refcount = le.Uint32(b[0x04:])
	h.Blocks = le.Uint32(b[0x08:])
	h.Hash = le.Uint32(b[0x0C:])
	h.Checksum = le.Uint32(b[0x10:])
	for i := range h.Reserved {
		h.Reserved[i] = le.Uint32(b[0x14+4*i:])
	}
	if h.Magic != XattrMagic {
		return h, corrupt("ext4_xattr_header", 0, "bad magic %#08x", h.Magic)
	}
	if h.Blocks != 1 {
		return h, corrupt("ext4_xattr_header", 0x08, "h_blocks %d", h.Blocks)
	}
	return h, nil
}

// Encode writes the header into b[:32].
func (h *XattrHeader) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0x00:], h.Magic)
	le.PutUint32(b[0x04:], h.Refcount)
	le.PutUint32(b[0x08:], h.Blocks)
	le.PutUint32(b[0x0C:], h.Hash)
	le.PutUint32(b[0x10:], h.Checksum)
	for i, r := range h.Reserved {
		le.PutUint32(b[0x14+4*i:], r)
	}
}

// DecodeXattrBlock decodes an xattr block: its header and entries, with
// values located relative to the block start.
func DecodeXattrBlock(b []byte) (XattrHeader, []XattrEntry, error) {
	h, err := DecodeXattrHeader(b)
	if err != nil {
		return h, nil, err
	}
	es, err := decodeXattrEntries(b, XattrHeaderSize, 0)
	return h, es, err
}

// DecodeXattrIbody decodes the in-inode attribute area: b is the inode
// record from 128+i_extra_isize to its end. An area without the magic (or
// too small for it) holds no attributes and yields no entries and no error.
func DecodeXattrIbody(b []byte) ([]XattrEntry, error) {
	if len(b) < XattrIbodyHeaderLen+4 || binary.LittleEndian.Uint32(b) != XattrMagic {
		return nil, nil
	}
	return decodeXattrEntries(b, XattrIbodyHeaderLen, XattrIbodyHeaderLen)
}

// decodeXattrEntries walks the entries from first to the 4-zero-byte
// terminator, then locates values relative to valueBase, checking them as
// the kernel's check_xattrs does: names within the buffer and NUL-free,
// values after the terminator, padded values within the buffer, sizes
// below XattrSizeMax. Offsets in errors are relative to b.
func decodeXattrEntries(b []byte, first, valueBase int) ([]XattrEntry, error) {
	le := binary.LittleEndian
	// Pass 1: count and check entry bounds (bounds the allocation too).
	n, off := 0, first
	for {
		if off+4 > len(b) {
			return nil, corrupt(xattrStruct, off, "entries run past the end without a terminator")
		}
		if le.Uint32(b[off:]) == 0 {
			break
		}
		nl := int(b[off])
		next := off + XattrEntryLen(nl)
		if next+4 > len(b) { // the next entry (or the terminator) must fit too
			return nil, corrupt(xattrStruct, off, "e_name out of bounds")
		}
		if bytes.IndexByte(b[off+XattrEntrySize:off+XattrEntrySize+nl], 0) >= 0 {
			return nil, corrupt(xattrStruct, off, "NUL in e_name")
		}
		n++
		off = next
	}
	end := off + 4 // values may not start before the terminator's end
	es := make([]XattrEntry, 0, n)
	for off := first; len(es) < n; {
		e := XattrEntry{
			NameLen:   b[off],
			NameIndex: b[off+1],
			ValueOffs: le.Uint16(b[off+2:]),
			ValueInum: le.Uint32(b[off+4:]),
			ValueSize: le.Uint32(b[off+8:]),
			Hash:      le.Uint32(b[off+12:]),
			EntryOff:  off,
		}
		e.EntryBytes = XattrEntryLen(int(e.NameLen))
		e.Name = b[off+XattrEntrySize : off+XattrEntrySize+int(e.NameLen)]
		if e.ValueSize > XattrSizeMax {
			return nil, corrupt(xattrStruct, off+8, "e_value_size %d too large", e.ValueSize)
		}
		if e.ValueInum == 0 && e.ValueSize != 0 {
			v := valueBase + int(e.ValueOffs)
			if v < end || XattrValueLen(int(e.ValueSize)) > len(b)-v {
				return nil, corrupt(xattrStruct, off+2, "value at %d (+%d) overlaps entries or runs past the end",
					e.ValueOffs, e.ValueSize)
			}
			e.Value = b[v : v+int(e.ValueSize)]
		} else if e.ValueInum == 0 {
			e.Value = b[:0:0]
		}
		es = append(es, e)
		off += e.EntryBytes
	}
	return es, nil
}

// EncodeXattrEntry writes the entry header and name at b[off:]; the value
// (if any) is the caller's to place at ValueOffs.
func EncodeXattrEntry(b []byte, off int, e *XattrEntry) {
	le := binary.LittleEndian
	p := b[off:]
	p[0], p[1] = uint8(len(e.Name)), e.NameIndex
	le.PutUint16(p[2:], e.ValueOffs)
	le.PutUint32(p[4:], e.ValueInum)
	le.PutUint32(p[8:], e.ValueSize)
	le.PutUint32(p[12:], e.Hash)
	n := copy(p[XattrEntrySize:], e.Name)
	clear(p[XattrEntrySize+n : XattrEntryLen(n)])
}

// Hash shifts from fs/ext4/xattr.c.
const (
	xattrNameHashShift  = 5
	xattrValueHashShift = 16
	xattrBlockHashShift = 16
)

// XattrEntryHash computes e_hash for a name and a value stored in the
// block: the name's bytes (as unsigned char), then the value's
// little-endian words including zero padding to 4 bytes. Since Linux 6.2
// the kernel writes this; older kernels used signed chars (see
// XattrEntryHashSigned), and readers accept either.
func XattrEntryHash(name, value []byte) uint32 {
	return xattrHashValue(xattrHashName(name, false), value)
}

// XattrEntryHashSigned is XattrEntryHash with the name's bytes sign
// extended, as kernels before 6.2 computed it on signed-char platforms.
func XattrEntryHashSigned(name, value []byte) uint32 {
	return xattrHashValue(xattrHashName(name, true), value)
}

// XattrEntryHashEAInode computes e_hash for a value stored in an EA inode:
// the name hash continued with the EA inode's value hash (kept in the EA
// inode's i_atime).
func XattrEntryHashEAInode(name []byte, eaInodeHash uint32) uint32 {
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], eaInodeHash)
	return xattrHashValue(xattrHashName(name, false), w[:])
}

// XattrValueHash is the hash of a value alone (an EA inode's value hash).
func XattrValueHash(value []byte) uint32 { return xattrHashValue(0, value) }

func xattrHashName(name []byte, signed bool) uint32 {
	var h uint32
	for _, c := range name {
		v := uint32(c)
		if signed {
			v = uint32(int32(int8(c)))
		}
		h = h<<xattrNameHashShift ^ h>>(32-xattrNameHashShift) ^ v
	}
	return h
}

func xattrHashValue(h uint32, value []byte) uint32 {
	for i := 0; i < len(value); i += 4 {
		var w [4]byte
		copy(w[:], value[i:])
		h = h<<xattrValueHashShift ^ h>>(32-xattrValueHashShift) ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

// XattrBlockHash computes h_hash from the entries' e_hash values, as the
// kernel's ext4_xattr_rehash: zero if any entry hash is zero.
func XattrBlockHash(es []XattrEntry) uint32 {
	var h uint32
	for _, e := range es {
		if e.Hash == 0 {
			return 0
		}
		h = h<<xattrBlockHashShift ^ h>>(32-xattrBlockHashShift) ^ e.Hash
	}
	return h
}

// XattrEntryHashOK reports whether an entry's stored hash matches its name
// and value under either signedness; values in EA inodes cannot be checked
// here and are accepted.
func XattrEntryHashOK(e *XattrEntry) bool {
	if e.ValueInum != 0 {
		return true
	}
	return e.Hash == XattrEntryHash(e.Name, e.Value) || e.Hash == XattrEntryHashSigned(e.Name, e.Value)
}

// xattrBlockChecksum is crc32c(fs seed, le64 block number, block with
// h_checksum zeroed).
func xattrBlockChecksum(fsSeed uint32, blockNr uint64, b []byte) uint32 {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], blockNr)
	c := crc.Crc32c(fsSeed, n[:])
	c = crc.Crc32c(c, b[:xattrChecksumOff])
	c = crc.Crc32c(c, []byte{0, 0, 0, 0})
	return crc.Crc32c(c, b[xattrChecksumOff+4:])
}

// VerifyXattrBlockChecksum checks h_checksum of the xattr block b, which
// lives at physical block blockNr (the checksum binds the two, so a block
// copied elsewhere fails).
func VerifyXattrBlockChecksum(fsSeed uint32, blockNr uint64, b []byte) error {
	if len(b) < XattrHeaderSize {
		return corrupt("ext4_xattr_header", 0, "short block: %d bytes", len(b))
	}
	want := xattrBlockChecksum(fsSeed, blockNr, b)
	if got := binary.LittleEndian.Uint32(b[xattrChecksumOff:]); got != want {
		return badChecksum("ext4_xattr_header", xattrChecksumOff, got, want)
	}
	return nil
}

// SetXattrBlockChecksum stores h_checksum in the xattr block b.
func SetXattrBlockChecksum(fsSeed uint32, blockNr uint64, b []byte) {
	binary.LittleEndian.PutUint32(b[xattrChecksumOff:], xattrBlockChecksum(fsSeed, blockNr, b))
}

// InlineDirRegions splits an inline directory into its parts: the parent
// inode number (i_block's first 4 bytes), the dirents in the rest of
// i_block, and those in the system.data value (possibly empty). Iterate
// each region with NewDirIter(region, len(region)).
func InlineDirRegions(iblock *[60]byte, data []byte) (parent uint32, inIBlock, inXattr []byte) {
	return binary.LittleEndian.Uint32(iblock[:]), iblock[InlineDirParentSize:], data
}
