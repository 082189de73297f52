// Package testutil holds the helpers e4box's tests share: skipping (or,
// under CI, failing) when root, /dev/fuse, loop devices or e2fsprogs tools
// are missing; a deterministic generator of source trees covering every
// file type ext4 stores; building images from those trees with
// mkfs.ext4 -d or through the kernel's own ext4; loop-mounting images so
// the kernel can act as the oracle; e2fsck and debugfs wrappers; and
// snapshotting and comparing two trees (a FUSE mount against the kernel's
// view of the same image, or an image against its source tree).
//
// It owns no e4box code path: it may import only the standard library,
// golang.org/x/sys/unix and the standard testing package, so any package
// in the module can use it from its tests without an import cycle.
//
// The kernel's view of an image is the reference, not the source tree:
// mkfs.ext4 -d in e2fsprogs 1.47.0 drops sub-second timestamps, wraps
// times past 2038 and, with inline_data, trailing holes. Compare a FUSE
// mount with a loop mount of the same image for exact results, and use
// SourceTreeOptions when comparing with the generator's output.
package testutil
