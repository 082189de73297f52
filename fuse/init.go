package fuse

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// wantFlags are the capabilities the options ask for.
func (s *Server) wantFlags() fuseproto.InitFlags {
	o := &s.opts
	f := DefaultCapabilities | o.Capabilities
	if o.WritebackCache {
		f |= fuseproto.InitWritebackCache
	}
	if o.PosixACL {
		f |= fuseproto.InitPosixACL
	}
	if o.DontMask {
		f |= fuseproto.InitDontMask
	}
	f |= s.iomapWant()
	return f &^ o.DisableCapabilities
}

// pagesWithoutMaxPages is the kernel's request size in pages when
// FUSE_MAX_PAGES is not negotiated (FUSE_DEFAULT_MAX_PAGES_PER_REQ).
const pagesWithoutMaxPages = 32

// initOutSize is how much of InitOut a kernel of the given minor accepts:
// it rejects a longer reply.
func initOutSize(minor uint32) int {
	switch {
	case minor < 5:
		return fuseproto.CompatInitOutSize
	case minor < 23:
		return fuseproto.Compat22InitOutSize
	}
	return int(unsafe.Sizeof(fuseproto.InitOut{}))
}

// doInit negotiates the protocol: the minor is the smaller of both sides,
// flags are what the kernel offered and the options want, flags2 is used
// only when the kernel offered INIT_EXT. The FileSystem's Init hook sees the
// proposal and may adjust it; the result is sanitised again.
func doInit(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	if s.proto.Load() != nil {
		s.log.Error("fuse: duplicate INIT")
		return nil, nil, syscall.EIO
	}
	in := argAs[fuseproto.InitIn](c)
	out := outStruct[fuseproto.InitOut](c)
	out.Major, out.Minor = fuseproto.KernelVersion, fuseproto.KernelMinorVersion

	switch {
	case in.Major > fuseproto.KernelVersion:
		// Newer major: answer with ours and wait for a matching INIT.
		return structBytes(out)[:fuseproto.CompatInitOutSize], nil, 0
	case in.Major < fuseproto.KernelVersion || in.Minor < MinKernelMinor:
		s.initFailed(fmt.Errorf("%w: kernel protocol %d.%d, need 7.%d or newer",
			ErrProtocol, in.Major, in.Minor, MinKernelMinor))
		return nil, nil, syscall.EPROTO
	}

	minor := min(in.Minor, fuseproto.KernelMinorVersion)
	offered := in.Flags64()
	reply := s.wantFlags() & offered
	if offered&fuseproto.InitExt != 0 {
		reply |= fuseproto.InitExt
	}

	maxWrite, maxPages := s.maxWrite, s.opts.MaxPages
	if reply&fuseproto.InitMaxPages == 0 {
		maxPages = min(maxPages, pagesWithoutMaxPages)
		maxWrite = maxPages * s.pageSize
	}
	out.MaxReadahead = in.MaxReadahead
	out.SetFlags64(reply)
	out.MaxBackground = s.opts.MaxBackground
	out.CongestionThreshold = s.opts.CongestionThreshold
	out.MaxWrite = uint32(maxWrite)
	out.TimeGran = 1
	if reply&fuseproto.InitMaxPages != 0 {
		out.MaxPages = uint16(maxPages)
	}

	if e := s.fs.Init(&c.Request, in, out); e != 0 {
		s.initFailed(fmt.Errorf("%w: filesystem Init: %v", ErrProtocol, e))
		return nil, nil, e
	}

	// Sanitise what the hook left: only offered bits, flags2 only with
	// INIT_EXT, iomap bits only with discovered support, sizes within
	// what the buffers hold.
	final := iomapFilter(out.Flags64()&offered, s.iomap.kernel)
	out.SetFlags64(final)
	out.Major, out.Minor = fuseproto.KernelVersion, fuseproto.KernelMinorVersion
	out.MaxReadahead = min(out.MaxReadahead, in.MaxReadahead)
	out.MaxWrite = min(max(out.MaxWrite, 4096), uint32(maxWrite))
	out.MaxPages = min(out.MaxPages, uint16(maxPages))

	p := &Protocol{
		Major:        fuseproto.KernelVersion,
		Minor:        minor,
		KernelFlags:  offered,
		Flags:        final,
		MaxReadahead: out.MaxReadahead,
		MaxWrite:     out.MaxWrite,
		MaxRead:      uint32(maxWrite),
		MaxPages:     out.MaxPages,
		TimeGran:     out.TimeGran,
	}
	s.proto.Store(p)
	s.startProbe()
	s.log.Debug("fuse: INIT", "kernel", fmt.Sprintf("7.%d", in.Minor), "minor", minor,
		"offered", offered.String(), "flags", final.String(), "max_write", out.MaxWrite)
	if s.opts.Iomap != 0 {
		s.log.Debug("fuse: " + s.IomapStatus())
	}
	return structBytes(out)[:initOutSize(minor)], nil, 0
}

// initFailed ends the session after a failed INIT: the kernel marks the
// connection broken, so detach the mount to make the readers see ENODEV.
func (s *Server) initFailed(err error) {
	s.log.Error("fuse: INIT failed", "err", err)
	s.stop(err)
	if s.mountpoint != "" {
		go func() { _ = unmount(s.mountpoint, true) }()
	}
}
