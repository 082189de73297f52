package optest

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// Tests of the harness itself: it passes on two equal file systems, is
// reproducible, and fails, with a usable report, when they differ.

// fakeTB records failures instead of failing the real test.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any)                 { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.Errorf(format, args...); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)                 { f.Error(args...); runtime.Goexit() }
func (f *fakeTB) Fail()                             { f.Errorf("Fail") }
func (f *fakeTB) FailNow()                          { f.Fail(); runtime.Goexit() }

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeTB) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// capture runs fn with a fakeTB on its own goroutine (Fatal ends it).
func capture(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func tmpfsPair(t *testing.T) (target, ref string) {
	return Tmpfs(t), Tmpfs(t)
}

// tmpfsFeatures is what a tmpfs target supports: no ZERO_RANGE.
func tmpfsFeatures() Features {
	f := AllFeatures()
	f.Fallocate &^= FallocZeroRange
	return f
}

func TestRunTmpfsPair(t *testing.T) {
	testutil.RequireRoot(t)
	var ops [2]map[string]int
	for i := range ops {
		target, ref := tmpfsPair(t)
		res := Run(t, Config{Seed: 7, Steps: Steps(1500), Target: target, Reference: ref, Features: tmpfsFeatures(), CompareLayout: true})
		if res.Steps >= 1500 {
			res.Coverage(t, OpKinds()...)
		}
		ops[i] = res.Ops
	}
	if fmt.Sprint(ops[0]) != fmt.Sprint(ops[1]) {
		t.Errorf("the same seed drew different operations:\n%v\n%v", ops[0], ops[1])
	}
	target, ref := tmpfsPair(t)
	other := Run(t, Config{Seed: 8, Steps: Steps(1500), Target: target, Reference: ref, Features: tmpfsFeatures()})
	if fmt.Sprint(other.Ops) == fmt.Sprint(ops[0]) {
		t.Errorf("seeds 7 and 8 drew the same operations: %v", other.Ops)
	}
}

// A target that runs out of space must make Run fail at that step, with
// the seed, the step and the operations leading to it.
func TestRunDetectsDivergence(t *testing.T) {
	testutil.RequireRoot(t)
	target := t.TempDir()
	if err := unix.Mount("optest", target, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(target, 0) })
	f := capture(t, func(tb testing.TB) {
		Run(tb, Config{Seed: 1, Steps: 2000, Target: target, Reference: Tmpfs(t), Features: tmpfsFeatures()})
	})
	msg := f.text()
	if !f.Failed() {
		t.Fatal("Run passed against a 64 KiB target")
	}
	for _, want := range []string{"optest seed 1, step ", "outcome differs", "last operations:", "replay: Config{Seed: 1, Steps: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure report lacks %q:\n%s", want, msg)
		}
	}
}

// After a run, the comparison must see a changed byte, a changed mode and
// a changed pinned mtime, and must not see a changed unpinned mtime or
// ctime.
func TestCompareDetects(t *testing.T) {
	testutil.RequireRoot(t)
	target, ref := tmpfsPair(t)
	res := Run(t, Config{Seed: 3, Steps: Steps(800), Target: target, Reference: ref, Features: tmpfsFeatures()})
	snap, err := testutil.Snapshot(ref)
	if err != nil {
		t.Fatal(err)
	}
	var file, pinned, unpinned string
	for p, e := range snap {
		switch {
		case e.Type == unix.S_IFREG && e.Size > 0 && e.Nlink == 1 && file == "":
			file = p
		case !res.pinned[e.Ino] && e.Type == unix.S_IFREG && e.Nlink == 1 && unpinned == "" && p != file:
			unpinned = p
		}
	}
	if file == "" || unpinned == "" {
		t.Fatalf("no file (%q) or unpinned (%q) entry after the run", file, unpinned)
	}
	// Pin one more mtime, as a utimensat step would have.
	pinned = file
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 12345, Nsec: 6789}}
	pin := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 2_000_000_000, Nsec: 1}}
	for _, root := range []string{target, ref} {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs(root, pinned), pin, 0); err != nil {
			t.Fatal(err)
		}
	}
	res.pinned[snap[pinned].Ino] = true
	res.Compare(t, target)

	if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs(target, unpinned), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	res.Compare(t, target) // an unpinned mtime may differ

	mutations := []struct {
		what string
		do   func() error
		undo func() error
	}{
		{"a byte of " + file, func() error { return flipByte(abs(target, file)) }, func() error { return flipByte(abs(target, file)) }},
		{"the mode of " + file, func() error { return os.Chmod(abs(target, file), 0o4711) },
			func() error {
				return os.Chmod(abs(target, file), os.FileMode(snap[file].Mode&0o777)|goMode(snap[file].Mode))
			}},
		{"the pinned mtime of " + pinned, func() error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, abs(target, pinned), ts, unix.AT_SYMLINK_NOFOLLOW)
		}, nil},
	}
	// Zeros written into a hole read the same but fill the hole.
	refLayout, err := layouts(ref)
	if err != nil {
		t.Fatal(err)
	}
	if p, off, ok := pageHole(snap, refLayout); ok {
		zeros := make([]byte, pageSize)
		mutations = append(mutations, struct {
			what string
			do   func() error
			undo func() error
		}{"a hole in " + p, func() error { return pwriteFile(abs(target, p), zeros, off) }, nil})
	} else {
		t.Error("no file with a page-sized hole after the run")
	}
	for _, m := range mutations {
		if err := m.do(); err != nil {
			t.Fatal(err)
		}
		f := capture(t, func(tb testing.TB) { res.Compare(tb, target) })
		if !f.Failed() {
			t.Errorf("Compare missed a change to %s", shortPath(m.what))
		}
		if m.undo != nil {
			if err := m.undo(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func goMode(m uint32) os.FileMode {
	var fm os.FileMode
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

func flipByte(p string) error {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	b := make([]byte, 1)
	off := st.Size / 2
	if _, err := unix.Pread(fd, b, off); err != nil {
		return err
	}
	b[0] ^= 0x5a
	_, err = unix.Pwrite(fd, b, off)
	return err
}

// pageHole finds a regular file with a hole wider than twice holeMargin
// plus a page, and returns a page-aligned offset in its middle.
func pageHole(snap map[string]testutil.Entry, ls map[string][]testutil.Region) (string, int64, bool) {
	var paths []string
	for p, e := range snap {
		if e.Type == unix.S_IFREG {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		end := int64(0)
		for _, r := range append(ls[p], testutil.Region{Off: snap[p].Size}) {
			if r.Off-end > 2*holeMargin+2*pageSize {
				return p, (end + r.Off) / 2 / pageSize * pageSize, true
			}
			end = r.Off + r.Len
		}
	}
	return "", 0, false
}

const pageSize = 4096
