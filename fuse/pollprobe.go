package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/fuseproto"
)

// The poll probe (go-fuse calls its version the "poll hack").
//
// A process that serves a mount and also opens files on it can deadlock:
// os.Open registers the descriptor with Go's netpoller, whose epoll_ctl
// makes the kernel send FUSE_POLL and wait for the answer. The runtime
// calls epoll_ctl as plain runtime code, not as a syscall, so a GC
// stop-the-world waits for that thread forever while the goroutines that
// would answer the POLL are already stopped.
//
// The kernel sends POLL on a connection only until one is answered ENOSYS
// (fc->no_poll), and every POLL is answered ENOSYS here (the FileSystem has
// no Poll). So right after INIT the runtime makes the kernel send one POLL
// from real syscalls, which the scheduler handles: it opens ProbeName in
// the mount root with open(2), polls it with poll(2) and closes it. The
// runtime answers everything about that file itself. Until the probe is
// over, OPEN (and CREATE outside the root, and TMPFILE) wait before reaching
// the FileSystem, so no descriptor on the mount can reach the netpoller
// before no_poll is set. CREATE in the root is not held: its caller holds
// the root directory's lock, which the probe's own LOOKUP needs. So code
// that creates files in the root from the serving process should wait for
// Ready first; everything else is covered without waiting.

// ProbeName is the file the poll probe opens in the mount root. Only while
// the probe runs is a LOOKUP of it in the root answered by the runtime;
// before and after, the name belongs to the FileSystem like any other, and
// the probe file is never listed by READDIR.
const ProbeName = ".e4box-poll-probe"

// ProbeNodeID is the probe file's nodeid. Bit 63 keeps it out of any 32-bit
// inode number space (ext4's); the low half spells "poll". Requests on it
// are answered by the runtime and never reach the FileSystem.
const ProbeNodeID uint64 = 1<<63 | 0x706f6c6c

// startProbe runs in doInit just before the successful reply: the probe's
// requests can only come after it, and probing is set before any of them.
// A session on a bare Conn has no mountpoint to probe; initDone then makes
// it ready once the reply is written.
func (s *Server) startProbe() {
	probe := s.probe
	if probe == nil && s.mountpoint != "" {
		probe = s.probeMount
	}
	if probe == nil {
		return
	}
	s.probeStarted = true
	s.probing.Store(true)
	// Not on the reader: the kernel's requests for the probe must be read
	// while it waits. Its open(2) waits for the INIT reply in the kernel.
	go func() {
		err := probe()
		s.probing.Store(false)
		close(s.probed)
		switch {
		case err != nil && s.isStopped():
			s.log.Debug("fuse: poll probe ended with the session", "err", err)
		case err != nil:
			s.log.Warn("fuse: poll probe failed; opening files of this mount from this process "+
				"may deadlock during garbage collection", "mountpoint", s.mountpoint, "err", err)
		default:
			s.log.Debug("fuse: poll probe done", "kernel_polled", s.probePolled.Load())
		}
		s.readyOnce.Do(func() { close(s.ready) })
	}()
}

// initDone runs on the reader once INIT has been answered successfully.
func (s *Server) initDone() {
	if !s.probeStarted {
		s.readyOnce.Do(func() {
			close(s.probed)
			close(s.ready)
		})
	}
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// probeMount is the probe on a real mount. Every call is a real syscall
// (golang.org/x/sys/unix, never os.File), so the netpoller stays out.
func (s *Server) probeMount() error {
	path := filepath.Join(s.mountpoint, ProbeName)
	// O_NONBLOCK|O_NOFOLLOW: should the mount be gone, never block on or
	// follow whatever the directory underneath holds.
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd) // FLUSH and RELEASE, answered by the runtime
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat %s: %w", path, err)
	}
	if uint64(st.Ino) != ProbeNodeID {
		return fmt.Errorf("%s is inode %d, not the probe file", path, st.Ino)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := retryEINTR(func() (int, error) { return unix.Poll(fds, 0) }); err != nil {
		return fmt.Errorf("poll %s: %w", path, err)
	}
	return nil
}

func retryEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// awaitProbe blocks an opening request until the probe is over; false
// means the request was interrupted (or the session ended) meanwhile.
func (s *Server) awaitProbe(c *call) bool {
	if c.Opcode == fuseproto.OpCreate && c.NodeID == fuseproto.RootID {
		return true // see the comment at the top of this file
	}
	select {
	case <-s.probed:
		return true
	case <-c.Ctx.Done():
		select {
		case <-s.probed:
			return true
		default:
			return false
		}
	}
}

// probeAttr describes the probe file: an empty regular file the server's
// own user may read (default_permissions checks it).
func probeAttr(a *fuseproto.Attr) {
	*a = fuseproto.Attr{
		Ino:     ProbeNodeID,
		Mode:    syscall.S_IFREG | 0o644,
		Nlink:   1,
		Uid:     uint32(os.Geteuid()),
		Gid:     uint32(os.Getegid()),
		Blksize: 4096,
	}
}

// probeRequest answers the requests that concern the probe file and
// reports whether it did; everything else goes to the FileSystem. Errors
// are never ENOSYS (except POLL's): the kernel would take it as the whole
// connection lacking the opcode.
func (s *Server) probeRequest(c *call) (out []byte, errno syscall.Errno, handled bool) {
	switch c.Opcode {
	case fuseproto.OpInit, fuseproto.OpDestroy, fuseproto.OpInterrupt, fuseproto.OpNotifyReply:
		return nil, 0, false // not about a node
	case fuseproto.OpBatchForget:
		return nil, 0, false // doBatchForget drops the probe's entries
	case fuseproto.OpLookup:
		if c.NodeID == fuseproto.RootID && s.probing.Load() && string(c.names[0]) == ProbeName {
			e := outStruct[fuseproto.EntryOut](c)
			e.NodeID = ProbeNodeID // zero timeouts: the name is not cached past the probe
			probeAttr(&e.Attr)
			return structBytes(e), 0, true
		}
	case fuseproto.OpLink:
		if argAs[fuseproto.LinkIn](c).Oldnodeid == ProbeNodeID {
			return nil, syscall.EPERM, true
		}
	case fuseproto.OpRename:
		if argAs[fuseproto.RenameIn](c).Newdir == ProbeNodeID {
			return nil, syscall.ENOTDIR, true
		}
	case fuseproto.OpRename2:
		if argAs[fuseproto.Rename2In](c).Newdir == ProbeNodeID {
			return nil, syscall.ENOTDIR, true
		}
	case fuseproto.OpCopyFileRange, fuseproto.OpCopyFileRange64:
		if argAs[fuseproto.CopyFileRangeIn](c).NodeidOut == ProbeNodeID {
			return nil, syscall.EIO, true
		}
	}
	if c.NodeID != ProbeNodeID {
		return nil, 0, false
	}
	switch c.Opcode {
	case fuseproto.OpGetattr:
		a := outStruct[fuseproto.AttrOut](c)
		probeAttr(&a.Attr)
		return structBytes(a), 0, true
	case fuseproto.OpOpen:
		return structBytes(outStruct[fuseproto.OpenOut](c)), 0, true
	case fuseproto.OpPoll:
		s.probePolled.Store(true)
		return nil, syscall.ENOSYS, true // the point of the probe: fc->no_poll
	case fuseproto.OpFlush, fuseproto.OpRelease, fuseproto.OpForget:
		return nil, 0, true
	case fuseproto.OpGetxattr:
		return nil, syscall.ENODATA, true // no ACL to check
	case fuseproto.OpLookup, fuseproto.OpOpendir, fuseproto.OpReaddir, fuseproto.OpReaddirplus,
		fuseproto.OpMknod, fuseproto.OpMkdir, fuseproto.OpSymlink, fuseproto.OpCreate,
		fuseproto.OpTmpfile, fuseproto.OpUnlink, fuseproto.OpRmdir, fuseproto.OpRename,
		fuseproto.OpRename2, fuseproto.OpLink:
		return nil, syscall.ENOTDIR, true
	}
	return nil, syscall.EIO, true
}
