package iomaptest

import (
	"fmt"
	"syscall"

	"github.com/e4box/e4box/fuseproto"
)

// FIEMAP extent flags (linux/fiemap.h).
const (
	FiemapExtentLast       = 0x0001
	FiemapExtentUnknown    = 0x0002
	FiemapExtentDelalloc   = 0x0004
	FiemapExtentDataInline = 0x0200
	FiemapExtentUnwritten  = 0x0800
	FiemapExtentMerged     = 0x1000
	FiemapExtentShared     = 0x2000
)

// Extent is one struct fiemap_extent.
type Extent struct {
	Logical, Physical, Length uint64
	Flags                     uint32
}

func (e Extent) String() string {
	return fmt.Sprintf("[%d,+%d)@%d flags %#x", e.Logical, e.Length, e.Physical, e.Flags)
}

// Fiemap is the FIEMAP ioctl (iomap_fiemap): REPORT mappings over
// [start, start+length), holes skipped, each other mapping reported
// whole (its own offset and length) with UNWRITTEN, DELALLOC|UNKNOWN,
// DATA_INLINE, MERGED and SHARED as the types and flags say, the last
// one flagged LAST.
func (k *Kernel) Fiemap(nodeid uint64, start, length int64) ([]Extent, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return nil, err
	}
	if length <= 0 {
		return nil, syscall.EINVAL
	}
	end := start + length
	if end < start { // fiemap_prep clamps to s_maxbytes
		end = 1<<63 - 1
	}
	var out []Extent
	var prev *Mapping
	for pos := start; pos < end; {
		m, _, err := k.begin(f, fuseproto.IomapOpReport, pos, end-pos)
		if err != nil {
			return nil, err
		}
		if m.Type != fuseproto.IomapTypeHole {
			if prev != nil {
				out = append(out, toExtent(prev, 0))
			}
			prev = &m
		}
		pos = min(end, m.End())
	}
	if prev != nil {
		out = append(out, toExtent(prev, FiemapExtentLast))
	}
	return out, nil
}

func toExtent(m *Mapping, flags uint32) Extent {
	switch m.Type {
	case fuseproto.IomapTypeDelalloc:
		flags |= FiemapExtentDelalloc | FiemapExtentUnknown
	case fuseproto.IomapTypeUnwritten:
		flags |= FiemapExtentUnwritten
	case fuseproto.IomapTypeInline:
		flags |= FiemapExtentDataInline
	}
	if m.Flags&fuseproto.IomapFMerged != 0 {
		flags |= FiemapExtentMerged
	}
	if m.Flags&fuseproto.IomapFShared != 0 {
		flags |= FiemapExtentShared
	}
	phys := uint64(0)
	if m.Addr != fuseproto.IomapNullAddr {
		phys = m.Addr
	}
	return Extent{Logical: uint64(m.Offset), Physical: phys, Length: uint64(m.Length), Flags: flags}
}

// SeekData is lseek(SEEK_DATA) (iomap_seek_data): ENXIO at or past the
// in-core i_size; MAPPED (and inline) ranges are data, holes are not,
// and unwritten ranges are data where the page cache holds blocks.
func (k *Kernel) SeekData(nodeid uint64, off int64) (int64, error) {
	return k.seek(nodeid, off, true)
}

// SeekHole is lseek(SEEK_HOLE) (iomap_seek_hole); the end of file is a
// hole.
func (k *Kernel) SeekHole(nodeid uint64, off int64) (int64, error) {
	return k.seek(nodeid, off, false)
}

func (k *Kernel) seek(nodeid uint64, off int64, data bool) (int64, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return 0, err
	}
	if off < 0 || off >= f.size {
		return 0, syscall.ENXIO
	}
	for pos := off; pos < f.size; {
		m, _, err := k.begin(f, fuseproto.IomapOpReport, pos, f.size-pos)
		if err != nil {
			return 0, err
		}
		end := min(f.size, m.End())
		switch m.Type {
		case fuseproto.IomapTypeHole:
			if !data {
				return pos, nil
			}
		case fuseproto.IomapTypeUnwritten:
			if at, ok := k.cacheSeek(f, pos, end, data); ok {
				return at, nil
			}
		default:
			if data {
				return pos, nil
			}
		}
		pos = end
	}
	if data {
		return 0, syscall.ENXIO
	}
	return f.size, nil
}

// cacheSeek is mapping_seek_hole_data over [pos, end): the first offset
// in an uptodate block (data) or outside one (hole).
func (k *Kernel) cacheSeek(f *file, pos, end int64, data bool) (int64, bool) {
	bs := k.bs()
	for cur := pos; cur < end; {
		b := cur / bs
		if _, ok := f.pages[b]; ok == data {
			return cur, true
		}
		cur = (b + 1) * bs
	}
	return 0, false
}
