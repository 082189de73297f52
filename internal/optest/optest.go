package optest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// Fallocate modes, for Features.Fallocate.
const (
	FallocDefault   = 1 << iota // mode 0: allocate, extend the size
	FallocKeepSize              // FALLOC_FL_KEEP_SIZE
	FallocPunchHole             // FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE
	FallocZeroRange             // FALLOC_FL_ZERO_RANGE, with and without KEEP_SIZE
	FallocAll       = FallocDefault | FallocKeepSize | FallocPunchHole | FallocZeroRange
)

// Features say which operations the target supports, so that the
// generator only asks for what both sides must agree on.
type Features struct {
	Xattrs         bool // user.* xattrs
	Hardlinks      bool
	RenameExchange bool // RENAME_EXCHANGE
	Mknod          bool // FIFOs, sockets, char and block devices
	Mmap           bool // writes through shared mappings
	CopyRange      bool // copy_file_range(2)
	// Fallocate is the set of Falloc* modes supported. The reference
	// (tmpfs) has no ZERO_RANGE: it is emulated there by writing zeros,
	// which reads the same.
	Fallocate int
	// XattrBudget is the room, in ext4 entry bytes (16 + name and value
	// each rounded up to 4), that one inode's user xattrs may take: ext4
	// without ea_inode keeps them in the inode and one block, so larger
	// sets fail with ENOSPC there but not on tmpfs. Zero means 900.
	XattrBudget int
	// MaxSymlink is the longest symlink target generated: ext4 refuses
	// targets that do not fit in a block (ENAMETOOLONG). Zero means 1000.
	MaxSymlink int
}

// AllFeatures is what an ext4 file system with 4 KiB blocks supports.
func AllFeatures() Features {
	return Features{Xattrs: true, Hardlinks: true, RenameExchange: true, Mknod: true, Mmap: true, CopyRange: true,
		Fallocate: FallocAll, XattrBudget: 4096 - 64, MaxSymlink: 4095}
}

// FeaturesFor returns what variant v supports: block-mapped files
// (ext2, ext3, ^extent) have only hole punching among the fallocate
// modes, and xattrs and symlink targets are bounded by the block size.
func FeaturesFor(v testutil.Variant) Features {
	f := AllFeatures()
	if !ExtentFiles(v) {
		f.Fallocate = FallocPunchHole
	}
	f.XattrBudget = v.BlockSize - 64
	f.MaxSymlink = min(4095, v.BlockSize-1)
	return f
}

// ExtentFiles reports whether new files in variant v use extents.
func ExtentFiles(v testutil.Variant) bool {
	if v.HasFeature("^extent") {
		return false
	}
	for i, a := range v.Args {
		if a == "-t" && i+1 < len(v.Args) {
			return v.Args[i+1] == "ext4"
		}
	}
	return false
}

// Config is one run.
type Config struct {
	Seed  uint64
	Steps int
	// CompareEvery snapshots and compares both trees after this many
	// steps (and at the end). Zero means 100.
	CompareEvery int
	// Target is the directory under test, Reference a directory on
	// tmpfs. Both must exist and be empty; Run gives both roots the same
	// mode, owner and times.
	Target, Reference string
	Features          Features
	// MaxFileSize bounds offsets and sizes. Zero means 5 GiB, so that
	// some files reach past 4 GiB (sparse).
	MaxFileSize int64
	// MaxWrite bounds one write. Zero means 256 KiB.
	MaxWrite int
	// MaxDepth bounds the directory depth mkdir creates at. Zero means 3.
	MaxDepth int
	// CompareLayout also compares the data regions SEEK_DATA/SEEK_HOLE
	// report exactly. Off by default: tmpfs allocates pages, ext4 blocks.
	CompareLayout bool

	// SeekFallback compares files whose SEEK_DATA/SEEK_HOLE fails on the
	// target by reading them whole. The kernel's ext4 needs it: it keeps
	// small files inline while truncate extends them, and then SEEK_HOLE
	// fails with ENOENT. Result.Compare always does this, for the
	// kernel's view of an image.
	SeekFallback bool
	// Verbose logs every operation and its outcome (so does setting
	// OPTEST_VERBOSE in the environment).
	Verbose bool
}

func (c *Config) setDefaults() {
	if c.CompareEvery <= 0 {
		c.CompareEvery = 100
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = 5 << 30
	}
	if c.MaxWrite <= 0 {
		c.MaxWrite = 256 << 10
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 3
	}
	if c.Features.XattrBudget <= 0 {
		c.Features.XattrBudget = 900
	}
	if c.Features.MaxSymlink <= 0 {
		c.Features.MaxSymlink = 1000
	}
}

// Result is what a run leaves for the checks after it.
type Result struct {
	Steps int
	// Counts of operations by kind, and of those that succeeded.
	Ops, OK map[string]int
	// Compares is how many whole-tree comparisons passed; Entries and
	// PinnedMtimes count the entries the last one covered, and those of
	// them whose mtime it compared.
	Compares              int
	Entries, PinnedMtimes int
	// MaxSize is the largest file any comparison covered.
	MaxSize int64

	ref     string
	layout  bool
	enabled []string        // the kinds the generator could draw
	pinned  map[uint64]bool // reference inodes whose mtime was set explicitly and not touched since
}

// logLen is how many recent operations a failure shows.
const logLen = 24

// runner is the state of one run.
type runner struct {
	t       testing.TB
	cfg     Config
	roots   [2]string // target, reference
	g       *gen
	handles [numHandles]*handle
	res     *Result
	log     []string // ring of recent operations with outcomes
	prev    *handle  // during an open: the handle its slot held
	step    int
}

const (
	sideTarget = 0
	sideRef    = 1
)

// handle is a file kept open across steps, on both sides.
type handle struct {
	fd     [2]int
	rel    string // the path it was opened by (it may since have moved)
	refIno uint64
	append bool
}

const numHandles = 4

// Run applies cfg.Steps random operations to both roots and fails t at
// the first disagreement, with the seed, the step and the operations
// before it. It closes every handle it opened before returning.
func Run(t testing.TB, cfg Config) *Result {
	t.Helper()
	cfg.setDefaults()
	if os.Getenv("OPTEST_VERBOSE") != "" {
		cfg.Verbose = true
	}
	r := &runner{
		t:     t,
		cfg:   cfg,
		roots: [2]string{cfg.Target, cfg.Reference},
		res: &Result{Ops: map[string]int{}, OK: map[string]int{}, ref: cfg.Reference,
			layout: cfg.CompareLayout, pinned: map[uint64]bool{}},
	}
	r.g = newGen(cfg, r)
	for k, w := range r.g.weight {
		if w > 0 {
			r.res.enabled = append(r.res.enabled, opKind(k).String())
		}
	}
	defer r.closeAll()
	r.prepareRoots()
	for r.step = 1; r.step <= cfg.Steps; r.step++ {
		o := r.g.next()
		r.do(o)
		if r.step%cfg.CompareEvery == 0 || r.step == cfg.Steps {
			r.compareTrees()
		}
	}
	r.res.Steps = cfg.Steps
	return r.res
}

// prepareRoots checks that both roots are empty and gives them the same
// attributes, with a pinned mtime.
func (r *runner) prepareRoots() {
	ts := []unix.Timespec{{Sec: 1_700_000_000, Nsec: 123456789}, {Sec: 1_700_000_000, Nsec: 987654321}}
	for _, root := range r.roots {
		names, err := readNames(root)
		if err != nil {
			r.t.Fatalf("optest: %v", err)
		}
		if len(names) > 0 {
			r.t.Fatalf("optest: %s is not empty: %q", root, names)
		}
		steps := []struct {
			what string
			do   func() error
		}{
			{"chmod", func() error { return unix.Chmod(root, 0o755) }},
			{"lchown", func() error { return unix.Lchown(root, 0, 0) }},
			{"utimensat", func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, root, ts, 0) }},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				r.t.Fatalf("optest: preparing root %s: %s: %v", root, s.what, err)
			}
		}
		xs, err := listXattrs(root)
		if err != nil {
			r.t.Fatal(err)
		}
		if len(xs) > 0 {
			r.t.Fatalf("optest: %s has xattrs %q", root, xs)
		}
	}
	r.res.pinned[r.refIno(".", false)] = true
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// abs returns rel under root ("." is root itself).
func abs(root, rel string) string {
	if rel == "." {
		return root
	}
	return root + "/" + rel
}

// refIno returns the reference's inode number for rel, 0 if none.
func (r *runner) refIno(rel string, follow bool) uint64 {
	var st unix.Stat_t
	var err error
	if follow {
		err = unix.Stat(abs(r.cfg.Reference, rel), &st)
	} else {
		err = unix.Lstat(abs(r.cfg.Reference, rel), &st)
	}
	if err != nil {
		return 0
	}
	return st.Ino
}

// touchedIno is the reference's inode behind p, 0 if none (or not a
// directory when p is dirOnly).
func (r *runner) touchedIno(p pathRef) uint64 {
	var st unix.Stat_t
	stat := unix.Lstat
	if p.follow {
		stat = unix.Stat
	}
	if stat(abs(r.cfg.Reference, p.rel), &st) != nil {
		return 0
	}
	if p.dirOnly && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0
	}
	return st.Ino
}

// do applies o to both sides and checks that they agree.
func (r *runner) do(o *op) {
	r.t.Helper()
	kind := o.kind.String()
	r.res.Ops[kind]++
	// Inodes whose mtime the operation may change, looked up before (a
	// rename moves them) and after (a create makes them).
	var touched []uint64
	for _, p := range o.touches() {
		touched = append(touched, r.touchedIno(p))
	}
	if h := r.handleOf(o); h != nil && o.kind.modifiesHandle() {
		touched = append(touched, h.refIno)
	}
	r.prev = nil
	if o.kind == opOpen {
		r.prev = r.handles[o.slot]
	}
	got := o.apply(r, sideTarget)
	want := o.apply(r, sideRef)
	for _, p := range o.touches() {
		touched = append(touched, r.touchedIno(p))
	}
	for _, ino := range touched {
		delete(r.res.pinned, ino)
	}
	if o.kind == opUtimens && want == "ok" {
		if o.times[1].Nsec == unix.UTIME_NOW {
			delete(r.res.pinned, r.refIno(o.path, o.follow))
		} else if o.times[1].Nsec != unix.UTIME_OMIT {
			r.res.pinned[r.refIno(o.path, o.follow)] = true
		}
	}
	line := fmt.Sprintf("step %d: %s -> %s", r.step, o, want)
	if got != want {
		line += fmt.Sprintf("  [target: %s]", got)
	}
	r.record(line)
	if got != want {
		r.fail("outcome differs (reference %q, target %q)", want, got)
	}
	if strings.HasPrefix(want, "ok") {
		r.res.OK[kind]++
	}
	// The paths the operation named must look the same afterwards.
	for _, p := range o.checks() {
		w := r.statLine(sideRef, p)
		g := r.statLine(sideTarget, p)
		if w != g {
			r.fail("after the operation, %s differs: reference %s, target %s", shortPath(p), w, g)
		}
	}
}

func (r *runner) record(line string) {
	if r.cfg.Verbose {
		r.t.Log(line)
	}
	if len(r.log) == logLen {
		copy(r.log, r.log[1:])
		r.log = r.log[:logLen-1]
	}
	r.log = append(r.log, line)
}

// fail stops the run with the recent operations and how to replay it.
func (r *runner) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("optest seed %d, step %d: %s\nlast operations:\n  %s\nreplay: Config{Seed: %d, Steps: %d}, e.g. OPTEST_STEPS=%d OPTEST_VERBOSE=1 go test -count=1 -run '^%s$' (logs every operation)",
		r.cfg.Seed, r.step, fmt.Sprintf(format, args...), strings.Join(r.log, "\n  "), r.cfg.Seed, r.step, r.step, runPattern(r.t.Name()))
}

// statLine describes rel on one side: type, mode, owner, link count,
// size (not for directories, whose size is the file system's business),
// rdev, and mtime when the reference's inode has a pinned mtime.
func (r *runner) statLine(side int, rel string) string {
	var st unix.Stat_t
	if err := unix.Lstat(abs(r.roots[side], rel), &st); err != nil {
		return errName(err)
	}
	s := fmt.Sprintf("%s %#o %d:%d nlink=%d", typeName(st.Mode), st.Mode&0o7777, st.Uid, st.Gid, st.Nlink)
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		s += fmt.Sprintf(" size=%d", st.Size)
	}
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
		s += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if r.res.pinned[r.refIno(rel, false)] {
		s += fmt.Sprintf(" mtime=%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
	}
	return s
}

// compareTrees snapshots both roots and fails on any difference.
func (r *runner) compareTrees() {
	r.t.Helper()
	want, got, err := r.res.snapshots(r.cfg.Target, 4<<20, false, r.cfg.SeekFallback)
	if err != nil {
		r.fail("snapshot: %v", err)
	}
	if diffs, n := testutil.DiffSnapshots(want, got, r.res.compareOptions(want)); n > 0 {
		r.fail("trees differ in %d places (reference -> target):\n%s", n, strings.Join(diffs, "\n"))
	}
	r.res.Compares++
	r.res.Entries, r.res.PinnedMtimes = len(want), 0
	for _, e := range want {
		if r.res.pinned[e.Ino] {
			r.res.PinnedMtimes++
		}
		if e.Type == unix.S_IFREG {
			r.res.MaxSize = max(r.res.MaxSize, e.Size)
		}
	}
}

// snapshots takes the reference's snapshot and dir's, with data regions
// when layout or holes are compared, and with seekFallback, reading whole
// the files of dir whose SEEK_DATA/SEEK_HOLE failed.
func (res *Result) snapshots(dir string, fullRead int64, holes, seekFallback bool) (want, got map[string]testutil.Entry, err error) {
	opts := testutil.SnapshotOptions{Layout: res.layout || holes, FullReadLimit: fullRead}
	if want, err = testutil.SnapshotWith(res.ref, opts); err != nil {
		return nil, nil, err
	}
	if got, err = testutil.SnapshotWith(dir, opts); err != nil {
		return nil, nil, err
	}
	if seekFallback {
		for p, e := range got {
			if e.Type != unix.S_IFREG || !strings.Contains(e.Err, "SEEK_") {
				continue
			}
			one, err := testutil.SnapshotWith(dir, testutil.SnapshotOptions{
				FullReadLimit: -1,
				Skip:          func(rel string) bool { return rel != p && !strings.HasPrefix(p, rel+"/") },
			})
			if err != nil {
				return nil, nil, err
			}
			got[p] = one[p]
			if w, ok := want[p]; ok && res.layout {
				w.Layout = nil // no layout to compare with
				want[p] = w
			}
		}
	}
	return want, got, nil
}

// compareOptions compares everything both file systems keep alike:
// not inode numbers, block counts, directory sizes, atime or ctime, and
// mtime only where it was set explicitly and nothing changed it since.
func (res *Result) compareOptions(ref map[string]testutil.Entry) testutil.CompareOptions {
	ignore := testutil.FieldIno | testutil.FieldBlocks | testutil.FieldAtime | testutil.FieldCtime
	if !res.layout {
		ignore |= testutil.FieldLayout
	}
	return testutil.CompareOptions{
		Ignore: ignore,
		IgnoreFieldsFor: func(rel string) testutil.Field {
			if e, ok := ref[rel]; ok && res.pinned[e.Ino] {
				return 0
			}
			return testutil.FieldMtime
		},
	}
}

// Compare snapshots dir (another view of the target, such as the kernel's
// loop mount of its image) and fails t unless it equals the reference as
// the run left it, and has no data where the reference has holes.
//
// The hole check is meant for a fresh mount: there the kernel's SEEK_DATA
// reports what is allocated on disk (unwritten extents are holes), while
// unwritten extents whose pages are cached, after a read, report data.
// So the data regions are taken before anything is read.
func (res *Result) Compare(t testing.TB, dir string) {
	t.Helper()
	wantLayout, err := layouts(res.ref)
	if err != nil {
		t.Fatal(err)
	}
	gotLayout, err := layouts(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, got, err := res.snapshots(dir, 0, false, true)
	if err != nil {
		t.Fatal(err)
	}
	testutil.CompareSnapshots(t, want, got, res.compareOptions(want))
	if holes := holesFilled(wantLayout, gotLayout); len(holes) > 0 {
		t.Errorf("%d files have data where the reference has holes:\n%s", len(holes), strings.Join(holes, "\n"))
	}
}

// layouts returns the data regions of every regular file under root,
// found with SEEK_DATA/SEEK_HOLE without reading anything.
func layouts(root string) (map[string][]testutil.Region, error) {
	out := map[string][]testutil.Region{}
	var walk func(rel string) error
	walk = func(rel string) error {
		p := abs(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			names, err := readNames(p)
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := walk(join(rel, n)); err != nil {
					return err
				}
			}
		case unix.S_IFREG:
			// A file whose SEEK_* fails (see Config.SeekFallback) has no
			// layout to check; its contents are still compared.
			if rs, err := dataRegions(p, st.Size); err == nil {
				out[rel] = rs
			}
		}
		return nil
	}
	return out, walk(".")
}

// dataRegions lists the data regions of file p of size sz.
func dataRegions(p string, sz int64) ([]testutil.Region, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var rs []testutil.Region
	for off := int64(0); off < sz && len(rs) < 1<<16; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		if err != nil {
			return rs, err
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return rs, err
		}
		if h <= d {
			return rs, fmt.Errorf("SEEK_HOLE from %d gave %d", d, h)
		}
		rs = append(rs, testutil.Region{Off: d, Len: h - d})
		off = h
	}
	return rs, nil
}

// holeMargin is how far from the reference's data the target may have
// data too. ext4 turns small unwritten extents, and unwritten parts of up
// to 32 KiB next to a write, into written zeros rather than split them;
// tmpfs allocates whole pages. Holes farther than this from any data must
// stay holes.
const holeMargin = 64 << 10

// holesFilled lists the regular files of got that have data regions
// outside want's (widened by holeMargin): sparse files must stay sparse.
// Fewer data regions are fine (a file system may keep written zeros or
// preallocated space as holes).
func holesFilled(want, got map[string][]testutil.Region) []string {
	var out []string
	for p, g := range got {
		w, ok := want[p]
		if !ok {
			continue
		}
		for _, r := range g {
			if !covered(w, r) {
				out = append(out, fmt.Sprintf("%s: data at [%d,+%d), reference data regions %v", shortPath(p), r.Off, r.Len, w))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// covered reports whether r lies within regions widened by holeMargin.
func covered(regions []testutil.Region, r testutil.Region) bool {
	off, end := r.Off, r.Off+r.Len
	for _, w := range regions {
		lo, hi := w.Off-holeMargin, w.Off+w.Len+holeMargin
		if off >= lo && off < hi {
			off = hi // regions are sorted, so off only grows
		}
		if off >= end {
			return true
		}
	}
	return off >= end
}

// VerifyImage is the check after a run on an unmounted image: e2fsck -fn
// must find it clean, and the kernel's read-only loop mount of it must
// show sub (the run's target root, relative to the image's root) equal to
// the reference, byte for byte and stat for stat.
func (res *Result) VerifyImage(t testing.TB, img, sub string) {
	t.Helper()
	if !testutil.E2fsckClean(t, img) {
		t.FailNow()
	}
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, true)
	res.Compare(t, abs(mnt, sub))
	testutil.Unmount(t, mnt)
}

// CheckCoverage is what a full run (thousands of steps) must have done:
// every operation kind the features allow succeeded at least once, and
// some file grew past 4 GiB.
func (res *Result) CheckCoverage(t testing.TB) {
	t.Helper()
	res.Coverage(t, res.enabled...)
	if res.MaxSize <= 4<<30 {
		t.Errorf("optest: no file grew past 4 GiB in %d steps (largest %d bytes)", res.Steps, res.MaxSize)
	}
}

// Coverage fails t unless every operation kind in kinds succeeded at least
// once: a run that never managed, say, a rename proves nothing about it.
func (res *Result) Coverage(t testing.TB, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		if res.OK[k] == 0 {
			t.Errorf("optest: no successful %s in %d steps (ops %v)", k, res.Steps, res.OK)
		}
	}
}

func (r *runner) closeAll() {
	for i, h := range r.handles {
		if h != nil {
			for _, fd := range h.fd {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			r.handles[i] = nil
		}
	}
}

func (r *runner) handleOf(o *op) *handle {
	if o.kind.usesHandle() {
		return r.handles[o.slot]
	}
	return nil
}

func errName(err error) string {
	if e, ok := err.(unix.Errno); ok {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(e))
	}
	return err.Error()
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFBLK:
		return "blockdev"
	}
	return fmt.Sprintf("type%#o", mode&unix.S_IFMT)
}

// shortPath keeps logs readable with 255-byte names.
func shortPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if len(s) > 24 {
			parts[i] = fmt.Sprintf("%s…(%d)", s[:12], len(s))
		}
	}
	return strings.Join(parts, "/")
}

// newRand returns the generator's source for seed.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// runPattern turns a test name into a -run pattern matching only it.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, "$/^")
}
