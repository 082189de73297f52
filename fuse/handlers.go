package fuse

import (
	"syscall"

	"github.com/e4box/e4box/fuseproto"
)

// Handlers: decode the typed input, call the FileSystem, encode the reply.
// Each runs after parse has checked the fixed size and names.

func doDestroy(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	s.destroyOnce.Do(s.fs.Destroy)
	return nil, nil, 0
}

func doForget(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	s.fs.Forget(c.NodeID, argAs[fuseproto.ForgetIn](c).Nlookup)
	return nil, nil, 0
}

func doBatchForget(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.BatchForgetIn](c)
	const one = 16 // sizeof(struct fuse_forget_one)
	n := int(in.Count)
	if avail := len(c.data) / one; n > avail {
		s.log.Error("fuse: BATCH_FORGET count exceeds payload; truncated", "count", n, "avail", avail)
		n = avail
	}
	for i := range n {
		var f fuseproto.ForgetOne
		copy(structBytes(&f), c.data[i*one:])
		if f.NodeID == ProbeNodeID {
			continue // the runtime's own file (pollprobe.go)
		}
		s.fs.Forget(f.NodeID, f.Nlookup)
	}
	return nil, nil, 0
}

func doInterrupt(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	target := argAs[fuseproto.InterruptIn](c).Unique
	if !s.interrupt(target) {
		// Not (yet) registered: EAGAIN makes the kernel requeue the
		// INTERRUPT; if the request is already finished the kernel drops
		// the reply. This is the one INTERRUPT that gets a reply.
		s.reply(c, syscall.EAGAIN, nil, nil)
	}
	return nil, nil, 0
}

func doNotifyReply(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	// Answers to NOTIFY_RETRIEVE, which this runtime never sends.
	return nil, nil, 0
}

// doPoll answers ENOSYS, which makes the kernel stop sending POLL on the
// connection (see pollprobe.go): files are always ready, as on ext4.
func doPoll(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, syscall.ENOSYS
}

func entryReply(out *fuseproto.EntryOut, errno syscall.Errno) ([]byte, []byte, syscall.Errno) {
	if errno != 0 {
		return nil, nil, errno
	}
	return structBytes(out), nil, 0
}

func doLookup(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.EntryOut](c)
	return entryReply(out, s.fs.Lookup(&c.Request, c.names[0], out))
}

func doGetattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.AttrOut](c)
	if e := s.fs.GetAttr(&c.Request, argAs[fuseproto.GetattrIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doSetattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.AttrOut](c)
	if e := s.fs.SetAttr(&c.Request, argAs[fuseproto.SetattrIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doReadlink(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	target, e := s.fs.ReadLink(&c.Request)
	if e != 0 {
		return nil, nil, e
	}
	return target, nil, 0
}

func doSymlink(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.EntryOut](c)
	// Wire order: the new name, then the link target.
	return entryReply(out, s.fs.Symlink(&c.Request, c.names[0], c.names[1], out))
}

func doMknod(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.EntryOut](c)
	return entryReply(out, s.fs.Mknod(&c.Request, argAs[fuseproto.MknodIn](c), c.names[0], out))
}

func doMkdir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.EntryOut](c)
	return entryReply(out, s.fs.Mkdir(&c.Request, argAs[fuseproto.MkdirIn](c), c.names[0], out))
}

func doUnlink(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Unlink(&c.Request, c.names[0])
}

func doRmdir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Rmdir(&c.Request, c.names[0])
}

func doRename(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := fuseproto.Rename2In{Newdir: argAs[fuseproto.RenameIn](c).Newdir}
	return nil, nil, s.fs.Rename(&c.Request, &in, c.names[0], c.names[1])
}

func doRename2(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Rename(&c.Request, argAs[fuseproto.Rename2In](c), c.names[0], c.names[1])
}

func doLink(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.EntryOut](c)
	return entryReply(out, s.fs.Link(&c.Request, argAs[fuseproto.LinkIn](c), c.names[0], out))
}

func doOpen(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.OpenOut](c)
	if e := s.fs.Open(&c.Request, argAs[fuseproto.OpenIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doOpendir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.OpenOut](c)
	if e := s.fs.OpenDir(&c.Request, argAs[fuseproto.OpenIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

// replySize caps a kernel-chosen reply size to what the buffers hold.
func (s *Server) replySize(size uint32) int {
	return min(int(size), s.maxWrite)
}

func doRead(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.ReadIn](c)
	buf := s.dataBuf(c, s.replySize(in.Size))
	data, e := s.fs.Read(&c.Request, in, buf)
	if e != 0 {
		return nil, nil, e
	}
	if len(data) > len(buf) {
		// More than asked for would make the kernel reject the reply.
		data = data[:len(buf)]
	}
	return data, nil, 0
}

func doWrite(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.WriteIn](c)
	if uint64(in.Size) > uint64(len(c.data)) {
		return nil, nil, syscall.EIO
	}
	n, e := s.fs.Write(&c.Request, in, c.data[:in.Size])
	if e != 0 {
		return nil, nil, e
	}
	out := outStruct[fuseproto.WriteOut](c)
	out.Size = n
	return structBytes(out), nil, 0
}

func doStatfs(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.StatfsOut](c)
	if e := s.fs.StatFs(&c.Request, out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doRelease(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Release(&c.Request, argAs[fuseproto.ReleaseIn](c))
}

func doReleasedir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.ReleaseDir(&c.Request, argAs[fuseproto.ReleaseIn](c))
}

func doFsync(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Fsync(&c.Request, argAs[fuseproto.FsyncIn](c))
}

func doFsyncdir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.FsyncDir(&c.Request, argAs[fuseproto.FsyncIn](c))
}

func doSetxattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.SetxattrIn](c)
	if uint64(in.Size) > uint64(len(c.data)) {
		return nil, nil, syscall.EIO
	}
	return nil, nil, s.fs.SetXattr(&c.Request, in, c.names[0], c.data[:in.Size])
}

// xattrReply applies the GETXATTR/LISTXATTR size protocol: a zero-size
// request probes the size, a too-small buffer is ERANGE.
func xattrReply(c *call, want uint32, dest []byte, n int, e syscall.Errno) ([]byte, []byte, syscall.Errno) {
	if e != 0 {
		return nil, nil, e
	}
	if n < 0 {
		return nil, nil, syscall.EIO
	}
	if want == 0 {
		out := outStruct[fuseproto.GetxattrOut](c)
		out.Size = uint32(n)
		return structBytes(out), nil, 0
	}
	if n > len(dest) {
		return nil, nil, syscall.ERANGE
	}
	return dest[:n], nil, 0
}

func doGetxattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.GetxattrIn](c)
	var dest []byte
	if in.Size > 0 {
		dest = s.dataBuf(c, s.replySize(in.Size))
	}
	n, e := s.fs.GetXattr(&c.Request, c.names[0], dest)
	return xattrReply(c, in.Size, dest, n, e)
}

func doListxattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.GetxattrIn](c)
	var dest []byte
	if in.Size > 0 {
		dest = s.dataBuf(c, s.replySize(in.Size))
	}
	n, e := s.fs.ListXattr(&c.Request, dest)
	return xattrReply(c, in.Size, dest, n, e)
}

func doRemovexattr(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.RemoveXattr(&c.Request, c.names[0])
}

func doFlush(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Flush(&c.Request, argAs[fuseproto.FlushIn](c))
}

func doReaddir(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return readdir(s, c, false)
}

func doReaddirplus(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return readdir(s, c, true)
}

func readdir(s *Server, c *call, plus bool) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.ReadIn](c)
	c.dirList = DirList{buf: s.dataBuf(c, s.replySize(in.Size)), plus: plus}
	var e syscall.Errno
	if plus {
		e = s.fs.ReadDirPlus(&c.Request, in, &c.dirList)
	} else {
		e = s.fs.ReadDir(&c.Request, in, &c.dirList)
	}
	if e != 0 {
		return nil, nil, e
	}
	return c.dirList.Bytes(), nil, 0
}

func doGetlk(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.LkOut](c)
	if e := s.fs.GetLk(&c.Request, argAs[fuseproto.LkIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doSetlk(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.SetLk(&c.Request, argAs[fuseproto.LkIn](c), false)
}

func doSetlkw(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.SetLk(&c.Request, argAs[fuseproto.LkIn](c), true)
}

func doAccess(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Access(&c.Request, argAs[fuseproto.AccessIn](c))
}

func doCreate(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.CreateOut](c)
	if e := s.fs.Create(&c.Request, argAs[fuseproto.CreateIn](c), c.names[0], out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doTmpfile(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.CreateOut](c)
	if e := s.fs.Tmpfile(&c.Request, argAs[fuseproto.CreateIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doBmap(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.BmapOut](c)
	if e := s.fs.Bmap(&c.Request, argAs[fuseproto.BmapIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doIoctl(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.IoctlIn](c)
	if in.Flags&fuseproto.IoctlUnrestricted != 0 {
		return nil, nil, syscall.ENOSYS // CUSE only
	}
	if uint64(in.InSize) > uint64(len(c.data)) {
		return nil, nil, syscall.EIO
	}
	output := s.dataBuf(c, s.replySize(in.OutSize))
	result, n, e := s.fs.Ioctl(&c.Request, in, c.data[:in.InSize], output)
	if e != 0 {
		return nil, nil, e
	}
	if n < 0 || n > len(output) {
		return nil, nil, syscall.EIO
	}
	out := outStruct[fuseproto.IoctlOut](c)
	out.Result = result
	return structBytes(out), output[:n], 0
}

func doFallocate(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.Fallocate(&c.Request, argAs[fuseproto.FallocateIn](c))
}

func doLseek(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.LseekOut](c)
	if e := s.fs.Lseek(&c.Request, argAs[fuseproto.LseekIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}

func doCopyFileRange(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	in := argAs[fuseproto.CopyFileRangeIn](c)
	// The old reply has a 32-bit count; a short copy is legal, so ask for
	// no more than it can report.
	in.Len = min(in.Len, maxCopy32)
	n, e := s.fs.CopyFileRange(&c.Request, in)
	if e != 0 {
		return nil, nil, e
	}
	out := outStruct[fuseproto.WriteOut](c)
	out.Size = uint32(min(n, maxCopy32))
	return structBytes(out), nil, 0
}

// maxCopy32 bounds COPY_FILE_RANGE (32-bit reply) at 1 GiB, like the
// kernel's MAX_RW_COUNT rounding.
const maxCopy32 = 1 << 30

func doCopyFileRange64(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	n, e := s.fs.CopyFileRange(&c.Request, argAs[fuseproto.CopyFileRangeIn](c))
	if e != 0 {
		return nil, nil, e
	}
	out := outStruct[fuseproto.CopyFileRangeOut](c)
	out.BytesCopied = n
	return structBytes(out), nil, 0
}

func doSyncfs(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	return nil, nil, s.fs.SyncFs(&c.Request)
}

func doStatx(s *Server, c *call) ([]byte, []byte, syscall.Errno) {
	out := outStruct[fuseproto.StatxOut](c)
	if e := s.fs.Statx(&c.Request, argAs[fuseproto.StatxIn](c), out); e != 0 {
		return nil, nil, e
	}
	return structBytes(out), nil, 0
}
