package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Entry is everything Snapshot records about one path. Fields that do not
// apply to the file's type are zero.
type Entry struct {
	Type   uint32 // S_IFMT bits of st_mode
	Mode   uint32 // permission bits, with setuid, setgid and sticky
	UID    uint32
	GID    uint32
	Size   int64
	Nlink  uint64
	Rdev   uint64 // device number for char and block devices
	Ino    uint64
	Blocks int64 // st_blocks, 512-byte units
	Atime  unix.Timespec
	Mtime  unix.Timespec
	Ctime  unix.Timespec

	Content string            // regular files: see ContentHash
	Layout  []Region          // regular files, with SnapshotOptions.Layout: data regions
	Target  string            // symlinks: readlink
	Names   []string          // directories: sorted readdir names without . and ..
	Xattrs  map[string]string // every xattr name (all namespaces) and its value
	Err     string            // a failure reading this entry (compared like any field)
}

// Region is a data region reported by SEEK_DATA/SEEK_HOLE.
type Region struct{ Off, Len int64 }

// SnapshotOptions tune Snapshot.
type SnapshotOptions struct {
	// Layout records each regular file's data regions as SEEK_DATA and
	// SEEK_HOLE report them.
	Layout bool
	// FullReadLimit: regular files up to this size are read end to end
	// (checking that holes read as zeros and that exactly Size bytes come
	// back); larger ones read only the data regions SEEK_DATA reports.
	// Zero means 64 MiB; negative means always read end to end.
	FullReadLimit int64
	// Skip leaves out rel and, for a directory, everything below it. It
	// is still listed in its parent's Names.
	Skip func(rel string) bool
}

// contentChunk is the granularity of ContentHash: zero chunks are skipped
// whether they are holes, unwritten extents or written zeros.
const contentChunk = 4096

// Snapshot walks root without following symlinks and returns an Entry per
// path, keyed by path relative to root ("." for root itself). Problems
// with single entries are recorded in Entry.Err so they show up as
// differences; only a root that cannot be examined is an error.
//
// Reading uses O_NOATIME where permitted; readlink still updates a
// symlink's atime on a writable mount (relatime), which no flag prevents.
func Snapshot(root string) (map[string]Entry, error) {
	return SnapshotWith(root, SnapshotOptions{})
}

// SnapshotWith is Snapshot with options.
func SnapshotWith(root string, opts SnapshotOptions) (map[string]Entry, error) {
	if opts.FullReadLimit == 0 {
		opts.FullReadLimit = 64 << 20
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", root, err)
	}
	s := &snapper{root: root, opts: opts, out: make(map[string]Entry), buf: make([]byte, 1<<20)}
	s.walk(".", &st)
	return s.out, nil
}

type snapper struct {
	root string
	opts SnapshotOptions
	out  map[string]Entry
	buf  []byte
}

func (s *snapper) abs(rel string) string {
	if rel == "." {
		return s.root
	}
	return filepath.Join(s.root, rel)
}

func (s *snapper) walk(rel string, st *unix.Stat_t) {
	p := s.abs(rel)
	e := Entry{
		Type:   st.Mode & unix.S_IFMT,
		Mode:   st.Mode & 0o7777,
		UID:    st.Uid,
		GID:    st.Gid,
		Size:   st.Size,
		Nlink:  uint64(st.Nlink),
		Ino:    st.Ino,
		Blocks: st.Blocks,
		Atime:  st.Atim,
		Mtime:  st.Mtim,
		Ctime:  st.Ctim,
	}
	var errs []string
	note := func(what string, err error) { errs = append(errs, what+": "+err.Error()) }
	if e.Type == unix.S_IFCHR || e.Type == unix.S_IFBLK {
		e.Rdev = st.Rdev
	}
	if x, err := readXattrs(p); err != nil {
		note("xattrs", err)
	} else {
		e.Xattrs = x
	}
	var children []string
	switch e.Type {
	case unix.S_IFREG:
		h, layout, err := s.hashFile(p, st.Size)
		e.Content, e.Layout = h, layout
		if err != nil {
			note("read", err)
		}
	case unix.S_IFLNK:
		t, err := os.Readlink(p)
		if err != nil {
			note("readlink", err)
		}
		e.Target = t
	case unix.S_IFDIR:
		names, err := readNames(p)
		if err != nil {
			note("readdir", err)
		}
		e.Names = names
		children = names
	}
	e.Err = strings.Join(errs, "; ")
	s.out[rel] = e
	for _, name := range children {
		crel := name
		if rel != "." {
			crel = rel + "/" + name
		}
		if s.opts.Skip != nil && s.opts.Skip(crel) {
			continue
		}
		var cst unix.Stat_t
		if err := unix.Lstat(s.abs(crel), &cst); err != nil {
			s.out[crel] = Entry{Err: "lstat: " + err.Error()}
			continue
		}
		s.walk(crel, &cst)
	}
}

// openNoatime opens p read-only, with O_NOATIME when the caller may use it.
func openNoatime(p string, flags int) (int, error) {
	fd, err := unix.Open(p, flags|unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(p, flags|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// readNames returns the sorted names of directory p, keeping duplicates
// so a readdir that repeats an entry shows up.
func readNames(p string) ([]string, error) {
	fd, err := openNoatime(p, unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// readXattrs returns all xattrs of p (not following symlinks).
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	for tries := 0; err == nil && tries < 5; tries++ {
		if sz == 0 {
			return nil, nil
		}
		buf := make([]byte, sz)
		var n int
		n, err = unix.Llistxattr(p, buf)
		if err == unix.ERANGE { // grew in between
			sz, err = unix.Llistxattr(p, nil)
			continue
		}
		if err != nil {
			break
		}
		out := make(map[string]string)
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name == "" {
				continue
			}
			v, err := getXattr(p, name)
			if err != nil {
				return out, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = string(v)
		}
		return out, nil
	}
	if err == unix.ENOTSUP {
		return nil, nil
	}
	return nil, err
}

func getXattr(p, name string) ([]byte, error) {
	for range 5 {
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, sz)
		n, err := unix.Lgetxattr(p, name, v)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return v[:n], nil
	}
	return nil, unix.ERANGE
}

// chunker feeds ContentHash.
type chunker struct {
	h    interface{ Write([]byte) (int, error) }
	last int64 // index of the last chunk fed, -1 before any
}

// add feeds chunk k (contentChunk bytes, or fewer at EOF) unless it is all
// zeros or was already fed.
func (c *chunker) add(k int64, b []byte) {
	if k <= c.last {
		return
	}
	c.last = k
	if isZero(b) {
		return
	}
	var idx [8]byte
	binary.LittleEndian.PutUint64(idx[:], uint64(k))
	c.h.Write(idx[:])
	c.h.Write(b)
}

var zeroChunk [contentChunk]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// ContentHash returns the hash Snapshot records for a file with content b:
// sha256 over (chunk index, chunk) for every non-zero 4 KiB chunk, then
// the size. Holes and zeros hash alike, so a sparse file can be hashed
// from its data regions alone.
func ContentHash(b []byte) string {
	h := sha256.New()
	c := &chunker{h: h, last: -1}
	for k := int64(0); int64(len(b)) > k*contentChunk; k++ {
		c.add(k, b[k*contentChunk:min(int64(len(b)), (k+1)*contentChunk)])
	}
	return finishHash(h, int64(len(b)))
}

func finishHash(h interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}, size int64) string {
	var sz [8]byte
	binary.LittleEndian.PutUint64(sz[:], uint64(size))
	h.Write(sz[:])
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// maxRegions caps SEEK_DATA/SEEK_HOLE walks, so a file system answering
// nonsense cannot keep Snapshot looping.
const maxRegions = 1 << 20

// dataRegions lists the data regions of fd. A file system without
// SEEK_DATA support reports the whole file as data.
func dataRegions(fd int, size int64) ([]Region, error) {
	var rs []Region
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		if err == unix.EINVAL || err == unix.EOPNOTSUPP {
			return []Region{{0, size}}, nil
		}
		if err != nil {
			return rs, fmt.Errorf("SEEK_DATA %d: %w", off, err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return rs, fmt.Errorf("SEEK_HOLE %d: %w", d, err)
		}
		if d < off || h <= d || h > size {
			return rs, fmt.Errorf("SEEK_DATA/SEEK_HOLE from %d gave [%d, %d) in a %d-byte file", off, d, h, size)
		}
		if len(rs) >= maxRegions {
			return rs, fmt.Errorf("more than %d data regions", maxRegions)
		}
		rs = append(rs, Region{d, h - d})
		off = h
	}
	return rs, nil
}

// hashFile computes ContentHash of file p without necessarily reading its
// holes, and its layout when asked for.
func (s *snapper) hashFile(p string, size int64) (string, []Region, error) {
	fd, err := openNoatime(p, 0)
	if err != nil {
		return "", nil, err
	}
	defer unix.Close(fd)
	var layout []Region
	full := s.opts.FullReadLimit < 0 || size <= s.opts.FullReadLimit
	if s.opts.Layout || !full {
		if layout, err = dataRegions(fd, size); err != nil {
			return "", layout, err
		}
	}
	h := sha256.New()
	c := &chunker{h: h, last: -1}
	if full {
		// Read one byte past size: a file returning more or fewer bytes
		// than its size is a bug worth reporting (and reading to EOF could
		// run forever on a broken file system).
		n, err := s.readSpan(fd, c, 0, size+1)
		if err != nil {
			return "", layout, err
		}
		if n != size {
			return finishHash(h, n), layout, fmt.Errorf("read %d bytes, size is %d", n, size)
		}
		return finishHash(h, size), keepLayout(s.opts.Layout, layout), nil
	}
	for _, r := range layout {
		start := r.Off / contentChunk * contentChunk
		end := min(size, (r.Off+r.Len+contentChunk-1)/contentChunk*contentChunk)
		n, err := s.readSpan(fd, c, start, end-start)
		if err != nil {
			return "", layout, err
		}
		if n != end-start {
			return "", layout, fmt.Errorf("short read at %d: %d of %d bytes", start, n, end-start)
		}
	}
	return finishHash(h, size), keepLayout(s.opts.Layout, layout), nil
}

func keepLayout(keep bool, l []Region) []Region {
	if keep {
		return l
	}
	return nil
}

// readSpan reads up to n bytes from chunk-aligned off, stopping early at
// EOF, and feeds them to c. It returns the number of bytes read.
func (s *snapper) readSpan(fd int, c *chunker, off, n int64) (int64, error) {
	var total int64
	for total < n {
		b := s.buf[:min(int64(len(s.buf)), n-total)]
		got := 0
		// Fill b completely unless EOF: chunk boundaries must not depend
		// on how the file system splits reads.
		for got < len(b) {
			m, err := unix.Pread(fd, b[got:], off+total+int64(got))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total + int64(got), fmt.Errorf("pread at %d: %w", off+total+int64(got), err)
			}
			if m == 0 {
				break
			}
			got += m
		}
		for i := 0; i < got; i += contentChunk {
			k := (off + total + int64(i)) / contentChunk
			c.add(k, b[i:min(got, i+contentChunk)])
		}
		total += int64(got)
		if got < len(b) {
			break
		}
	}
	return total, nil
}

// Field names one compared property of an Entry, for CompareOptions.Ignore.
type Field uint32

const (
	FieldType Field = 1 << iota
	FieldMode
	FieldUID
	FieldGID
	FieldSize
	FieldNlink
	FieldRdev
	FieldIno
	FieldBlocks
	FieldAtime
	FieldMtime
	FieldCtime
	FieldContent
	FieldLayout
	FieldTarget
	FieldNames
	FieldXattrs
	FieldErr
)

// CompareOptions say what CompareSnapshots compares.
type CompareOptions struct {
	Ignore Field // fields not compared
	// TimeGranularity truncates timestamps before comparing them (time.Second
	// against a source tree that went through mkfs.ext4 -d). Zero is exact.
	TimeGranularity time.Duration
	// IgnorePath drops paths (and their names in parents' Names) from both
	// sides, e.g. lost+found against a source tree.
	IgnorePath func(rel string) bool
	// IgnoreXattr drops xattr names from both sides.
	IgnoreXattr func(name string) bool
	// IgnoreRoot adds fields not compared for the root directory (".").
	IgnoreRoot Field
	// IgnoreFieldsFor adds fields not compared for one path.
	IgnoreFieldsFor func(rel string) Field
	// MaxDiffs caps the differences reported; zero means 30.
	MaxDiffs int
}

// SameImageOptions compares two views of one image (a FUSE mount against
// the kernel's loop mount): everything but the data layout, which a FUSE
// server without lseek support reports as all data.
func SameImageOptions() CompareOptions {
	return CompareOptions{Ignore: FieldLayout}
}

// CopiedTreeOptions compares an image with the tree MkfsCopy copied into
// it: exact times, but not ctime, inode numbers, block counts or layout;
// without lost+found, and not the root's link count (lost+found adds one).
func CopiedTreeOptions() CompareOptions {
	return CompareOptions{
		Ignore:     FieldCtime | FieldIno | FieldBlocks | FieldLayout,
		IgnorePath: func(rel string) bool { return rel == "lost+found" },
		IgnoreRoot: FieldNlink,
	}
}

// SourceTreeOptions compares an image with the tree it was built from by
// mkfs.ext4 -d: as CopiedTreeOptions, but times to the second (sub-second
// parts are dropped) and not the root's times, which mkfs sets. For
// variants where mkfs -d loses more, see Tree.MkfsDIgnores.
func SourceTreeOptions() CompareOptions {
	o := CopiedTreeOptions()
	o.TimeGranularity = time.Second
	o.IgnoreRoot |= FieldAtime | FieldMtime
	return o
}

// CompareSnapshots fails t with a readable report of how got differs from
// want: the first MaxDiffs differences, in path order.
func CompareSnapshots(t testing.TB, want, got map[string]Entry, opts CompareOptions) {
	t.Helper()
	if diffs, total := DiffSnapshots(want, got, opts); total > 0 {
		t.Errorf("snapshots differ in %d places (want -> got):\n%s", total, strings.Join(diffs, "\n"))
	}
}

// DiffSnapshots returns up to opts.MaxDiffs differences between want and
// got, one line each, and the total number found.
func DiffSnapshots(want, got map[string]Entry, opts CompareOptions) ([]string, int) {
	if opts.MaxDiffs == 0 {
		opts.MaxDiffs = 30
	}
	ignored := func(rel string) bool { return opts.IgnorePath != nil && opts.IgnorePath(rel) }
	paths := make([]string, 0, len(want)+len(got))
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	total := 0
	add := func(format string, args ...any) {
		total++
		if len(out) < opts.MaxDiffs {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for _, p := range paths {
		if ignored(p) {
			continue
		}
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case !inG:
			add("%s: missing (want %s)", p, typeName(w.Type))
			continue
		case !inW:
			add("%s: unexpected %s", p, typeName(g.Type))
			continue
		}
		diffEntry(p, w, g, opts, ignored, add)
	}
	if total > len(out) {
		out = append(out, fmt.Sprintf("... and %d more", total-len(out)))
	}
	return out, total
}

func diffEntry(p string, w, g Entry, o CompareOptions, ignored func(string) bool, add func(string, ...any)) {
	skip := o.Ignore
	if p == "." {
		skip |= o.IgnoreRoot
	}
	if o.IgnoreFieldsFor != nil {
		skip |= o.IgnoreFieldsFor(p)
	}
	on := func(f Field) bool { return skip&f == 0 }
	num := func(f Field, name string, a, b uint64, format string) {
		if on(f) && a != b {
			add("%s: %s "+format+" -> "+format, p, name, a, b)
		}
	}
	if on(FieldErr) && w.Err != g.Err {
		add("%s: error %q -> %q", p, w.Err, g.Err)
	}
	if on(FieldType) && w.Type != g.Type {
		add("%s: type %s -> %s", p, typeName(w.Type), typeName(g.Type))
		return // the rest would only be noise
	}
	num(FieldMode, "mode", uint64(w.Mode), uint64(g.Mode), "%#o")
	num(FieldUID, "uid", uint64(w.UID), uint64(g.UID), "%d")
	num(FieldGID, "gid", uint64(w.GID), uint64(g.GID), "%d")
	if w.Type != unix.S_IFDIR || on(FieldBlocks) {
		// Directory sizes depend on block size and layout: they are
		// compared with the block counts.
		num(FieldSize, "size", uint64(w.Size), uint64(g.Size), "%d")
	}
	num(FieldNlink, "nlink", w.Nlink, g.Nlink, "%d")
	if on(FieldRdev) && w.Rdev != g.Rdev {
		add("%s: rdev %d:%d -> %d:%d", p, unix.Major(w.Rdev), unix.Minor(w.Rdev), unix.Major(g.Rdev), unix.Minor(g.Rdev))
	}
	num(FieldIno, "ino", w.Ino, g.Ino, "%d")
	num(FieldBlocks, "blocks", uint64(w.Blocks), uint64(g.Blocks), "%d")
	for _, tf := range []struct {
		f    Field
		name string
		a, b unix.Timespec
	}{{FieldAtime, "atime", w.Atime, g.Atime}, {FieldMtime, "mtime", w.Mtime, g.Mtime}, {FieldCtime, "ctime", w.Ctime, g.Ctime}} {
		if on(tf.f) && !sameTime(tf.a, tf.b, o.TimeGranularity) {
			add("%s: %s %s -> %s", p, tf.name, fmtTime(tf.a), fmtTime(tf.b))
		}
	}
	if on(FieldContent) && w.Content != g.Content {
		add("%s: content hash %s -> %s (size %d -> %d)", p, w.Content, g.Content, w.Size, g.Size)
	}
	if on(FieldLayout) && !equalRegions(w.Layout, g.Layout) {
		add("%s: data regions %s -> %s", p, fmtRegions(w.Layout), fmtRegions(g.Layout))
	}
	if on(FieldTarget) && w.Target != g.Target {
		add("%s: symlink target %s -> %s", p, shorten(w.Target), shorten(g.Target))
	}
	if on(FieldNames) {
		diffNames(p, w.Names, g.Names, ignored, add)
	}
	if on(FieldXattrs) {
		diffXattrs(p, w.Xattrs, g.Xattrs, o.IgnoreXattr, add)
	}
}

func sameTime(a, b unix.Timespec, g time.Duration) bool {
	ta, tb := time.Unix(a.Sec, a.Nsec), time.Unix(b.Sec, b.Nsec)
	if g > 0 {
		ta, tb = ta.Truncate(g), tb.Truncate(g)
	}
	return ta.Equal(tb)
}

func fmtTime(ts unix.Timespec) string {
	return fmt.Sprintf("%d.%09d (%s)", ts.Sec, ts.Nsec, time.Unix(ts.Sec, ts.Nsec).UTC().Format(time.RFC3339Nano))
}

func typeName(t uint32) string {
	switch t {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("type %#o", t)
}

func equalRegions(a, b []Region) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fmtRegions(rs []Region) string {
	var b strings.Builder
	for i, r := range rs {
		if i == 8 {
			fmt.Fprintf(&b, " ...(%d regions)", len(rs))
			break
		}
		fmt.Fprintf(&b, "[%d,+%d)", r.Off, r.Len)
	}
	if len(rs) == 0 {
		return "none"
	}
	return b.String()
}

// diffNames reports names missing from or added to a directory listing,
// a few of each, and duplicates.
func diffNames(p string, w, g []string, ignored func(string) bool, add func(string, ...any)) {
	child := func(n string) string {
		if p == "." {
			return n
		}
		return p + "/" + n
	}
	count := func(ns []string) map[string]int {
		m := make(map[string]int, len(ns))
		for _, n := range ns {
			if !ignored(child(n)) {
				m[n]++
			}
		}
		return m
	}
	wm, gm := count(w), count(g)
	var missing, extra []string
	for n, c := range wm {
		if gm[n] < c {
			missing = append(missing, n)
		}
	}
	for n, c := range gm {
		if wm[n] < c {
			extra = append(extra, n)
		}
	}
	if len(missing)+len(extra) == 0 {
		return
	}
	sort.Strings(missing)
	sort.Strings(extra)
	add("%s: readdir names: %d missing %s, %d extra or repeated %s (of %d -> %d)",
		p, len(missing), quoteFew(missing), len(extra), quoteFew(extra), len(w), len(g))
}

func quoteFew(ns []string) string {
	const few = 5
	var qs []string
	for i, n := range ns {
		if i == few {
			qs = append(qs, "...")
			break
		}
		qs = append(qs, shorten(n))
	}
	return "[" + strings.Join(qs, " ") + "]"
}

func diffXattrs(p string, w, g map[string]string, ignore func(string) bool, add func(string, ...any)) {
	names := map[string]bool{}
	for n := range w {
		names[n] = true
	}
	for n := range g {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		if ignore == nil || !ignore(n) {
			sorted = append(sorted, n)
		}
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		wv, inW := w[n]
		gv, inG := g[n]
		switch {
		case !inG:
			add("%s: xattr %s missing (want %s)", p, n, fmtXattr(n, wv))
		case !inW:
			add("%s: unexpected xattr %s = %s", p, n, fmtXattr(n, gv))
		case wv != gv:
			add("%s: xattr %s %s -> %s", p, n, fmtXattr(n, wv), fmtXattr(n, gv))
		}
	}
}

// fmtXattr shows ACLs like getfacl, text quoted and binary in hex.
func fmtXattr(name, v string) string {
	if name == XattrACLAccess || name == XattrACLDefault {
		return FormatACL([]byte(v))
	}
	return shorten(v)
}

// shorten quotes s, or hex-encodes it when binary, cutting long values.
func shorten(s string) string {
	const max = 80
	suffix := ""
	if len(s) > max {
		suffix = fmt.Sprintf("...(%d bytes)", len(s))
		s = s[:max]
	}
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
		return fmt.Sprintf("%q%s", s, suffix)
	}
	return "0x" + hex.EncodeToString([]byte(s)) + suffix
}
