package optest

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// ConcurrentConfig is a run of concurrent writers.
type ConcurrentConfig struct {
	// Dir is an empty directory on the file system under test.
	Dir     string
	Seed    uint64
	Workers int // zero means 4
	Ops     int // per worker; zero means 400
}

// Concurrent runs several writers at once, each on its own goroutine
// (and so its own thread while in a system call): each rewrites its own
// file with random writes and truncates, writes its own region of one
// shared file, and creates, renames and removes entries in one shared
// directory, where all of them also fight over a few common names. At
// the end every file must hold exactly what its writer wrote, the shared
// directory must list exactly the entries the writers left, and its link
// count must match its subdirectories.
func Concurrent(t testing.TB, cfg ConcurrentConfig) {
	t.Helper()
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Ops <= 0 {
		cfg.Ops = 400
	}
	shared := cfg.Dir + "/shared"
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	sharedFile := cfg.Dir + "/shared.dat"
	if err := os.WriteFile(sharedFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{
			id: i, cfg: cfg, shared: shared, sharedFile: sharedFile,
			own:   fmt.Sprintf("%s/w%d.dat", cfg.Dir, i),
			names: map[string][]byte{},
			dirs:  map[string]bool{},
		}
		workers[i] = w
		wg.Go(w.run)
	}
	wg.Wait()
	for _, w := range workers {
		for _, e := range w.errs {
			t.Errorf("worker %d: %s", w.id, e)
		}
	}
	if t.Failed() {
		return
	}

	// Own files and the shared file.
	sharedWant := []byte(nil)
	for _, w := range workers {
		checkContent(t, w.own, w.data)
		end := w.regionOff() + int64(len(w.region))
		if int64(len(sharedWant)) < end {
			sharedWant = append(sharedWant, make([]byte, end-int64(len(sharedWant)))...)
		}
		copy(sharedWant[w.regionOff():], w.region)
	}
	checkContent(t, sharedFile, sharedWant)

	// The shared directory.
	names, err := readNames(shared)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	subdirs := 0
	for _, w := range workers {
		for n, data := range w.names {
			want = append(want, n)
			checkContent(t, shared+"/"+n, data)
		}
		for n := range w.dirs {
			want = append(want, n)
			subdirs++
		}
	}
	var common []string
	for _, n := range names {
		if strings.HasPrefix(n, "common") {
			common = append(common, n)
			want = append(want, n) // whoever won; checked below
			if st, err := os.Lstat(shared + "/" + n); err != nil {
				t.Errorf("%s: %v", n, err)
			} else if st.IsDir() {
				subdirs++
			} else if !st.Mode().IsRegular() {
				t.Errorf("%s: mode %v, want a file or directory", n, st.Mode())
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("shared directory lists %d names, want %d:\n got %q\nwant %q", len(names), len(want), names, want)
	}
	var st unix.Stat_t
	if err := unix.Lstat(shared, &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Nlink) != 2+subdirs {
		t.Errorf("shared directory has %d links, want %d (2 + %d subdirectories)", st.Nlink, 2+subdirs, subdirs)
	}
	t.Logf("concurrent: %d workers x %d operations; shared directory ends with %d entries (%d common)",
		cfg.Workers, cfg.Ops, len(names), len(common))
}

func checkContent(t testing.TB, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if !bytes.Equal(got, want) {
		i := firstDiff(got, want)
		t.Errorf("%s: content differs (%d bytes, want %d; first difference at %d: %s, want %s)",
			p, len(got), len(want), i, around(got, i), around(want, i))
	}
}

// worker is one concurrent writer and the model of what it left.
type worker struct {
	id              int
	cfg             ConcurrentConfig
	shared          string
	sharedFile      string
	own             string
	data            []byte            // own file's content
	region          []byte            // its region of the shared file
	names           map[string][]byte // its files in the shared directory
	dirs            map[string]bool   // its directories there
	errs            []string
	serial          int
	ownFd, sharedFd int
}

const regionSize = 256 << 10

func (w *worker) regionOff() int64 { return int64(w.id) * regionSize }

func (w *worker) errorf(format string, args ...any) {
	if len(w.errs) < 10 {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
}

// expect reports whether err is nil, and records it as an error unless
// it is one of ok.
func (w *worker) expect(what string, err error, ok ...unix.Errno) bool {
	if err == nil {
		return true
	}
	for _, e := range ok {
		if err == e {
			return false
		}
	}
	w.errorf("%s: %v", what, err)
	return false
}

func (w *worker) run() {
	r := newRand(w.cfg.Seed*1000 + uint64(w.id))
	var err error
	if w.ownFd, err = unix.Open(w.own, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644); err != nil {
		w.errorf("create %s: %v", w.own, err)
		return
	}
	defer unix.Close(w.ownFd)
	if w.sharedFd, err = unix.Open(w.sharedFile, unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		w.errorf("open %s: %v", w.sharedFile, err)
		return
	}
	defer unix.Close(w.sharedFd)
	for step := 0; step < w.cfg.Ops && len(w.errs) == 0; step++ {
		switch k := r.IntN(100); {
		case k < 25: // own file: random write
			off, n := r.Int64N(1<<20), 1+r.Int64N(64<<10)
			b := fill(r.Uint64(), r.IntN(numDataKinds), n)
			if w.expect("pwrite own", pwriteAll(w.ownFd, b, off)) {
				if end := off + n; int64(len(w.data)) < end {
					w.data = append(w.data, make([]byte, end-int64(len(w.data)))...)
				}
				copy(w.data[off:], b)
			}
		case k < 30: // own file: truncate
			n := r.Int64N(int64(len(w.data)) + 4096)
			if w.expect("ftruncate own", unix.Ftruncate(w.ownFd, n)) {
				if n < int64(len(w.data)) {
					w.data = w.data[:n]
				} else {
					w.data = append(w.data, make([]byte, n-int64(len(w.data)))...)
				}
			}
		case k < 40: // its region of the shared file
			off, n := r.Int64N(regionSize-1), 1+r.Int64N(16<<10)
			n = min(n, regionSize-off)
			b := fill(r.Uint64(), dataRandom, n)
			if w.expect("pwrite shared", pwriteAll(w.sharedFd, b, w.regionOff()+off)) {
				if end := off + n; int64(len(w.region)) < end {
					w.region = append(w.region, make([]byte, end-int64(len(w.region)))...)
				}
				copy(w.region[off:], b)
			}
		case k < 55: // a new file in the shared directory
			w.serial++
			name := fmt.Sprintf("w%d-%d", w.id, w.serial)
			b := fill(r.Uint64(), r.IntN(numDataKinds), r.Int64N(12<<10))
			if w.expect("create "+name, writeNew(w.shared+"/"+name, b)) {
				w.names[name] = b
			}
		case k < 65: // rename one of its files
			if name, ok := w.pick(r.IntN(1 << 30)); ok {
				w.serial++
				to := fmt.Sprintf("w%d-%d.r", w.id, w.serial)
				if w.expect("rename "+name, unix.Rename(w.shared+"/"+name, w.shared+"/"+to)) {
					w.names[to] = w.names[name]
					delete(w.names, name)
				}
			}
		case k < 73: // remove one of its files
			if name, ok := w.pick(r.IntN(1 << 30)); ok {
				if w.expect("unlink "+name, unix.Unlink(w.shared+"/"+name)) {
					delete(w.names, name)
				}
			}
		case k < 79: // a directory of its own
			w.serial++
			name := fmt.Sprintf("w%d-d%d", w.id, w.serial)
			if w.expect("mkdir "+name, unix.Mkdir(w.shared+"/"+name, 0o755)) {
				w.dirs[name] = true
			}
		case k < 83:
			for name := range w.dirs {
				if w.expect("rmdir "+name, unix.Rmdir(w.shared+"/"+name)) {
					delete(w.dirs, name)
				}
				break
			}
		default: // everyone's common names
			a := fmt.Sprintf("%s/common%d", w.shared, r.IntN(4))
			b := fmt.Sprintf("%s/common%d", w.shared, r.IntN(4))
			switch r.IntN(5) {
			case 0:
				fd, err := unix.Open(a, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if w.expect("create "+a, err, unix.EEXIST) {
					unix.Close(fd)
				}
			case 1:
				w.expect("unlink "+a, unix.Unlink(a), unix.ENOENT, unix.EISDIR)
			case 2:
				w.expect("rename "+a, unix.Rename(a, b), unix.ENOENT, unix.EISDIR, unix.ENOTDIR, unix.ENOTEMPTY)
			case 3:
				w.expect("mkdir "+a, unix.Mkdir(a, 0o755), unix.EEXIST)
			case 4:
				w.expect("rmdir "+a, unix.Rmdir(a), unix.ENOENT, unix.ENOTDIR)
			}
		}
	}
	if len(w.errs) == 0 {
		w.expect("fsync own", unix.Fsync(w.ownFd))
	}
}

// pick returns one of the worker's shared-directory files, chosen by n
// over the sorted names (map order would make runs irreproducible).
func (w *worker) pick(n int) (string, bool) {
	if len(w.names) == 0 {
		return "", false
	}
	names := make([]string, 0, len(w.names))
	for k := range w.names {
		names = append(names, k)
	}
	slices.Sort(names)
	return names[n%len(names)], true
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func writeNew(p string, b []byte) error {
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	if err := pwriteAll(fd, b, 0); err != nil {
		unix.Close(fd)
		return err
	}
	return unix.Close(fd)
}
