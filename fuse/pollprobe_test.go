package fuse_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

// le32 is v as a golden row fragment.
func le32(v int) string { return fmt.Sprintf("%08x", bits.ReverseBytes32(uint32(v))) }

// probeAttrRows is the probe file's struct fuse_attr.
func probeAttrRows() []string {
	return []string{
		"6c6c6f7000000080",               // ino = ProbeNodeID
		"0000000000000000",               // size 0
		"0000000000000000",               // blocks 0
		"0000000000000000",               // atime
		"0000000000000000",               // mtime
		"0000000000000000",               // ctime
		"00000000 00000000",              // atimensec, mtimensec
		"00000000 a4810000",              // ctimensec, mode 0100644
		"01000000 " + le32(os.Geteuid()), // nlink 1, uid: the server's
		le32(os.Getegid()) + " 00000000", // gid, rdev
		"00100000 00000000",              // blksize 4096, flags
	}
}

// startProbing starts a session whose simulated poll probe runs until the
// returned func is called.
func startProbing(t *testing.T, fs fuse.FileSystem) (*fusetest.Session, func()) {
	s := fusetest.StartNoInit(t, fs, nil)
	release := make(chan struct{})
	fuse.SetProbeForTest(s.Server, func() error { <-release; return nil })
	in := fusetest.DefaultInit()
	if h, _ := s.Init(&in); h.Error != 0 {
		t.Fatalf("INIT: errno %d", -h.Error)
	}
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	t.Cleanup(stop)
	return s, stop
}

// TestProbeGolden checks the runtime's own replies for the probe file while
// the probe runs, that opening requests wait for it, and that none of it
// reaches the FileSystem.
func TestProbeGolden(t *testing.T) {
	requireLittleEndian(t)
	fs := &goldenFS{}
	s, finish := startProbing(t, fs)

	cases := []struct {
		name  string
		req   []byte
		reply []byte
	}{
		{"LOOKUP probe name", hx([]string{
			"3a000000 01000000", // len 58, LOOKUP
			"1000000000000000",  // unique
			"0100000000000000",  // nodeid 1 (root)
			"e8030000 e8030000",
			"2a000000 00000000",
			"2e6534626f782d70 6f6c6c2d70726f62 6500", // ".e4box-poll-probe\0"
		}), hx([]string{
			"90000000 00000000", // len 144
			"1000000000000000",
			"6c6c6f7000000080",  // nodeid = ProbeNodeID
			"0000000000000000",  // generation
			"0000000000000000",  // entry_valid 0
			"0000000000000000",  // attr_valid 0
			"00000000 00000000", // nsecs
		}, probeAttrRows())},

		{"GETATTR", hx([]string{
			"38000000 03000000",
			"1200000000000000",
			"6c6c6f7000000080", // nodeid = ProbeNodeID
			"e8030000 e8030000",
			"2a000000 00000000",
			"00000000 00000000",
			"0000000000000000",
		}), hx([]string{
			"78000000 00000000", // len 120
			"1200000000000000",
			"0000000000000000",  // attr_valid 0
			"00000000 00000000", // attr_valid_nsec, dummy
		}, probeAttrRows())},

		{"OPEN", hx([]string{
			"30000000 0e000000", // len 48, OPEN
			"1400000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00800000 00000000", // flags O_RDONLY|O_LARGEFILE, open_flags
		}), hx([]string{
			"20000000 00000000", // len 32
			"1400000000000000",
			"0000000000000000",  // fh 0
			"00000000 00000000", // open_flags, backing_id
		})},

		{"POLL", hx([]string{
			"40000000 28000000", // len 64, POLL
			"1600000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0000000000000000",  // fh
			"0000000000000000",  // kh
			"00000000 01000000", // flags, events POLLIN
		}), hx([]string{
			"10000000 daffffff", // len 16, -ENOSYS: the kernel sets no_poll
			"1600000000000000",
		})},

		{"GETXATTR (ACL check)", hx([]string{
			"48000000 16000000", // len 72, GETXATTR
			"1800000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00100000 00000000", // size 4096, padding
			"73797374656d2e70 6f7369785f61636c 5f61636365737300", // system.posix_acl_access
		}), hx([]string{
			"10000000 c3ffffff", // -ENODATA
			"1800000000000000",
		})},

		{"FLUSH", hx([]string{
			"40000000 19000000", // len 64, FLUSH
			"1a00000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0000000000000000",  // fh
			"00000000 00000000", // unused, padding
			"0000000000000000",  // lock_owner
		}), hx([]string{
			"10000000 00000000",
			"1a00000000000000",
		})},

		{"RELEASE", hx([]string{
			"40000000 12000000", // len 64, RELEASE
			"1c00000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0000000000000000",  // fh
			"00800000 00000000", // flags, release_flags
			"0000000000000000",  // lock_owner
		}), hx([]string{
			"10000000 00000000",
			"1c00000000000000",
		})},

		{"SETATTR (anything else: EIO)", hx([]string{
			"80000000 04000000",
			"1e00000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
		}, zeroRows(11)), hx([]string{
			"10000000 fbffffff", // -EIO
			"1e00000000000000",
		})},

		{"FORGET (no reply)", hx([]string{
			"30000000 02000000",
			"2000000000000000",
			"6c6c6f7000000080",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0100000000000000", // nlookup 1
		}), nil},
	}

	// Opening requests wait for the probe; CREATE in the root does not
	// (its caller holds the root's lock, which the probe's LOOKUP needs).
	open5 := fusetest.Request(fuseproto.OpOpen, 0x100, 5, fusetest.Bytes(&fuseproto.OpenIn{}))
	create := fusetest.Request(fuseproto.OpCreate, 0x102, 7, fusetest.Bytes(&fuseproto.CreateIn{Mode: 0o100644}), fusetest.Name("new"))
	tmpfile := fusetest.Request(fuseproto.OpTmpfile, 0x104, 7, fusetest.Bytes(&fuseproto.CreateIn{Mode: 0o100644}))
	for _, r := range [][]byte{open5, create, tmpfile} {
		s.Conn.Feed(r)
	}

	for _, c := range cases {
		if int(binary.LittleEndian.Uint32(c.req)) != len(c.req) {
			t.Fatalf("%s: vector bug: header len %d, %d bytes", c.name, binary.LittleEndian.Uint32(c.req), len(c.req))
		}
		unique := binary.LittleEndian.Uint64(c.req[8:])
		s.Conn.Feed(c.req)
		wait := 10 * time.Second
		if c.reply == nil {
			wait = 100 * time.Millisecond // long enough for a wrong reply to show
		}
		got, ok := s.Await(unique, wait)
		switch {
		case c.reply == nil && ok:
			t.Errorf("%s: unexpected reply%s", c.name, rowsOf(got))
		case c.reply != nil && !ok:
			t.Errorf("%s: no reply", c.name)
		case c.reply != nil && !bytes.Equal(got, c.reply):
			t.Errorf("%s: reply%s\nwant%s", c.name, rowsOf(got), rowsOf(c.reply))
		}
	}
	if h, _ := s.Do(fuseproto.OpCreate, fuseproto.RootID, fusetest.Bytes(&fuseproto.CreateIn{Mode: 0o100644}), fusetest.Name("top")); h.Error != 0 {
		t.Errorf("CREATE in the root during the probe: errno %d", -h.Error)
	}
	if h, _ := s.Do(fuseproto.OpLookup, fuseproto.RootID, fusetest.Name("other")); h.Error != 0 {
		t.Errorf("LOOKUP of another name during the probe: errno %d", -h.Error)
	}
	if got, want := fs.take(), []string{
		"Create(1, top, flags=0x0 mode=100644 umask=0)",
		"Lookup(1, other) uid=1000 gid=1000 pid=42",
	}; !slices.Equal(got, want) {
		t.Errorf("FileSystem calls during the probe %q, want %q", got, want)
	}
	for _, u := range []uint64{0x100, 0x102, 0x104} {
		if m, ok := s.Await(u, 100*time.Millisecond); ok {
			t.Errorf("unique %#x answered before the probe finished: %s", u, rowsOf(m))
		}
	}
	select {
	case <-s.Server.Ready():
		t.Error("Ready closed while the probe runs")
	default:
	}
	if !fuse.ProbePolled(s.Server) {
		t.Error("POLL on the probe file not recorded")
	}

	finish()
	for _, u := range []uint64{0x100, 0x102, 0x104} {
		if m, ok := s.Await(u, 10*time.Second); !ok {
			t.Errorf("unique %#x not answered after the probe", u)
		} else if h, _ := fusetest.Reply(m); h.Error != 0 {
			t.Errorf("unique %#x: errno %d", u, -h.Error)
		}
	}
	select {
	case <-s.Server.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("Ready not closed after the probe")
	}
	// The name is the FileSystem's again.
	s.Do(fuseproto.OpLookup, fuseproto.RootID, fusetest.Name(fuse.ProbeName))
	got := fs.take()
	slices.Sort(got)
	want := []string{
		"Create(7, new, flags=0x0 mode=100644 umask=0)",
		"Lookup(1, .e4box-poll-probe) uid=1000 gid=1000 pid=42",
		"Open(5, flags=0x0)",
		"Tmpfile(7, flags=0x0 mode=100644)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("FileSystem calls after the probe %q, want %q", got, want)
	}
}

// TestProbeInterruptedOpen: an OPEN waiting for the probe is answered EINTR
// when the kernel interrupts it.
func TestProbeInterruptedOpen(t *testing.T) {
	fs := &goldenFS{}
	s, _ := startProbing(t, fs)
	s.Conn.Feed(fusetest.Request(fuseproto.OpOpen, 0x200, 5, fusetest.Bytes(&fuseproto.OpenIn{})))
	if _, ok := s.Await(0x200, 50*time.Millisecond); ok {
		t.Fatal("OPEN answered during the probe")
	}
	s.Conn.Feed(fusetest.Request(fuseproto.OpInterrupt, 0x202, 0, fusetest.Bytes(&fuseproto.InterruptIn{Unique: 0x200})))
	m, ok := s.Await(0x200, 10*time.Second)
	if !ok {
		t.Fatal("interrupted OPEN not answered")
	}
	if h, _ := fusetest.Reply(m); h.Error != -int32(syscall.EINTR) {
		t.Errorf("interrupted OPEN: error %d, want -EINTR", h.Error)
	}
	if got := fs.take(); len(got) != 0 {
		t.Errorf("FileSystem calls %q", got)
	}
}

// TestProbeFailureIsNotFatal: a failed probe is logged, and the session
// goes on: Ready closes and opens are served.
func TestProbeFailureIsNotFatal(t *testing.T) {
	var logs syncBuffer
	fs := &goldenFS{}
	s := fusetest.StartNoInit(t, fs, &fuse.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	fuse.SetProbeForTest(s.Server, func() error { return syscall.EACCES })
	in := fusetest.DefaultInit()
	if h, _ := s.Init(&in); h.Error != 0 {
		t.Fatalf("INIT: errno %d", -h.Error)
	}
	if h, _ := s.Do(fuseproto.OpOpen, 5, fusetest.Bytes(&fuseproto.OpenIn{})); h.Error != 0 {
		t.Errorf("OPEN after a failed probe: errno %d", -h.Error)
	}
	select {
	case <-s.Server.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("Ready not closed after a failed probe")
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "poll probe failed") ||
		!strings.Contains(out, "permission denied") {
		t.Errorf("log lacks the probe failure:\n%s", out)
	}
}

// TestProbeNodeNeverReachesFileSystem sends every golden request again with
// ProbeNodeID where a nodeid goes: the runtime answers (or drops) them all
// and the FileSystem sees nothing. Outside the probe, the name is not
// intercepted (checked in TestProbeGolden).
func TestProbeNodeNeverReachesFileSystem(t *testing.T) {
	requireLittleEndian(t)
	fs := &goldenFS{}
	s := fusetest.Start(t, fs, nil)
	setU64 := func(b []byte, off int, v uint64) []byte {
		b = slices.Clone(b)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	const nodeOff, argOff = 16, 40 // header nodeid; first input field
	for _, c := range goldenCases() {
		if binary.LittleEndian.Uint64(c.req[nodeOff:]) == 0 {
			continue // DESTROY, BATCH_FORGET: no target node
		}
		reqs := [][]byte{setU64(c.req, nodeOff, fuse.ProbeNodeID)}
		switch c.name {
		case "LINK", "RENAME", "RENAME2": // oldnodeid, newdir
			reqs = append(reqs, setU64(c.req, argOff, fuse.ProbeNodeID))
		case "COPY_FILE_RANGE", "COPY_FILE_RANGE_64": // nodeid_out
			reqs = append(reqs, setU64(c.req, argOff+16, fuse.ProbeNodeID))
		}
		for i, req := range reqs {
			unique := binary.LittleEndian.Uint64(req[8:])
			s.Conn.Feed(req)
			if c.reply != nil {
				m, ok := s.Await(unique, 10*time.Second)
				if !ok {
					t.Errorf("%s #%d: no reply", c.name, i)
					continue
				}
				if h, body := fusetest.Reply(m); h.Error == 0 && len(body) > 0 && bytes.Equal(body, c.reply[16:]) {
					t.Errorf("%s #%d: the FileSystem's reply came back", c.name, i)
				}
			} else if m, ok := s.Await(unique, 20*time.Millisecond); ok {
				t.Errorf("%s #%d: unexpected reply%s", c.name, i, rowsOf(m))
			}
			if got := fs.take(); len(got) != 0 {
				t.Errorf("%s #%d: FileSystem calls %q", c.name, i, got)
			}
		}
	}

	// BATCH_FORGET forwards the other nodes only.
	batch := hx([]string{
		"50000000 2a000000",
		"7000000000000000",
		"0000000000000000",
		"e8030000 e8030000",
		"2a000000 00000000",
		"02000000 00000000", // count 2
		"6c6c6f7000000080",  // [0].nodeid ProbeNodeID
		"0100000000000000",
		"0600000000000000", // [1].nodeid 6
		"0200000000000000",
	})
	s.Conn.Feed(batch)
	deadline := time.Now().Add(10 * time.Second)
	for fs.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got, want := fs.take(), []string{"Forget(6, 2)"}; !slices.Equal(got, want) {
		t.Errorf("BATCH_FORGET: calls %q, want %q", got, want)
	}
}

// probeWatchFS is tinyFS recording any call that names the probe file.
type probeWatchFS struct {
	*tinyFS
	mu   sync.Mutex // protects seen
	seen []string
}

func (w *probeWatchFS) check(op string, node uint64, name []byte) {
	if node == fuse.ProbeNodeID || string(name) == fuse.ProbeName {
		w.mu.Lock()
		w.seen = append(w.seen, fmt.Sprintf("%s(%#x, %q)", op, node, name))
		w.mu.Unlock()
	}
}

func (w *probeWatchFS) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	w.check("Lookup", r.NodeID, name)
	return w.tinyFS.Lookup(r, name, out)
}
func (w *probeWatchFS) Forget(node, n uint64) { w.check("Forget", node, nil); w.tinyFS.Forget(node, n) }
func (w *probeWatchFS) GetAttr(r *fuse.Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	w.check("GetAttr", r.NodeID, nil)
	return w.tinyFS.GetAttr(r, in, out)
}
func (w *probeWatchFS) Statx(r *fuse.Request, in *fuseproto.StatxIn, out *fuseproto.StatxOut) syscall.Errno {
	w.check("Statx", r.NodeID, nil)
	return w.tinyFS.Statx(r, in, out)
}
func (w *probeWatchFS) Open(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	w.check("Open", r.NodeID, nil)
	return w.tinyFS.Open(r, in, out)
}
func (w *probeWatchFS) Read(r *fuse.Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	w.check("Read", r.NodeID, nil)
	return w.tinyFS.Read(r, in, buf)
}
func (w *probeWatchFS) Flush(r *fuse.Request, in *fuseproto.FlushIn) syscall.Errno {
	w.check("Flush", r.NodeID, nil)
	return 0
}
func (w *probeWatchFS) Release(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno {
	w.check("Release", r.NodeID, nil)
	return 0
}
func (w *probeWatchFS) GetXattr(r *fuse.Request, name, dest []byte) (int, syscall.Errno) {
	w.check("GetXattr", r.NodeID, nil)
	return 0, syscall.ENODATA
}
func (w *probeWatchFS) Access(r *fuse.Request, in *fuseproto.AccessIn) syscall.Errno {
	w.check("Access", r.NodeID, nil)
	return 0
}

// fuseConnAbortPath returns the fusectl abort file of the mount on dir,
// mounting fusectl if needed. It skips the test when fusectl is missing.
func fuseConnAbortPath(t *testing.T, dir string) string {
	t.Helper()
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(ctl + "/"); err != nil {
		t.Skip("no fusectl directory")
	}
	if !mountedAt(t, ctl) {
		if err := syscall.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil {
			t.Skipf("cannot mount fusectl: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(ctl, 0) })
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil { // waits for INIT
		t.Fatal(err)
	}
	// fusectl names connections by the kernel's dev_t (major<<20 | minor).
	conn := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	return filepath.Join(ctl, strconv.FormatUint(conn, 10), "abort")
}

// TestInProcessOpenUnderGC opens files of the mount from the serving
// process, through os.Open (so the netpoller's epoll_ctl runs), right after
// mounting and while another goroutine collects garbage in a loop. Without
// the poll probe the first epoll_ctl sends FUSE_POLL, and a stop-the-world
// during it never ends. A hang cannot be caught from inside (the watchdog
// goroutine would be stopped too), so a shell aborts the connection after a
// deadline, which unblocks the process and fails the test.
func TestInProcessOpenUnderGC(t *testing.T) {
	requireMount(t)
	var stopGC atomic.Bool
	var gcWG sync.WaitGroup
	gcWG.Add(1)
	go func() {
		defer gcWG.Done()
		for !stopGC.Load() {
			runtime.GC()
		}
	}()
	defer func() { stopGC.Store(true); gcWG.Wait() }()

	const rounds = 20
	for i := range rounds {
		dir := t.TempDir()
		fs := &probeWatchFS{tinyFS: newTinyFS()}
		// Odd rounds: default_permissions (the kernel then checks the probe
		// file's attributes) and read-write.
		opts := &fuse.Options{FsName: "probe", ReadOnly: i%2 == 0, DefaultPermissions: i%2 == 1}
		srv, err := fuse.Mount(dir, fs, opts)
		if err != nil {
			t.Fatalf("round %d: Mount: %v", i, err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve() }()
		t.Cleanup(func() {
			if mountedAt(t, dir) {
				_ = fuse.Unmount(dir, true)
			}
		})
		abort := fuseConnAbortPath(t, dir)
		watchdog := exec.Command("sh", "-c", "sleep 30; echo 1 > "+abort)
		if err := watchdog.Start(); err != nil {
			_ = fuse.Unmount(dir, true)
			t.Fatalf("watchdog: %v", err)
		}
		fired := make(chan error, 1)
		go func() { fired <- watchdog.Wait() }()

		// No wait for Ready: OPEN waits for the probe by itself.
		for _, name := range []string{"hello", "big", "hello"} {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("round %d: open %s: %v", i, name, err)
				continue
			}
			if _, err := io.Copy(io.Discard, f); err != nil {
				t.Errorf("round %d: read %s: %v", i, name, err)
			}
			f.Close()
		}
		select {
		case <-srv.Ready():
		case <-time.After(10 * time.Second):
			t.Errorf("round %d: Ready not closed", i)
		}
		if !fuse.ProbePolled(srv) {
			t.Errorf("round %d: the kernel sent no POLL to the probe file", i)
		}
		if err := srv.Unmount(); err != nil {
			t.Errorf("round %d: Unmount: %v", i, err)
			_ = fuse.Unmount(dir, true)
		}
		if err := waitServe(t, served); err != nil {
			t.Errorf("round %d: Serve: %v", i, err)
		}

		select {
		case <-fired:
			t.Fatalf("round %d: the process hung until the watchdog aborted the connection", i)
		default:
			_ = watchdog.Process.Kill()
			<-fired
		}
		fs.mu.Lock()
		seen := fs.seen
		fs.mu.Unlock()
		if len(seen) > 0 {
			t.Fatalf("round %d: the FileSystem saw the probe file: %q", i, seen)
		}
	}
}
