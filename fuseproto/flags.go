package fuseproto

import (
	"strconv"
	"strings"
)

// flagName names one bit (or multi-bit value) of a flag family.
type flagName struct {
	bit  uint64
	name string
}

// formatFlags renders v as NAME|NAME|0x..., with unknown bits in hex at the
// end, in the style of debug/elf's flagName tables.
func formatFlags(v uint64, names []flagName) string {
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	for _, n := range names {
		if v&n.bit == n.bit && n.bit != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n.name)
			v &^= n.bit
		}
	}
	if v != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString("0x")
		b.WriteString(strconv.FormatUint(v, 16))
	}
	return b.String()
}

// InitFlags are the INIT capability bits as one 64-bit value. On the wire
// bits 0-31 travel in Flags and bits 32-63 in Flags2, the latter only when
// both sides set InitExt (7.36).
type InitFlags uint64

const (
	InitAsyncRead         InitFlags = 1 << 0
	InitPosixLocks        InitFlags = 1 << 1
	InitFileOps           InitFlags = 1 << 2
	InitAtomicOTrunc      InitFlags = 1 << 3
	InitExportSupport     InitFlags = 1 << 4
	InitBigWrites         InitFlags = 1 << 5
	InitDontMask          InitFlags = 1 << 6
	InitSpliceWrite       InitFlags = 1 << 7  // 7.14
	InitSpliceMove        InitFlags = 1 << 8  // 7.14
	InitSpliceRead        InitFlags = 1 << 9  // 7.14
	InitFlockLocks        InitFlags = 1 << 10 // 7.17
	InitHasIoctlDir       InitFlags = 1 << 11 // 7.18
	InitAutoInvalData     InitFlags = 1 << 12 // 7.20
	InitDoReaddirplus     InitFlags = 1 << 13 // 7.21
	InitReaddirplusAuto   InitFlags = 1 << 14 // 7.21
	InitAsyncDIO          InitFlags = 1 << 15 // 7.22
	InitWritebackCache    InitFlags = 1 << 16 // 7.23
	InitNoOpenSupport     InitFlags = 1 << 17 // 7.23
	InitParallelDirops    InitFlags = 1 << 18 // 7.25
	InitHandleKillpriv    InitFlags = 1 << 19 // 7.26
	InitPosixACL          InitFlags = 1 << 20 // 7.26
	InitAbortError        InitFlags = 1 << 21 // 7.27
	InitMaxPages          InitFlags = 1 << 22 // 7.28
	InitCacheSymlinks     InitFlags = 1 << 23 // 7.28
	InitNoOpendirSupport  InitFlags = 1 << 24 // 7.29
	InitExplicitInvalData InitFlags = 1 << 25 // 7.30
	InitMapAlignment      InitFlags = 1 << 26 // 7.31
	InitSubmounts         InitFlags = 1 << 27 // 7.32
	InitHandleKillprivV2  InitFlags = 1 << 28 // 7.33
	InitSetxattrExt       InitFlags = 1 << 29 // 7.33
	InitExt               InitFlags = 1 << 30 // 7.36: flags2 is valid
	InitReserved          InitFlags = 1 << 31 // 7.36: reserved, do not use
	InitSecurityCtx       InitFlags = 1 << 32 // 7.36
	InitHasInodeDAX       InitFlags = 1 << 33 // 7.36
	InitCreateSuppGroup   InitFlags = 1 << 34 // 7.38
	InitHasExpireOnly     InitFlags = 1 << 35 // 7.38
	InitDirectIOAllowMmap InitFlags = 1 << 36 // 7.39
	InitPassthrough       InitFlags = 1 << 37 // 7.40
	InitNoExportSupport   InitFlags = 1 << 38 // 7.40
	InitHasResend         InitFlags = 1 << 39 // 7.40
	InitAllowIdmap        InitFlags = 1 << 40 // 7.41
	InitOverIOUring       InitFlags = 1 << 41 // 7.42
	InitRequestTimeout    InitFlags = 1 << 42 // 7.43

	// InitDirectIORelax is the obsolete name of InitDirectIOAllowMmap.
	InitDirectIORelax = InitDirectIOAllowMmap
)

var initFlagNames = []flagName{
	{uint64(InitAsyncRead), "ASYNC_READ"},
	{uint64(InitPosixLocks), "POSIX_LOCKS"},
	{uint64(InitFileOps), "FILE_OPS"},
	{uint64(InitAtomicOTrunc), "ATOMIC_O_TRUNC"},
	{uint64(InitExportSupport), "EXPORT_SUPPORT"},
	{uint64(InitBigWrites), "BIG_WRITES"},
	{uint64(InitDontMask), "DONT_MASK"},
	{uint64(InitSpliceWrite), "SPLICE_WRITE"},
	{uint64(InitSpliceMove), "SPLICE_MOVE"},
	{uint64(InitSpliceRead), "SPLICE_READ"},
	{uint64(InitFlockLocks), "FLOCK_LOCKS"},
	{uint64(InitHasIoctlDir), "HAS_IOCTL_DIR"},
	{uint64(InitAutoInvalData), "AUTO_INVAL_DATA"},
	{uint64(InitDoReaddirplus), "DO_READDIRPLUS"},
	{uint64(InitReaddirplusAuto), "READDIRPLUS_AUTO"},
	{uint64(InitAsyncDIO), "ASYNC_DIO"},
	{uint64(InitWritebackCache), "WRITEBACK_CACHE"},
	{uint64(InitNoOpenSupport), "NO_OPEN_SUPPORT"},
	{uint64(InitParallelDirops), "PARALLEL_DIROPS"},
	{uint64(InitHandleKillpriv), "HANDLE_KILLPRIV"},
	{uint64(InitPosixACL), "POSIX_ACL"},
	{uint64(InitAbortError), "ABORT_ERROR"},
	{uint64(InitMaxPages), "MAX_PAGES"},
	{uint64(InitCacheSymlinks), "CACHE_SYMLINKS"},
	{uint64(InitNoOpendirSupport), "NO_OPENDIR_SUPPORT"},
	{uint64(InitExplicitInvalData), "EXPLICIT_INVAL_DATA"},
	{uint64(InitMapAlignment), "MAP_ALIGNMENT"},
	{uint64(InitSubmounts), "SUBMOUNTS"},
	{uint64(InitHandleKillprivV2), "HANDLE_KILLPRIV_V2"},
	{uint64(InitSetxattrExt), "SETXATTR_EXT"},
	{uint64(InitExt), "INIT_EXT"},
	{uint64(InitReserved), "INIT_RESERVED"},
	{uint64(InitSecurityCtx), "SECURITY_CTX"},
	{uint64(InitHasInodeDAX), "HAS_INODE_DAX"},
	{uint64(InitCreateSuppGroup), "CREATE_SUPP_GROUP"},
	{uint64(InitHasExpireOnly), "HAS_EXPIRE_ONLY"},
	{uint64(InitDirectIOAllowMmap), "DIRECT_IO_ALLOW_MMAP"},
	{uint64(InitPassthrough), "PASSTHROUGH"},
	{uint64(InitNoExportSupport), "NO_EXPORT_SUPPORT"},
	{uint64(InitHasResend), "HAS_RESEND"},
	{uint64(InitAllowIdmap), "ALLOW_IDMAP"},
	{uint64(InitOverIOUring), "OVER_IO_URING"},
	{uint64(InitRequestTimeout), "REQUEST_TIMEOUT"},
}

func (f InitFlags) String() string { return formatFlags(uint64(f), initFlagNames) }

// Split returns the wire halves: flags (bits 0-31) and flags2 (bits 32-63).
func (f InitFlags) Split() (flags, flags2 uint32) { return uint32(f), uint32(f >> 32) }

// JoinInitFlags is the inverse of Split.
func JoinInitFlags(flags, flags2 uint32) InitFlags {
	return InitFlags(flags) | InitFlags(flags2)<<32
}

// SetattrValid is fuse_setattr_in.valid: which SetattrIn fields to apply.
type SetattrValid uint32

const (
	FattrMode        SetattrValid = 1 << 0
	FattrUid         SetattrValid = 1 << 1
	FattrGid         SetattrValid = 1 << 2
	FattrSize        SetattrValid = 1 << 3
	FattrAtime       SetattrValid = 1 << 4
	FattrMtime       SetattrValid = 1 << 5
	FattrFh          SetattrValid = 1 << 6
	FattrAtimeNow    SetattrValid = 1 << 7  // 7.9
	FattrMtimeNow    SetattrValid = 1 << 8  // 7.9
	FattrLockowner   SetattrValid = 1 << 9  // 7.9
	FattrCtime       SetattrValid = 1 << 10 // 7.23
	FattrKillSuidgid SetattrValid = 1 << 11 // 7.33
)

var setattrNames = []flagName{
	{uint64(FattrMode), "MODE"},
	{uint64(FattrUid), "UID"},
	{uint64(FattrGid), "GID"},
	{uint64(FattrSize), "SIZE"},
	{uint64(FattrAtime), "ATIME"},
	{uint64(FattrMtime), "MTIME"},
	{uint64(FattrFh), "FH"},
	{uint64(FattrAtimeNow), "ATIME_NOW"},
	{uint64(FattrMtimeNow), "MTIME_NOW"},
	{uint64(FattrLockowner), "LOCKOWNER"},
	{uint64(FattrCtime), "CTIME"},
	{uint64(FattrKillSuidgid), "KILL_SUIDGID"},
}

func (v SetattrValid) String() string { return formatFlags(uint64(v), setattrNames) }

// OpenOutFlags is fuse_open_out.open_flags (FOPEN_*): how the kernel should
// treat an open file.
type OpenOutFlags uint32

const (
	FopenDirectIO             OpenOutFlags = 1 << 0
	FopenKeepCache            OpenOutFlags = 1 << 1
	FopenNonseekable          OpenOutFlags = 1 << 2 // 7.10
	FopenCacheDir             OpenOutFlags = 1 << 3 // 7.28
	FopenStream               OpenOutFlags = 1 << 4 // 7.31
	FopenNoflush              OpenOutFlags = 1 << 5 // 7.35
	FopenParallelDirectWrites OpenOutFlags = 1 << 6 // 7.38
	FopenPassthrough          OpenOutFlags = 1 << 7 // 7.40
)

var fopenNames = []flagName{
	{uint64(FopenDirectIO), "DIRECT_IO"},
	{uint64(FopenKeepCache), "KEEP_CACHE"},
	{uint64(FopenNonseekable), "NONSEEKABLE"},
	{uint64(FopenCacheDir), "CACHE_DIR"},
	{uint64(FopenStream), "STREAM"},
	{uint64(FopenNoflush), "NOFLUSH"},
	{uint64(FopenParallelDirectWrites), "PARALLEL_DIRECT_WRITES"},
	{uint64(FopenPassthrough), "PASSTHROUGH"},
}

func (f OpenOutFlags) String() string { return formatFlags(uint64(f), fopenNames) }

// OpenInFlags is fuse_open_in.open_flags / fuse_create_in.open_flags.
type OpenInFlags uint32

// OpenKillSuidgid asks the server to kill suid/sgid on open with O_TRUNC
// (FUSE_OPEN_KILL_SUIDGID, 7.33, with HANDLE_KILLPRIV_V2).
const OpenKillSuidgid OpenInFlags = 1 << 0

func (f OpenInFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(OpenKillSuidgid), "KILL_SUIDGID"}})
}

// ReleaseFlags is fuse_release_in.release_flags.
type ReleaseFlags uint32

const (
	ReleaseFlush       ReleaseFlags = 1 << 0
	ReleaseFlockUnlock ReleaseFlags = 1 << 1 // 7.17
)

func (f ReleaseFlags) String() string {
	return formatFlags(uint64(f), []flagName{
		{uint64(ReleaseFlush), "FLUSH"},
		{uint64(ReleaseFlockUnlock), "FLOCK_UNLOCK"},
	})
}

// GetattrFlags is fuse_getattr_in.getattr_flags.
type GetattrFlags uint32

// GetattrFh says GetattrIn.Fh is valid (FUSE_GETATTR_FH).
const GetattrFh GetattrFlags = 1 << 0

func (f GetattrFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(GetattrFh), "FH"}})
}

// LkFlags is fuse_lk_in.lk_flags.
type LkFlags uint32

// LkFlock marks a BSD flock() rather than a POSIX lock (FUSE_LK_FLOCK).
const LkFlock LkFlags = 1 << 0

func (f LkFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(LkFlock), "FLOCK"}})
}

// WriteFlags is fuse_write_in.write_flags.
type WriteFlags uint32

const (
	WriteCache       WriteFlags = 1 << 0 // delayed write from page cache; fh is guessed
	WriteLockowner   WriteFlags = 1 << 1 // lock_owner is valid
	WriteKillSuidgid WriteFlags = 1 << 2 // 7.31 (as WRITE_KILL_PRIV), 7.33
)

func (f WriteFlags) String() string {
	return formatFlags(uint64(f), []flagName{
		{uint64(WriteCache), "CACHE"},
		{uint64(WriteLockowner), "LOCKOWNER"},
		{uint64(WriteKillSuidgid), "KILL_SUIDGID"},
	})
}

// ReadFlags is fuse_read_in.read_flags.
type ReadFlags uint32

// ReadLockowner says ReadIn.LockOwner is valid (FUSE_READ_LOCKOWNER).
const ReadLockowner ReadFlags = 1 << 1

func (f ReadFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(ReadLockowner), "LOCKOWNER"}})
}

// IoctlFlags is fuse_ioctl_in.flags / fuse_ioctl_out.flags.
type IoctlFlags uint32

const (
	IoctlCompat       IoctlFlags = 1 << 0
	IoctlUnrestricted IoctlFlags = 1 << 1
	IoctlRetry        IoctlFlags = 1 << 2
	Ioctl32Bit        IoctlFlags = 1 << 3 // 7.16
	IoctlDir          IoctlFlags = 1 << 4 // 7.18
	IoctlCompatX32    IoctlFlags = 1 << 5 // 7.30
)

// IoctlMaxIov bounds in_iovs + out_iovs (FUSE_IOCTL_MAX_IOV).
const IoctlMaxIov = 256

func (f IoctlFlags) String() string {
	return formatFlags(uint64(f), []flagName{
		{uint64(IoctlCompat), "COMPAT"},
		{uint64(IoctlUnrestricted), "UNRESTRICTED"},
		{uint64(IoctlRetry), "RETRY"},
		{uint64(Ioctl32Bit), "32BIT"},
		{uint64(IoctlDir), "DIR"},
		{uint64(IoctlCompatX32), "COMPAT_X32"},
	})
}

// PollFlags is fuse_poll_in.flags.
type PollFlags uint32

// PollScheduleNotify asks for a NOTIFY_POLL wakeup (FUSE_POLL_SCHEDULE_NOTIFY).
const PollScheduleNotify PollFlags = 1 << 0

func (f PollFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(PollScheduleNotify), "SCHEDULE_NOTIFY"}})
}

// FsyncFlags is fuse_fsync_in.fsync_flags.
type FsyncFlags uint32

// FsyncFdatasync asks to sync data only (FUSE_FSYNC_FDATASYNC).
const FsyncFdatasync FsyncFlags = 1 << 0

func (f FsyncFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(FsyncFdatasync), "FDATASYNC"}})
}

// AttrFlags is fuse_attr.flags.
type AttrFlags uint32

const (
	AttrSubmount AttrFlags = 1 << 0 // 7.32: the object is a submount root
	AttrDAX      AttrFlags = 1 << 1 // 7.36: per-inode DAX
)

func (f AttrFlags) String() string {
	return formatFlags(uint64(f), []flagName{
		{uint64(AttrSubmount), "SUBMOUNT"},
		{uint64(AttrDAX), "DAX"},
	})
}

// SetxattrFlags is fuse_setxattr_in.setxattr_flags (7.33, SETXATTR_EXT).
type SetxattrFlags uint32

// SetxattrACLKillSgid asks to clear SGID when system.posix_acl_access is set.
const SetxattrACLKillSgid SetxattrFlags = 1 << 0

func (f SetxattrFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(SetxattrACLKillSgid), "ACL_KILL_SGID"}})
}

// InvalEntryFlags is fuse_notify_inval_entry_out.flags.
type InvalEntryFlags uint32

// ExpireOnly expires the dentry instead of dropping it (FUSE_EXPIRE_ONLY,
// 7.38; the kernel says it supports it with InitHasExpireOnly).
const ExpireOnly InvalEntryFlags = 1 << 0

func (f InvalEntryFlags) String() string {
	return formatFlags(uint64(f), []flagName{{uint64(ExpireOnly), "EXPIRE_ONLY"}})
}

// ExtType is the type of a request extension (struct fuse_ext_header), 7.38.
const (
	MaxNrSecctx = 31 // types 0..31 are reserved for fuse_secctx_header
	ExtGroups   = 32 // struct fuse_supp_groups
)

// RENAME2 flags (the renameat2 RENAME_* values the kernel passes through).
const (
	RenameNoreplace = 1 << 0
	RenameExchange  = 1 << 1
	RenameWhiteout  = 1 << 2
)

// Setupmapping flags (virtiofs DAX).
const (
	SetupmappingFlagWrite = 1 << 0
	SetupmappingFlagRead  = 1 << 1
)

// CuseUnrestrictedIoctl is the only CUSE INIT flag.
const CuseUnrestrictedIoctl = 1 << 0
