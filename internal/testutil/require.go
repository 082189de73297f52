package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// requirement is a failure rather than a skip: CI must not pass by
// silently skipping the end-to-end tests.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// skipOrFail skips the test with reason, or fails it under CI.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("requirement missing under CI=true: %s", msg)
		return
	}
	t.Skipf("skipping: %s", msg)
}

// RequireRoot skips (fails under CI) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (euid is %d)", os.Geteuid())
	}
}

// RequireFuse skips (fails under CI) unless /dev/fuse can be opened for
// reading and writing, which is what mounting a FUSE filesystem needs.
func RequireFuse(t testing.TB) {
	t.Helper()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		skipOrFail(t, "cannot open /dev/fuse: %v", err)
		return
	}
	unix.Close(fd)
}

// RequireTool skips (fails under CI) unless the named program is on PATH
// (or in /sbin, /usr/sbin, where e2fsprogs lives but a non-root PATH may
// not reach). It returns the program's full path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := lookTool(name)
	if err != nil {
		skipOrFail(t, "tool %q not found (run scripts/setup.sh): %v", name, err)
	}
	return p
}

// lookTool finds a program on PATH or in the sbin directories.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not in PATH or sbin directories", name)
}

// RequireLoop skips (fails under CI) unless loop devices can be attached:
// it needs root, /dev/loop-control and mount(8) (which sets them up).
func RequireLoop(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "mount")
	fd, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		skipOrFail(t, "cannot open /dev/loop-control: %v", err)
		return
	}
	unix.Close(fd)
}

// RequireE2fsprogs is RequireTool for the e2fsprogs programs the image
// helpers run: mkfs.ext4, e2fsck and debugfs.
func RequireE2fsprogs(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "debugfs"} {
		RequireTool(t, tool)
	}
}
