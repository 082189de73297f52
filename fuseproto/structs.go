package fuseproto

import "time"

// Compat sizes: how long a struct was before a later minor grew it. Older
// kernels send (or expect) these shorter forms.
const (
	CompatEntryOutSize   = 120  // FUSE_COMPAT_ENTRY_OUT_SIZE, minor < 9
	CompatAttrOutSize    = 96   // FUSE_COMPAT_ATTR_OUT_SIZE, minor < 9
	CompatMknodInSize    = 8    // FUSE_COMPAT_MKNOD_IN_SIZE, minor < 12
	CompatWriteInSize    = 24   // FUSE_COMPAT_WRITE_IN_SIZE, minor < 9
	CompatStatfsSize     = 48   // FUSE_COMPAT_STATFS_SIZE, minor < 4
	CompatSetxattrInSize = 8    // FUSE_COMPAT_SETXATTR_IN_SIZE, without SETXATTR_EXT
	CompatInitOutSize    = 8    // FUSE_COMPAT_INIT_OUT_SIZE, minor < 5
	Compat22InitOutSize  = 24   // FUSE_COMPAT_22_INIT_OUT_SIZE, minor < 23
	CompatReadInSize     = 24   // fuse_read_in before 7.9 (no lock_owner/flags)
	CompatInitInSize     = 16   // fuse_init_in before 7.36 (no flags2/unused)
	CuseInitInfoMax      = 4096 // CUSE_INIT_INFO_MAX
)

// InHeader is struct fuse_in_header, the head of every request.
type InHeader struct {
	Len         uint32 // 0x00 total request length, header included
	Opcode      Opcode // 0x04
	Unique      uint64 // 0x08
	NodeID      uint64 // 0x10
	Uid         uint32 // 0x18
	Gid         uint32 // 0x1c
	Pid         uint32 // 0x20
	TotalExtlen uint16 // 0x24 length of extensions in 8-byte units (7.38)
	Padding     uint16 // 0x26
}

// OutHeader is struct fuse_out_header, the head of every reply and notify.
type OutHeader struct {
	Len    uint32 // 0x00 total reply length, header included
	Error  int32  // 0x04 -errno, or NotifyCode when Unique == 0
	Unique uint64 // 0x08
}

// Attr is struct fuse_attr.
type Attr struct {
	Ino       uint64    // 0x00
	Size      uint64    // 0x08
	Blocks    uint64    // 0x10 in 512-byte units
	Atime     uint64    // 0x18
	Mtime     uint64    // 0x20
	Ctime     uint64    // 0x28
	Atimensec uint32    // 0x30
	Mtimensec uint32    // 0x34
	Ctimensec uint32    // 0x38
	Mode      uint32    // 0x3c
	Nlink     uint32    // 0x40
	Uid       uint32    // 0x44
	Gid       uint32    // 0x48
	Rdev      uint32    // 0x4c
	Blksize   uint32    // 0x50 (7.9)
	Flags     AttrFlags // 0x54 (7.32)
}

// SetTimes sets Atime/Mtime/Ctime with their nanosecond parts.
func (a *Attr) SetTimes(atime, mtime, ctime time.Time) {
	a.Atime, a.Atimensec = splitTime(atime)
	a.Mtime, a.Mtimensec = splitTime(mtime)
	a.Ctime, a.Ctimensec = splitTime(ctime)
}

func splitTime(t time.Time) (uint64, uint32) {
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// SxTime is struct fuse_sx_time (statx timestamp).
type SxTime struct {
	Sec      int64  // 0x00 tv_sec
	Nsec     uint32 // 0x08 tv_nsec
	Reserved int32  // 0x0c __reserved
}

// Statx is struct fuse_statx, bit-compatible with struct statx.
type Statx struct {
	Mask           uint32     // 0x00
	Blksize        uint32     // 0x04
	Attributes     uint64     // 0x08
	Nlink          uint32     // 0x10
	Uid            uint32     // 0x14
	Gid            uint32     // 0x18
	Mode           uint16     // 0x1c
	Spare0         [1]uint16  // 0x1e __spare0
	Ino            uint64     // 0x20
	Size           uint64     // 0x28
	Blocks         uint64     // 0x30
	AttributesMask uint64     // 0x38
	Atime          SxTime     // 0x40
	Btime          SxTime     // 0x50
	Ctime          SxTime     // 0x60
	Mtime          SxTime     // 0x70
	RdevMajor      uint32     // 0x80
	RdevMinor      uint32     // 0x84
	DevMajor       uint32     // 0x88
	DevMinor       uint32     // 0x8c
	Spare2         [14]uint64 // 0x90 __spare2
}

// Kstatfs is struct fuse_kstatfs.
type Kstatfs struct {
	Blocks  uint64    // 0x00
	Bfree   uint64    // 0x08
	Bavail  uint64    // 0x10
	Files   uint64    // 0x18
	Ffree   uint64    // 0x20
	Bsize   uint32    // 0x28
	Namelen uint32    // 0x2c
	Frsize  uint32    // 0x30 (7.4)
	Padding uint32    // 0x34
	Spare   [6]uint32 // 0x38
}

// FileLock is struct fuse_file_lock.
type FileLock struct {
	Start uint64 // 0x00
	End   uint64 // 0x08
	Type  uint32 // 0x10
	Pid   uint32 // 0x14 tgid
}

// EntryOut is struct fuse_entry_out, the reply to LOOKUP and the creating
// opcodes.
type EntryOut struct {
	NodeID         uint64 // 0x00
	Generation     uint64 // 0x08 nodeid:generation is unique for the fs's lifetime
	EntryValid     uint64 // 0x10 seconds the name may be cached
	AttrValid      uint64 // 0x18 seconds the attributes may be cached
	EntryValidNsec uint32 // 0x20
	AttrValidNsec  uint32 // 0x24
	Attr           Attr   // 0x28
}

// SetEntryTimeout sets EntryValid/EntryValidNsec from d.
func (e *EntryOut) SetEntryTimeout(d time.Duration) {
	e.EntryValid, e.EntryValidNsec = splitDuration(d)
}

// SetAttrTimeout sets AttrValid/AttrValidNsec from d.
func (e *EntryOut) SetAttrTimeout(d time.Duration) {
	e.AttrValid, e.AttrValidNsec = splitDuration(d)
}

func splitDuration(d time.Duration) (uint64, uint32) {
	if d <= 0 {
		return 0, 0
	}
	return uint64(d / time.Second), uint32(d % time.Second)
}

// ForgetIn is struct fuse_forget_in.
type ForgetIn struct {
	Nlookup uint64 // 0x00
}

// ForgetOne is struct fuse_forget_one, an element of BATCH_FORGET.
type ForgetOne struct {
	NodeID  uint64 // 0x00
	Nlookup uint64 // 0x08
}

// BatchForgetIn is struct fuse_batch_forget_in; Count ForgetOne follow.
type BatchForgetIn struct {
	Count uint32 // 0x00
	Dummy uint32 // 0x04
}

// GetattrIn is struct fuse_getattr_in (7.9).
type GetattrIn struct {
	GetattrFlags GetattrFlags // 0x00
	Dummy        uint32       // 0x04
	Fh           uint64       // 0x08 valid with GetattrFh
}

// AttrOut is struct fuse_attr_out.
type AttrOut struct {
	AttrValid     uint64 // 0x00
	AttrValidNsec uint32 // 0x08
	Dummy         uint32 // 0x0c
	Attr          Attr   // 0x10
}

// SetAttrTimeout sets AttrValid/AttrValidNsec from d.
func (a *AttrOut) SetAttrTimeout(d time.Duration) {
	a.AttrValid, a.AttrValidNsec = splitDuration(d)
}

// StatxIn is struct fuse_statx_in (7.39).
type StatxIn struct {
	GetattrFlags GetattrFlags // 0x00
	Reserved     uint32       // 0x04
	Fh           uint64       // 0x08
	SxFlags      uint32       // 0x10 AT_STATX_* and AT_* flags
	SxMask       uint32       // 0x14 STATX_* mask
}

// StatxOut is struct fuse_statx_out (7.39).
type StatxOut struct {
	AttrValid     uint64    // 0x00
	AttrValidNsec uint32    // 0x08
	Flags         uint32    // 0x0c
	Spare         [2]uint64 // 0x10
	Stat          Statx     // 0x20
}

// MknodIn is struct fuse_mknod_in.
type MknodIn struct {
	Mode    uint32 // 0x00
	Rdev    uint32 // 0x04
	Umask   uint32 // 0x08 (7.12)
	Padding uint32 // 0x0c
}

// MkdirIn is struct fuse_mkdir_in.
type MkdirIn struct {
	Mode  uint32 // 0x00
	Umask uint32 // 0x04 (7.12)
}

// RenameIn is struct fuse_rename_in (RENAME).
type RenameIn struct {
	Newdir uint64 // 0x00
}

// Rename2In is struct fuse_rename2_in (RENAME2, 7.23).
type Rename2In struct {
	Newdir  uint64 // 0x00
	Flags   uint32 // 0x08 RENAME_NOREPLACE/EXCHANGE/WHITEOUT
	Padding uint32 // 0x0c
}

// LinkIn is struct fuse_link_in.
type LinkIn struct {
	Oldnodeid uint64 // 0x00
}

// SetattrIn is struct fuse_setattr_in.
type SetattrIn struct {
	Valid     SetattrValid // 0x00
	Padding   uint32       // 0x04
	Fh        uint64       // 0x08
	Size      uint64       // 0x10
	LockOwner uint64       // 0x18
	Atime     uint64       // 0x20
	Mtime     uint64       // 0x28
	Ctime     uint64       // 0x30
	Atimensec uint32       // 0x38
	Mtimensec uint32       // 0x3c
	Ctimensec uint32       // 0x40
	Mode      uint32       // 0x44
	Unused4   uint32       // 0x48
	Uid       uint32       // 0x4c
	Gid       uint32       // 0x50
	Unused5   uint32       // 0x54
}

// OpenIn is struct fuse_open_in (OPEN, OPENDIR).
type OpenIn struct {
	Flags     uint32      // 0x00 open(2) flags
	OpenFlags OpenInFlags // 0x04 (7.33)
}

// CreateIn is struct fuse_create_in (CREATE, TMPFILE).
type CreateIn struct {
	Flags     uint32      // 0x00 open(2) flags
	Mode      uint32      // 0x04
	Umask     uint32      // 0x08
	OpenFlags OpenInFlags // 0x0c (7.33)
}

// OpenOut is struct fuse_open_out.
type OpenOut struct {
	Fh        uint64       // 0x00
	OpenFlags OpenOutFlags // 0x08
	BackingID int32        // 0x0c (7.40, with FopenPassthrough)
}

// CreateOut is the CREATE/TMPFILE reply: fuse_entry_out then fuse_open_out.
type CreateOut struct {
	Entry EntryOut // 0x00
	Open  OpenOut  // 0x80
}

// ReleaseIn is struct fuse_release_in (RELEASE, RELEASEDIR).
type ReleaseIn struct {
	Fh           uint64       // 0x00
	Flags        uint32       // 0x08 open(2) flags
	ReleaseFlags ReleaseFlags // 0x0c
	LockOwner    uint64       // 0x10
}

// FlushIn is struct fuse_flush_in.
type FlushIn struct {
	Fh        uint64 // 0x00
	Unused    uint32 // 0x08
	Padding   uint32 // 0x0c
	LockOwner uint64 // 0x10
}

// ReadIn is struct fuse_read_in (READ, READDIR, READDIRPLUS).
type ReadIn struct {
	Fh        uint64    // 0x00
	Offset    uint64    // 0x08
	Size      uint32    // 0x10
	ReadFlags ReadFlags // 0x14
	LockOwner uint64    // 0x18 (7.9)
	Flags     uint32    // 0x20 open(2) flags (7.9)
	Padding   uint32    // 0x24
}

// WriteIn is struct fuse_write_in; Size bytes of data follow.
type WriteIn struct {
	Fh         uint64     // 0x00
	Offset     uint64     // 0x08
	Size       uint32     // 0x10
	WriteFlags WriteFlags // 0x14
	LockOwner  uint64     // 0x18 (7.9)
	Flags      uint32     // 0x20 open(2) flags (7.9)
	Padding    uint32     // 0x24
}

// WriteOut is struct fuse_write_out.
type WriteOut struct {
	Size    uint32 // 0x00
	Padding uint32 // 0x04
}

// StatfsOut is struct fuse_statfs_out.
type StatfsOut struct {
	St Kstatfs // 0x00
}

// FsyncIn is struct fuse_fsync_in (FSYNC, FSYNCDIR).
type FsyncIn struct {
	Fh         uint64     // 0x00
	FsyncFlags FsyncFlags // 0x08
	Padding    uint32     // 0x0c
}

// SetxattrIn is struct fuse_setxattr_in. Without SETXATTR_EXT the kernel
// sends only the first CompatSetxattrInSize bytes; the name and Size bytes of
// value follow.
type SetxattrIn struct {
	Size          uint32        // 0x00 value length
	Flags         uint32        // 0x04 XATTR_CREATE/XATTR_REPLACE
	SetxattrFlags SetxattrFlags // 0x08 (7.33, SETXATTR_EXT)
	Padding       uint32        // 0x0c
}

// GetxattrIn is struct fuse_getxattr_in (GETXATTR, LISTXATTR).
type GetxattrIn struct {
	Size    uint32 // 0x00 0 = report the needed size
	Padding uint32 // 0x04
}

// GetxattrOut is struct fuse_getxattr_out, the size-probe reply.
type GetxattrOut struct {
	Size    uint32 // 0x00
	Padding uint32 // 0x04
}

// LkIn is struct fuse_lk_in (GETLK, SETLK, SETLKW).
type LkIn struct {
	Fh      uint64   // 0x00
	Owner   uint64   // 0x08
	Lk      FileLock // 0x10
	LkFlags LkFlags  // 0x28
	Padding uint32   // 0x2c
}

// LkOut is struct fuse_lk_out.
type LkOut struct {
	Lk FileLock // 0x00
}

// AccessIn is struct fuse_access_in.
type AccessIn struct {
	Mask    uint32 // 0x00 R_OK|W_OK|X_OK
	Padding uint32 // 0x04
}

// InitIn is struct fuse_init_in. Kernels before 7.36 send only the first
// CompatInitInSize bytes.
type InitIn struct {
	Major        uint32     // 0x00
	Minor        uint32     // 0x04
	MaxReadahead uint32     // 0x08
	Flags        uint32     // 0x0c InitFlags bits 0-31
	Flags2       uint32     // 0x10 InitFlags bits 32-63 (7.36)
	Unused       [11]uint32 // 0x14
}

// Flags64 joins Flags and Flags2; Flags2 counts only when InitExt is set.
func (in *InitIn) Flags64() InitFlags {
	f := InitFlags(in.Flags)
	if f&InitExt != 0 {
		f |= InitFlags(in.Flags2) << 32
	}
	return f
}

// InitOut is struct fuse_init_out. Kernels before 7.23 expect only the first
// Compat22InitOutSize bytes.
type InitOut struct {
	Major               uint32     // 0x00
	Minor               uint32     // 0x04
	MaxReadahead        uint32     // 0x08
	Flags               uint32     // 0x0c InitFlags bits 0-31
	MaxBackground       uint16     // 0x10 (7.13)
	CongestionThreshold uint16     // 0x12 (7.13)
	MaxWrite            uint32     // 0x14
	TimeGran            uint32     // 0x18 (7.23)
	MaxPages            uint16     // 0x1c (7.28)
	MapAlignment        uint16     // 0x1e (7.31)
	Flags2              uint32     // 0x20 InitFlags bits 32-63 (7.36)
	MaxStackDepth       uint32     // 0x24 (7.40)
	RequestTimeout      uint16     // 0x28 seconds (7.43)
	Unused              [11]uint16 // 0x2a
}

// Flags64 joins Flags and Flags2.
func (out *InitOut) Flags64() InitFlags { return JoinInitFlags(out.Flags, out.Flags2) }

// SetFlags64 splits f into Flags and Flags2.
func (out *InitOut) SetFlags64(f InitFlags) { out.Flags, out.Flags2 = f.Split() }

// CuseInitIn is struct cuse_init_in.
type CuseInitIn struct {
	Major  uint32 // 0x00
	Minor  uint32 // 0x04
	Unused uint32 // 0x08
	Flags  uint32 // 0x0c
}

// CuseInitOut is struct cuse_init_out.
type CuseInitOut struct {
	Major    uint32     // 0x00
	Minor    uint32     // 0x04
	Unused   uint32     // 0x08
	Flags    uint32     // 0x0c
	MaxRead  uint32     // 0x10
	MaxWrite uint32     // 0x14
	DevMajor uint32     // 0x18
	DevMinor uint32     // 0x1c
	Spare    [10]uint32 // 0x20
}

// InterruptIn is struct fuse_interrupt_in.
type InterruptIn struct {
	Unique uint64 // 0x00 the request to interrupt
}

// BmapIn is struct fuse_bmap_in.
type BmapIn struct {
	Block     uint64 // 0x00
	Blocksize uint32 // 0x08
	Padding   uint32 // 0x0c
}

// BmapOut is struct fuse_bmap_out.
type BmapOut struct {
	Block uint64 // 0x00
}

// IoctlIn is struct fuse_ioctl_in; InSize bytes of input follow.
type IoctlIn struct {
	Fh      uint64     // 0x00
	Flags   IoctlFlags // 0x08
	Cmd     uint32     // 0x0c
	Arg     uint64     // 0x10
	InSize  uint32     // 0x18
	OutSize uint32     // 0x1c
}

// IoctlIovec is struct fuse_ioctl_iovec.
type IoctlIovec struct {
	Base uint64 // 0x00
	Len  uint64 // 0x08
}

// IoctlOut is struct fuse_ioctl_out.
type IoctlOut struct {
	Result  int32      // 0x00
	Flags   IoctlFlags // 0x04
	InIovs  uint32     // 0x08
	OutIovs uint32     // 0x0c
}

// PollIn is struct fuse_poll_in.
type PollIn struct {
	Fh     uint64    // 0x00
	Kh     uint64    // 0x08
	Flags  PollFlags // 0x10
	Events uint32    // 0x14 (7.21)
}

// PollOut is struct fuse_poll_out.
type PollOut struct {
	Revents uint32 // 0x00
	Padding uint32 // 0x04
}

// NotifyPollWakeupOut is struct fuse_notify_poll_wakeup_out.
type NotifyPollWakeupOut struct {
	Kh uint64 // 0x00
}

// FallocateIn is struct fuse_fallocate_in (7.19).
type FallocateIn struct {
	Fh      uint64 // 0x00
	Offset  uint64 // 0x08
	Length  uint64 // 0x10
	Mode    uint32 // 0x18 FALLOC_FL_*
	Padding uint32 // 0x1c
}

// Dirent is struct fuse_dirent; Namelen bytes of name follow, then padding
// to DirentAlign.
type Dirent struct {
	Ino     uint64 // 0x00
	Off     uint64 // 0x08 cookie of the next entry
	Namelen uint32 // 0x10
	Type    uint32 // 0x14 DT_* (mode >> 12)
}

// Direntplus is struct fuse_direntplus; the name follows as for Dirent.
type Direntplus struct {
	EntryOut EntryOut // 0x00
	Dirent   Dirent   // 0x80
}

// Dirent layout: FUSE_DIRENT_ALIGN, FUSE_NAME_OFFSET and
// FUSE_NAME_OFFSET_DIRENTPLUS.
const (
	DirentAlign          = 8
	DirentNameOffset     = 24
	DirentplusNameOffset = 152
)

// DirentAlignSize is FUSE_DIRENT_ALIGN: x rounded up to 8.
func DirentAlignSize(x int) int { return (x + DirentAlign - 1) &^ (DirentAlign - 1) }

// DirentSize is FUSE_DIRENT_SIZE for a name of namelen bytes.
func DirentSize(namelen int) int { return DirentAlignSize(DirentNameOffset + namelen) }

// DirentplusSize is FUSE_DIRENTPLUS_SIZE for a name of namelen bytes.
func DirentplusSize(namelen int) int { return DirentAlignSize(DirentplusNameOffset + namelen) }

// NotifyInvalInodeOut is struct fuse_notify_inval_inode_out.
type NotifyInvalInodeOut struct {
	Ino uint64 // 0x00
	Off int64  // 0x08
	Len int64  // 0x10 <= 0: to the end
}

// NotifyInvalEntryOut is struct fuse_notify_inval_entry_out; the name and a
// NUL follow.
type NotifyInvalEntryOut struct {
	Parent  uint64          // 0x00
	Namelen uint32          // 0x08
	Flags   InvalEntryFlags // 0x0c (7.38)
}

// NotifyDeleteOut is struct fuse_notify_delete_out; the name and a NUL follow.
type NotifyDeleteOut struct {
	Parent  uint64 // 0x00
	Child   uint64 // 0x08
	Namelen uint32 // 0x10
	Padding uint32 // 0x14
}

// NotifyStoreOut is struct fuse_notify_store_out; Size bytes of data follow.
type NotifyStoreOut struct {
	NodeID  uint64 // 0x00
	Offset  uint64 // 0x08
	Size    uint32 // 0x10
	Padding uint32 // 0x14
}

// NotifyRetrieveOut is struct fuse_notify_retrieve_out.
type NotifyRetrieveOut struct {
	NotifyUnique uint64 // 0x00
	NodeID       uint64 // 0x08
	Offset       uint64 // 0x10
	Size         uint32 // 0x18
	Padding      uint32 // 0x1c
}

// NotifyRetrieveIn is struct fuse_notify_retrieve_in, the NOTIFY_REPLY body;
// it matches the size of WriteIn.
type NotifyRetrieveIn struct {
	Dummy1 uint64 // 0x00
	Offset uint64 // 0x08
	Size   uint32 // 0x10
	Dummy2 uint32 // 0x14
	Dummy3 uint64 // 0x18
	Dummy4 uint64 // 0x20
}

// NotifyPruneOut is struct fuse_notify_prune_out (7.45); Count nodeids
// (uint64) follow.
type NotifyPruneOut struct {
	Count   uint32 // 0x00
	Padding uint32 // 0x04
	Spare   uint64 // 0x08
}

// BackingMap is struct fuse_backing_map (FUSE_DEV_IOC_BACKING_OPEN, 7.40).
type BackingMap struct {
	Fd      int32  // 0x00
	Flags   uint32 // 0x04
	Padding uint64 // 0x08
}

// LseekIn is struct fuse_lseek_in (7.24).
type LseekIn struct {
	Fh      uint64 // 0x00
	Offset  uint64 // 0x08
	Whence  uint32 // 0x10 SEEK_DATA/SEEK_HOLE (others are handled by the kernel)
	Padding uint32 // 0x14
}

// LseekOut is struct fuse_lseek_out.
type LseekOut struct {
	Offset uint64 // 0x00
}

// CopyFileRangeIn is struct fuse_copy_file_range_in (7.28); header NodeID is
// the source inode.
type CopyFileRangeIn struct {
	FhIn      uint64 // 0x00
	OffIn     uint64 // 0x08
	NodeidOut uint64 // 0x10
	FhOut     uint64 // 0x18
	OffOut    uint64 // 0x20
	Len       uint64 // 0x28
	Flags     uint64 // 0x30
}

// CopyFileRangeOut is struct fuse_copy_file_range_out, the
// COPY_FILE_RANGE_64 reply (7.45).
type CopyFileRangeOut struct {
	BytesCopied uint64 // 0x00
}

// SetupmappingIn is struct fuse_setupmapping_in (virtiofs DAX, 7.31).
type SetupmappingIn struct {
	Fh      uint64 // 0x00
	Foffset uint64 // 0x08
	Len     uint64 // 0x10
	Flags   uint64 // 0x18
	Moffset uint64 // 0x20
}

// RemovemappingIn is struct fuse_removemapping_in; Count
// RemovemappingOne follow.
type RemovemappingIn struct {
	Count uint32 // 0x00
}

// RemovemappingOne is struct fuse_removemapping_one.
type RemovemappingOne struct {
	Moffset uint64 // 0x00
	Len     uint64 // 0x08
}

// SyncfsIn is struct fuse_syncfs_in (7.34).
type SyncfsIn struct {
	Padding uint64 // 0x00
}

// Secctx is struct fuse_secctx; the context name and label follow.
type Secctx struct {
	Size    uint32 // 0x00
	Padding uint32 // 0x04
}

// SecctxHeader is struct fuse_secctx_header (7.36).
type SecctxHeader struct {
	Size     uint32 // 0x00 total, this header included
	NrSecctx uint32 // 0x04
}

// ExtHeader is struct fuse_ext_header (7.38), the head of a request extension.
type ExtHeader struct {
	Size uint32 // 0x00 total, this header included
	Type uint32 // 0x04 > MaxNrSecctx
}

// SuppGroups is struct fuse_supp_groups (7.38); NrGroups uint32 gids follow.
type SuppGroups struct {
	NrGroups uint32 // 0x00
}
