package fuse

import (
	"syscall"

	"github.com/e4box/e4box/fuseproto"
)

// FileSystem is the raw, nodeid-based operation set: one method per opcode.
// The runtime decodes and length-checks each request, calls the method on
// its own goroutine, and encodes the reply.
//
// Conventions shared by all methods:
//
//   - r describes the caller (r.NodeID is the inode the opcode targets, or
//     the parent directory for name-based opcodes) and r.Ctx is cancelled
//     when the kernel sends INTERRUPT for the request.
//   - Inputs (in, names, data) point into the request buffer and are valid
//     only until the method returns; copy what must outlive the call.
//   - Outputs are zeroed typed structs owned by the runtime; fill them and
//     return 0, or return an errno and they are ignored.
//   - Every reply that carries an EntryOut with a nonzero NodeID (Lookup,
//     Mknod, Mkdir, Symlink, Link, Create, and each ReadDirPlus entry)
//     counts one lookup that the kernel later returns through Forget.
//   - Embed NotImplemented to get ENOSYS for everything not overridden.
type FileSystem interface {
	// Init runs while answering INIT. out already holds the negotiated
	// reply (flags offered by the kernel and wanted by Options); the
	// filesystem may inspect in and adjust out, e.g. clear a flag or set
	// a flags2 bit. Bits the kernel did not offer are stripped afterwards,
	// and so are iomap bits without discovered support (Options.Iomap).
	// A nonzero errno fails the mount.
	Init(r *Request, in *fuseproto.InitIn, out *fuseproto.InitOut) syscall.Errno

	// Destroy is called once when the session ends: on DESTROY, or when the
	// connection goes away without one.
	Destroy()

	Lookup(r *Request, name []byte, out *fuseproto.EntryOut) syscall.Errno

	// Forget drops nlookup lookups of nodeID. It has no reply, and
	// BATCH_FORGET is delivered as a sequence of Forget calls.
	Forget(nodeID, nlookup uint64)

	GetAttr(r *Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno
	SetAttr(r *Request, in *fuseproto.SetattrIn, out *fuseproto.AttrOut) syscall.Errno

	// ReadLink returns the link target; the slice is written to the reply
	// before the next call on this goroutine, so it may alias a buffer.
	ReadLink(r *Request) ([]byte, syscall.Errno)

	// Symlink creates name in directory r.NodeID pointing at target.
	Symlink(r *Request, name, target []byte, out *fuseproto.EntryOut) syscall.Errno
	Mknod(r *Request, in *fuseproto.MknodIn, name []byte, out *fuseproto.EntryOut) syscall.Errno
	Mkdir(r *Request, in *fuseproto.MkdirIn, name []byte, out *fuseproto.EntryOut) syscall.Errno
	Unlink(r *Request, name []byte) syscall.Errno
	Rmdir(r *Request, name []byte) syscall.Errno

	// Rename moves oldName in r.NodeID to newName in in.Newdir. It serves
	// both RENAME (in.Flags == 0) and RENAME2 (RENAME_NOREPLACE,
	// RENAME_EXCHANGE, RENAME_WHITEOUT in in.Flags).
	Rename(r *Request, in *fuseproto.Rename2In, oldName, newName []byte) syscall.Errno

	// Link creates name in r.NodeID for the inode in.Oldnodeid.
	Link(r *Request, in *fuseproto.LinkIn, name []byte, out *fuseproto.EntryOut) syscall.Errno

	Open(r *Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno

	// Read reads up to in.Size bytes at in.Offset. buf has length in.Size
	// (capped to the negotiated maximum) and belongs to the runtime; return
	// buf[:n] after filling it, or any other slice (e.g. cached data) of at
	// most len(buf) bytes. A short result means EOF, as for pread.
	Read(r *Request, in *fuseproto.ReadIn, buf []byte) ([]byte, syscall.Errno)

	// Write writes data (len(data) == in.Size) at in.Offset and returns the
	// number of bytes written.
	Write(r *Request, in *fuseproto.WriteIn, data []byte) (uint32, syscall.Errno)

	StatFs(r *Request, out *fuseproto.StatfsOut) syscall.Errno

	// Release closes a file handle; the kernel ignores its errno.
	Release(r *Request, in *fuseproto.ReleaseIn) syscall.Errno
	Fsync(r *Request, in *fuseproto.FsyncIn) syscall.Errno

	// SetXattr sets name to value (len(value) == in.Size); in.Flags holds
	// XATTR_CREATE/XATTR_REPLACE.
	SetXattr(r *Request, in *fuseproto.SetxattrIn, name, value []byte) syscall.Errno

	// GetXattr copies the value of name into dest and returns its full
	// size. len(dest) is the caller's buffer size; when it is 0 only the
	// size is wanted, and when the value does not fit the runtime replies
	// ERANGE (returning ERANGE directly is fine too).
	GetXattr(r *Request, name []byte, dest []byte) (int, syscall.Errno)

	// ListXattr writes the NUL-terminated attribute names into dest and
	// returns their total size, with the same size rules as GetXattr.
	ListXattr(r *Request, dest []byte) (int, syscall.Errno)

	RemoveXattr(r *Request, name []byte) syscall.Errno
	Flush(r *Request, in *fuseproto.FlushIn) syscall.Errno

	OpenDir(r *Request, in *fuseproto.OpenIn, out *fuseproto.OpenOut) syscall.Errno

	// ReadDir adds entries starting after cookie in.Offset (0 = start)
	// until out.Add returns false. Each entry's off is the cookie that
	// resumes after it.
	ReadDir(r *Request, in *fuseproto.ReadIn, out *DirList) syscall.Errno

	// ReadDirPlus is ReadDir with attributes (DirList.AddPlus). Each entry
	// with a nonzero EntryOut.NodeID counts one lookup.
	ReadDirPlus(r *Request, in *fuseproto.ReadIn, out *DirList) syscall.Errno

	ReleaseDir(r *Request, in *fuseproto.ReleaseIn) syscall.Errno
	FsyncDir(r *Request, in *fuseproto.FsyncIn) syscall.Errno
	Access(r *Request, in *fuseproto.AccessIn) syscall.Errno

	// Create creates and opens name in r.NodeID.
	Create(r *Request, in *fuseproto.CreateIn, name []byte, out *fuseproto.CreateOut) syscall.Errno

	// Tmpfile creates and opens an unnamed file in r.NodeID (O_TMPFILE).
	Tmpfile(r *Request, in *fuseproto.CreateIn, out *fuseproto.CreateOut) syscall.Errno

	Fallocate(r *Request, in *fuseproto.FallocateIn) syscall.Errno

	// Lseek answers SEEK_DATA/SEEK_HOLE; other whence values never reach
	// the filesystem.
	Lseek(r *Request, in *fuseproto.LseekIn, out *fuseproto.LseekOut) syscall.Errno

	// CopyFileRange copies in.Len bytes from r.NodeID to in.NodeidOut and
	// returns the count. It serves COPY_FILE_RANGE (count capped to 32
	// bits by the runtime) and COPY_FILE_RANGE_64.
	CopyFileRange(r *Request, in *fuseproto.CopyFileRangeIn) (uint64, syscall.Errno)

	Statx(r *Request, in *fuseproto.StatxIn, out *fuseproto.StatxOut) syscall.Errno

	// SyncFs is syncfs(2) on the mount.
	SyncFs(r *Request) syscall.Errno

	// Bmap maps in.Block (in units of in.Blocksize) to a device block; only
	// sent for fuseblk mounts.
	Bmap(r *Request, in *fuseproto.BmapIn, out *fuseproto.BmapOut) syscall.Errno

	// GetLk and SetLk are sent only when POSIX_LOCKS or FLOCK_LOCKS was
	// negotiated; otherwise the kernel keeps locks local. wait is true for
	// SETLKW.
	GetLk(r *Request, in *fuseproto.LkIn, out *fuseproto.LkOut) syscall.Errno
	SetLk(r *Request, in *fuseproto.LkIn, wait bool) syscall.Errno

	// Ioctl serves a restricted ioctl: input holds in.InSize bytes, output
	// has length in.OutSize. It returns the ioctl result and the number of
	// output bytes written.
	Ioctl(r *Request, in *fuseproto.IoctlIn, input, output []byte) (result int32, n int, errno syscall.Errno)
}

// NotImplemented is an embeddable FileSystem that answers ENOSYS to every
// opcode, accepts INIT unchanged, and ignores Forget and Destroy. The kernel
// remembers ENOSYS for many opcodes (OPEN, FLUSH, FSYNC, ACCESS, LSEEK, ...)
// and stops sending them.
type NotImplemented struct{}

var _ FileSystem = NotImplemented{}

func (NotImplemented) Init(*Request, *fuseproto.InitIn, *fuseproto.InitOut) syscall.Errno {
	return 0
}
func (NotImplemented) Destroy()              {}
func (NotImplemented) Forget(uint64, uint64) {}
func (NotImplemented) Lookup(*Request, []byte, *fuseproto.EntryOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) GetAttr(*Request, *fuseproto.GetattrIn, *fuseproto.AttrOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) SetAttr(*Request, *fuseproto.SetattrIn, *fuseproto.AttrOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) ReadLink(*Request) ([]byte, syscall.Errno) { return nil, syscall.ENOSYS }
func (NotImplemented) Symlink(*Request, []byte, []byte, *fuseproto.EntryOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Mknod(*Request, *fuseproto.MknodIn, []byte, *fuseproto.EntryOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Mkdir(*Request, *fuseproto.MkdirIn, []byte, *fuseproto.EntryOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Unlink(*Request, []byte) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) Rmdir(*Request, []byte) syscall.Errno  { return syscall.ENOSYS }
func (NotImplemented) Rename(*Request, *fuseproto.Rename2In, []byte, []byte) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Link(*Request, *fuseproto.LinkIn, []byte, *fuseproto.EntryOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Open(*Request, *fuseproto.OpenIn, *fuseproto.OpenOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Read(*Request, *fuseproto.ReadIn, []byte) ([]byte, syscall.Errno) {
	return nil, syscall.ENOSYS
}
func (NotImplemented) Write(*Request, *fuseproto.WriteIn, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}
func (NotImplemented) StatFs(*Request, *fuseproto.StatfsOut) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) Release(*Request, *fuseproto.ReleaseIn) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Fsync(*Request, *fuseproto.FsyncIn) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) SetXattr(*Request, *fuseproto.SetxattrIn, []byte, []byte) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) GetXattr(*Request, []byte, []byte) (int, syscall.Errno) {
	return 0, syscall.ENOSYS
}
func (NotImplemented) ListXattr(*Request, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
func (NotImplemented) RemoveXattr(*Request, []byte) syscall.Errno      { return syscall.ENOSYS }
func (NotImplemented) Flush(*Request, *fuseproto.FlushIn) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) OpenDir(*Request, *fuseproto.OpenIn, *fuseproto.OpenOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) ReadDir(*Request, *fuseproto.ReadIn, *DirList) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) ReadDirPlus(*Request, *fuseproto.ReadIn, *DirList) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) ReleaseDir(*Request, *fuseproto.ReleaseIn) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) FsyncDir(*Request, *fuseproto.FsyncIn) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Access(*Request, *fuseproto.AccessIn) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) Create(*Request, *fuseproto.CreateIn, []byte, *fuseproto.CreateOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Tmpfile(*Request, *fuseproto.CreateIn, *fuseproto.CreateOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Fallocate(*Request, *fuseproto.FallocateIn) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) Lseek(*Request, *fuseproto.LseekIn, *fuseproto.LseekOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) CopyFileRange(*Request, *fuseproto.CopyFileRangeIn) (uint64, syscall.Errno) {
	return 0, syscall.ENOSYS
}
func (NotImplemented) Statx(*Request, *fuseproto.StatxIn, *fuseproto.StatxOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) SyncFs(*Request) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) Bmap(*Request, *fuseproto.BmapIn, *fuseproto.BmapOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) GetLk(*Request, *fuseproto.LkIn, *fuseproto.LkOut) syscall.Errno {
	return syscall.ENOSYS
}
func (NotImplemented) SetLk(*Request, *fuseproto.LkIn, bool) syscall.Errno { return syscall.ENOSYS }
func (NotImplemented) Ioctl(*Request, *fuseproto.IoctlIn, []byte, []byte) (int32, int, syscall.Errno) {
	return 0, 0, syscall.ENOSYS
}
