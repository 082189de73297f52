package main

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/e4box/e4box/ext4"
)

// cmdCat copies a file's contents to stdout, following symlinks.
func cmdCat(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return usageErr("cat: want IMAGE PATH")
	}
	path := args[1]
	fsys, err := openImage(args[0], ext4.Options{NoRecovery: true, IgnoreErrorState: true})
	if err != nil {
		return err
	}
	defer fsys.Close()
	ino, err := resolve(fsys, path, true)
	if err != nil {
		return err
	}
	inode, err := fsys.Inode(ino)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if inode.IsDir() {
		return fmt.Errorf("%s: %w", path, syscall.EISDIR)
	}
	if !inode.IsReg() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := fsys.ReadAt(ino, buf, off)
		if n > 0 {
			if _, werr := stdout.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: offset %d: %w", path, off, err)
		}
		if n == 0 {
			return nil
		}
	}
}
