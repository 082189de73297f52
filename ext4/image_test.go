package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
)

// Test images are built at test time: a deterministic tree is generated in
// a temporary directory, turned into an image with mkfs.ext4 -d, its large
// directories indexed with e2fsck -D, and the image is then compared with
// the kernel's own view of it through a read-only loop mount.

// skipOrFail skips a test whose requirement is missing, except in CI where
// a missing requirement is a failure.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func requireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not installed")
		}
	}
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root for loop mounts")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// treeSpec records what the generator put in the tree, for targeted checks.
type treeSpec struct {
	bigDir   string   // a directory with enough entries for an htree
	bigNames []string // its entries
	frag     string   // a file fragmented into many extents
}

const bigDirEntries = 3000

// writeAt writes data at off in path, creating it.
func writeAt(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// buildTree generates the source tree under dir with a fixed seed.
func buildTree(t testing.TB, dir string) treeSpec {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	p := func(name string) string { return filepath.Join(dir, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{0, 10, 59, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097, 65536 + 17, 300_000} {
		must(os.WriteFile(p(fmt.Sprintf("f%d", n)), randBytes(r, n), 0o644))
	}
	// Sparse files: data, holes, data at the end; a trailing hole; a file
	// larger than 4 GiB.
	truncate := func(name string, size int64) {
		f, err := os.Create(p(name))
		must(err)
		must(f.Truncate(size))
		must(f.Close())
	}
	truncate("sparse", 10<<20)
	writeAt(t, p("sparse"), 0, randBytes(r, 8192))
	writeAt(t, p("sparse"), 3<<20+100, randBytes(r, 4096))
	writeAt(t, p("sparse"), 10<<20-5000, randBytes(r, 5000))
	truncate("sparse_tail", 3<<20)
	writeAt(t, p("sparse_tail"), 1<<20, randBytes(r, 100))
	truncate("huge", 5<<30)
	writeAt(t, p("huge"), 1000, randBytes(r, 100))
	writeAt(t, p("huge"), 4<<30+12345, randBytes(r, 70000))
	// A file of many small extents: an extent tree of depth >= 1.
	frag := p("frag")
	for i := range 120 {
		writeAt(t, frag, int64(i)*16384, randBytes(r, 4096))
	}
	// Symlinks: fast (< 60 bytes), slow, and long.
	must(os.Symlink("f10", p("sl_short")))
	must(os.Symlink(strings.Repeat("abcdefghij/", 20), p("sl_long")))
	must(os.Symlink(strings.Repeat("x", 1000), p("sl_1000")))
	// Directories.
	must(os.MkdirAll(p("dir/sub/deep"), 0o755))
	must(os.WriteFile(p("dir/sub/deep/leaf"), []byte("leaf\n"), 0o600))
	must(os.Mkdir(p("empty_dir"), 0o700))
	for i := range 5 {
		must(os.WriteFile(p(fmt.Sprintf("dir/small%d", i)), randBytes(r, 30+i), 0o640))
	}
	spec := treeSpec{bigDir: "big", frag: "frag"}
	must(os.Mkdir(p("big"), 0o755))
	for i := range bigDirEntries {
		name := fmt.Sprintf("entry-%05d-%s", i, strings.Repeat("n", r.IntN(40)))
		if i%10 == 0 {
			name += "-\xe9\xff\x80" // high-bit bytes: signed and unsigned hashes differ
		}
		spec.bigNames = append(spec.bigNames, name)
		must(os.WriteFile(p("big/"+name), nil, 0o644))
	}
	// Special files, ownership, a hard link, times.
	must(unix.Mkfifo(p("fifo"), 0o644))
	must(unix.Mknod(p("chr"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 7))))
	must(unix.Mknod(p("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(259, 300))))
	must(os.Lchown(p("f10"), 1234, 5678))
	must(os.Link(p("f4096"), p("hardlink")))
	// Extended attributes: small ones stay in the inode, a large one goes
	// to the xattr block; ACLs in the kernel's xattr format.
	setx := func(path, name string, v []byte) {
		if err := unix.Lsetxattr(p(path), name, v, 0); err != nil {
			t.Skipf("source filesystem lacks xattr support: %v", err)
		}
	}
	setx("f10", "user.small", []byte("v"))
	setx("f10", "user.big", randBytes(r, 900))
	setx("dir", "user.dirattr", []byte("on a directory"))
	setx("f1024", "trusted.t", []byte("trusted value"))
	setx("f300000", "system.posix_acl_access", xattrACL(
		[4]uint16{1, 6}, [4]uint16{2, 5, 1000}, [4]uint16{4, 4}, [4]uint16{8, 4, 2000}, [4]uint16{0x10, 5}, [4]uint16{0x20, 0}))
	setx("dir", "system.posix_acl_default", xattrACL(
		[4]uint16{1, 7}, [4]uint16{4, 5}, [4]uint16{0x20, 5}))
	return spec
}

// xattrACL encodes ACL entries {tag, perm, id} in the kernel xattr format.
func xattrACL(es ...[4]uint16) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e[0])
		b = binary.LittleEndian.AppendUint16(b, e[1])
		id := uint32(e[2])
		if e[0] != 2 && e[0] != 8 {
			id = 0xFFFFFFFF
		}
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// variant is one way of making an image.
type variant struct {
	name    string
	mkfs    []string // extra mke2fs arguments
	ssv     []string // debugfs "ssv" settings applied before e2fsck -D
	noMount bool     // the kernel cannot mount it here: compare with the source tree
	// bigXattr, if set, is added with debugfs after mkfs: a value too large
	// for an xattr block, which ea_inode stores in an inode of its own.
	bigXattr bool
}

var variants = []variant{
	{name: "ext4", mkfs: []string{"-t", "ext4", "-b", "4096"}},
	{name: "ext4-1k-tea", mkfs: []string{"-t", "ext4", "-b", "1024"}, ssv: []string{"def_hash_version tea"}},
	{name: "ext4-2k", mkfs: []string{"-t", "ext4", "-b", "2048"}},
	{name: "ext4-nocsum", mkfs: []string{"-t", "ext4", "-O", "^metadata_csum,uninit_bg"}},
	{name: "ext4-inline", mkfs: []string{"-t", "ext4", "-O", "inline_data", "-I", "256"}},
	{name: "ext4-no64", mkfs: []string{"-t", "ext4", "-O", "^64bit"}},
	{name: "ext4-metabg", mkfs: []string{"-t", "ext4", "-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"}},
	{name: "ext4-noextent", mkfs: []string{"-t", "ext4", "-O", "^extent,^64bit"}},
	{name: "ext3-legacy", mkfs: []string{"-t", "ext3"}, ssv: []string{"def_hash_version legacy"}},
	// Hashes of names with high-bit bytes differ when chars are unsigned.
	{name: "ext4-unsigned", mkfs: []string{"-t", "ext4"}, ssv: []string{"flags 2"}},
	{name: "ext2", mkfs: []string{"-t", "ext2"}},
	// Linux (6.18, 4 KiB pages) cannot mount 64 KiB blocks.
	{name: "ext4-64k", mkfs: []string{"-t", "ext4", "-b", "65536"}, noMount: true},
	{name: "ext4-eainode", mkfs: []string{"-t", "ext4", "-O", "ea_inode"}, bigXattr: true},
}

// imageCache builds each variant's image once per test binary run.
var imageCache struct {
	sync.Mutex
	dir   string
	src   string
	spec  treeSpec
	built map[string]string
	bytes map[string][]byte // image contents by variant, see imageBytes
}

// image returns the path of variant v's image (read-only use) and the
// source tree it was built from.
func image(t *testing.T, v variant) (img, src string, spec treeSpec) {
	t.Helper()
	requireTools(t)
	c := &imageCache
	c.Lock()
	defer c.Unlock()
	if c.built == nil {
		d, err := os.MkdirTemp("", "e4box-ext4-test-")
		if err != nil {
			t.Fatal(err)
		}
		c.dir, c.src, c.built = d, filepath.Join(d, "src"), map[string]string{}
		if err := os.Mkdir(c.src, 0o755); err != nil {
			t.Fatal(err)
		}
		c.spec = buildTree(t, c.src)
	}
	if p, ok := c.built[v.name]; ok {
		return p, c.src, c.spec
	}
	img = filepath.Join(c.dir, v.name+".img")
	args := append([]string{"-q", "-F", "-E", "lazy_itable_init=0,root_owner=0:0", "-d", c.src}, v.mkfs...)
	args = append(args, img, "256M")
	cmd := exec.Command("mkfs.ext4", args...)
	cmd.Env = append(os.Environ(), "MKE2FS_DEVICE_SECTSIZE=512", "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %v: %v\n%s", args, err, out)
	}
	if v.bigXattr {
		val := filepath.Join(c.dir, "bigxattr")
		r := rand.New(rand.NewPCG(9, 9))
		if err := os.WriteFile(val, randBytes(r, 8000), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "debugfs", "-w", "-R", "ea_set -f "+val+" /f4096 user.huge", img)
	}
	for _, kv := range v.ssv {
		run(t, "debugfs", "-w", "-R", "ssv "+kv, img)
	}
	// -D indexes every directory big enough for an htree; exit code 1
	// means "fixed" (the optimisation), which is expected.
	if out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -fyD %s: %v\n%s", img, err, out)
		}
	}
	run(t, "e2fsck", "-fn", img)
	c.built[v.name] = img
	return img, c.src, c.spec
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imageCache.dir != "" {
		os.RemoveAll(imageCache.dir)
	}
	os.Exit(code)
}

// openImage opens img read-only through the library.
func openImage(t testing.TB, img string, opts Options) *FS {
	t.Helper()
	dev, err := blockdev.Open(img, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	opts.ReadOnly = true
	fs, err := Open(dev, opts)
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return fs
}

// openMem opens a private in-memory copy of img, for corruption tests.
func openMem(t testing.TB, img []byte, opts Options) (*FS, error) {
	t.Helper()
	return Open(blockdev.NewMemFrom(img, true), opts)
}

// mountKernel loop-mounts img read-only and returns the mount point.
func mountKernel(t *testing.T, img string) string {
	t.Helper()
	requireRoot(t)
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "ext4", "-o", "ro,loop,noload", img, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("kernel mount of %s failed: %v: %s", filepath.Base(img), err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// resolve walks a slash-separated path from the root with Lookup.
func resolve(fs *FS, path string) (Ino, error) {
	ino := RootIno
	for _, c := range strings.Split(path, "/") {
		if c == "" {
			continue
		}
		next, err := fs.Lookup(ino, []byte(c))
		if err != nil {
			return 0, fmt.Errorf("lookup %q in %d: %w", c, ino, err)
		}
		ino = next
	}
	return ino, nil
}

var errStop = errors.New("stop")

// imageBytes returns variant v's image contents, read once and shared:
// callers must not modify the slice (use newCow for a private view).
func imageBytes(t *testing.T, v variant) []byte {
	t.Helper()
	img, _, _ := image(t, v)
	c := &imageCache
	c.Lock()
	defer c.Unlock()
	if c.bytes == nil {
		c.bytes = map[string][]byte{}
	}
	if b, ok := c.bytes[v.name]; ok {
		return b
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	c.bytes[v.name] = b
	return b
}

// cowDev is a copy-on-write device over a shared image: reads see base
// with the private pages written through WriteAt (or patch) on top, so a
// test can damage or write a 256 MiB image without copying it.
type cowDev struct {
	mu    sync.Mutex // protects pages
	base  []byte     // shared, never written
	pages map[int64][]byte
	ro    bool
}

const cowPage = 4096

func newCow(base []byte, readOnly bool) *cowDev {
	return &cowDev{base: base, pages: map[int64][]byte{}, ro: readOnly}
}

func (d *cowDev) Size() int64    { return int64(len(d.base)) }
func (d *cowDev) ReadOnly() bool { return d.ro }
func (d *cowDev) Flush() error   { return nil }
func (d *cowDev) Close() error   { return nil }

func (d *cowDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("cowDev: negative offset")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for n < len(p) && off+int64(n) < int64(len(d.base)) {
		pos := off + int64(n)
		pg, in := pos/cowPage, int(pos%cowPage)
		src := d.base[pg*cowPage : min(int64(len(d.base)), (pg+1)*cowPage)]
		if priv, ok := d.pages[pg]; ok {
			src = priv
		}
		n += copy(p[n:], src[in:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *cowDev) WriteAt(p []byte, off int64) (int, error) {
	if d.ro {
		return 0, syscall.EROFS
	}
	return d.write(p, off)
}

// patch writes p at off even on a read-only device (test damage).
func (d *cowDev) patch(off int64, p ...byte) {
	if _, err := d.write(p, off); err != nil {
		panic(err)
	}
}

// xor flips bits of the byte at off.
func (d *cowDev) xor(off int64, mask byte) {
	var b [1]byte
	d.ReadAt(b[:], off)
	d.patch(off, b[0]^mask)
}

func (d *cowDev) put16(off int64, v uint16) {
	d.patch(off, binary.LittleEndian.AppendUint16(nil, v)...)
}

func (d *cowDev) put32(off int64, v uint32) {
	d.patch(off, binary.LittleEndian.AppendUint32(nil, v)...)
}

func (d *cowDev) write(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.base)) {
		return 0, syscall.ENOSPC
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		pg, in := pos/cowPage, int(pos%cowPage)
		priv, ok := d.pages[pg]
		if !ok {
			priv = append([]byte(nil), d.base[pg*cowPage:min(int64(len(d.base)), (pg+1)*cowPage)]...)
			d.pages[pg] = priv
		}
		n += copy(priv[in:], p[n:])
	}
	return n, nil
}

// bytesAt returns a copy of n bytes at off.
func (d *cowDev) bytesAt(off int64, n int) []byte {
	b := make([]byte, n)
	d.ReadAt(b, off)
	return b
}
