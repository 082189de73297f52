package testutil

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Well-known paths inside a generated tree, relative to its root.
const (
	PathFiles      = "files"       // regular files, sizes 0 B .. TreeSpec.MaxFileSize
	PathSparse     = "sparse"      // sparse files with holes
	PathHugeSparse = "sparse/huge" // > 4 GiB apparent size, data past 4 GiB
	PathLinks      = "links"       // fast and slow symlinks
	PathSpecial    = "special"     // fifo, socket, char and block devices
	PathHard       = "hard"        // hardlinked files (hard/h<i>, hard/sub/h<i>.<j>)
	PathXattr      = "xattr"       // user.* and trusted.* xattrs, short and long
	PathACL        = "acl"         // POSIX ACLs, access and default
	PathBigDir     = "big"         // TreeSpec.BigDir entries
	PathDeep       = "deep"        // TreeSpec.Depth nested directories
	PathNames      = "names"       // 255-byte and non-ASCII UTF-8 names
	PathModes      = "modes"       // setuid, setgid, sticky, odd permissions
	PathTimes      = "times"       // edge-case timestamps (on fifos)
)

// HugeSparseSize is the apparent size of PathHugeSparse: past 4 GiB, so
// 32-bit size or block arithmetic shows up as wrong data.
const HugeSparseSize = 5<<30 + 12345

// TreeSpec chooses what GenTree creates. The zero value creates an empty
// tree; SmallTree and FullTree are the usual starting points.
type TreeSpec struct {
	Files         int   // regular files under files/, sizes 0 .. MaxFileSize
	MaxFileSize   int64 // largest regular file; interesting sizes above it are skipped
	SparseFiles   int   // sparse files under sparse/ (apparent sizes up to 8 MiB)
	HugeSparse    bool  // sparse/huge: HugeSparseSize apparent, data around and past 4 GiB
	Symlinks      int   // symlinks under links/, fast (< 60 bytes) and slow
	SymlinkMaxLen int   // longest symlink target; at most block size - 1 (1 KiB blocks: 1023)
	Specials      bool  // fifo, socket, char and block devices (devices need root)
	Hardlinks     int   // files under hard/ with 1..3 extra names each
	Xattrs        bool  // user.* short and long (spilling to an xattr block), trusted.* (root)
	ACLs          bool  // system.posix_acl_access/_default on files and dirs under acl/
	BigDir        int   // entries in big/ (50,000 makes a multi-level htree)
	BigDirNameLen int   // length of each big/ name (8..255; default 40)
	Depth         int   // levels of nesting under deep/
	OddNames      bool  // 255-byte names, non-ASCII UTF-8 names, spaces, leading dashes
	Modes         bool  // setuid/setgid/sticky and unusual permission bits under modes/
	Owners        bool  // chown to varied uid/gid, including ids above 65535 (root)
	Times         bool  // edge timestamps under times/: epoch, before 1970, exact seconds
	Post2038      bool  // also a timestamp past 2038 (mkfs.ext4 1.47.0 -d wraps it)
}

// SmallTree is a tree with every file type that builds and compares in well
// under a second: use it for most tests.
func SmallTree() TreeSpec {
	return TreeSpec{
		Files:         24,
		MaxFileSize:   256 << 10,
		SparseFiles:   4,
		Symlinks:      10,
		SymlinkMaxLen: 1000,
		Specials:      true,
		Hardlinks:     2,
		Xattrs:        true,
		ACLs:          true,
		BigDir:        300,
		BigDirNameLen: 20,
		Depth:         8,
		OddNames:      true,
		Modes:         true,
		Owners:        true,
		Times:         true,
	}
}

// FullTree is the full tree: files up to several MiB, a sparse file
// past 4 GiB, 4000-byte symlinks, a 50,000-entry directory (a multi-level
// htree with 4 KiB blocks when built by the kernel; see MkfsCopy) and 40
// levels of nesting. It takes seconds to generate; building it with
// MkfsD is slow because mkfs.ext4 -d inserts directory entries linearly.
func FullTree() TreeSpec {
	s := SmallTree()
	s.Files = 120
	s.MaxFileSize = 6 << 20
	s.SparseFiles = 8
	s.HugeSparse = true
	s.Symlinks = 40
	s.SymlinkMaxLen = 4000
	s.Hardlinks = 6
	s.BigDir = 50000
	s.BigDirNameLen = 40
	s.Depth = 40
	return s
}

// ForBlockSize returns a copy of s adjusted to what a filesystem with that
// block size can hold: ext4 symlink targets must fit in one block.
func (s TreeSpec) ForBlockSize(bs int) TreeSpec {
	if bs > 0 && s.SymlinkMaxLen > bs-1 {
		s.SymlinkMaxLen = bs - 1
	}
	return s
}

// NeedsRoot reports whether generating s needs root: device nodes,
// ownership changes and trusted.* xattrs do.
func (s TreeSpec) NeedsRoot() bool {
	return s.Specials || s.Owners || s.Xattrs
}

// Tree describes what GenTree created.
type Tree struct {
	Root      string
	Inodes    int   // distinct inodes, including the root directory
	Names     int   // directory entries (hardlinks count once per name)
	DataBytes int64 // bytes of data written (holes excluded)
	MaxLink   int   // longest symlink target created
	// TrailingHoles lists files whose size extends past their last data
	// byte: mkfs.ext4 -d 1.47.0 with inline_data cuts them short.
	TrailingHoles []string
}

// MkfsDIgnores returns, for CompareOptions.IgnoreFieldsFor, the fields
// mkfs.ext4 -d (1.47.0) does not preserve for particular paths of this
// tree in variant v: with inline_data, files ending in a hole lose the
// hole (size and content differ).
func (tr *Tree) MkfsDIgnores(v Variant) func(rel string) Field {
	lost := map[string]Field{}
	if v.HasFeature("inline_data") {
		for _, p := range tr.TrailingHoles {
			lost[p] = FieldSize | FieldContent | FieldBlocks
		}
	}
	return func(rel string) Field { return lost[rel] }
}

// GenTree fills dir (which must exist, and should be empty) with a tree
// described by spec. The same spec and seed always produce the same names,
// contents, modes, owners, xattrs and timestamps (ctime aside, which no
// syscall sets). POSIX ACLs need dir's filesystem to support them; see
// ACLSupported.
func GenTree(dir string, spec TreeSpec, seed int64) (*Tree, error) {
	if spec.NeedsRoot() && os.Geteuid() != 0 {
		return nil, errors.New("gentree: spec needs root (devices, owners or trusted.* xattrs)")
	}
	if spec.ACLs && !ACLSupported(dir) {
		return nil, fmt.Errorf("gentree: filesystem of %s does not support POSIX ACLs", dir)
	}
	if spec.BigDirNameLen == 0 {
		spec.BigDirNameLen = 40
	}
	if spec.BigDirNameLen < 8 || spec.BigDirNameLen > 255 {
		return nil, fmt.Errorf("gentree: BigDirNameLen %d outside 8..255", spec.BigDirNameLen)
	}
	var cseed [32]byte
	for i := range cseed {
		cseed[i] = byte(seed >> (8 * (i % 8)))
	}
	cseed[31] ^= 0xe4
	g := &gen{
		root:    dir,
		spec:    spec,
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		content: rand.NewChaCha8(cseed),
		tree:    &Tree{Root: dir, Inodes: 1},
	}
	if err := g.run(); err != nil {
		return nil, fmt.Errorf("gentree: %w", err)
	}
	return g.tree, nil
}

// ACLSupported reports whether dir's filesystem accepts POSIX ACL xattrs
// (tmpfs without CONFIG_TMPFS_POSIX_ACL does not).
func ACLSupported(dir string) bool {
	f, err := os.CreateTemp(dir, ".aclprobe")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	acl := EncodeACL([]ACLEntry{{Tag: ACLUserObj, Perm: 6}, {Tag: ACLGroupObj, Perm: 4}, {Tag: ACLOther, Perm: 4}})
	return unix.Setxattr(name, XattrACLAccess, acl, 0) == nil
}

type gen struct {
	root    string
	spec    TreeSpec
	rng     *rand.Rand
	content *rand.ChaCha8
	tree    *Tree
	dirs    []string // relative paths of created directories, parents first
	buf     []byte
}

// p returns the absolute path of rel.
func (g *gen) p(rel string) string { return filepath.Join(g.root, rel) }

func (g *gen) run() error {
	steps := []struct {
		on bool
		fn func() error
	}{
		{g.spec.Files > 0, g.files},
		{g.spec.SparseFiles > 0 || g.spec.HugeSparse, g.sparse},
		{g.spec.Symlinks > 0, g.symlinks},
		{g.spec.Specials, g.specials},
		{g.spec.Hardlinks > 0, g.hardlinks},
		{g.spec.Xattrs, g.xattrs},
		{g.spec.ACLs, g.acls},
		{g.spec.BigDir > 0, g.bigDir},
		{g.spec.Depth > 0, g.deep},
		{g.spec.OddNames, g.oddNames},
		{g.spec.Modes, g.modes},
		{g.spec.Times, g.times},
	}
	for _, s := range steps {
		if s.on {
			if err := s.fn(); err != nil {
				return err
			}
		}
	}
	return g.finishDirs()
}

// randTime returns a timestamp between 2001 and 2036 with random
// nanoseconds: inside what every ext4 variant and mkfs -d represent.
func (g *gen) randTime() unix.Timespec {
	return unix.Timespec{Sec: 1_000_000_000 + g.rng.Int64N(1_100_000_000), Nsec: g.rng.Int64N(1e9)}
}

// atime2037 is 2037-01-01T00:00:00Z.
const atime2037 = 2_114_380_800

// randAtime returns an access time in 2037 (still in int32 range). On a
// relatime mount the kernel moves atime on reads when it is older than
// mtime, ctime or a day; a future atime stays put, so reading the tree
// (mkfs -d, Snapshot, readlink) leaves it unchanged and the tree and the
// images built from it stay reproducible.
func (g *gen) randAtime() unix.Timespec {
	return unix.Timespec{Sec: atime2037 + g.rng.Int64N(31_000_000), Nsec: g.rng.Int64N(1e9)}
}

// owner picks a uid/gid pair, including ids past 16 and 31 bits.
func (g *gen) owner() (int, int) {
	ids := []int{0, 1, 1000, 65534, 65535, 70000, 100000, 3_000_000_000}
	return ids[g.rng.IntN(len(ids))], ids[g.rng.IntN(len(ids))]
}

// finish sets owner, mode and times of a non-directory after its content
// and xattrs; for a symlink mode is ignored.
func (g *gen) finish(rel string, mode uint32, symlink bool) error {
	p := g.p(rel)
	if g.spec.Owners {
		uid, gid := g.owner()
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{g.randAtime(), g.randTime()}
	if !symlink {
		// After chown, which clears setuid/setgid.
		if err := unix.Chmod(p, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat %s: %w", rel, err)
	}
	return nil
}

// mkdir creates a directory; its owner, mode and times are set by
// finishDirs once nothing more is added to it.
func (g *gen) mkdir(rel string) error {
	if err := os.Mkdir(g.p(rel), 0o755); err != nil {
		return err
	}
	g.dirs = append(g.dirs, rel)
	g.tree.Inodes++
	g.tree.Names++
	return nil
}

// finishDirs sets directory metadata children first, so that adding an
// entry does not overwrite a parent's mtime afterwards.
func (g *gen) finishDirs() error {
	modes := []uint32{0o755, 0o750, 0o700, 0o775, 0o711}
	for i := len(g.dirs) - 1; i >= 0; i-- {
		rel := g.dirs[i]
		mode := modes[g.rng.IntN(len(modes))]
		if strings.HasPrefix(rel, PathModes+"/") {
			mode = dirModes[filepath.Base(rel)]
		}
		if rel == PathDeep || strings.HasPrefix(rel, PathDeep+"/") {
			mode = 0o755 // keep the chain walkable by any uid
		}
		if err := g.finish(rel, mode, false); err != nil {
			return err
		}
	}
	if err := unix.Chmod(g.root, 0o755); err != nil {
		return err
	}
	root := []unix.Timespec{{Sec: atime2037, Nsec: 123_456_789}, {Sec: 1_234_567_890, Nsec: 987_654_321}}
	return unix.UtimesNanoAt(unix.AT_FDCWD, g.root, root, 0)
}

// fill writes n bytes of seeded random content at off.
func (g *gen) fill(f *os.File, off, n int64) error {
	if g.buf == nil {
		g.buf = make([]byte, 1<<20)
	}
	for n > 0 {
		c := min(n, int64(len(g.buf)))
		b := g.buf[:c]
		g.content.Read(b)
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += c
		n -= c
		g.tree.DataBytes += c
	}
	return nil
}

// writeFile creates rel with size bytes of random content.
func (g *gen) writeFile(rel string, size int64) error {
	f, err := os.OpenFile(g.p(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = g.fill(f, 0, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	g.tree.Inodes++
	g.tree.Names++
	return err
}

// interestingSizes are boundaries of inline data, fast symlinks, blocks
// and extents; random sizes follow them.
var interestingSizes = []int64{
	0, 1, 59, 60, 61, 100, 128, 150, 160, 511, 512, 1023, 1024, 1025,
	4095, 4096, 4097, 8191, 8192, 65535, 65536, 65537, 1 << 20, 1<<20 + 1, 3<<20 + 123,
}

func (g *gen) files() error {
	if err := g.mkdir(PathFiles); err != nil {
		return err
	}
	var sizes []int64
	for _, s := range interestingSizes {
		if s <= g.spec.MaxFileSize {
			sizes = append(sizes, s)
		}
	}
	for i := 0; i < g.spec.Files; i++ {
		var size int64
		if i < len(sizes) {
			size = sizes[i]
		} else {
			// Log-uniform: many small files, a few big ones.
			size = int64(math.Exp(g.rng.Float64() * math.Log(float64(g.spec.MaxFileSize+1))))
			size = min(size, g.spec.MaxFileSize)
		}
		rel := fmt.Sprintf("%s/f%03d", PathFiles, i)
		if err := g.writeFile(rel, size); err != nil {
			return err
		}
		if g.spec.Xattrs && i%7 == 3 {
			v := make([]byte, 1+g.rng.IntN(40))
			g.content.Read(v)
			if err := unix.Setxattr(g.p(rel), "user.gen", v, 0); err != nil {
				return fmt.Errorf("setxattr %s: %w", rel, err)
			}
		}
		modes := []uint32{0o644, 0o600, 0o755, 0o640, 0o444}
		if err := g.finish(rel, modes[g.rng.IntN(len(modes))], false); err != nil {
			return err
		}
	}
	return nil
}

// sparseRegion is a data region of a sparse file.
type sparseRegion struct{ off, n int64 }

func (g *gen) sparse() error {
	if err := g.mkdir(PathSparse); err != nil {
		return err
	}
	// Fixed shapes first (hole at start, hole at end, all hole, unaligned
	// bits), then random ones.
	shapes := []struct {
		size int64
		data []sparseRegion
	}{
		{1 << 20, []sparseRegion{{512 << 10, 4096}}},           // holes both sides
		{3 << 20, []sparseRegion{{0, 8192}}},                   // trailing hole
		{2 << 20, nil},                                         // all hole
		{1<<20 + 3, []sparseRegion{{4095, 3}, {1<<20 + 1, 2}}}, // unaligned, ends in data
		{8 << 20, []sparseRegion{{0, 1}, {4 << 20, 300 << 10}, {8<<20 - 4096, 4096}}},
	}
	for i := 0; i < g.spec.SparseFiles; i++ {
		size, data := int64(0), []sparseRegion(nil)
		if i < len(shapes) {
			size, data = shapes[i].size, shapes[i].data
		} else {
			size = 1 + g.rng.Int64N(8<<20)
			for range 1 + g.rng.IntN(5) {
				off := g.rng.Int64N(size)
				data = append(data, sparseRegion{off, min(1+g.rng.Int64N(128<<10), size-off)})
			}
		}
		if err := g.sparseFile(fmt.Sprintf("%s/s%02d", PathSparse, i), size, data); err != nil {
			return err
		}
	}
	if g.spec.HugeSparse {
		data := []sparseRegion{
			{0, 64 << 10},
			{1<<30 + 1, 4096},
			{4<<30 - 50, 100}, // straddles 4 GiB
			{4<<30 + 1<<20 + 17, 8192},
			{HugeSparseSize - 10, 10}, // ends in data
		}
		if err := g.sparseFile(PathHugeSparse, HugeSparseSize, data); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) sparseFile(rel string, size int64, data []sparseRegion) error {
	f, err := os.OpenFile(g.p(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	for _, r := range data {
		if err == nil {
			err = g.fill(f, r.off, r.n)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	g.tree.Inodes++
	g.tree.Names++
	if len(data) == 0 || data[len(data)-1].off+data[len(data)-1].n < size {
		g.tree.TrailingHoles = append(g.tree.TrailingHoles, rel)
	}
	return g.finish(rel, 0o644, false)
}

// pathOfLen returns a plausible relative path of exactly n bytes.
func (g *gen) pathOfLen(n int) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789_."
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[g.rng.IntN(len(alpha))]
		if i > 0 && i < n-1 && b[i-1] != '/' && g.rng.IntN(12) == 0 {
			b[i] = '/'
		}
	}
	return string(b)
}

func (g *gen) symlinks() error {
	if err := g.mkdir(PathLinks); err != nil {
		return err
	}
	// Fast symlinks hold up to 59 bytes in the inode; 60 and up use a block.
	lens := []int{1, 10, 59, 60, 61, 200, 1000, g.spec.SymlinkMaxLen}
	targets := []string{"../files/f000", "../" + PathSparse, "/etc/passwd", "dangling/nowhere", "."}
	for i := 0; i < g.spec.Symlinks; i++ {
		var target string
		switch {
		case i < len(targets):
			target = targets[i]
		case i-len(targets) < len(lens):
			target = g.pathOfLen(lens[i-len(targets)])
		default:
			target = g.pathOfLen(1 + g.rng.IntN(max(g.spec.SymlinkMaxLen, 1)))
		}
		if len(target) > g.spec.SymlinkMaxLen && g.spec.SymlinkMaxLen > 0 {
			target = target[:g.spec.SymlinkMaxLen]
		}
		if target == "" {
			continue
		}
		rel := fmt.Sprintf("%s/l%02d", PathLinks, i)
		if err := os.Symlink(target, g.p(rel)); err != nil {
			return fmt.Errorf("symlink %s (%d bytes): %w", rel, len(target), err)
		}
		g.tree.Inodes++
		g.tree.Names++
		g.tree.MaxLink = max(g.tree.MaxLink, len(target))
		if err := g.finish(rel, 0, true); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) specials() error {
	if err := g.mkdir(PathSpecial); err != nil {
		return err
	}
	nodes := []struct {
		name     string
		mode     uint32
		maj, min uint32
	}{
		{"fifo", unix.S_IFIFO | 0o640, 0, 0},
		{"chr", unix.S_IFCHR | 0o620, 42, 7},          // old 16-bit encoding fits
		{"chr-big", unix.S_IFCHR | 0o600, 300, 70000}, // needs the new encoding
		{"blk", unix.S_IFBLK | 0o660, 7, 200},
		{"blk-max", unix.S_IFBLK | 0o600, 4095, 1048575},
	}
	for _, n := range nodes {
		rel := PathSpecial + "/" + n.name
		if err := unix.Mknod(g.p(rel), n.mode, int(unix.Mkdev(n.maj, n.min))); err != nil {
			return fmt.Errorf("mknod %s: %w", rel, err)
		}
		g.tree.Inodes++
		g.tree.Names++
		if err := g.finish(rel, n.mode&0o7777, false); err != nil {
			return err
		}
	}
	rel := PathSpecial + "/sock"
	if err := makeSocket(g.p(rel)); err != nil {
		return fmt.Errorf("socket %s: %w", rel, err)
	}
	g.tree.Inodes++
	g.tree.Names++
	return g.finish(rel, 0o755, false)
}

// makeSocket leaves a unix socket file at path: bound, then closed. A path
// too long for sockaddr_un gets the same inode type from mknod.
func makeSocket(path string) error {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return unix.Mknod(path, unix.S_IFSOCK|0o755, 0)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrUnix{Name: path})
}

func (g *gen) hardlinks() error {
	if err := g.mkdir(PathHard); err != nil {
		return err
	}
	if err := g.mkdir(PathHard + "/sub"); err != nil {
		return err
	}
	for i := 0; i < g.spec.Hardlinks; i++ {
		rel := fmt.Sprintf("%s/h%d", PathHard, i)
		if err := g.writeFile(rel, int64(g.rng.IntN(20000))); err != nil {
			return err
		}
		if err := g.finish(rel, 0o644, false); err != nil {
			return err
		}
		for j := range 1 + i%3 {
			link := fmt.Sprintf("%s/sub/h%d.%d", PathHard, i, j)
			if err := os.Link(g.p(rel), g.p(link)); err != nil {
				return err
			}
			g.tree.Names++
		}
	}
	return nil
}

func (g *gen) setx(rel, name string, n int) error {
	v := make([]byte, n)
	g.content.Read(v)
	if err := unix.Lsetxattr(g.p(rel), name, v, 0); err != nil {
		return fmt.Errorf("setxattr %s %s: %w", rel, name, err)
	}
	return nil
}

func (g *gen) xattrs() error {
	if err := g.mkdir(PathXattr); err != nil {
		return err
	}
	// Sizes keep every inode's xattrs within one 1 KiB block, so the tree
	// fits all variants: in-inode space is ~100 bytes with 256-byte inodes.
	sets := []struct {
		name  string
		attrs map[string]int
	}{
		{"short", map[string]int{"user.a": 3, "user.b": 10}},
		{"empty", map[string]int{"user.empty": 0}},
		{"many", map[string]int{"user.m0": 20, "user.m1": 20, "user.m2": 20, "user.m3": 20, "user.m4": 20,
			"user.m5": 20, "user.m6": 20, "user.m7": 20, "user.m8": 20, "user.m9": 20}},
		{"long", map[string]int{"user.long": 700}},
		{"trusted", map[string]int{"trusted.t1": 16, "trusted.overlay.opaque": 1, "user.u": 5}},
		{"longname", map[string]int{"user." + strings.Repeat("n", 200): 8}},
	}
	for _, s := range sets {
		rel := PathXattr + "/" + s.name
		if err := g.writeFile(rel, int64(g.rng.IntN(3000))); err != nil {
			return err
		}
		// Sorted so content is drawn in a fixed order (map order is random).
		for _, k := range sortedKeys(s.attrs) {
			if err := g.setx(rel, k, s.attrs[k]); err != nil {
				return err
			}
		}
		if err := g.finish(rel, 0o644, false); err != nil {
			return err
		}
	}
	dir := PathXattr + "/dir"
	if err := g.mkdir(dir); err != nil {
		return err
	}
	if err := g.setx(dir, "user.dir", 33); err != nil {
		return err
	}
	// user.* is not allowed on symlinks; trusted.* is.
	link := PathXattr + "/link"
	if err := os.Symlink("short", g.p(link)); err != nil {
		return err
	}
	g.tree.Inodes++
	g.tree.Names++
	if err := g.setx(link, "trusted.link", 12); err != nil {
		return err
	}
	return g.finish(link, 0, true)
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (g *gen) acls() error {
	if err := g.mkdir(PathACL); err != nil {
		return err
	}
	access := EncodeACL([]ACLEntry{
		{Tag: ACLUserObj, Perm: 6}, {Tag: ACLUser, Perm: 4, ID: 1001}, {Tag: ACLUser, Perm: 7, ID: 100000},
		{Tag: ACLGroupObj, Perm: 4}, {Tag: ACLGroup, Perm: 6, ID: 2002},
		{Tag: ACLMask, Perm: 6}, {Tag: ACLOther, Perm: 0},
	})
	dflt := EncodeACL([]ACLEntry{
		{Tag: ACLUserObj, Perm: 7}, {Tag: ACLUser, Perm: 5, ID: 1001},
		{Tag: ACLGroupObj, Perm: 5}, {Tag: ACLMask, Perm: 5}, {Tag: ACLOther, Perm: 1},
	})
	minimal := EncodeACL([]ACLEntry{{Tag: ACLUserObj, Perm: 7}, {Tag: ACLGroupObj, Perm: 5}, {Tag: ACLOther, Perm: 5}})

	file := PathACL + "/file"
	if err := g.writeFile(file, 100); err != nil {
		return err
	}
	// Mode first: chmod rewrites the ACL's mask and base entries.
	if err := g.finish(file, 0o640, false); err != nil {
		return err
	}
	if err := unix.Setxattr(g.p(file), XattrACLAccess, access, 0); err != nil {
		return fmt.Errorf("set access acl: %w", err)
	}
	for _, d := range []struct {
		rel          string
		access, dflt []byte
	}{
		{PathACL + "/both", access, dflt},
		{PathACL + "/default", nil, dflt},
		{PathACL + "/minimal-default", nil, minimal},
	} {
		if err := g.mkdir(d.rel); err != nil {
			return err
		}
		if d.access != nil {
			if err := unix.Setxattr(g.p(d.rel), XattrACLAccess, d.access, 0); err != nil {
				return fmt.Errorf("set access acl %s: %w", d.rel, err)
			}
		}
		if err := unix.Setxattr(g.p(d.rel), XattrACLDefault, d.dflt, 0); err != nil {
			return fmt.Errorf("set default acl %s: %w", d.rel, err)
		}
	}
	// Created under a default ACL: the kernel gives it an inherited access
	// ACL. No chmod afterwards so the inherited one is kept as is.
	inh := PathACL + "/both/inherited"
	if err := g.writeFile(inh, 10); err != nil {
		return err
	}
	ts := []unix.Timespec{g.randAtime(), g.randTime()}
	return unix.UtimesNanoAt(unix.AT_FDCWD, g.p(inh), ts, 0)
}

// bigName returns entry i's name in big/, exactly BigDirNameLen bytes.
func (g *gen) bigName(i int) string {
	s := fmt.Sprintf("e%d-", i)
	return s + strings.Repeat("x", g.spec.BigDirNameLen-len(s))
}

func (g *gen) bigDir() error {
	if err := g.mkdir(PathBigDir); err != nil {
		return err
	}
	// Mostly empty files (cheap), with some dirs and symlinks so readdir
	// reports mixed d_type values. Times are derived, not drawn, to keep
	// 50,000 entries fast.
	base, abase := g.randTime(), g.randAtime()
	for i := 0; i < g.spec.BigDir; i++ {
		rel := PathBigDir + "/" + g.bigName(i)
		p := g.p(rel)
		var err error
		switch i % 50 {
		case 0:
			if err = os.Mkdir(p, 0o755); err == nil {
				err = unix.Chmod(p, 0o755)
			}
		case 1:
			err = os.Symlink("x", p)
		default:
			var fd int
			fd, err = unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err == nil {
				// Explicit mode: the creation mode is subject to umask.
				err = unix.Fchmod(fd, 0o644)
				if cerr := unix.Close(fd); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			return err
		}
		g.tree.Inodes++
		g.tree.Names++
		ts := []unix.Timespec{{Sec: abase.Sec, Nsec: int64(i)}, {Sec: base.Sec + int64(i), Nsec: int64(i * 7919 % 1e9)}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) deep() error {
	rel := PathDeep
	if err := g.mkdir(rel); err != nil {
		return err
	}
	for i := 1; i < g.spec.Depth; i++ {
		rel = fmt.Sprintf("%s/d%02d", rel, i)
		if err := g.mkdir(rel); err != nil {
			return err
		}
	}
	leaf := rel + "/leaf"
	if err := g.writeFile(leaf, 42); err != nil {
		return err
	}
	return g.finish(leaf, 0o644, false)
}

// OddNames lists the names created under names/ (besides the 255-byte
// directory holding "inside"). Distinct NFC and NFD spellings of é are
// different names to ext4, which does no normalisation without casefold.
var OddNames = []string{
	strings.Repeat("L", 255),
	strings.Repeat("é", 127) + "x", // 255 bytes of two-byte runes
	strings.Repeat("日", 85),        // 255 bytes of three-byte runes
	"日本語のファイル名",
	"emoji-😀-🎉",
	"caf\u00e9", "cafe\u0301",
	"with space", " leading-space", "-leading-dash", "back\\slash", "new\nline", "tab\tname",
	".hidden", "...", "a:b;c", "x",
}

func (g *gen) oddNames() error {
	if err := g.mkdir(PathNames); err != nil {
		return err
	}
	for i, name := range OddNames {
		rel := PathNames + "/" + name
		if err := g.writeFile(rel, int64(i)); err != nil {
			return fmt.Errorf("odd name %q: %w", name, err)
		}
		if err := g.finish(rel, 0o644, false); err != nil {
			return err
		}
	}
	dir := PathNames + "/" + strings.Repeat("D", 255)
	if err := g.mkdir(dir); err != nil {
		return err
	}
	in := dir + "/inside"
	if err := g.writeFile(in, 5); err != nil {
		return err
	}
	return g.finish(in, 0o600, false)
}

// fileModes and dirModes are the permission sets under modes/.
var (
	fileModes = map[string]uint32{
		"setuid": 0o4755, "setgid": 0o2755, "setuid-setgid": 0o6711, "sticky-file": 0o1644,
		"none": 0o000, "write-only": 0o222, "exec-only": 0o111, "all": 0o777, "group-noexec-setgid": 0o2644,
	}
	dirModes = map[string]uint32{"sticky-dir": 0o1777, "closed-dir": 0o000, "setgid-dir": 0o2775}
)

func (g *gen) modes() error {
	if err := g.mkdir(PathModes); err != nil {
		return err
	}
	for _, name := range sortedKeys(toInt(fileModes)) {
		rel := PathModes + "/" + name
		if err := g.writeFile(rel, 10); err != nil {
			return err
		}
		if err := g.finish(rel, fileModes[name], false); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(toInt(dirModes)) {
		if err := g.mkdir(PathModes + "/" + name); err != nil {
			return err
		}
	}
	return nil
}

func toInt(m map[string]uint32) map[string]int {
	r := make(map[string]int, len(m))
	for k, v := range m {
		r[k] = int(v)
	}
	return r
}

// timespec converts t without going through UnixNano, which overflows
// past 2262.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func (g *gen) times() error {
	if err := g.mkdir(PathTimes); err != nil {
		return err
	}
	set := []struct {
		name       string
		atime, mtm time.Time
	}{
		{"epoch", time.Unix(0, 0), time.Unix(0, 0)},
		{"before-1970", time.Date(1960, 1, 2, 3, 4, 5, 600_000_000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
		{"whole-seconds", time.Unix(1_500_000_000, 0), time.Unix(1_600_000_000, 0)},
		{"max-nsec", time.Unix(1_700_000_000, 999_999_999), time.Unix(1_700_000_001, 1)},
		{"int32-max", time.Unix(math.MaxInt32, 0), time.Unix(math.MaxInt32, 0)},
	}
	if g.spec.Post2038 {
		set = append(set, struct {
			name       string
			atime, mtm time.Time
		}{"post-2038", time.Date(2100, 6, 7, 8, 9, 10, 123_456_789, time.UTC), time.Date(2400, 1, 1, 0, 0, 0, 1, time.UTC)})
	}
	for _, s := range set {
		// Fifos: nothing opens them to read, so no reader moves their
		// deliberately old atimes (see randAtime).
		rel := PathTimes + "/" + s.name
		if err := unix.Mkfifo(g.p(rel), 0o644); err != nil {
			return err
		}
		g.tree.Inodes++
		g.tree.Names++
		if err := unix.Chmod(g.p(rel), 0o644); err != nil {
			return err
		}
		ts := []unix.Timespec{timespec(s.atime), timespec(s.mtm)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, g.p(rel), ts, 0); err != nil {
			return fmt.Errorf("utimensat %s: %w", rel, err)
		}
	}
	return nil
}
