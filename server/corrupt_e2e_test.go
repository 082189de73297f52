package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/internal/corrupt"
	"github.com/e4box/e4box/internal/testutil"
)

// The corruption suite: real images (every structure ext4 stores, in
// extent, block-map and inline variants) get one metadata block damaged
// at a time (internal/corrupt: bit flips, overwrites, and rewrites of
// chosen fields, with and without recomputed checksums), hundreds of
// times with a fixed seed. Each damaged image is walked completely
// through the library, and a subset through a real FUSE mount:
//
//   - no panic, no hang (each walk has a deadline), bounded allocation;
//   - errors are errnos or corruption reports (EUCLEAN through FUSE),
//     never anything else;
//   - every path that does not depend on a damaged inode (corrupt.Image
//     Affected: the inode itself and every directory above it) reads
//     exactly as in the pristine image;
//   - a read-only mount writes nothing, and the server exits after unmount.
//
// Errors the FUSE walk may see, and why:
//   - EUCLEAN: the damaged structure (the kernel's EFSCORRUPTED);
//   - EIO: the kernel's own verdict on a reply it rejects (attributes of a
//     reserved inode a damaged entry names, a nodeid whose type changed);
//   - ELOOP: a damaged entry names one of its own ancestors, which the
//     kernel's dcache refuses to splice;
//   - ENOENT: listed names that the index no longer finds (a damaged
//     htree hashes names to the wrong leaf);
//   - ENODATA: user.* attributes listed on a symlink or device (a damaged
//     i_file_acl gave it an xattr block), which the VFS refuses to read,
//     as over the kernel's own ext4;
//   - E2BIG, ERANGE: xattr values that no longer fit.
// ESTALE is not among them: an entry naming an unused inode is EUCLEAN.

const (
	corruptSeed = 20260613
	// libDeadline bounds one library walk of a damaged image; a walk of
	// the pristine image takes well under a second even on a loaded
	// machine, so reaching it means a hang.
	libDeadline = 60 * time.Second
	// fuseDeadline bounds one walk through a FUSE mount.
	fuseDeadline = 120 * time.Second
	// allocLimit bounds the bytes allocated by one library walk.
	allocLimit = 256 << 20
)

// corruptVariant is one base image and how many mutations it gets.
type corruptVariant struct {
	v       testutil.Variant
	mutants int
}

var ext2Block1K = testutil.Variant{Name: "ext2-1k", Args: []string{"-t", "ext2", "-b", "1024"}, BlockSize: 1024}

// corruptVariants: extent trees with and without checksums, 1 KiB blocks
// (two-level htree, two-level extent index), inline data, block maps with
// journal (ext3) and with double indirect blocks (ext2, 1 KiB). -short
// (the race run) keeps three, with fewer images.
//
// For a longer hunt, E4BOX_CORRUPT_IMAGES=n gives every variant n images,
// E4BOX_CORRUPT_FUSE_EVERY=k mounts every k-th (0: none) and
// E4BOX_CORRUPT_SEED=s picks other mutations.
func corruptVariants() []corruptVariant {
	vs := []corruptVariant{
		{testutil.Ext4, 80}, {testutil.Ext4Block1K, 80}, {testutil.Ext4NoCsum, 60},
		{testutil.Ext4Inline, 60}, {testutil.Ext3, 60}, {ext2Block1K, 60},
	}
	if testing.Short() {
		vs = []corruptVariant{{testutil.Ext4Block1K, 16}, {testutil.Ext4Inline, 12}, {testutil.Ext3, 12}}
	}
	if n, err := strconv.Atoi(os.Getenv("E4BOX_CORRUPT_IMAGES")); err == nil && n > 0 {
		for i := range vs {
			vs[i].mutants = n
		}
	}
	return vs
}

// envInt reads an integer knob from the environment.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// corruptBase is a built base image and everything known about it.
type corruptBase struct {
	img      string // the image file (FUSE runs patch it in place)
	scan     *corrupt.Image
	lib      *libWalk                  // the library's walk of the pristine image
	kernel   map[string]testutil.Entry // the kernel's view of the pristine image
	noLayout []string
}

// buildCorruptBase generates the tree, builds and indexes the image,
// scans its metadata and records the pristine views.
func buildCorruptBase(t *testing.T, v testutil.Variant) *corruptBase {
	t.Helper()
	spec := testutil.SmallTree().ForBlockSize(v.BlockSize)
	spec.Files, spec.MaxFileSize = 16, 128<<10
	spec.BigDir, spec.BigDirNameLen = 2000, 40
	if v.BlockSize == 1024 {
		// 200-byte names need more leaves than one 1 KiB root indexes:
		// a two-level htree.
		spec.BigDirNameLen = 200
	}
	src := t.TempDir()
	if !testutil.ACLSupported(src) {
		spec.ACLs = false
	}
	if _, err := testutil.GenTree(src, spec, treeSeed); err != nil {
		t.Fatal(err)
	}
	// Many small discontiguous writes: a deep extent tree (two levels of
	// index with 1 KiB blocks), double indirect blocks in block maps.
	f, err := os.Create(filepath.Join(src, "fragmented"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(corruptSeed, 1))
	chunk := make([]byte, v.BlockSize)
	for i := range 600 {
		for j := range chunk {
			chunk[j] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(chunk, int64(2*i)*int64(v.BlockSize)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, 0)
	testutil.IndexDirs(t, img)
	scan, err := corrupt.Scan(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", v.Name, scan.Describe())
	for _, k := range []corrupt.Kind{corrupt.KindInodeTable, corrupt.KindDirLeaf, corrupt.KindDxRoot} {
		if len(scan.ByKind(k)) == 0 {
			t.Fatalf("%s: scan found no %s block", v.Name, k)
		}
	}
	b := &corruptBase{img: img, scan: scan}
	b.lib = walkLibrary(scan.Data, nil)
	if b.lib.openErr != nil || len(b.lib.problems) > 0 || len(b.lib.errs) > 0 {
		t.Fatalf("pristine library walk: open %v, problems %v, errors %v", b.lib.openErr, b.lib.problems, b.lib.errs)
	}
	if len(b.lib.recs) < 2000 {
		t.Fatalf("pristine library walk saw only %d paths", len(b.lib.recs))
	}
	b.kernel, b.noLayout = kernelSnapshot(t, img)
	return b
}

// roMem is a read-only device over a byte slice the caller may change
// between uses (blockdev.NewMemFrom copies, which hundreds of images make
// slow).
type roMem []byte

func (m roMem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m roMem) WriteAt(p []byte, off int64) (int, error) { return 0, syscall.EROFS }
func (m roMem) Size() int64                              { return int64(len(m)) }
func (m roMem) Flush() error                             { return nil }
func (m roMem) Close() error                             { return nil }
func (m roMem) ReadOnly() bool                           { return true }

var _ blockdev.Device = roMem(nil)

// corruptOpenOptions opens as far as possible: the point is to reach the
// validators behind the superblock's state flags.
func corruptOpenOptions(log *slog.Logger) ext4.Options {
	return ext4.Options{ReadOnly: true, NoRecovery: true, IgnoreErrorState: true, Logger: log}
}

// libWalk is the library's view of an image: one record per path.
type libWalk struct {
	openErr  error
	recs     map[string]string
	chains   map[string][]ext4.Ino // path -> inodes of the path and its ancestors
	errs     map[string]int        // failing operations, by name
	problems []string              // contract violations (wrong error kinds, cookie loops, ...)
	alloc    uint64
}

// node is what the walk learns about one inode; inodes reached through
// several paths are examined once.
type node struct {
	rec      string
	children []childEntry
}

type childEntry struct {
	name string
	ino  ext4.Ino
}

const (
	walkReadCap   = 8 << 20 // bytes read from the start of a file
	walkSteps     = 2000    // SEEK_DATA/HOLE and Map iterations per file
	walkDirPage   = 37      // entries per ReadDir call, resuming by cookie
	walkMaxCalls  = 1 << 16 // ReadDir calls per directory
	walkLookupAll = 200     // directories up to this size get every name looked up
)

// walkLibrary opens img and walks everything reachable from the root. The
// path budget is a multiple of the pristine walk's (damaged entries can
// make subtrees reachable twice).
func walkLibrary(img []byte, pristine *libWalk) *libWalk {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	w := &libWalk{recs: map[string]string{}, chains: map[string][]ext4.Ino{}, errs: map[string]int{}}
	fsys, err := ext4.Open(roMem(img), corruptOpenOptions(nil))
	if err != nil {
		w.openErr = err
		w.check("open", err)
		return w
	}
	defer fsys.Close()
	budget := 100000
	if pristine != nil {
		budget = 3*len(pristine.recs) + 1000
	}
	lw := &libWalker{fs: fsys, w: w, memo: map[ext4.Ino]*node{}, buf: make([]byte, 64<<10)}
	type item struct {
		path  string
		chain []ext4.Ino
	}
	queue := []item{{".", []ext4.Ino{ext4.RootIno}}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if len(w.recs) >= budget {
			w.problems = append(w.problems, fmt.Sprintf("path budget %d exhausted", budget))
			break
		}
		ino := it.chain[len(it.chain)-1]
		n := lw.node(ino)
		w.recs[it.path] = n.rec
		w.chains[it.path] = it.chain
	children:
		for _, c := range n.children {
			for _, a := range it.chain {
				if a == c.ino {
					continue children // a loop through a damaged entry
				}
			}
			p := c.name
			if it.path != "." {
				p = it.path + "/" + c.name
			}
			queue = append(queue, item{p, append(it.chain[:len(it.chain):len(it.chain)], c.ino)})
		}
	}
	runtime.ReadMemStats(&ms1)
	w.alloc = ms1.TotalAlloc - ms0.TotalAlloc
	return w
}

type libWalker struct {
	fs   *ext4.FS
	w    *libWalk
	memo map[ext4.Ino]*node
	buf  []byte
}

// check classifies err: an errno or a corruption report is fine (and
// counted); anything else violates the error contract.
func (w *libWalk) check(op string, err error) string {
	if err == nil {
		return "ok"
	}
	w.errs[op[:strings.IndexAny(op+"(", " (")]]++
	if errors.Is(err, ext4.ErrCorrupt) {
		var ce *ext4.CorruptError
		if !errors.As(err, &ce) {
			w.problems = append(w.problems, fmt.Sprintf("%s: ErrCorrupt without *CorruptError: %v", op, err))
		}
		return "EUCLEAN"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ESTALE, syscall.ENOENT, syscall.ENODATA, syscall.ENXIO, syscall.EINVAL,
			syscall.E2BIG, syscall.ENOTDIR, syscall.EISDIR:
		default:
			w.problems = append(w.problems, fmt.Sprintf("%s: unexpected errno %v (%v)", op, errno, err))
		}
		return errno.Error()
	}
	if errors.Is(err, ext4.ErrUnsupportedFeature) && op == "open" {
		return "unsupported"
	}
	// A device error is impossible here: every block number is checked
	// against the device size at Open, and the device is memory.
	w.problems = append(w.problems, fmt.Sprintf("%s: error of type %T is neither errno nor corruption: %v", op, err, err))
	return "BAD"
}

func (lw *libWalker) node(ino ext4.Ino) *node {
	if n := lw.memo[ino]; n != nil {
		return n
	}
	n := lw.examine(ino)
	lw.memo[ino] = n
	return n
}

func (lw *libWalker) examine(ino ext4.Ino) *node {
	fs, w := lw.fs, lw.w
	op := func(what string) string { return fmt.Sprintf("%s(ino %d)", what, ino) }
	in, err := fs.Inode(ino)
	if err != nil {
		return &node{rec: "inode: " + w.check(op("Inode"), err)}
	}
	var rec strings.Builder
	fmt.Fprintf(&rec, "mode=%o uid=%d gid=%d size=%d nlink=%d gen=%d flags=%#x blocks=%d rdev=%#x times=%d,%d,%d,%d",
		in.Mode, in.Uid, in.Gid, in.Size, in.Nlink, in.Generation, in.Flags, in.Blocks512(), in.Rdev(),
		in.Atime.UnixNano(), in.Mtime.UnixNano(), in.Ctime.UnixNano(), in.Crtime.UnixNano())
	names, err := fs.ListXattr(ino)
	fmt.Fprintf(&rec, "\nlistxattr: %s", w.check(op("ListXattr"), err))
	for _, name := range names {
		v, err := fs.GetXattr(ino, name)
		fmt.Fprintf(&rec, "\nxattr %s=%x %s", name, sha256.Sum256(v), w.check(op("GetXattr "+name), err))
	}
	n := &node{}
	switch {
	case in.IsDir():
		lw.readDir(ino, n, &rec)
	case in.IsReg():
		lw.readFile(ino, int64(in.Size), &rec)
	case in.IsSymlink():
		target, err := fs.ReadLink(ino)
		fmt.Fprintf(&rec, "\nreadlink %q %s", target, w.check(op("ReadLink"), err))
	}
	if !in.IsReg() {
		// Exercised for robustness only: EINVAL for most.
		if _, err := fs.Map(ino, 0, 1<<20); !errors.Is(err, syscall.EINVAL) {
			w.check(op("Map"), err)
		}
	}
	n.rec = rec.String()
	return n
}

func (lw *libWalker) readDir(ino ext4.Ino, n *node, rec *strings.Builder) {
	fs, w := lw.fs, lw.w
	var entries []ext4.DirEntry
	cookie, last := uint64(0), uint64(0)
	var derr error
	for calls := 0; ; calls++ {
		if calls == walkMaxCalls {
			w.problems = append(w.problems, fmt.Sprintf("ReadDir(ino %d): more than %d pages", ino, walkMaxCalls))
			break
		}
		got := 0
		derr = fs.ReadDir(ino, cookie, func(e ext4.DirEntry) bool {
			if len(entries) > 0 && e.Next <= last {
				w.problems = append(w.problems, fmt.Sprintf("ReadDir(ino %d): cookie %d after %d: a kernel getdents would loop", ino, e.Next, last))
			}
			last = e.Next
			entries = append(entries, e)
			got++
			return got < walkDirPage
		})
		if derr != nil || got < walkDirPage {
			break
		}
		if last <= cookie {
			w.problems = append(w.problems, fmt.Sprintf("ReadDir(ino %d): cookie did not advance from %d", ino, cookie))
			break
		}
		cookie = last
	}
	fmt.Fprintf(rec, "\nreaddir %s", w.check(fmt.Sprintf("ReadDir(ino %d)", ino), derr))
	names := make([]string, 0, len(entries))
	for i, e := range entries {
		name := string(e.Name)
		names = append(names, fmt.Sprintf("%q:%d:%d", name, e.Ino, e.Type))
		if name == "." || name == ".." {
			continue
		}
		n.children = append(n.children, childEntry{name, e.Ino})
		if len(entries) > walkLookupAll && i%23 != 0 {
			continue
		}
		got, err := fs.Lookup(ino, e.Name)
		if s := w.check(fmt.Sprintf("Lookup(ino %d, %q)", ino, name), err); err != nil || got != e.Ino {
			fmt.Fprintf(rec, "\nlookup %q -> %d %s", name, got, s)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(rec, "\nnames %s", strings.Join(names, " "))
	got, err := fs.Lookup(ino, []byte(".."))
	fmt.Fprintf(rec, "\nlookup .. -> %d %s", got, w.check(fmt.Sprintf("Lookup(ino %d, ..)", ino), err))
	if _, err := fs.Lookup(ino, []byte("no such name")); !errors.Is(err, syscall.ENOENT) {
		fmt.Fprintf(rec, "\nlookup of a missing name: %s", w.check(fmt.Sprintf("Lookup(ino %d, missing)", ino), err))
	}
}

func (lw *libWalker) readFile(ino ext4.Ino, size int64, rec *strings.Builder) {
	fs, w := lw.fs, lw.w
	op := func(what string) string { return fmt.Sprintf("%s(ino %d)", what, ino) }
	h := sha256.New()
	var rerr error
	for off := int64(0); off < min(size, walkReadCap); off += int64(len(lw.buf)) {
		n, err := fs.ReadAt(ino, lw.buf, off)
		h.Write(lw.buf[:n])
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	// Damaged sizes reach far: sample the end too.
	for _, off := range []int64{size - 1, size / 2} {
		if off > walkReadCap {
			n, err := fs.ReadAt(ino, lw.buf[:4096], off)
			h.Write(lw.buf[:n])
			if err != nil && err != io.EOF {
				rerr = err
			}
		}
	}
	fmt.Fprintf(rec, "\ncontent %x %s", h.Sum(nil), w.check(op("ReadAt"), rerr))

	var segs []string
	off := int64(0)
	for step := 0; step < walkSteps && off < size; step++ {
		d, err := fs.SeekData(ino, off)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			segs = append(segs, w.check(op("SeekData"), err))
			break
		}
		hole, err := fs.SeekHole(ino, d)
		if err != nil {
			segs = append(segs, w.check(op("SeekHole"), err))
			break
		}
		if d < off || hole <= d {
			w.problems = append(w.problems, fmt.Sprintf("%s: SEEK_DATA %d -> %d, SEEK_HOLE -> %d", op("seek"), off, d, hole))
			break
		}
		segs = append(segs, fmt.Sprintf("%d-%d", d, hole))
		off = hole
	}
	fmt.Fprintf(rec, "\ndata %s", strings.Join(segs, ","))

	var maps []string
	off = 0
	for step := 0; step < walkSteps && off < size; step++ {
		m, err := fs.Map(ino, off, size-off)
		if err != nil {
			maps = append(maps, w.check(op("Map"), err))
			break
		}
		maps = append(maps, fmt.Sprintf("%v@%d+%d:%d", m.Type, m.Offset, m.Length, m.Addr))
		if m.Type == ext4.MapInline {
			break
		}
		if m.Length <= 0 || m.Offset+m.Length <= off {
			w.problems = append(w.problems, fmt.Sprintf("%s: Map at %d returned [%d,+%d)", op("Map"), off, m.Offset, m.Length))
			break
		}
		off = m.Offset + m.Length
	}
	fmt.Fprintf(rec, "\nmap %s", strings.Join(maps, ","))
}

// compared reports whether path must read as in the pristine image: it
// exists there and neither it nor a directory above it is affected.
func compared(pristine *libWalk, path string, all bool, affected func(uint32) bool) bool {
	chain, ok := pristine.chains[path]
	if !ok || all {
		return false
	}
	for _, ino := range chain {
		if affected(uint32(ino)) {
			return false
		}
	}
	return true
}

// runWithDeadline runs fn in a goroutine; it reports a panic as an error
// and a timeout as a hang (with every goroutine's stack).
func runWithDeadline(d time.Duration, fn func()) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				buf := make([]byte, 64<<10)
				done <- fmt.Errorf("panic: %v\n%s", p, buf[:runtime.Stack(buf, false)])
			}
		}()
		fn()
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		return fmt.Errorf("hang: no result after %v; goroutines:\n%s", d, buf[:runtime.Stack(buf, true)])
	}
}

// libCheck walks the damaged image through the library and checks it
// against the pristine walk.
func libCheck(img []byte, base *corruptBase, m *corrupt.Mutation) (problems []string, w *libWalk, err error) {
	err = runWithDeadline(libDeadline, func() { w = walkLibrary(img, base.lib) })
	if err != nil {
		return nil, nil, err
	}
	problems = append(problems, w.problems...)
	if w.alloc > allocLimit {
		problems = append(problems, fmt.Sprintf("walk allocated %d MiB", w.alloc>>20))
	}
	all, affected := base.scan.Affected(m)
	if w.openErr != nil {
		if !all && !affected(uint32(ext4.RootIno)) {
			problems = append(problems, fmt.Sprintf("Open failed although the root is not affected: %v", w.openErr))
		}
		return problems, w, nil
	}
	var diffs []string
	for path, want := range base.lib.recs {
		if !compared(base.lib, path, all, affected) {
			continue
		}
		got, ok := w.recs[path]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing", path))
		case got != want:
			diffs = append(diffs, fmt.Sprintf("%s:\n  want %s\n  got  %s", path, indent(want), indent(got)))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		problems = append(problems, fmt.Sprintf("%d unaffected paths differ, e.g. %s", len(diffs), strings.Join(diffs[:min(3, len(diffs))], "\n")))
	}
	return problems, w, nil
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n       ") }

// pickMutations chooses n blocks, cycling over the block kinds the image
// has (weighted towards the structures with most fields), and damages each.
func pickMutations(scan *corrupt.Image, n int, seed uint64) []corrupt.Mutation {
	weights := map[corrupt.Kind]int{
		corrupt.KindSuperblock: 2, corrupt.KindGDT: 2, corrupt.KindBlockBitmap: 1, corrupt.KindInodeBitmap: 1,
		corrupt.KindInodeTable: 6, corrupt.KindExtentBlock: 3, corrupt.KindIndirect: 3, corrupt.KindDirLeaf: 4,
		corrupt.KindDxRoot: 3, corrupt.KindDxNode: 3, corrupt.KindXattrBlock: 3, corrupt.KindSymlinkBlock: 1,
	}
	var kinds []corrupt.Kind
	for _, k := range corrupt.Kinds {
		if len(scan.ByKind(k)) > 0 {
			for range weights[k] {
				kinds = append(kinds, k)
			}
		}
	}
	r := rand.New(rand.NewPCG(corruptSeed, seed))
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var out []corrupt.Mutation
	// Inode table blocks holding only empty files (most of them: the big
	// directory's entries) are picked less often.
	var itInteresting []corrupt.Block
	for _, b := range scan.ByKind(corrupt.KindInodeTable) {
		if slices.ContainsFunc(b.Owners, scan.Interesting) {
			itInteresting = append(itInteresting, b)
		}
	}
	for i := 0; len(out) < n && i < 10*n; i++ {
		blocks := scan.ByKind(kinds[i%len(kinds)])
		if kinds[i%len(kinds)] == corrupt.KindInodeTable && len(itInteresting) > 0 && r.IntN(4) > 0 {
			blocks = itInteresting
		}
		m := scan.Mutate(r, blocks[r.IntN(len(blocks))])
		if m.Changed() {
			out = append(out, m)
		}
	}
	return out
}

// TestCorruptImages is the corruption acceptance test.
func TestCorruptImages(t *testing.T) {
	requireE2E(t)
	fuseEvery := envInt("E4BOX_CORRUPT_FUSE_EVERY", 4)
	seed := uint64(envInt("E4BOX_CORRUPT_SEED", 0))
	start := time.Now()
	var total, fuseRuns int
	for vi, cv := range corruptVariants() {
		t.Run(cv.v.Name, func(t *testing.T) {
			t0 := time.Now()
			base := buildCorruptBase(t, cv.v)
			t.Logf("%s: base image built and walked in %v", cv.v.Name, time.Since(t0).Round(time.Millisecond))
			var libTime, fuseTime time.Duration
			if vi == 0 {
				// The reference for FUSE runs is the kernel's view; the
				// e4box view of the pristine image must match it.
				fuseCheck(t, base, nil, map[string]int{})
			}
			img := append([]byte(nil), base.scan.Data...)
			muts := pickMutations(base.scan, cv.mutants, seed<<8|uint64(vi))
			kinds := map[string]int{}
			errs, fuseErrs := map[string]int{}, map[string]int{}
			failures := 0
			for i := range muts {
				m := &muts[i]
				kinds[string(m.Block.Kind)]++
				m.Apply(img)
				t1 := time.Now()
				problems, w, err := libCheck(img, base, m)
				libTime += time.Since(t1)
				m.Revert(img)
				if err != nil {
					t.Fatalf("mutation %d, %s: library walk: %v", i, m, err)
				}
				for k, n := range w.errs {
					errs[k] += n
				}
				if len(problems) > 0 {
					failures++
					t.Errorf("mutation %d, %s (library):\n%s", i, m, strings.Join(problems, "\n"))
				}
				if fuseEvery > 0 && i%fuseEvery == 0 {
					t1 := time.Now()
					fuseCheck(t, base, m, fuseErrs)
					fuseTime += time.Since(t1)
					fuseRuns++
				}
				if failures >= 10 {
					t.Fatalf("stopping after %d failing images", failures)
				}
			}
			// Every FUSE run restored the block it damaged, and wrote nothing.
			if data, err := os.ReadFile(base.img); err != nil || !bytes.Equal(data, base.scan.Data) {
				t.Errorf("the image file differs from the pristine image after the FUSE runs (%v)", err)
			}
			total += len(muts)
			t.Logf("%s: %d mutated images (%v), library walks %v, FUSE walks %v; failing library operations %v; errors seen through FUSE %v",
				cv.v.Name, len(muts), kinds, libTime.Round(time.Millisecond), fuseTime.Round(time.Millisecond), errs, fuseErrs)
		})
	}
	t.Logf("%d mutated images, %d through FUSE, in %v", total, fuseRuns, time.Since(start).Round(time.Second))
}

// fuseErrnos are the errors a walk through the mount may report (see the
// file comment).
var fuseErrnos = []syscall.Errno{syscall.EUCLEAN, syscall.EIO, syscall.ELOOP,
	syscall.ENOENT, syscall.E2BIG, syscall.ERANGE, syscall.ENODATA}

// fuseCheck serves the image with m applied (nil: pristine) on a real
// mount, walks it with a deadline, and compares the unaffected paths with
// the kernel's view of the pristine image.
func fuseCheck(t *testing.T, base *corruptBase, m *corrupt.Mutation, errnos map[string]int) {
	t.Helper()
	desc := "pristine image"
	if m != nil {
		desc = m.String()
		writeBlock(t, base.img, m.Offset(), m.New)
		defer writeBlock(t, base.img, m.Offset(), m.Old)
	}
	before := statImage(t, base.img)
	dev, err := blockdev.Open(base.img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var logBuf bytes.Buffer
	fsys, err := ext4.Open(dev, corruptOpenOptions(slog.New(slog.NewTextHandler(&logBuf, nil))))
	if err != nil {
		if m == nil {
			t.Fatalf("%s: ext4.Open: %v", desc, err)
		}
		return // the library check judged whether refusing was right
	}
	dir := t.TempDir()
	srv := New(fsys, Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	sess, err := fuse.Mount(dir, srv, &fuse.Options{FsName: base.img, ReadOnly: true, DefaultPermissions: true})
	if err != nil {
		fsys.Close()
		t.Fatalf("%s: fuse.Mount: %v", desc, err)
	}
	serve := make(chan error, 1)
	go func() { serve <- sess.Serve() }()
	waitReady(t, sess, serve)

	all, affected := false, func(uint32) bool { return false }
	if m != nil {
		all, affected = base.scan.Affected(m)
	}
	// The big directory's entries are 2000 empty files: stat them only when
	// the damage may reach them (its listing is compared either way).
	skipBig := m != nil && !all
	for p, chain := range base.lib.chains {
		if skipBig && strings.HasPrefix(p, testutil.PathBigDir+"/") && affected(uint32(chain[len(chain)-1])) {
			skipBig = false
		}
	}
	skip := func(rel string) bool { return skipBig && strings.HasPrefix(rel, testutil.PathBigDir+"/") }

	var snap map[string]testutil.Entry
	var serr error
	werr := runWithDeadline(fuseDeadline, func() {
		snap, serr = testutil.SnapshotWith(dir, testutil.SnapshotOptions{Layout: true, Skip: skip})
	})
	if werr != nil {
		abortFuse(t, dir)
		t.Fatalf("%s: FUSE walk: %v", desc, werr)
	}
	testutil.Unmount(t, dir)
	select {
	case err := <-serve:
		if err != nil {
			t.Errorf("%s: Serve: %v", desc, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: server did not exit after unmount", desc)
	}
	fsys.Close()
	if statImage(t, base.img) != before {
		t.Fatalf("%s: a read-only mount changed the image (size or times)", desc)
	}
	if serr != nil {
		t.Errorf("%s: snapshot: %v", desc, serr)
		return
	}
	dropLayout(snap, base.noLayout)

	want, got := map[string]testutil.Entry{}, map[string]testutil.Entry{}
	for p, e := range base.kernel {
		if compared(base.lib, p, all, affected) && !skip(p) {
			want[p] = e
			if g, ok := snap[p]; ok {
				got[p] = g
			}
		}
	}
	var problems []string
	if diffs, n := testutil.DiffSnapshots(want, got, exactOptions()); n > 0 {
		problems = append(problems, fmt.Sprintf("%d differences on unaffected paths: %s", n, strings.Join(diffs, "\n")))
	}
	var others []string
	for p, e := range snap {
		if bad := unexpectedErrnos(e.Err, errnos); bad != "" {
			problems = append(problems, fmt.Sprintf("%s: unexpected error %q", p, bad))
		} else if e.Err != "" && !strings.HasSuffix(e.Err, syscall.EUCLEAN.Error()) {
			others = append(others, p+": "+e.Err)
		}
	}
	if len(others) > 0 {
		sort.Strings(others)
		t.Logf("%s: errors other than EUCLEAN: %s", desc, strings.Join(others[:min(3, len(others))], "; "))
	}
	if m == nil && len(snap) != len(base.kernel) {
		problems = append(problems, fmt.Sprintf("pristine walk saw %d paths, the kernel %d", len(snap), len(base.kernel)))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%s (FUSE):\n%s\nserver log:\n%s", desc, strings.Join(problems[:min(10, len(problems))], "\n"), tail(logBuf.String(), 3000))
	}
}

// unexpectedErrnos returns the parts of a snapshot error string that do
// not end in one of fuseErrnos, and counts the others in seen.
func unexpectedErrnos(s string, seen map[string]int) string {
	if s == "" {
		return ""
	}
	var bad []string
parts:
	for _, part := range strings.Split(s, "; ") {
		for _, e := range fuseErrnos {
			if strings.HasSuffix(part, e.Error()) {
				seen[e.Error()]++
				continue parts
			}
		}
		bad = append(bad, part)
	}
	return strings.Join(bad, "; ")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// statImage returns what any write to the image file changes: size,
// mtime and ctime. (The bytes are compared once per variant, at the end.)
func statImage(t *testing.T, img string) [3]int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	return [3]int64{st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}

func writeBlock(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// abortFuse aborts the FUSE connection of the mount at dir (so requests
// stuck in a hung server fail) and detaches the mount.
func abortFuse(t *testing.T, dir string) {
	// stat(2) on the mount would hang too: take the device number from
	// mountinfo (field 3, "major:minor"; the connection is the minor).
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != dir {
			continue
		}
		if _, minor, ok := strings.Cut(f[2], ":"); ok {
			ctl := "/sys/fs/fuse/connections/" + minor + "/abort"
			if err := os.WriteFile(ctl, []byte("1"), 0); err != nil {
				t.Logf("abort %s: %v", ctl, err)
			}
		}
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Logf("umount -l %s: %v", dir, err)
	}
}

// Regression tests: the exact damage that broke something, applied with
// debugfs -w (which also recomputes the inode checksum) to a tiny image.

// regressionImage builds a small image of variant v from files (name ->
// contents; names ending in "/" are directories), runs the debugfs -w
// commands on it, and opens it read-only.
func regressionImage(t *testing.T, v testutil.Variant, files map[string][]byte, debugfsCmds ...string) *ext4.FS {
	t.Helper()
	testutil.RequireE2fsprogs(t)
	src := t.TempDir()
	for name, data := range files {
		p := filepath.Join(src, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, 0)
	for _, c := range debugfsCmds {
		out, err := exec.Command("debugfs", "-w", "-R", c, img).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("Usage")) || bytes.Contains(out, []byte("not found")) {
			t.Fatalf("debugfs -w -R %q: %v\n%s", c, err, out)
		}
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(roMem(data), corruptOpenOptions(nil))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func lookupPath(t *testing.T, fsys *ext4.FS, path string) ext4.Ino {
	t.Helper()
	ino := ext4.RootIno
	for _, name := range strings.Split(path, "/") {
		var err error
		if ino, err = fsys.Lookup(ino, []byte(name)); err != nil {
			t.Fatalf("lookup %s: %v", path, err)
		}
	}
	return ino
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// i_size = 2^63-1: Map in the last block below 2^63 returned Length 0
// (the rounded-up end overflowed), so a caller advancing by Length looped.
func TestCorruptRegression_MapLastBlockBelow2p63(t *testing.T) {
	for _, v := range []testutil.Variant{ext2Block1K, testutil.Ext4} {
		t.Run(v.Name, func(t *testing.T) {
			fsys := regressionImage(t, v, map[string][]byte{"f": randomBytes(8192)},
				"sif /f size 0x7fffffffffffffff")
			ino := lookupPath(t, fsys, "f")
			bs := int64(fsys.BlockSize())
			for _, off := range []int64{math.MaxInt64 - bs + 1, math.MaxInt64 - 1, 1<<62 + 5} {
				m, err := fsys.Map(ino, off, math.MaxInt64-off)
				if err != nil || m.Length <= 0 || m.Offset > off || m.Offset+m.Length <= off {
					t.Errorf("Map(%d): %+v, %v: does not cover the offset", off, m, err)
				}
			}
			if m, err := fsys.Map(ino, 0, 8192); err != nil || m.Type != ext4.MapMapped {
				t.Errorf("Map(0): %+v, %v; want the data still mapped", m, err)
			}
		})
	}
}

// A damaged entry name holding '/' made the kernel reject the whole
// READDIR reply (EIO, intact siblings hidden); one holding a NUL reached
// getdents as a truncated name ("" here), on which a tree walk recursed
// into the same directory forever. Both are now left out of listings.
func TestCorruptRegression_DirentNameSlashNUL(t *testing.T) {
	requireE2E(t)
	for _, v := range []testutil.Variant{testutil.Ext4NoCsum, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			src := t.TempDir()
			os.Mkdir(filepath.Join(src, "d"), 0o755)
			for _, n := range []string{"intact-1", "slash-XXXXXX", "nul-XXXXXXXX", "intact-2"} {
				os.WriteFile(filepath.Join(src, "d", n), []byte("data"), 0o644)
			}
			img := filepath.Join(t.TempDir(), "img")
			testutil.MkfsD(t, img, src, v, 0)
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]byte{"slash-XXXXXX": '/', "nul-XXXXXXXX": 0} {
				i := bytes.Index(data, []byte(name))
				if i < 0 || bytes.Index(data[i+1:], []byte(name)) >= 0 {
					t.Fatalf("name %s not found exactly once in the image", name)
				}
				data[i+2] = c
			}
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m := mountE4box(t, img, t.TempDir())
			names, err := os.ReadDir(filepath.Join(m.dir, "d"))
			if err != nil {
				t.Fatalf("readdir: %v", err)
			}
			var got []string
			for _, e := range names {
				got = append(got, e.Name())
			}
			if strings.Join(got, ",") != "intact-1,intact-2" {
				t.Errorf("listing %q, want the two intact names", got)
			}
			for _, n := range got {
				if b, err := os.ReadFile(filepath.Join(m.dir, "d", n)); err != nil || string(b) != "data" {
					t.Errorf("%s: %q, %v", n, b, err)
				}
			}
			m.unmount(t)
		})
	}
}

// An entry naming an unused inode reached the kernel as ESTALE from
// LOOKUP ("stale file handle" for a plain path); it is corruption of the
// directory, EUCLEAN, as the kernel's ext4_lookup reports it. The
// siblings still read.
func TestCorruptRegression_EntryNamesUnusedInode(t *testing.T) {
	requireE2E(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			src := t.TempDir()
			os.WriteFile(filepath.Join(src, "intact"), []byte("data"), 0o644)
			img := filepath.Join(t.TempDir(), "img")
			testutil.MkfsD(t, img, src, v, 0)
			// mkfs made at least 64 inodes; 40 is not in use.
			out, err := exec.Command("debugfs", "-w", "-R", "ln <40> /dangling", img).CombinedOutput()
			if err != nil || bytes.Contains(out, []byte("not found")) {
				t.Fatalf("debugfs ln: %v\n%s", err, out)
			}
			m := mountE4box(t, img, t.TempDir())
			if _, err := os.Lstat(filepath.Join(m.dir, "dangling")); !errors.Is(err, syscall.EUCLEAN) {
				t.Errorf("lstat of the entry naming an unused inode: %v, want EUCLEAN", err)
			}
			if b, err := os.ReadFile(filepath.Join(m.dir, "intact")); err != nil || string(b) != "data" {
				t.Errorf("sibling: %q, %v", b, err)
			}
			m.unmount(t)
		})
	}
}

// Damaged xattr entry names made ListXattr return names GetXattr could
// not find (EOPNOTSUPP): the name index of user.<name> rewritten to the
// default-ACL index listed "system.posix_acl_default<name>". Such entries
// are now left out; the intact ones still list and read, in the inode and
// in the xattr block alike.
func TestCorruptRegression_XattrNameNotResolvable(t *testing.T) {
	requireE2E(t)
	src := t.TempDir()
	p := filepath.Join(src, "f")
	os.WriteFile(p, []byte("data"), 0o644)
	long := bytes.Repeat([]byte("v"), 600) // too big for the inode: the xattr block
	for name, v := range map[string][]byte{
		"user.ib-ok": []byte("1"), "user.ib-acl": []byte("2"),
		"user.intact-block": long, "user.aclidx-block": long,
	} {
		if err := unix.Setxattr(p, name, v, 0); err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
	}
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, testutil.Ext4NoCsum, 0) // no checksums to fix up
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// An entry is e_name_len, e_name_index, ... with the name at +16.
	patch := func(name string, fn func(entry []byte)) {
		i := bytes.Index(data, []byte(name))
		if i < 16 || bytes.Index(data[i+1:], []byte(name)) >= 0 {
			t.Fatalf("xattr name %s not found exactly once", name)
		}
		fn(data[i-16:])
	}
	patch("ib-acl", func(e []byte) { e[1] = 3 })
	patch("aclidx-block", func(e []byte) { e[1] = 3 })
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}

	fsys, err := ext4.Open(roMem(data), corruptOpenOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	ino := lookupPath(t, fsys, "f")
	names, err := fsys.ListXattr(ino)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "user.ib-ok,user.intact-block" {
		t.Errorf("ListXattr = %q, want the intact names only", names)
	}
	for _, n := range names {
		if _, err := fsys.GetXattr(ino, n); err != nil {
			t.Errorf("GetXattr(%s): %v", n, err)
		}
	}

	// Through the kernel: getfattr -d's way (listxattr, getxattr each).
	m := mountE4box(t, img, t.TempDir())
	x, err := readXattrsOf(filepath.Join(m.dir, "f"))
	if err != nil || len(x) != 2 || !bytes.Equal(x["user.intact-block"], long) || string(x["user.ib-ok"]) != "1" {
		t.Errorf("xattrs through FUSE: %v, %v", x, err)
	}
	m.unmount(t)
}

func readXattrsOf(p string) (map[string][]byte, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return out, fmt.Errorf("getxattr %q: %w", name, err)
		}
		out[name] = v[:vn]
	}
	return out, nil
}

// An inode whose i_mode has no file type (S_IFMT 0) was served with those
// attributes; the kernel rejected them and the walk saw EIO. It is now
// corruption (EUCLEAN), as ext4_iget's "bogus i_mode".
func TestCorruptRegression_ModeWithoutFileType(t *testing.T) {
	requireE2E(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "bogus"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(src, "intact"), []byte("data"), 0o644)
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, testutil.Ext4, 0)
	if out, err := exec.Command("debugfs", "-w", "-R", "sif /bogus mode 0644", img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	m := mountE4box(t, img, t.TempDir())
	if _, err := os.Lstat(filepath.Join(m.dir, "bogus")); !errors.Is(err, syscall.EUCLEAN) {
		t.Errorf("lstat of an inode without file type: %v, want EUCLEAN", err)
	}
	if b, err := os.ReadFile(filepath.Join(m.dir, "intact")); err != nil || string(b) != "data" {
		t.Errorf("sibling: %q, %v", b, err)
	}
	m.unmount(t)
}
