// Package blockdev provides the Device abstraction that every other layer of
// e4box reads and writes through: a file or block device opened with pread and
// pwrite, an in-memory device for tests, and a fault-injecting wrapper.
//
// The package owns byte-addressed I/O only; it knows nothing about ext4. It
// may import the standard library and golang.org/x/sys/unix.
package blockdev

import (
	"errors"
	"io"
	"syscall"
)

// Device is a byte-addressed random-access device.
//
// ReadAt and WriteAt follow io.ReaderAt and io.WriterAt, and must be safe for
// concurrent use. A read that extends past Size returns the bytes available
// and io.EOF. WriteAt on a read-only device returns syscall.EROFS.
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Size is the device size in bytes; it does not change while open.
	Size() int64
	// Flush makes all completed writes durable (fsync).
	Flush() error
	Close() error
	ReadOnly() bool
}

// ErrClosed is returned by operations on a closed device.
var ErrClosed = errors.New("blockdev: device closed")

// errNegativeOffset is what os.File reports for a negative offset.
var errNegativeOffset = errors.New("blockdev: negative offset")

// checkWrite reports the error a write of n bytes at off on a device of the
// given size must fail with, or nil.
func checkWrite(ro bool, size, off int64, n int) error {
	if ro {
		return syscall.EROFS
	}
	if off < 0 {
		return errNegativeOffset
	}
	if off > size || int64(n) > size-off {
		return syscall.ENOSPC
	}
	return nil
}
