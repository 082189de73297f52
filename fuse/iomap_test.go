package fuse_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// iomapFS records iomap upcalls and answers with fixed mappings.
type iomapFS struct {
	fuse.NotImplemented
	mu        sync.Mutex // protects log
	log       []string
	begin     func(in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno
	destroyed atomic.Bool
}

var _ fuse.IomapFileSystem = (*iomapFS)(nil)

func (f *iomapFS) rec(format string, args ...any) {
	f.mu.Lock()
	f.log = append(f.log, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *iomapFS) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *iomapFS) Destroy() { f.destroyed.Store(true); f.rec("Destroy") }

func (f *iomapFS) IomapBegin(r *fuse.Request, in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno {
	f.rec("IomapBegin(%d, ino=%d op=%v pos=%#x count=%#x preset=%v)", r.NodeID, in.AttrIno, in.Opflags, in.Pos, in.Count, out.WriteType)
	if f.begin != nil {
		return f.begin(in, out)
	}
	// An unwritten extent covering the request, allocated by this call.
	*out = fuseproto.IomapBeginOut{
		Offset: 0x2000, Length: 0x4000,
		ReadAddr: 0x100000, ReadType: fuseproto.IomapTypeUnwritten,
		ReadFlags: fuseproto.IomapFNew | fuseproto.IomapFDirty, ReadDev: 0,
		WriteType: fuseproto.IomapTypePureOverwrite,
	}
	return 0
}

func (f *iomapFS) IomapEnd(r *fuse.Request, in *fuseproto.IomapEndIn) syscall.Errno {
	f.rec("IomapEnd(%d, ino=%d op=%v pos=%#x count=%#x written=%#x map{len=%#x addr=%#x %v %v dev=%d})",
		r.NodeID, in.AttrIno, in.Opflags, in.Pos, in.Count, in.Written,
		in.MapLength, in.MapAddr, in.MapType, in.MapFlags, in.MapDev)
	return 0
}

func (f *iomapFS) IomapIoend(r *fuse.Request, in *fuseproto.IomapIoendIn) syscall.Errno {
	f.rec("IomapIoend(%d, ino=%d %v error=%d pos=%#x written=%#x new_addr=%#x)",
		r.NodeID, in.AttrIno, in.Ioendflags, in.Error, in.Pos, in.Written, in.NewAddr)
	if in.Error != 0 {
		return syscall.Errno(-in.Error) // no metadata update; report the I/O error
	}
	return 0
}

// supported is an injected discovery result: a kernel with the series and
// enable_iomap on.
func supported() (fuseproto.IomapSupport, error) { return fuseproto.IomapSupportAll, nil }

// startIomap runs fs as an iomap session with all three modes on.
func startIomap(t *testing.T, fs fuse.FileSystem, opts *fuse.Options) *fusetest.Session {
	t.Helper()
	s, _ := fusetest.StartIomap(t, fs, opts)
	if p := s.Server.Protocol(); !p.Has(fuseproto.InitIomapAll) {
		t.Fatalf("iomap not negotiated: %v", p.Flags)
	}
	return s
}

// The iomap upcalls as a seed kernel sends them, and their replies.
func iomapGoldenCases() []goldenCase {
	return []goldenCase{
		{"IOMAP_BEGIN (DIO write)", hx([]string{
			"48000000 fe0f0000", // len 72, IOMAP_BEGIN 4094
			"2000000000000000",  // unique 0x20
			"0500000000000000",  // nodeid 5
			"e8030000 e8030000", // uid 1000, gid 1000
			"2a000000 00000000", // pid 42
			"11000000 00000000", // opflags WRITE|DIRECT, reserved
			"0c00000000000000",  // attr_ino 12
			"0030000000000000",  // pos 0x3000
			"0020000000000000",  // count 0x2000
		}), []string{"IomapBegin(5, ino=12 op=WRITE|DIRECT pos=0x3000 count=0x2000 preset=PURE_OVERWRITE)"}, hx([]string{
			"40000000 00000000", // len 64 (16+48), error 0
			"2000000000000000",  // unique
			"0020000000000000",  // offset 0x2000
			"0040000000000000",  // length 0x4000
			"0000100000000000",  // read_addr 1 MiB
			"03000300 00000000", // read_type UNWRITTEN, read_flags NEW|DIRTY, read_dev 0
			"0000000000000000",  // write_addr
			"ffff0000 00000000", // write_type PURE_OVERWRITE, write_flags 0, write_dev 0
		})},

		{"IOMAP_END (buffered write grew i_size)", hx([]string{
			"68000000 ff0f0000", // len 104, IOMAP_END 4095
			"2200000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"01000000 00000000", // opflags WRITE, reserved
			"0c00000000000000",  // attr_ino 12
			"0030000000000000",  // pos 0x3000
			"0020000000000000",  // count 0x2000
			"0010000000000000",  // written 0x1000
			"0040000000000000",  // map_length 0x4000
			"0000100000000000",  // map_addr 1 MiB
			"03000050 00000000", // map_type UNWRITTEN, map_flags WANT_IOMAP_END|SIZE_CHANGED, map_dev 0
		}), []string{"IomapEnd(5, ino=12 op=WRITE pos=0x3000 count=0x2000 written=0x1000 map{len=0x4000 addr=0x100000 UNWRITTEN WANT_IOMAP_END|SIZE_CHANGED dev=0})"}, hx([]string{
			"10000000 00000000", // header only
			"2200000000000000",
		})},

		{"IOMAP_IOEND (writeback into unwritten, appending)", hx([]string{
			"50000000 fd0f0000", // len 80, IOMAP_IOEND 4093
			"2400000000000000",
			"0500000000000000",
			"00000000 00000000", // writeback worker: uid 0, gid 0
			"00000000 00000000", // pid 0
			"02800000 00000000", // ioendflags UNWRITTEN|APPEND, reserved, error 0
			"0c00000000000000",  // attr_ino 12
			"0030000000000000",  // pos 0x3000
			"ffffffffffffffff",  // new_addr NULL_ADDR
			"00200000 00000000", // written 0x2000, reserved1
		}), []string{"IomapIoend(5, ino=12 UNWRITTEN|APPEND error=0 pos=0x3000 written=0x2000 new_addr=0xffffffffffffffff)"}, hx([]string{
			"10000000 00000000",
			"2400000000000000",
		})},

		{"IOMAP_IOEND (failed DIO write)", hx([]string{
			"50000000 fd0f0000",
			"2600000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0a000000 fbffffff", // ioendflags UNWRITTEN|DIRECT, error -EIO
			"0c00000000000000",
			"0000000000000000",  // pos 0
			"ffffffffffffffff",  // new_addr
			"00100000 00000000", // written 0x1000
		}), []string{"IomapIoend(5, ino=12 UNWRITTEN|DIRECT error=-5 pos=0x0 written=0x1000 new_addr=0xffffffffffffffff)"}, hx([]string{
			"10000000 fbffffff", // error -EIO, header only
			"2600000000000000",
		})},
	}
}

func TestIomapGolden(t *testing.T) {
	requireLittleEndian(t)
	fs := &iomapFS{}
	s := startIomap(t, fs, nil)
	for _, c := range iomapGoldenCases() {
		if n := binary.LittleEndian.Uint32(c.req); int(n) != len(c.req) {
			t.Fatalf("%s: vector bug: header len %d, %d bytes", c.name, n, len(c.req))
		}
		got := s.Roundtrip(c.req)
		if !bytes.Equal(got, c.reply) {
			t.Errorf("%s: reply%s\nwant%s", c.name, rowsOf(got), rowsOf(c.reply))
		}
		if calls := fs.take(); !slices.Equal(calls, c.calls) {
			t.Errorf("%s: calls %q, want %q", c.name, calls, c.calls)
		}
	}
	// The sizes the seed kernel sends.
	for _, c := range []struct {
		op   fuseproto.Opcode
		size int
	}{{fuseproto.OpIomapBegin, 72}, {fuseproto.OpIomapEnd, 104}, {fuseproto.OpIomapIoend, 80}} {
		var found bool
		for _, g := range iomapGoldenCases() {
			if fuseproto.Opcode(binary.LittleEndian.Uint32(g.req[4:])) == c.op {
				found = true
				if len(g.req) != c.size {
					t.Errorf("%v vector is %d bytes, want %d", c.op, len(g.req), c.size)
				}
			}
		}
		if !found {
			t.Errorf("no vector for %v", c.op)
		}
	}
}

// Without IomapFileSystem: BEGIN is ENOSYS, END and IOEND succeed (libfuse).
func TestIomapNotImplemented(t *testing.T) {
	requireLittleEndian(t)
	s := startIomap(t, &goldenFS{}, nil)
	for _, c := range iomapGoldenCases() {
		h, body := fusetest.Reply(s.Roundtrip(c.req))
		op := fuseproto.Opcode(binary.LittleEndian.Uint32(c.req[4:]))
		want := int32(0)
		if op == fuseproto.OpIomapBegin {
			want = -int32(syscall.ENOSYS)
		}
		if h.Error != want || len(body) != 0 || h.Len != 16 {
			t.Errorf("%s: error %d len %d body %d, want error %d, header only", c.name, h.Error, h.Len, len(body), want)
		}
	}
}

func TestIomapBeginRejectsBadReplies(t *testing.T) {
	fs := &iomapFS{}
	s := startIomap(t, fs, nil)
	begin := func(op fuseproto.IomapOpFlags, pos uint64) (fuseproto.OutHeader, []byte) {
		in := fuseproto.IomapBeginIn{Opflags: op, AttrIno: 12, Pos: pos, Count: 4096}
		return s.Do(fuseproto.OpIomapBegin, 5, fusetest.Bytes(&in))
	}
	cases := []struct {
		name  string
		op    fuseproto.IomapOpFlags
		reply func(out *fuseproto.IomapBeginOut)
		errno syscall.Errno
	}{
		{"mapped read", 0, func(o *fuseproto.IomapBeginOut) {
			o.Offset, o.Length, o.ReadType, o.ReadAddr = 0, 1<<20, fuseproto.IomapTypeMapped, 1<<30
		}, 0},
		{"filesystem errno passes through", 0, nil, syscall.ENOSPC},
		{"zeroed reply for a write is a zero-length HOLE", fuseproto.IomapOpWrite, func(o *fuseproto.IomapBeginOut) {
			*o = fuseproto.IomapBeginOut{}
		}, syscall.EIO},
		{"DEV_NULL read device", 0, func(o *fuseproto.IomapBeginOut) {
			o.Length, o.ReadDev = 1<<20, fuseproto.IomapDevNull
		}, syscall.EIO},
		{"inline outside REPORT", 0, func(o *fuseproto.IomapBeginOut) {
			o.Length, o.ReadType = 1<<20, fuseproto.IomapTypeInline
		}, syscall.EIO},
		{"inline for REPORT", fuseproto.IomapOpReport, func(o *fuseproto.IomapBeginOut) {
			o.Length, o.ReadType, o.ReadAddr = 1<<20, fuseproto.IomapTypeInline, fuseproto.IomapNullAddr
		}, 0},
		{"SIZE_CHANGED in a begin reply", 0, func(o *fuseproto.IomapBeginOut) {
			o.Length, o.ReadFlags = 1<<20, fuseproto.IomapFSizeChanged
		}, syscall.EIO},
	}
	for _, c := range cases {
		fs.begin = func(in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno {
			if c.reply == nil {
				return c.errno
			}
			c.reply(out)
			return 0
		}
		h, body := begin(c.op, 8192)
		if h.Error != -int32(c.errno) {
			t.Errorf("%s: error %d, want %d", c.name, h.Error, -int32(c.errno))
		}
		wantLen := 48
		if c.errno != 0 {
			wantLen = 0
		}
		if len(body) != wantLen {
			t.Errorf("%s: payload %d bytes, want %d", c.name, len(body), wantLen)
		}
	}
	fs.take()

	// A short BEGIN never reaches the filesystem.
	in := fuseproto.IomapBeginIn{Pos: 0, Count: 1}
	h, _ := s.Do(fuseproto.OpIomapBegin, 5, fusetest.Bytes(&in)[:24])
	if h.Error != -int32(syscall.EIO) {
		t.Errorf("short BEGIN: error %d, want EIO", h.Error)
	}
	if calls := fs.take(); len(calls) != 0 {
		t.Errorf("short BEGIN reached the filesystem: %q", calls)
	}
}

// initWith answers in with the options and returns the flags replied on
// the wire and the session.
func initWith(t *testing.T, opts *fuse.Options, fs fuse.FileSystem, in fuseproto.InitIn) (fuseproto.InitOut, *fusetest.Session) {
	t.Helper()
	s := fusetest.StartNoInit(t, fs, opts)
	h, body := s.Init(&in)
	if h.Error != 0 {
		t.Fatalf("INIT: errno %d", -h.Error)
	}
	return fusetest.Decode[fuseproto.InitOut](body), s
}

func TestIomapNegotiation(t *testing.T) {
	all := fuseproto.InitIomapAll
	noIomap := func() (fuseproto.IomapSupport, error) {
		return 0, fmt.Errorf("%w (test)", fuse.ErrNoKernelIomap)
	}
	disabled := func() (fuseproto.IomapSupport, error) { return 0, nil } // enable_iomap=n
	basicsOnly := func() (fuseproto.IomapSupport, error) { return fuseproto.IomapSupportBasics, nil }
	offer := func(f fuseproto.InitFlags) fuseproto.InitIn {
		in := fusetest.IomapInit()
		in.Flags, in.Flags2 = (in.Flags64()&^all | f).Split()
		return in
	}
	hook := func(set, clear fuseproto.InitFlags) func(*fuse.Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno {
		return func(_ *fuse.Request, _ *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno {
			out.SetFlags64(out.Flags64()&^clear | set)
			return 0
		}
	}
	cases := []struct {
		name     string
		want     fuseproto.IomapSupport
		discover func() (fuseproto.IomapSupport, error)
		hook     func(*fuse.Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno
		in       fuseproto.InitIn
		got      fuseproto.InitFlags // iomap bits in the reply
		status   string
	}{
		{name: "all wanted, supported, offered", want: fuseproto.IomapSupportAll, discover: supported,
			in: offer(all), got: all, status: "fuse-iomap on: IOMAP|IOMAP_DIRECTIO|IOMAP_PAGECACHE"},
		{name: "basics only", want: fuseproto.IomapSupportBasics, discover: supported,
			in: offer(all), got: fuseproto.InitIomap, status: "fuse-iomap on: IOMAP"},
		{name: "directio implies IOMAP", want: fuseproto.IomapSupportDirectIO, discover: supported,
			in: offer(all), got: fuseproto.InitIomap | fuseproto.InitIomapDirectIO},
		{name: "kernel supports basics only", want: fuseproto.IomapSupportAll, discover: basicsOnly,
			in: offer(all), got: fuseproto.InitIomap},
		{name: "not offered at INIT", want: fuseproto.IomapSupportAll, discover: supported,
			in: offer(0), got: 0,
			status: "kernel supports fuse-iomap but did not offer it at INIT (fuse enable_iomap off?); using the classic read/write path"},
		{name: "offered without IOMAP", want: fuseproto.IomapSupportAll, discover: supported,
			in: offer(fuseproto.InitIomapDirectIO | fuseproto.InitIomapPagecache), got: 0},
		{name: "discovery failed", want: fuseproto.IomapSupportAll, discover: noIomap,
			in: offer(all), got: 0, status: fuse.NoKernelIomapMessage},
		{name: "discovery says disabled", want: fuseproto.IomapSupportAll, discover: disabled,
			in: offer(all), got: 0, status: fuse.NoKernelIomapMessage},
		{name: "not wanted", want: 0, discover: supported,
			in: offer(all), got: 0, status: "fuse-iomap not requested; using the classic read/write path"},
		{name: "flags2 without INIT_EXT", want: fuseproto.IomapSupportAll, discover: supported,
			in: func() fuseproto.InitIn {
				in := offer(all)
				in.Flags &^= uint32(fuseproto.InitExt)
				return in
			}(), got: 0},
		{name: "hook adds iomap without discovery: stripped", want: fuseproto.IomapSupportAll, discover: noIomap,
			hook: hook(all, 0), in: offer(all), got: 0},
		{name: "hook adds iomap without Options.Iomap: stripped", want: 0, discover: supported,
			hook: hook(all, 0), in: offer(all), got: 0},
		{name: "hook adds a supported mode", want: fuseproto.IomapSupportBasics, discover: supported,
			hook: hook(fuseproto.InitIomapPagecache, 0), in: offer(all),
			got: fuseproto.InitIomap | fuseproto.InitIomapPagecache},
		{name: "hook drops IOMAP: the others go too", want: fuseproto.IomapSupportAll, discover: supported,
			hook: hook(0, fuseproto.InitIomap), in: offer(all), got: 0,
			status: "filesystem declined fuse-iomap at INIT; using the classic read/write path"},
		{name: "hook drops INIT_EXT: nothing in flags2", want: fuseproto.IomapSupportAll, discover: supported,
			hook: hook(0, fuseproto.InitExt), in: offer(all), got: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			discover := func() (fuseproto.IomapSupport, error) { calls.Add(1); return c.discover() }
			opts := &fuse.Options{Iomap: c.want, IomapDiscover: discover}
			out, s := initWith(t, opts, &initFS{hook: c.hook}, c.in)
			got := out.Flags64() & all
			if got != c.got {
				t.Errorf("reply iomap bits %v, want %v", got, c.got)
			}
			// On the wire: flags2 bits 11-13, and only with INIT_EXT.
			if hi := out.Flags2 & 0x3800; hi != uint32(c.got>>32) {
				t.Errorf("flags2 = %#x, want iomap bits %#x", out.Flags2, uint32(c.got>>32))
			}
			if c.got != 0 && out.Flags&uint32(fuseproto.InitExt) == 0 {
				t.Errorf("iomap bits without INIT_EXT: flags %#x", out.Flags)
			}
			if p := s.Server.Protocol(); p.Flags&all != c.got {
				t.Errorf("Protocol().Flags = %v", p.Flags)
			}
			if want := int32(min(c.want, 1)); calls.Load() != want {
				t.Errorf("discovery ran %d times, want %d", calls.Load(), want)
			}
			if c.status != "" && s.Server.IomapStatus() != c.status {
				t.Errorf("IomapStatus = %q, want %q", s.Server.IomapStatus(), c.status)
			}
		})
	}
}

// On this machine's kernel (no fuse-iomap series) discovery must report no
// support, and a session asking for iomap must come up classic. Set
// E4BOX_IOMAP_KERNEL=1 on a kernel built with the series.
func TestDiscoverIomapThisKernel(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/dev/fuse missing under CI: %v", err)
		}
		t.Skipf("/dev/fuse: %v", err)
	}
	flags, err := fuse.DiscoverIomap()
	if os.Getenv("E4BOX_IOMAP_KERNEL") == "1" {
		if err != nil || flags&fuseproto.IomapSupportBasics == 0 {
			t.Fatalf("DiscoverIomap = %v, %v on an iomap kernel", flags, err)
		}
		return
	}
	if flags != 0 || !errors.Is(err, fuse.ErrNoKernelIomap) {
		t.Fatalf("DiscoverIomap = %v, %v; want 0 and ErrNoKernelIomap", flags, err)
	}
	t.Logf("DiscoverIomap: %v", err)

	// The default discovery gates INIT even when the kernel "offers" it.
	out, s := initWith(t, &fuse.Options{Iomap: fuseproto.IomapSupportAll}, &goldenFS{}, fusetest.IomapInit())
	if out.Flags64()&fuseproto.InitIomapAll != 0 {
		t.Errorf("iomap negotiated without kernel support: %v", out.Flags64())
	}
	if got := s.Server.IomapStatus(); got != fuse.NoKernelIomapMessage {
		t.Errorf("IomapStatus = %q", got)
	}
	if _, err := s.Server.AddIomapDevice(0); !errors.Is(err, fuse.ErrIomapNotNegotiated) {
		t.Errorf("AddIomapDevice on a classic session: %v", err)
	}
}

func openFile(t *testing.T) int {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "dev"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestAddIomapDevice(t *testing.T) {
	requireLittleEndian(t)
	devs := &fusetest.IomapDevices{AnyFile: true}
	s := startIomap(t, &iomapFS{}, nil)
	s.Conn.SetWriteHook(fusetest.AddIomapDeviceHook(devs.Register))
	fd1, fd2 := openFile(t), openFile(t)

	c1, err := s.Server.AddIomapDevice(fd1)
	if err != nil || c1 != 0 {
		t.Fatalf("AddIomapDevice(fd1) = %d, %v; want cookie 0", c1, err)
	}
	msg, ok := s.Conn.Next(5 * time.Second)
	if !ok {
		t.Fatal("no notification written")
	}
	want := fusetest.Hex(
		"20000000 08000000", // len 32, code 8 FUSE_NOTIFY_ADD_IOMAP_DEVICE
		"0000000000000000",  // unique 0
	)
	var fdRow [8]byte
	binary.LittleEndian.PutUint32(fdRow[:], uint32(fd1)) // fd, reserved 0
	want = append(want, fdRow[:]...)
	if len(msg) != 32 || !bytes.Equal(msg[:24], want) {
		t.Fatalf("notification%s\nwant (+8-byte pointer)%s", rowsOf(msg), rowsOf(want))
	}
	if binary.LittleEndian.Uint64(msg[24:]) == 0 {
		t.Error("map_dev pointer is NULL")
	}

	// Cached per fd: no second notification, same cookie.
	if c, err := s.Server.AddIomapDevice(fd1); err != nil || c != c1 {
		t.Errorf("second AddIomapDevice(fd1) = %d, %v", c, err)
	}
	if m, ok := s.Conn.Next(50 * time.Millisecond); ok {
		t.Errorf("cached registration wrote%s", rowsOf(m))
	}
	c2, err := s.Server.AddIomapDevice(fd2)
	if err != nil || c2 != 1 {
		t.Errorf("AddIomapDevice(fd2) = %d, %v; want cookie 1", c2, err)
	}
	s.Conn.Next(5 * time.Second)
	if got := devs.Registered(); !slices.Equal(got, []int32{int32(fd1), int32(fd2)}) {
		t.Errorf("kernel table %v", got)
	}

	// Kernel refusals come back as errors and are not cached.
	strict := &fusetest.IomapDevices{} // regular files are ENODEV
	s.Conn.SetWriteHook(fusetest.AddIomapDeviceHook(strict.Register))
	fd3 := openFile(t)
	if _, err := s.Server.AddIomapDevice(fd3); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("non-block fd: %v, want ENODEV", err)
	}
	s.Conn.Next(5 * time.Second)
	if _, err := s.Server.AddIomapDevice(int(^uint32(0) >> 2)); !errors.Is(err, syscall.EBADF) {
		t.Errorf("closed fd: %v, want EBADF", err)
	}
	s.Conn.Next(5 * time.Second)
	s.Conn.SetWriteHook(fusetest.AddIomapDeviceHook(devs.Register))
	if c, err := s.Server.AddIomapDevice(fd3); err != nil || c != 2 {
		t.Errorf("retry after refusal = %d, %v; want 2", c, err)
	}
	s.Conn.Next(5 * time.Second)

	// A kernel that accepts the write but stores no cookie.
	s.Conn.SetWriteHook(func([]byte) error { return nil })
	if _, err := s.Server.AddIomapDevice(openFile(t)); !errors.Is(err, syscall.EIO) {
		t.Errorf("no cookie stored: %v, want EIO", err)
	}
	s.Conn.Next(5 * time.Second)
	if _, err := s.Server.AddIomapDevice(-1); !errors.Is(err, syscall.EBADF) {
		t.Errorf("fd -1: %v", err)
	}
}

func TestAddIomapDeviceGates(t *testing.T) {
	fd := openFile(t)
	// Before INIT.
	s := fusetest.StartNoInit(t, &iomapFS{}, &fuse.Options{Iomap: fuseproto.IomapSupportAll, IomapDiscover: supported})
	if _, err := s.Server.AddIomapDevice(fd); !errors.Is(err, fuse.ErrNotInitialized) {
		t.Errorf("before INIT: %v", err)
	}
	// INIT without iomap offered.
	in := fusetest.DefaultInit()
	s.Init(&in)
	if _, err := s.Server.AddIomapDevice(fd); !errors.Is(err, fuse.ErrIomapNotNegotiated) {
		t.Errorf("without iomap: %v", err)
	}
	// iomap offered by a kernel claiming minor 43: negotiated (support
	// comes from discovery, never the minor) but add-device needs 7.44.
	in = fusetest.IomapInit()
	in.Minor = 43
	out, s2 := initWith(t, &fuse.Options{Iomap: fuseproto.IomapSupportAll, IomapDiscover: supported}, &iomapFS{}, in)
	if out.Flags64()&fuseproto.InitIomap == 0 {
		t.Fatalf("iomap not negotiated at 7.43: %v", out.Flags64())
	}
	if _, err := s2.Server.AddIomapDevice(fd); !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("minor 43: %v, want ENOSYS", err)
	}
	for _, c := range []*fusetest.Conn{s.Conn, s2.Conn} {
		if m, ok := c.Next(50 * time.Millisecond); ok {
			t.Errorf("refused registration wrote%s", rowsOf(m))
		}
	}
}

// A fuseblk mount's own device is cookie 0 without a notification; other
// fds are registered.
func TestAddIomapDeviceFuseblk(t *testing.T) {
	dev := findBlockDevice(t)
	fd, err := unix.Open(dev, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", dev, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })

	devs := &fusetest.IomapDevices{AnyFile: true, Fuseblk: true}
	s := startIomap(t, &iomapFS{}, &fuse.Options{BlockDevice: true, FsName: dev})
	s.Conn.SetWriteHook(fusetest.AddIomapDeviceHook(devs.Register))
	if c, err := s.Server.AddIomapDevice(fd); err != nil || c != fuseproto.IomapDevFuseblk {
		t.Errorf("fuseblk device = %d, %v; want cookie 0", c, err)
	}
	if m, ok := s.Conn.Next(50 * time.Millisecond); ok {
		t.Errorf("fuseblk device was registered%s", rowsOf(m))
	}
	// Another fd is registered after the kernel's own device 0.
	if c, err := s.Server.AddIomapDevice(openFile(t)); err != nil || c != 1 {
		t.Errorf("other fd = %d, %v; want cookie 1", c, err)
	}
	if m, ok := s.Conn.Next(5 * time.Second); !ok || len(m) != 32 {
		t.Errorf("other fd not registered by notification")
	}
}

// findBlockDevice returns some block device node (an idle loop device is
// fine: it is only stat'ed).
func findBlockDevice(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/dev/loop0", "/dev/loop1", "/dev/sda", "/dev/vda", "/dev/nvme0n1"} {
		var st syscall.Stat_t
		if syscall.Stat(name, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			return name
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no block device node under CI")
	}
	t.Skip("no block device node")
	return ""
}

// Iomap sessions get DESTROY at unmount and the kernel waits for its
// header-only reply: Destroy runs before umount returns.
func TestIomapDestroy(t *testing.T) {
	requireLittleEndian(t)
	fs := &iomapFS{}
	s := startIomap(t, fs, nil)
	h, body := s.Do(fuseproto.OpDestroy, 0)
	if h.Error != 0 || len(body) != 0 {
		t.Fatalf("DESTROY reply: error %d, %d bytes", h.Error, len(body))
	}
	if !fs.destroyed.Load() {
		t.Fatal("Destroy not called before the reply")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Serve = %v", err)
	}
	if got := fs.take(); !slices.Equal(got, []string{"Destroy"}) {
		t.Errorf("calls %q: Destroy must run exactly once", got)
	}
}

// A real mount asking for iomap on a kernel without it comes up classic:
// data is served through READ and the status says why.
//
// The file is read by a child process: an in-process os.Open registers the
// fd with the netpoller, whose epoll_ctl makes the kernel send FUSE_POLL
// from a thread that holds its P; a GC stop-the-world then waits for that
// thread while the server goroutines that would answer are stopped.
func TestRealMountIomapFallback(t *testing.T) {
	requireMount(t)
	if os.Getenv("E4BOX_IOMAP_KERNEL") == "1" {
		t.Skip("kernel has fuse-iomap")
	}
	dir := t.TempDir()
	fs := newTinyFS()
	srv, err := fuse.Mount(dir, fs, &fuse.Options{FsName: "tinyfs", ReadOnly: true, Iomap: fuseproto.IomapSupportAll})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if got := srv.IomapStatus(); got != fuse.NoKernelIomapMessage {
		t.Errorf("IomapStatus before INIT = %q", got)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		if mountedAt(t, dir) {
			_ = fuse.Unmount(dir, true)
		}
	})
	got, err := exec.Command("cat", filepath.Join(dir, "hello")).Output()
	if err != nil || !bytes.Equal(got, helloData) {
		t.Fatalf("cat hello = %q, %v", got, err)
	}
	if p := srv.Protocol(); p == nil || p.Flags&fuseproto.InitIomapAll != 0 {
		t.Errorf("negotiated %+v", p)
	}
	if got := srv.IomapStatus(); got != fuse.NoKernelIomapMessage {
		t.Errorf("IomapStatus = %q", got)
	}
	if _, err := srv.AddIomapDevice(0); !errors.Is(err, fuse.ErrIomapNotNegotiated) {
		t.Errorf("AddIomapDevice: %v", err)
	}
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := waitServe(t, served); err != nil {
		t.Errorf("Serve = %v", err)
	}
}
