package ext4

import (
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// isFastSymlink mirrors the kernel's ext4_inode_is_fast_symlink: a symlink
// whose target lives in i_block is one with no blocks charged besides its
// xattr block.
func (fs *FS) isFastSymlink(in *Inode) bool {
	if in.hasFlag(disk.EAInodeFL) {
		return in.IsSymlink() && in.Size > 0 && in.Size < disk.InlineDataIBlockSize
	}
	if in.hasFlag(disk.InlineDataFL) {
		return false
	}
	var eaBlocks uint64
	if in.raw.FileACL() != 0 {
		eaBlocks = uint64(fs.geo.ClusterSize() >> 9)
	}
	return in.IsSymlink() && in.blocks512 == eaBlocks
}

// ReadLink returns a symlink's target. Fast symlinks are read from
// i_block, inline ones from their inline data, slow ones from their single
// data block (read directly from the device, like file data).
func (fs *FS) ReadLink(ino Ino) ([]byte, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return nil, err
	}
	if !in.IsSymlink() {
		return nil, syscall.EINVAL
	}
	// ext4_symlink limits targets to a block including the NUL.
	if in.Size == 0 || in.Size >= uint64(fs.bsize) {
		return nil, fs.corruptf("symlink", ino, 0, "target length %d invalid", in.Size)
	}
	switch {
	case in.hasFlag(disk.InlineDataFL):
		data, err := fs.inlineData(in)
		if err != nil {
			return nil, err
		}
		if uint64(len(data)) != in.Size {
			return nil, fs.corruptf("symlink", ino, 0, "inline target has %d of %d bytes", len(data), in.Size)
		}
		return data, nil
	case fs.isFastSymlink(in):
		if in.Size >= disk.InlineDataIBlockSize {
			return nil, fs.corruptf("symlink", ino, 0, "fast symlink of %d bytes", in.Size)
		}
		return append([]byte(nil), in.raw.Block[:in.Size]...), nil
	}
	bm, err := fs.mapBlockLocked(in, 0)
	if err != nil {
		return nil, err
	}
	if bm.kind != MapMapped {
		return nil, fs.corruptf("symlink", ino, 0, "target block is a %v", bm.kind)
	}
	t := make([]byte, in.Size)
	if err := fs.readBlocksLocked(in, t, 0); err != nil {
		return nil, err
	}
	return t, nil
}
