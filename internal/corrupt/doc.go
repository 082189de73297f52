// Package corrupt damages real ext2/3/4 images in controlled ways, for
// the robustness tests that require e4box to answer a corrupted image with
// clean errors on the affected files only.
//
// Scan lists an image's metadata blocks by kind (superblock, group
// descriptors, bitmaps, inode table blocks holding used inodes, extent
// tree and indirect blocks, directory leaves and htree index blocks,
// xattr blocks, slow symlink blocks) from dumpe2fs and debugfs, so the
// list does not depend on e4box's own parser. Image.Mutate then damages
// one such block deterministically (for a given *rand.Rand): random bit
// flips and overwrites, or a rewrite of a chosen field of the structure
// the block holds, optionally followed by recomputing the structure's
// checksum so the damage gets past checksum verification to the
// validators behind it. Image.Affected says which inodes a mutation may
// legitimately break; everything else must read as before.
//
// It is a test helper: it may import the standard library, ext4/disk
// (layouts and checksums) and internal/crc, and runs dumpe2fs and
// debugfs from e2fsprogs. Nothing in e4box's code paths imports it.
package corrupt
