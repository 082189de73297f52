package testutil

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeTB records Skipf and Fatalf instead of stopping the test, so the
// skip-or-fail policy can be observed.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = format }
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = format }

func TestSkipOrFailPolicy(t *testing.T) {
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	skipOrFail(f, "no widget")
	if f.skipped == "" || f.fatal != "" {
		t.Errorf("without CI: skipped=%q fatal=%q, want a skip", f.skipped, f.fatal)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	skipOrFail(f, "no widget")
	if f.fatal == "" || f.skipped != "" {
		t.Errorf("with CI=true: skipped=%q fatal=%q, want a failure", f.skipped, f.fatal)
	}
	f = &fakeTB{TB: t}
	RequireTool(f, "e4box-no-such-tool")
	if f.fatal == "" {
		t.Errorf("RequireTool of a missing tool under CI did not fail")
	}
}

func TestACLRoundTrip(t *testing.T) {
	in := []ACLEntry{
		{Tag: ACLOther, Perm: 1}, {Tag: ACLUser, Perm: 7, ID: 1000}, {Tag: ACLUserObj, Perm: 6},
		{Tag: ACLGroupObj, Perm: 4}, {Tag: ACLMask, Perm: 7},
	}
	b := EncodeACL(in)
	want := []byte{2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 7, 0, 0xe8, 3, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 1, 0, 0xff, 0xff, 0xff, 0xff}
	if !bytes.Equal(b, want) {
		t.Fatalf("EncodeACL = %x, want %x", b, want)
	}
	if got, want := FormatACL(b), "u::rw-,u:1000:rwx,g::r--,m::rwx,o::--x"; got != want {
		t.Errorf("FormatACL = %q, want %q", got, want)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, append(EncodeACL(in), 0)} {
		if _, err := DecodeACL(bad); err == nil {
			t.Errorf("DecodeACL(%x) accepted malformed input", bad)
		}
	}
}

func TestContentHash(t *testing.T) {
	data := make([]byte, 3*contentChunk+100)
	copy(data[contentChunk+5:], "hello")
	base := ContentHash(data)
	if ContentHash(data[:len(data)-1]) == base {
		t.Error("hash ignores size")
	}
	d2 := bytes.Clone(data)
	d2[contentChunk+6] ^= 1
	if ContentHash(d2) == base {
		t.Error("hash ignores a changed byte")
	}
	d3 := bytes.Clone(data)
	copy(d3[2*contentChunk+5:], "hello")
	copy(d3[contentChunk+5:], "\x00\x00\x00\x00\x00")
	if ContentHash(d3) == base {
		t.Error("hash ignores where data sits")
	}
	if ContentHash(nil) == ContentHash(make([]byte, contentChunk)) {
		t.Error("empty and one zero chunk hash alike")
	}
}

// TestHashFileSparse checks that hashing through SEEK_DATA regions and
// reading end to end agree with ContentHash of the same bytes.
func TestHashFileSparse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	size := int64(10<<20 + 3)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	full := make([]byte, size)
	for _, w := range []struct {
		off int64
		s   string
	}{{4095, "abc"}, {5 << 20, strings.Repeat("x", 70000)}, {size - 2, "yz"}} {
		if _, err := f.WriteAt([]byte(w.s), w.off); err != nil {
			t.Fatal(err)
		}
		copy(full[w.off:], w.s)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := ContentHash(full)
	for _, limit := range []int64{-1, 1} { // read everything; read regions only
		snap, err := SnapshotWith(dir, SnapshotOptions{FullReadLimit: limit, Layout: true})
		if err != nil {
			t.Fatal(err)
		}
		e := snap["f"]
		if e.Err != "" || e.Content != want {
			t.Errorf("limit %d: content %s err %q, want %s", limit, e.Content, e.Err, want)
		}
		if len(e.Layout) < 2 || e.Layout[0].Off != 0 {
			// The first region covers the 4 KiB block holding "abc".
			t.Errorf("limit %d: layout %s, want several regions from 0", limit, fmtRegions(e.Layout))
		}
	}
}

func genSmall(t *testing.T, seed int64) (string, *Tree) {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	tree, err := GenTree(dir, SmallTree(), seed)
	if err != nil {
		t.Fatal(err)
	}
	return dir, tree
}

func snap(t *testing.T, dir string) map[string]Entry {
	t.Helper()
	s, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenTreeDeterministic(t *testing.T) {
	a, ta := genSmall(t, 7)
	b, tb := genSmall(t, 7)
	c, _ := genSmall(t, 8)
	if ta.Inodes != tb.Inodes || ta.Names != tb.Names || ta.DataBytes != tb.DataBytes ||
		ta.MaxLink != tb.MaxLink || strings.Join(ta.TrailingHoles, ",") != strings.Join(tb.TrailingHoles, ",") {
		t.Errorf("tree stats differ: %+v vs %+v", ta, tb)
	}
	if len(ta.TrailingHoles) == 0 {
		t.Error("no sparse file ending in a hole")
	}
	sa, sb, sc := snap(t, a), snap(t, b), snap(t, c)
	if len(sa) != ta.Names+1 {
		t.Errorf("snapshot has %d paths, generator made %d names (+ root)", len(sa), ta.Names)
	}
	same := CompareOptions{Ignore: FieldCtime | FieldIno}
	CompareSnapshots(t, sa, sb, same)
	if _, n := DiffSnapshots(sa, sc, same); n == 0 {
		t.Error("seeds 7 and 8 generated identical trees")
	}
	// Every file type is present.
	types := map[uint32]int{}
	for _, e := range sa {
		types[e.Type]++
	}
	for _, typ := range []uint32{unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK, unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK} {
		if types[typ] == 0 {
			t.Errorf("no %s in the tree", typeName(typ))
		}
	}
	if e := sa[PathACL+"/both"]; e.Xattrs[XattrACLDefault] == "" || e.Xattrs[XattrACLAccess] == "" {
		t.Errorf("acl/both lacks ACLs: %v", e.Xattrs)
	}
	if e := sa[PathHard+"/h1"]; e.Nlink != 3 {
		t.Errorf("hard/h1 nlink %d, want 3", e.Nlink)
	}
	if e := sa[PathSpecial+"/chr-big"]; unix.Major(e.Rdev) != 300 || unix.Minor(e.Rdev) != 70000 {
		t.Errorf("chr-big rdev %d:%d", unix.Major(e.Rdev), unix.Minor(e.Rdev))
	}
}

// TestCompareFindsChanges alters one byte, one mode and one xattr and
// expects exactly those three differences.
func TestCompareFindsChanges(t *testing.T) {
	dir, _ := genSmall(t, 3)
	before := snap(t, dir)

	rel := ""
	for p, e := range before {
		if strings.HasPrefix(p, PathFiles+"/") && e.Size > 50000 {
			rel = p
			break
		}
	}
	if rel == "" {
		t.Fatal("no file over 50000 bytes in the tree")
	}
	file := filepath.Join(dir, rel)
	st := before[rel]
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], 40000)
	b[0] ^= 0x20
	if _, err := f.WriteAt(b[:], 40000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Put mtime back so only the content differs.
	if err := unix.UtimesNano(file, []unix.Timespec{st.Atime, st.Mtime}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, PathModes, "all"), 0o775); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, PathXattr, "many"), "user.m4", []byte("changed"), 0); err != nil {
		t.Fatal(err)
	}

	diffs, n := DiffSnapshots(before, snap(t, dir), CompareOptions{Ignore: FieldCtime})
	report := strings.Join(diffs, "\n")
	if n != 3 {
		t.Errorf("%d differences, want 3:\n%s", n, report)
	}
	for _, want := range []string{
		rel + ": content hash",
		PathModes + "/all: mode 0777 -> 0775",
		PathXattr + "/many: xattr user.m4",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

func TestDiffReadable(t *testing.T) {
	want := map[string]Entry{
		".":    {Type: unix.S_IFDIR, Names: []string{"a", "b"}},
		"a":    {Type: unix.S_IFREG, Mode: 0o644, Mtime: unix.Timespec{Sec: 10, Nsec: 5}},
		"b":    {Type: unix.S_IFLNK, Target: "x"},
		"gone": {Type: unix.S_IFREG},
	}
	got := map[string]Entry{
		".":   {Type: unix.S_IFDIR, Names: []string{"a", "a", "b"}},
		"a":   {Type: unix.S_IFREG, Mode: 0o644, Mtime: unix.Timespec{Sec: 10}},
		"b":   {Type: unix.S_IFREG},
		"new": {Type: unix.S_IFDIR},
	}
	diffs, n := DiffSnapshots(want, got, CompareOptions{})
	if n != 5 {
		t.Errorf("%d differences, want 5:\n%s", n, strings.Join(diffs, "\n"))
	}
	ignore := CompareOptions{TimeGranularity: 1e9, IgnorePath: func(p string) bool { return p == "b" || p == "gone" || p == "new" }}
	if diffs, n := DiffSnapshots(want, got, ignore); n != 1 || !strings.Contains(diffs[0], `extra or repeated ["a"]`) {
		t.Errorf("with paths ignored and times to the second: %d differences, want the repeated name: %q", n, diffs)
	}
	ignore.IgnoreFieldsFor = func(p string) Field { return FieldNames }
	if diffs, n := DiffSnapshots(want, got, ignore); n != 0 {
		t.Errorf("with names ignored: %q", diffs)
	}
	if diffs, _ := DiffSnapshots(want, got, CompareOptions{MaxDiffs: 2}); len(diffs) != 3 || !strings.Contains(diffs[2], "3 more") {
		t.Errorf("MaxDiffs 2 gave %q", diffs)
	}
}

func sha(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestMkfsDeterministic builds the same tree twice and expects identical
// image bytes.
func TestMkfsDeterministic(t *testing.T) {
	src, _ := genSmall(t, 11)
	RequireE2fsprogs(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	MkfsD(t, a, src, Ext4, 0)
	MkfsD(t, b, src, Ext4, 0)
	if sha(t, a) != sha(t, b) {
		t.Error("two mkfs runs over one tree gave different images")
	}
}

// TestMkfsRoundTrip builds each variant from a small tree, checks it with
// e2fsck, mounts it with the kernel and compares with the source.
func TestMkfsRoundTrip(t *testing.T) {
	src, tree := genSmall(t, 5)
	RequireE2fsprogs(t)
	RequireLoop(t)
	want := snap(t, src)
	for _, v := range AllVariants {
		t.Run(v.Name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			MkfsD(t, img, src, v, 0)
			E2fsckClean(t, img)
			if !v.KernelMountable() {
				t.Skipf("built and checked; kernel cannot mount %d-byte blocks", v.BlockSize)
			}
			mnt := t.TempDir()
			dev := LoopMount(t, img, mnt, true)
			if !strings.HasPrefix(dev, "/dev/loop") {
				t.Errorf("LoopMount returned device %q", dev)
			}
			if ok, err := IsMountPoint(mnt); !ok || err != nil {
				t.Fatalf("IsMountPoint after LoopMount: %v %v", ok, err)
			}
			got := snap(t, mnt)
			opts := SourceTreeOptions()
			opts.IgnoreFieldsFor = tree.MkfsDIgnores(v)
			CompareSnapshots(t, want, got, opts)
			Unmount(t, mnt)
			if ok, _ := IsMountPoint(mnt); ok {
				t.Error("still mounted after Unmount")
			}
			// Autoclear: the device detaches itself after the unmount.
			backing := "/sys/block/" + filepath.Base(dev) + "/loop/backing_file"
			for i := 0; ; i++ {
				b, err := os.ReadFile(backing)
				if err != nil || !strings.Contains(string(b), img) {
					break
				}
				if i == 100 {
					t.Errorf("%s still attached to %s after unmount", dev, img)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestMkfsCopyExact copies a tree (with times past 2038) through the
// kernel and expects every compared field but ctime, inode numbers and
// block counts to match exactly, nanoseconds included.
func TestMkfsCopyExact(t *testing.T) {
	RequireRoot(t)
	RequireE2fsprogs(t)
	RequireLoop(t)
	src := t.TempDir()
	spec := SmallTree()
	spec.Post2038 = true
	if _, err := GenTree(src, spec, 9); err != nil {
		t.Fatal(err)
	}
	want := snap(t, src)
	for _, v := range []Variant{Ext4, Ext4Inline, Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			MkfsCopy(t, img, src, v, 0)
			mnt := t.TempDir()
			LoopMount(t, img, mnt, true)
			CompareSnapshots(t, want, snap(t, mnt), CopiedTreeOptions())
		})
	}
}

func TestSizeEstimate(t *testing.T) {
	u := &treeUsage{inodes: 1000, dataBytes: make([]int64, 1000), metaCount: 1000}
	for i := range u.dataBytes {
		u.dataBytes[i] = 1
	}
	small, big := u.sizeMB(1024), u.sizeMB(65536)
	if small < 96 || big <= small {
		t.Errorf("sizeMB(1K)=%d sizeMB(64K)=%d: want >= 96 and growing with block size", small, big)
	}
}

// TestFullTree builds the full tree through the kernel, checks that
// big/ became a multi-level htree and that the image matches the source,
// the >4 GiB sparse file included.
func TestFullTree(t *testing.T) {
	if testing.Short() {
		t.Skip("full tree takes tens of seconds")
	}
	RequireRoot(t)
	RequireE2fsprogs(t)
	RequireLoop(t)
	src := t.TempDir()
	tree, err := GenTree(src, FullTree(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if tree.MaxLink < 3000 {
		t.Errorf("longest symlink %d bytes, want a ~4000-byte one", tree.MaxLink)
	}
	want := snap(t, src)
	if e := want[PathHugeSparse]; e.Size != HugeSparseSize || e.Blocks*512 > 1<<20 {
		t.Errorf("huge sparse file: size %d, %d bytes allocated", e.Size, e.Blocks*512)
	}
	if n := len(want[PathBigDir].Names); n != 50000 {
		t.Errorf("big/ has %d names", n)
	}
	img := filepath.Join(t.TempDir(), "img")
	MkfsCopy(t, img, src, Ext4, 0)
	if out := Debugfs(t, img, "htree_dump /"+PathBigDir); !strings.Contains(out, "Indirect levels: 1") {
		t.Errorf("big/ is not a two-level htree:\n%.400s", out)
	}
	mnt := t.TempDir()
	LoopMount(t, img, mnt, true)
	got, err := SnapshotWith(mnt, SnapshotOptions{Layout: true})
	if err != nil {
		t.Fatal(err)
	}
	CompareSnapshots(t, want, got, CopiedTreeOptions())
	// The image keeps the holes: data regions only around the writes.
	if l := got[PathHugeSparse].Layout; len(l) < 4 || l[len(l)-1].Off < 4<<30 {
		t.Errorf("huge sparse file layout in the image: %s", fmtRegions(l))
	}
}

func TestMountinfoParsing(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`:     "/tmp/a b",
		`/x\011y\012z`:    "/x\ty\nz",
		`/back\134slash`:  `/back\slash`,
		`/plain`:          "/plain",
		`/short\04`:       `/short\04`,
		`/not-octal\09a9`: `/not-octal\09a9`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
	dir := t.TempDir()
	if ok, err := IsMountPoint(dir); ok || err != nil {
		t.Errorf("IsMountPoint(fresh temp dir) = %v, %v", ok, err)
	}
	if ok, err := IsMountPoint("/proc"); !ok || err != nil {
		t.Errorf("IsMountPoint(/proc) = %v, %v", ok, err)
	}
	if _, err := mountSource(dir); err == nil {
		t.Error("mountSource of an unmounted dir succeeded")
	}
}
