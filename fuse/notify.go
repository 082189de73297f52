package fuse

import (
	"errors"
	"syscall"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

// ErrNotInitialized is returned by notifications sent before INIT completed.
var ErrNotInitialized = errors.New("fuse: session not initialized")

// Notifications tell the kernel about changes it did not make itself. They
// are messages with Unique 0 and the NotifyCode in the error field. The
// kernel answers synchronously: ENOENT means it had nothing cached for the
// inode or name, which callers usually ignore.
//
// Do not send InvalEntry or Delete for a directory from inside a request
// on that same directory (e.g. during its Lookup): the kernel holds the
// directory lock and the notification deadlocks.

// InvalInode drops cached attributes of nodeID and, when length != 0, its
// cached data in [off, off+length) (length < 0: to the end). off < 0
// invalidates attributes only.
func (s *Server) InvalInode(nodeID uint64, off, length int64) error {
	m := fuseproto.NotifyInvalInodeOut{Ino: nodeID, Off: off, Len: length}
	return s.notify(fuseproto.NotifyInvalInode, 12, structBytes(&m), nil)
}

// InvalEntry drops the cached dentry name in directory parent.
func (s *Server) InvalEntry(parent uint64, name []byte) error {
	m := fuseproto.NotifyInvalEntryOut{Parent: parent, Namelen: uint32(len(name))}
	return s.notify(fuseproto.NotifyInvalEntry, 12, structBytes(&m), nulTerminated(name))
}

// Delete tells the kernel that name in parent, which was child, is gone;
// unlike InvalEntry it also updates an open directory's view and inotify.
func (s *Server) Delete(parent, child uint64, name []byte) error {
	m := fuseproto.NotifyDeleteOut{Parent: parent, Child: child, Namelen: uint32(len(name))}
	return s.notify(fuseproto.NotifyDelete, 18, structBytes(&m), nulTerminated(name))
}

// Store pushes data into the kernel's page cache of nodeID at off.
func (s *Server) Store(nodeID uint64, off uint64, data []byte) error {
	m := fuseproto.NotifyStoreOut{NodeID: nodeID, Offset: off, Size: uint32(len(data))}
	if uint64(len(data)) > uint64(^uint32(0)) {
		return syscall.EINVAL
	}
	return s.notify(fuseproto.NotifyStore, 15, structBytes(&m), data)
}

func nulTerminated(name []byte) []byte {
	b := make([]byte, len(name)+1)
	copy(b, name)
	return b
}

func (s *Server) notify(code fuseproto.NotifyCode, minMinor uint32, msg, tail []byte) error {
	p := s.proto.Load()
	if p == nil {
		return ErrNotInitialized
	}
	if p.Minor < minMinor {
		return syscall.ENOSYS
	}
	hdr := fuseproto.OutHeader{
		Len:   uint32(int(unsafe.Sizeof(fuseproto.OutHeader{})) + len(msg) + len(tail)),
		Error: int32(code),
	}
	iov := [][]byte{structBytes(&hdr), msg}
	if len(tail) > 0 {
		iov = append(iov, tail)
	}
	if s.opts.Debug {
		s.log.Debug("fuse: notify", "code", code.String(), "len", hdr.Len)
	}
	return s.conn.WriteReply(iov)
}
