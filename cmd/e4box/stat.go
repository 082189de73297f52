package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/e4box/e4box/ext4"
)

// cmdStat prints every inode field, a summary of the file's block mapping
// and its xattr names. The last path component is not followed.
func cmdStat(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return usageErr("stat: want IMAGE PATH")
	}
	path := args[1]
	fsys, err := openImage(args[0], ext4.Options{NoRecovery: true, IgnoreErrorState: true})
	if err != nil {
		return err
	}
	defer fsys.Close()
	ino, err := resolve(fsys, path, false)
	if err != nil {
		return err
	}
	inode, err := fsys.Inode(ino)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	w := &fieldWriter{w: stdout}
	w.field("Path", path)
	w.field("Inode", inode.Ino)
	w.field("Type", typeName(inode.Mode))
	w.field("Mode", fmt.Sprintf("%04o (%s)", inode.Mode&0o7777, modeString(inode.Mode)))
	w.field("Links", inode.Nlink)
	w.field("Uid", inode.Uid)
	w.field("Gid", inode.Gid)
	w.field("Size", inode.Size)
	w.field("Blocks", fmt.Sprintf("%d (512-byte units)", inode.Blocks512()))
	if t := inode.Mode & sIFMT; t == sIFCHR || t == sIFBLK {
		maj, min := decodeDev(inode.Rdev())
		w.field("Device", fmt.Sprintf("%d, %d", maj, min))
	}
	w.field("Flags", fmt.Sprintf("%#x %s", inode.Flags, flagNames(inode.Flags)))
	w.field("Generation", inode.Generation)
	w.field("Access", fmtTime(inode.Atime))
	w.field("Modify", fmtTime(inode.Mtime))
	w.field("Change", fmtTime(inode.Ctime))
	w.field("Birth", fmtTime(inode.Crtime))
	if inode.IsSymlink() {
		target, err := fsys.ReadLink(ino)
		if err != nil {
			return fmt.Errorf("%s: readlink: %w", path, err)
		}
		w.field("Target", string(target))
	}
	if inode.IsReg() || inode.IsDir() {
		if err := mappingSummary(w, fsys, inode); err != nil {
			return fmt.Errorf("%s: mapping: %w", path, err)
		}
	}
	names, err := fsys.ListXattr(ino)
	if err != nil {
		return fmt.Errorf("%s: xattrs: %w", path, err)
	}
	slices.Sort(names)
	w.field("Xattrs", strings.Join(names, " "))
	return w.err
}

// Bounds for the mapping walk: the summary lists the first few ranges and
// stops walking a pathological (or corrupt) map after maxMapSteps.
const (
	maxMapLines = 16
	maxMapSteps = 1 << 20
)

func mappingSummary(w *fieldWriter, fsys *ext4.FS, inode *ext4.Inode) error {
	size := int64(inode.Size)
	if inode.Size > 1<<62 {
		return fmt.Errorf("size %d out of range", inode.Size)
	}
	var counts [4]int
	var mapped int64
	var lines []string
	off := int64(0)
	for steps := 0; off < size; steps++ {
		if steps == maxMapSteps {
			lines = append(lines, fmt.Sprintf("... stopped after %d ranges", steps))
			break
		}
		m, err := fsys.Map(inode.Ino, off, size-off)
		if err != nil {
			return err
		}
		if m.Length <= 0 {
			return fmt.Errorf("empty mapping at offset %d", off)
		}
		var kind string
		switch m.Type {
		case ext4.MapHole:
			kind, counts[0] = "hole", counts[0]+1
		case ext4.MapMapped:
			kind, counts[1] = "mapped", counts[1]+1
			mapped += m.Length
		case ext4.MapUnwritten:
			kind, counts[2] = "unwritten", counts[2]+1
		case ext4.MapInline:
			kind, counts[3] = "inline", counts[3]+1
		}
		if len(lines) < maxMapLines {
			l := fmt.Sprintf("  [%d, %d) %s", m.Offset, m.Offset+m.Length, kind)
			if m.Type == ext4.MapMapped || m.Type == ext4.MapUnwritten {
				l += fmt.Sprintf(" at device byte %d (block %d)", m.Addr, m.Addr/int64(fsys.BlockSize()))
			}
			lines = append(lines, l)
		} else if len(lines) == maxMapLines {
			lines = append(lines, "  ...")
		}
		off = m.Offset + m.Length
	}
	scheme := "block map"
	if inode.Flags&0x80000 != 0 {
		scheme = "extents"
	}
	if inode.Flags&0x10000000 != 0 {
		scheme = "inline data"
	}
	w.field("Mapping", fmt.Sprintf("%s: %d mapped (%d bytes), %d holes, %d unwritten, %d inline",
		scheme, counts[1], mapped, counts[0], counts[2], counts[3]))
	for _, l := range lines {
		w.line(l)
	}
	return nil
}

func fmtTime(t time.Time) string {
	return t.Format("2006-01-02 15:04:05.000000000 -0700")
}

func typeName(mode uint16) string {
	switch mode & sIFMT {
	case sIFSOCK:
		return "socket"
	case sIFLNK:
		return "symbolic link"
	case sIFREG:
		return "regular file"
	case sIFBLK:
		return "block device"
	case sIFDIR:
		return "directory"
	case sIFCHR:
		return "character device"
	case sIFIFO:
		return "fifo"
	}
	return fmt.Sprintf("unknown (%#o)", mode&sIFMT)
}

// inodeFlagNames are the i_flags bits (EXT4_*_FL) by name.
var inodeFlagNames = []struct {
	bit  uint32
	name string
}{
	{0x1, "secrm"}, {0x2, "unrm"}, {0x4, "compr"}, {0x8, "sync"},
	{0x10, "immutable"}, {0x20, "append"}, {0x40, "nodump"}, {0x80, "noatime"},
	{0x100, "dirty"}, {0x200, "comprblk"}, {0x400, "nocompr"}, {0x800, "encrypt"},
	{0x1000, "index"}, {0x2000, "imagic"}, {0x4000, "journal_data"}, {0x8000, "notail"},
	{0x10000, "dirsync"}, {0x20000, "topdir"}, {0x40000, "huge_file"}, {0x80000, "extents"},
	{0x100000, "verity"}, {0x200000, "ea_inode"}, {0x2000000, "dax"},
	{0x10000000, "inline_data"}, {0x20000000, "projinherit"}, {0x40000000, "casefold"},
}

func flagNames(flags uint32) string {
	var names []string
	for _, f := range inodeFlagNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("%#x", flags))
	}
	return "(" + strings.Join(names, ",") + ")"
}

// fieldWriter prints aligned "Name: value" lines and keeps the first
// write error.
type fieldWriter struct {
	w   io.Writer
	err error
}

func (f *fieldWriter) field(name string, v any) {
	f.line(fmt.Sprintf("%-11s %v", name+":", v))
}

func (f *fieldWriter) line(s string) {
	if f.err == nil {
		_, f.err = fmt.Fprintln(f.w, s)
	}
}
