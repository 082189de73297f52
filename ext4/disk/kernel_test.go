package disk

// The kernel's ext4 as the oracle for what e2fsprogs does not write: the
// xattr block hash, extent tree blocks with tail checksums, and
// kernel-computed checksums on everything it touched.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func copyFile(t *testing.T, dst, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestKernelWrittenMetadata(t *testing.T) {
	for _, name := range []string{"ext4-4k", "ext4-1k", "inline"} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			copyFile(t, img, imagePath(t, name))
			mnt := filepath.Join(t.TempDir(), "mnt")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("loop mount: %v\n%s", err, out)
				}
				t.Skipf("loop mount unavailable: %v %s", err, out)
			}
			mounted := true
			defer func() {
				if mounted {
					exec.Command("umount", mnt).Run()
				}
			}()
			// A file with a value too large for the inode (so an xattr
			// block) and a fragmented file (so an extent tree block).
			kx := filepath.Join(mnt, "kx")
			if err := os.WriteFile(kx, []byte("k"), 0o644); err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("kernel"), 100)
			for _, x := range []struct {
				name string
				val  []byte
			}{{"user.big", big}, {"user.s", []byte("small")}, {"user.\xe9t\xe9", bytes.Repeat([]byte("h"), 300)}} {
				if err := syscall.Setxattr(kx, x.name, x.val, 0); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Create(filepath.Join(mnt, "frag"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				if _, err := f.WriteAt([]byte("x"), int64(i)*3*65536); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Fatalf("umount: %v %s", err, out)
			}
			mounted = false
			if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck: %v\n%s", err, out)
			}

			fs := loadImageFile(t, name, img)
			if err := fs.sb.VerifyChecksum(); err != nil {
				t.Fatal(err)
			}
			for g, rec := range fs.gdb {
				if err := VerifyGroupDescChecksum(fs.sb, fs.seed, uint32(g), rec); err != nil {
					t.Fatalf("group %d: %v", g, err)
				}
			}
			ino := fs.lookup(t, "kx") // verifies the root directory's checksums
			if err := VerifyInodeChecksum(fs.seed, ino, fs.inodeRecord(ino)); err != nil {
				t.Fatal(err)
			}
			in := fs.inode(t, ino)
			blk := in.FileACL()
			if blk == 0 {
				t.Fatal("no xattr block")
			}
			h, es, err := DecodeXattrBlock(fs.block(blk))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyXattrBlockChecksum(fs.seed, blk, fs.block(blk)); err != nil {
				t.Fatal(err)
			}
			if h.Hash == 0 || XattrBlockHash(es) != h.Hash {
				t.Errorf("h_hash %#x, computed %#x", h.Hash, XattrBlockHash(es))
			}
			// Kernels since 6.2 hash names as unsigned chars. (In-inode
			// entries carry no hash: the kernel leaves e_hash zero there.)
			highName := false
			for _, e := range es {
				highName = highName || bytes.IndexByte(e.Name, 0xe9) >= 0
				if e.Hash != XattrEntryHash(e.Name, e.Value) {
					t.Errorf("%q: e_hash %#x, computed %#x", e.Name, e.Hash, XattrEntryHash(e.Name, e.Value))
				}
			}
			if !highName {
				t.Error("the name with bytes >= 0x80 is not in the block: signedness untested")
			}
			frag := fs.lookup(t, "frag")
			fin := fs.inode(t, frag)
			root, err := DecodeExtentNode(fin.Block[:])
			if err != nil {
				t.Fatal(err)
			}
			if root.Header.Depth == 0 {
				t.Fatalf("fragmented file has no extent tree block (%d extents)", len(root.Extents))
			}
			data := fs.readFile(t, frag) // verifies extent block checksums
			for i := range 40 {
				if data[i*3*65536] != 'x' {
					t.Fatalf("frag: byte %d is %q", i*3*65536, data[i*3*65536])
				}
			}
		})
	}
}
