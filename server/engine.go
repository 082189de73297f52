package server

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/e4box/e4box/ext4"
)

// engine is the server's data path: the single place that turns a file
// range into I/O. It is shaped like fuse-iomap's three upcalls, so the
// FUSE_IOMAP_BEGIN/END/IOEND handlers (iomap.go) answer from the same
// code the classic READ, WRITE and LSEEK handlers use:
//
//   - begin(ino, pos, count, op) returns the mapping covering pos: Map for
//     reads and reports, MapWrite for writes (holes become unwritten
//     extents, or fresh blocks on block-mapped files, flagged New);
//   - end(...) is the per-mapping completion, which matters only for the
//     size of an appending buffered write;
//   - ioend(ino, pos, written, flags, err) runs once the data is on disk:
//     unwritten blocks become written (ConvertUnwritten), and an appending
//     write raises i_size (ExtendSize). An I/O error changes nothing, so
//     the blocks keep reading as zeros.
//
// The classic WRITE is a client of the three: begin(WRITE), pwrite at the
// mapped device offset, ioend; READ is begin(0) then pread, and LSEEK
// walks begin(REPORT) mappings. File data is read and written at the
// device offsets that ext4 maps (fs.WriteData/ReadData), never through
// the metadata cache.
type engine struct {
	fs    *ext4.FS
	bs    int64    // block size
	iomap iomapDev // fuse-iomap's device (iomap.go)
}

// Operation flags of begin: the kernel's IOMAP_* values, which
// fuse-iomap passes through.
const (
	opWrite  uint32 = 0x001
	opZero   uint32 = 0x002
	opReport uint32 = 0x004
	opDirect uint32 = 0x010
)

// Flags of end's mapping: the kernel's IOMAP_F_SIZE_CHANGED.
const mapSizeChanged uint16 = 0x4000

// ioend flags: FUSE_IOMAP_IOEND_*.
const (
	ioendShared    uint16 = 0x1
	ioendUnwritten uint16 = 0x2
	ioendDirect    uint16 = 0x8
	ioendAppend    uint16 = 0x8000
)

// begin maps the range starting at pos (count bytes wanted) for op. A
// write allocates what is a hole at pos, on behalf of c (root may use the
// reserved blocks); ZERO and REPORT never allocate, as fuse2fs and the
// kernel's own ext4 do. The mapping starts at or before pos and may be
// shorter or longer than count.
func (e *engine) begin(c ext4.Cred, ino ext4.Ino, pos, count int64, op uint32) (ext4.Mapping, error) {
	if pos < 0 || count <= 0 {
		return ext4.Mapping{}, syscall.EINVAL
	}
	if op&opWrite != 0 && op&opZero == 0 {
		return e.fs.MapWriteAs(c, ino, pos, count)
	}
	return e.fs.Map(ino, pos, count)
}

// end completes one mapping of a write: a buffered write that grew the
// file (SIZE_CHANGED) records the new size at once, as fuse2fs does, so
// that a GETATTR never reports less than the kernel wrote. Direct writes
// and writeback report their size through ioend instead.
func (e *engine) end(ino ext4.Ino, pos, count, written int64, op uint32, mapFlags uint16) error {
	if op&opWrite == 0 || op&opDirect != 0 || mapFlags&mapSizeChanged == 0 || written <= 0 {
		return nil
	}
	return e.fs.ExtendSize(ino, pos+written, false)
}

// ioend completes written bytes at pos once they are on disk. With
// touch, mtime and ctime become now (a classic write; with the writeback
// cache the kernel owns them and sends them in SETATTR).
func (e *engine) ioend(ino ext4.Ino, pos, written int64, flags uint16, ioErr error, touch bool) error {
	if ioErr != nil {
		return ioErr // the blocks stay unwritten: they read as zeros
	}
	if written <= 0 {
		return nil
	}
	if flags&ioendShared != 0 {
		// ext4 never maps out-of-place writes, so nothing can be remapped.
		return fmt.Errorf("server: shared (copy-on-write) ioend on inode %d: %w", ino, syscall.EINVAL)
	}
	if flags&ioendUnwritten != 0 {
		if err := e.fs.ConvertUnwritten(ino, pos, written); err != nil {
			return err
		}
	}
	if flags&ioendAppend != 0 || touch {
		size := int64(0)
		if flags&ioendAppend != 0 {
			size = pos + written
		}
		return e.fs.ExtendSize(ino, size, touch)
	}
	return nil
}

// maxInlineRetries bounds the re-mapping of a write whose inline file
// changed shape under it (only another writer of the inode can do that).
const maxInlineRetries = 3

// write is the classic FUSE WRITE: p at offset off of regular file ino,
// one mapping at a time. It returns how many bytes were written; an error
// after some progress leaves a short write. The caller holds the inode's
// data lock. size is i_size before the write, to know when it appends.
func (e *engine) write(c ext4.Cred, ino ext4.Ino, p []byte, off, size int64, touch bool) (int, error) {
	done, retries := 0, 0
	for done < len(p) {
		pos := off + int64(done)
		rest := p[done:]
		m, err := e.begin(c, ino, pos, int64(len(rest)), opWrite)
		if err != nil {
			return done, err
		}
		if m.Type == ext4.MapInline {
			// WriteInline sets i_size, mtime and ctime itself. EAGAIN: the
			// file became block-mapped since begin; map again.
			n, err := e.fs.WriteInline(ino, rest, pos)
			done += n
			if errors.Is(err, syscall.EAGAIN) && n == 0 && retries < maxInlineRetries {
				retries++
				continue
			}
			return done, err
		}
		if m.Type == ext4.MapHole || pos < m.Offset || pos >= m.Offset+m.Length {
			return done, fmt.Errorf("server: write mapping %v [%d,+%d) of inode %d does not cover %d",
				m.Type, m.Offset, m.Length, ino, pos)
		}
		n := int(min(int64(len(rest)), m.Offset+m.Length-pos))
		var flags uint16
		if m.Type == ext4.MapUnwritten {
			flags |= ioendUnwritten
		}
		end := pos + int64(n)
		if end > size {
			flags |= ioendAppend
		}
		last := done+n == len(p)
		werr := e.writeMapped(m, rest[:n], pos)
		if err := e.ioend(ino, pos, int64(n), flags, werr, touch && last); err != nil {
			return done, err
		}
		size = max(size, end)
		done += n
	}
	return done, nil
}

// writeMapped writes data at file offset pos inside mapping m. Blocks
// whose old contents are undefined (New) or must read as zeros
// (unwritten) are written whole, the parts the write does not cover
// zero-filled: no read-modify-write is needed for them.
func (e *engine) writeMapped(m ext4.Mapping, data []byte, pos int64) error {
	addr := m.Addr + (pos - m.Offset)
	end := pos + int64(len(data))
	head, tail := pos%e.bs, (e.bs-end%e.bs)%e.bs
	if (m.Type == ext4.MapMapped && !m.New) || (head == 0 && tail == 0) {
		return e.writeAt(data, addr)
	}
	buf := make([]byte, head+int64(len(data))+tail)
	copy(buf[head:], data)
	return e.writeAt(buf, addr-head)
}

func (e *engine) writeAt(p []byte, addr int64) error {
	n, err := e.fs.WriteData(p, addr)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// read fills p from ino at off and returns the byte count, one mapping
// at a time as the kernel's iomap reads do. A read that reaches end of
// file is short, not an error, matching pread(2). Holes and unwritten
// extents read as zeros.
func (e *engine) read(ino ext4.Ino, p []byte, off int64) (int, error) {
	inode, err := e.fs.Inode(ino)
	if err != nil {
		return 0, err
	}
	switch {
	case inode.IsDir():
		return 0, syscall.EISDIR
	case !inode.IsReg():
		return 0, syscall.EINVAL
	case off < 0:
		return 0, syscall.EINVAL
	}
	size := int64(inode.Size)
	if off >= size {
		return 0, nil
	}
	want := min(int64(len(p)), size-off)
	for done := int64(0); done < want; {
		pos := off + done
		m, err := e.begin(ext4.Cred{}, ino, pos, want-done, 0)
		if err != nil {
			return int(done), err
		}
		if m.Type == ext4.MapInline {
			dst := p[done:want]
			n := 0
			if pos < int64(len(m.Inline)) {
				n = copy(dst, m.Inline[pos:])
			}
			clear(dst[n:])
			return int(want), nil
		}
		if pos < m.Offset || pos >= m.Offset+m.Length {
			return int(done), fmt.Errorf("server: read mapping %v [%d,+%d) of inode %d does not cover %d: %w",
				m.Type, m.Offset, m.Length, ino, pos, syscall.EIO)
		}
		dst := p[done:min(want, done+m.Offset+m.Length-pos)]
		if m.Type == ext4.MapMapped {
			if _, err := e.fs.ReadData(dst, m.Addr+pos-m.Offset); err != nil {
				return int(done), err
			}
		} else {
			clear(dst)
		}
		done += int64(len(dst))
	}
	return int(want), nil
}

// mapping reports the mapping covering off (REPORT: never allocates).
func (e *engine) mapping(ino ext4.Ino, off, length int64) (ext4.Mapping, error) {
	return e.begin(ext4.Cred{}, ino, off, length, opReport)
}

// seekData and seekHole answer lseek(2) SEEK_DATA/SEEK_HOLE from REPORT
// mappings, as iomap_seek_data/hole do: unwritten extents are holes (the
// server has no page cache that could hold their data), the end of file
// is a hole, and ENXIO answers offsets at or past it.
func (e *engine) seekData(ino ext4.Ino, off int64) (int64, error) {
	return e.seek(ino, off, true)
}

func (e *engine) seekHole(ino ext4.Ino, off int64) (int64, error) {
	return e.seek(ino, off, false)
}

func (e *engine) seek(ino ext4.Ino, off int64, data bool) (int64, error) {
	inode, err := e.fs.Inode(ino)
	if err != nil {
		return 0, err
	}
	size := int64(inode.Size)
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	for pos := off; pos < size; {
		m, err := e.mapping(ino, pos, size-pos)
		if err != nil {
			return 0, err
		}
		if m.Type == ext4.MapInline || (m.Type == ext4.MapMapped) == data {
			if m.Type == ext4.MapInline && !data {
				break // inline data runs to the end of file
			}
			return pos, nil
		}
		next := m.Offset + m.Length
		if next <= pos {
			return 0, fmt.Errorf("server: %v mapping [%d,+%d) of inode %d does not advance past %d: %w",
				m.Type, m.Offset, m.Length, ino, pos, syscall.EIO)
		}
		pos = next
	}
	if data {
		return 0, syscall.ENXIO
	}
	return size, nil
}
