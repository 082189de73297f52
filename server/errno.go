package server

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/e4box/e4box/ext4"
)

// maxCorruptReports caps the set of (inode, block) pairs remembered for
// log deduplication, so a badly damaged image cannot grow it without bound.
const maxCorruptReports = 4096

// corruptKey identifies one corruption report; each is logged once.
type corruptKey struct {
	ino   ext4.Ino
	block ext4.PBlk
	kind  string
}

// errorReporter is the server's single error translator. It owns the
// logging of failures that the kernel only sees as an errno.
type errorReporter struct {
	log   *slog.Logger
	debug bool // also log POSIX outcomes (ENOENT, ENODATA, ...) at debug level

	mu sync.Mutex // protects seen and suppressed
	// seen holds the corruption reports already logged.
	seen map[corruptKey]struct{}
	// suppressed is set once seen reached maxCorruptReports and the
	// "further reports suppressed" line was logged.
	suppressed bool
}

func newErrorReporter(log *slog.Logger, debug bool) *errorReporter {
	return &errorReporter{log: log, debug: debug, seen: make(map[corruptKey]struct{})}
}

// toErrno turns a library error into the errno the kernel receives:
// syscall.Errno passes through, corruption becomes EUCLEAN (the kernel's
// EFSCORRUPTED) and is logged once per (inode, block), and anything else
// (device failures, unexpected errors) becomes EIO and is logged.
func (r *errorReporter) toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if errors.Is(err, ext4.ErrCorrupt) {
		r.reportCorrupt(err)
		return syscall.EUCLEAN
	}
	// A device failure may carry an errno (EBADF, ENOSPC, ...) that would
	// mislead if handed to the caller as the outcome of its own request.
	var pathErr *fs.PathError
	var sysErr *os.SyscallError
	var errno syscall.Errno
	if errors.As(err, &errno) && !errors.As(err, &pathErr) && !errors.As(err, &sysErr) {
		if r.debug {
			r.log.Debug("returning errno", "errno", errno.Error(), "err", err)
		}
		return errno
	}
	r.log.Error("I/O error", "err", err)
	return syscall.EIO
}

func (r *errorReporter) reportCorrupt(err error) {
	var key corruptKey
	var ce *ext4.CorruptError
	if errors.As(err, &ce) {
		key = corruptKey{ino: ce.Ino, block: ce.Block, kind: ce.Kind}
	}
	r.mu.Lock()
	_, dup := r.seen[key]
	first := !dup && len(r.seen) < maxCorruptReports
	if first {
		r.seen[key] = struct{}{}
	}
	suppress := !dup && !first && !r.suppressed
	if suppress {
		r.suppressed = true
	}
	r.mu.Unlock()
	switch {
	case first:
		r.log.Error("filesystem corruption", "ino", uint32(key.ino), "block", uint64(key.block), "kind", key.kind, "err", err)
	case suppress:
		r.log.Error("too many distinct corruption reports; further ones are not logged")
	}
}
