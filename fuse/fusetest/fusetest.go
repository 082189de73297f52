// Package fusetest runs fuse sessions without a kernel: Conn is an
// in-memory fuse.Conn fed with request bytes whose replies are captured,
// and Session wraps a Server on it with the INIT handshake done. Tests of
// the protocol layer and of FileSystem implementations use it.
//
// It may import fuse and fuseproto (and the standard library).
package fusetest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// Conn is an in-memory fuse.Conn. Requests given to Feed are returned by
// ReadRequest in order; every reply or notification written is captured
// for Next. After Close (or Abort) reads fail like an unmounted (aborted)
// /dev/fuse.
type Conn struct {
	reqs    chan []byte
	replies chan []byte
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex // protects closeErr and hook
	closeErr syscall.Errno
	hook     func(msg []byte) error
}

// NewConn returns an empty Conn.
func NewConn() *Conn {
	return &Conn{
		reqs:    make(chan []byte, 256),
		replies: make(chan []byte, 4096),
		closed:  make(chan struct{}),
	}
}

var _ fuse.Conn = (*Conn)(nil)

// Feed queues one request (header included) for the server to read.
func (c *Conn) Feed(req []byte) {
	c.reqs <- append([]byte(nil), req...)
}

// ReadRequest implements fuse.Conn.
func (c *Conn) ReadRequest(buf []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, c.err()
	default:
	}
	select {
	case r := <-c.reqs:
		if len(r) > len(buf) {
			// The kernel fails such a read with EINVAL; it is a test bug.
			return 0, syscall.EINVAL
		}
		return copy(buf, r), nil
	case <-c.closed:
		return 0, c.err()
	}
}

func (c *Conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// SetWriteHook installs fn, called with every message written (reply or
// notification) before it is captured, on the writer's goroutine, as the
// kernel handles a write(2) on /dev/fuse. Its error is what the write
// returns; the message is captured either way. nil removes the hook.
func (c *Conn) SetWriteHook(fn func(msg []byte) error) {
	c.mu.Lock()
	c.hook = fn
	c.mu.Unlock()
}

// WriteReply implements fuse.Conn; the iovecs are joined and captured.
func (c *Conn) WriteReply(iov [][]byte) error {
	var msg []byte
	for _, v := range iov {
		msg = append(msg, v...)
	}
	select {
	case <-c.closed: // checked first: select picks randomly among ready cases
		return syscall.ENODEV
	default:
	}
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	var err error
	if hook != nil {
		err = hook(msg)
	}
	select {
	case c.replies <- msg:
		return err
	case <-c.closed:
		return syscall.ENODEV
	}
}

// Close makes reads fail with ENODEV, as after unmount.
func (c *Conn) Close() error {
	c.shut(syscall.ENODEV)
	return nil
}

// Abort makes reads fail with ECONNABORTED, as after a connection abort
// with FUSE_ABORT_ERROR negotiated.
func (c *Conn) Abort() { c.shut(syscall.ECONNABORTED) }

func (c *Conn) shut(e syscall.Errno) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closeErr = e
		c.mu.Unlock()
		close(c.closed)
	})
}

// Next returns the next captured message, or false after timeout.
func (c *Conn) Next(timeout time.Duration) ([]byte, bool) {
	select {
	case m := <-c.replies:
		return m, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Hex decodes rows of hex digits, ignoring spaces, so byte vectors can be
// written one annotated 8-byte row per line. It panics on bad input (a
// test bug).
func Hex(rows ...string) []byte {
	s := strings.ReplaceAll(strings.Join(rows, ""), " ", "")
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("fusetest.Hex: %v", err))
	}
	return b
}

// Bytes returns the memory image of a wire struct.
func Bytes[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

// Decode copies the head of b into a T (zero-extended when b is short).
func Decode[T any](b []byte) T {
	var v T
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v)), b)
	return v
}

// Request assembles a request: header fields, then the body parts in order
// (structs as Bytes, names with their NUL). Len is computed.
func Request(op fuseproto.Opcode, unique, nodeID uint64, parts ...[]byte) []byte {
	h := fuseproto.InHeader{Opcode: op, Unique: unique, NodeID: nodeID, Uid: 1000, Gid: 1000, Pid: 42}
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	h.Len = uint32(int(unsafe.Sizeof(h)) + len(body))
	return append(Bytes(&h), body...)
}

// Name returns name with its terminating NUL.
func Name(name string) []byte { return append([]byte(name), 0) }

// Reply splits a captured reply into its header and payload.
func Reply(msg []byte) (fuseproto.OutHeader, []byte) {
	h := Decode[fuseproto.OutHeader](msg)
	n := int(unsafe.Sizeof(h))
	if len(msg) < n {
		return h, nil
	}
	return h, msg[n:]
}

// DefaultInit is the INIT a current kernel sends: 7.45, INIT_EXT, and
// every capability offered.
func DefaultInit() fuseproto.InitIn {
	in := fuseproto.InitIn{Major: 7, Minor: fuseproto.KernelMinorVersion, MaxReadahead: 128 << 10}
	flags := fuseproto.InitFlags(1<<43-1) &^ fuseproto.InitReserved
	in.Flags, in.Flags2 = flags.Split()
	return in
}

// Session is a Server running on a Conn.
type Session struct {
	T      testing.TB
	Conn   *Conn
	Server *fuse.Server

	errc    chan error
	mu      sync.Mutex // protects pending
	pending map[uint64][]byte
	unique  uint64 // last unique used by Do; guarded by mu
}

// Start runs fs on a new Conn and completes INIT with DefaultInit. The
// session is closed at test cleanup.
func Start(t testing.TB, fs fuse.FileSystem, opts *fuse.Options) *Session {
	s := StartNoInit(t, fs, opts)
	in := DefaultInit()
	h, _ := s.Init(&in)
	if h.Error != 0 {
		t.Fatalf("fusetest: INIT failed: errno %d", -h.Error)
	}
	return s
}

// StartNoInit runs fs on a new Conn without sending INIT.
func StartNoInit(t testing.TB, fs fuse.FileSystem, opts *fuse.Options) *Session {
	conn := NewConn()
	s := &Session{T: t, Conn: conn, Server: fuse.NewServer(conn, fs, opts),
		errc: make(chan error, 1), pending: map[uint64][]byte{}, unique: 1 << 20}
	go func() { s.errc <- s.Server.Serve() }()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Init sends INIT with the given input and returns the reply.
func (s *Session) Init(in *fuseproto.InitIn) (fuseproto.OutHeader, []byte) {
	return Reply(s.Roundtrip(Request(fuseproto.OpInit, 1, 0, Bytes(in))))
}

// Roundtrip feeds req and returns the reply carrying req's unique, keeping
// replies to other requests for later. It fails the test after 10 s.
func (s *Session) Roundtrip(req []byte) []byte {
	s.T.Helper()
	h := Decode[fuseproto.InHeader](req)
	s.Conn.Feed(req)
	m, ok := s.Await(h.Unique, 10*time.Second)
	if !ok {
		s.T.Fatalf("fusetest: no reply to %v unique %d", h.Opcode, h.Unique)
	}
	return m
}

// Await waits for the reply with the given unique.
func (s *Session) Await(unique uint64, timeout time.Duration) ([]byte, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		m, ok := s.pending[unique]
		delete(s.pending, unique)
		s.mu.Unlock()
		if ok {
			return m, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, false
		}
		m, ok = s.Conn.Next(min(left, 50*time.Millisecond))
		if !ok {
			continue
		}
		h, _ := Reply(m)
		if h.Unique == unique {
			return m, true
		}
		s.mu.Lock()
		s.pending[h.Unique] = m
		s.mu.Unlock()
	}
}

// Do sends op on nodeID with the given body parts under a fresh unique and
// returns the reply header and payload.
func (s *Session) Do(op fuseproto.Opcode, nodeID uint64, parts ...[]byte) (fuseproto.OutHeader, []byte) {
	s.T.Helper()
	s.mu.Lock()
	s.unique += 2
	u := s.unique
	s.mu.Unlock()
	return Reply(s.Roundtrip(Request(op, u, nodeID, parts...)))
}

// Close unmounts (closes the Conn) and returns Serve's result; it fails
// the test if Serve does not return within 10 s.
func (s *Session) Close() error {
	s.Conn.Close()
	select {
	case err := <-s.errc:
		s.errc <- err // keep it for repeated Close
		return err
	case <-time.After(10 * time.Second):
		s.T.Errorf("fusetest: Serve did not return after Close")
		return fmt.Errorf("fusetest: Serve hung")
	}
}
