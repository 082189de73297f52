package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var errNotMounted = errors.New("not a mount point")

// LoopMount mounts img on dir through a loop device with the kernel's own
// ext2/3/4 driver (read-only when ro), the oracle e4box is compared with,
// and returns the loop device. Cleanup unmounts dir unless the test
// already did (see Unmount).
//
// The loop device is set up by mount(8) with autoclear, so it detaches
// itself at unmount: nothing ever detaches a device by name, which could
// hit a device another test process has attached since.
func LoopMount(t testing.TB, img, dir string, ro bool) string {
	t.Helper()
	RequireLoop(t)
	RequireTool(t, "mount")
	return loopMount(t, img, dir, ro)
}

func loopMount(t testing.TB, img, dir string, ro bool) string {
	t.Helper()
	opts := "loop,rw"
	if ro {
		opts = "loop,ro"
	}
	// mount(8) probes the type (ext2, ext3 or ext4) like a user would.
	if out, err := exec.Command("mount", "-o", opts, img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -o %s %s %s: %v: %s\nkernel log:\n%s", opts, img, dir, err, out, kernelLogTail())
	}
	t.Cleanup(func() {
		if ok, _ := IsMountPoint(dir); ok {
			if err := unmount(dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	dev, err := mountSource(dir)
	if err != nil {
		t.Fatalf("LoopMount: %v", err)
	}
	return dev
}

// kernelLogTail returns the last lines of the kernel log, where ext4 says
// why it refused a mount.
func kernelLogTail() string {
	out, err := exec.Command("dmesg", "--notime").Output()
	if err != nil {
		return fmt.Sprintf("(dmesg: %v)\n", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n") + "\n"
}

// Unmount unmounts dir (a loop or FUSE mount), retrying for a few seconds
// while it is busy, and fails the test if it cannot. As non-root it uses
// fusermount3 -u.
func Unmount(t testing.TB, dir string) {
	t.Helper()
	if err := unmount(dir); err != nil {
		t.Fatal(err)
	}
}

// unmount retries EBUSY: a server or a just-closed file can hold the
// mount for a moment.
func unmount(dir string) error {
	ok, err := IsMountPoint(dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("unmount %s: %w", dir, errNotMounted)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = unix.Unmount(dir, 0)
		if err == unix.EPERM && os.Geteuid() != 0 {
			if out, ferr := exec.Command("fusermount3", "-u", dir).CombinedOutput(); ferr != nil {
				return fmt.Errorf("fusermount3 -u %s: %v: %s", dir, ferr, out)
			}
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// IsMountPoint reports whether dir is a mount point, from
// /proc/self/mountinfo.
func IsMountPoint(dir string) (bool, error) {
	_, ok, err := mountInfo(dir)
	return ok, err
}

// mountSource returns the source (device) mounted on dir.
func mountSource(dir string) (string, error) {
	src, ok, err := mountInfo(dir)
	if err == nil && !ok {
		err = fmt.Errorf("%s: %w", dir, errNotMounted)
	}
	return src, err
}

// mountInfo finds the last (topmost) mount on dir in /proc/self/mountinfo
// and returns its source.
func mountInfo(dir string) (source string, mounted bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == abs {
			mounted, source = true, ""
			for i, f := range fields {
				if f == "-" && i+2 < len(fields) {
					source = unescapeMountinfo(fields[i+2])
				}
			}
		}
	}
	return source, mounted, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
