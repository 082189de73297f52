// Package server serves an ext4 filesystem (package ext4) to the kernel
// through the FUSE runtime (package fuse): it implements fuse.FileSystem
// over *ext4.FS.
//
// It owns the FUSE-facing policy: nodeid <-> inode numbering, lookup and
// open-handle counting (and so when an unlinked inode is freed),
// attribute and entry timeouts, open flags and caching modes, the INIT
// capabilities a read-write mount needs (writeback cache, POSIX ACLs),
// permission-related duties the kernel leaves to FUSE servers (umask and
// default-ACL inheritance at create, ACL update on chmod, set-ID
// clearing), atime, the errors= policy, the translation of library errors
// into errnos, and the data path engine (the seam where fuse-iomap plugs
// in). It may import fuse, fuseproto and ext4 only; it never reaches
// below ext4's API (no ext4/disk, no bcache, no blockdev).
//
// A read-write server runs every mutation through one ext4 public write
// call (each its own transaction); file data goes through the engine
// (engine.go), which allocates, writes at device offsets and completes
// writes the way fuse-iomap's begin/ioend upcalls will.
//
// # Concurrency
//
// Requests are served concurrently. *ext4.FS is safe for concurrent use.
// The server's own state is the node table, the corruption log and the
// per-inode data locks (dataLock), each behind its own mutex. A data lock
// is taken before calling into ext4 and held across the calls of one data
// operation (write, truncate, fallocate) so that blocks mapped for a
// write cannot be freed under it; at most one data lock is held at a
// time. The node table and corruption log mutexes are never held together
// nor while calling into ext4. Lock order: data lock, then ext4.
package server

import (
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// Options configure a Server.
type Options struct {
	// ReadOnly serves the image read-only: modifying requests answer
	// EROFS, and caching that is only safe when nothing changes is on.
	// A read-only *ext4.FS forces it.
	ReadOnly bool
	// Errors is what a read-write server does when a modifying request
	// meets corruption or a device error (errors=).
	Errors ErrorPolicy
	// Atime is the access-time update policy on read-write mounts. The
	// kernel leaves atime to FUSE servers.
	Atime AtimePolicy
	// NoWritebackCache keeps the kernel from caching writes on a
	// read-write mount (FUSE_WRITEBACK_CACHE is requested otherwise).
	NoWritebackCache bool
	// Shutdown is called once, on its own goroutine, when errors=panic
	// meets an error: it should unmount, which ends the session. Nil
	// leaves the server read-only instead.
	Shutdown func()
	// RemountReadOnly is called once, on its own goroutine, when
	// errors=remount-ro turns the server read-only, so the mount itself
	// can become read-only (write(2) then fails at once instead of at
	// writeback). May be nil.
	RemountReadOnly func()
	// Debug also logs, at debug level, the POSIX errors the server
	// answers with (ENOENT, ENODATA, ...), which are otherwise silent.
	// The one-line-per-request trace is fuse.Options.Debug.
	Debug bool
	// EntryTimeout and AttrTimeout are how long the kernel may cache
	// names and attributes. Zero means DefaultTimeout.
	EntryTimeout time.Duration
	AttrTimeout  time.Duration
	// Logger receives error reports; nil discards them.
	Logger *slog.Logger
}

// ErrorPolicy is the errors= mount option.
type ErrorPolicy uint8

const (
	// ErrorsContinue answers the failing request (EUCLEAN, EIO) and
	// carries on.
	ErrorsContinue ErrorPolicy = iota
	// ErrorsRemountRO answers the failing request and then refuses every
	// further modification with EROFS.
	ErrorsRemountRO
	// ErrorsPanic stops the server cleanly: modifications are refused,
	// what was written is flushed, and Options.Shutdown unmounts.
	ErrorsPanic
)

// AtimePolicy says when reads update the access time.
type AtimePolicy uint8

const (
	// AtimeRelative updates atime when it is not newer than mtime or
	// ctime, or is a day old (relatime, the kernel's default).
	AtimeRelative AtimePolicy = iota
	// AtimeNever never updates atime (noatime).
	AtimeNever
	// AtimeStrict updates atime on every read (strictatime).
	AtimeStrict
)

// DefaultTimeout is the entry and attribute timeout when Options leave
// them zero. Every change to the image goes through this server, and the
// kernel invalidates what its own requests change, so the kernel may
// cache for as long as it likes; an hour bounds the memory the kernel
// keeps for names it never revisits.
const DefaultTimeout = time.Hour

// Notifier is the part of *fuse.Server the server uses to tell the
// kernel about changes it did not make itself.
type Notifier interface {
	InvalInode(nodeID uint64, off, length int64) error
}

// Server implements fuse.FileSystem over an *ext4.FS.
type Server struct {
	fuse.NotImplemented

	fs        *ext4.FS
	opts      Options
	log       *slog.Logger
	blockSize int
	eng       engine
	nodes     *nodeTable
	errs      *errorReporter
	locks     dataLocks

	// ro is set for a read-only server, and later by errors=remount-ro
	// or errors=panic.
	ro        atomic.Bool
	stopping  atomic.Bool // errors=panic has fired
	notifier  atomic.Pointer[Notifier]
	destroyed atomic.Bool
}

var _ fuse.FileSystem = (*Server)(nil)

// New returns a server for fsys. The caller keeps ownership of fsys and
// closes it after the FUSE session ends (for a read-write FS that Close
// is the clean unmount).
func New(fsys *ext4.FS, opts Options) *Server {
	if opts.EntryTimeout == 0 {
		opts.EntryTimeout = DefaultTimeout
	}
	if opts.AttrTimeout == 0 {
		opts.AttrTimeout = DefaultTimeout
	}
	if fsys.ReadOnly() {
		opts.ReadOnly = true
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		fs:        fsys,
		opts:      opts,
		log:       log,
		blockSize: fsys.BlockSize(),
		eng:       engine{fs: fsys, bs: int64(fsys.BlockSize())},
		nodes:     newNodeTable(),
		errs:      newErrorReporter(log, opts.Debug),
	}
	s.ro.Store(opts.ReadOnly)
	return s
}

// SetNotifier gives the server the session's notification channel
// (a *fuse.Server), used to invalidate attributes the server changes on
// its own (atime). Without one the kernel sees such changes when its
// cache expires.
func (s *Server) SetNotifier(n Notifier) { s.notifier.Store(&n) }

// invalAttr drops the kernel's cached attributes of nodeid.
func (s *Server) invalAttr(nodeid uint64) {
	if p := s.notifier.Load(); p != nil {
		_ = (*p).InvalInode(nodeid, -1, 0) // ENOENT: nothing cached
	}
}

// readOnly reports whether modifications are refused.
func (s *Server) readOnly() bool { return s.ro.Load() }

// Init asks for POSIX_ACL (the kernel's ext4 enforces ACLs on read-only
// mounts too) and, on a read-write mount, for what the write path is
// built for (each only if the kernel offers it):
//   - WRITEBACK_CACHE: the kernel caches writes and owns size, mtime and
//     ctime of regular files, sending them back through WRITE and SETATTR;
//   - POSIX_ACL: the kernel enforces ACLs (stored as system.posix_acl_*);
//     it leaves inheritance at create and the ACL side of chmod to us;
//   - DONT_MASK: create modes come unmasked with the umask beside them,
//     because a parent's default ACL replaces the umask (posix_acl_create);
//   - SETXATTR_EXT: SETXATTR carries FUSE_SETXATTR_ACL_KILL_SGID.
//
// HANDLE_KILLPRIV(_V2) is not requested: the kernel clears set-ID bits
// itself and sends the result as a SETATTR mode.
func (s *Server) Init(r *fuse.Request, in *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno {
	want := fuseproto.InitPosixACL
	if !s.opts.ReadOnly {
		want |= fuseproto.InitDontMask | fuseproto.InitSetxattrExt
	}
	if !s.opts.ReadOnly && !s.opts.NoWritebackCache {
		want |= fuseproto.InitWritebackCache
	}
	f := out.Flags64() | want&in.Flags64()
	f &^= fuseproto.InitHandleKillpriv | fuseproto.InitHandleKillprivV2
	out.SetFlags64(f)
	return 0
}

// toErrno is the server's one error translator (see errorReporter).
func (s *Server) toErrno(err error) syscall.Errno { return s.errs.toErrno(err) }

// inode loads the inode behind a kernel nodeid.
func (s *Server) inode(nodeid uint64) (*ext4.Inode, syscall.Errno) {
	ino, errno := inoOf(nodeid)
	if errno != 0 {
		return nil, errno
	}
	inode, err := s.fs.Inode(ino)
	if err != nil {
		return nil, s.toErrno(err)
	}
	return inode, 0
}

// entryFor fills an EntryOut for inode without counting the reference;
// the caller counts it (s.nodes.ref) once the entry is sure to reach the
// kernel.
func (s *Server) entryFor(out *fuseproto.EntryOut, inode *ext4.Inode) syscall.Errno {
	id, err := nodeID(inode.Ino)
	if err != nil {
		return s.toErrno(err)
	}
	out.NodeID = id
	out.Generation = uint64(inode.Generation)
	out.SetEntryTimeout(s.opts.EntryTimeout)
	out.SetAttrTimeout(s.opts.AttrTimeout)
	s.fillAttr(&out.Attr, inode)
	return 0
}
