package optest

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// FillConfig is an ENOSPC run.
type FillConfig struct {
	// Dir is a directory on the file system under test; Fill works in a
	// subdirectory it creates and removes.
	Dir  string
	Seed uint64
	// Xattrs adds user xattrs up to XattrBudget bytes per inode (see
	// Features.XattrBudget); zero budget means 900.
	Xattrs      bool
	XattrBudget int
	// Fallocate adds default-mode fallocate calls (extent files only).
	Fallocate bool
	// MaxSteps bounds the run. Zero means 200,000.
	MaxSteps int
}

// FillReport is what a fill saw.
type FillReport struct {
	// Statfs before the fill, when full, and after everything was deleted.
	Before, Full, After unix.Statfs_t
	Steps               int
	ENOSPC              map[string]int // ENOSPC answers by operation
	Files, Dirs         int            // created before the file system filled up
}

// segment is one write whose bytes a file must still hold.
type segment struct {
	off, n int64
	seed   uint64
	kind   int
}

type fillFile struct {
	path string
	size int64
	segs []segment // in write order: later ones win
	log  []string  // what was done to it, for failure reports
	xval map[string]segment
}

// Fill fills the file system holding cfg.Dir with a mixed workload (large
// and small files, appends, directories, long symlinks, xattrs,
// fallocate) until it is out of both blocks and inodes. Every failure
// must be ENOSPC (EDQUOT with quotas); a short write counts its bytes.
// Then everything written is read back and checked, everything is
// deleted, and the free block and inode counts must return to where they
// were; a large file written afterwards must fit and read back.
func Fill(t testing.TB, cfg FillConfig) *FillReport {
	t.Helper()
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 200_000
	}
	if cfg.XattrBudget <= 0 {
		cfg.XattrBudget = 900
	}
	rep := &FillReport{ENOSPC: map[string]int{}}
	rep.Before = statfs(t, cfg.Dir)
	root := cfg.Dir + "/fill"
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRand(cfg.Seed)
	var files []*fillFile
	dirs := []string{root}
	failures := 0 // consecutive ENOSPC answers
	bad := 0
	// check classifies the outcome of an operation that needs space.
	check := func(what string, err error) bool {
		switch err {
		case nil:
			failures = 0
			return true
		case unix.ENOSPC, unix.EDQUOT:
			rep.ENOSPC[what]++
			failures++
			return false
		}
		bad++
		if bad <= 10 {
			t.Errorf("fill step %d: %s: %v (want success or ENOSPC)", rep.Steps, what, err)
		}
		return false
	}
	// write appends n bytes of new data to f; a short write keeps what
	// it wrote.
	write := func(f *fillFile, off, n int64) {
		fd, err := unix.Open(f.path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("fill: open %s: %v", f.path, err)
		}
		defer unix.Close(fd)
		s := segment{off: off, seed: r.Uint64(), kind: r.IntN(numDataKinds)}
		b := fill(s.seed, s.kind, n)
		for len(b) > 0 {
			m, err := unix.Pwrite(fd, b, s.off+s.n)
			if m > 0 {
				s.n += int64(m)
				b = b[m:]
			}
			if !check("write", err) || m == 0 {
				break
			}
		}
		if s.n > 0 {
			f.segs = append(f.segs, s)
			f.size = max(f.size, s.off+s.n)
		}
		f.log = append(f.log, fmt.Sprintf("pwrite %d+%d: wrote %d", off, n, s.n))
		if sz := fsize(t, fd); sz != f.size {
			t.Errorf("fill: %s: size %d after %s, want %d", f.path, sz, f.log[len(f.log)-1], f.size)
			f.size = sz
		}
	}
	newFile := func(dir string) *fillFile {
		f := &fillFile{path: fmt.Sprintf("%s/f%d", dir, rep.Files)}
		fd, err := unix.Open(f.path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if !check("create", err) {
			return nil
		}
		unix.Close(fd)
		rep.Files++
		files = append(files, f)
		return f
	}
	bigPhase := true
	for ; rep.Steps < cfg.MaxSteps && failures < 200; rep.Steps++ {
		dir := dirs[r.IntN(len(dirs))]
		if bigPhase {
			// Large files first, until the blocks run out.
			if f := newFile(dir); f != nil {
				write(f, 0, 1<<20+r.Int64N(4<<20))
			}
			if rep.ENOSPC["write"] > 0 {
				bigPhase = false
			}
			continue
		}
		switch k := r.IntN(100); {
		case k < 30:
			if f := newFile(dir); f != nil && r.IntN(2) == 0 {
				write(f, 0, 1+r.Int64N(8192))
			}
		case k < 50 && len(files) > 0:
			f := files[r.IntN(len(files))]
			write(f, f.size, 1+r.Int64N(64<<10))
		case k < 60:
			p := fmt.Sprintf("%s/d%d", dir, rep.Dirs)
			if check("mkdir", unix.Mkdir(p, 0o755)) {
				rep.Dirs++
				dirs = append(dirs, p)
			}
		case k < 70:
			p := fmt.Sprintf("%s/s%d", dir, rep.Steps)
			target := bytes.Repeat([]byte("t"), 100+r.IntN(800))
			check("symlink", unix.Symlink(string(target), p))
		case k < 85 && cfg.Xattrs && len(files) > 0:
			f := files[r.IntN(len(files))]
			if f.xval == nil {
				f.xval = map[string]segment{}
			}
			name := fmt.Sprintf("user.x%d", r.IntN(3))
			s := segment{n: r.Int64N(int64(cfg.XattrBudget/3 - 40)), seed: r.Uint64(), kind: r.IntN(numDataKinds)}
			if check("setxattr", unix.Setxattr(f.path, name, fill(s.seed, s.kind, s.n), 0)) {
				f.xval[name] = s
			}
		case k < 95 && cfg.Fallocate && len(files) > 0:
			f := files[r.IntN(len(files))]
			fd, err := unix.Open(f.path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatalf("fill: open %s: %v", f.path, err)
			}
			n := 1 + r.Int64N(256<<10)
			ok := check("fallocate", unix.Fallocate(fd, 0, f.size, n))
			// A failed fallocate may keep what it allocated before
			// running out (ext4 extends the size as it goes).
			sz := fsize(t, fd)
			f.log = append(f.log, fmt.Sprintf("fallocate %d+%d: ok=%v, size %d", f.size, n, ok, sz))
			if ok && sz != f.size+n || sz < f.size || sz > f.size+n {
				t.Errorf("fill: %s: size %d after %s", f.path, sz, f.log[len(f.log)-1])
			}
			f.size = sz
			unix.Close(fd)
		default:
			newFile(dir)
		}
	}
	if rep.Steps == cfg.MaxSteps {
		t.Errorf("fill: not full after %d steps (ENOSPC so far: %v)", rep.Steps, rep.ENOSPC)
	}
	for _, what := range []string{"write", "create"} {
		if rep.ENOSPC[what] == 0 {
			t.Errorf("fill: %s never failed with ENOSPC (%v)", what, rep.ENOSPC)
		}
	}
	syncfs(t, cfg.Dir)
	rep.Full = statfs(t, cfg.Dir)
	if rep.Full.Bavail > rep.Full.Blocks/10 {
		t.Errorf("fill: %d of %d blocks still available after ENOSPC", rep.Full.Bavail, rep.Full.Blocks)
	}
	for _, f := range files {
		verifyFile(t, f)
	}

	if err := os.RemoveAll(root); err != nil {
		t.Fatalf("fill: deleting everything: %v", err)
	}
	syncfs(t, cfg.Dir)
	rep.After = statfs(t, cfg.Dir)
	if rep.After.Bfree != rep.Before.Bfree || rep.After.Ffree != rep.Before.Ffree {
		t.Errorf("fill: after deleting everything, %d free blocks and %d free inodes; before the fill %d and %d",
			rep.After.Bfree, rep.After.Ffree, rep.Before.Bfree, rep.Before.Ffree)
	}
	// The space is usable again: a file of half the free space fits.
	f := &fillFile{path: cfg.Dir + "/after-fill"}
	if fd, err := unix.Open(f.path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644); err != nil {
		t.Fatalf("fill: create after deleting: %v", err)
	} else {
		unix.Close(fd)
	}
	half := int64(rep.After.Bavail) * rep.After.Bsize / 2
	for off := int64(0); off < half; off += 4 << 20 {
		n := min(4<<20, half-off)
		s := segment{off: off, n: n, seed: r.Uint64(), kind: dataRandom}
		if err := pwriteFile(f.path, fill(s.seed, s.kind, n), off); err != nil {
			t.Fatalf("fill: writing %d bytes at %d after deleting: %v", n, off, err)
		}
		f.segs = append(f.segs, s)
		f.size = off + n
	}
	verifyFile(t, f)
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	syncfs(t, cfg.Dir)
	rep.After = statfs(t, cfg.Dir)
	t.Logf("fill: %d steps, %d files, %d dirs, ENOSPC %v; free blocks %d -> %d -> %d, free inodes %d -> %d -> %d",
		rep.Steps, rep.Files, rep.Dirs, rep.ENOSPC, rep.Before.Bfree, rep.Full.Bfree, rep.After.Bfree,
		rep.Before.Ffree, rep.Full.Ffree, rep.After.Ffree)
	return rep
}

func pwriteFile(p string, b []byte, off int64) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("short write at %d", off)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// verifyFile reads f back and compares it with its writes replayed.
func verifyFile(t testing.TB, f *fillFile) {
	t.Helper()
	got, err := os.ReadFile(f.path)
	if err != nil {
		t.Errorf("%s: %v", f.path, err)
		return
	}
	want := make([]byte, f.size)
	for _, s := range f.segs {
		copy(want[s.off:], fill(s.seed, s.kind, s.n))
	}
	if !bytes.Equal(got, want) {
		i := firstDiff(got, want)
		t.Errorf("%s: content differs from what was written (%d bytes, want %d; first difference at %d: %s, want %s); history:\n  %s",
			f.path, len(got), len(want), i, around(got, i), around(want, i), strings.Join(f.log, "\n  "))
	}
	for name, s := range f.xval {
		v := make([]byte, s.n+1)
		n, err := unix.Getxattr(f.path, name, v)
		if err != nil || !bytes.Equal(v[:n], fill(s.seed, s.kind, s.n)) {
			t.Errorf("%s: xattr %s differs from what was set (err %v)", f.path, name, err)
		}
	}
}

func around(b []byte, i int) string {
	if i >= len(b) {
		return "EOF"
	}
	return fmt.Sprintf("%x", b[i:min(len(b), i+8)])
}

func fsize(t testing.TB, fd int) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fill: fstat: %v", err)
	}
	return st.Size
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func statfs(t testing.TB, dir string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return st
}

func syncfs(t testing.TB, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		t.Fatalf("syncfs %s: %v", dir, err)
	}
}

// e2fsckSummary matches e2fsck's last line: "img: 11/2048 files (0.0%
// non-contiguous), 1234/8192 blocks".
var e2fsckSummary = regexp.MustCompile(`(\d+)/(\d+) files .*, (\d+)/(\d+) blocks`)

// CheckImage is the check after the fill's file system is unmounted:
// e2fsck -fn must find the image clean and count as many free blocks and
// inodes as statfs reported at the end.
func (rep *FillReport) CheckImage(t testing.TB, img string) {
	t.Helper()
	testutil.RequireTool(t, "e2fsck")
	code, out, err := testutil.E2fsck(img, "-fn")
	if err != nil || code != 0 {
		t.Fatalf("e2fsck -fn %s: exit %d, %v\n%s", img, code, err, out)
	}
	m := e2fsckSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("e2fsck -fn %s: no summary line in\n%s", img, out)
	}
	n := make([]uint64, 4)
	for i := range n {
		n[i], _ = strconv.ParseUint(m[i+1], 10, 64)
	}
	freeInodes, freeBlocks := n[1]-n[0], n[3]-n[2]
	if rep.After.Files != n[1] || rep.After.Ffree != freeInodes {
		t.Errorf("statfs said %d/%d inodes free, e2fsck counts %d/%d", rep.After.Ffree, rep.After.Files, freeInodes, n[1])
	}
	if rep.After.Bfree != freeBlocks {
		t.Errorf("statfs said %d blocks free, e2fsck counts %d (of %d)", rep.After.Bfree, freeBlocks, n[3])
	}
}
