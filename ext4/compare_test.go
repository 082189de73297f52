package ext4

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/ext4/disk"
)

// TestImages compares everything the library reports about each image
// variant with the kernel's view of the same image (or, where the kernel
// cannot mount it, with the source tree).
func TestImages(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			img, src, spec := image(t, v)
			fsys := openImage(t, img, Options{})
			oracle, kernel := src, false
			if !v.noMount {
				oracle, kernel = mountKernel(t, img), true
			}
			c := &comparer{t: t, fs: fsys, root: oracle, kernel: kernel}
			err := filepath.WalkDir(oracle, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(oracle, path)
				if !kernel && rel == "lost+found" {
					return filepath.SkipDir
				}
				c.compare(rel)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.n < bigDirEntries {
				t.Fatalf("compared only %d paths", c.n)
			}
			if kernel {
				c.compareStatfs()
			}
			checkBigDir(t, fsys, spec)
			if slices.Contains(v.ssv, "flags 2") != fsys.features.unsignedHash {
				t.Errorf("unsigned hash flag %v, variant %v", fsys.features.unsignedHash, v.ssv)
			}
			if v.bigXattr {
				checkEAInode(t, fsys)
			}
		})
	}
}

type comparer struct {
	t      *testing.T
	fs     *FS
	root   string
	kernel bool // root is a kernel mount of the same image
	n      int
}

func (c *comparer) compare(rel string) {
	t := c.t
	c.n++
	path := filepath.Join(c.root, rel)
	ino, err := resolve(c.fs, rel)
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	in, err := c.fs.Inode(ino)
	if err != nil {
		t.Errorf("%s: Inode(%d): %v", rel, ino, err)
		return
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if uint32(in.Mode) != st.Mode {
		t.Errorf("%s: mode %#o, want %#o", rel, in.Mode, st.Mode)
	}
	if in.Uid != st.Uid || in.Gid != st.Gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", rel, in.Uid, in.Gid, st.Uid, st.Gid)
	}
	if in.Mode&sIFMT != sIFDIR && in.Size != uint64(st.Size) {
		t.Errorf("%s: size %d, want %d", rel, in.Size, st.Size)
	}
	if t := in.Mode & sIFMT; (t == sIFCHR || t == sIFBLK) && in.Rdev() != uint32(st.Rdev) {
		c.t.Errorf("%s: rdev %#x, want %#x", rel, in.Rdev(), st.Rdev)
	}
	if in.Mtime.Unix() != st.Mtim.Sec && (c.kernel || rel != ".") { // mkfs sets the root's times
		t.Errorf("%s: mtime %v, want %d", rel, in.Mtime, st.Mtim.Sec)
	}
	if c.kernel {
		if uint64(ino) != st.Ino {
			t.Errorf("%s: ino %d, kernel says %d", rel, ino, st.Ino)
		}
		if in.Size != uint64(st.Size) || in.Nlink != uint32(st.Nlink) || in.Blocks512() != uint64(st.Blocks) {
			t.Errorf("%s: size/nlink/blocks %d/%d/%d, kernel %d/%d/%d", rel,
				in.Size, in.Nlink, in.Blocks512(), st.Size, st.Nlink, st.Blocks)
		}
		for _, p := range []struct {
			name string
			got  int64
			want unix.Timespec
		}{{"atime", in.Atime.UnixNano(), st.Atim}, {"mtime", in.Mtime.UnixNano(), st.Mtim}, {"ctime", in.Ctime.UnixNano(), st.Ctim}} {
			if p.got != p.want.Nano() {
				t.Errorf("%s: %s %d, kernel %d", rel, p.name, p.got, p.want.Nano())
			}
		}
	}
	switch in.Mode & sIFMT {
	case sIFREG:
		c.compareFile(rel, path, ino, in)
	case sIFLNK:
		want, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.fs.ReadLink(ino)
		if err != nil || string(got) != want {
			t.Errorf("%s: ReadLink = %q, %v; want %q", rel, got, err, want)
		}
	case sIFDIR:
		c.compareDir(rel, path, ino)
	}
	c.compareXattrs(rel, path, ino)
}

// compareFile checks contents, and against the kernel SEEK_DATA/SEEK_HOLE.
func (c *comparer) compareFile(rel, path string, ino Ino, in *Inode) {
	t := c.t
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(in.Size)
	// Offsets to probe: data/hole boundaries of the oracle plus a few
	// random ones and the edges.
	r := rand.New(rand.NewPCG(uint64(size), 7))
	probes := []int64{0, size - 1, size, size + 1}
	for i := 0; i < 8 && size > 0; i++ {
		probes = append(probes, r.Int64N(size))
	}
	for off := int64(0); off < size; {
		d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break
		}
		h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, d, h, d-1, h-1)
		off = h
	}
	buf := make([]byte, 70000)
	want := make([]byte, len(buf))
	for _, off := range probes {
		if off < 0 {
			continue
		}
		n, err := c.fs.ReadAt(ino, buf, off)
		m, werr := f.ReadAt(want, off)
		if n != m || !bytes.Equal(buf[:n], want[:m]) || (err == io.EOF) != (werr == io.EOF) {
			t.Errorf("%s: ReadAt(%d) = %d, %v; oracle %d, %v (equal bytes: %v)", rel, off, n, err, m, werr,
				bytes.Equal(buf[:min(n, m)], want[:min(n, m)]))
		}
		if c.kernel {
			for _, whence := range []int{unix.SEEK_DATA, unix.SEEK_HOLE} {
				kw, kerr := unix.Seek(int(f.Fd()), off, whence)
				var got int64
				var gerr error
				if whence == unix.SEEK_DATA {
					got, gerr = c.fs.SeekData(ino, off)
				} else {
					got, gerr = c.fs.SeekHole(ino, off)
				}
				if got != kw && !(kerr != nil && gerr != nil) || (kerr == nil) != (gerr == nil) {
					t.Errorf("%s: seek(%d, %d) = %d, %v; kernel %d, %v", rel, off, whence, got, gerr, kw, kerr)
				}
			}
		}
	}
	// Whole-file comparison for files of reasonable size.
	if size <= 16<<20 {
		all := make([]byte, size+10)
		n, err := c.fs.ReadAt(ino, all, 0)
		wantAll, werr := os.ReadFile(path)
		if werr != nil {
			t.Fatal(werr)
		}
		if n != len(wantAll) || !bytes.Equal(all[:n], wantAll) || err != io.EOF {
			t.Errorf("%s: full read %d bytes, %v; want %d bytes", rel, n, err, len(wantAll))
		}
	}
	c.checkMapping(rel, ino, in)
}

// checkMapping walks Map over the file: segments must tile the file from
// 0, and mapped blocks must hold what ReadAt returns.
func (c *comparer) checkMapping(rel string, ino Ino, in *Inode) {
	t := c.t
	size := int64(in.Size)
	if size == 0 {
		return
	}
	if in.hasFlag(disk.InlineDataFL) {
		m, err := c.fs.Map(ino, 0, size)
		if err != nil || m.Type != MapInline || m.Length != size || int64(len(m.Inline)) > size {
			t.Errorf("%s: inline Map = %+v, %v", rel, m, err)
		}
		return
	}
	bs := int64(c.fs.BlockSize())
	segs := 0
	for off := int64(0); off < size; segs++ {
		m, err := c.fs.Map(ino, off, size-off)
		if err != nil {
			t.Errorf("%s: Map(%d): %v", rel, off, err)
			return
		}
		if m.Offset != off || m.Length <= 0 || m.Length%bs != 0 {
			t.Errorf("%s: Map(%d) = %+v", rel, off, m)
			return
		}
		if m.Type == MapMapped {
			n := min(m.Length, size-off, 1<<16)
			dev := make([]byte, n)
			if _, err := c.fs.dev.ReadAt(dev, m.Addr); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, n)
			if _, err := c.fs.ReadAt(ino, got, off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(dev, got) {
				t.Errorf("%s: mapped bytes at %d (device %d) differ from ReadAt", rel, off, m.Addr)
			}
		}
		off += m.Length
	}
	if size > 0 && segs == 0 {
		t.Errorf("%s: no mappings", rel)
	}
}

func (c *comparer) compareDir(rel, path string, ino Ino) {
	t := c.t
	ents, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range ents {
		if !c.kernel && rel == "." && e.Name() == "lost+found" {
			continue
		}
		want = append(want, e.Name())
	}
	var got []string
	var first []string
	err = c.fs.ReadDir(ino, 0, func(e DirEntry) bool {
		if len(first) < 2 {
			first = append(first, string(e.Name))
		}
		name := string(e.Name)
		if name == "." || name == ".." {
			return true
		}
		if !c.kernel && rel == "." && name == "lost+found" {
			return true
		}
		got = append(got, name)
		if c.fs.features.filetype {
			child, err := c.fs.Inode(e.Ino)
			if err != nil {
				t.Errorf("%s/%s: %v", rel, name, err)
			} else if modeToDT(child.Mode) != e.Type {
				t.Errorf("%s/%s: type %d, inode says %d", rel, name, e.Type, modeToDT(child.Mode))
			}
		}
		return true
	})
	if err != nil {
		t.Errorf("%s: ReadDir: %v", rel, err)
		return
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: ReadDir names differ: got %d, want %d", rel, len(got), len(want))
	}
	if !slices.Equal(first, []string{".", ".."}) {
		t.Errorf("%s: listing starts with %q", rel, first)
	}
	if dot, err := c.fs.Lookup(ino, []byte(".")); dot != ino || err != nil {
		t.Errorf("%s: Lookup(.) = %d, %v", rel, dot, err)
	}
	if c.kernel && rel != "." { // the mount root's ".." is outside the image
		var pst unix.Stat_t
		if err := unix.Lstat(filepath.Join(path, ".."), &pst); err != nil {
			t.Fatal(err)
		}
		if dd, err := c.fs.Lookup(ino, []byte("..")); uint64(dd) != pst.Ino || err != nil {
			t.Errorf("%s: Lookup(..) = %d, %v; kernel %d", rel, dd, err, pst.Ino)
		}
	}
}

func (c *comparer) compareXattrs(rel, path string, ino Ino) {
	t := c.t
	sz, err := unix.Llistxattr(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatal(err)
	}
	keep := func(n string) bool {
		return strings.HasPrefix(n, "user.") || strings.HasPrefix(n, "trusted.") || strings.HasPrefix(n, "system.posix_acl")
	}
	var want []string
	for _, n := range strings.Split(string(buf[:sz]), "\x00") {
		if n != "" && keep(n) {
			want = append(want, n)
		}
	}
	names, err := c.fs.ListXattr(ino)
	if err != nil {
		t.Errorf("%s: ListXattr: %v", rel, err)
		return
	}
	var got []string
	for _, n := range names {
		if keep(n) {
			got = append(got, n)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: xattrs %q, want %q", rel, got, want)
	}
	for _, n := range want {
		v := make([]byte, 65536)
		m, err := unix.Lgetxattr(path, n, v)
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.fs.GetXattr(ino, n)
		if err != nil || !bytes.Equal(g, v[:m]) {
			t.Errorf("%s: GetXattr(%s) = %x, %v; want %x", rel, n, g, err, v[:m])
		}
	}
	if _, err := c.fs.GetXattr(ino, "user.absent"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("%s: GetXattr(absent) = %v, want ENODATA", rel, err)
	}
}

func (c *comparer) compareStatfs() {
	var st unix.Statfs_t
	if err := unix.Statfs(c.root, &st); err != nil {
		c.t.Fatal(err)
	}
	got := c.fs.Statfs()
	if got.Blocks != st.Blocks || got.Bfree != st.Bfree || got.Bavail != st.Bavail ||
		got.Files != st.Files || got.Ffree != st.Ffree || int64(got.Bsize) != st.Bsize || int64(got.Namelen) != st.Namelen {
		c.t.Errorf("Statfs = %+v\nkernel  %+v", got, st)
	}
}

// checkBigDir checks the indexed directory: every name found through the
// htree, absent names not found, and listing in small batches resuming
// from cookies yields the same sequence as one listing.
func checkBigDir(t *testing.T, fsys *FS, spec treeSpec) {
	dir, err := resolve(fsys, spec.bigDir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := fsys.Inode(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fsys.features.dirIndex && !fsys.isDx(in) {
		t.Errorf("%s is not indexed (flags %#x); e2fsck -D should have indexed it", spec.bigDir, in.Flags)
	}
	for _, n := range spec.bigNames {
		if _, err := fsys.Lookup(dir, []byte(n)); err != nil {
			t.Errorf("Lookup(%s): %v", n, err)
		}
	}
	for _, n := range []string{"absent", "entry-00001-", "entry-99999", strings.Repeat("z", 255)} {
		if _, err := fsys.Lookup(dir, []byte(n)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("Lookup(%s) = %v, want ENOENT", n, err)
		}
	}
	if _, err := fsys.Lookup(dir, []byte(strings.Repeat("z", 256))); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("Lookup(256 bytes) = %v, want ENAMETOOLONG", err)
	}
	var all []string
	if err := fsys.ReadDir(dir, 0, func(e DirEntry) bool { all = append(all, string(e.Name)); return true }); err != nil {
		t.Fatal(err)
	}
	var batched []string
	cookie := uint64(0)
	for range len(all) + 1 {
		n := 0
		err := fsys.ReadDir(dir, cookie, func(e DirEntry) bool {
			batched = append(batched, string(e.Name))
			cookie = e.Next
			n++
			return n < 7
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if !slices.Equal(all, batched) {
		t.Errorf("batched listing (%d entries) differs from single listing (%d)", len(batched), len(all))
	}
	if len(all) != len(spec.bigNames)+2 {
		t.Errorf("listing has %d entries, want %d", len(all), len(spec.bigNames)+2)
	}
}

// checkEAInode checks that the large value debugfs stored really lives in
// an EA inode (so the comparison above exercised that path).
func checkEAInode(t *testing.T, fsys *FS) {
	ino := mustResolve(t, fsys, "f4096")
	in, err := fsys.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	e, err := fsys.findXattrLocked(in, disk.XattrIndexUser, []byte("huge"))
	if err != nil || e == nil || e.ValueInum == 0 {
		t.Fatalf("user.huge = %+v, %v; want a value in an EA inode", e, err)
	}
	v, err := fsys.GetXattr(ino, "user.huge")
	// (debugfs 1.47.0's ea_set -f stores at most one block of the file.)
	if err != nil || len(v) != int(e.ValueSize) || len(v) < fsys.BlockSize() {
		t.Fatalf("GetXattr(user.huge) = %d bytes, %v; entry says %d", len(v), err, e.ValueSize)
	}
}
