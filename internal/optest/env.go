package optest

import (
	"os"
	"strconv"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// Tmpfs mounts a fresh tmpfs (nodev, 2 GiB) on a temporary directory for
// a reference tree and returns it; cleanup unmounts it. It fails t when
// the tmpfs cannot hold user xattrs (kernels before 6.6), which the
// reference needs.
func Tmpfs(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("optest", dir, "tmpfs", unix.MS_NODEV, "size=2g,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	if err := unix.Setxattr(dir, "user.optest", []byte("probe"), 0); err != nil {
		t.Fatalf("tmpfs at %s cannot hold user xattrs (%v): the reference needs a kernel >= 6.6", dir, err)
	}
	if err := unix.Removexattr(dir, "user.optest"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TargetDir is the directory NewImage creates for a run's target root: a
// subdirectory keeps lost+found out of the comparison, and making it with
// mkfs means a run's first failure on a new write path is a real
// operation, not the setup.
const TargetDir = "optest"

// NewImage creates an image of variant v, sizeMB large (sparse), with
// room for inodes files, holding only the empty directory TargetDir, and
// returns its path.
func NewImage(t testing.TB, v testutil.Variant, sizeMB, inodes int) string {
	t.Helper()
	// mke2fs takes the last -N, so this overrides the helper's estimate
	// (sized for the tiny tree).
	v.Args = append(append([]string(nil), v.Args...), "-N", strconv.Itoa(inodes))
	src := t.TempDir()
	if err := os.Mkdir(src+"/"+TargetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	img := t.TempDir() + "/img"
	testutil.MkfsD(t, img, src, v, sizeMB)
	return img
}

// Steps returns n, or the OPTEST_STEPS environment variable when set (to
// run longer by hand), or n/5 with -short.
func Steps(n int) int {
	if s, err := strconv.Atoi(os.Getenv("OPTEST_STEPS")); err == nil && s > 0 {
		return s
	}
	if testing.Short() {
		return max(n/5, 100)
	}
	return n
}
