package server

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/e4box/e4box/internal/optest"
	"github.com/e4box/e4box/internal/testutil"

	"golang.org/x/sys/unix"
)

// TestRWModifyKernelWritten is the reverse direction: the kernel's ext4
// writes an image (a large htree directory, files fragmented by
// interleaved synced appends, xattrs), e4box then modifies all of it
// through a read-write mount, and the result must be e2fsck-clean and read
// back by the kernel exactly as a tmpfs reference given the same
// operations.
func TestRWModifyKernelWritten(t *testing.T) {
	requireRW(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext3} {
		t.Run(v.Name, func(t *testing.T) {
			img := optest.NewImage(t, v, 256, 32768)
			ref := optest.Tmpfs(t)

			kdir := t.TempDir()
			testutil.LoopMount(t, img, kdir, false)
			kroot := filepath.Join(kdir, optest.TargetDir)
			kernelPhase(t, kroot)
			// The point is modifying fragmented files: make sure they are.
			out, err := exec.Command("filefrag", filepath.Join(kroot, "frag", "f01")).CombinedOutput()
			var n int
			if _, serr := fmt.Sscanf(string(out[bytes.LastIndexByte(out, ':')+1:]), "%d extents found", &n); err != nil || serr != nil || n < 5 {
				t.Fatalf("filefrag: %q (%v): want more than the inode's 4 extent slots", out, err)
			}
			testutil.Unmount(t, kdir)
			kernelPhase(t, ref)
			if !testutil.E2fsckClean(t, img) {
				t.Fatal("the kernel's image is not clean before e4box touched it")
			}

			m := mountOptestRW(t, img)
			e4boxPhase(t, filepath.Join(m.dir, optest.TargetDir))
			m.unmount(t)
			e4boxPhase(t, ref)
			testutil.E2fsckClean(t, img)

			want, err := testutil.Snapshot(ref)
			if err != nil {
				t.Fatal(err)
			}
			rdir := t.TempDir()
			testutil.LoopMount(t, img, rdir, true)
			got, err := testutil.Snapshot(filepath.Join(rdir, optest.TargetDir))
			if err != nil {
				t.Fatal(err)
			}
			testutil.Unmount(t, rdir)
			o := testutil.CopiedTreeOptions()
			o.Ignore |= testutil.FieldAtime | testutil.FieldMtime
			o.IgnoreRoot |= testutil.FieldNlink
			testutil.CompareSnapshots(t, want, got, o)
			if n := len(got["big"].Names); n != 4000 {
				t.Errorf("big/ lists %d names after the e4box phase, want 4000", n)
			}
		})
	}
}

const (
	kwBig   = 6000 // kernel-made entries in big/ (a multi-block htree)
	kwFiles = 12   // fragmented files
	kwChunk = 3000 // bytes per interleaved append
)

// kwData is deterministic content for file i, round r.
func kwData(i, r, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(i*31 + r*7 + k*13 + 1)
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kernelPhase builds the starting tree in root.
func kernelPhase(t *testing.T, root string) {
	t.Helper()
	must(t, os.Mkdir(filepath.Join(root, "big"), 0o755))
	for i := range kwBig {
		must(t, os.WriteFile(filepath.Join(root, "big", fmt.Sprintf("entry-%05d-%s", i, "kernel-written-name")), nil, 0o644))
	}
	must(t, os.Mkdir(filepath.Join(root, "frag"), 0o755))
	fds := make([]*os.File, kwFiles)
	for i := range fds {
		f, err := os.Create(filepath.Join(root, "frag", fmt.Sprintf("f%02d", i)))
		must(t, err)
		fds[i] = f
	}
	// Interleaved appends, each synced, fragment the files into many
	// extents (or indirect runs).
	for r := range 40 {
		for i, f := range fds {
			_, err := f.Write(kwData(i, r, kwChunk))
			must(t, err)
			must(t, f.Sync())
		}
	}
	for i, f := range fds {
		must(t, unix.Fsetxattr(int(f.Fd()), "user.k", kwData(i, 99, 40+i*20), 0))
		must(t, f.Close())
	}
}

// e4boxPhase modifies everything kernelPhase made.
func e4boxPhase(t *testing.T, root string) {
	t.Helper()
	big := filepath.Join(root, "big")
	for i := 0; i < kwBig; i += 2 {
		must(t, os.Remove(filepath.Join(big, fmt.Sprintf("entry-%05d-%s", i, "kernel-written-name"))))
	}
	for i := range 1000 {
		must(t, os.WriteFile(filepath.Join(big, fmt.Sprintf("new-%05d-%s", i, "e4box-written")), kwData(i, 1, i%50), 0o600))
	}
	for i := 1; i < 400; i += 4 {
		must(t, os.Rename(filepath.Join(big, fmt.Sprintf("entry-%05d-%s", i, "kernel-written-name")),
			filepath.Join(big, fmt.Sprintf("renamed-%05d", i))))
	}
	for i := range kwFiles {
		p := filepath.Join(root, "frag", fmt.Sprintf("f%02d", i))
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		must(t, err)
		size := int64(40 * kwChunk)
		// Overwrite across fragment boundaries.
		_, err = f.WriteAt(kwData(i, 50, 3*kwChunk), int64(i+3)*kwChunk+500)
		must(t, err)
		switch i % 4 {
		case 0:
			must(t, f.Truncate(size/2+123))
		case 1:
			must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 8192, 5*kwChunk))
		case 2:
			_, err = f.WriteAt(kwData(i, 60, 20000), size+4096) // append past a hole
			must(t, err)
		case 3:
			must(t, f.Truncate(size+100000))
		}
		must(t, unix.Fsetxattr(int(f.Fd()), "user.e", kwData(i, 98, 100), 0))
		must(t, f.Close())
	}
	must(t, os.Remove(filepath.Join(root, "frag", "f00")))
}
