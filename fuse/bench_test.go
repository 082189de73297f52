package fuse

import (
	"syscall"
	"testing"

	"github.com/e4box/e4box/fuseproto"
)

// nullConn discards replies.
type nullConn struct{}

func (nullConn) ReadRequest([]byte) (int, error) { return 0, syscall.ENODEV }
func (nullConn) WriteReply([][]byte) error       { return nil }
func (nullConn) Close() error                    { return nil }

type benchFS struct{ NotImplemented }

func (benchFS) GetAttr(r *Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	out.Attr.Ino = r.NodeID
	return 0
}

func (benchFS) Read(r *Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	return buf, 0
}

// benchDispatch measures parse + dispatch + reply of one request, the
// per-request cost on top of the device syscalls.
func benchDispatch(b *testing.B, req []byte) {
	s := NewServer(nullConn{}, benchFS{}, nil)
	s.proto.Store(&Protocol{Major: 7, Minor: 45, MaxWrite: uint32(s.maxWrite), MaxRead: uint32(s.maxWrite)})
	bufp := s.bigPool.Get().(*[]byte)
	b.ReportAllocs()
	for b.Loop() {
		n := copy(*bufp, req)
		bufp = s.handle(bufp, n)
		s.handlerWG.Wait()
	}
}

func BenchmarkDispatchGetattr(b *testing.B) {
	in := fuseproto.GetattrIn{}
	benchDispatch(b, fuzzRequest(fuseproto.OpGetattr, structBytes(&in)))
}

func BenchmarkDispatchRead128K(b *testing.B) {
	in := fuseproto.ReadIn{Size: 128 << 10}
	benchDispatch(b, fuzzRequest(fuseproto.OpRead, structBytes(&in)))
}
