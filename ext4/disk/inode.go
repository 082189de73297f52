package disk

import (
	"encoding/binary"

	"github.com/e4box/e4box/internal/crc"
)

// Reserved inode numbers.
const (
	BadBlocksIno  = 1
	RootIno       = 2
	UsrQuotaIno   = 3
	GrpQuotaIno   = 4
	BootLoaderIno = 5
	UndelDirIno   = 6
	ResizeIno     = 7
	JournalIno    = 8
)

// File type bits of i_mode (S_IFMT and friends).
const (
	S_IFMT   = 0xF000
	S_IFSOCK = 0xC000
	S_IFLNK  = 0xA000
	S_IFREG  = 0x8000
	S_IFBLK  = 0x6000
	S_IFDIR  = 0x4000
	S_IFCHR  = 0x2000
	S_IFIFO  = 0x1000
)

// InodeFlags is i_flags (EXT4_*_FL).
type InodeFlags uint32

// Inode flags.
const (
	SecrmFL       InodeFlags = 0x1
	UnrmFL        InodeFlags = 0x2
	ComprFL       InodeFlags = 0x4
	SyncFL        InodeFlags = 0x8
	ImmutableFL   InodeFlags = 0x10
	AppendFL      InodeFlags = 0x20
	NodumpFL      InodeFlags = 0x40
	NoatimeFL     InodeFlags = 0x80
	DirtyFL       InodeFlags = 0x100
	ComprblkFL    InodeFlags = 0x200
	NocomprFL     InodeFlags = 0x400
	EncryptFL     InodeFlags = 0x800
	IndexFL       InodeFlags = 0x1000 // directory has an htree index
	ImagicFL      InodeFlags = 0x2000
	JournalDataFL InodeFlags = 0x4000
	NotailFL      InodeFlags = 0x8000
	DirsyncFL     InodeFlags = 0x10000
	TopdirFL      InodeFlags = 0x20000
	HugeFileFL    InodeFlags = 0x40000 // i_blocks counts fs blocks, not 512-byte sectors
	ExtentsFL     InodeFlags = 0x80000 // i_block holds an extent tree
	VerityFL      InodeFlags = 0x100000
	EAInodeFL     InodeFlags = 0x200000 // inode holds a large xattr value
	DaxFL         InodeFlags = 0x2000000
	InlineDataFL  InodeFlags = 0x10000000 // data lives in i_block and system.data
	ProjinheritFL InodeFlags = 0x20000000
	CasefoldFL    InodeFlags = 0x40000000
)

// Inode is struct ext4_inode including the "large inode" fields up to
// i_projid. Records are s_inode_size bytes; the fields beyond byte 128
// exist only up to 128+i_extra_isize and decode as zero past it (the
// kernel's EXT4_FITS_IN_INODE). Kernel doc: "Index Nodes".
//
// Only the Linux flavour of the OS-dependent unions is modelled.
type Inode struct {
	Mode        uint16     // 0x00 i_mode
	UidLo       uint16     // 0x02 i_uid
	SizeLo      uint32     // 0x04 i_size_lo
	AtimeRaw    uint32     // 0x08 i_atime
	CtimeRaw    uint32     // 0x0C i_ctime
	MtimeRaw    uint32     // 0x10 i_mtime
	Dtime       uint32     // 0x14 i_dtime
	GidLo       uint16     // 0x18 i_gid
	LinksCount  uint16     // 0x1A i_links_count
	BlocksLo    uint32     // 0x1C i_blocks_lo
	Flags       InodeFlags // 0x20 i_flags
	Version     uint32     // 0x24 osd1.linux1.l_i_version
	Block       [60]byte   // 0x28 i_block[15]: block map, extent tree root, inline data or symlink target
	Generation  uint32     // 0x64 i_generation
	FileACLLo   uint32     // 0x68 i_file_acl_lo (xattr block)
	SizeHigh    uint32     // 0x6C i_size_high
	ObsoFaddr   uint32     // 0x70 i_obso_faddr
	BlocksHigh  uint16     // 0x74 osd2.linux2.l_i_blocks_high
	FileACLHigh uint16     // 0x76 osd2.linux2.l_i_file_acl_high
	UidHigh     uint16     // 0x78 osd2.linux2.l_i_uid_high
	GidHigh     uint16     // 0x7A osd2.linux2.l_i_gid_high
	ChecksumLo  uint16     // 0x7C osd2.linux2.l_i_checksum_lo
	Reserved    uint16     // 0x7E osd2.linux2.l_i_reserved
	ExtraIsize  uint16     // 0x80 i_extra_isize
	ChecksumHi  uint16     // 0x82 i_checksum_hi
	CtimeExtra  uint32     // 0x84 i_ctime_extra
	MtimeExtra  uint32     // 0x88 i_mtime_extra
	AtimeExtra  uint32     // 0x8C i_atime_extra
	CrtimeRaw   uint32     // 0x90 i_crtime
	CrtimeExtra uint32     // 0x94 i_crtime_extra
	VersionHi   uint32     // 0x98 i_version_hi
	Projid      uint32     // 0x9C i_projid
}

const (
	inodeStruct = "ext4_inode"

	// InodeFullSize is the size of the fields Inode models (through i_projid).
	InodeFullSize = 0xA0

	inodeChecksumLoOff = 0x7C
	inodeChecksumHiOff = 0x82
	inodeExtraIsizeOff = 0x80
)

// validInodeSize accepts the record sizes a superblock may declare.
func validInodeSize(n int) bool { return n >= GoodOldInodeSize && n&(n-1) == 0 }

// DecodeInode decodes an inode record (s_inode_size bytes; b must be exactly
// the record). i_extra_isize is validated against the record size: it must be
// 4-aligned and leave the record, as the kernel requires.
func DecodeInode(b []byte) (*Inode, error) {
	in := new(Inode)
	if err := in.Decode(b); err != nil {
		return nil, err
	}
	return in, nil
}

// Decode is DecodeInode into an existing struct (avoiding an allocation).
// On error the struct's contents are unspecified.
func (in *Inode) Decode(b []byte) error {
	if !validInodeSize(len(b)) {
		return corrupt(inodeStruct, 0, "record is %d bytes, want a power of two >= %d", len(b), GoodOldInodeSize)
	}
	le := binary.LittleEndian
	in.Mode = le.Uint16(b[0x00:])
	in.UidLo = le.Uint16(b[0x02:])
	in.SizeLo = le.Uint32(b[0x04:])
	in.AtimeRaw = le.Uint32(b[0x08:])
	in.CtimeRaw = le.Uint32(b[0x0C:])
	in.MtimeRaw = le.Uint32(b[0x10:])
	in.Dtime = le.Uint32(b[0x14:])
	in.GidLo = le.Uint16(b[0x18:])
	in.LinksCount = le.Uint16(b[0x1A:])
	in.BlocksLo = le.Uint32(b[0x1C:])
	in.Flags = InodeFlags(le.Uint32(b[0x20:]))
	in.Version = le.Uint32(b[0x24:])
	copy(in.Block[:], b[0x28:0x64])
	in.Generation = le.Uint32(b[0x64:])
	in.FileACLLo = le.Uint32(b[0x68:])
	in.SizeHigh = le.Uint32(b[0x6C:])
	in.ObsoFaddr = le.Uint32(b[0x70:])
	in.BlocksHigh = le.Uint16(b[0x74:])
	in.FileACLHigh = le.Uint16(b[0x76:])
	in.UidHigh = le.Uint16(b[0x78:])
	in.GidHigh = le.Uint16(b[0x7A:])
	in.ChecksumLo = le.Uint16(b[0x7C:])
	in.Reserved = le.Uint16(b[0x7E:])

	// Zero the large-inode tail, then fill what i_extra_isize covers.
	in.ExtraIsize, in.ChecksumHi = 0, 0
	in.CtimeExtra, in.MtimeExtra, in.AtimeExtra = 0, 0, 0
	in.CrtimeRaw, in.CrtimeExtra, in.VersionHi, in.Projid = 0, 0, 0, 0
	if len(b) == GoodOldInodeSize {
		return nil
	}
	extra := int(le.Uint16(b[inodeExtraIsizeOff:]))
	if extra&3 != 0 || GoodOldInodeSize+extra > len(b) {
		return corrupt(inodeStruct, inodeExtraIsizeOff, "i_extra_isize %d invalid for %d-byte inodes", extra, len(b))
	}
	in.ExtraIsize = uint16(extra)
	end := GoodOldInodeSize + extra
	if end >= 0x84 {
		in.ChecksumHi = le.Uint16(b[0x82:])
	}
	if end >= 0x88 {
		in.CtimeExtra = le.Uint32(b[0x84:])
	}
	if end >= 0x8C {
		in.MtimeExtra = le.Uint32(b[0x88:])
	}
	if end >= 0x90 {
		in.AtimeExtra = le.Uint32(b[0x8C:])
	}
	if end >= 0x94 {
		in.CrtimeRaw = le.Uint32(b[0x90:])
	}
	if end >= 0x98 {
		in.CrtimeExtra = le.Uint32(b[0x94:])
	}
	if end >= 0x9C {
		in.VersionHi = le.Uint32(b[0x98:])
	}
	if end >= 0xA0 {
		in.Projid = le.Uint32(b[0x9C:])
	}
	return nil
}

// Encode writes the inode into the record b (s_inode_size bytes): the
// 128-byte base, i_extra_isize, and the extra fields i_extra_isize covers.
// Bytes past 128+i_extra_isize (in-inode xattrs) are left untouched. The
// checksum is not recomputed; use SetInodeChecksum on the encoded record.
// ExtraIsize must fit the record (as DecodeInode guarantees).
func (in *Inode) Encode(b []byte) {
	le := binary.LittleEndian
	_ = b[GoodOldInodeSize-1]
	le.PutUint16(b[0x00:], in.Mode)
	le.PutUint16(b[0x02:], in.UidLo)
	le.PutUint32(b[0x04:], in.SizeLo)
	le.PutUint32(b[0x08:], in.AtimeRaw)
	le.PutUint32(b[0x0C:], in.CtimeRaw)
	le.PutUint32(b[0x10:], in.MtimeRaw)
	le.PutUint32(b[0x14:], in.Dtime)
	le.PutUint16(b[0x18:], in.GidLo)
	le.PutUint16(b[0x1A:], in.LinksCount)
	le.PutUint32(b[0x1C:], in.BlocksLo)
	le.PutUint32(b[0x20:], uint32(in.Flags))
	le.PutUint32(b[0x24:], in.Version)
	copy(b[0x28:0x64], in.Block[:])
	le.PutUint32(b[0x64:], in.Generation)
	le.PutUint32(b[0x68:], in.FileACLLo)
	le.PutUint32(b[0x6C:], in.SizeHigh)
	le.PutUint32(b[0x70:], in.ObsoFaddr)
	le.PutUint16(b[0x74:], in.BlocksHigh)
	le.PutUint16(b[0x76:], in.FileACLHigh)
	le.PutUint16(b[0x78:], in.UidHigh)
	le.PutUint16(b[0x7A:], in.GidHigh)
	le.PutUint16(b[0x7C:], in.ChecksumLo)
	le.PutUint16(b[0x7E:], in.Reserved)
	if len(b) <= GoodOldInodeSize {
		return
	}
	le.PutUint16(b[0x80:], in.ExtraIsize)
	end := GoodOldInodeSize + int(in.ExtraIsize)
	if end >= 0x84 {
		le.PutUint16(b[0x82:], in.ChecksumHi)
	}
	if end >= 0x88 {
		le.PutUint32(b[0x84:], in.CtimeExtra)
	}
	if end >= 0x8C {
		le.PutUint32(b[0x88:], in.MtimeExtra)
	}
	if end >= 0x90 {
		le.PutUint32(b[0x8C:], in.AtimeExtra)
	}
	if end >= 0x94 {
		le.PutUint32(b[0x90:], in.CrtimeRaw)
	}
	if end >= 0x98 {
		le.PutUint32(b[0x94:], in.CrtimeExtra)
	}
	if end >= 0x9C {
		le.PutUint32(b[0x98:], in.VersionHi)
	}
	if end >= 0xA0 {
		le.PutUint32(b[0x9C:], in.Projid)
	}
}

// Type is the file type bits of i_mode.
func (in *Inode) Type() uint16 { return in.Mode & S_IFMT }

// IsDir, IsReg and IsSymlink test the file type.
func (in *Inode) IsDir() bool { return in.Type() == S_IFDIR }

// IsReg reports a regular file.
func (in *Inode) IsReg() bool { return in.Type() == S_IFREG }

// IsSymlink reports a symbolic link.
func (in *Inode) IsSymlink() bool { return in.Type() == S_IFLNK }

// Uid joins i_uid and l_i_uid_high.
func (in *Inode) Uid() uint32 { return join16(in.UidLo, in.UidHigh) }

// Gid joins i_gid and l_i_gid_high.
func (in *Inode) Gid() uint32 { return join16(in.GidLo, in.GidHigh) }

// SetUid splits a 32-bit uid into its halves.
func (in *Inode) SetUid(v uint32) { in.UidLo, in.UidHigh = uint16(v), uint16(v>>16) }

// SetGid splits a 32-bit gid into its halves.
func (in *Inode) SetGid(v uint32) { in.GidLo, in.GidHigh = uint16(v), uint16(v>>16) }

// Size joins i_size_lo and i_size_high (used for all file types, as the
// kernel does since large_file became universal).
func (in *Inode) Size() uint64 { return join32(in.SizeLo, in.SizeHigh) }

// SetSize splits v into i_size_lo/i_size_high.
func (in *Inode) SetSize(v uint64) { in.SizeLo, in.SizeHigh = uint32(v), uint32(v>>32) }

// FileACL is the block number of the inode's xattr block (0 if none).
func (in *Inode) FileACL() uint64 { return join32(in.FileACLLo, uint32(in.FileACLHigh)) }

// SetFileACL sets the xattr block number (48 bits).
func (in *Inode) SetFileACL(v uint64) { in.FileACLLo, in.FileACLHigh = uint32(v), uint16(v>>32) }

// Blocks512 is the number of 512-byte sectors charged to the inode, as the
// kernel's ext4_inode_blocks computes it: i_blocks_lo alone without the
// huge_file feature; with it, joined with l_i_blocks_high and, if the inode
// has HUGE_FILE_FL, in filesystem blocks (scaled by blockSize/512).
func (in *Inode) Blocks512(hugeFile bool, blockSize int) uint64 {
	n := uint64(in.BlocksLo)
	if !hugeFile {
		return n
	}
	n |= uint64(in.BlocksHigh) << 32
	if in.Flags&HugeFileFL != 0 {
		// 48 bits << at most 7 (64 KiB / 512): no overflow.
		for s := blockSize / 512; s > 1; s >>= 1 {
			n <<= 1
		}
	}
	return n
}

// SetBlocks512 stores a sector count the way the kernel's
// ext4_inode_blocks_set does: in sectors while it fits 48 bits (clearing
// HUGE_FILE_FL), else in filesystem blocks with HUGE_FILE_FL. ok is false
// if the value cannot be represented (or needs huge_file and hugeFile is
// false).
func (in *Inode) SetBlocks512(v uint64, hugeFile bool, blockSize int) (ok bool) {
	if v <= 0xFFFFFFFF {
		in.BlocksLo, in.BlocksHigh = uint32(v), 0
		in.Flags &^= HugeFileFL
		return true
	}
	if !hugeFile {
		return false
	}
	if v <= 0xFFFFFFFFFFFF {
		in.BlocksLo, in.BlocksHigh = uint32(v), uint16(v>>32)
		in.Flags &^= HugeFileFL
		return true
	}
	shift := 0
	for s := blockSize / 512; s > 1; s >>= 1 {
		shift++
	}
	v >>= shift
	if v > 0xFFFFFFFFFFFF {
		return false
	}
	in.BlocksLo, in.BlocksHigh = uint32(v), uint16(v>>32)
	in.Flags |= HugeFileFL
	return true
}

// Extra-field layout of the *_extra timestamp words: the low two bits extend
// the signed 32-bit seconds (epoch bits), the upper 30 bits are nanoseconds.
const (
	extraEpochMask = 0x3
	extraNsecShift = 2
)

// DecodeTime turns a timestamp's 32-bit seconds and, if present, its _extra
// word into (seconds since the epoch, nanoseconds). The seconds field is
// signed; the epoch bits add multiples of 2^32, extending the range to 2446
// (kernel doc "Inode Timestamps"; this is the decoding the kernel has used
// since 4.x, which also maps epoch 3 with a negative low word to 2310-2378).
func DecodeTime(sec uint32, extra uint32, hasExtra bool) (int64, uint32) {
	s := int64(int32(sec))
	if !hasExtra {
		return s, 0
	}
	s += int64(extra&extraEpochMask) << 32
	return s, extra >> extraNsecShift
}

// EncodeTime is the inverse of DecodeTime for the extended range
// [-2^31, 2^34 - 2^31): it returns the 32-bit seconds field and the _extra
// word. Values outside the range are clamped, as the kernel does.
func EncodeTime(sec int64, nsec uint32) (lo uint32, extra uint32) {
	const minT, maxT = -1 << 31, 1<<34 - 1<<31 - 1
	sec = max(minT, min(sec, maxT))
	lo = uint32(sec)
	epoch := uint32((sec - int64(int32(lo))) >> 32)
	return lo, epoch&extraEpochMask | (nsec%1_000_000_000)<<extraNsecShift
}

// fits reports whether the extra-area field ending at byte end is present.
func (in *Inode) fits(end int) bool { return GoodOldInodeSize+int(in.ExtraIsize) >= end }

// Atime is the access time (seconds, nanoseconds).
func (in *Inode) Atime() (int64, uint32) {
	return DecodeTime(in.AtimeRaw, in.AtimeExtra, in.fits(0x90))
}

// Mtime is the modification time.
func (in *Inode) Mtime() (int64, uint32) {
	return DecodeTime(in.MtimeRaw, in.MtimeExtra, in.fits(0x8C))
}

// Ctime is the inode change time.
func (in *Inode) Ctime() (int64, uint32) {
	return DecodeTime(in.CtimeRaw, in.CtimeExtra, in.fits(0x88))
}

// Crtime is the creation time; ok is false when the record has no i_crtime.
func (in *Inode) Crtime() (sec int64, nsec uint32, ok bool) {
	if !in.fits(0x94) {
		return 0, 0, false
	}
	sec, nsec = DecodeTime(in.CrtimeRaw, in.CrtimeExtra, in.fits(0x98))
	return sec, nsec, true
}

// SetAtime stores an access time (the _extra part only if the record has it).
func (in *Inode) SetAtime(sec int64, nsec uint32) {
	in.AtimeRaw, in.AtimeExtra = EncodeTime(sec, nsec)
	if !in.fits(0x90) {
		in.AtimeExtra = 0
	}
}

// SetMtime stores a modification time.
func (in *Inode) SetMtime(sec int64, nsec uint32) {
	in.MtimeRaw, in.MtimeExtra = EncodeTime(sec, nsec)
	if !in.fits(0x8C) {
		in.MtimeExtra = 0
	}
}

// SetCtime stores a change time.
func (in *Inode) SetCtime(sec int64, nsec uint32) {
	in.CtimeRaw, in.CtimeExtra = EncodeTime(sec, nsec)
	if !in.fits(0x88) {
		in.CtimeExtra = 0
	}
}

// SetCrtime stores a creation time if the record has room for it.
func (in *Inode) SetCrtime(sec int64, nsec uint32) {
	if !in.fits(0x94) {
		return
	}
	in.CrtimeRaw, in.CrtimeExtra = EncodeTime(sec, nsec)
	if !in.fits(0x98) {
		in.CrtimeExtra = 0
	}
}

// IBlock returns i_block[i] as a little-endian word (i < 15).
func (in *Inode) IBlock(i int) uint32 { return binary.LittleEndian.Uint32(in.Block[4*i:]) }

// Device numbers of character and block special files live in i_block: the
// old 16-bit encoding (8-bit major and minor) in i_block[0], or, when that
// is zero, the Linux "new" 32-bit encoding in i_block[1].

// RdevMajorMinor decodes the device number as the kernel's ext4_iget does.
func (in *Inode) RdevMajorMinor() (major, minor uint32) {
	if b0 := in.IBlock(0); b0 != 0 {
		v := uint16(b0) // old_decode_dev takes a u16
		return uint32(v>>8) & 0xFF, uint32(v) & 0xFF
	}
	d := in.IBlock(1)
	return (d & 0xFFF00) >> 8, d&0xFF | (d>>12)&0xFFF00
}

// Rdev is the device number in the kernel's new_encode_dev form, the form
// stat(2) and FUSE carry.
func (in *Inode) Rdev() uint32 {
	major, minor := in.RdevMajorMinor()
	return NewEncodeDev(major, minor)
}

// NewEncodeDev packs major and minor like the kernel's new_encode_dev.
func NewEncodeDev(major, minor uint32) uint32 {
	return minor&0xFF | major<<8 | (minor&^0xFF)<<12
}

// SetRdev stores a device number the way the kernel's ext4 does: the old
// encoding when major and minor both fit a byte, else the new one in
// i_block[1] with i_block[0] zero.
func (in *Inode) SetRdev(major, minor uint32) {
	le := binary.LittleEndian
	clear(in.Block[:12])
	if major < 256 && minor < 256 {
		le.PutUint32(in.Block[0:], major<<8|minor)
		return
	}
	le.PutUint32(in.Block[4:], NewEncodeDev(major, minor))
}

// InodeCsumSeed is the per-inode checksum seed: crc32c(fs seed, le32 ino,
// le32 generation). Extent blocks, directory blocks and htree nodes of the
// inode are checksummed from it.
func InodeCsumSeed(fsSeed uint32, ino uint32, generation uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], ino)
	c := crc.Crc32c(fsSeed, b[:])
	binary.LittleEndian.PutUint32(b[:], generation)
	return crc.Crc32c(c, b[:])
}

// inodeChecksum computes the checksum of the encoded record rec: crc32c
// from the inode seed over the record with l_i_checksum_lo and (when
// i_extra_isize covers it) i_checksum_hi replaced by zeros. hasHi tells
// whether the stored checksum has its hi half.
func inodeChecksum(fsSeed, ino uint32, rec []byte) (sum uint32, hasHi bool, err error) {
	if !validInodeSize(len(rec)) {
		return 0, false, corrupt(inodeStruct, 0, "record is %d bytes", len(rec))
	}
	gen := binary.LittleEndian.Uint32(rec[0x64:])
	var zero [2]byte
	c := crc.Crc32c(InodeCsumSeed(fsSeed, ino, gen), rec[:inodeChecksumLoOff])
	c = crc.Crc32c(c, zero[:])
	c = crc.Crc32c(c, rec[inodeChecksumLoOff+2:GoodOldInodeSize])
	if len(rec) > GoodOldInodeSize {
		extra := int(binary.LittleEndian.Uint16(rec[inodeExtraIsizeOff:]))
		hasHi = GoodOldInodeSize+extra >= inodeChecksumHiOff+2
		c = crc.Crc32c(c, rec[GoodOldInodeSize:inodeChecksumHiOff])
		off := inodeChecksumHiOff
		if hasHi {
			c = crc.Crc32c(c, zero[:])
			off += 2
		}
		c = crc.Crc32c(c, rec[off:])
	}
	if !hasHi {
		c &= 0xFFFF
	}
	return c, hasHi, nil
}

// VerifyInodeChecksum checks the checksum of the encoded inode record rec
// (exactly s_inode_size bytes) of inode number ino, given the filesystem
// checksum seed (Superblock.CsumSeed). Call it only with metadata_csum.
func VerifyInodeChecksum(fsSeed, ino uint32, rec []byte) error {
	want, hasHi, err := inodeChecksum(fsSeed, ino, rec)
	if err != nil {
		return err
	}
	got := uint32(binary.LittleEndian.Uint16(rec[inodeChecksumLoOff:]))
	if hasHi {
		got |= uint32(binary.LittleEndian.Uint16(rec[inodeChecksumHiOff:])) << 16
	}
	if got != want {
		return badChecksum(inodeStruct, inodeChecksumLoOff, got, want)
	}
	return nil
}

// SetInodeChecksum recomputes and stores the checksum in the encoded record
// rec. It fails only for records too short to be inodes.
func SetInodeChecksum(fsSeed, ino uint32, rec []byte) error {
	sum, hasHi, err := inodeChecksum(fsSeed, ino, rec)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(rec[inodeChecksumLoOff:], uint16(sum))
	if hasHi {
		binary.LittleEndian.PutUint16(rec[inodeChecksumHiOff:], uint16(sum>>16))
	}
	return nil
}

// InodeIsUnused reports whether a record is all zeros (e.g. an itable
// slot never written under lazy_itable_init); such records have no valid
// checksum and the kernel accepts them.
func InodeIsUnused(rec []byte) bool {
	for _, c := range rec {
		if c != 0 {
			return false
		}
	}
	return true
}
