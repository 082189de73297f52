package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
)

// openImage opens an image or block device read-only and mounts the ext4
// library on it. Errors name the image and read as one line.
func openImage(path string, opts ext4.Options) (*ext4.FS, error) {
	dev, err := openDevice(path, true)
	if err != nil {
		return nil, err
	}
	opts.ReadOnly = true
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fsys, err := ext4.Open(dev, opts)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fsys, nil
}

// The superblock magic, checked here only to turn "not ext4 at all" into
// a plain sentence instead of a corruption report.
const (
	superMagicOff = 1024 + 0x38
	superMagic    = 0xEF53
)

// openDevice opens an image or block device and checks that it looks like
// ext2/3/4 at all. A block device opened read-write is exclusive
// (O_EXCL): the kernel refuses it while mounted, and refuses to mount it
// while we hold it.
func openDevice(path string, readOnly bool) (blockdev.Device, error) {
	dev, err := blockdev.Open(path, readOnly)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, describeOSError(err))
	}
	var magic [2]byte
	if _, err := dev.ReadAt(magic[:], superMagicOff); err != nil || binary.LittleEndian.Uint16(magic[:]) != superMagic {
		dev.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: reading superblock: %w", path, err)
		}
		return nil, fmt.Errorf("%s: not an ext2/ext3/ext4 filesystem (no superblock magic)", path)
	}
	return dev, nil
}

// describeOSError drops the "op path:" prefix of a *fs.PathError so the
// caller can put the path first without repeating it.
func describeOSError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxSymlinkFollows bounds symlink resolution, like the kernel's 40.
const maxSymlinkFollows = 40

// resolve walks an absolute or image-root-relative path from the root.
// Symlinks in intermediate components are always followed; the last one
// only when followLast is set (cat follows, ls and stat do not).
func resolve(fsys *ext4.FS, path string, followLast bool) (ext4.Ino, error) {
	follows := 0
	return walk(fsys, ext4.RootIno, path, followLast, &follows)
}

func walk(fsys *ext4.FS, dir ext4.Ino, path string, followLast bool, follows *int) (ext4.Ino, error) {
	if strings.HasPrefix(path, "/") {
		dir = ext4.RootIno
	}
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	cur := dir
	for i, name := range parts {
		ino, err := fsys.Lookup(cur, []byte(name))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", "/"+strings.Join(parts[:i+1], "/"), err)
		}
		last := i == len(parts)-1
		if !last || followLast {
			inode, err := fsys.Inode(ino)
			if err != nil {
				return 0, err
			}
			if inode.IsSymlink() {
				*follows++
				if *follows > maxSymlinkFollows {
					return 0, fmt.Errorf("%s: %w", path, syscall.ELOOP)
				}
				target, err := fsys.ReadLink(ino)
				if err != nil {
					return 0, err
				}
				ino, err = walk(fsys, cur, string(target), true, follows)
				if err != nil {
					return 0, err
				}
			}
		}
		cur = ino
	}
	return cur, nil
}
