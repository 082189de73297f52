package disk

// Test images are built at test time with mkfs.ext4 -d from a generated
// tree (fixed UUID, hash seed and fake time, so they are deterministic), one
// per feature combination the decoders must handle.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

const (
	testUUID     = "01234567-89ab-cdef-0123-456789abcdef"
	testHashSeed = "fedcba98-7654-3210-fedc-ba9876543210"
)

// imageSpecs maps an image name to its mkfs.ext4 arguments.
var imageSpecs = map[string][]string{
	"ext4-1k": {"-t", "ext4", "-b", "1024", "-I", "256", "-O", "metadata_csum,64bit,huge_file"},
	"ext4-4k": {"-t", "ext4", "-b", "4096", "-I", "256", "-O", "metadata_csum,64bit"},
	"gdt32":   {"-t", "ext4", "-b", "1024", "-I", "256", "-O", "^metadata_csum,^64bit,uninit_bg"},
	"gdt64":   {"-t", "ext4", "-b", "2048", "-I", "512", "-O", "^metadata_csum,64bit,uninit_bg"},
	"inline":  {"-t", "ext4", "-b", "4096", "-I", "256", "-O", "inline_data,metadata_csum_seed,^has_journal"},
	"ext2":    {"-t", "ext2", "-b", "1024", "-I", "128"},
}

var images struct {
	once     sync.Once
	dir      string
	err      error
	borrowed bool // dir was built by a parent process (fuzz coordinator)
}

// imagesEnv passes the image directory to fuzz worker processes, which
// inherit the coordinator's environment and would otherwise spend their
// whole -fuzztime rebuilding the images.
const imagesEnv = "E4BOX_DISK_TEST_IMAGES"

func TestMain(m *testing.M) {
	code := m.Run()
	if images.dir != "" && !images.borrowed {
		os.RemoveAll(images.dir)
	}
	os.Exit(code)
}

// requireTool skips the test when a tool is missing, unless CI is set, in
// which case a missing requirement is a failure (DESIGN.md, Tests).
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s required: %v", name, err)
		}
		t.Skipf("%s not available: %v", name, err)
	}
}

// makeTree writes the source tree every image is built from.
func makeTree(dir string) (err error) {
	type failure struct{ err error }
	must := func(err error) {
		if err != nil {
			panic(failure{err})
		}
	}
	w := func(name string, data []byte) { must(os.WriteFile(filepath.Join(dir, name), data, 0o644)) }
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	w("hello", []byte("hello, world\n"))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7 / 13)
	}
	w("big", big)
	f, ferr := os.Create(filepath.Join(dir, "sparse"))
	must(ferr)
	_, ferr = f.WriteAt([]byte("tail"), 5<<20)
	must(ferr)
	must(f.Close())
	must(os.Symlink("hello", filepath.Join(dir, "fastlink")))
	must(os.Symlink(string(bytes.Repeat([]byte("long/"), 30)), filepath.Join(dir, "slowlink")))
	must(syscall.Mknod(filepath.Join(dir, "cdev"), syscall.S_IFCHR|0o600, int(mkdev(4, 5))))
	must(syscall.Mknod(filepath.Join(dir, "bdev"), syscall.S_IFBLK|0o600, int(mkdev(300, 70000))))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))

	// xattrs: small and large values, and POSIX ACLs (kernel xattr format).
	w("xattrs", []byte("x"))
	x := filepath.Join(dir, "xattrs")
	must(syscall.Setxattr(x, "user.small", []byte("v"), 0))
	must(syscall.Setxattr(x, "user.big", bytes.Repeat([]byte("0123456789"), 60), 0))
	must(syscall.Setxattr(x, "trusted.t", []byte("trusted value"), 0))
	must(syscall.Setxattr(x, "system.posix_acl_access", testACLXattr, 0))
	must(os.Mkdir(filepath.Join(dir, "acldir"), 0o755))
	must(syscall.Setxattr(filepath.Join(dir, "acldir"), "system.posix_acl_default", testACLXattr, 0))

	// A small directory (inline with inline_data) and a large one (htree),
	// whose names include bytes >= 0x80 so signed and unsigned hashing differ.
	must(os.Mkdir(filepath.Join(dir, "small"), 0o755))
	for _, n := range []string{"a", "bb", "ccc"} {
		w(filepath.Join("small", n), nil)
	}
	must(os.Mkdir(filepath.Join(dir, "large"), 0o755))
	// Hard links keep mkfs fast: the names matter, not the inodes.
	for i := range largeDirN {
		must(os.Link(filepath.Join(dir, "hello"), filepath.Join(dir, "large", dirName(i))))
	}
	return nil
}

// largeDirN is the size of the large directory: enough for a two-level
// htree with 1 KiB blocks.
const largeDirN = 5000

// dirName is the i-th name of the large directory.
func dirName(i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("file-%05d", i)
	case 1:
		return fmt.Sprintf("\u00e9t\u00e9-%d", i) // UTF-8 bytes >= 0x80
	case 2:
		return fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte{'n'}, i%200))
	default:
		return fmt.Sprintf("\xff\xfe%d\x80", i)
	}
}

func mkdev(major, minor uint64) uint64 {
	return minor&0xff | major&0xfff<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

// testACLXattr: user::rw-, user:1000:r--, group::r--, mask::r--, other::---.
var testACLXattr = []byte{
	2, 0, 0, 0,
	1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
	2, 0, 4, 0, 0xe8, 3, 0, 0,
	4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
	0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
	0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
}

func buildImages() (string, error) {
	dir, err := os.MkdirTemp("", "e4box-disk-test-")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return dir, err
	}
	if err := makeTree(src); err != nil {
		return dir, err
	}
	// Two at a time: the machines running this have few cores.
	sem := make(chan struct{}, 2)
	errs := make(chan error, len(imageSpecs))
	for name, args := range imageSpecs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- buildImage(filepath.Join(dir, name+".img"), src, args)
		}()
	}
	var first error
	for range imageSpecs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return dir, first
}

func buildImage(img, src string, args []string) error {
	a := append([]string{"-q", "-F", "-U", testUUID, "-E", "hash_seed=" + testHashSeed, "-d", src}, args...)
	a = append(a, "-N", "8192", img, "16M")
	cmd := exec.Command("mkfs.ext4", a...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000", "SOURCE_DATE_EPOCH=1700000000", "TZ=GMT0", "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs %s: %v\n%s", img, err, out)
	}
	// mkfs.ext4 -d writes linear directories; e2fsck -D indexes them
	// (exit status 1: "errors corrected", here the optimisation).
	cmd = exec.Command("e2fsck", "-fyD", img)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000", "TZ=GMT0", "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		return fmt.Errorf("e2fsck -D %s: %v\n%s", img, err, out)
	}
	return nil
}

// imagePath returns the path of a test image, building all of them once.
func imagePath(t testing.TB, name string) string {
	t.Helper()
	requireTool(t, "mkfs.ext4")
	if os.Geteuid() != 0 {
		// mknod and trusted.* xattrs in the source tree need root.
		if os.Getenv("CI") != "" {
			t.Fatal("root required")
		}
		t.Skip("needs root")
	}
	images.once.Do(func() {
		if d := os.Getenv(imagesEnv); d != "" {
			if _, err := os.Stat(filepath.Join(d, "done")); err == nil {
				images.dir, images.borrowed = d, true
				return
			}
		}
		images.dir, images.err = buildImages()
		if images.err == nil {
			images.err = os.WriteFile(filepath.Join(images.dir, "done"), nil, 0o644)
			os.Setenv(imagesEnv, images.dir)
		}
	})
	if images.err != nil {
		t.Fatal(images.err)
	}
	return filepath.Join(images.dir, name+".img")
}

// testFS is a test image loaded in memory with just enough logic to find
// inodes; the real reader is the ext4 package.
type testFS struct {
	name string
	img  []byte
	sb   *Superblock
	seed uint32
	gds  []GroupDesc
	gdb  [][]byte // encoded descriptor records
}

func loadImage(t testing.TB, name string) *testFS {
	t.Helper()
	return loadImageFile(t, name, imagePath(t, name))
}

func loadImageFile(t testing.TB, name, path string) *testFS {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := DecodeSuperblock(img[SuperblockOffset:])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fs := &testFS{name: name, img: img, sb: sb, seed: sb.CsumSeed()}
	bs := uint64(sb.BlockSize())
	gdt := (uint64(sb.FirstDataBlock) + 1) * bs
	ds := uint64(sb.DescSize())
	for g := range sb.GroupCount() {
		rec := img[gdt+g*ds : gdt+(g+1)*ds]
		gd, err := DecodeGroupDesc(rec, int(ds))
		if err != nil {
			t.Fatal(err)
		}
		fs.gds = append(fs.gds, gd)
		fs.gdb = append(fs.gdb, rec)
	}
	return fs
}

func (fs *testFS) block(n uint64) []byte {
	bs := uint64(fs.sb.BlockSize())
	return fs.img[n*bs : (n+1)*bs]
}

func (fs *testFS) inodeRecord(ino uint32) []byte {
	ipg := fs.sb.InodesPerGroup
	g, i := (ino-1)/ipg, (ino-1)%ipg
	is := uint64(fs.sb.InodeSize())
	off := fs.gds[g].InodeTable()*uint64(fs.sb.BlockSize()) + uint64(i)*is
	return fs.img[off : off+is]
}

func (fs *testFS) inode(t testing.TB, ino uint32) *Inode {
	t.Helper()
	in, err := DecodeInode(fs.inodeRecord(ino))
	if err != nil {
		t.Fatalf("%s: inode %d: %v", fs.name, ino, err)
	}
	return in
}

// debugfs runs a debugfs request against the image and returns its output.
func (fs *testFS) debugfs(t testing.TB, req string) string {
	t.Helper()
	requireTool(t, "debugfs")
	out, err := exec.Command("debugfs", "-R", req, imagePath(t, fs.name)).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", req, err)
	}
	return string(out)
}

func imageNames() []string {
	return []string{"ext4-1k", "ext4-4k", "gdt32", "gdt64", "inline", "ext2"}
}
