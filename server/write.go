package server

import (
	"syscall"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// The modifying opcodes. The kernel refuses them on a read-only mount
// before they reach us, so these answers only matter for a mount that was
// made writable by mistake: EROFS when the server is read-only, ENOSYS
// until the write path (fs.Update) lands.

func (s *Server) refuseWrite() syscall.Errno {
	if s.opts.ReadOnly {
		return syscall.EROFS
	}
	return syscall.ENOSYS
}

func (s *Server) SetAttr(r *fuse.Request, in *fuseproto.SetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Symlink(r *fuse.Request, name, target []byte, out *fuseproto.EntryOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Mknod(r *fuse.Request, in *fuseproto.MknodIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Mkdir(r *fuse.Request, in *fuseproto.MkdirIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Unlink(r *fuse.Request, name []byte) syscall.Errno { return s.refuseWrite() }

func (s *Server) Rmdir(r *fuse.Request, name []byte) syscall.Errno { return s.refuseWrite() }

func (s *Server) Rename(r *fuse.Request, in *fuseproto.Rename2In, oldName, newName []byte) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Link(r *fuse.Request, in *fuseproto.LinkIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Write(r *fuse.Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno) {
	return 0, s.refuseWrite()
}

func (s *Server) SetXattr(r *fuse.Request, in *fuseproto.SetxattrIn, name, value []byte) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) RemoveXattr(r *fuse.Request, name []byte) syscall.Errno { return s.refuseWrite() }

func (s *Server) Create(r *fuse.Request, in *fuseproto.CreateIn, name []byte, out *fuseproto.CreateOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Tmpfile(r *fuse.Request, in *fuseproto.CreateIn, out *fuseproto.CreateOut) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) Fallocate(r *fuse.Request, in *fuseproto.FallocateIn) syscall.Errno {
	return s.refuseWrite()
}

func (s *Server) CopyFileRange(r *fuse.Request, in *fuseproto.CopyFileRangeIn) (uint64, syscall.Errno) {
	return 0, s.refuseWrite()
}
