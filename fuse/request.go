package fuse

import (
	"context"

	"github.com/e4box/e4box/fuseproto"
)

// Request describes one kernel request to a FileSystem method. It is valid
// only until the method returns; the runtime reuses it afterwards.
type Request struct {
	// Ctx is cancelled when the kernel interrupts the request (the caller
	// got a signal) or the session shuts down. Long operations should
	// check it and return EINTR.
	Ctx context.Context

	Opcode fuseproto.Opcode
	Unique uint64
	NodeID uint64 // target inode, or parent directory for name-based opcodes
	Uid    uint32 // caller's fsuid
	Gid    uint32 // caller's fsgid
	Pid    uint32 // caller's thread group id; 0 for kernel-initiated requests

	// Proto is the negotiated protocol; nil only while INIT is answered.
	Proto *Protocol
}

// Protocol is what INIT negotiated. It is immutable once INIT is answered.
type Protocol struct {
	Major, Minor uint32 // Minor is min(kernel, fuseproto.KernelMinorVersion)

	// KernelFlags are the capabilities the kernel offered; Flags those in
	// effect (offered and replied).
	KernelFlags fuseproto.InitFlags
	Flags       fuseproto.InitFlags

	MaxReadahead uint32
	MaxWrite     uint32 // largest WRITE payload
	MaxRead      uint32 // largest READ/READDIR size the runtime will serve
	MaxPages     uint16
	TimeGran     uint32
}

// Has reports whether every flag in f is in effect.
func (p *Protocol) Has(f fuseproto.InitFlags) bool { return p.Flags&f == f }
