package server

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/internal/testutil"
)

// The end-to-end suite: build an image from a generated tree, let the
// kernel's own ext4 read it through a loop mount, serve the same image
// through e4box on a real FUSE mount, and require the two views to agree
// in every field a snapshot records (and both to agree with the source
// tree, modulo what mkfs.ext4 -d drops).

const treeSeed = 20260601

func requireE2E(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireFuse(t)
	testutil.RequireLoop(t)
	testutil.RequireE2fsprogs(t)
}

// e4boxMount is an in-process e4box mount of one image.
type e4boxMount struct {
	dir   string
	fs    *ext4.FS
	sess  *fuse.Server
	serve chan error
}

// mountE4box serves img read-only on dir. Cleanup unmounts (if the test
// did not) and waits for the session to end.
func mountE4box(t *testing.T, img, dir string) *e4boxMount {
	t.Helper()
	dev, err := blockdev.Open(img, true)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(dev, ext4.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		t.Fatalf("ext4.Open %s: %v", img, err)
	}
	srv := New(fsys, Options{ReadOnly: true})
	sess, err := fuse.Mount(dir, srv, &fuse.Options{FsName: img, ReadOnly: true, DefaultPermissions: true})
	if err != nil {
		fsys.Close()
		t.Fatalf("fuse.Mount: %v", err)
	}
	m := &e4boxMount{dir: dir, fs: fsys, sess: sess, serve: make(chan error, 1)}
	go func() { m.serve <- sess.Serve() }()
	waitReady(t, sess, m.serve)
	t.Cleanup(func() { m.unmount(t) })
	return m
}

// unmount unmounts and waits for Serve to return; it is idempotent.
func (m *e4boxMount) unmount(t *testing.T) {
	t.Helper()
	if m.fs == nil {
		return
	}
	if ok, _ := testutil.IsMountPoint(m.dir); ok {
		testutil.Unmount(t, m.dir)
	}
	select {
	case err := <-m.serve:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve did not return after unmounting %s", m.dir)
	}
	m.fs.Close()
	m.fs = nil
}

// kernelSnapshot loop-mounts img read-only and snapshots it.
//
// With inline_data, mkfs.ext4 -d creates inline inodes whose size exceeds
// their inline data (it drops the trailing hole into i_size); the
// kernel's SEEK_HOLE fails with ENOENT on them, an inode shape the kernel
// itself never creates. Those entries are taken from a second walk that
// reads files end to end without SEEK_*, so their contents are still
// compared; their layout is not (see dropLayout).
func kernelSnapshot(t *testing.T, img string) (snap map[string]testutil.Entry, noLayout []string) {
	t.Helper()
	dir := t.TempDir()
	testutil.LoopMount(t, img, dir, true)
	snap, err := testutil.SnapshotWith(dir, testutil.SnapshotOptions{Layout: true})
	if err != nil {
		t.Fatal(err)
	}
	var full map[string]testutil.Entry
	for p, e := range snap {
		if !strings.Contains(e.Err, "SEEK_HOLE") {
			continue
		}
		if full == nil {
			if full, err = testutil.SnapshotWith(dir, testutil.SnapshotOptions{FullReadLimit: -1}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: kernel %s; comparing contents without layout", p, e.Err)
		snap[p] = full[p]
		noLayout = append(noLayout, p)
	}
	testutil.Unmount(t, dir)
	return snap, noLayout
}

// dropLayout clears the layout of the entries whose kernel view has none
// (see kernelSnapshot), so the comparison covers everything else.
func dropLayout(ours map[string]testutil.Entry, paths []string) {
	for _, p := range paths {
		if o, ok := ours[p]; ok {
			o.Layout = nil
			ours[p] = o
		}
	}
}

// sourceView adjusts a source-tree snapshot for what mkfs.ext4 adds: it
// creates lost+found, which adds a link to the root and sets the root's
// mtime to mkfs time.
func sourceView(src, ours map[string]testutil.Entry) map[string]testutil.Entry {
	root, oursRoot := src["."], ours["."]
	root.Nlink++
	root.Mtime = oursRoot.Mtime
	src["."] = root
	return src
}

// e4boxSnapshot mounts img with e4box, snapshots it and unmounts.
func e4boxSnapshot(t *testing.T, img string) map[string]testutil.Entry {
	t.Helper()
	m := mountE4box(t, img, t.TempDir())
	snap, err := testutil.SnapshotWith(m.dir, testutil.SnapshotOptions{Layout: true})
	if err != nil {
		t.Fatal(err)
	}
	m.unmount(t)
	return snap
}

// exactOptions compares every field, data layout included: e4box answers
// SEEK_DATA/SEEK_HOLE from the extent map, so it must agree with the
// kernel there too.
func exactOptions() testutil.CompareOptions {
	o := testutil.SameImageOptions()
	o.Ignore &^= testutil.FieldLayout
	return o
}

func buildTree(t *testing.T, spec testutil.TreeSpec) (string, map[string]testutil.Entry) {
	t.Helper()
	src := t.TempDir()
	if spec.ACLs && !testutil.ACLSupported(src) {
		spec.ACLs = false
	}
	if _, err := testutil.GenTree(src, spec, treeSeed); err != nil {
		t.Fatal(err)
	}
	snap, err := testutil.Snapshot(src)
	if err != nil {
		t.Fatal(err)
	}
	return src, snap
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestE2EVariants serves the small tree in every kernel-mountable variant.
func TestE2EVariants(t *testing.T) {
	requireE2E(t)
	variants := []testutil.Variant{
		testutil.Ext2, testutil.Ext3, testutil.Ext4, testutil.Ext4Block1K, testutil.Ext4NoCsum,
		testutil.Ext4Inline, testutil.Ext4No64bit, testutil.Ext4MetaBG, testutil.Ext4NoExtent,
	}
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			src, srcSnap := buildTree(t, testutil.SmallTree().ForBlockSize(v.BlockSize))
			img := filepath.Join(t.TempDir(), "img")
			testutil.MkfsD(t, img, src, v, 0)
			before := fileHash(t, img)

			kernel, noLayout := kernelSnapshot(t, img)
			ours := e4boxSnapshot(t, img)
			dropLayout(ours, noLayout)
			testutil.CompareSnapshots(t, kernel, ours, exactOptions())
			srcOpts := testutil.SourceTreeOptions()
			if v.Name == testutil.Ext4Inline.Name {
				// mkfs.ext4 -d with inline_data drops trailing holes.
				srcOpts.IgnorePath = func(rel string) bool {
					return rel == "lost+found" || strings.HasPrefix(rel, testutil.PathSparse+"/")
				}
			}
			testutil.CompareSnapshots(t, sourceView(srcSnap, ours), ours, srcOpts)
			if len(ours) < 100 {
				t.Errorf("snapshot has only %d entries; the tree did not come through", len(ours))
			}
			if fileHash(t, img) != before {
				t.Error("a read-only mount changed the image")
			}
		})
	}
}

// TestE2E64KBlocks covers a block size the kernel cannot mount on 4 KiB
// pages: the source tree is the only oracle.
func TestE2E64KBlocks(t *testing.T) {
	requireE2E(t)
	v := testutil.Ext4Block64K
	src, srcSnap := buildTree(t, testutil.SmallTree().ForBlockSize(v.BlockSize))
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, 0)
	ours := e4boxSnapshot(t, img)
	testutil.CompareSnapshots(t, sourceView(srcSnap, ours), ours, testutil.SourceTreeOptions())
}

// TestE2EFullTree serves the full tree (a 50,000-entry htree directory, a
// sparse file past 4 GiB, 4000-byte symlinks, 40 levels) in the default
// ext4 variant. The image is built through the kernel (MkfsCopy), which
// also keeps nanosecond timestamps.
func TestE2EFullTree(t *testing.T) {
	if testing.Short() {
		t.Skip("full tree skipped in -short mode")
	}
	requireE2E(t)
	v := testutil.Ext4
	start := time.Now()
	lap := func(what string) {
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
		start = time.Now()
	}
	src, srcSnap := buildTree(t, testutil.FullTree().ForBlockSize(v.BlockSize))
	lap("generate and snapshot the tree")
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsCopy(t, img, src, v, 0)
	lap("build the image")

	kernel, noLayout := kernelSnapshot(t, img)
	lap("kernel snapshot")
	ours := e4boxSnapshot(t, img)
	lap("e4box snapshot")
	dropLayout(ours, noLayout)
	testutil.CompareSnapshots(t, kernel, ours, exactOptions())
	// Through the kernel copy, times keep their nanoseconds; ctime and
	// atime still differ from the source.
	srcOpts := testutil.SourceTreeOptions()
	srcOpts.TimeGranularity = 0
	testutil.CompareSnapshots(t, sourceView(srcSnap, ours), ours, srcOpts)
	if e, ok := ours["big"]; !ok || len(e.Names) != testutil.FullTree().BigDir {
		t.Errorf("big/ lists %d names, want %d", len(e.Names), testutil.FullTree().BigDir)
	}
	if e, ok := ours[testutil.PathHugeSparse]; !ok || e.Size <= 4<<30 {
		t.Errorf("%s: size %d, want > 4 GiB", testutil.PathHugeSparse, e.Size)
	}
}

// TestE2EConcurrentWalk has several walkers snapshot one cold mount at
// once: every walk must see exactly what the kernel sees.
func TestE2EConcurrentWalk(t *testing.T) {
	requireE2E(t)
	v := testutil.Ext4
	src, _ := buildTree(t, testutil.SmallTree())
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, 0)
	kernel, _ := kernelSnapshot(t, img)

	m := mountE4box(t, img, t.TempDir())
	const walkers = 6
	snaps := make([]map[string]testutil.Entry, walkers)
	errs := make([]error, walkers)
	var wg sync.WaitGroup
	for i := range walkers {
		wg.Go(func() {
			snaps[i], errs[i] = testutil.SnapshotWith(m.dir, testutil.SnapshotOptions{Layout: true, FullReadLimit: -1})
		})
	}
	wg.Wait()
	for i := range walkers {
		if errs[i] != nil {
			t.Fatalf("walker %d: %v", i, errs[i])
		}
		testutil.CompareSnapshots(t, kernel, snaps[i], exactOptions())
	}
	m.unmount(t)
}

// waitReady waits until the session is ready (INIT answered and the fuse
// layer's poll probe done). Only then may this process touch its own mount:
// before the probe, an open could make the kernel send FUSE_POLL from
// inside epoll_ctl, which deadlocks against a GC stop-the-world.
func waitReady(t testing.TB, sess *fuse.Server, serve chan error) {
	t.Helper()
	select {
	case <-sess.Ready():
	case err := <-serve:
		serve <- err
		t.Fatalf("session ended before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("session not ready within 60s")
	}
}
