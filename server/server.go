// Package server serves an ext4 filesystem (package ext4) to the kernel
// through the FUSE runtime (package fuse): it implements fuse.FileSystem
// over *ext4.FS.
//
// It owns the FUSE-facing policy: nodeid <-> inode numbering, lookup
// counting, attribute and entry timeouts, open flags and caching modes,
// the translation of library errors into errnos, and the data path engine
// (the seam where fuse-iomap will plug in). It may import fuse, fuseproto
// and ext4 only; it never reaches below ext4's API (no ext4/disk, no
// bcache, no blockdev).
//
// The server is read-only today. Operations that would modify the image
// answer EROFS (when the mount is read-only) or ENOSYS (not written yet);
// the write opcodes will slot in beside their read counterparts and run
// their mutations through ext4's fs.Update.
//
// # Concurrency
//
// Requests are served concurrently. *ext4.FS is safe for concurrent use;
// the server's own state is the lookup-count table and the corruption
// log, each behind its own mutex, never held together and never held
// while calling into ext4. Lock order: none needed.
package server

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// Options configure a Server.
type Options struct {
	// ReadOnly must be set while the write path is missing; it makes
	// OPEN for writing and ACCESS(W_OK) answer EROFS and enables caching
	// that is only safe when nothing but the kernel's view changes.
	ReadOnly bool
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

// DefaultTimeout is the entry and attribute timeout when Options leave
// them zero. A read-only image changes only through us, so the kernel may
// cache for as long as it likes; an hour bounds the memory the kernel
// keeps for names it never revisits.
const DefaultTimeout = time.Hour

// Server implements fuse.FileSystem over an *ext4.FS.
type Server struct {
	fuse.NotImplemented

	fs        *ext4.FS
	opts      Options
	log       *slog.Logger
	blockSize int
	eng       engine
	nodes     *lookupCounts
	errs      *errorReporter
}

var _ fuse.FileSystem = (*Server)(nil)

// New returns a server for fsys. The caller keeps ownership of fsys and
// closes it after the FUSE session ends.
func New(fsys *ext4.FS, opts Options) *Server {
	if opts.EntryTimeout == 0 {
		opts.EntryTimeout = DefaultTimeout
	}
	if opts.AttrTimeout == 0 {
		opts.AttrTimeout = DefaultTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		fs:        fsys,
		opts:      opts,
		log:       log,
		blockSize: fsys.BlockSize(),
		eng:       engine{fs: fsys},
		nodes:     newLookupCounts(),
		errs:      newErrorReporter(log, opts.Debug),
	}
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
