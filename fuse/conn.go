package fuse

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Conn is the transport under a Server: /dev/fuse for real mounts,
// fusetest.Conn in tests.
//
// ReadRequest and WriteReply are called concurrently from several
// goroutines. Errors are returned as syscall.Errno so the runtime can apply
// the kernel's meaning: ENODEV (unmounted), ECONNABORTED (aborted, with
// ABORT_ERROR), EINTR/EAGAIN/ENOENT (retry), and for replies ENOENT (the
// request was interrupted and is gone).
type Conn interface {
	// ReadRequest reads exactly one request into buf and returns its length.
	ReadRequest(buf []byte) (int, error)
	// WriteReply writes one reply or notification, given as iovecs.
	WriteReply(iov [][]byte) error
	// Close releases the transport. It does not by itself unblock readers
	// of /dev/fuse; unmounting does.
	Close() error
}

// devConn is a Conn on an open /dev/fuse descriptor. It uses blocking
// read/writev directly: each blocked reader parks one OS thread, which is
// what the kernel expects of a multi-threaded FUSE server.
type devConn struct {
	fd        int
	closeOnce sync.Once // fd numbers are reused: never close twice
	closeErr  error
}

// NewDevConn wraps an open /dev/fuse file descriptor (for callers that
// mount by other means). The Conn owns fd and closes it.
func NewDevConn(fd int) Conn { return &devConn{fd: fd} }

func (c *devConn) ReadRequest(buf []byte) (int, error) {
	n, err := unix.Read(c.fd, buf)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (c *devConn) WriteReply(iov [][]byte) error {
	_, err := unix.Writev(c.fd, iov)
	return err
}

func (c *devConn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = unix.Close(c.fd) })
	return c.closeErr
}
