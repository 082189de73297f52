package ext4

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4/disk"
)

// TestLargeDirThreeLevels builds, through the kernel, a directory whose
// htree needs three levels (large_dir), then looks up every name.
func TestLargeDirThreeLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: creates 40000 files through a loop mount")
	}
	requireTools(t)
	requireRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	run(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-N", "60000", "-O", "large_dir", "-E", "lazy_itable_init=0", img, "400M")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-o", "loop", img, mnt)
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	// 1 KiB blocks and 200-byte names: 4 entries per leaf, 123 leaves per
	// root-level index block and 126 per node, so 2 levels hold about
	// 62000 entries when full; kernel splits leave them half full.
	const n = 40000
	names := make([]string, n)
	big := filepath.Join(mnt, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = fmt.Sprintf("%06d-%s", i, strings.Repeat("L", 193))
		f, err := os.Create(filepath.Join(big, names[i]))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	run(t, "umount", mnt)
	mounted = false
	run(t, "e2fsck", "-fn", img)

	fs := openImage(t, img, Options{})
	ino := mustResolve(t, fs, "big")
	in, _ := fs.Inode(ino)
	d, err := fs.dirBlockLocked(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	root, err := disk.DecodeDxRoot(d.data, fs.csum)
	if err != nil {
		t.Fatal(err)
	}
	if root.Info.IndirectLevels != 2 {
		t.Fatalf("htree has %d indirect levels, want 2 (three levels); grow n", root.Info.IndirectLevels)
	}
	for _, name := range names {
		if _, err := fs.Lookup(ino, []byte(name)); err != nil {
			t.Fatalf("Lookup(%s): %v", name[:6], err)
		}
	}
	if _, err := fs.Lookup(ino, []byte("999999-"+strings.Repeat("L", 193))); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("absent name: %v", err)
	}
	cnt := 0
	if err := fs.ReadDir(ino, 0, func(DirEntry) bool { cnt++; return true }); err != nil || cnt != n+2 {
		t.Fatalf("ReadDir: %d entries, %v", cnt, err)
	}
}
