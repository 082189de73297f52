package server

import (
	"errors"
	"io"

	"github.com/e4box/e4box/ext4"
)

// engine is the server's data path: the single place that turns a file
// range into I/O. Today it serves FUSE_READ; the fuse-iomap issue will
// answer FUSE_IOMAP_BEGIN from mapping() so both paths share one view of
// where a file's bytes live.
//
// File data is read at the device offsets that ext4.Map reports (inside
// ext4.ReadAt), never through the metadata cache.
type engine struct {
	fs *ext4.FS
}

// mapping returns the mapping covering off, at most length bytes long.
func (e *engine) mapping(ino ext4.Ino, off, length int64) (ext4.Mapping, error) {
	return e.fs.Map(ino, off, length)
}

// read fills p from ino at off and returns the byte count. A read that
// reaches end of file is short, not an error, matching pread(2).
func (e *engine) read(ino ext4.Ino, p []byte, off int64) (int, error) {
	n, err := e.fs.ReadAt(ino, p, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// seekData and seekHole answer lseek(2) SEEK_DATA/SEEK_HOLE.
func (e *engine) seekData(ino ext4.Ino, off int64) (int64, error) {
	return e.fs.SeekData(ino, off)
}

func (e *engine) seekHole(ino ext4.Ino, off int64) (int64, error) {
	return e.fs.SeekHole(ino, off)
}
