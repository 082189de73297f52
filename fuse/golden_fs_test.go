package fuse_test

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
)

// goldenFS records every call as a line of text and answers with fixed
// values, so golden tests can check both the decoding (the record) and the
// encoding (the reply bytes).
type goldenFS struct {
	mu  sync.Mutex // protects log
	log []string
}

var _ fuse.FileSystem = (*goldenFS)(nil)

func (g *goldenFS) rec(format string, args ...any) {
	g.mu.Lock()
	g.log = append(g.log, fmt.Sprintf(format, args...))
	g.mu.Unlock()
}

func (g *goldenFS) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.log
	g.log = nil
	return l
}

func (g *goldenFS) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.log)
}

// goldenAttr is the attribute block every entry and attr reply carries.
func goldenAttr(a *fuseproto.Attr) {
	*a = fuseproto.Attr{
		Ino: 5, Size: 4096, Blocks: 8,
		Atime: 0x65000000, Mtime: 0x65000000, Ctime: 0x65000000,
		Atimensec: 1, Mtimensec: 2, Ctimensec: 3,
		Mode: syscall.S_IFREG | 0o644, Nlink: 1, Uid: 1000, Gid: 1000, Blksize: 4096,
	}
}

func goldenEntry(e *fuseproto.EntryOut) {
	e.NodeID, e.Generation, e.EntryValid, e.AttrValid = 5, 7, 1, 2
	goldenAttr(&e.Attr)
}

func (g *goldenFS) Init(r *fuse.Request, in *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno {
	return 0
}
func (g *goldenFS) Destroy()                    { g.rec("Destroy") }
func (g *goldenFS) Forget(node, nlookup uint64) { g.rec("Forget(%d, %d)", node, nlookup) }

func (g *goldenFS) Lookup(r *fuse.Request, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	g.rec("Lookup(%d, %s) uid=%d gid=%d pid=%d", r.NodeID, name, r.Uid, r.Gid, r.Pid)
	goldenEntry(out)
	return 0
}

func (g *goldenFS) GetAttr(r *fuse.Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	g.rec("GetAttr(%d, flags=%v fh=%d)", r.NodeID, in.GetattrFlags, in.Fh)
	out.AttrValid = 2
	goldenAttr(&out.Attr)
	return 0
}

func (g *goldenFS) SetAttr(r *fuse.Request, in *fuseproto.SetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	g.rec("SetAttr(%d, valid=%v size=%d mode=%o)", r.NodeID, in.Valid, in.Size, in.Mode)
	out.AttrValid = 2
	goldenAttr(&out.Attr)
	return 0
}

func (g *goldenFS) ReadLink(r *fuse.Request) ([]byte, syscall.Errno) {
	g.rec("ReadLink(%d)", r.NodeID)
	return []byte("target"), 0
}

func (g *goldenFS) Symlink(r *fuse.Request, name, target []byte, out *fuseproto.EntryOut) syscall.Errno {
	g.rec("Symlink(%d, %s -> %s)", r.NodeID, name, target)
	goldenEntry(out)
	return 0
}

func (g *goldenFS) Mknod(r *fuse.Request, in *fuseproto.MknodIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	g.rec("Mknod(%d, %s, mode=%o rdev=%d umask=%o)", r.NodeID, name, in.Mode, in.Rdev, in.Umask)
	goldenEntry(out)
	return 0
}

func (g *goldenFS) Mkdir(r *fuse.Request, in *fuseproto.MkdirIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	g.rec("Mkdir(%d, %s, mode=%o umask=%o)", r.NodeID, name, in.Mode, in.Umask)
	goldenEntry(out)
	return 0
}

func (g *goldenFS) Unlink(r *fuse.Request, name []byte) syscall.Errno {
	g.rec("Unlink(%d, %s)", r.NodeID, name)
	return 0
}

func (g *goldenFS) Rmdir(r *fuse.Request, name []byte) syscall.Errno {
	g.rec("Rmdir(%d, %s)", r.NodeID, name)
	return 0
}

func (g *goldenFS) Rename(r *fuse.Request, in *fuseproto.Rename2In, oldName, newName []byte) syscall.Errno {
	g.rec("Rename(%d, %s -> %d, %s, flags=%d)", r.NodeID, oldName, in.Newdir, newName, in.Flags)
	return 0
}

func (g *goldenFS) Link(r *fuse.Request, in *fuseproto.LinkIn, name []byte, out *fuseproto.EntryOut) syscall.Errno {
	g.rec("Link(%d, %s, old=%d)", r.NodeID, name, in.Oldnodeid)
	goldenEntry(out)
	return 0
}

func (g *goldenFS) Open(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	g.rec("Open(%d, flags=%#x)", r.NodeID, in.Flags)
	out.Fh, out.OpenFlags = 0x99, fuseproto.FopenKeepCache
	return 0
}

func (g *goldenFS) Read(r *fuse.Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno) {
	g.rec("Read(%d, fh=%#x off=%d size=%d len(buf)=%d)", r.NodeID, in.Fh, in.Offset, in.Size, len(buf))
	return buf[:copy(buf, "hello")], 0
}

func (g *goldenFS) Write(r *fuse.Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno) {
	g.rec("Write(%d, fh=%#x off=%d data=%s)", r.NodeID, in.Fh, in.Offset, data)
	return uint32(len(data)), 0
}

func (g *goldenFS) StatFs(r *fuse.Request, out *fuseproto.StatfsOut) syscall.Errno {
	g.rec("StatFs(%d)", r.NodeID)
	out.St = fuseproto.Kstatfs{Blocks: 100, Bfree: 50, Bavail: 40, Files: 10, Ffree: 5,
		Bsize: 4096, Namelen: 255, Frsize: 4096}
	return 0
}

func (g *goldenFS) Release(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno {
	g.rec("Release(%d, fh=%#x flags=%#x %v)", r.NodeID, in.Fh, in.Flags, in.ReleaseFlags)
	return 0
}

func (g *goldenFS) Fsync(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	g.rec("Fsync(%d, fh=%#x %v)", r.NodeID, in.Fh, in.FsyncFlags)
	return 0
}

func (g *goldenFS) SetXattr(r *fuse.Request, in *fuseproto.SetxattrIn, name, value []byte) syscall.Errno {
	g.rec("SetXattr(%d, %s=%s flags=%d %v)", r.NodeID, name, value, in.Flags, in.SetxattrFlags)
	return 0
}

func (g *goldenFS) GetXattr(r *fuse.Request, name []byte, dest []byte) (int, syscall.Errno) {
	g.rec("GetXattr(%d, %s, len(dest)=%d)", r.NodeID, name, len(dest))
	const v = "xyz"
	copy(dest, v)
	return len(v), 0
}

func (g *goldenFS) ListXattr(r *fuse.Request, dest []byte) (int, syscall.Errno) {
	g.rec("ListXattr(%d, len(dest)=%d)", r.NodeID, len(dest))
	const v = "user.a\x00user.b\x00"
	copy(dest, v)
	return len(v), 0
}

func (g *goldenFS) RemoveXattr(r *fuse.Request, name []byte) syscall.Errno {
	g.rec("RemoveXattr(%d, %s)", r.NodeID, name)
	return 0
}

func (g *goldenFS) Flush(r *fuse.Request, in *fuseproto.FlushIn) syscall.Errno {
	g.rec("Flush(%d, fh=%#x owner=%#x)", r.NodeID, in.Fh, in.LockOwner)
	return 0
}

func (g *goldenFS) OpenDir(r *fuse.Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno {
	g.rec("OpenDir(%d, flags=%#x)", r.NodeID, in.Flags)
	out.Fh, out.OpenFlags = 0x42, fuseproto.FopenCacheDir
	return 0
}

func (g *goldenFS) ReadDir(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	n := 0
	for i, name := range []string{".", "foo", "bar"} {
		if !out.Add([]byte(name), uint64(1+4*i), syscall.DT_REG, uint64(i+1)) {
			break
		}
		n++
	}
	g.rec("ReadDir(%d, fh=%#x off=%d size=%d) added=%d", r.NodeID, in.Fh, in.Offset, in.Size, n)
	return 0
}

func (g *goldenFS) ReadDirPlus(r *fuse.Request, in *fuseproto.ReadIn, out *fuse.DirList) syscall.Errno {
	n := 0
	var dot fuseproto.EntryOut
	dot.Attr.Ino, dot.Attr.Mode = 1, syscall.S_IFDIR|0o755
	if out.AddPlus([]byte("."), &dot, 1) {
		n++
		var foo fuseproto.EntryOut
		goldenEntry(&foo)
		if out.AddPlus([]byte("foo"), &foo, 2) {
			n++
			if out.AddPlus([]byte("bar"), &foo, 3) {
				n++
			}
		}
	}
	g.rec("ReadDirPlus(%d, fh=%#x off=%d size=%d) added=%d", r.NodeID, in.Fh, in.Offset, in.Size, n)
	return 0
}

func (g *goldenFS) ReleaseDir(r *fuse.Request, in *fuseproto.ReleaseIn) syscall.Errno {
	g.rec("ReleaseDir(%d, fh=%#x)", r.NodeID, in.Fh)
	return 0
}

func (g *goldenFS) FsyncDir(r *fuse.Request, in *fuseproto.FsyncIn) syscall.Errno {
	g.rec("FsyncDir(%d, fh=%#x %v)", r.NodeID, in.Fh, in.FsyncFlags)
	return 0
}

func (g *goldenFS) Access(r *fuse.Request, in *fuseproto.AccessIn) syscall.Errno {
	g.rec("Access(%d, mask=%d)", r.NodeID, in.Mask)
	return syscall.EACCES
}

func (g *goldenFS) Create(r *fuse.Request, in *fuseproto.CreateIn, name []byte, out *fuseproto.CreateOut) syscall.Errno {
	g.rec("Create(%d, %s, flags=%#x mode=%o umask=%o)", r.NodeID, name, in.Flags, in.Mode, in.Umask)
	goldenEntry(&out.Entry)
	out.Open.Fh = 0x99
	return 0
}

func (g *goldenFS) Tmpfile(r *fuse.Request, in *fuseproto.CreateIn, out *fuseproto.CreateOut) syscall.Errno {
	g.rec("Tmpfile(%d, flags=%#x mode=%o)", r.NodeID, in.Flags, in.Mode)
	goldenEntry(&out.Entry)
	out.Open.Fh = 0x99
	return 0
}

func (g *goldenFS) Fallocate(r *fuse.Request, in *fuseproto.FallocateIn) syscall.Errno {
	g.rec("Fallocate(%d, fh=%#x off=%d len=%d mode=%d)", r.NodeID, in.Fh, in.Offset, in.Length, in.Mode)
	return 0
}

func (g *goldenFS) Lseek(r *fuse.Request, in *fuseproto.LseekIn, out *fuseproto.LseekOut) syscall.Errno {
	g.rec("Lseek(%d, fh=%#x off=%d whence=%d)", r.NodeID, in.Fh, in.Offset, in.Whence)
	out.Offset = 0x1000
	return 0
}

func (g *goldenFS) CopyFileRange(r *fuse.Request, in *fuseproto.CopyFileRangeIn) (uint64, syscall.Errno) {
	g.rec("CopyFileRange(%d, fh=%#x off=%d -> %d fh=%#x off=%d len=%d)",
		r.NodeID, in.FhIn, in.OffIn, in.NodeidOut, in.FhOut, in.OffOut, in.Len)
	return in.Len, 0
}

func (g *goldenFS) Statx(r *fuse.Request, in *fuseproto.StatxIn, out *fuseproto.StatxOut) syscall.Errno {
	g.rec("Statx(%d, mask=%#x)", r.NodeID, in.SxMask)
	out.AttrValid = 2
	out.Stat = fuseproto.Statx{Mask: 0x7ff, Blksize: 4096, Nlink: 1, Uid: 1000, Gid: 1000,
		Mode: syscall.S_IFREG | 0o644, Ino: 5, Size: 4096, Blocks: 8}
	out.Stat.Btime.Sec = 0x65000000
	return 0
}

func (g *goldenFS) SyncFs(r *fuse.Request) syscall.Errno {
	g.rec("SyncFs(%d)", r.NodeID)
	return 0
}

func (g *goldenFS) Bmap(r *fuse.Request, in *fuseproto.BmapIn, out *fuseproto.BmapOut) syscall.Errno {
	g.rec("Bmap(%d, block=%d bs=%d)", r.NodeID, in.Block, in.Blocksize)
	out.Block = 0x1000 + in.Block
	return 0
}

func (g *goldenFS) GetLk(r *fuse.Request, in *fuseproto.LkIn, out *fuseproto.LkOut) syscall.Errno {
	g.rec("GetLk(%d, fh=%#x owner=%#x %d-%d type=%d pid=%d)", r.NodeID, in.Fh, in.Owner,
		in.Lk.Start, in.Lk.End, in.Lk.Type, in.Lk.Pid)
	out.Lk = fuseproto.FileLock{Type: syscall.F_UNLCK}
	return 0
}

func (g *goldenFS) SetLk(r *fuse.Request, in *fuseproto.LkIn, wait bool) syscall.Errno {
	g.rec("SetLk(%d, type=%d wait=%v)", r.NodeID, in.Lk.Type, wait)
	return 0
}

func (g *goldenFS) Ioctl(r *fuse.Request, in *fuseproto.IoctlIn, input, output []byte) (int32, int, syscall.Errno) {
	g.rec("Ioctl(%d, cmd=%#x in=%d out=%d)", r.NodeID, in.Cmd, len(input), len(output))
	copy(output, []byte{0, 0, 8, 0}) // EXT4_EXTENTS_FL
	return 0, 4, 0
}
