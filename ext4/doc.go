// Package ext4 is e4box's stateful ext2/3/4 library: it opens a filesystem on
// a blockdev.Device and answers lookups, directory listings, attribute,
// xattr and symlink reads, and file mappings (Map) on which the FUSE server
// and its iomap path are built.
//
// It owns the filesystem's runtime state: the superblock in use, group
// descriptor access, the metadata buffer cache, a cache of decoded inodes,
// and (through Update) all metadata mutation. Layouts, checksums and hashes
// live in the leaf packages it imports: ext4/disk, ext4/dirhash and
// internal/crc; block I/O goes through blockdev and bcache. It may import
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
// state: every read operation holds it shared for its whole duration, and
// Update holds it exclusively, so a reader never observes a half-applied
// mutation. Device reads happen under the shared lock.
//
// Lock order (acquire top to bottom, never upwards):
//
//	FS.mu            (RWMutex: superblock copy, counters, Tx application)
//	  FS.icache.mu     (decoded-inode cache; never held across I/O)
//	    bcache.Cache.mu  (inside bcache; never held across I/O)
//
// Functions whose name ends in Locked require FS.mu held (shared suffices
// unless stated).
package ext4
