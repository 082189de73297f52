package disk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func srcPath(name string) string { return filepath.Join(images.dir, "src", name) }

func TestFilesImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			for _, f := range []string{"hello", "big", "sparse", "xattrs"} {
				want, err := os.ReadFile(srcPath(f))
				if err != nil {
					t.Fatal(err)
				}
				if got := fs.readFile(t, fs.lookup(t, f)); !bytes.Equal(got, want) {
					t.Errorf("%s: contents differ (%d vs %d bytes)", f, len(got), len(want))
				}
			}
			for _, f := range []string{"hello", "big", "sparse", "fastlink", "slowlink", "cdev", "bdev", "fifo", "small", "large"} {
				ino := fs.lookup(t, f)
				in := fs.inode(t, ino)
				var st syscall.Stat_t
				if err := syscall.Lstat(srcPath(f), &st); err != nil {
					t.Fatal(err)
				}
				if in.Mode != uint16(st.Mode) {
					t.Errorf("%s: mode %#o, want %#o", f, in.Mode, st.Mode)
				}
				if in.Uid() != st.Uid || in.Gid() != st.Gid {
					t.Errorf("%s: uid/gid %d/%d, want %d/%d", f, in.Uid(), in.Gid(), st.Uid, st.Gid)
				}
				if !in.IsDir() && in.Size() != uint64(st.Size) {
					t.Errorf("%s: size %d, want %d", f, in.Size(), st.Size)
				}
				// mkfs.ext4 -d keeps whole seconds (DEVELOPERS.md).
				if sec, _ := in.Mtime(); sec != st.Mtim.Sec {
					t.Errorf("%s: mtime %d, want %d", f, sec, st.Mtim.Sec)
				}
				if in.Type() == S_IFCHR || in.Type() == S_IFBLK {
					// The kernel's stat rdev is new_encode_dev; syscall's
					// Rdev is the glibc 64-bit form, equal for these values.
					if uint64(in.Rdev()) != st.Rdev {
						t.Errorf("%s: rdev %#x, want %#x", f, in.Rdev(), st.Rdev)
					}
				}
				if f == "fastlink" {
					if got := string(bytes.TrimRight(in.Block[:], "\x00")); got != "hello" {
						t.Errorf("fast symlink target %q", got)
					}
				}
				// i_blocks against debugfs.
				out := fs.debugfs(t, "stat <"+strconv.Itoa(int(ino))+">")
				m := regexp.MustCompile(`Blockcount: (\d+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("debugfs stat: no Blockcount in %q", out)
				}
				if got := fmt.Sprint(in.Blocks512(fs.sb.HasRoCompat(RoCompatHugeFile), fs.sb.BlockSize())); got != m[1] {
					t.Errorf("%s: Blocks512 %s, debugfs %s", f, got, m[1])
				}
				if fs.sb.InodeSize() > GoodOldInodeSize {
					if _, _, ok := in.Crtime(); !ok {
						t.Errorf("%s: no crtime in a %d-byte inode", f, fs.sb.InodeSize())
					}
					if c, _ := in.Ctime(); c != st.Ctim.Sec {
						t.Errorf("%s: ctime %d, want %d", f, c, st.Ctim.Sec)
					}
				}
			}
		})
	}
}

func TestDirectoriesImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			root := fs.readDir(t, RootIno)
			var names []string
			for _, e := range root {
				names = append(names, e.name)
			}
			src, _ := os.ReadDir(srcPath(""))
			want := []string{".", "..", "lost+found"}
			for _, e := range src {
				want = append(want, e.Name())
			}
			slices.Sort(names)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("root: %v, want %v", names, want)
			}
			for _, e := range root {
				in := fs.inode(t, e.ino)
				if fs.sb.HasIncompat(IncompatFiletype) && e.ft != FileTypeFromMode(in.Mode) {
					t.Errorf("%s: file type %d, mode %#o", e.name, e.ft, in.Mode)
				}
			}
			large := fs.lookup(t, "large")
			in := fs.inode(t, large)
			if fs.sb.HasCompat(CompatDirIndex) && in.Flags&IndexFL == 0 {
				t.Errorf("large directory is not indexed")
			}
			got := map[string]bool{}
			for _, e := range fs.readDir(t, large) {
				got[e.name] = true
			}
			if len(got) != largeDirN+2 {
				t.Errorf("large: %d entries, want %d", len(got), largeDirN+2)
			}
			for i := range largeDirN {
				if !got[dirName(i)] {
					t.Fatalf("large: %q missing", dirName(i))
				}
			}
			small := fs.lookup(t, "small")
			if fs.sb.HasIncompat(IncompatInlineData) && fs.inode(t, small).Flags&InlineDataFL == 0 {
				t.Errorf("small directory is not inline")
			}
			var sn []string
			for _, e := range fs.readDir(t, small) {
				sn = append(sn, e.name)
			}
			slices.Sort(sn)
			if strings.Join(sn, " ") != ". .. a bb ccc" {
				t.Errorf("small: %v", sn)
			}
		})
	}
}

func TestXattrsImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			ino := fs.lookup(t, "xattrs")
			in := fs.inode(t, ino)
			got := map[string][]byte{}
			hashed := 0
			for _, e := range fs.xattrs(t, ino, in) {
				full, ok := XattrFullName(e.NameIndex, e.Name)
				if !ok {
					t.Fatalf("entry index %d name %q has no name", e.NameIndex, e.Name)
				}
				if e.Hash != 0 {
					hashed++
					if !XattrEntryHashOK(&e) {
						t.Errorf("%s: hash %#x, computed %#x", full, e.Hash, XattrEntryHash(e.Name, e.Value))
					}
				}
				got[full] = e.Value
				idx, suf, ok := XattrSplitName(full)
				if !ok || idx != e.NameIndex || suf != string(e.Name) {
					t.Errorf("XattrSplitName(%q) = %d %q %v", full, idx, suf, ok)
				}
			}
			if hashed == 0 {
				t.Error("no entry carries a hash to check")
			}
			for _, x := range []string{"user.small", "user.big", "trusted.t"} {
				want := make([]byte, 1000)
				n, err := syscall.Getxattr(srcPath("xattrs"), x, want)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[x], want[:n]) {
					t.Errorf("%s = %q, want %q", x, got[x], want[:n])
				}
			}
			acl, err := ExtACLToXattr(got[XattrNamePosixACLAccess])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(acl, testACLXattr) {
				t.Errorf("ACL %x, want %x", acl, testACLXattr)
			}
			back, err := XattrACLToExt(acl)
			if err != nil || !bytes.Equal(back, got[XattrNamePosixACLAccess]) {
				t.Errorf("ACL round trip: %x, %v", back, err)
			}
			// The block hash, where there is a block.
			if blk := in.FileACL(); blk != 0 {
				h, es, err := DecodeXattrBlock(fs.block(blk))
				if err != nil {
					t.Fatal(err)
				}
				// e2fsprogs leaves h_hash zero; the kernel fills it in.
				if h.Hash != 0 && XattrBlockHash(es) != h.Hash {
					t.Errorf("block hash %#x, computed %#x", h.Hash, XattrBlockHash(es))
				}
			} else if fs.sb.InodeSize() == GoodOldInodeSize {
				t.Errorf("128-byte inodes but no xattr block")
			}
			dacl := fs.lookup(t, "acldir")
			for _, e := range fs.xattrs(t, dacl, fs.inode(t, dacl)) {
				if e.NameIndex == XattrIndexPosixACLDefault {
					if x, err := ExtACLToXattr(e.Value); err != nil || !bytes.Equal(x, testACLXattr) {
						t.Errorf("default ACL %x, %v", x, err)
					}
					return
				}
			}
			t.Errorf("acldir has no default ACL")
		})
	}
}
