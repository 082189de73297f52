package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/internal/testutil"
)

// e4boxBin is the binary under test, built once by TestMain.
var e4boxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e4box-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e4boxBin = filepath.Join(dir, "e4box")
	if out, err := exec.Command("go", "build", "-o", e4boxBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building e4box: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished e4box run.
type result struct {
	code           int
	stdout, stderr string
}

func e4box(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(e4boxBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running e4box %q: %v", args, err)
	}
	return r
}

// wantError checks a failing run: exit status 1 and one stderr line
// matching re.
func (r result) wantError(t *testing.T, re string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit status %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !regexp.MustCompile(re).MatchString(lines[0]) {
		t.Errorf("stderr %q, want one line matching %q", r.stderr, re)
	}
}

// fixture builds a small image with known contents.
type fixture struct {
	dir, src, img string
}

func newFixture(t *testing.T, mkfsArgs ...string) *fixture {
	t.Helper()
	mkfs := testutil.RequireTool(t, "mkfs.ext4")
	dir := t.TempDir()
	f := &fixture{dir: dir, src: filepath.Join(dir, "src"), img: filepath.Join(dir, "img.ext4")}
	for _, d := range []string{"src/sub/deeper", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.src, "hello.txt"), []byte("hello, e4box\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.src, "sub", "data"), bytes.Repeat([]byte("abcdefgh"), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../hello.txt", filepath.Join(f.src, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-q", "-F", "-L", "clitest", "-d", f.src}, mkfsArgs...)
	args = append(args, f.img, "32M")
	if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return f
}

func (f *fixture) mnt() string { return filepath.Join(f.dir, "mnt") }

func TestOfflineCommands(t *testing.T) {
	f := newFixture(t)
	r := e4box(t, "ls", f.img, "/")
	if r.code != 0 {
		t.Fatalf("ls: %+v", r)
	}
	for _, re := range []string{
		`(?m)^-rw-r----- 1 0 0 13 \S+ \S+ hello.txt$`,
		`(?m)^drwxr-xr-x 3 0 0 \d+ \S+ \S+ sub$`,
		`(?m)^drwx------ 2 0 0 \d+ \S+ \S+ lost\+found$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("ls output does not match %s:\n%s", re, r.stdout)
		}
	}
	if strings.Contains(r.stdout, " .\n") || strings.Contains(r.stdout, " ..\n") {
		t.Errorf("ls lists . or ..:\n%s", r.stdout)
	}
	r = e4box(t, "ls", f.img, "sub")
	if r.code != 0 || !strings.Contains(r.stdout, "link -> ../hello.txt\n") {
		t.Errorf("ls sub: %+v", r)
	}

	r = e4box(t, "cat", f.img, "/sub/link") // follows the symlink
	if r.code != 0 || r.stdout != "hello, e4box\n" {
		t.Errorf("cat link: %+v", r)
	}
	r = e4box(t, "cat", f.img, "sub/data")
	if r.code != 0 || r.stdout != strings.Repeat("abcdefgh", 100000) {
		t.Errorf("cat data: code %d, %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	e4box(t, "cat", f.img, "/nope").wantError(t, `^e4box: /nope: no such file or directory$`)
	e4box(t, "cat", f.img, "/sub").wantError(t, `^e4box: /sub: is a directory$`)

	r = e4box(t, "stat", f.img, "/sub/data")
	for _, re := range []string{
		`(?m)^Type:\s+regular file$`, `(?m)^Size:\s+800000$`, `(?m)^Links:\s+1$`,
		`(?m)^Flags:\s+0x80000 \(extents\)$`, `(?m)^Generation:\s+\d+$`, `(?m)^Birth:\s+\d{4}-`,
		`(?m)^Mapping:\s+extents: 1 mapped \(800768 bytes\)`, `(?m)^Xattrs:`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("stat output does not match %s:\n%s", re, r.stdout)
		}
	}
	r = e4box(t, "stat", f.img, "/sub/link") // not followed
	if !regexp.MustCompile(`(?m)^Type:\s+symbolic link$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "Target:     ../hello.txt\n") {
		t.Errorf("stat link:\n%s", r.stdout)
	}

	r = e4box(t, "info", f.img)
	for _, re := range []string{
		`(?m)^Label:\s+clitest$`, `(?m)^UUID:\s+[0-9a-f-]{36}$`, `(?m)^Block size:\s+\d+$`,
		`(?m)^Features:.*\bextent\b.*\bmetadata_csum\b`, `(?m)^State:\s+clean$`, `(?m)^Groups:\s+\d+ groups`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("info output does not match %s:\n%s", re, r.stdout)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	f := newFixture(t)
	notExt4 := filepath.Join(f.dir, "zeros.img")
	if err := os.WriteFile(notExt4, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(f.dir, "plainfile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(f.dir, "missing.img")

	e4box(t, "info", missing).wantError(t, `^e4box: .*missing\.img: no such file or directory$`)
	e4box(t, "ls", notExt4).wantError(t, `^e4box: .*zeros\.img: not an ext2/ext3/ext4 filesystem`)
	e4box(t, "mount", "-o", "ro", missing, f.mnt()).wantError(t, `missing\.img: no such file or directory$`)
	e4box(t, "mount", notExt4, f.mnt()).wantError(t, `zeros\.img: not an ext2/ext3/ext4 filesystem`)
	e4box(t, "mount", f.img, file).wantError(t, `^e4box: mountpoint .*plainfile: not a directory$`)
	e4box(t, "mount", f.img, filepath.Join(f.dir, "nodir")).wantError(t, `^e4box: mountpoint .*nodir: no such file or directory$`)
	if r := e4box(t, "mount", "-o", "errors=explode", f.img, f.mnt()); r.code != 2 || !strings.Contains(r.stderr, "invalid option errors=explode") {
		t.Errorf("bad errors= value: %+v", r)
	}
	if r := e4box(t, "mount", "-o", "frobnicate", f.img, f.mnt()); r.code != 2 || !strings.Contains(r.stderr, `unknown mount option "frobnicate"`) {
		t.Errorf("unknown option: %+v", r)
	}
	if r := e4box(t, "frobnicate"); r.code != 2 {
		t.Errorf("unknown command: %+v", r)
	}

	enc := newFixture(t, "-O", "encrypt,casefold")
	e4box(t, "info", enc.img).wantError(t, `unsupported filesystem features: .*encrypt.*casefold|unsupported filesystem features: .*casefold.*encrypt`)
	testutil.RequireRoot(t)
	e4box(t, "mount", enc.img, enc.mnt()).wantError(t, `unsupported filesystem features: .*encrypt`)
	if mounted(t, enc.mnt()) {
		t.Error("failed mount left a mount behind")
	}
}

func TestMountBackground(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	f := newFixture(t)
	mnt := f.mnt()
	r := e4box(t, "mount", "-o", "ro,noatime", f.img, mnt)
	if r.code != 0 {
		t.Fatalf("mount: %+v", r)
	}
	t.Cleanup(func() { unmountAndWait(t, mnt) })
	// The mount is live as soon as the command returns.
	got, err := os.ReadFile(filepath.Join(mnt, "sub", "link"))
	if err != nil || string(got) != "hello, e4box\n" {
		t.Fatalf("read through the mount: %q, %v", got, err)
	}
	if pids := serverPids(t, mnt); len(pids) != 1 {
		t.Errorf("server processes: %v, want one", pids)
	}
	// Writes are refused the way a read-only filesystem refuses them.
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); !isErrno(err, syscall.EROFS) {
		t.Errorf("create on the mount: %v, want EROFS", err)
	}
	e4box(t, "mount", f.img, mnt).wantError(t, `^e4box: mountpoint .* is busy`)
	unmountAndWait(t, mnt)
}

func TestMountHelperForm(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	f := newFixture(t)
	mnt := f.mnt()
	// mount(8) -f is "fake": check, mount nothing.
	if r := e4box(t, f.img, mnt, "-f", "-o", "ro"); r.code != 0 || mounted(t, mnt) {
		t.Fatalf("fake helper mount: %+v, mounted %v", r, mounted(t, mnt))
	}
	if r := e4box(t, f.img, mnt, "-n", "-o", "ro,defaults,x-systemd.device-timeout=5,fsname=clitest"); r.code != 0 {
		t.Fatalf("helper mount: %+v", r)
	}
	t.Cleanup(func() { unmountAndWait(t, mnt) })
	if !strings.Contains(mountLine(t, mnt), "clitest "+mnt+" fuse.e4box ro,") {
		t.Errorf("mount table line %q", mountLine(t, mnt))
	}
	unmountAndWait(t, mnt)
}

func TestForegroundSignal(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	f := newFixture(t)
	mnt := f.mnt()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(e4boxBin, "mount", "-f", "-o", "ro", f.img, mnt)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !mounted(t, mnt) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("foreground mount never appeared; stderr %s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(mnt, "hello.txt")); err != nil {
			t.Errorf("stat through the mount: %v", err)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: exit %v, stderr %s", sig, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v: server did not exit", sig)
		}
		if mounted(t, mnt) {
			t.Errorf("%v: still mounted after exit", sig)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
}

// TestNoDevFuse hides /dev/fuse in a private mount namespace.
func TestNoDevFuse(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireTool(t, "unshare")
	f := newFixture(t)
	script := `mount -t tmpfs none /dev && exec "$0" mount -o ro "$1" "$2"`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, e4boxBin, f.img, f.mnt())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stderr: stderr.String()}
	if err != nil && r.code == 0 {
		t.Fatal(err)
	}
	r.wantError(t, `^e4box: no /dev/fuse: `)
}

func isErrno(err error, want syscall.Errno) bool {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e == want
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// mountLine returns mnt's line in /proc/mounts, or "".
func mountLine(t *testing.T, mnt string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && fields[1] == mnt {
			return sc.Text()
		}
	}
	return ""
}

func mounted(t *testing.T, mnt string) bool { return mountLine(t, mnt) != "" }

// serverPids finds e4box processes serving mnt.
func serverPids(t *testing.T, mnt string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if len(args) > 1 && args[0] == e4boxBin && args[len(args)-1] == mnt {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountAndWait unmounts mnt (if mounted) and waits for its server
// process to exit.
func unmountAndWait(t *testing.T, mnt string) {
	t.Helper()
	pids := serverPids(t, mnt)
	if mounted(t, mnt) {
		// EBUSY can be transient: something on the machine (a walker of
		// /tmp, a mount table reader) may hold the mount for a moment.
		err := syscall.Unmount(mnt, 0)
		for i := 0; err == syscall.EBUSY && i < 20; i++ {
			time.Sleep(50 * time.Millisecond)
			err = syscall.Unmount(mnt, 0)
		}
		if err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Errorf("server %d did not exit after unmount", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
