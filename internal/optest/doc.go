// Package optest is the randomised differential operation test for a
// writable file system: it drives the same seeded stream of POSIX
// operations (create, write, truncate, fallocate, rename, link, unlink,
// mkdir, rmdir, symlink, mknod, xattrs, chmod, chown, utimensat, open
// handles kept across steps, writes to unlinked files) against a target
// directory — an e4box mount, or the kernel's own ext4 when validating the
// harness — and a reference directory on tmpfs, and requires every
// outcome (errno, byte counts, data read back, attributes of the paths
// touched) to agree, and whole-tree snapshots to agree every N steps.
//
// Besides Run it has the acceptance checks that go with a writable mount:
// VerifyImage (e2fsck -fn clean, then the kernel's read-only view of the
// image equals the reference), ENOSPC (fill to exhaustion, clean errors,
// space comes back, statfs agrees with e2fsck), and Concurrent (several
// writers on their own files and one shared directory).
//
// Generation reads only the reference, so a run is reproducible from its
// seed: a failure names the seed and step and shows the last operations.
//
// It owns no e4box code path: it imports the standard library,
// golang.org/x/sys/unix and internal/testutil (for images, loop mounts,
// e2fsck and snapshots), so any package's tests can use it.
package optest
