package testutil

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Values pinned so that the same tree gives the same image.
const (
	FixedUUID     = "e4b0c0de-0000-4000-8000-000000000001"
	FixedHashSeed = "e4b0c0de-0000-4000-8000-000000000002"
	FixedTime     = 1_700_000_000 // mkfs time, and times mkfs itself sets
)

// Variant is a named set of mkfs.ext4 options producing one flavour of
// ext2/3/4.
type Variant struct {
	Name      string
	Args      []string // mkfs.ext4 arguments, besides the pinned ones
	BlockSize int
}

// HasFeature reports whether the variant's -O list turns feature on
// explicitly (not whether mke2fs enables it by default).
func (v Variant) HasFeature(feature string) bool {
	for i, a := range v.Args {
		if a == "-O" && i+1 < len(v.Args) {
			for _, f := range strings.Split(v.Args[i+1], ",") {
				if f == feature {
					return true
				}
			}
		}
	}
	return false
}

// KernelMountable reports whether this kernel can mount the variant, so
// it can serve as the oracle: Linux refuses blocks larger than a page.
func (v Variant) KernelMountable() bool {
	return v.BlockSize <= os.Getpagesize()
}

// The variants tests iterate over. Block sizes are explicit because
// mke2fs otherwise picks 1 KiB blocks for images under 512 MiB.
var (
	Ext2         = Variant{"ext2", []string{"-t", "ext2", "-b", "4096"}, 4096}
	Ext3         = Variant{"ext3", []string{"-t", "ext3", "-b", "4096"}, 4096}
	Ext4         = Variant{"ext4", []string{"-t", "ext4", "-b", "4096"}, 4096}
	Ext4Block1K  = Variant{"ext4-1k", []string{"-t", "ext4", "-b", "1024"}, 1024}
	Ext4NoCsum   = Variant{"ext4-nocsum", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}, 4096}
	Ext4Inline   = Variant{"ext4-inline", []string{"-t", "ext4", "-b", "4096", "-O", "inline_data"}, 4096}
	Ext4No64bit  = Variant{"ext4-no64bit", []string{"-t", "ext4", "-b", "4096", "-O", "^64bit"}, 4096}
	Ext4MetaBG   = Variant{"ext4-metabg", []string{"-t", "ext4", "-b", "4096", "-O", "meta_bg,^resize_inode"}, 4096}
	Ext4NoExtent = Variant{"ext4-noextent", []string{"-t", "ext4", "-b", "4096", "-O", "^extent,^64bit"}, 4096} // 64bit needs extents
	Ext4Block64K = Variant{"ext4-64k", []string{"-t", "ext4", "-b", "65536"}, 65536}
	AllVariants  = []Variant{Ext2, Ext3, Ext4, Ext4Block1K, Ext4NoCsum, Ext4Inline, Ext4No64bit, Ext4MetaBG, Ext4NoExtent, Ext4Block64K}
)

// VariantByName returns the variant called name.
func VariantByName(name string) (Variant, bool) {
	for _, v := range AllVariants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

// mke2fsConf is Debian's e2fsprogs 1.47.0 /etc/mke2fs.conf, pinned so a
// different host configuration cannot change the images.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext3 = {
		features = has_journal
	}
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	small = {
		blocksize = 1024
		inode_ratio = 4096
	}
	floppy = {
		blocksize = 1024
		inode_ratio = 8192
	}
	big = {
		inode_ratio = 32768
	}
	huge = {
		inode_ratio = 65536
	}
	news = {
		inode_ratio = 4096
	}
	largefile = {
		inode_ratio = 1048576
		blocksize = -1
	}
	largefile4 = {
		inode_ratio = 4194304
		blocksize = -1
	}
	hurd = {
	     blocksize = 4096
	     inode_size = 128
	     warn_y2038_dates = 0
	}
`

// MkfsD builds img from srcDir with mkfs.ext4 -d in the given variant, with
// UUID, hash seed, configuration and time pinned. sizeMB 0 sizes the image
// from the tree. The image file is sparse.
//
// mkfs.ext4 -d (1.47.0) keeps whole seconds only, wraps times past 2038,
// and adds directory entries linearly, so a 50,000-entry directory takes
// minutes: use MkfsCopy for such trees.
func MkfsD(t testing.TB, img, srcDir string, variant Variant, sizeMB int) {
	t.Helper()
	mkfs(t, img, srcDir, variant, sizeMB, true)
}

// MkfsCopy builds img in the given variant by running mkfs.ext4 (pinned as
// MkfsD) on an empty image, then copying srcDir into it through the
// kernel's ext4 on a loop mount. Unlike mkfs -d, this keeps nanosecond
// timestamps and times past 2038, and large directories become htrees
// the way the kernel builds them. Inode and block placement are the
// kernel's, so images are not byte-for-byte reproducible. The image is
// checked with e2fsck afterwards. Needs root and loop devices, and a
// variant the kernel can mount.
func MkfsCopy(t testing.TB, img, srcDir string, variant Variant, sizeMB int) {
	t.Helper()
	RequireLoop(t)
	if !variant.KernelMountable() {
		t.Fatalf("MkfsCopy: kernel cannot mount variant %s (%d-byte blocks)", variant.Name, variant.BlockSize)
	}
	mkfs(t, img, srcDir, variant, sizeMB, false)
	mnt := t.TempDir()
	loopMount(t, img, mnt, false)
	err := CopyTree(srcDir, mnt)
	if uerr := unmount(mnt); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		t.Fatalf("MkfsCopy %s: %v", variant.Name, err)
	}
	if !E2fsckClean(t, img) {
		t.FailNow()
	}
}

func mkfs(t testing.TB, img, srcDir string, variant Variant, sizeMB int, populate bool) {
	t.Helper()
	mkfsPath := RequireTool(t, "mkfs.ext4")
	u, err := measureTree(srcDir)
	if err != nil {
		t.Fatalf("mkfs: %v", err)
	}
	if sizeMB <= 0 {
		sizeMB = u.sizeMB(variant.BlockSize)
	}
	conf := filepath.Join(t.TempDir(), "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", "-U", FixedUUID, "-E", "hash_seed=" + FixedHashSeed,
		"-I", "256", "-m", "0", "-N", strconv.Itoa(u.inodes*11/10 + 64)}
	args = append(args, variant.Args...)
	if populate {
		args = append(args, "-d", srcDir)
	}
	// mkfs.ext4 creates or extends img to the size: a sparse file.
	args = append(args, img, strconv.Itoa(sizeMB)+"M")
	cmd := exec.Command(mkfsPath, args...)
	cmd.Env = append(os.Environ(),
		"MKE2FS_CONFIG="+conf,
		"E2FSPROGS_FAKE_TIME="+strconv.Itoa(FixedTime),
		"SOURCE_DATE_EPOCH="+strconv.Itoa(FixedTime),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", mkfsPath, strings.Join(args, " "), err, out)
	}
}

// treeUsage estimates what a tree needs on disk.
type treeUsage struct {
	inodes int
	// Per-inode footprints, so each can be rounded to the block size.
	dataBytes []int64
	metaCount int // inodes that may need a block of their own (dir, slow symlink, xattrs)
}

// measureTree walks root like Snapshot does, without moving atimes (which
// mkfs -d would then copy, making images differ from run to run).
func measureTree(root string) (*treeUsage, error) {
	u := &treeUsage{}
	seen := map[uint64]bool{}
	var walk func(p string) error
	walk = func(p string) error {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		u.inodes++
		u.metaCount++ // extent/indirect blocks, xattr block, slow symlink
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			u.dataBytes = append(u.dataBytes, st.Blocks*512)
		case unix.S_IFDIR:
			u.dataBytes = append(u.dataBytes, st.Size)
			names, err := readNames(p)
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := walk(filepath.Join(p, n)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if root == "" {
		return u, nil
	}
	return u, walk(root)
}

// sizeMB returns a generous image size for the tree with blocks of bs.
func (u *treeUsage) sizeMB(bs int) int {
	b := int64(bs)
	var total int64
	for _, n := range u.dataBytes {
		blocks := (n + b - 1) / b
		total += blocks * b
		total += blocks / (b / 4) * b // indirect blocks on block-mapped files
	}
	total += int64(u.metaCount) * b
	total += int64(u.inodes*11/10+64) * 256 // inode tables
	total = total * 5 / 4
	total += 96 << 20 // journal (at most 64 MiB at these sizes), group metadata, slack
	return int((total + 1<<20 - 1) >> 20)
}

// E2fsck runs e2fsck with args on img and returns its exit code and
// combined output. Exit codes above 0 are not errors here: err is set only
// when e2fsck could not be run.
func E2fsck(img string, args ...string) (int, string, error) {
	p, err := lookTool("e2fsck")
	if err != nil {
		return -1, "", err
	}
	cmd := exec.Command(p, append(args, img)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out), nil
	}
	if err != nil {
		return -1, string(out), err
	}
	return 0, string(out), nil
}

// E2fsckClean runs `e2fsck -fn img` and marks the test failed, with
// e2fsck's output, unless it exits 0. It reports whether img was clean.
func E2fsckClean(t testing.TB, img string) bool {
	t.Helper()
	RequireTool(t, "e2fsck")
	code, out, err := E2fsck(img, "-fn")
	if err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
		return false
	}
	if code != 0 {
		t.Errorf("e2fsck -fn %s: exit %d\n%s", img, code, out)
		return false
	}
	return true
}

// IndexDirs runs `e2fsck -fyD img`, which rebuilds every directory (htree
// indexes for those large enough), and fails the test unless e2fsck exits
// 0 or 1 (file system modified).
func IndexDirs(t testing.TB, img string) {
	t.Helper()
	RequireTool(t, "e2fsck")
	code, out, err := E2fsck(img, "-fyD")
	if err != nil || code > 1 {
		t.Fatalf("e2fsck -fyD %s: exit %d, %v\n%s", img, code, err, out)
	}
}

// Debugfs runs `debugfs -R cmd img` read-only and returns its output
// (stdout; debugfs's banner goes to stderr). It fails the test when
// debugfs cannot run or reports an error on stderr beyond its banner.
func Debugfs(t testing.TB, img, cmd string) string {
	t.Helper()
	p := RequireTool(t, "debugfs")
	c := exec.Command(p, "-R", cmd, img)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("debugfs -R %q %s: %v\n%s%s", cmd, img, err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			t.Fatalf("debugfs -R %q %s: %s", cmd, img, stderr.String())
		}
	}
	return stdout.String()
}
