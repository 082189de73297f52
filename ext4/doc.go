// Package ext4 is e4box's stateful ext2/3/4 library: it opens a filesystem on
// a blockdev.Device and answers lookups, directory listings, attribute,
// xattr and symlink reads, and file mappings (Map) on which the FUSE server
// and its iomap path are built.
//
// It owns the filesystem's runtime state: the superblock in use, group
// descriptor access, the metadata buffer cache, a cache of decoded inodes,
// and (through Update) all metadata mutation. Layouts, checksums and name
// hashes live in the leaf packages it imports (ext4/disk, ext4/dirhash,
// internal/crc); block I/O goes through blockdev and bcache. It imports
// nothing else outside the standard library.
//
// # Data path
//
// File data never passes through the buffer cache: ReadAt maps the range
// with Map and reads the device directly. Only metadata blocks (group
// descriptors, inode tables, extent and indirect blocks, directory blocks,
// xattr blocks) are cached; slow-symlink targets and EA-inode values are
// read like file data.
//
// # Errors
//
// POSIX outcomes are syscall.Errno values (ENOENT, ENOTDIR, ENODATA, EROFS,
// ...). Malformed metadata yields a *CorruptError naming the kind of
// structure, the inode and the block involved; errors.Is(err, ErrCorrupt)
// holds for it. A corrupted structure fails only the operations that touch
// it: a bad group descriptor fails inodes of that group, a bad extent block
// fails that file. Device failures are returned wrapped.
//
// # Concurrency
//
// An *FS is safe for concurrent use. FS.mu is a RWMutex over the filesystem
// state: every exported read operation holds it shared for its whole
// duration, and Update holds it exclusively, so a reader never observes a
// half-applied mutation (cached buffers and inode snapshots change only
// under the exclusive lock). Device reads happen under the shared lock.
// Immutable state (geometry, features, the superblock as opened) is read
// without locking.
//
// Lock order (acquire top to bottom, never upwards):
//
//	FS.mu              (RWMutex: live superblock, statfs counters, metadata contents)
//	  FS.icache.mu     (decoded-inode cache; leaf, never held across I/O)
//	  bcache.Cache.mu  (inside bcache; leaf, never held across I/O)
//
// Functions whose name ends in Locked require FS.mu held, shared unless
// they say otherwise (Tx methods run under the exclusive lock).
package ext4
