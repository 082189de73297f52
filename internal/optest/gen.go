package optest

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// gen draws operations. It looks only at the reference, so the stream
// depends on nothing but the seed (and the reference's correctness).
type gen struct {
	cfg    Config
	r      *rand.Rand
	run    *runner
	names  []string // the namespace's name pool
	xnames []string // xattr names
	total  int      // sum of weights
	weight [numOpKinds]int
}

// The name pool is small so that operations collide (EEXIST, replacing
// renames, ENOTEMPTY), and has the awkward cases: 255-byte names in
// ASCII and in multi-byte UTF-8, spaces, a newline, a leading dash.
func namePool() []string {
	return []string{
		"a", "b", "c", "d", "file.txt", "sub", "x y", "ünïcödé", "日本語.dat",
		"-dash", ".hidden", "nl\nname", "9",
		strings.Repeat("L", 255),
		strings.Repeat("é", 127) + "x", // 255 bytes
	}
}

// tooLong is one byte over NAME_MAX: ENAMETOOLONG everywhere.
var tooLong = strings.Repeat("n", 256)

func newGen(cfg Config, run *runner) *gen {
	g := &gen{
		cfg:   cfg,
		r:     newRand(cfg.Seed),
		run:   run,
		names: namePool(),
		xnames: []string{"user.a", "user.b", "user.comment", "user.ü",
			"user." + strings.Repeat("x", 200)},
	}
	w := map[opKind]int{
		opCreate: 6, opWrite: 16, opRead: 5, opTruncate: 5, opFallocate: 5,
		opRename: 9, opLink: 3, opUnlink: 6, opMkdir: 5, opRmdir: 4, opSymlink: 3,
		opMknod: 1, opSetxattr: 5, opRemovexattr: 2, opChmod: 3, opChown: 2,
		opUtimens: 4, opUnlinkedWrite: 1, opMmapWrite: 2, opCopyRange: 2, opOpen: 2, opHWrite: 4, opHRead: 2,
		opHTruncate: 1, opHFallocate: 1, opHSync: 1, opClose: 1,
	}
	f := cfg.Features
	if !f.Xattrs {
		w[opSetxattr], w[opRemovexattr] = 0, 0
	}
	if !f.Hardlinks {
		w[opLink] = 0
	}
	if !f.Mknod {
		w[opMknod] = 0
	}
	if !f.Mmap {
		w[opMmapWrite] = 0
	}
	if !f.CopyRange {
		w[opCopyRange] = 0
	}
	if f.Fallocate == 0 {
		w[opFallocate], w[opHFallocate] = 0, 0
	}
	for k, n := range w {
		g.weight[k] = n
		g.total += n
	}
	return g
}

// next draws the next operation; kinds that do not apply to the current
// state (no open handle, say) are drawn again.
func (g *gen) next() *op {
	for {
		n := g.r.IntN(g.total)
		k := opKind(0)
		for ; n >= g.weight[k]; k++ {
			n -= g.weight[k]
		}
		if o := g.make(k); o != nil {
			o.kind = k
			return o
		}
	}
}

func (g *gen) pct(p int) bool { return g.r.IntN(100) < p }

func (g *gen) ref(rel string) string { return abs(g.cfg.Reference, rel) }

// lstat returns the reference's mode for rel, 0 if it does not exist.
func (g *gen) lstat(rel string) (uint32, int64) {
	var st unix.Stat_t
	if unix.Lstat(g.ref(rel), &st) != nil {
		return 0, 0
	}
	return st.Mode, st.Size
}

// stat is lstat following symlinks.
func (g *gen) stat(rel string) (uint32, int64) {
	var st unix.Stat_t
	if unix.Stat(g.ref(rel), &st) != nil {
		return 0, 0
	}
	return st.Mode, st.Size
}

// openable: opening rel must never reach a device (the reference is not
// mounted nodev, the targets are).
func (g *gen) openable(rel string) bool {
	m, _ := g.stat(rel)
	t := m & unix.S_IFMT
	return t != unix.S_IFCHR && t != unix.S_IFBLK
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func depth(rel string) int {
	if rel == "." {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// entries lists dir in the reference, sorted by name.
func (g *gen) entries(dir string) []fs.DirEntry {
	es, _ := os.ReadDir(g.ref(dir))
	return es
}

// randDir walks down from the root, stopping at each level with some
// probability.
func (g *gen) randDir() string {
	rel := "."
	for range 8 {
		if g.pct(40) {
			break
		}
		var dirs []string
		for _, e := range g.entries(rel) {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		if len(dirs) == 0 {
			break
		}
		rel = join(rel, dirs[g.r.IntN(len(dirs))])
	}
	return rel
}

// emptyDirs lists the empty directories below dir, in a fixed order.
func (g *gen) emptyDirs(dir string) []string {
	var out []string
	for _, e := range g.entries(dir) {
		if e.IsDir() {
			sub := join(dir, e.Name())
			if len(g.entries(sub)) == 0 {
				out = append(out, sub)
			} else {
				out = append(out, g.emptyDirs(sub)...)
			}
		}
	}
	return out
}

func (g *gen) name() string {
	if g.pct(1) {
		return tooLong
	}
	return g.names[g.r.IntN(len(g.names))]
}

type want func(mode fs.FileMode) bool

var (
	anyType = func(fs.FileMode) bool { return true }
	isReg   = func(m fs.FileMode) bool { return m.IsRegular() }
	isDir   = func(m fs.FileMode) bool { return m.IsDir() }
	notDir  = func(m fs.FileMode) bool { return !m.IsDir() }
)

// path returns an existing entry of a wanted type with probability
// pExist (when the chosen directory has one), else a pool name in a
// random directory, which may or may not exist.
func (g *gen) path(w want, pExist int) string {
	dir := g.randDir()
	if g.pct(pExist) {
		var ok []string
		for _, e := range g.entries(dir) {
			if w(e.Type()) {
				ok = append(ok, e.Name())
			}
		}
		if len(ok) > 0 {
			return join(dir, ok[g.r.IntN(len(ok))])
		}
	}
	return join(dir, g.name())
}

// offset picks a write offset for a file of size sz: mostly inside or at
// the end of the file and near block boundaries, sometimes far away
// (holes), rarely past 4 GiB.
func (g *gen) offset(sz int64) int64 {
	max := g.cfg.MaxFileSize
	switch n := g.r.IntN(100); {
	case n < 30:
		return g.r.Int64N(sz + 1)
	case n < 45:
		return sz
	case n < 60:
		bs := []int64{1024, 4096, 65536}[g.r.IntN(3)]
		return max64(0, g.r.Int64N(64)*bs+g.r.Int64N(7)-3)
	case n < 85:
		return g.r.Int64N(2 << 20)
	case n < 94:
		return g.r.Int64N(64 << 20)
	case n < 97 && max > 4<<30:
		return 4<<30 - 1<<20 + g.r.Int64N(max-(4<<30-1<<20))
	}
	return g.r.Int64N(max)
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (g *gen) length() int64 {
	var n int64
	switch k := g.r.IntN(100); {
	case k < 2:
		return 0
	case k < 27:
		n = 1 + g.r.Int64N(16)
	case k < 55:
		n = 1 + g.r.Int64N(4096)
	case k < 82:
		n = 1 + g.r.Int64N(64<<10)
	default:
		n = 1 + g.r.Int64N(int64(g.cfg.MaxWrite))
	}
	return min(n, int64(g.cfg.MaxWrite))
}

// span picks offset and length with off+n within MaxFileSize.
func (g *gen) span(sz int64, n int64) (int64, int64) {
	off := g.offset(sz)
	if off+n > g.cfg.MaxFileSize {
		off = g.cfg.MaxFileSize - n
	}
	return off, n
}

func (g *gen) size(sz int64) int64 {
	switch n := g.r.IntN(100); {
	case n < 30:
		return g.r.Int64N(sz + 1)
	case n < 42:
		return 0
	case n < 62:
		return sz + g.r.Int64N(8193)
	case n < 85:
		return g.r.Int64N(4 << 20)
	case n < 96:
		return g.r.Int64N(64 << 20)
	}
	return g.r.Int64N(g.cfg.MaxFileSize + 1)
}

func (g *gen) fallocLen() int64 {
	if g.pct(70) {
		return 1 + g.r.Int64N(64<<10)
	}
	return 1 + g.r.Int64N(1<<20)
}

func (g *gen) fallocMode() (int, bool) {
	var modes []int
	f := g.cfg.Features.Fallocate
	if f&FallocDefault != 0 {
		modes = append(modes, 0)
	}
	if f&FallocKeepSize != 0 {
		modes = append(modes, unix.FALLOC_FL_KEEP_SIZE)
	}
	if f&FallocPunchHole != 0 {
		modes = append(modes, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE)
	}
	if f&FallocZeroRange != 0 {
		modes = append(modes, unix.FALLOC_FL_ZERO_RANGE, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE)
	}
	if len(modes) == 0 {
		return 0, false
	}
	return modes[g.r.IntN(len(modes))], true
}

func (g *gen) fileMode() uint32 {
	modes := []uint32{0o644, 0o600, 0o755, 0o444, 0, 0o4755, 0o2755, 0o6777, 0o1777, 0o2644}
	if g.pct(20) {
		return uint32(g.r.IntN(0o10000))
	}
	return modes[g.r.IntN(len(modes))]
}

func (g *gen) id() int {
	ids := []int{0, 0, 1000, 65534, 65535, 65536, 100000, 1 << 31, 4294967294, -1}
	if g.pct(15) {
		return int(g.r.Uint32N(1<<32 - 1))
	}
	return ids[g.r.IntN(len(ids))]
}

// timespec is within what ext4 with 256-byte inodes keeps exactly:
// 1901 to 2446, with nanoseconds.
func (g *gen) timespec() unix.Timespec {
	sec := g.r.Int64N(1<<34-2) - (1<<31 - 1)
	if g.pct(50) {
		sec = 1_600_000_000 + g.r.Int64N(200_000_000) // around now
	}
	return unix.Timespec{Sec: sec, Nsec: g.r.Int64N(1_000_000_000)}
}

// symlinkTarget never starts with "/" and has no ".." component, so
// following one from inside a root stays inside it.
func (g *gen) symlinkTarget() string {
	max := g.cfg.Features.MaxSymlink
	var n int
	switch k := g.r.IntN(100); {
	case k < 55:
		return g.names[g.r.IntN(len(g.names)-2)] // short, often an existing sibling
	case k < 75:
		n = 50 + g.r.IntN(20) // around ext4's 60-byte fast symlink limit
	default:
		n = 1 + g.r.IntN(max)
	}
	n = min(n, max)
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	b[0] = 'a'
	s := string(b)
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", "._")
	}
	return s
}

// xattrEntrySize is what one xattr takes in an ext4 xattr block.
func xattrEntrySize(name string, vlen int) int {
	suffix := strings.TrimPrefix(name, "user.")
	return 16 + (len(suffix)+3)&^3 + (vlen+3)&^3
}

func (g *gen) xattrs(rel string) map[string]int {
	names, err := listXattrs(g.ref(rel))
	if err != nil {
		return nil
	}
	m := map[string]int{}
	for _, n := range names {
		if sz, err := unix.Lgetxattr(g.ref(rel), n, nil); err == nil {
			m[n] = sz
		}
	}
	return m
}

func listXattrs(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	buf := make([]byte, sz)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// make fills in an operation of kind k, or returns nil when k does not
// apply now.
func (g *gen) make(k opKind) *op {
	o := &op{slot: -1, seed: g.r.Uint64(), data: g.r.IntN(numDataKinds)}
	switch k {
	case opCreate:
		o.path = g.path(anyType, 15)
		o.mode = g.fileMode()
	case opWrite:
		o.path = g.path(isReg, 85)
		if !g.openable(o.path) {
			return nil
		}
		o.flags = unix.O_WRONLY
		if g.pct(20) {
			o.flags |= unix.O_CREAT
			o.mode = g.fileMode()
		}
		if g.pct(4) {
			o.flags |= unix.O_TRUNC
		}
		if g.pct(12) {
			o.flags |= unix.O_APPEND
		}
		_, sz := g.stat(o.path)
		o.off, o.n = g.span(sz, g.length())
	case opRead:
		o.path = g.path(isReg, 90)
		if !g.openable(o.path) {
			return nil
		}
		_, sz := g.stat(o.path)
		o.off = g.r.Int64N(sz + 4097)
		if g.pct(10) && sz > 0 {
			o.off = sz - 1
		}
		o.n = 1 + g.r.Int64N(128<<10)
	case opTruncate:
		o.path = g.path(isReg, 90)
		_, sz := g.stat(o.path)
		o.n = g.size(sz)
	case opFallocate:
		o.path = g.path(isReg, 90)
		if !g.openable(o.path) {
			return nil
		}
		mode, ok := g.fallocMode()
		if !ok {
			return nil
		}
		_, sz := g.stat(o.path)
		o.flags = mode
		o.off, o.n = g.span(sz, g.fallocLen())
	case opRename:
		g.rename(o)
	case opLink:
		if g.pct(95) {
			o.path = g.path(notDir, 90)
		} else {
			o.path = g.path(isDir, 90)
		}
		o.path2 = g.path(anyType, 25)
	case opUnlink:
		o.path = g.path(anyType, 85)
	case opMkdir:
		dir := g.randDir()
		if depth(dir) >= g.cfg.MaxDepth {
			return nil
		}
		o.path = join(dir, g.name())
		o.mode = []uint32{0o755, 0o700, 0o2775, 0o1777, 0o555, 0}[g.r.IntN(6)]
		if g.pct(15) {
			o.mode = uint32(g.r.IntN(0o10000))
		}
	case opRmdir:
		o.path = g.path(isDir, 85)
		if empty := g.emptyDirs("."); len(empty) > 0 && g.pct(60) {
			// Mostly empty ones: most directories are not.
			o.path = empty[g.r.IntN(len(empty))]
		}
	case opSymlink:
		o.path = g.path(anyType, 15)
		o.target = g.symlinkTarget()
	case opMknod:
		o.path = g.path(anyType, 10)
		types := []uint32{unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK}
		o.mode = types[g.r.IntN(len(types))] | uint32(g.r.IntN(0o10000))
		if t := o.mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
			o.rdev = unix.Mkdev(g.r.Uint32N(4096), g.r.Uint32N(1<<20))
		}
	case opSetxattr:
		if !g.setxattr(o) {
			return nil
		}
	case opRemovexattr:
		o.path = g.xattrPath()
		o.name = g.xnames[g.r.IntN(len(g.xnames))]
		if xs := g.xattrs(o.path); len(xs) > 0 && g.pct(80) {
			o.name = sortedKeys(xs)[g.r.IntN(len(xs))]
		}
	case opChmod:
		o.path = g.path(anyType, 90)
		o.mode = g.fileMode()
	case opChown:
		o.path = g.path(anyType, 90)
		o.uid, o.gid = g.id(), g.id()
	case opUtimens:
		o.path = g.path(anyType, 90)
		if g.pct(10) {
			o.path = "."
		}
		o.follow = g.pct(30)
		o.times[0] = g.timespec()
		switch n := g.r.IntN(100); {
		case n < 10:
			o.times[0].Nsec = unix.UTIME_OMIT
		case n < 15:
			o.times[0].Nsec = unix.UTIME_NOW
		}
		o.times[1] = g.timespec()
		switch n := g.r.IntN(100); {
		case n < 8:
			o.times[1].Nsec = unix.UTIME_OMIT
		case n < 16:
			o.times[1].Nsec = unix.UTIME_NOW
		}
	case opUnlinkedWrite:
		o.path = g.path(isReg, 50)
		if !g.openable(o.path) {
			return nil
		}
		o.off, o.n = g.r.Int64N(256<<10), g.r.Int64N(64<<10)
	case opMmapWrite:
		o.path = g.path(isReg, 95)
		if !g.openable(o.path) {
			return nil
		}
		_, sz := g.stat(o.path)
		if sz == 0 {
			return nil
		}
		o.off = g.r.Int64N(sz)
		o.n = min(sz-o.off, 1+g.r.Int64N(64<<10))
	case opCopyRange:
		o.path, o.path2 = g.path(isReg, 95), g.path(isReg, 95)
		if !g.openable(o.path) || !g.openable(o.path2) {
			return nil
		}
		_, sz := g.stat(o.path)
		_, dsz := g.stat(o.path2)
		o.off = g.r.Int64N(sz + 1)
		o.n = 1 + g.r.Int64N(256<<10)
		// The destination offset travels in seed (copy writes no data of
		// its own).
		woff, _ := g.span(dsz, o.n)
		o.seed = uint64(woff)
	case opOpen:
		o.slot = g.r.IntN(numHandles)
		o.path = g.path(isReg, 80)
		if !g.openable(o.path) {
			return nil
		}
		o.flags = unix.O_RDWR
		if g.pct(15) {
			o.flags |= unix.O_APPEND
		}
		if g.pct(40) {
			o.flags |= unix.O_CREAT
			o.mode = g.fileMode()
		}
		if g.pct(5) {
			o.flags |= unix.O_TRUNC
		}
	default:
		return g.handleOp(k, o)
	}
	return o
}

// handleOp fills in an operation on an open handle, nil if none is open.
func (g *gen) handleOp(k opKind, o *op) *op {
	var open []int
	for i, h := range g.run.handles {
		if h != nil && h.fd[sideTarget] >= 0 && h.fd[sideRef] >= 0 {
			open = append(open, i)
		}
	}
	if len(open) == 0 {
		return nil
	}
	o.slot = open[g.r.IntN(len(open))]
	h := g.run.handles[o.slot]
	var st unix.Stat_t
	if unix.Fstat(h.fd[sideRef], &st) != nil {
		return nil
	}
	sz := st.Size
	switch k {
	case opHWrite:
		if h.append {
			o.flags = unix.O_APPEND
		}
		o.off, o.n = g.span(sz, g.length())
	case opHRead:
		o.off = g.r.Int64N(sz + 4097)
		o.n = 1 + g.r.Int64N(128<<10)
	case opHTruncate:
		o.n = g.size(sz)
	case opHFallocate:
		mode, ok := g.fallocMode()
		if !ok {
			return nil
		}
		o.flags = mode
		o.off, o.n = g.span(sz, g.fallocLen())
	case opHSync:
		if g.pct(50) {
			o.flags = 1
		}
	case opClose:
	}
	return o
}

// rename draws plain renames, renames onto existing entries, NOREPLACE,
// EXCHANGE, directory moves between directories, and invalid moves of a
// directory into its own subtree.
func (g *gen) rename(o *op) {
	switch n := g.r.IntN(100); {
	case n < 35:
		o.path = g.path(anyType, 90)
		o.path2 = g.path(anyType, 50)
	case n < 50:
		o.path = g.path(anyType, 90)
		o.path2 = g.path(anyType, 40)
		o.flags = unix.RENAME_NOREPLACE
	case n < 65 && g.cfg.Features.RenameExchange:
		o.path = g.path(anyType, 95)
		o.path2 = g.path(anyType, 90)
		o.flags = unix.RENAME_EXCHANGE
	case n < 88:
		o.path = g.path(isDir, 95)
		o.path2 = join(g.randDir(), g.name())
	default:
		// Into its own subtree: EINVAL (or itself: a no-op).
		o.path = g.path(isDir, 100)
		dst := o.path
		for g.pct(60) {
			var dirs []string
			for _, e := range g.entries(dst) {
				if e.IsDir() {
					dirs = append(dirs, e.Name())
				}
			}
			if len(dirs) == 0 {
				break
			}
			dst = join(dst, dirs[g.r.IntN(len(dirs))])
		}
		o.path2 = join(dst, g.name())
		if g.pct(10) {
			o.path2 = o.path
		}
	}
}

// xattrPath picks a file or directory, where user xattrs are allowed (and
// sometimes anything else, where they are not).
func (g *gen) xattrPath() string {
	if g.pct(10) {
		return g.path(anyType, 90)
	}
	if g.pct(15) {
		return "."
	}
	return g.path(func(m fs.FileMode) bool { return m.IsRegular() || m.IsDir() }, 90)
}

// setxattr picks a name, flags and a value size that keeps the inode's
// xattrs within the budget ext4 can hold.
func (g *gen) setxattr(o *op) bool {
	o.path = g.xattrPath()
	o.name = g.xnames[g.r.IntN(len(g.xnames))]
	switch n := g.r.IntN(100); {
	case n < 20:
		o.flags = unix.XATTR_CREATE
	case n < 40:
		o.flags = unix.XATTR_REPLACE
	}
	xs := g.xattrs(o.path)
	used := 0
	for n, sz := range xs {
		if n != o.name {
			used += xattrEntrySize(n, sz)
		}
	}
	room := g.cfg.Features.XattrBudget - used - xattrEntrySize(o.name, 0)
	if room < 0 {
		return false
	}
	room = min(room, 4096)
	switch n := g.r.IntN(100); {
	case n < 10:
		o.n = 0
	case n < 60:
		o.n = g.r.Int64N(min(int64(room), 64) + 1)
	default:
		o.n = g.r.Int64N(int64(room) + 1)
	}
	return true
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
