package disk

import (
	"encoding/binary"

	"github.com/e4box/e4box/internal/crc"
)

// Directory entry file types (ext4_dir_entry_2.file_type, EXT4_FT_*).
const (
	FtUnknown = 0
	FtRegFile = 1
	FtDir     = 2
	FtChrdev  = 3
	FtBlkdev  = 4
	FtFifo    = 5
	FtSock    = 6
	FtSymlink = 7

	// FtDirCsum marks the fake entry holding a leaf block's checksum.
	FtDirCsum = 0xDE
)

// Directory entry sizes.
const (
	DirEntryHeaderSize = 8   // inode, rec_len, name_len, file_type
	MaxNameLen         = 255 // EXT4_NAME_LEN
	DirTailSize        = 12  // sizeof(struct ext4_dir_entry_tail)
	maxRecLenDisk      = 65535
)

// FileTypeFromMode maps i_mode's S_IFMT bits to an EXT4_FT_* value.
func FileTypeFromMode(mode uint16) uint8 {
	switch mode & S_IFMT {
	case S_IFREG:
		return FtRegFile
	case S_IFDIR:
		return FtDir
	case S_IFCHR:
		return FtChrdev
	case S_IFBLK:
		return FtBlkdev
	case S_IFIFO:
		return FtFifo
	case S_IFSOCK:
		return FtSock
	case S_IFLNK:
		return FtSymlink
	}
	return FtUnknown
}

// DirEntry is struct ext4_dir_entry_2. Name aliases the buffer it was
// decoded from. Kernel doc: "Directory Entries".
type DirEntry struct {
	Inode    uint32 // 0x0 inode (0: unused entry)
	RecLen   uint16 // 0x4 rec_len, as stored (see RecLenFromDisk)
	NameLen  uint8  // 0x6 name_len
	FileType uint8  // 0x7 file_type (EXT4_FT_*; with the filetype feature)
	Name     []byte // 0x8 name[name_len], not NUL-terminated
}

// DirRecLen is the space an entry with an n-byte name needs: 8 bytes of
// header plus the name, rounded up to 4 (EXT4_DIR_REC_LEN).
func DirRecLen(n int) int { return (n + DirEntryHeaderSize + 3) &^ 3 }

// RecLenFromDisk decodes a stored rec_len. A 65536-byte block cannot store
// its own size in 16 bits, so there 65535 and 0 mean "the whole block".
func RecLenFromDisk(v uint16, blockSize int) int {
	if blockSize >= 1<<16 && (v == maxRecLenDisk || v == 0) {
		return blockSize
	}
	return int(v)
}

// RecLenToDisk encodes a rec_len (the inverse of RecLenFromDisk).
func RecLenToDisk(n int, blockSize int) uint16 {
	if n >= 1<<16 {
		return maxRecLenDisk
	}
	return uint16(n)
}

// DirIter walks the entries of one directory block (or of an inline data
// region) in on-disk order, validating each entry as the kernel's
// ext4_check_dir_entry does. It returns unused entries (Inode == 0) too;
// callers skip them. Use:
//
//	it := disk.NewDirIter(block, len(block))
//	for e, ok := it.Next(); ok; e, ok = it.Next() { ... }
//	if err := it.Err(); err != nil { ... }
type DirIter struct {
	b         []byte
	blockSize int
	off       int
	err       error
}

const direntStruct = "ext4_dir_entry_2"

// NewDirIter iterates the entries in b. blockSize is the filesystem block
// size, used only for the 64 KiB rec_len encoding; for inline regions pass
// len(b).
func NewDirIter(b []byte, blockSize int) DirIter {
	return DirIter{b: b, blockSize: blockSize}
}

// Offset is the byte offset of the entry the next call to Next returns.
func (it *DirIter) Offset() int { return it.off }

// Err is the validation error that stopped the iteration, if any.
func (it *DirIter) Err() error { return it.err }

// Next returns the next entry; ok is false at the end of the buffer or on
// error (see Err).
func (it *DirIter) Next() (e DirEntry, ok bool) {
	if it.err != nil || it.off >= len(it.b) {
		return e, false
	}
	e, n, err := DecodeDirEntry(it.b[it.off:], it.blockSize)
	if err != nil {
		if fe, ok := err.(*FormatError); ok {
			fe.Off += it.off
		}
		it.err = err
		return e, false
	}
	it.off += n
	return e, true
}

// DecodeDirEntry decodes the entry at the start of b (which extends to the
// end of the block or region) and returns it with its decoded rec_len.
// rec_len must be a multiple of 4, at least 12 (the smallest entry), large
// enough for the name, and must not run past b.
func DecodeDirEntry(b []byte, blockSize int) (DirEntry, int, error) {
	var e DirEntry
	if len(b) < DirEntryHeaderSize {
		return e, 0, corrupt(direntStruct, 0, "%d bytes left, too few for an entry", len(b))
	}
	le := binary.LittleEndian
	e.Inode = le.Uint32(b[0:])
	e.RecLen = le.Uint16(b[4:])
	e.NameLen = b[6]
	e.FileType = b[7]
	rl := RecLenFromDisk(e.RecLen, blockSize)
	switch {
	case rl < DirRecLen(1):
		return e, 0, corrupt(direntStruct, 4, "rec_len %d smaller than minimal", rl)
	case rl%4 != 0:
		return e, 0, corrupt(direntStruct, 4, "rec_len %d not a multiple of 4", rl)
	case rl < DirRecLen(int(e.NameLen)):
		return e, 0, corrupt(direntStruct, 4, "rec_len %d too small for name_len %d", rl, e.NameLen)
	case rl > len(b):
		return e, 0, corrupt(direntStruct, 4, "rec_len %d runs past the block (%d bytes left)", rl, len(b))
	}
	e.Name = b[DirEntryHeaderSize : DirEntryHeaderSize+int(e.NameLen)]
	return e, rl, nil
}

// EncodeDirEntry writes an entry with rec_len recLen at the start of b.
// The name must fit (DirRecLen(len(name)) <= recLen <= len(b)); the bytes
// between the name and recLen are left as they are.
func EncodeDirEntry(b []byte, ino uint32, recLen int, fileType uint8, name []byte, blockSize int) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], ino)
	le.PutUint16(b[4:], RecLenToDisk(recLen, blockSize))
	b[6] = uint8(len(name))
	b[7] = fileType
	copy(b[DirEntryHeaderSize:], name)
}

// DirTail is struct ext4_dir_entry_tail: a fake, unused 12-byte entry at
// the end of each leaf directory block with metadata_csum, holding the
// block's checksum.
type DirTail struct {
	ReservedZero1 uint32 // 0x0 det_reserved_zero1 (inode 0)
	RecLen        uint16 // 0x4 det_rec_len (12)
	ReservedZero2 uint8  // 0x6 det_reserved_zero2 (name_len 0)
	ReservedFt    uint8  // 0x7 det_reserved_ft (0xDE)
	Checksum      uint32 // 0x8 det_checksum
}

// HasDirTail reports whether the block ends in a well-formed checksum tail.
func HasDirTail(b []byte) bool {
	if len(b) < DirTailSize {
		return false
	}
	t := b[len(b)-DirTailSize:]
	le := binary.LittleEndian
	return le.Uint32(t[0:]) == 0 && le.Uint16(t[4:]) == DirTailSize && t[6] == 0 && t[7] == FtDirCsum
}

const dirTailStruct = "ext4_dir_entry_tail"

// VerifyDirBlockChecksum checks the checksum tail of a leaf directory
// block: crc32c from the directory inode's seed over the block up to the
// tail. A block without a tail is corrupt under metadata_csum.
func VerifyDirBlockChecksum(inodeSeed uint32, b []byte) error {
	if !HasDirTail(b) {
		return corrupt(dirTailStruct, max(len(b)-DirTailSize, 0), "no checksum tail")
	}
	off := len(b) - DirTailSize
	want := crc.Crc32c(inodeSeed, b[:off])
	if got := binary.LittleEndian.Uint32(b[off+8:]); got != want {
		return badChecksum(dirTailStruct, off+8, got, want)
	}
	return nil
}

// InitDirTail writes an empty checksum tail at the end of b (the caller
// must have shortened the previous entry's rec_len to end before it).
func InitDirTail(b []byte) {
	t := b[len(b)-DirTailSize:]
	clear(t)
	binary.LittleEndian.PutUint16(t[4:], DirTailSize)
	t[7] = FtDirCsum
}

// SetDirBlockChecksum stores the checksum in the block's tail, which must
// exist (HasDirTail).
func SetDirBlockChecksum(inodeSeed uint32, b []byte) error {
	if !HasDirTail(b) {
		return corrupt(dirTailStruct, max(len(b)-DirTailSize, 0), "no checksum tail")
	}
	off := len(b) - DirTailSize
	binary.LittleEndian.PutUint32(b[off+8:], crc.Crc32c(inodeSeed, b[:off]))
	return nil
}
