package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/testutil"
)

// Extended attribute write tests: attributes are set, replaced and
// removed through the library on mkfs-built images, then e2fsck -fn must
// be clean and the kernel's ext4 (loop mount) must list and read the same
// attributes.

var xattrVariants = []testutil.Variant{
	testutil.Ext4,
	testutil.Ext4NoCsum,
	testutil.Ext4Block1K,
	testutil.Ext4Inline,
	testutil.Ext3,
	testutil.Ext2,
}

// libXattrs reads all visible attributes of ino through the library.
func libXattrs(t *testing.T, fs *FS, ino Ino) map[string]string {
	t.Helper()
	names, err := fs.ListXattr(ino)
	if err != nil {
		t.Fatalf("ListXattr(%d): %v", ino, err)
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		if _, dup := out[n]; dup {
			t.Fatalf("inode %d lists %q twice", ino, n)
		}
		v, err := fs.GetXattr(ino, n)
		if err != nil {
			t.Fatalf("GetXattr(%d, %q): %v", ino, n, err)
		}
		out[n] = string(v)
	}
	return out
}

// kernelXattrs reads all attributes of path through the kernel.
func kernelXattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", path, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", path, name, err)
		}
		out[name] = string(v[:m])
	}
	return out
}

func diffXattrMaps(want, got map[string]string) string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("missing %s", k))
		case g != want[k]:
			d = append(d, fmt.Sprintf("%s: %d bytes %.20q, want %d bytes %.20q", k, len(g), g, len(want[k]), want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("unexpected %s", k))
		}
	}
	return strings.Join(d, "; ")
}

// kernelXattrCheck mounts img read-only and compares each file's
// attributes with its model.
func kernelXattrCheck(t *testing.T, v testutil.Variant, img string, files map[string]map[string]string) {
	t.Helper()
	if os.Getuid() != 0 || !v.KernelMountable() {
		return
	}
	dir := t.TempDir()
	testutil.LoopMount(t, img, dir, true)
	defer testutil.Unmount(t, dir)
	for name, want := range files {
		if d := diffXattrMaps(want, kernelXattrs(t, filepath.Join(dir, name))); d != "" {
			t.Errorf("kernel reads %s's attributes: %s", name, d)
		}
	}
}

// xattrLayout reports how many of ino's attributes are in the inode body
// and in its block, and checks the block's structure on the way: entries
// sorted as the kernel sorts them, entry hashes, the block hash, values
// 4-byte aligned.
func xattrLayout(t *testing.T, fs *FS, ino Ino) (inBody, inBlock int) {
	t.Helper()
	in, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := fs.ibodyXattrs(in)
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.RLock()
	bl, err := fs.blockXattrsLocked(in)
	fs.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range bl {
		if e.Hash != disk.XattrEntryHash(e.Name, e.Value) {
			t.Errorf("inode %d block entry %q: e_hash %#x, want %#x", ino, e.Name, e.Hash, disk.XattrEntryHash(e.Name, e.Value))
		}
		if e.ValueOffs%4 != 0 {
			t.Errorf("inode %d block entry %q: value offset %d unaligned", ino, e.Name, e.ValueOffs)
		}
		if i > 0 {
			p := bl[i-1]
			it := xattrItem{index: p.NameIndex, name: p.Name}
			if !xattrKeyLess(&it, e.NameIndex, e.Name) {
				t.Errorf("inode %d block entries %d:%q and %d:%q out of order", ino, p.NameIndex, p.Name, e.NameIndex, e.Name)
			}
		}
	}
	if blk := in.raw.FileACL(); blk != 0 {
		b := make([]byte, fs.bsize)
		if _, err := fs.dev.ReadAt(b, fs.pblkOff(PBlk(blk))); err != nil {
			t.Fatal(err)
		}
		h, es, err := disk.DecodeXattrBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Hash != disk.XattrBlockHash(es) {
			t.Errorf("inode %d xattr block %d: h_hash %#x, want %#x", ino, blk, h.Hash, disk.XattrBlockHash(es))
		}
	}
	return len(ib), len(bl)
}

// TestXattrRandomOps sets, replaces and removes attributes of varied name
// and value sizes on one file, checking every outcome against a model,
// forcing spills from the inode body to the block and back.
func TestXattrRandomOps(t *testing.T) {
	for _, v := range xattrVariants {
		t.Run(v.Name, func(t *testing.T) { testXattrRandomOps(t, v) })
	}
}

func testXattrRandomOps(t *testing.T, v testutil.Variant) {
	img, fs := coreImage(t, v, 16, map[string][]byte{"f": []byte("data"), "g": pattern(1, 5000)})
	f, g := lookup(t, fs, "f"), lookup(t, fs, "g")
	rng := rand.New(rand.NewPCG(uint64(v.BlockSize), 7))
	prefixes := []string{"user.", "trusted.", "security."}
	var names []string
	for i := range 24 {
		names = append(names, prefixes[i%3]+strings.Repeat(string(rune('a'+i)), 1+rng.IntN(40)))
	}
	want := map[string]string{}
	sawBody, sawBlock, sawBoth, sawNoSpace := false, false, false, false
	for step := range 400 {
		name := names[rng.IntN(len(names))]
		_, exists := want[name]
		var err, wantErr error
		op := rng.IntN(10)
		switch {
		case op < 2:
			err = fs.RemoveXattr(f, name)
			if !exists {
				wantErr = syscall.ENODATA
			} else {
				delete(want, name)
			}
		default:
			n := rng.IntN(64)
			if rng.IntN(4) == 0 {
				n = rng.IntN(v.BlockSize / 2)
			}
			val := string(pattern(uint64(step), n))
			flags := 0
			switch op {
			case 2:
				flags = XattrCreate
				if exists {
					wantErr = syscall.EEXIST
				}
			case 3:
				flags = XattrReplace
				if !exists {
					wantErr = syscall.ENODATA
				}
			}
			err = fs.SetXattr(f, name, []byte(val), flags)
			if errors.Is(err, syscall.ENOSPC) && wantErr == nil {
				// Full: the model must be unchanged; checked below.
				sawNoSpace = true
				wantErr = err
			} else if wantErr == nil {
				want[name] = val
			}
		}
		if !errors.Is(err, wantErr) && err != wantErr {
			t.Fatalf("step %d %s: error %v, want %v", step, name, err, wantErr)
		}
		if d := diffXattrMaps(want, libXattrs(t, fs, f)); d != "" {
			t.Fatalf("step %d: %s", step, d)
		}
		body, block := xattrLayout(t, fs, f)
		sawBody = sawBody || body > 0
		sawBlock = sawBlock || block > 0
		sawBoth = sawBoth || body > 0 && block > 0
	}
	if !sawBody || !sawBlock || !sawBoth {
		t.Errorf("layouts seen: body %v, block %v, both %v", sawBody, sawBlock, sawBoth)
	}
	if !sawNoSpace {
		t.Logf("no ENOSPC seen")
	}
	// A few attributes on the other file, which then keeps them.
	gwant := map[string]string{"user.x": "1", "user.big": string(pattern(9, v.BlockSize/2))}
	for k, val := range gwant {
		if err := fs.SetXattr(g, k, []byte(val), XattrCreate); err != nil {
			t.Fatal(err)
		}
	}
	coreClose(t, fs, img)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"f": want, "g": gwant})
	kernelCheck(t, v, img, map[string]*model{"f": {data: []byte("data")}, "g": {data: pattern(1, 5000)}})
}

// TestXattrLimits checks name and value limits and namespaces.
func TestXattrLimits(t *testing.T) {
	v := testutil.Ext4
	img, fs := coreImage(t, v, 16, map[string][]byte{"f": []byte("x")})
	f := lookup(t, fs, "f")
	long := "user." + strings.Repeat("n", 250) // 255 bytes in all
	for _, c := range []struct {
		name  string
		value []byte
		flags int
		want  error
	}{
		{long, []byte("ok"), 0, nil},
		{long + "n", []byte("x"), 0, syscall.ERANGE},
		{"", []byte("x"), 0, syscall.ERANGE},
		{"user.", []byte("x"), 0, syscall.EINVAL},
		{"system.data", []byte("x"), 0, syscall.EOPNOTSUPP},
		{"system.foo", []byte("x"), 0, syscall.EOPNOTSUPP},
		{"foo.bar", []byte("x"), 0, syscall.EOPNOTSUPP},
		{"user.flags", []byte("x"), 4, syscall.EINVAL},
		{"user.huge", make([]byte, 64<<10+1), 0, syscall.E2BIG},
		{"user.toobig", make([]byte, v.BlockSize), 0, syscall.ENOSPC},
		{"user.empty", nil, 0, nil},
		{"user.empty", []byte{}, XattrCreate, syscall.EEXIST},
		{"user.nope", []byte("x"), XattrReplace, syscall.ENODATA},
		{"user.big", make([]byte, v.BlockSize-600), 0, nil},
		{"user.big2", make([]byte, 300), 0, syscall.ENOSPC},
	} {
		if err := fs.SetXattr(f, c.name, c.value, c.flags); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("SetXattr(%.30q, %d bytes, %d) = %v, want %v", c.name, len(c.value), c.flags, err, c.want)
		}
	}
	if err := fs.RemoveXattr(f, "user.nope"); err != syscall.ENODATA {
		t.Errorf("RemoveXattr of an absent attribute: %v, want ENODATA", err)
	}
	want := map[string]string{long: "ok", "user.empty": "", "user.big": string(make([]byte, v.BlockSize-600))}
	if d := diffXattrMaps(want, libXattrs(t, fs, f)); d != "" {
		t.Fatal(d)
	}
	// An unchanged value is no change: ctime stays.
	before, _ := fs.Inode(f)
	if err := fs.SetXattr(f, "user.empty", nil, XattrReplace); err != nil {
		t.Fatal(err)
	}
	if after, _ := fs.Inode(f); !after.Ctime.Equal(before.Ctime) {
		t.Errorf("setting the same value changed ctime")
	}
	coreClose(t, fs, img)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"f": want})
}

// TestXattrSharedBlock modifies attributes held in a block the kernel
// shares between three files (its mbcache deduplicates identical
// blocks): the writer gets its own copy, the others keep theirs.
func TestXattrSharedBlock(t *testing.T) {
	testutil.RequireLoop(t)
	v := testutil.Ext4
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, t.TempDir(), v, 16)
	big := strings.Repeat("s", 300) // too large for the inode body: a block
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, false)
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(mnt, n)
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setxattr(p, "user.big", []byte(big), 0); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Unmount(t, mnt)

	fs := coreOpen(t, img)
	a, b, c := lookup(t, fs, "a"), lookup(t, fs, "b"), lookup(t, fs, "c")
	blockOf := func(ino Ino) PBlk {
		in, err := fs.Inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		return PBlk(in.raw.FileACL())
	}
	refcount := func(blk PBlk) uint32 {
		buf := make([]byte, fs.bsize)
		if _, err := fs.dev.ReadAt(buf, fs.pblkOff(blk)); err != nil {
			t.Fatal(err)
		}
		h, err := disk.DecodeXattrHeader(buf)
		if err != nil {
			t.Fatal(err)
		}
		return h.Refcount
	}
	shared := blockOf(a)
	if shared == 0 || blockOf(b) != shared || blockOf(c) != shared || refcount(shared) != 3 {
		t.Fatalf("kernel did not share one block: %d %d %d (refcount %d)", shared, blockOf(b), blockOf(c), refcount(shared))
	}
	if err := fs.SetXattr(a, "user.big", []byte(big+"!"), XattrReplace); err != nil {
		t.Fatal(err)
	}
	if blockOf(a) == shared || refcount(shared) != 2 || refcount(blockOf(a)) != 1 {
		t.Fatalf("after copy-on-write: a at %d (shared %d), refcounts %d and %d", blockOf(a), shared, refcount(shared), refcount(blockOf(a)))
	}
	// Adding a small attribute to b goes to b's inode body: the block
	// stays shared.
	if err := fs.SetXattr(b, "user.small", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if blockOf(b) != shared || refcount(shared) != 2 {
		t.Fatalf("small attribute moved b off the shared block")
	}
	// Removing b's block attribute drops its reference.
	if err := fs.RemoveXattr(b, "user.big"); err != nil {
		t.Fatal(err)
	}
	if blockOf(b) != 0 || refcount(shared) != 1 {
		t.Fatalf("after remove: b at %d, refcount %d", blockOf(b), refcount(shared))
	}
	// c is now the only user: a change happens in place.
	if err := fs.SetXattr(c, "user.more", []byte(strings.Repeat("m", 200)), 0); err != nil {
		t.Fatal(err)
	}
	if blockOf(c) != shared {
		t.Fatalf("sole user's block was copied: %d -> %d", shared, blockOf(c))
	}
	wantA := map[string]string{"user.big": big + "!"}
	wantB := map[string]string{"user.small": "1"}
	wantC := map[string]string{"user.big": big, "user.more": strings.Repeat("m", 200)}
	for ino, w := range map[Ino]map[string]string{a: wantA, b: wantB, c: wantC} {
		if d := diffXattrMaps(w, libXattrs(t, fs, ino)); d != "" {
			t.Errorf("inode %d: %s", ino, d)
		}
	}
	coreClose(t, fs, img)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"a": wantA, "b": wantB, "c": wantC})
}

func aclXattr(es ...disk.ACLEntry) []byte { return disk.EncodeXattrACL(es) }

// TestXattrACL sets POSIX ACLs in the kernel's xattr format and checks
// validation, the mode update and the stored form against getfacl on the
// kernel's mount.
func TestXattrACL(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) { testXattrACL(t, v) })
	}
}

func testXattrACL(t *testing.T, v testutil.Variant) {
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"f", "plain"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, src, v, 16)
	fs := coreOpen(t, img)
	f, d, plain, l := lookup(t, fs, "f"), lookup(t, fs, "d"), lookup(t, fs, "plain"), lookup(t, fs, "l")
	const u = disk.ACLUndefinedID
	full := aclXattr(
		disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 6, ID: u},
		disk.ACLEntry{Tag: disk.ACLUser, Perm: 4, ID: 1000},
		disk.ACLEntry{Tag: disk.ACLUser, Perm: 7, ID: 1001},
		disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u},
		disk.ACLEntry{Tag: disk.ACLGroup, Perm: 2, ID: 50},
		disk.ACLEntry{Tag: disk.ACLMask, Perm: 5, ID: u},
		disk.ACLEntry{Tag: disk.ACLOther, Perm: 0, ID: u},
	)
	minimal := aclXattr(
		disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 7, ID: u},
		disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 5, ID: u},
		disk.ACLEntry{Tag: disk.ACLOther, Perm: 1, ID: u},
	)
	bad := map[string][]byte{
		"header only (no ACL)": {2, 0, 0, 0},
		"short":                {2, 0, 0},
		"version 1":            append([]byte{1, 0, 0, 0}, full[4:]...),
		"partial entry":        full[:len(full)-3],
		"group_obj first": aclXattr(
			disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 6, ID: u},
			disk.ACLEntry{Tag: disk.ACLOther, Perm: 0, ID: u}),
		"named without mask": aclXattr(
			disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 6, ID: u},
			disk.ACLEntry{Tag: disk.ACLUser, Perm: 4, ID: 1000},
			disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLOther, Perm: 0, ID: u}),
		"no other": aclXattr(
			disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 6, ID: u},
			disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u}),
		"perm 8": aclXattr(
			disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 8, ID: u},
			disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLOther, Perm: 0, ID: u}),
		"undefined uid": aclXattr(
			disk.ACLEntry{Tag: disk.ACLUserObj, Perm: 6, ID: u},
			disk.ACLEntry{Tag: disk.ACLUser, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLGroupObj, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLMask, Perm: 4, ID: u},
			disk.ACLEntry{Tag: disk.ACLOther, Perm: 0, ID: u}),
	}
	for what, val := range bad {
		err := fs.SetXattr(plain, disk.XattrNamePosixACLAccess, val, 0)
		if len(val) == 4 {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			continue
		}
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ACL %s: %v, want EINVAL", what, err)
		}
	}
	if err := fs.SetXattr(f, disk.XattrNamePosixACLAccess, full, 0); err != nil {
		t.Fatal(err)
	}
	got, err := fs.GetXattr(f, disk.XattrNamePosixACLAccess)
	if err != nil || !bytes.Equal(got, full) {
		t.Fatalf("GetXattr after set: %x, %v; want %x", got, err, full)
	}
	if in, _ := fs.Inode(f); in.Mode&0o777 != 0o650 {
		t.Errorf("mode after a full ACL: %#o, want 0650 (group bits from the mask)", in.Mode&0o777)
	}
	// A minimal ACL is the mode: stored as none.
	if err := fs.SetXattr(plain, disk.XattrNamePosixACLAccess, minimal, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetXattr(plain, disk.XattrNamePosixACLAccess); err != syscall.ENODATA {
		t.Errorf("minimal ACL stored: %v", err)
	}
	if in, _ := fs.Inode(plain); in.Mode&0o777 != 0o751 {
		t.Errorf("mode after a minimal ACL: %#o, want 0751", in.Mode&0o777)
	}
	// Default ACLs: directories only; removing one elsewhere is fine.
	if err := fs.SetXattr(f, disk.XattrNamePosixACLDefault, full, 0); err != syscall.EACCES {
		t.Errorf("default ACL on a file: %v, want EACCES", err)
	}
	if err := fs.RemoveXattr(f, disk.XattrNamePosixACLDefault); err != nil {
		t.Errorf("removing a default ACL from a file: %v", err)
	}
	if err := fs.SetXattr(d, disk.XattrNamePosixACLDefault, full, 0); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetXattr(l, disk.XattrNamePosixACLAccess, full, 0); err != syscall.EOPNOTSUPP {
		t.Errorf("ACL on a symlink: %v, want EOPNOTSUPP", err)
	}
	// Removing an absent ACL succeeds, as set_acl(NULL) does.
	if err := fs.RemoveXattr(plain, disk.XattrNamePosixACLAccess); err != nil {
		t.Errorf("removing an absent ACL: %v", err)
	}
	coreClose(t, fs, img)
	if os.Getuid() != 0 {
		return
	}
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, true)
	defer testutil.Unmount(t, mnt)
	for p, want := range map[string][]byte{"f": full, "d": full} {
		name := disk.XattrNamePosixACLAccess
		if p == "d" {
			name = disk.XattrNamePosixACLDefault
		}
		v := make([]byte, 1024)
		n, err := unix.Lgetxattr(filepath.Join(mnt, p), name, v)
		if err != nil || !bytes.Equal(v[:n], want) {
			t.Errorf("kernel reads %s %s: %x, %v; want %x", p, name, v[:max(n, 0)], err, want)
		}
	}
	if _, err := unix.Lgetxattr(filepath.Join(mnt, "plain"), disk.XattrNamePosixACLAccess, make([]byte, 64)); err != unix.ENODATA {
		t.Errorf("kernel reads plain's ACL: %v, want ENODATA", err)
	}
	if getfacl, err := exec.LookPath("getfacl"); err == nil {
		out, err := exec.Command(getfacl, "-cnp", filepath.Join(mnt, "f")).Output()
		if err != nil {
			t.Fatalf("getfacl: %v: %s", err, out)
		}
		want := "user::rw-\nuser:1000:r--\nuser:1001:rwx\t#effective:r-x\ngroup::r--\ngroup:50:-w-\t#effective:---\nmask::r-x\nother::---\n"
		if strings.TrimSpace(string(out)) != strings.TrimSpace(want) {
			t.Errorf("getfacl f:\n%s\nwant:\n%s", out, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "plain"), &st); err != nil || st.Mode&0o777 != 0o751 {
		t.Errorf("kernel sees plain's mode %#o (%v), want 0751", st.Mode&0o777, err)
	}
}

// TestXattrEAInodeKept changes attributes of a file one of whose values
// the kernel stored in an EA inode (ea_inode): that entry is kept intact
// through rewrites of its region, and replacing or removing it is refused
// rather than leaking the EA inode.
func TestXattrEAInodeKept(t *testing.T) {
	testutil.RequireLoop(t)
	v := testutil.Variant{Name: "ext4-eainode", Args: []string{"-t", "ext4", "-b", "4096", "-O", "ea_inode"}, BlockSize: 4096}
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, t.TempDir(), v, 16)
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, false)
	p := filepath.Join(mnt, "f")
	huge := string(pattern(1, 20000))
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.huge", []byte(huge), 0); err != nil {
		t.Fatal(err)
	}
	testutil.Unmount(t, mnt)

	fs := coreOpen(t, img)
	f := lookup(t, fs, "f")
	want := map[string]string{"user.huge": huge}
	for i, n := range []int{10, 80, 1500, 2000} { // ibody, then the block
		k := fmt.Sprintf("user.v%d", i)
		want[k] = string(pattern(uint64(i), n))
		if err := fs.SetXattr(f, k, []byte(want[k]), 0); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := fs.RemoveXattr(f, "user.v0"); err != nil {
		t.Fatal(err)
	}
	delete(want, "user.v0")
	if err := fs.SetXattr(f, "user.huge", []byte("small"), 0); err != syscall.EOPNOTSUPP {
		t.Errorf("replacing an EA inode value: %v, want EOPNOTSUPP", err)
	}
	if err := fs.RemoveXattr(f, "user.huge"); err != syscall.EOPNOTSUPP {
		t.Errorf("removing an EA inode value: %v, want EOPNOTSUPP", err)
	}
	if d := diffXattrMaps(want, libXattrs(t, fs, f)); d != "" {
		t.Fatal(d)
	}
	coreClose(t, fs, img)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"f": want})
}

// TestXattrZeroExtraIsize sets an attribute on a large inode whose
// i_extra_isize is 0 (as old tools left them): like the kernel, the
// library first gives it the default extra size, since the kernel does
// not look for attributes right after the 128-byte base.
func TestXattrZeroExtraIsize(t *testing.T) {
	v := testutil.Ext4
	img, fs := coreImage(t, v, 16, map[string][]byte{"f": []byte("data")})
	fs.Close()
	fs.dev.Close()
	debugfs := testutil.RequireTool(t, "debugfs")
	if out, err := exec.Command(debugfs, "-w", "-R", "sif /f extra_isize 0", img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v: %s", err, out)
	}
	fs = coreOpen(t, img)
	f := lookup(t, fs, "f")
	if in, _ := fs.Inode(f); in.raw.ExtraIsize != 0 {
		t.Fatalf("i_extra_isize %d after debugfs", in.raw.ExtraIsize)
	}
	want := map[string]string{"user.a": "small value"}
	if err := fs.SetXattr(f, "user.a", []byte(want["user.a"]), 0); err != nil {
		t.Fatal(err)
	}
	in, _ := fs.Inode(f)
	if in.raw.ExtraIsize != defaultExtraIsize || in.raw.FileACL() != 0 {
		t.Fatalf("i_extra_isize %d, xattr block %d; want %d and none", in.raw.ExtraIsize, in.raw.FileACL(), defaultExtraIsize)
	}
	coreClose(t, fs, img)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"f": want})
}

// TestXattrPlacementMatchesKernel applies one sequence of attribute
// changes through the kernel (loop mount of one copy of an image) and
// through the library (another copy): outcomes, and which attributes end
// up in the inode body and which in the block, must be the same.
func TestXattrPlacementMatchesKernel(t *testing.T) {
	testutil.RequireLoop(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) { testXattrPlacement(t, v) })
	}
}

type xattrOp struct {
	name  string
	value []byte // nil: remove
}

func testXattrPlacement(t *testing.T, v testutil.Variant) {
	rng := rand.New(rand.NewPCG(11, uint64(v.BlockSize)))
	var ops []xattrOp
	for i := range 80 {
		name := fmt.Sprintf("user.%c%d", 'a'+rune(rng.IntN(6)), rng.IntN(3))
		if rng.IntN(5) == 0 {
			ops = append(ops, xattrOp{name, nil})
			continue
		}
		n := rng.IntN(48)
		if rng.IntN(5) == 0 {
			n = rng.IntN(v.BlockSize / 3)
		}
		ops = append(ops, xattrOp{name, pattern(uint64(i), n)})
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	libImg := filepath.Join(t.TempDir(), "lib")
	testutil.MkfsD(t, libImg, src, v, 16)
	kimg := filepath.Join(t.TempDir(), "kernel")
	data, err := os.ReadFile(libImg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kimg, data, 0o644); err != nil {
		t.Fatal(err)
	}

	mnt := t.TempDir()
	testutil.LoopMount(t, kimg, mnt, false)
	p := filepath.Join(mnt, "f")
	var kernelErrs []error
	for _, op := range ops {
		var err error
		if op.value == nil {
			err = unix.Removexattr(p, op.name)
		} else {
			err = unix.Setxattr(p, op.name, op.value, 0)
		}
		kernelErrs = append(kernelErrs, err)
	}
	testutil.Unmount(t, mnt)

	fs := coreOpen(t, libImg)
	f := lookup(t, fs, "f")
	for i, op := range ops {
		var err error
		if op.value == nil {
			err = fs.RemoveXattr(f, op.name)
		} else {
			err = fs.SetXattr(f, op.name, op.value, 0)
		}
		if kerr := kernelErrs[i]; (err == nil) != (kerr == nil) || err != nil && !errors.Is(err, kerr) {
			t.Fatalf("op %d (%s, %d bytes): library %v, kernel %v", i, op.name, len(op.value), err, kerr)
		}
	}
	coreClose(t, fs, libImg)

	places := func(img string) (body, block []string) {
		fs := openImage(t, img, Options{ReadOnly: true})
		defer fs.Close()
		in, err := fs.Inode(lookup(t, fs, "f"))
		if err != nil {
			t.Fatal(err)
		}
		ib, err := fs.ibodyXattrs(in)
		if err != nil {
			t.Fatal(err)
		}
		fs.mu.RLock()
		bl, err := fs.blockXattrsLocked(in)
		fs.mu.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ib {
			body = append(body, string(e.Name))
		}
		for _, e := range bl {
			block = append(block, string(e.Name))
		}
		slices.Sort(body)
		return body, block // the block in on-disk (sorted) order
	}
	kb, kbl := places(kimg)
	lb, lbl := places(libImg)
	if !slices.Equal(kb, lb) || !slices.Equal(kbl, lbl) {
		t.Errorf("placement differs:\nkernel  body %q block %q\nlibrary body %q block %q", kb, kbl, lb, lbl)
	}
}
