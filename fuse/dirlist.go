package fuse

import "github.com/e4box/e4box/fuseproto"

// DirList accumulates READDIR or READDIRPLUS entries into the reply buffer,
// whose size the kernel chose. Add/AddPlus return false, adding nothing,
// once the next entry would not fit; the filesystem then stops, and the
// kernel resumes later from the off of the last entry that was added.
type DirList struct {
	buf  []byte // backing buffer, len == the kernel's size
	n    int    // bytes used
	plus bool   // READDIRPLUS layout
}

// NewDirList returns a DirList writing into buf (len(buf) is the reply
// limit). The runtime builds these; it is exported for tests of
// FileSystem implementations.
func NewDirList(buf []byte, plus bool) *DirList {
	return &DirList{buf: buf, plus: plus}
}

// Plus reports whether this is a READDIRPLUS listing.
func (l *DirList) Plus() bool { return l.plus }

// Len returns the number of bytes used.
func (l *DirList) Len() int { return l.n }

// Bytes returns the encoded entries.
func (l *DirList) Bytes() []byte { return l.buf[:l.n] }

// Add appends a plain entry: name, inode number, DT_* type, and off, the
// cookie resuming after this entry. On a READDIRPLUS list it adds an entry
// without attributes (zero EntryOut, so no lookup is counted).
func (l *DirList) Add(name []byte, ino uint64, typ uint32, off uint64) bool {
	if l.plus {
		var e fuseproto.EntryOut
		return l.add(name, &e, ino, typ, off)
	}
	return l.add(name, nil, ino, typ, off)
}

// AddPlus appends a READDIRPLUS entry. The dirent's inode number and type
// come from entry.Attr.Ino and entry.Attr.Mode, so set those even when
// entry.NodeID is 0 (as for "." and "..", which must not count a lookup).
// On a plain READDIR list the attributes are dropped.
func (l *DirList) AddPlus(name []byte, entry *fuseproto.EntryOut, off uint64) bool {
	ino, typ := entry.Attr.Ino, entry.Attr.Mode>>12
	if !l.plus {
		return l.add(name, nil, ino, typ, off)
	}
	return l.add(name, entry, ino, typ, off)
}

func (l *DirList) add(name []byte, entry *fuseproto.EntryOut, ino uint64, typ uint32, off uint64) bool {
	hdr := fuseproto.DirentNameOffset
	if l.plus {
		hdr = fuseproto.DirentplusNameOffset
	}
	size := fuseproto.DirentAlignSize(hdr + len(name))
	if len(name) == 0 || size > len(l.buf)-l.n {
		return false
	}
	rec := l.buf[l.n : l.n+size]
	d := rec
	if l.plus {
		// Byte copies, not typed stores: buf need not be aligned.
		d = rec[copy(rec, structBytes(entry)):]
	}
	dirent := fuseproto.Dirent{Ino: ino, Off: off, Namelen: uint32(len(name)), Type: typ}
	copy(d, structBytes(&dirent))
	copy(rec[hdr:], name)
	clear(rec[hdr+len(name):]) // padding must not leak old buffer bytes
	l.n += size
	return true
}
