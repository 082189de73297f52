// Package disk owns ext2/3/4's on-disk layouts: Go structs mirroring the
// kernel's C structs field by field in disk order, their decoders and
// encoders over byte slices, and the checksum verify/set pairs that go with
// them. It does no I/O and keeps no state; the stateful ext4 package reads
// blocks, hands them here, and wraps the errors returned with inode and
// block context.
//
// Conventions:
//   - Struct fields keep the C order and names (s_blocks_count_lo becomes
//     BlocksCountLo) with the hex offset and C name in a comment. Accessors join
//     lo/hi halves; the raw halves stay visible for fsck-style tools. A field
//     whose natural name would collide with its accessor carries a Raw suffix.
//   - Every input is untrusted. Decoders validate what they need to stay in
//     bounds, never panic, and never allocate more than a small constant
//     beyond their input. Failures are *FormatError values, for which
//     errors.Is(err, ErrCorrupt) holds; checksum mismatches additionally
//     match ErrChecksum.
//   - Checksums follow the kernel (Documentation/filesystems/ext4): crc32c in
//     the kernel's raw convention from internal/crc, per-inode seeds built
//     from the filesystem seed, the inode number and its generation.
//
// Reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (read
// for facts; no code was copied).
//
// Imports: the standard library and internal/crc only.
package disk
