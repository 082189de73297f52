package fuse_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

func require4KPages(t *testing.T) {
	if os.Getpagesize() != 4096 {
		t.Skip("INIT vectors assume 4 KiB pages")
	}
}

func TestInitGoldenWithInitExt(t *testing.T) {
	requireLittleEndian(t)
	require4KPages(t)
	s := fusetest.StartNoInit(t, &goldenFS{}, &fuse.Options{Capabilities: fuseproto.InitDirectIOAllowMmap})
	req := fusetest.Hex(
		"68000000 1a000000", // len 104, INIT
		"0200000000000000",  // unique 2
		"0000000000000000",  // nodeid 0
		"00000000 00000000", // uid, gid
		"00000000 00000000", // pid
		"07000000 2d000000", // major 7, minor 45
		"00000200 23204040", // max_readahead 128 KiB; flags ASYNC_READ|POSIX_LOCKS|BIG_WRITES|DO_READDIRPLUS|MAX_PAGES|INIT_EXT
		"30000000 00000000", // flags2 DIRECT_IO_ALLOW_MMAP|PASSTHROUGH, unused[0]
		"0000000000000000", "0000000000000000", "0000000000000000", "0000000000000000", "0000000000000000",
	)
	want := fusetest.Hex(
		"50000000 00000000",                                        // len 80, error 0
		"0200000000000000",                                         // unique 2
		"07000000 2d000000",                                        // major 7, minor 45
		"00000200 21204040",                                        // max_readahead echoed; flags: offered & wanted (no POSIX_LOCKS) | INIT_EXT
		"40003000 00001000",                                        // max_background 64, congestion_threshold 48, max_write 1 MiB
		"01000000 00010000",                                        // time_gran 1, max_pages 256, map_alignment 0
		"10000000 00000000",                                        // flags2 DIRECT_IO_ALLOW_MMAP (PASSTHROUGH not wanted), max_stack_depth 0
		"0000000000000000", "0000000000000000", "0000000000000000", // request_timeout, unused
	)
	if got := s.Roundtrip(req); !bytes.Equal(got, want) {
		t.Fatalf("INIT reply%s\nwant%s", rowsOf(got), rowsOf(want))
	}
	p := s.Server.Protocol()
	if p == nil || p.Minor != 45 || !p.Has(fuseproto.InitExt|fuseproto.InitDirectIOAllowMmap) || p.MaxWrite != 1<<20 {
		t.Errorf("Protocol() = %+v", p)
	}
}

func initReply(t *testing.T, s *fusetest.Session, in []byte) (fuseproto.OutHeader, []byte) {
	t.Helper()
	return fusetest.Reply(s.Roundtrip(fusetest.Request(fuseproto.OpInit, 2, 0, in)))
}

func TestInitNegotiation(t *testing.T) {
	require4KPages(t)
	full := func(minor uint32, flags, flags2 uint32) []byte {
		in := fuseproto.InitIn{Major: 7, Minor: minor, MaxReadahead: 1 << 16, Flags: flags, Flags2: flags2}
		return fusetest.Bytes(&in)
	}
	compat := func(minor uint32, flags uint32) []byte { return full(minor, flags, 0)[:fuseproto.CompatInitInSize] }
	// Iomap bits are gated by discovery (iomap_test.go); ALLOW_IDMAP is a
	// flags2 bit no option requests.
	flags2Hook := func(r *fuse.Request, in *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno {
		out.SetFlags64(out.Flags64() | fuseproto.InitAllowIdmap)
		return 0
	}

	cases := []struct {
		name       string
		opts       *fuse.Options
		hook       func(*fuse.Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno
		in         []byte
		wantErr    int32
		wantLen    int // reply payload length
		wantFlags  fuseproto.InitFlags
		wantMaxW   uint32
		wantMinor  uint32 // negotiated (Protocol().Minor)
		serveError error  // expected Serve result after Close
	}{
		{name: "7.45 without INIT_EXT ignores flags2",
			opts:    &fuse.Options{Capabilities: fuseproto.InitPassthrough},
			in:      full(45, uint32(fuseproto.InitAsyncRead|fuseproto.InitMaxPages), 0xffffffff),
			wantLen: 64, wantFlags: fuseproto.InitAsyncRead | fuseproto.InitMaxPages,
			wantMaxW: 1 << 20, wantMinor: 45},
		{name: "7.35 compat init_in (16 bytes)",
			in:      compat(35, uint32(fuseproto.InitAsyncRead|fuseproto.InitMaxPages|fuseproto.InitWritebackCache)),
			wantLen: 64, wantFlags: fuseproto.InitAsyncRead | fuseproto.InitMaxPages,
			wantMaxW: 1 << 20, wantMinor: 35},
		{name: "writeback cache and ACLs when asked",
			opts:    &fuse.Options{WritebackCache: true, PosixACL: true, DontMask: true},
			in:      compat(35, uint32(fuseproto.InitWritebackCache|fuseproto.InitPosixACL|fuseproto.InitDontMask)),
			wantLen: 64, wantFlags: fuseproto.InitWritebackCache | fuseproto.InitPosixACL | fuseproto.InitDontMask,
			wantMaxW: 32 * 4096, wantMinor: 35},
		{name: "disabled default capability",
			opts:    &fuse.Options{DisableCapabilities: fuseproto.InitDoReaddirplus},
			in:      compat(35, uint32(fuseproto.InitDoReaddirplus|fuseproto.InitAsyncRead)),
			wantLen: 64, wantFlags: fuseproto.InitAsyncRead, wantMaxW: 32 * 4096, wantMinor: 35},
		{name: "7.22 gets the 24-byte reply and 32-page writes",
			in:      compat(22, uint32(fuseproto.InitAsyncRead|fuseproto.InitBigWrites)),
			wantLen: 24, wantFlags: fuseproto.InitAsyncRead | fuseproto.InitBigWrites,
			wantMaxW: 32 * 4096, wantMinor: 22},
		{name: "7.12 (oldest accepted)",
			in:      compat(12, uint32(fuseproto.InitAsyncRead)),
			wantLen: 24, wantFlags: fuseproto.InitAsyncRead, wantMaxW: 32 * 4096, wantMinor: 12},
		{name: "7.11 refused",
			in:      compat(11, 0),
			wantErr: -int32(syscall.EPROTO), serveError: fuse.ErrProtocol},
		{name: "major 6 refused",
			in:      fusetest.Bytes(&fuseproto.InitIn{Major: 6, Minor: 99}),
			wantErr: -int32(syscall.EPROTO), serveError: fuse.ErrProtocol},
		{name: "hook adds an offered flags2 bit",
			hook:    flags2Hook,
			in:      full(45, uint32(fuseproto.InitExt|fuseproto.InitMaxPages), 1<<8),
			wantLen: 64, wantFlags: fuseproto.InitExt | fuseproto.InitMaxPages | fuseproto.InitAllowIdmap,
			wantMaxW: 1 << 20, wantMinor: 45},
		{name: "hook's unoffered bit is stripped",
			hook:    flags2Hook,
			in:      full(45, uint32(fuseproto.InitExt|fuseproto.InitMaxPages), 0),
			wantLen: 64, wantFlags: fuseproto.InitExt | fuseproto.InitMaxPages,
			wantMaxW: 1 << 20, wantMinor: 45},
		{name: "hook refuses",
			hook: func(*fuse.Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno { return syscall.EPERM },
			in:   full(45, 0, 0), wantErr: -int32(syscall.EPERM), serveError: fuse.ErrProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := &initFS{hook: c.hook}
			s := fusetest.StartNoInit(t, fs, c.opts)
			h, body := initReply(t, s, c.in)
			if h.Error != c.wantErr {
				t.Fatalf("error = %d, want %d", h.Error, c.wantErr)
			}
			if c.wantErr == 0 {
				if len(body) != c.wantLen {
					t.Errorf("reply payload %d bytes, want %d", len(body), c.wantLen)
				}
				out := fusetest.Decode[fuseproto.InitOut](body)
				if out.Major != 7 || out.Minor != fuseproto.KernelMinorVersion {
					t.Errorf("reply version %d.%d", out.Major, out.Minor)
				}
				if got := out.Flags64(); got != c.wantFlags {
					t.Errorf("flags = %v, want %v", got, c.wantFlags)
				}
				if out.MaxWrite != c.wantMaxW {
					t.Errorf("max_write = %d, want %d", out.MaxWrite, c.wantMaxW)
				}
				if p := s.Server.Protocol(); p == nil || p.Minor != c.wantMinor || p.Flags != c.wantFlags {
					t.Errorf("Protocol() = %+v", p)
				}
			}
			err := s.Close()
			if c.serveError == nil && err != nil || c.serveError != nil && !errors.Is(err, c.serveError) {
				t.Errorf("Serve() = %v, want %v", err, c.serveError)
			}
		})
	}
}

func TestReady(t *testing.T) {
	s := fusetest.StartNoInit(t, &goldenFS{}, nil)
	select {
	case <-s.Server.Ready():
		t.Fatal("Ready before INIT")
	default:
	}
	bad := fuseproto.InitIn{Major: 7, Minor: 5}
	s.Init(&bad)
	select {
	case <-s.Server.Ready():
		t.Fatal("Ready after a refused INIT")
	default:
	}

	s = fusetest.Start(t, &goldenFS{}, nil)
	select {
	case <-s.Server.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed after INIT")
	}
}

func TestInitNewerMajor(t *testing.T) {
	s := fusetest.StartNoInit(t, &goldenFS{}, nil)
	h, body := initReply(t, s, fusetest.Bytes(&fuseproto.InitIn{Major: 8, Minor: 1}))
	if h.Error != 0 || len(body) != fuseproto.CompatInitOutSize {
		t.Fatalf("reply error %d, %d bytes", h.Error, len(body))
	}
	if out := fusetest.Decode[fuseproto.InitOut](body); out.Major != 7 {
		t.Errorf("major = %d, want 7", out.Major)
	}
	if s.Server.Protocol() != nil {
		t.Error("protocol negotiated on a major mismatch")
	}
	// The kernel then retries with our major.
	in := fusetest.DefaultInit()
	if h, _ := s.Init(&in); h.Error != 0 {
		t.Fatalf("second INIT: error %d", h.Error)
	}
	if s.Server.Protocol() == nil {
		t.Fatal("second INIT did not negotiate")
	}
}

type initFS struct {
	fuse.NotImplemented
	hook func(*fuse.Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno
}

func (f *initFS) Init(r *fuse.Request, in *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno {
	if f.hook != nil {
		return f.hook(r, in, out)
	}
	return 0
}

func TestSetxattrExt(t *testing.T) {
	fs := &goldenFS{}
	s := fusetest.Start(t, fs, &fuse.Options{Capabilities: fuseproto.InitSetxattrExt})
	if !s.Server.Protocol().Has(fuseproto.InitSetxattrExt) {
		t.Fatal("SETXATTR_EXT not negotiated")
	}
	in := fuseproto.SetxattrIn{Size: 2, Flags: 2, SetxattrFlags: fuseproto.SetxattrACLKillSgid}
	h, _ := s.Do(fuseproto.OpSetxattr, 5, fusetest.Bytes(&in), fusetest.Name("system.posix_acl_access"), []byte("ab"))
	if h.Error != 0 {
		t.Fatalf("error %d", h.Error)
	}
	if got, want := fs.take(), "SetXattr(5, system.posix_acl_access=ab flags=2 ACL_KILL_SGID)"; len(got) != 1 || got[0] != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// blockFS blocks in Read until the request context is cancelled.
type blockFS struct {
	fuse.NotImplemented
	entered chan uint64
	done    chan error
}

func (b *blockFS) Read(r *fuse.Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	b.entered <- r.Unique
	select {
	case <-r.Ctx.Done():
		b.done <- r.Ctx.Err()
		return nil, syscall.EINTR
	case <-time.After(10 * time.Second):
		b.done <- errors.New("not interrupted")
		return nil, syscall.EIO
	}
}

func TestInterrupt(t *testing.T) {
	fs := &blockFS{entered: make(chan uint64, 1), done: make(chan error, 1)}
	s := fusetest.Start(t, fs, nil)
	read := fuseproto.ReadIn{Fh: 1, Size: 4096}
	s.Conn.Feed(fusetest.Request(fuseproto.OpRead, 0x100, 5, fusetest.Bytes(&read)))
	if u := <-fs.entered; u != 0x100 {
		t.Fatalf("entered for unique %#x", u)
	}
	intr := fuseproto.InterruptIn{Unique: 0x100}
	s.Conn.Feed(fusetest.Request(fuseproto.OpInterrupt, 0x100|fuseproto.IntReqBit, 0, fusetest.Bytes(&intr)))
	if err := <-fs.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("context: %v", err)
	}
	m, ok := s.Await(0x100, 10*time.Second)
	if !ok {
		t.Fatal("no reply to the interrupted READ")
	}
	if h, _ := fusetest.Reply(m); h.Error != -int32(syscall.EINTR) {
		t.Errorf("READ error = %d, want -EINTR", h.Error)
	}
	if m, ok := s.Await(0x101, 100*time.Millisecond); ok {
		t.Errorf("INTERRUPT of a running request got a reply: %x", m)
	}

	// An INTERRUPT for a request that is not in flight is answered EAGAIN,
	// which makes the kernel requeue it.
	intr.Unique = 0x200
	h, _ := fusetest.Reply(s.Roundtrip(fusetest.Request(fuseproto.OpInterrupt, 0x201, 0, fusetest.Bytes(&intr))))
	if h.Error != -int32(syscall.EAGAIN) {
		t.Errorf("INTERRUPT of unknown request: error %d, want -EAGAIN", h.Error)
	}
}

// panicFS panics in GetAttr.
type panicFS struct{ fuse.NotImplemented }

func (panicFS) GetAttr(*fuse.Request, *fuseproto.GetattrIn, *fuseproto.AttrOut) syscall.Errno {
	var m map[string]int
	m["boom"]++ // nil map write: a real runtime panic
	return 0
}

func (panicFS) StatFs(r *fuse.Request, out *fuseproto.StatfsOut) syscall.Errno {
	out.St.Bsize = 4096
	return 0
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestPanicRecovery(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := fusetest.Start(t, panicFS{}, &fuse.Options{Logger: logger})
	h, _ := s.Do(fuseproto.OpGetattr, 5, fusetest.Bytes(&fuseproto.GetattrIn{}))
	if h.Error != -int32(syscall.EIO) {
		t.Errorf("panicking GETATTR: error %d, want -EIO", h.Error)
	}
	// The session survives.
	h, body := s.Do(fuseproto.OpStatfs, 1)
	if h.Error != 0 || fusetest.Decode[fuseproto.StatfsOut](body).St.Bsize != 4096 {
		t.Errorf("STATFS after panic: error %d", h.Error)
	}
	out := logs.String()
	for _, want := range []string{"panic", "assignment to entry in nil map", "GETATTR", "goroutine"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownOpcode(t *testing.T) {
	s := fusetest.Start(t, &goldenFS{}, nil)
	for _, op := range []fuseproto.Opcode{4000, fuseproto.OpPoll, fuseproto.OpSetupmapping, fuseproto.CuseInit, 0} {
		h, body := s.Do(op, 1, make([]byte, 64))
		if h.Error != -int32(syscall.ENOSYS) || len(body) != 0 {
			t.Errorf("opcode %v: error %d, %d bytes; want -ENOSYS", op, h.Error, len(body))
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	fs := &goldenFS{}
	s := fusetest.Start(t, fs, nil)
	eio := -int32(syscall.EIO)
	write := fuseproto.WriteIn{Size: 10}
	cases := []struct {
		name string
		req  []byte
	}{
		{"LOOKUP name without NUL", fusetest.Request(fuseproto.OpLookup, 0x10, 1, []byte("foo"))},
		{"GETATTR short struct", fusetest.Request(fuseproto.OpGetattr, 0x12, 1, make([]byte, 8))},
		{"RENAME second name missing", fusetest.Request(fuseproto.OpRename, 0x14, 1, make([]byte, 8), fusetest.Name("a"))},
		{"WRITE size beyond data", fusetest.Request(fuseproto.OpWrite, 0x16, 5, fusetest.Bytes(&write), []byte("short"))},
		{"SETXATTR value beyond data", fusetest.Request(fuseproto.OpSetxattr, 0x18, 5, []byte{9, 0, 0, 0, 0, 0, 0, 0}, fusetest.Name("user.a"), []byte("x"))},
		{"extension longer than body", func() []byte {
			r := fusetest.Request(fuseproto.OpStatfs, 0x1a, 1)
			r[36] = 4 // total_extlen: 32 bytes that are not there
			return r
		}()},
		{"header len mismatch", func() []byte {
			r := fusetest.Request(fuseproto.OpStatfs, 0x1c, 1)
			r[0] = 48
			return r
		}()},
	}
	for _, c := range cases {
		h, _ := fusetest.Reply(s.Roundtrip(c.req))
		if h.Error != eio {
			t.Errorf("%s: error %d, want -EIO", c.name, h.Error)
		}
	}
	// A read shorter than a header cannot be answered; it is dropped and
	// the session goes on.
	s.Conn.Feed([]byte{1, 2, 3})
	if h, _ := s.Do(fuseproto.OpStatfs, 1); h.Error != 0 {
		t.Errorf("STATFS after garbage: error %d", h.Error)
	}
	// A malformed FORGET gets no reply either.
	s.Conn.Feed(fusetest.Request(fuseproto.OpForget, 0x30, 5, []byte{1}))
	if m, ok := s.Await(0x30, 100*time.Millisecond); ok {
		t.Errorf("malformed FORGET got a reply %x", m)
	}
	// BATCH_FORGET claiming more entries than it carries forgets what is there.
	bf := fuseproto.BatchForgetIn{Count: 5}
	one := fuseproto.ForgetOne{NodeID: 9, Nlookup: 4}
	s.Conn.Feed(fusetest.Request(fuseproto.OpBatchForget, 0x32, 0, fusetest.Bytes(&bf), fusetest.Bytes(&one)))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !containsCall(fs, "Forget(9, 4)") {
		time.Sleep(time.Millisecond)
	}
	if !containsCall(fs, "Forget(9, 4)") {
		t.Error("BATCH_FORGET entry not delivered")
	}
	for _, c := range fs.take() {
		if strings.HasPrefix(c, "Lookup") || strings.HasPrefix(c, "GetAttr") || strings.HasPrefix(c, "Write") ||
			strings.HasPrefix(c, "SetXattr") || strings.HasPrefix(c, "Rename") || c == "Forget(5, 1)" {
			t.Errorf("malformed request reached the filesystem: %s", c)
		}
	}
}

func containsCall(fs *goldenFS, call string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, c := range fs.log {
		if c == call {
			return true
		}
	}
	return false
}

func TestRequestExtensionsStripped(t *testing.T) {
	fs := &goldenFS{}
	s := fusetest.Start(t, fs, nil)
	// LOOKUP followed by one 8-byte extension (e.g. supplementary groups).
	r := fusetest.Request(fuseproto.OpLookup, 0x10, 1, fusetest.Name("foo"), []byte{0, 0, 0, 0}, []byte{8, 0, 0, 0, 32, 0, 0, 0})
	r[36] = 1 // total_extlen in 8-byte units
	// Alignment of the extension is the kernel's business; here the name
	// plus padding ends where the extension starts.
	if h, _ := fusetest.Reply(s.Roundtrip(r)); h.Error != 0 {
		t.Fatalf("error %d", h.Error)
	}
	if got := fs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "Lookup(1, foo)") {
		t.Errorf("calls %q", got)
	}
}

func TestRequestBeforeInit(t *testing.T) {
	s := fusetest.StartNoInit(t, &goldenFS{}, nil)
	h, _ := s.Do(fuseproto.OpStatfs, 1)
	if h.Error != -int32(syscall.EIO) {
		t.Errorf("STATFS before INIT: error %d, want -EIO", h.Error)
	}
}

type badErrnoFS struct{ fuse.NotImplemented }

func (badErrnoFS) StatFs(*fuse.Request, *fuseproto.StatfsOut) syscall.Errno { return 600 }

func TestErrnoOutOfRange(t *testing.T) {
	s := fusetest.Start(t, badErrnoFS{}, &fuse.Options{Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))})
	if h, _ := s.Do(fuseproto.OpStatfs, 1); h.Error != -int32(syscall.EIO) {
		t.Errorf("errno 600 sent as %d, want -EIO", h.Error)
	}
}

func TestNotImplementedIsENOSYS(t *testing.T) {
	s := fusetest.Start(t, fuse.NotImplemented{}, nil)
	for _, c := range goldenCases() {
		if c.reply == nil || strings.HasPrefix(c.name, "DESTROY") {
			continue
		}
		h := fusetest.Decode[fuseproto.InHeader](c.req)
		m := s.Roundtrip(c.req)
		if oh, _ := fusetest.Reply(m); oh.Error != -int32(syscall.ENOSYS) {
			t.Errorf("%v: error %d, want -ENOSYS", h.Opcode, oh.Error)
		}
	}
}

func TestAbort(t *testing.T) {
	s := fusetest.Start(t, &goldenFS{}, nil)
	s.Conn.Abort()
	if err := s.Close(); !errors.Is(err, fuse.ErrAborted) {
		t.Errorf("Serve after abort = %v, want ErrAborted", err)
	}
}

// TestShutdownWithRequestInFlight: unmount while a request blocks; the
// request's context is cancelled, Serve waits for it, then Destroy runs.
func TestShutdownWithRequestInFlight(t *testing.T) {
	fs := &destroyBlockFS{blockFS: blockFS{entered: make(chan uint64, 1), done: make(chan error, 1)}}
	s := fusetest.Start(t, fs, nil)
	read := fuseproto.ReadIn{Size: 10}
	s.Conn.Feed(fusetest.Request(fuseproto.OpRead, 0x40, 5, fusetest.Bytes(&read)))
	<-fs.entered
	if err := s.Close(); err != nil {
		t.Errorf("Serve = %v", err)
	}
	if err := <-fs.done; !errors.Is(err, context.Canceled) {
		t.Errorf("in-flight context: %v", err)
	}
	if fs.destroyed.Load() != 1 {
		t.Errorf("Destroy called %d times, want 1", fs.destroyed.Load())
	}
	select {
	case <-s.Server.Done():
	default:
		t.Error("Done not closed")
	}
	if err := s.Server.Wait(); err != nil {
		t.Errorf("Wait = %v", err)
	}
}

type destroyBlockFS struct {
	blockFS
	destroyed atomic.Int32
}

func (f *destroyBlockFS) Destroy() { f.destroyed.Add(1) }

func TestDestroyOnce(t *testing.T) {
	fs := &destroyBlockFS{}
	s := fusetest.Start(t, fs, nil)
	if h, _ := s.Do(fuseproto.OpDestroy, 0); h.Error != 0 {
		t.Fatalf("DESTROY error %d", h.Error)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.destroyed.Load(); n != 1 {
		t.Errorf("Destroy called %d times, want 1", n)
	}
}

// slowFS counts concurrent Lookups and Writes.
type slowFS struct {
	fuse.NotImplemented
	lookups, writes gauge
}

// gauge tracks a current and a peak count.
type gauge struct{ cur, peak atomic.Int32 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

func (f *slowFS) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	f.lookups.enter()
	defer f.lookups.leave()
	time.Sleep(5 * time.Millisecond)
	out.NodeID = uint64(len(name))
	return 0
}

func (f *slowFS) Write(r *fuse.Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno) {
	f.writes.enter()
	defer f.writes.leave()
	time.Sleep(2 * time.Millisecond)
	return uint32(len(data)), 0
}

// TestConcurrency: requests run concurrently; large ones (WRITE beyond the
// small-buffer size) are bounded by MaxLargeRequests, small ones are not.
func TestConcurrency(t *testing.T) {
	fs := &slowFS{}
	s := fusetest.Start(t, fs, &fuse.Options{MaxLargeRequests: 4, MaxReaders: 3})
	const n = 60
	data := make([]byte, 16<<10)
	for i := range n {
		s.Conn.Feed(fusetest.Request(fuseproto.OpLookup, uint64(0x1000+2*i), 1, fusetest.Name(strings.Repeat("x", 1+i%7))))
		w := fuseproto.WriteIn{Size: uint32(len(data))}
		s.Conn.Feed(fusetest.Request(fuseproto.OpWrite, uint64(0x8000+2*i), 5, fusetest.Bytes(&w), data))
	}
	for i := range n {
		m, ok := s.Await(uint64(0x1000+2*i), 20*time.Second)
		if !ok {
			t.Fatalf("no reply for lookup %d", i)
		}
		h, body := fusetest.Reply(m)
		if h.Error != 0 || fusetest.Decode[fuseproto.EntryOut](body).NodeID != uint64(1+i%7) {
			t.Fatalf("lookup %d: error %d", i, h.Error)
		}
		m, ok = s.Await(uint64(0x8000+2*i), 20*time.Second)
		if !ok {
			t.Fatalf("no reply for write %d", i)
		}
		if h, body := fusetest.Reply(m); h.Error != 0 || fusetest.Decode[fuseproto.WriteOut](body).Size != uint32(len(data)) {
			t.Fatalf("write %d: error %d", i, h.Error)
		}
	}
	if p := fs.writes.peak.Load(); p > 4 || p < 2 {
		t.Errorf("peak concurrent writes %d, want 2..4", p)
	}
	if p := fs.lookups.peak.Load(); p <= 4 {
		t.Errorf("peak concurrent lookups %d: small requests should not be bounded", p)
	}
}

func TestNotify(t *testing.T) {
	requireLittleEndian(t)
	s := fusetest.StartNoInit(t, &goldenFS{}, nil)
	if err := s.Server.InvalInode(5, 0, -1); !errors.Is(err, fuse.ErrNotInitialized) {
		t.Fatalf("notify before INIT: %v", err)
	}
	in := fusetest.DefaultInit()
	s.Init(&in)

	cases := []struct {
		name string
		send func() error
		want []byte
	}{
		{"INVAL_INODE", func() error { return s.Server.InvalInode(5, 4096, -1) }, fusetest.Hex(
			"28000000 02000000", // len 40, code NOTIFY_INVAL_INODE
			"0000000000000000",  // unique 0
			"0500000000000000",  // ino 5
			"0010000000000000",  // off 4096
			"ffffffffffffffff",  // len -1: to the end
		)},
		{"INVAL_ENTRY", func() error { return s.Server.InvalEntry(1, []byte("foo")) }, fusetest.Hex(
			"24000000 03000000", // len 36, NOTIFY_INVAL_ENTRY
			"0000000000000000",
			"0100000000000000",  // parent 1
			"03000000 00000000", // namelen 3, flags
			"666f6f00",          // "foo\0"
		)},
		{"DELETE", func() error { return s.Server.Delete(1, 5, []byte("foo")) }, fusetest.Hex(
			"2c000000 06000000", // len 44, NOTIFY_DELETE
			"0000000000000000",
			"0100000000000000",  // parent 1
			"0500000000000000",  // child 5
			"03000000 00000000", // namelen 3, padding
			"666f6f00",
		)},
		{"STORE", func() error { return s.Server.Store(5, 8, []byte("data")) }, fusetest.Hex(
			"2c000000 04000000", // len 44, NOTIFY_STORE
			"0000000000000000",
			"0500000000000000",  // nodeid 5
			"0800000000000000",  // offset 8
			"04000000 00000000", // size 4, padding
			"64617461",          // "data"
		)},
	}
	for _, c := range cases {
		if err := c.send(); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got, ok := s.Conn.Next(5 * time.Second)
		if !ok {
			t.Fatalf("%s: nothing written", c.name)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s:%s\nwant%s", c.name, rowsOf(got), rowsOf(c.want))
		}
	}
}

func TestUnmountOnSignal(t *testing.T) {
	s := fusetest.Start(t, &goldenFS{}, nil)
	stop := s.Server.UnmountOnSignal(syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Server.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after the signal")
	}
	if err := s.Server.Wait(); err != nil {
		t.Errorf("Serve = %v", err)
	}
}
