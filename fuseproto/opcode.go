package fuseproto

import "strconv"

// Protocol version this package describes.
const (
	KernelVersion      = 7  // FUSE_KERNEL_VERSION
	KernelMinorVersion = 45 // FUSE_KERNEL_MINOR_VERSION
)

// RootID is the nodeid of the root directory (FUSE_ROOT_ID).
const RootID = 1

// MinReadBuffer is the smallest read buffer the kernel accepts on /dev/fuse
// (FUSE_MIN_READ_BUFFER).
const MinReadBuffer = 8192

// UniqueResend is set in InHeader.Unique when the kernel resends a request
// after FUSE_NOTIFY_RESEND (FUSE_UNIQUE_RESEND, 7.40).
const UniqueResend = 1 << 63

// IntReqBit marks the unique of an INTERRUPT request: the kernel sends it as
// the interrupted request's unique with this bit set (FUSE_INT_REQ_BIT).
const IntReqBit = 1 << 0

// InvalidUIDGID is what the kernel puts in InHeader.Uid/Gid when
// FUSE_ALLOW_IDMAP is on and the id cannot be mapped (FUSE_INVALID_UIDGID).
const InvalidUIDGID = ^uint32(0)

// Opcode is enum fuse_opcode.
type Opcode uint32

const (
	OpLookup        Opcode = 1
	OpForget        Opcode = 2 // no reply
	OpGetattr       Opcode = 3
	OpSetattr       Opcode = 4
	OpReadlink      Opcode = 5
	OpSymlink       Opcode = 6
	OpMknod         Opcode = 8
	OpMkdir         Opcode = 9
	OpUnlink        Opcode = 10
	OpRmdir         Opcode = 11
	OpRename        Opcode = 12
	OpLink          Opcode = 13
	OpOpen          Opcode = 14
	OpRead          Opcode = 15
	OpWrite         Opcode = 16
	OpStatfs        Opcode = 17
	OpRelease       Opcode = 18
	OpFsync         Opcode = 20
	OpSetxattr      Opcode = 21
	OpGetxattr      Opcode = 22
	OpListxattr     Opcode = 23
	OpRemovexattr   Opcode = 24
	OpFlush         Opcode = 25
	OpInit          Opcode = 26
	OpOpendir       Opcode = 27
	OpReaddir       Opcode = 28
	OpReleasedir    Opcode = 29
	OpFsyncdir      Opcode = 30
	OpGetlk         Opcode = 31 // 7.7
	OpSetlk         Opcode = 32 // 7.7
	OpSetlkw        Opcode = 33 // 7.7
	OpAccess        Opcode = 34 // 7.3
	OpCreate        Opcode = 35 // 7.3
	OpInterrupt     Opcode = 36 // 7.7
	OpBmap          Opcode = 37 // 7.8
	OpDestroy       Opcode = 38 // 7.8
	OpIoctl         Opcode = 39 // 7.11
	OpPoll          Opcode = 40 // 7.11
	OpNotifyReply   Opcode = 41 // 7.15, no reply
	OpBatchForget   Opcode = 42 // 7.16, no reply
	OpFallocate     Opcode = 43 // 7.19
	OpReaddirplus   Opcode = 44 // 7.21
	OpRename2       Opcode = 45 // 7.23
	OpLseek         Opcode = 46 // 7.24
	OpCopyFileRange Opcode = 47 // 7.28
	OpSetupmapping  Opcode = 48 // 7.31, virtiofs DAX
	OpRemovemapping Opcode = 49 // 7.31, virtiofs DAX
	OpSyncfs        Opcode = 50 // 7.34
	OpTmpfile       Opcode = 51 // 7.37
	OpStatx         Opcode = 52 // 7.39
	// OpCopyFileRange64 returns CopyFileRangeOut (64-bit count) instead of
	// WriteOut.
	OpCopyFileRange64 Opcode = 53 // 7.45

	CuseInit Opcode = 4096 // CUSE_INIT

	// Reserved values that reveal an endianness mismatch.
	CuseInitBswapReserved Opcode = 1048576   // CUSE_INIT << 8
	InitBswapReserved     Opcode = 436207616 // FUSE_INIT << 24
)

// opcodeNames names every known opcode. Adding an opcode (e.g. the iomap
// ones in iomap.go) is one line here.
var opcodeNames = map[Opcode]string{
	OpLookup:          "LOOKUP",
	OpForget:          "FORGET",
	OpGetattr:         "GETATTR",
	OpSetattr:         "SETATTR",
	OpReadlink:        "READLINK",
	OpSymlink:         "SYMLINK",
	OpMknod:           "MKNOD",
	OpMkdir:           "MKDIR",
	OpUnlink:          "UNLINK",
	OpRmdir:           "RMDIR",
	OpRename:          "RENAME",
	OpLink:            "LINK",
	OpOpen:            "OPEN",
	OpRead:            "READ",
	OpWrite:           "WRITE",
	OpStatfs:          "STATFS",
	OpRelease:         "RELEASE",
	OpFsync:           "FSYNC",
	OpSetxattr:        "SETXATTR",
	OpGetxattr:        "GETXATTR",
	OpListxattr:       "LISTXATTR",
	OpRemovexattr:     "REMOVEXATTR",
	OpFlush:           "FLUSH",
	OpInit:            "INIT",
	OpOpendir:         "OPENDIR",
	OpReaddir:         "READDIR",
	OpReleasedir:      "RELEASEDIR",
	OpFsyncdir:        "FSYNCDIR",
	OpGetlk:           "GETLK",
	OpSetlk:           "SETLK",
	OpSetlkw:          "SETLKW",
	OpAccess:          "ACCESS",
	OpCreate:          "CREATE",
	OpInterrupt:       "INTERRUPT",
	OpBmap:            "BMAP",
	OpDestroy:         "DESTROY",
	OpIoctl:           "IOCTL",
	OpPoll:            "POLL",
	OpNotifyReply:     "NOTIFY_REPLY",
	OpBatchForget:     "BATCH_FORGET",
	OpFallocate:       "FALLOCATE",
	OpReaddirplus:     "READDIRPLUS",
	OpRename2:         "RENAME2",
	OpLseek:           "LSEEK",
	OpCopyFileRange:   "COPY_FILE_RANGE",
	OpSetupmapping:    "SETUPMAPPING",
	OpRemovemapping:   "REMOVEMAPPING",
	OpSyncfs:          "SYNCFS",
	OpTmpfile:         "TMPFILE",
	OpStatx:           "STATX",
	OpCopyFileRange64: "COPY_FILE_RANGE_64",
	CuseInit:          "CUSE_INIT",
}

func (op Opcode) String() string {
	if s, ok := opcodeNames[op]; ok {
		return s
	}
	return "OPCODE(" + strconv.FormatUint(uint64(op), 10) + ")"
}

// NotifyCode is enum fuse_notify_code; it travels in OutHeader.Error of a
// message with Unique 0.
type NotifyCode int32

const (
	NotifyPoll       NotifyCode = 1 // 7.11
	NotifyInvalInode NotifyCode = 2 // 7.12
	NotifyInvalEntry NotifyCode = 3 // 7.12
	NotifyStore      NotifyCode = 4 // 7.15
	NotifyRetrieve   NotifyCode = 5 // 7.15
	NotifyDelete     NotifyCode = 6 // 7.18
	NotifyResend     NotifyCode = 7 // 7.40
	NotifyIncEpoch   NotifyCode = 8 // 7.44
	NotifyPrune      NotifyCode = 9 // 7.45
)

var notifyNames = map[NotifyCode]string{
	NotifyPoll:       "POLL",
	NotifyInvalInode: "INVAL_INODE",
	NotifyInvalEntry: "INVAL_ENTRY",
	NotifyStore:      "STORE",
	NotifyRetrieve:   "RETRIEVE",
	NotifyDelete:     "DELETE",
	NotifyResend:     "RESEND",
	NotifyIncEpoch:   "INC_EPOCH",
	NotifyPrune:      "PRUNE",
}

func (c NotifyCode) String() string {
	if s, ok := notifyNames[c]; ok {
		return "NOTIFY_" + s
	}
	return "NOTIFY(" + strconv.FormatInt(int64(c), 10) + ")"
}
