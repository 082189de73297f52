package server

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/e4box/e4box/internal/testutil"
	"golang.org/x/sys/unix"
)

// bigDirName is the i-th name of TestRWBigDirectory: varied lengths, so
// entries pack unevenly and leaves split at different points.
func bigDirName(i int) string {
	return fmt.Sprintf("entry-%06d-%s", i, strings.Repeat("x", i%48))
}

// TestRWBigDirectory creates a 100,000-entry directory through an e4box
// mount (the directory becomes an htree with a second index level on 1 KiB
// blocks), removes every tenth entry, then checks: e4box's own listing, a
// clean e2fsck, and the kernel's ext4 listing and looking up every name.
func TestRWBigDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 creates through FUSE; runs in the full test step")
	}
	requireRWMount(t)
	const n = 100000
	v := testutil.Ext4Block1K
	v.Args = append(append([]string(nil), v.Args...), "-N", "120000")
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, t.TempDir(), v, 256)

	m := mountRW(t, img, Options{})
	dir := m.p("big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := unix.Mknod(filepath.Join(dir, bigDirName(i)), unix.S_IFREG|0o644, 0); err != nil {
			t.Fatalf("mknod #%d: %v", i, err)
		}
	}
	want := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			if err := unix.Unlink(filepath.Join(dir, bigDirName(i))); err != nil {
				t.Fatalf("unlink #%d: %v", i, err)
			}
			continue
		}
		want = append(want, bigDirName(i))
	}
	sort.Strings(want)
	checkNames := func(who, d string) {
		t.Helper()
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatalf("%s: readdir: %v", who, err)
		}
		got := make([]string, len(ents))
		for i, e := range ents {
			got[i] = e.Name()
		}
		sort.Strings(got)
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, want %d", who, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: entry %d is %q, want %q", who, i, got[i], want[i])
			}
		}
	}
	checkNames("e4box", dir)
	m.unmount(t)
	testutil.E2fsckClean(t, img)

	// The directory must be indexed with two levels, as the kernel would
	// have made it.
	out := testutil.Debugfs(t, img, "htree_dump /big")
	if !strings.Contains(out, "Indirect levels: 1") {
		t.Errorf("htree_dump /big: want a second index level:\n%.400s", out)
	}

	kdir := t.TempDir()
	testutil.LoopMount(t, img, kdir, true)
	checkNames("kernel", filepath.Join(kdir, "big"))
	for _, name := range want {
		if _, err := os.Lstat(filepath.Join(kdir, "big", name)); err != nil {
			t.Fatalf("kernel lookup: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(kdir, "big", bigDirName(0))); !os.IsNotExist(err) {
		t.Errorf("kernel lookup of a removed name: %v, want ENOENT", err)
	}
}
