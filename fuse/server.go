package fuse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// Errors returned by Serve.
var (
	// ErrAborted means the kernel aborted the connection (e.g. through
	// /sys/fs/fuse/connections/N/abort).
	ErrAborted = errors.New("fuse: connection aborted by the kernel")
	// ErrProtocol means INIT failed: the kernel's protocol is too old or
	// the filesystem refused it.
	ErrProtocol = errors.New("fuse: protocol negotiation failed")
)

// Options configures a session. The zero value is usable; see each field
// for its default.
type Options struct {
	// FsName is the mount source shown in /proc/mounts (the image or
	// device path). Default "e4box".
	FsName string
	// Subtype names the filesystem type fuse.<Subtype>. Default "e4box".
	Subtype string
	// BlockDevice mounts as fuseblk; FsName must then be a block device.
	BlockDevice bool
	// BlockSize is fuseblk's blksize= option (0: kernel default).
	BlockSize int
	ReadOnly  bool
	// NoExec forbids executing files from the mount (MS_NOEXEC). nosuid
	// and nodev are always set: the image is untrusted.
	NoExec bool
	// AllowOther lets users other than the mounter access the mount.
	AllowOther bool
	// DefaultPermissions makes the kernel check permissions from the
	// attributes (and ACLs with PosixACL) instead of asking Access.
	DefaultPermissions bool

	// MaxPages bounds READ/WRITE requests in pages. Default 256 (1 MiB
	// with 4 KiB pages); the kernel may lower it (fuse.max_pages_limit).
	MaxPages int
	// MaxBackground and CongestionThreshold tune the kernel's async
	// request queue. Defaults 64 and 48.
	MaxBackground       uint16
	CongestionThreshold uint16
	// WritebackCache lets the kernel cache writes (FUSE_WRITEBACK_CACHE).
	WritebackCache bool
	// PosixACL asks the kernel to enforce POSIX ACLs (FUSE_POSIX_ACL); the
	// filesystem stores them as system.posix_acl_* xattrs.
	PosixACL bool
	// DontMask makes the kernel pass mode and umask unmasked
	// (FUSE_DONT_MASK); the filesystem then applies umask or default ACLs.
	DontMask bool
	// Capabilities are extra INIT flags to request; DisableCapabilities
	// removes flags from the default set.
	Capabilities        fuseproto.InitFlags
	DisableCapabilities fuseproto.InitFlags

	// Iomap asks for fuse-iomap in the modes given (IomapSupportBasics,
	// DirectIO, Pagecache; the latter two imply Basics). The bits are
	// negotiated only if IomapDiscover finds kernel support and the kernel
	// offers them at INIT; the session is classic otherwise (see
	// Server.IomapStatus). The filesystem should implement IomapFileSystem.
	Iomap fuseproto.IomapSupport
	// IomapDiscover reports the kernel's iomap support; NewServer calls it
	// when Iomap is set. Default DiscoverIomap; tests inject results.
	IomapDiscover func() (fuseproto.IomapSupport, error)

	// MaxReaders bounds the goroutines reading the device. Default 4.
	MaxReaders int
	// MaxLargeRequests bounds the requests with large payloads (WRITE, big
	// SETXATTR) being served at once, each holding a max_write buffer.
	// Other requests are bounded by the kernel and never wait here, so
	// INTERRUPT and FORGET always get read. Default 64.
	MaxLargeRequests int

	// Debug logs one line per request and reply at slog.LevelDebug.
	Debug bool
	// Logger receives errors, recovered panics and debug lines. Default:
	// slog.Default(), or a debug-level stderr logger when Debug is set.
	Logger *slog.Logger
}

// Oldest kernel protocol minor accepted. 7.12 brought umask in
// create/mknod/mkdir and the inval notifications; older kernels predate
// Linux 2.6.31.
const MinKernelMinor = 12

// DefaultCapabilities are requested unless DisableCapabilities removes them.
const DefaultCapabilities = fuseproto.InitAsyncRead |
	fuseproto.InitAtomicOTrunc |
	fuseproto.InitExportSupport |
	fuseproto.InitBigWrites |
	fuseproto.InitAsyncDIO |
	fuseproto.InitDoReaddirplus |
	fuseproto.InitReaddirplusAuto |
	fuseproto.InitParallelDirops |
	fuseproto.InitAbortError |
	fuseproto.InitMaxPages |
	fuseproto.InitCacheSymlinks |
	fuseproto.InitHasIoctlDir

const (
	smallBufSize   = 8192 // requests up to this size are copied off the read buffer
	argStoreWords  = 16   // 128 bytes: largest fixed input struct (SetattrIn, 88)
	outStoreWords  = 48   // 384 bytes: largest output struct (StatxOut, 288)
	maxErrno       = 511  // the kernel rejects replies with error <= -512
	defaultReaders = 4
	defaultLarge   = 64
)

// Server runs one FUSE session over a Conn.
type Server struct {
	fs         FileSystem
	conn       Conn
	opts       Options
	log        *slog.Logger
	mountpoint string // set by Mount; "" for sessions on a bare Conn
	pageSize   int
	maxWrite   int // largest WRITE payload the buffers can take
	bufSize    int // read buffer size: maxWrite + one page for headers

	proto atomic.Pointer[Protocol] // nil until INIT is answered
	iomap iomapState               // fuse-iomap discovery and devices (iomap.go)

	bigPool   sync.Pool     // *[]byte of bufSize, 8-byte aligned
	smallPool sync.Pool     // *[]byte of smallBufSize, 8-byte aligned
	callPool  sync.Pool     // *call
	sem       chan struct{} // slots for large requests

	ctx    context.Context // cancelled when serving stops
	cancel context.CancelFunc

	mu sync.Mutex // protects the fields below; leaf lock
	// inflight maps a request's unique to its cancel func, for INTERRUPT.
	inflight    map[uint64]context.CancelFunc
	readers     int   // reader goroutines alive
	idleReaders int   // readers blocked in ReadRequest
	stopErr     error // first terminal condition seen by a reader
	stopped     bool
	serving     bool

	// The poll probe (pollprobe.go).
	probe        func() error  // nil: probeMount on mounted sessions; tests inject one
	probing      atomic.Bool   // the probe runs: LOOKUP of ProbeName in the root is ours
	probePolled  atomic.Bool   // the kernel sent POLL on ProbeNodeID
	probeStarted bool          // set by the INIT handler only (reader goroutine)
	probed       chan struct{} // closed when the probe is over; opening requests wait for it

	readerWG    sync.WaitGroup
	handlerWG   sync.WaitGroup
	destroyOnce sync.Once
	readyOnce   sync.Once
	ready       chan struct{} // closed once INIT has been answered and the probe is over
	done        chan struct{}
	serveErr    error // valid once done is closed
}

// NewServer prepares a session of fs over conn; call Serve to run it.
func NewServer(conn Conn, fs FileSystem, opts *Options) *Server {
	s := &Server{fs: fs, conn: conn, ready: make(chan struct{}), done: make(chan struct{}),
		probed: make(chan struct{}), inflight: map[uint64]context.CancelFunc{}}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.FsName == "" {
		o.FsName = "e4box"
	}
	if o.Subtype == "" {
		o.Subtype = "e4box"
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 256
	}
	if o.MaxPages > 65535 {
		o.MaxPages = 65535
	}
	if o.MaxBackground == 0 {
		o.MaxBackground = 64
	}
	if o.CongestionThreshold == 0 {
		o.CongestionThreshold = o.MaxBackground * 3 / 4
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = min(defaultReaders, max(2, runtime.GOMAXPROCS(0)))
	}
	if o.MaxLargeRequests <= 0 {
		o.MaxLargeRequests = defaultLarge
	}
	s.log = o.Logger
	if s.log == nil {
		if o.Debug {
			s.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			s.log = slog.Default()
		}
	}
	s.pageSize = os.Getpagesize()
	s.maxWrite = o.MaxPages * s.pageSize
	s.bufSize = s.maxWrite + s.pageSize
	s.bigPool.New = func() any { return alignedBuf(s.bufSize) }
	s.smallPool.New = func() any { return alignedBuf(smallBufSize) }
	s.callPool.New = func() any { return new(call) }
	s.sem = make(chan struct{}, o.MaxLargeRequests)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.discoverIomap() // before Mount mounts: fuse2fs picks fuseblk or not from it
	return s
}

// alignedBuf allocates n bytes backed by uint64s, so fixed structs at
// 8-byte offsets can be cast in place.
func alignedBuf(n int) *[]byte {
	words := make([]uint64, (n+7)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
	return &b
}

// Protocol returns the negotiated protocol, or nil before INIT.
func (s *Server) Protocol() *Protocol { return s.proto.Load() }

// Mountpoint returns the directory the session is mounted on ("" when the
// Server runs on a bare Conn).
func (s *Server) Mountpoint() string { return s.mountpoint }

// Ready is closed once the kernel's INIT has been answered successfully and,
// on a mount, the poll probe is over (see ProbeName): from then on the mount
// is live and this process may open its files.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Done is closed when Serve has returned.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait blocks until Serve returns and returns its result.
func (s *Server) Wait() error {
	<-s.done
	return s.serveErr
}

// Serve answers requests until the filesystem is unmounted (returns nil),
// the kernel aborts the connection (ErrAborted), INIT fails (ErrProtocol)
// or the transport fails. In-flight requests finish, FileSystem.Destroy is
// called and the Conn is closed before it returns. Call it once.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("fuse: Serve called twice")
	}
	s.serving = true
	s.readers = 1
	s.mu.Unlock()

	s.readerWG.Add(1)
	go s.readLoop()
	s.readerWG.Wait()

	s.cancel() // interrupt whatever is still running
	s.handlerWG.Wait()
	s.destroyOnce.Do(s.fs.Destroy)

	s.mu.Lock()
	err := s.stopErr
	s.mu.Unlock()
	if errors.Is(err, ErrAborted) && s.mountpoint != "" {
		// An aborted mount answers ENOTCONN forever; detach it.
		_ = unmount(s.mountpoint, true)
	}
	if cerr := s.conn.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("fuse: close: %w", cerr)
	}
	s.serveErr = err
	close(s.done)
	return err
}

// stop records the terminal condition; readers exit as they see it.
func (s *Server) stop(err error) {
	s.mu.Lock()
	if !s.stopped {
		s.stopped, s.stopErr = true, err
	}
	s.mu.Unlock()
}

// readLoop is one reader goroutine. When it takes a request while no other
// reader is idle, it starts another (up to MaxReaders) so the device is
// always being read: that keeps INTERRUPT and FORGET flowing while requests
// are served.
func (s *Server) readLoop() {
	defer s.readerWG.Done()
	bufp := s.bigPool.Get().(*[]byte)
	defer func() { s.bigPool.Put(bufp) }()
	for {
		s.mu.Lock()
		if s.stopped {
			s.readers--
			s.mu.Unlock()
			return
		}
		s.idleReaders++
		s.mu.Unlock()

		n, err := s.conn.ReadRequest(*bufp)

		s.mu.Lock()
		s.idleReaders--
		spawn := err == nil && s.idleReaders == 0 && s.readers < s.opts.MaxReaders && !s.stopped
		if spawn {
			s.readers++
		}
		s.mu.Unlock()
		if spawn {
			s.readerWG.Add(1)
			go s.readLoop()
		}

		if err != nil {
			switch {
			case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ENOENT):
				// ENOENT: the request was interrupted before we read it.
				continue
			case errors.Is(err, syscall.ENODEV):
				s.stop(nil) // unmounted
			case errors.Is(err, syscall.ECONNABORTED):
				s.stop(ErrAborted)
			default:
				s.stop(fmt.Errorf("fuse: read request: %w", err))
			}
			s.mu.Lock()
			s.readers--
			s.mu.Unlock()
			return
		}
		bufp = s.handle(bufp, n)
	}
}

// call is the per-request state, pooled. Request is embedded so the
// FileSystem gets &c.Request without an extra allocation.
type call struct {
	Request
	info   opInfo
	bufp   *[]byte // request bytes (big or small pool)
	big    bool
	arg    unsafe.Pointer
	names  [2][]byte
	data   []byte
	cancel context.CancelFunc

	argStore [argStoreWords]uint64 // zero-extended copy of short inputs
	outStore [outStoreWords]uint64 // typed reply struct
	dataBufp *[]byte               // READ/READDIR/xattr reply buffer (big pool)
	dirList  DirList
	ohdr     fuseproto.OutHeader
	iov      [3][]byte
}

// handle parses and dispatches one request of n bytes in *bufp. It returns
// the buffer the reader should use next (a fresh one if the request kept
// its buffer).
func (s *Server) handle(bufp *[]byte, n int) *[]byte {
	buf := (*bufp)[:n]
	if n < int(unsafe.Sizeof(fuseproto.InHeader{})) {
		s.log.Error("fuse: short request header; dropped", "len", n)
		return bufp
	}
	var hdr fuseproto.InHeader
	copy(structBytes(&hdr), buf)

	c := s.callPool.Get().(*call)
	c.Request = Request{
		Ctx:    s.ctx,
		Opcode: hdr.Opcode,
		Unique: hdr.Unique,
		NodeID: hdr.NodeID,
		Uid:    hdr.Uid,
		Gid:    hdr.Gid,
		Pid:    hdr.Pid,
		Proto:  s.proto.Load(),
	}
	if s.opts.Debug {
		s.log.Debug("fuse: request", "op", hdr.Opcode.String(), "unique", hdr.Unique, "node", hdr.NodeID, "len", hdr.Len)
	}

	info, ok := opTable[hdr.Opcode]
	var errno syscall.Errno
	switch {
	case int(hdr.Len) != n:
		s.log.Error("fuse: request length mismatch", "op", hdr.Opcode.String(), "hdr", hdr.Len, "read", n)
		errno = syscall.EIO
	case !ok:
		errno = syscall.ENOSYS
	case c.Proto == nil && hdr.Opcode != fuseproto.OpInit:
		s.log.Error("fuse: request before INIT", "op", hdr.Opcode.String())
		errno = syscall.EIO
	}
	if errno != 0 {
		if !ok || !info.noReply {
			s.reply(c, errno, nil, nil)
		}
		s.putCall(c)
		return bufp
	}
	c.info = info

	// Choose where the request lives while it is served. Inline opcodes
	// use the reader's buffer; small requests move to a small buffer so
	// the reader keeps its big one; big ones (WRITE) take the buffer along.
	next := bufp
	switch {
	case info.inline:
		c.bufp = nil
	case n <= smallBufSize:
		sp := s.smallPool.Get().(*[]byte)
		buf = (*sp)[:copy(*sp, buf)]
		c.bufp, c.big = sp, false
	default:
		c.bufp, c.big = bufp, true
		next = s.bigPool.Get().(*[]byte)
	}

	if errno := s.parse(c, buf[unsafe.Sizeof(hdr):], hdr.TotalExtlen); errno != 0 {
		s.log.Error("fuse: malformed request", "op", hdr.Opcode.String(), "unique", hdr.Unique, "len", n)
		if !info.noReply {
			s.reply(c, errno, nil, nil)
		}
		s.putCall(c)
		return next
	}

	// The probe file's requests are answered here, quickly, and never
	// reach the FileSystem.
	if out, errno, ok := s.probeRequest(c); ok {
		if !info.noReply {
			s.reply(c, errno, out, nil)
		}
		s.putCall(c)
		return next
	}

	if info.inline {
		// FORGET, BATCH_FORGET, INTERRUPT, INIT, NOTIFY_REPLY: quick and
		// ordered, served on the reader goroutine.
		s.run(c)
		if c.Opcode == fuseproto.OpInit && s.proto.Load() != nil {
			s.initDone()
		}
		s.putCall(c)
		return next
	}

	// Register for INTERRUPT before anything can block.
	ctx, cancel := context.WithCancel(s.ctx)
	c.Ctx, c.cancel = ctx, cancel
	s.mu.Lock()
	s.inflight[hdr.Unique] = cancel
	s.mu.Unlock()

	large := c.big
	if large {
		s.sem <- struct{}{}
	}
	s.handlerWG.Add(1)
	go func() {
		defer s.handlerWG.Done()
		if c.info.opens && !s.awaitProbe(c) {
			s.reply(c, syscall.EINTR, nil, nil)
		} else {
			s.run(c)
		}
		s.mu.Lock()
		delete(s.inflight, c.Unique)
		s.mu.Unlock()
		c.cancel()
		if large {
			<-s.sem
		}
		s.putCall(c)
	}()
	return next
}

// parse splits the request body into the fixed argument, names and data,
// following the opcode's table record. Anything short is EIO.
func (s *Server) parse(c *call, body []byte, extlen uint16) syscall.Errno {
	if ext := int(extlen) * 8; ext > 0 {
		// Request extensions (security context, supplementary groups)
		// trail the body; nothing here consumes them yet.
		if ext > len(body) {
			return syscall.EIO
		}
		body = body[:len(body)-ext]
	}
	info := &c.info
	// wire is how many bytes of the fixed struct this kernel sends: the
	// full struct, or a compat prefix (SETXATTR without SETXATTR_EXT,
	// INIT before 7.36).
	wire := info.in
	if c.Opcode == fuseproto.OpSetxattr && (c.Proto == nil || !c.Proto.Has(fuseproto.InitSetxattrExt)) {
		wire = fuseproto.CompatSetxattrInSize
	}
	minIn := wire
	if info.minIn != 0 {
		minIn = info.minIn
	}
	if len(body) < minIn {
		return syscall.EIO
	}
	wire = min(wire, len(body))
	rest := body[wire:]
	switch {
	case info.in == 0:
		c.arg = nil
	case wire == info.in:
		// body sits at offset 40 of an 8-byte aligned buffer: castable.
		c.arg = unsafe.Pointer(&body[0])
	default:
		// Shorter struct: zero-extend a copy so the tail reads as 0.
		c.argStore = [argStoreWords]uint64{}
		st := unsafe.Slice((*byte)(unsafe.Pointer(&c.argStore[0])), len(c.argStore)*8)
		copy(st, body[:wire])
		c.arg = unsafe.Pointer(&c.argStore[0])
	}
	for i := 0; i < info.names; i++ {
		j := indexNUL(rest)
		if j < 0 {
			return syscall.EIO
		}
		c.names[i] = rest[:j]
		rest = rest[j+1:]
	}
	c.data = rest
	return 0
}

func indexNUL(b []byte) int {
	for i, x := range b {
		if x == 0 {
			return i
		}
	}
	return -1
}

// run calls the opcode's handler with panic recovery, then replies.
func (s *Server) run(c *call) {
	var out, data []byte
	var errno syscall.Errno
	panicked := false
	func() {
		defer func() {
			if p := recover(); p != nil {
				panicked = true
				s.log.Error("fuse: panic in handler; replying EIO", "op", c.Opcode.String(),
					"unique", c.Unique, "node", c.NodeID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		out, data, errno = c.info.fn(s, c)
	}()
	if panicked {
		out, data, errno = nil, nil, syscall.EIO
	}
	if !c.info.noReply {
		s.reply(c, errno, out, data)
	}
}

// reply writes the header plus up to two payload parts.
func (s *Server) reply(c *call, errno syscall.Errno, out, data []byte) {
	if errno != 0 {
		out, data = nil, nil
		if errno < 0 || errno > maxErrno {
			s.log.Error("fuse: errno out of range; replying EIO", "op", c.Opcode.String(), "errno", int(errno))
			errno = syscall.EIO
		}
	}
	size := int(unsafe.Sizeof(c.ohdr)) + len(out) + len(data)
	c.ohdr = fuseproto.OutHeader{Len: uint32(size), Error: -int32(errno), Unique: c.Unique}
	iov := c.iov[:0]
	iov = append(iov, structBytes(&c.ohdr))
	if len(out) > 0 {
		iov = append(iov, out)
	}
	if len(data) > 0 {
		iov = append(iov, data)
	}
	if s.opts.Debug {
		s.log.Debug("fuse: reply", "op", c.Opcode.String(), "unique", c.Unique, "errno", int(errno), "len", size)
	}
	err := s.conn.WriteReply(iov)
	clear(c.iov[:])
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENODEV) {
		// ENOENT: interrupted request already gone; ENODEV: unmounted.
		s.log.Error("fuse: write reply", "op", c.Opcode.String(), "unique", c.Unique, "err", err)
	}
}

func (s *Server) putCall(c *call) {
	if c.bufp != nil {
		if c.big {
			s.bigPool.Put(c.bufp)
		} else {
			s.smallPool.Put(c.bufp)
		}
	}
	if c.dataBufp != nil {
		s.bigPool.Put(c.dataBufp)
	}
	*c = call{}
	s.callPool.Put(c)
}

// dataBuf returns a runtime-owned buffer of n bytes (n <= bufSize) for
// reply data, released with the call.
func (s *Server) dataBuf(c *call, n int) []byte {
	if c.dataBufp == nil {
		c.dataBufp = s.bigPool.Get().(*[]byte)
	}
	return (*c.dataBufp)[:n]
}

// outStruct returns the zeroed reply struct of type T in c's storage.
func outStruct[T any](c *call) *T {
	var zero T
	if unsafe.Sizeof(zero) > unsafe.Sizeof(c.outStore) {
		panic("fuse: reply struct larger than outStore") // programming error, covered by tests
	}
	clear(c.outStore[:])
	return (*T)(unsafe.Pointer(&c.outStore[0]))
}

// argAs returns the fixed argument as *T.
func argAs[T any](c *call) *T { return (*T)(c.arg) }

// interrupt cancels the request with the given unique. It reports false
// when no such request is in flight.
func (s *Server) interrupt(unique uint64) bool {
	s.mu.Lock()
	cancel, ok := s.inflight[unique]
	s.mu.Unlock()
	if ok {
		cancel()
	}
	return ok
}
