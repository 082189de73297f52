package fuseproto

// fuse-iomap: the kernel asks the server for file-to-disk mappings
// (IOMAP_BEGIN/END/IOEND upcalls) and does the data I/O itself, straight to
// a block device the server registered.
//
// Revision tracked: this file is the ABI of the seed RFC, "[RFC[RAP]] fuse:
// use fs-iomap for better performance so we can containerize ext4" (Darrick
// J. Wong, linux-fsdevel, May 2025), which bumps the protocol to minor 44. No stock
// kernel carries it (Linux 6.18 does not): a kernel built from that series
// is found with the FUSE_DEV_IOC_IOMAP_SUPPORT ioctl, never from the minor,
// because mainline gave 7.44 to other things (see NotifyAddIomapDevice).
//
// Later postings of the series (RFC v2 to v8, 2025-2026) changed the ABI;
// none of this is implemented here:
//   - FUSE_IOMAP_CONFIG = 4092 (filesystem geometry), and FREEZE_FS 4089,
//     UNFREEZE_FS 4090, SHUTDOWN_FS 4091;
//   - a placeholder minor, 7.99;
//   - a single FUSE_IOMAP INIT bit plus a per-inode FUSE_ATTR_IOMAP;
//   - devices registered with FUSE_DEV_IOC_BACKING_OPEN (flag
//     FUSE_BACKING_TYPE_IOMAP) instead of NOTIFY_ADD_IOMAP_DEVICE;
//   - renumbered constants (PURE_OVERWRITE 255, DEV_NULL 0, F_* and IOEND_*
//     bits), begin_out as two 32-byte fuse_iomap_io records, end_in with a
//     map offset, a 48-byte ioend_in with a reply, block-alignment checks,
//     and the discovery ioctl moved to _IOR(229, 99, ...).
//
// Every revision-specific value lives in this file, and names are
// registered into the shared tables from init below, so tracking a new
// revision means replacing this file (and its test) and nothing else here.

import (
	"fmt"
	"strconv"
	"syscall"
)

// IomapMinorVersion is the protocol minor the seed series introduced. The
// kernel never checks it; libfuse refuses NOTIFY_ADD_IOMAP_DEVICE below it.
const IomapMinorVersion = 44

// Opcodes (enum fuse_opcode). Every request's nodeid is the inode's nodeid.
const (
	OpIomapIoend Opcode = 4093 // IomapIoendIn; header-only reply
	OpIomapBegin Opcode = 4094 // IomapBeginIn; reply IomapBeginOut (exactly 48 bytes)
	OpIomapEnd   Opcode = 4095 // IomapEndIn; header-only reply
)

// INIT flags. They are above bit 31, so they travel in flags2 (bits 11-13)
// and need InitExt. DIRECTIO and PAGECACHE count only together with
// InitIomap.
const (
	InitIomap          InitFlags = 1 << 43 // FIEMAP, SEEK_DATA/SEEK_HOLE, bmap
	InitIomapDirectIO  InitFlags = 1 << 44 // O_DIRECT reads and writes
	InitIomapPagecache InitFlags = 1 << 45 // buffered I/O, mmap, writeback

	InitIomapAll = InitIomap | InitIomapDirectIO | InitIomapPagecache
)

// NotifyAddIomapDevice registers a block device (payload IomapAddDeviceOut).
// Mainline later gave the same code, 8, to NotifyIncEpoch: the two are the
// same number meaning different things on different kernels, which is why
// it is a separate constant here and not an entry of the shared table.
const NotifyAddIomapDevice NotifyCode = 8

// IomapType is a mapping type (FUSE_IOMAP_TYPE_*, equal to the kernel's
// IOMAP_* types).
type IomapType uint16

const (
	IomapTypeHole      IomapType = 0 // reads as zeros; no disk space
	IomapTypeDelalloc  IomapType = 1 // space reserved, not allocated
	IomapTypeMapped    IomapType = 2 // data at addr
	IomapTypeUnwritten IomapType = 3 // allocated at addr, reads as zeros
	IomapTypeInline    IomapType = 4 // data in the inode; only for REPORT
	// IomapTypePureOverwrite, as the write mapping only, means "write
	// through the read mapping" (not an out-of-place write).
	IomapTypePureOverwrite IomapType = 0xFFFF
)

var iomapTypeNames = map[IomapType]string{
	IomapTypeHole:          "HOLE",
	IomapTypeDelalloc:      "DELALLOC",
	IomapTypeMapped:        "MAPPED",
	IomapTypeUnwritten:     "UNWRITTEN",
	IomapTypeInline:        "INLINE",
	IomapTypePureOverwrite: "PURE_OVERWRITE",
}

func (t IomapType) String() string {
	if s, ok := iomapTypeNames[t]; ok {
		return s
	}
	return "TYPE(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Valid reports whether the seed kernel accepts t (fuse_iomap_check_type).
// It accepts PURE_OVERWRITE in the read mapping too, a kernel bug a server
// must not rely on.
func (t IomapType) Valid() bool {
	_, ok := iomapTypeNames[t]
	return ok
}

// IomapFlags are mapping flags (FUSE_IOMAP_F_*, equal to the kernel's
// IOMAP_F_*).
type IomapFlags uint16

const (
	IomapFNew       IomapFlags = 0x0001 // freshly allocated blocks
	IomapFDirty     IomapFlags = 0x0002 // metadata not yet on disk
	IomapFShared    IomapFlags = 0x0004 // shared blocks (COW)
	IomapFMerged    IomapFlags = 0x0008 // merged from several extents
	IomapFXattr     IomapFlags = 0x0020 // xattr mapping
	IomapFBoundary  IomapFlags = 0x0040 // don't merge I/O across the end
	IomapFAnonWrite IomapFlags = 0x0080 // address decided at I/O time
	IomapFAtomicBio IomapFlags = 0x0100 // atomic write bio
	// IomapFWantIomapEnd (IOMAP_F_PRIVATE) makes the kernel send
	// IOMAP_END after the mapping is used.
	IomapFWantIomapEnd IomapFlags = 0x1000
	IomapFSizeChanged  IomapFlags = 0x4000 // only in IOMAP_END: i_size grew
	IomapFStale        IomapFlags = 0x8000 // only in IOMAP_END: mapping went stale

	// IomapBeginFlagsMask is every flag a BEGIN reply may carry
	// (FUSE_IOMAP_F_ALL); 0x0010 (IOMAP_F_BUFFER_HEAD) is not one.
	IomapBeginFlagsMask IomapFlags = 0x11EF
)

var iomapFlagNames = []flagName{
	{uint64(IomapFNew), "NEW"},
	{uint64(IomapFDirty), "DIRTY"},
	{uint64(IomapFShared), "SHARED"},
	{uint64(IomapFMerged), "MERGED"},
	{uint64(IomapFXattr), "XATTR"},
	{uint64(IomapFBoundary), "BOUNDARY"},
	{uint64(IomapFAnonWrite), "ANON_WRITE"},
	{uint64(IomapFAtomicBio), "ATOMIC_BIO"},
	{uint64(IomapFWantIomapEnd), "WANT_IOMAP_END"},
	{uint64(IomapFSizeChanged), "SIZE_CHANGED"},
	{uint64(IomapFStale), "STALE"},
}

func (f IomapFlags) String() string { return formatFlags(uint64(f), iomapFlagNames) }

// IomapOpFlags are the opflags of BEGIN and END (FUSE_IOMAP_OP_*, the
// kernel's IOMAP_* operation flags passed through raw).
type IomapOpFlags uint32

const (
	IomapOpWrite         IomapOpFlags = 0x001
	IomapOpZero          IomapOpFlags = 0x002
	IomapOpReport        IomapOpFlags = 0x004 // FIEMAP, SEEK_DATA/HOLE, bmap
	IomapOpFault         IomapOpFlags = 0x008
	IomapOpDirect        IomapOpFlags = 0x010 // also set by writeback
	IomapOpNowait        IomapOpFlags = 0x020
	IomapOpOverwriteOnly IomapOpFlags = 0x040
	IomapOpUnshare       IomapOpFlags = 0x080
	IomapOpAtomic        IomapOpFlags = 0x200 // 0x100 is IOMAP_DAX, unnamed in the seed
	IomapOpDontcache     IomapOpFlags = 0x400
)

var iomapOpNames = []flagName{
	{uint64(IomapOpWrite), "WRITE"},
	{uint64(IomapOpZero), "ZERO"},
	{uint64(IomapOpReport), "REPORT"},
	{uint64(IomapOpFault), "FAULT"},
	{uint64(IomapOpDirect), "DIRECT"},
	{uint64(IomapOpNowait), "NOWAIT"},
	{uint64(IomapOpOverwriteOnly), "OVERWRITE_ONLY"},
	{uint64(IomapOpUnshare), "UNSHARE"},
	{uint64(IomapOpAtomic), "ATOMIC"},
	{uint64(IomapOpDontcache), "DONTCACHE"},
}

// String renders the flags; 0 (a plain read) is "READ".
func (f IomapOpFlags) String() string {
	if f == 0 {
		return "READ"
	}
	return formatFlags(uint64(f), iomapOpNames)
}

// IomapIoendFlags are IomapIoendIn.Ioendflags (FUSE_IOMAP_IOEND_*).
type IomapIoendFlags uint16

const (
	IomapIoendShared    IomapIoendFlags = 0x0001 // out-of-place write
	IomapIoendUnwritten IomapIoendFlags = 0x0002 // wrote into unwritten extents
	IomapIoendBoundary  IomapIoendFlags = 0x0004 // never sent by the seed kernel
	IomapIoendDirect    IomapIoendFlags = 0x0008 // O_DIRECT completion
	IomapIoendAppend    IomapIoendFlags = 0x8000 // pos+written is past the in-core i_size
)

var iomapIoendNames = []flagName{
	{uint64(IomapIoendShared), "SHARED"},
	{uint64(IomapIoendUnwritten), "UNWRITTEN"},
	{uint64(IomapIoendBoundary), "BOUNDARY"},
	{uint64(IomapIoendDirect), "DIRECT"},
	{uint64(IomapIoendAppend), "APPEND"},
}

func (f IomapIoendFlags) String() string { return formatFlags(uint64(f), iomapIoendNames) }

// Device cookies and the null address.
const (
	// IomapDevFuseblk is the cookie of a fuseblk mount's own block device,
	// which the kernel registers at INIT.
	IomapDevFuseblk uint32 = 0
	// IomapDevNull is "no device"; the kernel rejects it in any mapping.
	IomapDevNull uint32 = 0xFFFFFFFF
	// IomapNullAddr is "addr is not valid" (holes, delalloc, inline).
	IomapNullAddr uint64 = 0xFFFFFFFFFFFFFFFF
)

// IomapBeginIn is struct fuse_iomap_begin_in.
type IomapBeginIn struct {
	Opflags  IomapOpFlags // 0x00
	Reserved uint32       // 0x04
	AttrIno  uint64       // 0x08 fuse_attr.ino last reported for the inode
	Pos      uint64       // 0x10 file position, bytes
	Count    uint64       // 0x18 remaining length of the operation; never 0
}

// IomapBeginOut is struct fuse_iomap_begin_out. Both mappings cover
// [Offset, Offset+Length); addresses are byte offsets on the device.
type IomapBeginOut struct {
	Offset     uint64     // 0x00
	Length     uint64     // 0x08
	ReadAddr   uint64     // 0x10
	ReadType   IomapType  // 0x18
	ReadFlags  IomapFlags // 0x1a
	ReadDev    uint32     // 0x1c device cookie
	WriteAddr  uint64     // 0x20
	WriteType  IomapType  // 0x28 PURE_OVERWRITE: use the read mapping
	WriteFlags IomapFlags // 0x2a
	WriteDev   uint32     // 0x2c
}

// IomapEndIn is struct fuse_iomap_end_in. There is no map offset: the
// mapping is the one that served [Pos, Pos+Count).
type IomapEndIn struct {
	Opflags   IomapOpFlags // 0x00
	Reserved  uint32       // 0x04
	AttrIno   uint64       // 0x08
	Pos       uint64       // 0x10
	Count     uint64       // 0x18
	Written   int64        // 0x20 bytes processed
	MapLength uint64       // 0x28
	MapAddr   uint64       // 0x30
	MapType   IomapType    // 0x38
	MapFlags  IomapFlags   // 0x3a may include SIZE_CHANGED, STALE
	MapDev    uint32       // 0x3c never filled by the seed kernel: 0
}

// IomapIoendIn is struct fuse_iomap_ioend_in.
type IomapIoendIn struct {
	Ioendflags IomapIoendFlags // 0x00
	Reserved   uint16          // 0x02
	Error      int32           // 0x04 negative errno or 0
	AttrIno    uint64          // 0x08
	Pos        uint64          // 0x10
	NewAddr    uint64          // 0x18 always IomapNullAddr in the seed
	Written    uint32          // 0x20 the kernel's size_t, truncated
	Reserved1  uint32          // 0x24
}

// IomapAddDeviceOut is struct fuse_iomap_add_device_out, the payload of
// NotifyAddIomapDevice. MapDev is a pointer into the server's memory: the
// kernel put_user()s the cookie there while handling the write, so it must
// point at live memory the Go runtime does not move (a heap variable kept
// alive across the write). The struct is 16 bytes on 64-bit and 12 on
// 32-bit, and the kernel wants its own size exactly.
type IomapAddDeviceOut struct {
	Fd       int32   // 0x00 block device fd in the writing process
	Reserved uint32  // 0x04 must be 0
	MapDev   *uint32 // 0x08 where the kernel stores the cookie
}

// IomapSupport is fuse_iomap_support.flags, the answer of the
// FUSE_DEV_IOC_IOMAP_SUPPORT ioctl: which iomap modes the kernel can do.
type IomapSupport uint64

const (
	IomapSupportBasics    IomapSupport = 1 << 0 // FUSE_IOMAP
	IomapSupportDirectIO  IomapSupport = 1 << 1 // FUSE_IOMAP_DIRECTIO
	IomapSupportPagecache IomapSupport = 1 << 2 // FUSE_IOMAP_PAGECACHE

	IomapSupportAll = IomapSupportBasics | IomapSupportDirectIO | IomapSupportPagecache
)

var iomapSupportNames = []flagName{
	{uint64(IomapSupportBasics), "BASICS"},
	{uint64(IomapSupportDirectIO), "DIRECTIO"},
	{uint64(IomapSupportPagecache), "PAGECACHE"},
}

func (s IomapSupport) String() string { return formatFlags(uint64(s), iomapSupportNames) }

// InitFlags returns the INIT bits matching s; unknown bits are dropped.
func (s IomapSupport) InitFlags() InitFlags {
	var f InitFlags
	if s&IomapSupportBasics != 0 {
		f |= InitIomap
	}
	if s&IomapSupportDirectIO != 0 {
		f |= InitIomapDirectIO
	}
	if s&IomapSupportPagecache != 0 {
		f |= InitIomapPagecache
	}
	return f
}

// IomapSupportOut is struct fuse_iomap_support, filled by the ioctl.
type IomapSupportOut struct {
	Flags   IomapSupport // 0x00
	Padding uint64       // 0x08
}

// DevIocIomapSupport is FUSE_DEV_IOC_IOMAP_SUPPORT =
// _IOR(FUSE_DEV_IOC_MAGIC 229, 3, struct fuse_iomap_support) in the
// asm-generic encoding (x86, arm64). It works on a freshly opened /dev/fuse
// and needs CAP_SYS_ADMIN. Mainline's FUSE_DEV_IOC_SYNC_INIT is _IO(229, 3)
// = 0xE503: same number, different direction and size, so no clash.
const DevIocIomapSupport uint32 = iocRead<<30 | 16<<16 | devIocMagic<<8 | 3

const (
	devIocMagic = 229 // FUSE_DEV_IOC_MAGIC
	iocRead     = 2   // _IOC_READ
)

// IomapCheck names one check of the seed kernel's fuse_iomap_validate, in
// the order the kernel runs them.
type IomapCheck int

const (
	IomapCheckReadDev    IomapCheck = iota + 1 // read_dev == DEV_NULL
	IomapCheckWriteDev                         // write_dev == DEV_NULL (even for PURE_OVERWRITE)
	IomapCheckOffset                           // offset > pos
	IomapCheckLength                           // length == 0
	IomapCheckEnd                              // offset+length <= pos (u64, wrapping)
	IomapCheckWriteType                        // unknown write_type
	IomapCheckWriteFlags                       // write_flags outside IomapBeginFlagsMask
	IomapCheckReadType                         // unknown read_type
	IomapCheckReadFlags                        // read_flags outside IomapBeginFlagsMask
	IomapCheckInline                           // INLINE mapping outside REPORT
)

var iomapCheckNames = map[IomapCheck]string{
	IomapCheckReadDev:    "read_dev is DEV_NULL",
	IomapCheckWriteDev:   "write_dev is DEV_NULL",
	IomapCheckOffset:     "offset is past pos",
	IomapCheckLength:     "length is 0",
	IomapCheckEnd:        "mapping ends at or before pos",
	IomapCheckWriteType:  "unknown write_type",
	IomapCheckWriteFlags: "write_flags outside 0x11ef",
	IomapCheckReadType:   "unknown read_type",
	IomapCheckReadFlags:  "read_flags outside 0x11ef",
	IomapCheckInline:     "INLINE mapping outside REPORT",
}

func (c IomapCheck) String() string {
	if s, ok := iomapCheckNames[c]; ok {
		return s
	}
	return "check(" + strconv.Itoa(int(c)) + ")"
}

// IomapReplyError is a BEGIN reply the seed kernel would reject. It
// unwraps to EIO, the errno the kernel's I/O path then returns.
type IomapReplyError struct {
	Check   IomapCheck
	Opflags IomapOpFlags
	Pos     uint64
	Out     IomapBeginOut
}

func (e *IomapReplyError) Error() string {
	o := &e.Out
	return fmt.Sprintf("iomap begin reply rejected (%v): op %v pos %d: offset %d length %d read{%v %v dev %#x addr %#x} write{%v %v dev %#x addr %#x}",
		e.Check, e.Opflags, e.Pos, o.Offset, o.Length,
		o.ReadType, o.ReadFlags, o.ReadDev, o.ReadAddr,
		o.WriteType, o.WriteFlags, o.WriteDev, o.WriteAddr)
}

func (e *IomapReplyError) Unwrap() error { return syscall.EIO }

// ValidateBeginOut applies the seed kernel's fuse_iomap_validate to a BEGIN
// reply for a request with the given opflags and pos, running the checks
// in the kernel's order and reporting the first that fails. It does not
// resolve device cookies: the kernel then answers ENODEV for a cookie that
// is not registered, for every mapping type including HOLE. Alignment,
// addr != NULL_ADDR for MAPPED and the reserved fields are not checked by
// the seed kernel either.
func ValidateBeginOut(opflags IomapOpFlags, pos uint64, out *IomapBeginOut) error {
	check := IomapCheck(0)
	switch {
	case out.ReadDev == IomapDevNull:
		check = IomapCheckReadDev
	case out.WriteDev == IomapDevNull:
		check = IomapCheckWriteDev
	case out.Offset > pos:
		check = IomapCheckOffset
	case out.Length == 0:
		check = IomapCheckLength
	case out.Offset+out.Length <= pos: // u64 sum like the kernel's: a wrap is rejected
		check = IomapCheckEnd
	case !out.WriteType.Valid():
		check = IomapCheckWriteType
	case out.WriteFlags&^IomapBeginFlagsMask != 0:
		check = IomapCheckWriteFlags
	case !out.ReadType.Valid():
		check = IomapCheckReadType
	case out.ReadFlags&^IomapBeginFlagsMask != 0:
		check = IomapCheckReadFlags
	case opflags&IomapOpReport == 0 &&
		(out.ReadType == IomapTypeInline || out.WriteType == IomapTypeInline):
		check = IomapCheckInline
	default:
		return nil
	}
	return &IomapReplyError{Check: check, Opflags: opflags, Pos: pos, Out: *out}
}

// OutOfPlace reports whether the kernel treats a reply as an out-of-place
// write: the write mapping becomes the iomap and the read mapping its
// source. Otherwise only the read mapping is used.
func (out *IomapBeginOut) OutOfPlace(opflags IomapOpFlags) bool {
	return opflags&IomapOpWrite != 0 && out.WriteType != IomapTypePureOverwrite
}

// Register the iomap names in the shared tables, keeping this revision's
// values in this one file.
func init() {
	opcodeNames[OpIomapIoend] = "IOMAP_IOEND"
	opcodeNames[OpIomapBegin] = "IOMAP_BEGIN"
	opcodeNames[OpIomapEnd] = "IOMAP_END"
	initFlagNames = append(initFlagNames,
		flagName{uint64(InitIomap), "IOMAP"},
		flagName{uint64(InitIomapDirectIO), "IOMAP_DIRECTIO"},
		flagName{uint64(InitIomapPagecache), "IOMAP_PAGECACHE"},
	)
}
