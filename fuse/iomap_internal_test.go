package fuse

import (
	"syscall"

	"github.com/e4box/e4box/fuseproto"
)

// touchFS answers iomap upcalls too, so FuzzRequest reaches the iomap
// handlers and the reply validation. The mapping is derived from the
// request, so the fuzzer produces both valid and rejected replies.
var _ IomapFileSystem = touchFS{}

func (touchFS) IomapBegin(r *Request, in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut) syscall.Errno {
	out.Offset, out.Length = in.Pos&^4095, in.Count
	out.ReadType, out.ReadFlags = fuseproto.IomapType(in.Reserved), fuseproto.IomapFlags(in.Reserved>>16)
	out.ReadDev, out.ReadAddr = uint32(in.AttrIno), in.AttrIno<<12
	return 0
}

func (touchFS) IomapEnd(r *Request, in *fuseproto.IomapEndIn) syscall.Errno {
	if in.Written < 0 {
		return syscall.EINVAL
	}
	return 0
}

func (touchFS) IomapIoend(r *Request, in *fuseproto.IomapIoendIn) syscall.Errno {
	if in.Error < 0 && in.Error > -512 {
		return syscall.Errno(-in.Error)
	}
	return 0
}
