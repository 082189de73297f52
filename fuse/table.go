package fuse

import (
	"syscall"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// opInfo is one opcode's dispatch record.
type opInfo struct {
	in      int  // fixed input struct size; the request must carry it
	minIn   int  // smaller size older kernels send (zero-extended); 0 = in
	names   int  // NUL-terminated names after the fixed input
	noReply bool // the kernel expects no reply
	inline  bool // served on the reader goroutine (quick, ordered)
	opens   bool // yields a file descriptor the kernel may POLL: waits for the poll probe
	// fn serves the request and returns the reply payload (a typed struct
	// as bytes, then optional data) or an errno.
	fn func(s *Server, c *call) (out, data []byte, errno syscall.Errno)
}

// sz is unsafe.Sizeof as an int, for the table.
func sz[T any]() int {
	var v T
	return int(unsafe.Sizeof(v))
}

// opTable is the single dispatch table. Opcodes absent here (SETUPMAPPING,
// REMOVEMAPPING, CUSE_INIT, unknown ones) are answered ENOSYS, and so is
// POLL, always (see pollprobe.go). Names come from fuseproto.Opcode.String. Adding an opcode (e.g.
// the iomap ones) is one line here plus its handler.
var opTable = map[fuseproto.Opcode]opInfo{
	fuseproto.OpInit:            {in: sz[fuseproto.InitIn](), minIn: fuseproto.CompatInitInSize, inline: true, fn: doInit},
	fuseproto.OpDestroy:         {fn: doDestroy},
	fuseproto.OpForget:          {in: sz[fuseproto.ForgetIn](), noReply: true, inline: true, fn: doForget},
	fuseproto.OpBatchForget:     {in: sz[fuseproto.BatchForgetIn](), noReply: true, inline: true, fn: doBatchForget},
	fuseproto.OpInterrupt:       {in: sz[fuseproto.InterruptIn](), noReply: true, inline: true, fn: doInterrupt},
	fuseproto.OpNotifyReply:     {noReply: true, inline: true, fn: doNotifyReply},
	fuseproto.OpLookup:          {names: 1, fn: doLookup},
	fuseproto.OpGetattr:         {in: sz[fuseproto.GetattrIn](), fn: doGetattr},
	fuseproto.OpSetattr:         {in: sz[fuseproto.SetattrIn](), fn: doSetattr},
	fuseproto.OpReadlink:        {fn: doReadlink},
	fuseproto.OpSymlink:         {names: 2, fn: doSymlink},
	fuseproto.OpMknod:           {in: sz[fuseproto.MknodIn](), names: 1, fn: doMknod},
	fuseproto.OpMkdir:           {in: sz[fuseproto.MkdirIn](), names: 1, fn: doMkdir},
	fuseproto.OpUnlink:          {names: 1, fn: doUnlink},
	fuseproto.OpRmdir:           {names: 1, fn: doRmdir},
	fuseproto.OpRename:          {in: sz[fuseproto.RenameIn](), names: 2, fn: doRename},
	fuseproto.OpRename2:         {in: sz[fuseproto.Rename2In](), names: 2, fn: doRename2},
	fuseproto.OpLink:            {in: sz[fuseproto.LinkIn](), names: 1, fn: doLink},
	fuseproto.OpOpen:            {in: sz[fuseproto.OpenIn](), opens: true, fn: doOpen},
	fuseproto.OpRead:            {in: sz[fuseproto.ReadIn](), fn: doRead},
	fuseproto.OpWrite:           {in: sz[fuseproto.WriteIn](), fn: doWrite},
	fuseproto.OpStatfs:          {fn: doStatfs},
	fuseproto.OpRelease:         {in: sz[fuseproto.ReleaseIn](), fn: doRelease},
	fuseproto.OpFsync:           {in: sz[fuseproto.FsyncIn](), fn: doFsync},
	fuseproto.OpSetxattr:        {in: sz[fuseproto.SetxattrIn](), names: 1, fn: doSetxattr}, // 8 bytes without SETXATTR_EXT
	fuseproto.OpGetxattr:        {in: sz[fuseproto.GetxattrIn](), names: 1, fn: doGetxattr},
	fuseproto.OpListxattr:       {in: sz[fuseproto.GetxattrIn](), fn: doListxattr},
	fuseproto.OpRemovexattr:     {names: 1, fn: doRemovexattr},
	fuseproto.OpFlush:           {in: sz[fuseproto.FlushIn](), fn: doFlush},
	fuseproto.OpOpendir:         {in: sz[fuseproto.OpenIn](), fn: doOpendir},
	fuseproto.OpReaddir:         {in: sz[fuseproto.ReadIn](), fn: doReaddir},
	fuseproto.OpReaddirplus:     {in: sz[fuseproto.ReadIn](), fn: doReaddirplus},
	fuseproto.OpReleasedir:      {in: sz[fuseproto.ReleaseIn](), fn: doReleasedir},
	fuseproto.OpFsyncdir:        {in: sz[fuseproto.FsyncIn](), fn: doFsyncdir},
	fuseproto.OpGetlk:           {in: sz[fuseproto.LkIn](), fn: doGetlk},
	fuseproto.OpSetlk:           {in: sz[fuseproto.LkIn](), fn: doSetlk},
	fuseproto.OpSetlkw:          {in: sz[fuseproto.LkIn](), fn: doSetlkw},
	fuseproto.OpAccess:          {in: sz[fuseproto.AccessIn](), fn: doAccess},
	fuseproto.OpCreate:          {in: sz[fuseproto.CreateIn](), names: 1, opens: true, fn: doCreate},
	fuseproto.OpTmpfile:         {in: sz[fuseproto.CreateIn](), opens: true, fn: doTmpfile},
	fuseproto.OpBmap:            {in: sz[fuseproto.BmapIn](), fn: doBmap},
	fuseproto.OpIoctl:           {in: sz[fuseproto.IoctlIn](), fn: doIoctl},
	fuseproto.OpFallocate:       {in: sz[fuseproto.FallocateIn](), fn: doFallocate},
	fuseproto.OpLseek:           {in: sz[fuseproto.LseekIn](), fn: doLseek},
	fuseproto.OpCopyFileRange:   {in: sz[fuseproto.CopyFileRangeIn](), fn: doCopyFileRange},
	fuseproto.OpCopyFileRange64: {in: sz[fuseproto.CopyFileRangeIn](), fn: doCopyFileRange64},
	fuseproto.OpSyncfs:          {in: sz[fuseproto.SyncfsIn](), fn: doSyncfs},
	fuseproto.OpStatx:           {in: sz[fuseproto.StatxIn](), fn: doStatx},
	fuseproto.OpIomapBegin:      {in: sz[fuseproto.IomapBeginIn](), fn: doIomapBegin},
	fuseproto.OpIomapEnd:        {in: sz[fuseproto.IomapEndIn](), fn: doIomapEnd},
	fuseproto.OpIomapIoend:      {in: sz[fuseproto.IomapIoendIn](), fn: doIomapIoend},
	fuseproto.OpPoll:            {in: sz[fuseproto.PollIn](), fn: doPoll},
}
