package fuse

import (
	"encoding/binary"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// captureConn records replies; it never delivers requests (the fuzz test
// calls handle directly).
type captureConn struct {
	mu      sync.Mutex // protects replies
	replies [][]byte
}

func (c *captureConn) ReadRequest([]byte) (int, error) { return 0, syscall.ENODEV }
func (c *captureConn) WriteReply(iov [][]byte) error {
	var m []byte
	for _, v := range iov {
		m = append(m, v...)
	}
	c.mu.Lock()
	c.replies = append(c.replies, m)
	c.mu.Unlock()
	return nil
}
func (c *captureConn) Close() error { return nil }

// touchFS reads every input it gets and fills every output, so the fuzzer
// exercises the slices the parser hands out.
type touchFS struct{ NotImplemented }

func touch(bs ...[]byte) (sum byte) {
	for _, b := range bs {
		for _, x := range b {
			sum += x
		}
	}
	return sum
}

func (touchFS) Lookup(r *Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	out.NodeID = uint64(touch(name))
	return 0
}
func (touchFS) Symlink(r *Request, name, target []byte, out *fuseproto.EntryOut) syscall.Errno {
	out.NodeID = uint64(touch(name, target))
	return 0
}
func (touchFS) Rename(r *Request, in *fuseproto.Rename2In, a, b []byte) syscall.Errno {
	touch(a, b)
	return 0
}
func (touchFS) Write(r *Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno) {
	touch(data)
	return uint32(len(data)), 0
}
func (touchFS) SetXattr(r *Request, in *fuseproto.SetxattrIn, name, value []byte) syscall.Errno {
	touch(name, value)
	return 0
}
func (touchFS) GetXattr(r *Request, name, dest []byte) (int, syscall.Errno) {
	return copy(dest, name), 0
}
func (touchFS) Read(r *Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	for i := range buf {
		buf[i] = byte(i)
	}
	return buf, 0
}
func (touchFS) ReadDir(r *Request, in *fuseproto.ReadIn, out *DirList) syscall.Errno {
	for i := uint64(0); out.Add([]byte("entry"), i, 8, i+1); i++ {
	}
	return 0
}
func (touchFS) Ioctl(r *Request, in *fuseproto.IoctlIn, input, output []byte) (int32, int, syscall.Errno) {
	return int32(touch(input)), copy(output, input), 0
}

// panicDetector fails the test on any logged panic: handlers recover
// panics, which would otherwise hide parser bugs from the fuzzer.
type panicDetector struct {
	t  *testing.T
	mu sync.Mutex
}

func (p *panicDetector) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "panic") {
		p.mu.Lock()
		p.t.Errorf("recovered panic: %s", b)
		p.mu.Unlock()
	}
	return len(b), nil
}

func fuzzRequest(op fuseproto.Opcode, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	h := fuseproto.InHeader{Len: uint32(40 + len(b)), Opcode: op, Unique: 2, NodeID: 1}
	return append(append([]byte(nil), structBytes(&h)...), b...)
}

func FuzzRequest(f *testing.F) {
	w := fuseproto.WriteIn{Size: 3}
	sx := fuseproto.SetxattrIn{Size: 2}
	rd := fuseproto.ReadIn{Size: 200}
	bf := fuseproto.BatchForgetIn{Count: 2}
	io := fuseproto.IoctlIn{InSize: 2, OutSize: 8}
	f.Add(fuzzRequest(fuseproto.OpLookup, []byte("name\x00")))
	f.Add(fuzzRequest(fuseproto.OpSymlink, []byte("a\x00b\x00")))
	f.Add(fuzzRequest(fuseproto.OpRename2, make([]byte, 16), []byte("a\x00b\x00")))
	f.Add(fuzzRequest(fuseproto.OpWrite, structBytes(&w), []byte("abc")))
	f.Add(fuzzRequest(fuseproto.OpSetxattr, structBytes(&sx)[:8], []byte("user.x\x00ab")))
	f.Add(fuzzRequest(fuseproto.OpGetxattr, []byte{10, 0, 0, 0, 0, 0, 0, 0}, []byte("user.x\x00")))
	f.Add(fuzzRequest(fuseproto.OpRead, structBytes(&rd)))
	f.Add(fuzzRequest(fuseproto.OpReaddir, structBytes(&rd)))
	f.Add(fuzzRequest(fuseproto.OpBatchForget, structBytes(&bf), make([]byte, 16)))
	f.Add(fuzzRequest(fuseproto.OpIoctl, structBytes(&io), []byte("xy")))
	f.Add(fuzzRequest(fuseproto.OpInterrupt, make([]byte, 8)))
	f.Add(fuzzRequest(fuseproto.OpInit, make([]byte, 16)))
	f.Add(fuzzRequest(fuseproto.OpIomapBegin, make([]byte, 32)))
	f.Add(fuzzRequest(fuseproto.OpIomapEnd, make([]byte, 64)))
	f.Add(fuzzRequest(fuseproto.OpIomapIoend, make([]byte, 40)))
	f.Fuzz(func(t *testing.T, req []byte) {
		conn := &captureConn{}
		s := NewServer(conn, touchFS{}, &Options{MaxPages: 1,
			Logger: slog.New(slog.NewTextHandler(&panicDetector{t: t}, nil))})
		s.proto.Store(&Protocol{Major: 7, Minor: 45, MaxWrite: 4096, MaxRead: 4096})
		// The reader always hands handle a full-size, aligned buffer.
		bufp := s.bigPool.Get().(*[]byte)
		n := copy(*bufp, req)
		if n >= 4 {
			// Keep the length field honest half of the time, so parsing
			// gets past the length check.
			if req[0]&1 == 0 {
				binary.NativeEndian.PutUint32(*bufp, uint32(n))
			}
		}
		s.handle(bufp, n)
		s.handlerWG.Wait()
		s.cancel()
		conn.mu.Lock()
		defer conn.mu.Unlock()
		for _, m := range conn.replies {
			if len(m) < 16 {
				t.Fatalf("short reply %x", m)
			}
			var oh fuseproto.OutHeader
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&oh)), 16), m)
			if int(oh.Len) != len(m) {
				t.Fatalf("reply header len %d, message %d", oh.Len, len(m))
			}
			if oh.Error > 0 || oh.Error <= -512 {
				t.Fatalf("reply error %d out of range", oh.Error)
			}
		}
	})
}
