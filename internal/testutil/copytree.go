package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// CopyTree copies the tree at src into the existing directory dst,
// preserving everything Snapshot compares: file types, data with holes,
// device numbers, hardlinks, owners, modes, all xattrs (POSIX ACLs
// included) and atime/mtime with nanoseconds. dst's own metadata is set
// from src's root. Needs root for owners, devices and trusted.* xattrs.
func CopyTree(src, dst string) error {
	c := &copier{links: map[uint64]string{}, buf: make([]byte, 1<<20)}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copytree: %s is not a directory", src)
	}
	if err := c.dir(src, dst); err != nil {
		return fmt.Errorf("copytree: %w", err)
	}
	return nil
}

type copier struct {
	links map[uint64]string // source inode -> first destination path, for hardlinks
	buf   []byte
}

// dir copies the children of src into dst, then dst's own metadata, so the
// children do not inherit a default ACL the source children did not get,
// and directory times are set after the entries that would change them.
func (c *copier) dir(src, dst string) error {
	fd, err := openNoatime(src, unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), src)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := c.entry(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	return c.meta(src, dst, &st)
}

func (c *copier) entry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := c.links[st.Ino]; ok {
			return os.Link(first, dst)
		}
		c.links[st.Ino] = dst
	}
	switch typ {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		return c.dir(src, dst)
	case unix.S_IFREG:
		if err := c.data(src, dst, st.Size); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknod(dst, typ|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	default:
		return fmt.Errorf("%s: unknown file type %#o", src, typ)
	}
	return c.meta(src, dst, &st)
}

// data copies a regular file's data regions and recreates its holes.
func (c *copier) data(src, dst string, size int64) error {
	in, err := openNoatime(src, 0)
	if err != nil {
		return err
	}
	defer unix.Close(in)
	out, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(out)
	regions, err := dataRegions(in, size)
	if err != nil {
		return err
	}
	for _, r := range regions {
		for off := r.Off; off < r.Off+r.Len; {
			n, err := unix.Pread(in, c.buf[:min(int64(len(c.buf)), r.Off+r.Len-off)], off)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("unexpected EOF at %d", off)
			}
			if _, err := unix.Pwrite(out, c.buf[:n], off); err != nil {
				return err
			}
			off += int64(n)
		}
	}
	return unix.Ftruncate(out, size)
}

// meta sets owner, mode, xattrs and times, in the order that keeps each
// from undoing another: chown clears setuid, chmod rewrites an ACL's mask
// and setting an access ACL rewrites the group bits to match it (which the
// source mode already does).
func (c *copier) meta(src, dst string, st *unix.Stat_t) error {
	typ := st.Mode & unix.S_IFMT
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if typ != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	xattrs, err := readXattrs(src)
	if err != nil {
		return fmt.Errorf("%s: xattrs: %w", src, err)
	}
	for _, name := range sortedStringKeys(xattrs) {
		if err := unix.Lsetxattr(dst, name, []byte(xattrs[name]), 0); err != nil {
			return fmt.Errorf("setxattr %s %s: %w", dst, name, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func sortedStringKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
