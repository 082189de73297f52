package blockdev

import (
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// File is a Device backed by a regular file or a block device.
type File struct {
	f     *os.File // immutable after Open; os.File is safe for concurrent pread/pwrite
	size  int64    // immutable after Open
	ro    bool     // immutable after Open
	isBlk bool     // immutable after Open: a block device, not an image file
}

// Open opens the image file or block device at path. A block device opened
// read-write gets O_EXCL, so the kernel refuses it while mounted (and refuses
// a kernel mount while we hold it).
func Open(path string, readOnly bool) (*File, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	isBdev := st.Mode&unix.S_IFMT == unix.S_IFBLK
	if isBdev && !readOnly {
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	size, err := deviceSize(f, isBdev)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blockdev: size of %s: %w", path, err)
	}
	return &File{f: f, size: size, ro: readOnly, isBlk: isBdev}, nil
}

func deviceSize(f *os.File, isBdev bool) (int64, error) {
	if isBdev {
		var n uint64
		rc, err := f.SyscallConn()
		if err != nil {
			return 0, err
		}
		var ierr error
		if err := rc.Control(func(fd uintptr) {
			// x/sys has no uint64 ioctl getter; BLKGETSIZE64 writes a u64.
			_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n)))
			if e != 0 {
				ierr = e
			}
		}); err != nil {
			return 0, err
		}
		if ierr != nil {
			return 0, ierr
		}
		if n > 1<<62 {
			return 0, fmt.Errorf("implausible size %d", n)
		}
		return int64(n), nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ReadAt implements io.ReaderAt with pread.
func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errNegativeOffset
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	// Clip at the recorded size so a file that grew underneath us reads
	// consistently with Size.
	short := false
	if int64(len(p)) > d.size-off {
		p = p[:d.size-off]
		short = true
	}
	n, err := d.f.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// WriteAt implements io.WriterAt with pwrite; writes past Size fail with ENOSPC.
func (d *File) WriteAt(p []byte, off int64) (int, error) {
	if err := checkWrite(d.ro, d.size, off, len(p)); err != nil {
		return 0, err
	}
	return d.f.WriteAt(p, off)
}

func (d *File) Size() int64    { return d.size }
func (d *File) ReadOnly() bool { return d.ro }

// IsBlockDevice reports whether the device is a block device (the only kind
// fuse-iomap can hand to the kernel) rather than an image file.
func (d *File) IsBlockDevice() bool { return d.isBlk }

// Fd returns the open file descriptor, for registering the device with the
// kernel (fuse-iomap). It stays valid until Close.
func (d *File) Fd() int { return int(d.f.Fd()) }

// Flush fsyncs the file; it is a no-op on a read-only device.
func (d *File) Flush() error {
	if d.ro {
		return nil
	}
	return d.f.Sync()
}

func (d *File) Close() error { return d.f.Close() }
