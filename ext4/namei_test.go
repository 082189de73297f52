package ext4

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/testutil"
)

// Namespace write tests: operations run through the library on a fresh
// image while a model records what the tree must hold; then the image
// must pass e2fsck -fn, and the kernel's ext2/3/4 (loop mount) and our
// read path must both show exactly the model: names, inode numbers,
// types, link counts, symlink targets and device numbers.

// nsVariants are the filesystem flavours the namespace tests run on; the
// last is ext2 without dir_index, where directories stay linear.
var nsVariants = []testutil.Variant{
	testutil.Ext4, testutil.Ext4Block1K, testutil.Ext4NoCsum, testutil.Ext4Inline,
	testutil.Ext4No64bit, testutil.Ext3, testutil.Ext2,
	{Name: "ext2-nodx", Args: []string{"-t", "ext2", "-b", "4096", "-O", "^dir_index"}, BlockSize: 4096},
	testutil.Ext4Block64K, // checked by e2fsck and our reader only: the kernel cannot mount it
}

// newRWImage builds an empty image of the variant with room for inodes
// inodes and opens it read-write.
func newRWImage(t *testing.T, v testutil.Variant, sizeMB, inodes int) (string, *FS) {
	t.Helper()
	testutil.RequireE2fsprogs(t)
	img := filepath.Join(t.TempDir(), "img")
	// A later -N overrides the one MkfsD derives from the (empty) tree.
	v.Args = append(slices.Clone(v.Args), "-N", fmt.Sprint(inodes))
	testutil.MkfsD(t, img, t.TempDir(), v, sizeMB)
	return img, openRW(t, img)
}

// openRW opens img read-write; the device is closed at cleanup.
func openRW(t *testing.T, img string) *FS {
	t.Helper()
	dev, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	fs, err := Open(dev, Options{})
	if err != nil {
		t.Fatalf("Open %s read-write: %v", img, err)
	}
	if fs.ReadOnly() {
		t.Fatalf("Open %s: read-only", img)
	}
	return fs
}

// mnode is a model entry: what a path must be.
type mnode struct {
	ino    Ino
	mode   uint16 // S_IFMT bits
	target string // symlink target
	rdev   uint32 // device number (new_encode_dev)
}

// nsModel drives the library and mirrors the tree it must produce.
type nsModel struct {
	t     *testing.T
	fs    *FS
	nodes map[string]*mnode // by slash path relative to the root; "" is the root
	cred  Cred
}

func newModel(t *testing.T, fs *FS) *nsModel {
	return &nsModel{t: t, fs: fs, nodes: map[string]*mnode{"": {ino: RootIno, mode: sIFDIR}}, cred: Cred{Uid: 0, Gid: 0}}
}

func (m *nsModel) dir(p string) Ino {
	m.t.Helper()
	n, ok := m.nodes[p]
	if !ok || n.mode != sIFDIR {
		m.t.Fatalf("model: %q is not a directory", p)
	}
	return n.ino
}

func split(p string) (string, []byte) {
	d, f := path.Split(p)
	return strings.TrimSuffix(d, "/"), []byte(f)
}

// check fails the test unless err is want (nil for success).
func (m *nsModel) check(op string, err, want error) {
	m.t.Helper()
	if !errors.Is(err, want) && !(err == nil && want == nil) {
		m.t.Fatalf("%s: got %v, want %v", op, err, want)
	}
}

func (m *nsModel) add(p string, in *Inode, target string) {
	m.t.Helper()
	if in == nil {
		m.t.Fatalf("%s: nil inode", p)
	}
	m.nodes[p] = &mnode{ino: in.Ino, mode: in.Mode & sIFMT, target: target, rdev: in.Rdev()}
	// The live read path sees the change at once (cached inodes and blocks
	// follow the transaction).
	if d, name := split(p); m.nodes[d] != nil {
		if ino, err := m.fs.Lookup(m.nodes[d].ino, name); err != nil || ino != in.Ino {
			m.t.Fatalf("lookup %s right after creating it: %d, %v", p, ino, err)
		}
	}
}

func (m *nsModel) mkdir(p string) {
	m.t.Helper()
	d, name := split(p)
	in, err := m.fs.Mkdir(m.dir(d), name, 0o755, m.cred)
	m.check("mkdir "+p, err, nil)
	if in.Nlink != 2 || !in.IsDir() {
		m.t.Fatalf("mkdir %s: nlink %d mode %#o", p, in.Nlink, in.Mode)
	}
	m.add(p, in, "")
}

func (m *nsModel) create(p string) {
	m.t.Helper()
	m.mknod(p, sIFREG|0o644, 0)
}

func (m *nsModel) mknod(p string, mode, rdev uint32) {
	m.t.Helper()
	d, name := split(p)
	in, err := m.fs.Mknod(m.dir(d), name, mode, rdev, m.cred)
	m.check("mknod "+p, err, nil)
	if uint32(in.Mode) != mode || in.Rdev() != rdev {
		m.t.Fatalf("mknod %s: mode %#o rdev %#x, want %#o %#x", p, in.Mode, in.Rdev(), mode, rdev)
	}
	m.add(p, in, "")
}

func (m *nsModel) symlink(p, target string) {
	m.t.Helper()
	d, name := split(p)
	in, err := m.fs.Symlink(m.dir(d), name, []byte(target), m.cred)
	m.check("symlink "+p, err, nil)
	if in.Size != uint64(len(target)) {
		m.t.Fatalf("symlink %s: size %d", p, in.Size)
	}
	m.add(p, in, target)
}

func (m *nsModel) link(old, p string) {
	m.t.Helper()
	d, name := split(p)
	in, err := m.fs.Link(m.nodes[old].ino, m.dir(d), name)
	m.check("link "+p, err, nil)
	n := *m.nodes[old]
	m.nodes[p] = &n
	if int(in.Nlink) != m.links(n.ino) {
		m.t.Fatalf("link %s: nlink %d, model %d", p, in.Nlink, m.links(n.ino))
	}
}

// links counts the model's names for a non-directory inode.
func (m *nsModel) links(ino Ino) int {
	n := 0
	for _, x := range m.nodes {
		if x.ino == ino {
			n++
		}
	}
	return n
}

// evictIfGone frees an inode whose last name went, as the server does on
// the kernel's FORGET.
func (m *nsModel) evictIfGone(in *Inode) {
	m.t.Helper()
	if in != nil && in.Nlink == 0 {
		if err := m.fs.Evict(in.Ino); err != nil {
			m.t.Fatalf("evict %d: %v", in.Ino, err)
		}
	}
}

func (m *nsModel) unlink(p string) {
	m.t.Helper()
	d, name := split(p)
	ino := m.nodes[p].ino
	delete(m.nodes, p)
	in, err := m.fs.Unlink(m.dir(d), name)
	m.check("unlink "+p, err, nil)
	if _, err := m.fs.Lookup(m.dir(d), name); err != syscall.ENOENT {
		m.t.Fatalf("lookup %s right after unlinking it: %v", p, err)
	}
	if int(in.Nlink) != m.links(ino) {
		m.t.Fatalf("unlink %s: nlink %d, model %d", p, in.Nlink, m.links(ino))
	}
	m.evictIfGone(in)
}

func (m *nsModel) rmdir(p string) {
	m.t.Helper()
	d, name := split(p)
	in, err := m.fs.Rmdir(m.dir(d), name)
	m.check("rmdir "+p, err, nil)
	if in.Nlink != 0 {
		m.t.Fatalf("rmdir %s: nlink %d", p, in.Nlink)
	}
	delete(m.nodes, p)
	m.evictIfGone(in)
}

// rename renames in the library and the model.
func (m *nsModel) rename(old, p string, flags uint32) {
	m.t.Helper()
	od, on := split(old)
	nd, nn := split(p)
	replaced, err := m.fs.Rename(m.dir(od), on, m.dir(nd), nn, flags)
	m.check(fmt.Sprintf("rename %s %s %#x", old, p, flags), err, nil)
	moved := map[string]*mnode{}
	for k, v := range m.nodes {
		if k == old || strings.HasPrefix(k, old+"/") {
			moved[p+strings.TrimPrefix(k, old)] = v
			delete(m.nodes, k)
		}
	}
	if flags&RenameExchange != 0 {
		for k, v := range m.nodes {
			if k == p || strings.HasPrefix(k, p+"/") {
				m.nodes[old+strings.TrimPrefix(k, p)] = v
				delete(m.nodes, k)
			}
		}
	} else {
		delete(m.nodes, p) // replaced (an empty directory or a file)
	}
	for k, v := range moved {
		m.nodes[k] = v
	}
	if replaced != nil && replaced.IsDir() && replaced.Nlink != 0 {
		m.t.Fatalf("rename over directory left nlink %d", replaced.Nlink)
	}
	if replaced != nil && !replaced.IsDir() && int(replaced.Nlink) != m.links(replaced.Ino) {
		m.t.Fatalf("rename over %s: replaced nlink %d, model %d", p, replaced.Nlink, m.links(replaced.Ino))
	}
	m.evictIfGone(replaced)
}

// expectErr runs op and wants err.
func (m *nsModel) expectErr(what string, want error, op func() error) {
	m.t.Helper()
	if err := op(); !errors.Is(err, want) {
		m.t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// nlinks computes the link count the model implies for every path:
// names per inode for files; for directories 2 plus subdirectories (the
// root also has lost+found), or 1 once past EXT4_LINK_MAX (dir_nlink).
func (m *nsModel) nlinks() map[string]int {
	names := map[Ino]int{}
	subdirs := map[string]int{"": 1}
	for p, n := range m.nodes {
		names[n.ino]++
		if n.mode == sIFDIR && p != "" {
			d, _ := split(p)
			subdirs[d]++
		}
	}
	out := make(map[string]int, len(m.nodes))
	for p, n := range m.nodes {
		if n.mode != sIFDIR {
			out[p] = names[n.ino]
			continue
		}
		out[p] = 2 + subdirs[p]
		if out[p] > linkMax {
			out[p] = 1
		}
	}
	return out
}

// verify closes the filesystem, runs e2fsck -fn, and compares the kernel's
// view (loop mount) and our read path's with the model.
func (m *nsModel) verify(img string) {
	m.t.Helper()
	t := m.t
	if err := m.fs.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !testutil.E2fsckClean(t, img) {
		t.FailNow()
	}
	m.verifyOurs(img)
	if os.Getuid() != 0 || m.fs.BlockSize() > os.Getpagesize() {
		return // the kernel comparison needs loop mounts and blocks <= a page
	}
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, true)
	seen := map[string]bool{"": true}
	nlinks := m.nlinks()
	err := filepath.WalkDir(mnt, func(full string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, full)
		if rel == "." || rel == "lost+found" {
			if rel == "lost+found" {
				return filepath.SkipDir
			}
			rel = ""
		}
		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			return err
		}
		n, ok := m.nodes[rel]
		if !ok {
			t.Errorf("kernel: unexpected %q", rel)
			return nil
		}
		seen[rel] = true
		if Ino(st.Ino) != n.ino || uint16(st.Mode)&sIFMT != n.mode {
			t.Errorf("kernel: %q ino %d mode %#o, want %d %#o", rel, st.Ino, st.Mode, n.ino, n.mode)
		}
		if int(st.Nlink) != nlinks[rel] {
			t.Errorf("kernel: %q nlink %d, want %d", rel, st.Nlink, nlinks[rel])
		}
		switch n.mode {
		case sIFLNK:
			if got, err := os.Readlink(full); err != nil || got != n.target {
				t.Errorf("kernel: readlink %q = %q, %v; want %q", rel, got, err, n.target)
			}
		case sIFCHR, sIFBLK:
			if uint32(st.Rdev) != n.rdev {
				t.Errorf("kernel: %q rdev %#x, want %#x", rel, st.Rdev, n.rdev)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range m.nodes {
		if !seen[k] {
			t.Errorf("kernel: %q missing", k)
		}
	}
	t.Logf("kernel view matches the model: %d names", len(seen))
}

// verifyOurs reopens img read-only and checks the model with ReadDir and
// Lookup.
func (m *nsModel) verifyOurs(img string) {
	t := m.t
	fs := openImage(t, img, Options{})
	kids := map[string][]string{}
	for k := range m.nodes {
		if k != "" {
			d, f := split(k)
			kids[d] = append(kids[d], string(f))
		}
	}
	for p, n := range m.nodes {
		if n.mode != sIFDIR {
			continue
		}
		var got []string
		err := fs.ReadDir(n.ino, 0, func(e DirEntry) bool {
			switch s := string(e.Name); {
			case s == "." || s == "..":
			case p == "" && s == "lost+found":
			default:
				got = append(got, s)
				c := m.nodes[path.Join(p, s)]
				if c == nil || c.ino != e.Ino {
					t.Errorf("ReadDir %q: %q -> %d, model %+v", p, s, e.Ino, c)
				} else if fs.features.filetype && e.Type != modeToDT(c.mode) {
					t.Errorf("ReadDir %q: %q type %d, want %d", p, s, e.Type, modeToDT(c.mode))
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("ReadDir %q: %v", p, err)
		}
		want := kids[p]
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("ReadDir %q: %d names, want %d (first diff near %v)", p, len(got), len(want), firstDiff(got, want))
		}
		for _, name := range want {
			ino, err := fs.Lookup(n.ino, []byte(name))
			if err != nil || ino != m.nodes[path.Join(p, name)].ino {
				t.Errorf("Lookup %q in %q: %d, %v", name, p, ino, err)
			}
		}
		if p != "" {
			d, _ := split(p)
			if ino, err := fs.Lookup(n.ino, []byte("..")); err != nil || ino != m.nodes[d].ino {
				t.Errorf("Lookup .. in %q: %d, %v; want %d", p, ino, err, m.nodes[d].ino)
			}
		}
	}
	for p, n := range m.nodes {
		if n.mode == sIFLNK {
			if got, err := fs.ReadLink(n.ino); err != nil || string(got) != n.target {
				t.Errorf("ReadLink %q: %q, %v", p, got, err)
			}
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " / " + b[i]
		}
	}
	return fmt.Sprint(len(a), len(b))
}

// TestNamespaceOps exercises every namespace operation and its errors on
// each variant.
func TestNamespaceOps(t *testing.T) {
	for _, v := range nsVariants {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := newRWImage(t, v, 64, 1000)
			m := newModel(t, fs)
			bs := fs.BlockSize()

			m.mkdir("a")
			m.mkdir("a/b")
			m.mkdir("a/b/c")
			m.mkdir("d")
			m.create("a/f1")
			m.create("a/b/f2")
			m.create("d/f3")
			// Symlinks: fast up to 59 bytes, then a block.
			for _, n := range []int{1, 59, 60, 61, 500, bs - 1} {
				m.symlink(fmt.Sprintf("d/l%d", n), strings.Repeat("x", n-1)+"y")
			}
			m.expectErr("symlink too long", syscall.ENAMETOOLONG, func() error {
				_, err := fs.Symlink(RootIno, []byte("long"), []byte(strings.Repeat("x", bs)), m.cred)
				return err
			})
			// Every special type; device numbers in both encodings.
			m.mknod("d/fifo", sIFIFO|0o600, 0)
			m.mknod("d/sock", sIFSOCK|0o600, 0)
			m.mknod("d/chr", sIFCHR|0o600, disk.NewEncodeDev(1, 3))
			m.mknod("d/blk", sIFBLK|0o600, disk.NewEncodeDev(8, 17))
			m.mknod("d/bigdev", sIFCHR|0o600, disk.NewEncodeDev(300, 70000))
			m.expectErr("mknod dir", syscall.EINVAL, func() error {
				_, err := fs.Mknod(RootIno, []byte("x"), sIFDIR|0o755, 0, m.cred)
				return err
			})

			// Hard links.
			m.link("a/f1", "d/f1link")
			m.link("a/f1", "a/b/c/f1link2")
			m.expectErr("link dir", syscall.EPERM, func() error {
				_, err := fs.Link(m.nodes["a"].ino, RootIno, []byte("alink"))
				return err
			})
			m.expectErr("link exists", syscall.EEXIST, func() error {
				_, err := fs.Link(m.nodes["a/f1"].ino, m.dir("d"), []byte("f3"))
				return err
			})

			// Name errors.
			m.expectErr("create exists", syscall.EEXIST, func() error {
				_, err := fs.Mknod(m.dir("a"), []byte("f1"), sIFREG|0o644, 0, m.cred)
				return err
			})
			m.expectErr("mkdir exists", syscall.EEXIST, func() error {
				_, err := fs.Mkdir(RootIno, []byte("a"), 0o755, m.cred)
				return err
			})
			m.expectErr("name too long", syscall.ENAMETOOLONG, func() error {
				_, err := fs.Mkdir(RootIno, make([]byte, 256), 0o755, m.cred)
				return err
			})
			m.expectErr("create in file", syscall.ENOTDIR, func() error {
				_, err := fs.Mknod(m.nodes["a/f1"].ino, []byte("x"), sIFREG|0o644, 0, m.cred)
				return err
			})
			m.expectErr("unlink missing", syscall.ENOENT, func() error {
				_, err := fs.Unlink(RootIno, []byte("nope"))
				return err
			})
			m.expectErr("unlink dir", syscall.EISDIR, func() error {
				_, err := fs.Unlink(RootIno, []byte("a"))
				return err
			})
			m.expectErr("rmdir file", syscall.ENOTDIR, func() error {
				_, err := fs.Rmdir(m.dir("a"), []byte("f1"))
				return err
			})
			m.expectErr("rmdir non-empty", syscall.ENOTEMPTY, func() error {
				_, err := fs.Rmdir(RootIno, []byte("a"))
				return err
			})
			long := strings.Repeat("n", 255)
			m.create("d/" + long)

			// Renames: within a directory, across, over a file, over an
			// empty directory, directories across (".." and link counts).
			m.rename("a/f1", "a/f1renamed", 0)
			m.rename("d/f3", "a/b/f3moved", 0)
			m.create("d/victim")
			m.rename("a/b/f2", "d/victim", 0)
			m.mkdir("d/emptydir")
			m.mkdir("a/b/c/sub")
			m.rename("a/b/c/sub", "d/emptydir", 0)
			m.rename("a/b/c", "d/cmoved", 0)
			m.rename("d/cmoved", "cback", 0)
			m.expectErr("dir into own subtree", syscall.EINVAL, func() error {
				_, err := fs.Rename(RootIno, []byte("a"), m.dir("a/b"), []byte("x"), 0)
				return err
			})
			m.expectErr("dir onto itself below", syscall.EINVAL, func() error {
				_, err := fs.Rename(RootIno, []byte("a"), m.dir("a"), []byte("x"), 0)
				return err
			})
			m.expectErr("dir over file", syscall.ENOTDIR, func() error {
				_, err := fs.Rename(RootIno, []byte("cback"), m.dir("d"), []byte("victim"), 0)
				return err
			})
			m.expectErr("file over dir", syscall.EISDIR, func() error {
				_, err := fs.Rename(m.dir("d"), []byte("victim"), RootIno, []byte("cback"), 0)
				return err
			})
			m.create("cback/keep")
			m.expectErr("dir over non-empty dir", syscall.ENOTEMPTY, func() error {
				_, err := fs.Rename(m.dir("d"), []byte("emptydir"), RootIno, []byte("cback"), 0)
				return err
			})
			m.expectErr("noreplace", syscall.EEXIST, func() error {
				_, err := fs.Rename(m.dir("d"), []byte("victim"), m.dir("d"), []byte("fifo"), RenameNoReplace)
				return err
			})
			m.expectErr("whiteout", syscall.EINVAL, func() error {
				_, err := fs.Rename(m.dir("d"), []byte("victim"), m.dir("d"), []byte("w"), RenameWhiteout)
				return err
			})
			m.expectErr("exchange missing", syscall.ENOENT, func() error {
				_, err := fs.Rename(m.dir("d"), []byte("victim"), m.dir("d"), []byte("none"), RenameExchange)
				return err
			})
			m.rename("d/victim", "d/victim2", RenameNoReplace)
			// Exchanges: two files, file and directory across directories.
			m.rename("d/victim2", "d/fifo", RenameExchange)
			m.rename("d/emptydir", "a/b/f3moved", RenameExchange)
			m.rename("a/b", "cback", RenameExchange)
			m.expectErr("exchange into own subtree", syscall.EINVAL, func() error {
				_, err := fs.Rename(RootIno, []byte("a"), m.dir("a/b"), []byte("keep"), RenameExchange)
				return err
			})
			// Hard-linked names of one inode: rename is a no-op.
			if _, err := fs.Rename(m.dir("d"), []byte("f1link"), m.dir("a"), []byte("f1renamed"), 0); err != nil {
				t.Fatalf("rename between links: %v", err)
			}

			// Removals.
			m.unlink("d/f1link")
			m.unlink("d/l500")
			m.unlink("d/sock")
			m.rmdir("cback/f3moved") // the directory exchanged in
			m.mkdir("tree")
			for i := range 5 {
				m.mkdir(fmt.Sprintf("tree/%d", i))
				for j := range 3 {
					m.create(fmt.Sprintf("tree/%d/f%d", i, j))
				}
			}
			for i := range 3 {
				for j := range 3 {
					m.unlink(fmt.Sprintf("tree/%d/f%d", i, j))
				}
				m.rmdir(fmt.Sprintf("tree/%d", i))
			}
			m.verify(img)
		})
	}
}

// TestBigDirectory fills one directory until it is an htree with an
// interior index level (linear on ext2), removes most names, renames many
// across directories, and refills.
func TestBigDirectory(t *testing.T) {
	for _, v := range nsVariants {
		t.Run(v.Name, func(t *testing.T) {
			n := 3000
			if v.BlockSize == 1024 {
				n = 12000 // enough for a second index level with 1 KiB blocks
			}
			if testing.Short() {
				n /= 4
			}
			img, fs := newRWImage(t, v, 128, 2*n)
			m := newModel(t, fs)
			m.mkdir("big")
			m.mkdir("other")
			name := func(i int) string {
				// Varied lengths, up to the maximum, so records differ in size.
				s := fmt.Sprintf("entry-%d-", i)
				return "big/" + s + strings.Repeat("z", (i*37)%(255-len(s)))
			}
			for i := range n {
				m.create(name(i))
			}
			d, err := fs.Inode(m.dir("big"))
			if err != nil {
				t.Fatal(err)
			}
			levels := dxLevels(t, fs, d)
			t.Logf("%d entries: %d blocks, htree levels %d", n, d.Size/uint64(fs.BlockSize()), levels)
			if fs.features.dirIndex && levels < 1 {
				t.Errorf("not indexed")
			}
			if fs.features.dirIndex && v.BlockSize == 1024 && !testing.Short() && levels < 2 {
				t.Errorf("want an interior index level, got %d levels", levels)
			}
			for i := 0; i < n; i += 3 {
				m.unlink(name(i))
			}
			for i := 1; i < n; i += 7 {
				if i%3 != 0 {
					m.rename(name(i), fmt.Sprintf("other/r%d", i), 0)
				}
			}
			for i := 2; i < n/2; i += 3 {
				if (i-1)%7 == 0 {
					continue // moved above
				}
				m.rename(name(i), name(i)+"x", 0)
			}
			for i := n; i < n+n/4; i++ {
				m.create(name(i))
			}
			m.verify(img)
		})
	}
}

// dxLevels is the number of index levels of directory d (0: linear).
func dxLevels(t *testing.T, fs *FS, d *Inode) int {
	t.Helper()
	if !fs.isDx(d) {
		return 0
	}
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	b, err := fs.dirBlockLocked(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	root, err := disk.DecodeDxRoot(b.data, fs.csum)
	if err != nil {
		t.Fatal(err)
	}
	return int(root.Info.IndirectLevels) + 1
}

// TestHtreeEmptyLeaves removes every name from indexed directories, so
// their leaves hold only unused records (which, without metadata_csum,
// look like index blocks), then looks names up, refills one and removes
// the other.
func TestHtreeEmptyLeaves(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4NoCsum, testutil.Ext4, testutil.Ext3} {
		t.Run(v.Name, func(t *testing.T) {
			const n = 1500
			img, fs := newRWImage(t, v, 64, 3*n)
			m := newModel(t, fs)
			for _, d := range []string{"d", "e"} {
				m.mkdir(d)
				for i := range n {
					m.create(fmt.Sprintf("%s/name-%d", d, i))
				}
				for i := range n {
					m.unlink(fmt.Sprintf("%s/name-%d", d, i))
				}
				for i := 0; i < n; i += 50 {
					if _, err := fs.Lookup(m.dir(d), []byte(fmt.Sprintf("name-%d", i))); err != syscall.ENOENT {
						t.Fatalf("lookup of a removed name: %v", err)
					}
				}
			}
			m.rmdir("e")
			for i := 0; i < n; i += 3 {
				m.create(fmt.Sprintf("d/again-%d", i))
			}
			m.verify(img)
		})
	}
}

// TestNamespaceRandom runs random operations (create, mkdir, symlink,
// link, unlink, rmdir, rename with every flag) over a small tree whose
// directories move between inline, linear and indexed forms, checking
// each result against the model, then verifies the image.
func TestNamespaceRandom(t *testing.T) {
	for _, v := range nsVariants {
		t.Run(v.Name, func(t *testing.T) {
			ops := 2500
			if testing.Short() {
				ops = 1000
			}
			img, fs := newRWImage(t, v, 64, ops+100)
			m := newModel(t, fs)
			m.randomOps(rand.New(rand.NewPCG(3, uint64(len(v.Name)))), ops, "")
			m.verify(img)
		})
	}
}

// randomOps runs ops random operations; a third of the new names go to
// directory hot.
func (m *nsModel) randomOps(r *rand.Rand, ops int, hot string) {
	t, fs := m.t, m.fs
	pick := func(want func(p string, n *mnode) bool) string {
		var ps []string
		for p, n := range m.nodes {
			if want(p, n) {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			return ""
		}
		sort.Strings(ps)
		return ps[r.IntN(len(ps))]
	}
	anyDir := func(p string, n *mnode) bool { return n.mode == sIFDIR }
	notRoot := func(p string, n *mnode) bool { return p != "" }
	newName := func() string {
		// Short and long names, so inline areas and blocks fill unevenly.
		return fmt.Sprintf("n%d%s", r.IntN(1_000_000), strings.Repeat("q", r.IntN(3)*r.IntN(90)))
	}
	empty := func(p string) bool {
		for k := range m.nodes {
			if strings.HasPrefix(k, p+"/") {
				return false
			}
		}
		return true
	}
	for range ops {
		d := pick(anyDir)
		if r.IntN(3) == 0 {
			d = hot
		}
		target := path.Join(d, newName())
		if _, taken := m.nodes[target]; taken {
			continue
		}
		switch op := r.IntN(20); {
		case op < 7:
			m.create(target)
		case op < 9:
			m.mkdir(target)
		case op < 10:
			m.symlink(target, strings.Repeat("s", 1+r.IntN(100)))
		case op < 11:
			if src := pick(func(p string, n *mnode) bool { return n.mode != sIFDIR }); src != "" {
				m.link(src, target)
			}
		case op < 14:
			if p := pick(func(p string, n *mnode) bool { return n.mode != sIFDIR }); p != "" {
				m.unlink(p)
			}
		case op < 15:
			if p := pick(func(p string, n *mnode) bool { return n.mode == sIFDIR && p != "" && p != hot && empty(p) }); p != "" {
				m.rmdir(p)
			}
		default:
			src := pick(notRoot)
			if src == "" || src == hot {
				continue
			}
			dst := target
			flags := uint32(0)
			if r.IntN(3) == 0 {
				// Onto an existing name: replace or exchange.
				dst = pick(notRoot)
				if r.IntN(2) == 0 {
					flags = RenameExchange
				}
				if dst == hot {
					continue
				}
			}
			if dst == src || strings.HasPrefix(dst+"/", src+"/") || flags&RenameExchange != 0 && strings.HasPrefix(src+"/", dst+"/") {
				// Into its own subtree (or onto an ancestor): EINVAL, or
				// ENOTEMPTY for a plain rename onto an ancestor.
				od, on := split(src)
				nd, nn := split(dst)
				_, err := fs.Rename(m.dir(od), on, m.dir(nd), nn, flags)
				if dst != src && err == nil {
					t.Fatalf("rename %s %s %#x: accepted", src, dst, flags)
				}
				continue
			}
			if flags&RenameExchange == 0 {
				if n, ok := m.nodes[dst]; ok {
					s := m.nodes[src]
					if (s.mode == sIFDIR) != (n.mode == sIFDIR) || n.mode == sIFDIR && !empty(dst) || s.ino == n.ino ||
						strings.HasPrefix(src+"/", dst+"/") {
						continue // errors covered by TestNamespaceOps
					}
				}
			} else if m.nodes[src].ino == m.nodes[dst].ino {
				continue
			}
			m.rename(src, dst, flags)
		}
	}
}

// modelFromImage fills a model with the tree on fs (lost+found aside).
func modelFromImage(t *testing.T, fs *FS) *nsModel {
	m := newModel(t, fs)
	var walk func(p string, dir Ino)
	walk = func(p string, dir Ino) {
		var es []DirEntry
		if err := fs.ReadDir(dir, 0, func(e DirEntry) bool { es = append(es, e); return true }); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			n := string(e.Name)
			if n == "." || n == ".." || p == "" && n == "lost+found" {
				continue
			}
			in, err := fs.Inode(e.Ino)
			if err != nil {
				t.Fatal(err)
			}
			target := ""
			if in.IsSymlink() {
				b, err := fs.ReadLink(in.Ino)
				if err != nil {
					t.Fatal(err)
				}
				target = string(b)
			}
			cp := path.Join(p, n)
			m.add(cp, in, target)
			if in.IsDir() {
				walk(cp, in.Ino)
			}
		}
	}
	walk("", RootIno)
	return m
}

// TestModifyKernelTree changes trees whose directories the kernel (or
// e2fsck -D) built, htrees included.
func TestModifyKernelTree(t *testing.T) {
	testutil.RequireRoot(t)
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "big"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "a/b/c"), 0o755))
	for i := range 3000 {
		must(os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("file-%d-%s", i, strings.Repeat("k", i%40))), nil, 0o644))
	}
	for i := range 30 {
		must(os.WriteFile(filepath.Join(src, "a/b", fmt.Sprint(i)), nil, 0o644))
	}
	must(os.Symlink(strings.Repeat("t", 200), filepath.Join(src, "a/slow")))
	must(os.Symlink("fast", filepath.Join(src, "a/b/c/fast")))
	must(os.Link(filepath.Join(src, "a/b/1"), filepath.Join(src, "a/hard")))
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext4Inline, testutil.Ext3} {
		for _, how := range []string{"kernel", "e2fsck-D"} {
			t.Run(v.Name+"/"+how, func(t *testing.T) {
				img := filepath.Join(t.TempDir(), "img")
				v := v
				v.Args = append(slices.Clone(v.Args), "-N", "8000")
				if how == "kernel" {
					testutil.MkfsCopy(t, img, src, v, 64)
				} else {
					testutil.MkfsD(t, img, src, v, 64)
					testutil.IndexDirs(t, img)
				}
				fs := openRW(t, img)
				m := modelFromImage(t, fs)
				m.randomOps(rand.New(rand.NewPCG(5, uint64(len(v.Name)))), 1500, "big")
				m.verify(img)
			})
		}
	}
}

// TestDirLayoutMatchesKernel builds the same directories with the kernel
// and with the library, name by name, and compares the layouts the two
// choose: inline or block, linear or indexed, the directory's size and
// blocks, and the htree depth.
func TestDirLayoutMatchesKernel(t *testing.T) {
	testutil.RequireRoot(t)
	counts := []int{1, 2, 3, 4, 6, 9, 14, 20, 30, 60, 100, 200, 500, 1500, 6000}
	unsigned := testutil.Ext4
	unsigned.Name = "ext4-unsigned-hash"
	for _, v := range []testutil.Variant{testutil.Ext4Inline, testutil.Ext4, testutil.Ext4Block1K, testutil.Ext3, unsigned} {
		t.Run(v.Name, func(t *testing.T) {
			names := func(k int) []string {
				var ns []string
				for i := range k {
					// Bytes above 0x7f hash differently signed and unsigned.
					ns = append(ns, fmt.Sprintf("%d-%s-\xe9\xff", i, strings.Repeat("n", i%23)))
				}
				return ns
			}
			newImage := func() (string, *FS) {
				img, fs := newRWImage(t, v, 64, 9000)
				if v.Name == unsigned.Name {
					// Switch s_flags to unsigned hashing (mkfs picks signed on
					// x86) while the filesystem has no htree yet.
					if err := fs.Close(); err != nil {
						t.Fatal(err)
					}
					if out, err := exec.Command(testutil.RequireTool(t, "debugfs"), "-w", "-R", "ssv flags 2", img).CombinedOutput(); err != nil {
						t.Fatalf("debugfs: %v %s", err, out)
					}
					fs = openRW(t, img)
					if !fs.features.unsignedHash {
						t.Fatal("unsigned hash flag not set")
					}
				}
				return img, fs
			}
			// Ours.
			ours, fs := newImage()
			for _, k := range counts {
				d, err := fs.Mkdir(RootIno, []byte(fmt.Sprint(k)), 0o755, Cred{})
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names(k) {
					if _, err := fs.Mknod(d.Ino, []byte(n), sIFREG|0o644, 0, Cred{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			// The kernel's.
			theirs, tfs := newImage()
			if err := tfs.Close(); err != nil {
				t.Fatal(err)
			}
			mnt := t.TempDir()
			testutil.LoopMount(t, theirs, mnt, false)
			for _, k := range counts {
				dir := filepath.Join(mnt, fmt.Sprint(k))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, n := range names(k) {
					if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			testutil.Unmount(t, mnt)
			a, b := openImage(t, ours, Options{}), openImage(t, theirs, Options{})
			for _, k := range counts {
				layout := func(fs *FS) string {
					ino, err := fs.Lookup(RootIno, []byte(fmt.Sprint(k)))
					if err != nil {
						t.Fatal(err)
					}
					in, err := fs.Inode(ino)
					if err != nil {
						t.Fatal(err)
					}
					return fmt.Sprintf("size %d blocks %d inline %v htree levels %d",
						in.Size, in.Blocks512(), in.hasFlag(disk.InlineDataFL), dxLevels(t, fs, in))
				}
				la, lb := layout(a), layout(b)
				if la != lb {
					t.Errorf("%d names: ours %s, kernel %s", k, la, lb)
				}
				if k == counts[len(counts)-1] {
					t.Logf("%d names: %s", k, la)
				}
			}
		})
	}
}

// setLinks overwrites an inode's link count, to reach the limits quickly.
func setLinks(t *testing.T, fs *FS, ino Ino, n uint16) {
	t.Helper()
	err := fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		r.Raw.LinksCount = n
		tx.dirtyInodeLocked(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinkLimits checks EXT4_LINK_MAX: EMLINK for the 65001st link of a
// file, and for directories the dir_nlink rule: an indexed directory on a
// dir_nlink filesystem goes past 65000 subdirectories with a link count
// of 1; any other directory refuses with EMLINK. Link counts are raised
// artificially and restored before the image is checked.
func TestLinkLimits(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext3} {
		t.Run(v.Name, func(t *testing.T) {
			img, fs := newRWImage(t, v, 32, 500)
			m := newModel(t, fs)
			dirNlink := fs.geo.HasRoCompat(disk.RoCompatDirNlink)
			m.create("f")
			setLinks(t, fs, m.nodes["f"].ino, linkMax-1)
			in, err := fs.Link(m.nodes["f"].ino, RootIno, []byte("g"))
			if err != nil || in.Nlink != linkMax {
				t.Fatalf("link to %d: %v", linkMax, err)
			}
			m.expectErr("link past the limit", syscall.EMLINK, func() error {
				_, err := fs.Link(m.nodes["f"].ino, RootIno, []byte("h"))
				return err
			})
			if _, err := fs.Unlink(RootIno, []byte("g")); err != nil {
				t.Fatal(err)
			}
			setLinks(t, fs, m.nodes["f"].ino, 1)

			// An indexed directory and a linear one, both at the limit.
			m.mkdir("dx")
			for i := range 300 {
				m.create(fmt.Sprintf("dx/%d-%s", i, strings.Repeat("x", 30)))
			}
			m.mkdir("lin")
			d, _ := fs.Inode(m.dir("dx"))
			if !fs.isDx(d) {
				t.Fatal("dx is not indexed")
			}
			setLinks(t, fs, m.dir("lin"), linkMax)
			m.expectErr("mkdir in a full linear directory", syscall.EMLINK, func() error {
				_, err := fs.Mkdir(m.dir("lin"), []byte("s"), 0o755, m.cred)
				return err
			})
			m.mkdir("other")
			m.expectErr("rename a directory into a full one", syscall.EMLINK, func() error {
				_, err := fs.Rename(RootIno, []byte("other"), m.dir("lin"), []byte("o"), 0)
				return err
			})
			setLinks(t, fs, m.dir("lin"), 2)

			setLinks(t, fs, m.dir("dx"), linkMax-1)
			m.mkdir("dx/s1") // the 65000th link
			if d, _ := fs.Inode(m.dir("dx")); d.Nlink != linkMax {
				t.Fatalf("nlink %d, want %d", d.Nlink, linkMax)
			}
			if !dirNlink {
				m.expectErr("mkdir past the limit without dir_nlink", syscall.EMLINK, func() error {
					_, err := fs.Mkdir(m.dir("dx"), []byte("s2"), 0o755, m.cred)
					return err
				})
			} else {
				for _, s := range []string{"dx/s2", "dx/s3"} {
					m.mkdir(s)
					if d, _ := fs.Inode(m.dir("dx")); d.Nlink != 1 {
						t.Fatalf("after mkdir %s: nlink %d, want 1", s, d.Nlink)
					}
				}
				m.rmdir("dx/s3")
				if d, _ := fs.Inode(m.dir("dx")); d.Nlink != 1 {
					t.Fatalf("after rmdir: nlink %d, want 1 (saturated)", d.Nlink)
				}
			}
			setLinks(t, fs, m.dir("dx"), uint16(m.nlinks()["dx"]))
			m.verify(img)
		})
	}
}

// TestManySubdirs really creates more than 65000 subdirectories in one
// directory (inline ones, so no blocks each): its link count saturates at
// 1 and e2fsck and the kernel agree.
func TestManySubdirs(t *testing.T) {
	if testing.Short() {
		t.Skip("65,000 directories")
	}
	const n = linkMax + 10
	img, fs := newRWImage(t, testutil.Ext4Inline, 256, n+100)
	m := newModel(t, fs)
	m.mkdir("d")
	for i := range n {
		m.mkdir(fmt.Sprintf("d/%d", i))
	}
	if d, _ := fs.Inode(m.dir("d")); d.Nlink != 1 {
		t.Fatalf("nlink %d, want 1", d.Nlink)
	}
	// Stay above the limit: below it, e2fsck -n reports the saturated
	// count (it only fixes it silently when allowed to write).
	for i := range 5 {
		m.rmdir(fmt.Sprintf("d/%d", i))
	}
	m.verify(img)
}

// TestWriteLargeDirThreeLevels grows a directory on a large_dir filesystem
// with 1 KiB blocks and maximal names until its htree has three index
// levels (the root, two interior levels), then checks it.
func TestWriteLargeDirThreeLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("tens of thousands of entries")
	}
	v := testutil.Variant{Name: "ext4-1k-largedir", Args: []string{"-t", "ext4", "-b", "1024", "-O", "large_dir"}, BlockSize: 1024}
	img, fs := newRWImage(t, v, 256, 60000)
	m := newModel(t, fs)
	m.mkdir("d")
	name := func(i int) string {
		s := fmt.Sprintf("%d-", i)
		return "d/" + s + strings.Repeat("L", 255-len(s))
	}
	n := 0
	for ; n < 55000; n++ {
		m.create(name(n))
		if n%1000 == 999 {
			d, _ := fs.Inode(m.dir("d"))
			if dxLevels(t, fs, d) == 3 {
				break
			}
		}
	}
	d, _ := fs.Inode(m.dir("d"))
	if l := dxLevels(t, fs, d); l != 3 {
		t.Fatalf("%d entries: %d levels, want 3", n, l)
	}
	t.Logf("three levels after %d entries (%d blocks)", n+1, d.Size/1024)
	for i := 0; i < n; i += 4 {
		m.unlink(name(i))
	}
	m.verify(img)
}

// TestWriteHtreeIndexFull fills an indexed directory without large_dir
// until its two-level index is full: the next name that needs a new leaf
// fails with ENOSPC, as on the kernel, and the directory stays sound.
func TestWriteHtreeIndexFull(t *testing.T) {
	if testing.Short() {
		t.Skip("tens of thousands of entries")
	}
	img, fs := newRWImage(t, testutil.Ext4Block1K, 256, 60000)
	m := newModel(t, fs)
	m.mkdir("d")
	name := func(i int) string {
		s := fmt.Sprintf("%d-", i)
		return s + strings.Repeat("F", 255-len(s))
	}
	for i := range 55000 {
		in, err := fs.Mknod(m.dir("d"), []byte(name(i)), sIFREG|0o644, 0, m.cred)
		if errors.Is(err, syscall.ENOSPC) {
			t.Logf("index full after %d entries", i)
			d, _ := fs.Inode(m.dir("d"))
			if l := dxLevels(t, fs, d); l != 2 {
				t.Fatalf("ENOSPC with %d levels", l)
			}
			if st := fs.Statfs(); st.Ffree == 0 || st.Bfree == 0 {
				t.Fatalf("ENOSPC from a full filesystem, not the index: %+v", st)
			}
			m.verify(img)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m.add("d/"+name(i), in, "")
	}
	t.Fatal("the index never filled")
}
