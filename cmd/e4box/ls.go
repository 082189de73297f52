package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/e4box/e4box/ext4"
)

// cmdLs lists a directory (or describes one non-directory) like ls -l,
// in name order, without "." and "..".
func cmdLs(args []string, stdout io.Writer) error {
	if len(args) < 1 || len(args) > 2 {
		return usageErr("ls: want IMAGE [PATH]")
	}
	path := "/"
	if len(args) == 2 {
		path = args[1]
	}
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
	if !inode.IsDir() {
		return lsLine(stdout, fsys, inode, path)
	}
	type entry struct {
		name []byte
		ino  ext4.Ino
	}
	var entries []entry
	err = fsys.ReadDir(ino, 0, func(e ext4.DirEntry) bool {
		if !bytes.Equal(e.Name, []byte(".")) && !bytes.Equal(e.Name, []byte("..")) {
			entries = append(entries, entry{bytes.Clone(e.Name), e.Ino})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.name, b.name) })
	var firstErr error
	for _, e := range entries {
		child, err := fsys.Inode(e.ino)
		if err == nil {
			err = lsLine(stdout, fsys, child, string(e.name))
		}
		if err != nil {
			// Keep listing: one damaged inode should not hide its siblings.
			fmt.Fprintf(stdout, "?????????? %s: %v\n", e.name, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	return firstErr
}

func lsLine(w io.Writer, fsys *ext4.FS, inode *ext4.Inode, name string) error {
	size := fmt.Sprint(inode.Size)
	if t := inode.Mode & sIFMT; t == sIFCHR || t == sIFBLK {
		maj, min := decodeDev(inode.Rdev())
		size = fmt.Sprintf("%d, %d", maj, min)
	}
	suffix := ""
	if inode.IsSymlink() {
		target, err := fsys.ReadLink(inode.Ino)
		if err != nil {
			return err
		}
		suffix = " -> " + string(target)
	}
	_, err := fmt.Fprintf(w, "%s %d %d %d %s %s %s%s\n", modeString(inode.Mode), inode.Nlink,
		inode.Uid, inode.Gid, size, inode.Mtime.UTC().Format(time.DateTime), name, suffix)
	return err
}

// File type bits of i_mode (stat.h values, which ext4 stores verbatim).
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// modeString renders a mode the way ls -l does ("drwxr-xr-x").
func modeString(mode uint16) string {
	var b [10]byte
	switch mode & sIFMT {
	case sIFSOCK:
		b[0] = 's'
	case sIFLNK:
		b[0] = 'l'
	case sIFREG:
		b[0] = '-'
	case sIFBLK:
		b[0] = 'b'
	case sIFDIR:
		b[0] = 'd'
	case sIFCHR:
		b[0] = 'c'
	case sIFIFO:
		b[0] = 'p'
	default:
		b[0] = '?'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(bit uint16, pos int, set, unsetExec byte) {
		if mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unsetExec
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b[:])
}

// decodeDev splits a new_encode_dev device number (what ext4.Inode.Rdev
// returns) into major and minor, like the kernel's new_decode_dev.
func decodeDev(dev uint32) (major, minor uint32) {
	return (dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00)
}
