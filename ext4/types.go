package ext4

// Ino is an inode number. Inode 0 does not exist; RootIno is the root directory.
type Ino uint32

// PBlk is a physical block number on the device.
type PBlk uint64

// LBlk is a logical block number within a file.
type LBlk uint32

// Group is a block group number.
type Group uint32

// RootIno is the root directory's inode number.
const RootIno Ino = 2

// File types in DirEntry.Type (the DT_* values of readdir(3)).
const (
	DTUnknown = 0
	DTFifo    = 1
	DTChr     = 2
	DTDir     = 4
	DTBlk     = 6
	DTReg     = 8
	DTLnk     = 10
	DTSock    = 12
)

// Mode file-type bits (S_IFMT family).
const (
	sIFMT   = 0xF000
	sIFSOCK = 0xC000
	sIFLNK  = 0xA000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000
)

// maxLBlk bounds logical block numbers: ext4 files end at 2^32 blocks.
const maxLBlk = 1 << 32

// blockBytes converts a block count to bytes; n*bsize cannot overflow for
// the block counts ext4 can express (< 2^48 blocks of <= 64 KiB).
func (fs *FS) blockBytes(n uint64) int64 { return int64(n) << fs.bshift }

// lblkOf returns the logical block containing byte offset off.
func (fs *FS) lblkOf(off int64) uint64 { return uint64(off) >> fs.bshift }

// pblkOff returns the device byte offset of physical block b.
func (fs *FS) pblkOff(b PBlk) int64 { return int64(b) << fs.bshift }

// modeToDT converts an inode mode to the DT_* value of its file type.
func modeToDT(mode uint16) uint8 {
	switch mode & sIFMT {
	case sIFREG:
		return DTReg
	case sIFDIR:
		return DTDir
	case sIFLNK:
		return DTLnk
	case sIFCHR:
		return DTChr
	case sIFBLK:
		return DTBlk
	case sIFIFO:
		return DTFifo
	case sIFSOCK:
		return DTSock
	}
	return DTUnknown
}

// ftypeToDT converts an ext4 dirent file_type (EXT4_FT_*) to DT_*.
func ftypeToDT(ft uint8) uint8 {
	switch ft {
	case 1:
		return DTReg
	case 2:
		return DTDir
	case 3:
		return DTChr
	case 4:
		return DTBlk
	case 5:
		return DTFifo
	case 6:
		return DTSock
	case 7:
		return DTLnk
	}
	return DTUnknown
}
