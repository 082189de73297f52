package ext4

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/testutil"
)

// Inline-data file write tests: files stored in the inode are written,
// grown past the inline limit and truncated through the library; e2fsck
// must be clean and the kernel must read what the model says. The
// expected layouts (inline or not, when conversion happens) are the ones
// the kernel produces for the same operations (see inline_write.go).

// inlineWrite writes like the server's engine: MapWrite, then WriteInline
// for an inline mapping, the block path otherwise.
func inlineWrite(fs *FS, ino Ino, off int64, p []byte) error {
	m, err := fs.MapWrite(ino, off, int64(len(p)))
	if err != nil {
		return err
	}
	if m.Type == MapInline {
		_, err := fs.WriteInline(ino, p, off)
		return err
	}
	return engineWrite(fs, ino, off, p)
}

func truncateTo(t *testing.T, fs *FS, ino Ino, size uint64) {
	t.Helper()
	if _, err := fs.SetAttr(ino, &SetAttr{Valid: SetSize, Size: size}); err != nil {
		t.Fatalf("truncate inode %d to %d: %v", ino, size, err)
	}
}

// inlineState returns whether ino is inline and its system.data value
// size (-1 if none).
func inlineState(t *testing.T, fs *FS, ino Ino) (bool, int) {
	t.Helper()
	in, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	es, err := fs.ibodyXattrs(in)
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	for _, e := range es {
		if e.NameIndex == disk.InlineDataXattrIndex && string(e.Name) == disk.InlineDataXattrName {
			n = int(e.ValueSize)
		}
	}
	inl := in.hasFlag(disk.InlineDataFL)
	if inl && in.hasFlag(disk.ExtentsFL) {
		t.Fatalf("inode %d has both inline and extents flags", ino)
	}
	if inl != (n >= 0) {
		t.Fatalf("inode %d: inline flag %v but system.data size %d", ino, inl, n)
	}
	return inl, n
}

func wantInline(t *testing.T, fs *FS, ino Ino, what string, inline bool, value int) {
	t.Helper()
	inl, n := inlineState(t, fs, ino)
	if inl != inline || inline && n != value {
		t.Fatalf("%s: inline %v, system.data %d bytes; want inline %v, %d bytes", what, inl, n, inline, value)
	}
}

var inlineVariants = []testutil.Variant{
	testutil.Ext4Inline,
	{Name: "ext4-inline-nocsum-1k", Args: []string{"-t", "ext4", "-b", "1024", "-O", "inline_data,^metadata_csum"}, BlockSize: 1024},
	{Name: "ext4-inline-noextent", Args: []string{"-t", "ext4", "-b", "4096", "-O", "inline_data,^extent,^64bit"}, BlockSize: 4096},
}

func TestInlineFileWrites(t *testing.T) {
	for _, v := range inlineVariants {
		t.Run(v.Name, func(t *testing.T) { testInlineFileWrites(t, v) })
	}
}

func testInlineFileWrites(t *testing.T, v testutil.Variant) {
	files := map[string][]byte{
		"small": pattern(1, 10),
		"mid":   pattern(2, 100),
		"trunc": pattern(3, 100),
		"far":   pattern(4, 30),
		"big":   pattern(5, 50),
		"xat":   pattern(6, 10),
		"zero":  pattern(7, 40),
		"empty": nil,
	}
	img, fs := coreImage(t, v, 16, files)
	models := map[string]*model{}
	ino := map[string]Ino{}
	for n, d := range files {
		models[n] = &model{data: append([]byte(nil), d...)}
		ino[n] = lookup(t, fs, n)
		wantInline(t, fs, ino[n], n+" from mkfs", true, max(len(d)-60, 0))
	}
	write := func(name string, off int64, p []byte) {
		t.Helper()
		if err := inlineWrite(fs, ino[name], off, p); err != nil {
			t.Fatalf("write %s at %d (%d bytes): %v", name, off, len(p), err)
		}
		models[name].write(off, p)
		checkFile(t, fs, ino[name], models[name])
	}
	trunc := func(name string, size int64) {
		t.Helper()
		truncateTo(t, fs, ino[name], uint64(size))
		models[name].truncate(size)
		checkFile(t, fs, ino[name], models[name])
	}
	// With 256-byte inodes and no other attributes the inline limit is
	// 60 + 68 = 128 bytes (the kernel's ext4_get_max_inline_size).
	write("small", 20, pattern(10, 5))
	wantInline(t, fs, ino["small"], "small after a write within i_block", true, 0)
	write("small", 100, pattern(11, 20))
	wantInline(t, fs, ino["small"], "small grown to 120", true, 60)
	write("small", 120, pattern(12, 8))
	wantInline(t, fs, ino["small"], "small grown to the limit", true, 68)
	write("small", 125, pattern(13, 10))
	wantInline(t, fs, ino["small"], "small past the limit", false, 0)
	write("small", 4090, pattern(14, 20))

	// Truncates: down shrinks the value, up within the area keeps it, up
	// past it converts (as ext4_setattr does).
	trunc("mid", 70)
	wantInline(t, fs, ino["mid"], "mid truncated to 70", true, 10)
	trunc("mid", 30)
	wantInline(t, fs, ino["mid"], "mid truncated to 30", true, 0)
	trunc("mid", 50)
	wantInline(t, fs, ino["mid"], "mid truncated up to 50", true, 0)
	trunc("mid", 60)
	wantInline(t, fs, ino["mid"], "mid truncated up to 60", true, 0)
	trunc("mid", 61)
	wantInline(t, fs, ino["mid"], "mid truncated up to 61", false, 0)
	write("mid", 61, pattern(15, 3))

	trunc("trunc", 0)
	wantInline(t, fs, ino["trunc"], "trunc to 0", true, 0)
	write("trunc", 0, pattern(16, 100))
	wantInline(t, fs, ino["trunc"], "trunc rewritten", true, 40)
	trunc("trunc", 90)
	write("trunc", 95, pattern(17, 3)) // the gap 90..95 reads as zeros
	wantInline(t, fs, ino["trunc"], "trunc gap write", true, 38)

	// A write far past the inline area converts: data at 0, a hole, then
	// the new bytes.
	write("far", 100000, pattern(18, 5000))
	wantInline(t, fs, ino["far"], "far", false, 0)

	// A large write: conversion, then many blocks.
	write("big", 0, pattern(19, 300000))
	wantInline(t, fs, ino["big"], "big", false, 0)

	// Attributes share the inode body with inline data: a user attribute
	// shrinks the inline limit, and one that does not fit next to the
	// data goes to the block.
	if err := fs.SetXattr(ino["xat"], "user.a", pattern(20, 40), 0); err != nil {
		t.Fatal(err)
	}
	if in, b := xattrLayout(t, fs, ino["xat"]); in != 2 || b != 0 {
		t.Fatalf("xat: %d attributes in the inode, %d in the block; want 2, 0", in, b)
	}
	write("xat", 60, pattern(21, 8))
	wantInline(t, fs, ino["xat"], "xat within the reduced limit", true, 8)
	if err := fs.SetXattr(ino["xat"], "user.b", pattern(22, 40), 0); err != nil {
		t.Fatal(err)
	}
	if in, b := xattrLayout(t, fs, ino["xat"]); in != 2 || b != 1 {
		t.Fatalf("xat: %d attributes in the inode, %d in the block; want 2, 1", in, b)
	}
	write("xat", 68, pattern(23, 30)) // 60+38 > the limit left: convert
	wantInline(t, fs, ino["xat"], "xat past the reduced limit", false, 0)
	if in, _ := xattrLayout(t, fs, ino["xat"]); in != 1 {
		t.Fatalf("xat: system.data still in the inode after conversion (%d attributes)", in)
	}

	// WriteInline on a range that no longer fits (the inode changed since
	// MapWrite) converts and writes through blocks.
	if _, err := fs.WriteInline(ino["zero"], pattern(24, 10), 9000); err != nil {
		t.Fatal(err)
	}
	models["zero"].write(9000, pattern(24, 10))
	checkFile(t, fs, ino["zero"], models["zero"])
	wantInline(t, fs, ino["zero"], "zero after a far WriteInline", false, 0)
	if _, err := fs.WriteInline(ino["zero"], []byte("x"), 0); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("WriteInline on a block file: %v, want EAGAIN", err)
	}
	write("empty", 3, []byte("abc"))
	wantInline(t, fs, ino["empty"], "empty written", true, 0)

	coreClose(t, fs, img)
	kernelCheck(t, v, img, models)
}

// TestInlineNewFile follows the kernel with files it created empty
// (EXTENTS_FL, no inline data): the first write stores the data inline if
// it fits, as ext4_write_begin does for new inodes, else in blocks.
func TestInlineNewFile(t *testing.T) {
	testutil.RequireLoop(t)
	v := testutil.Ext4Inline
	img := filepath.Join(t.TempDir(), "img")
	testutil.MkfsD(t, img, t.TempDir(), v, 16)
	mnt := t.TempDir()
	testutil.LoopMount(t, img, mnt, false)
	for _, n := range []string{"ten", "large", "sparse", "attr"} {
		if err := os.WriteFile(filepath.Join(mnt, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Unmount(t, mnt)
	fs := coreOpen(t, img)
	ino := func(n string) Ino { return lookup(t, fs, n) }
	for _, n := range []string{"ten", "large", "sparse", "attr"} {
		in, err := fs.Inode(ino(n))
		if err != nil {
			t.Fatal(err)
		}
		if in.hasFlag(disk.InlineDataFL) || !in.hasFlag(disk.ExtentsFL) {
			t.Fatalf("kernel's new file %s has flags %#x, want extents only", n, in.Flags)
		}
	}
	// The library's own new files behave the same.
	for _, n := range []string{"lib10", "lib200"} {
		in, err := fs.Mknod(RootIno, []byte(n), sIFREG|0o644, 0, Cred{})
		if err != nil {
			t.Fatal(err)
		}
		if in.hasFlag(disk.InlineDataFL) || !in.hasFlag(disk.ExtentsFL) {
			t.Fatalf("new file %s has flags %#x, want extents only (as the kernel)", n, in.Flags)
		}
	}
	models := map[string]*model{"ten": {}, "large": {}, "sparse": {}, "attr": {}, "lib10": {}, "lib200": {}}
	do := func(n string, off int64, p []byte) {
		t.Helper()
		if err := inlineWrite(fs, ino(n), off, p); err != nil {
			t.Fatal(err)
		}
		models[n].write(off, p)
		checkFile(t, fs, ino(n), models[n])
	}
	do("ten", 0, []byte("0123456789"))
	wantInline(t, fs, ino("ten"), "ten", true, 0)
	do("large", 0, pattern(1, 200))
	wantInline(t, fs, ino("large"), "large", false, 0)
	do("sparse", 100, []byte("0123456789"))
	wantInline(t, fs, ino("sparse"), "sparse", true, 50)
	do("lib10", 0, []byte("0123456789"))
	wantInline(t, fs, ino("lib10"), "lib10", true, 0)
	do("lib200", 0, pattern(3, 200))
	wantInline(t, fs, ino("lib200"), "lib200", false, 0)
	// An attribute in the block does not stop a file from going inline.
	if err := fs.SetXattr(ino("attr"), "user.big", pattern(2, 1000), 0); err != nil {
		t.Fatal(err)
	}
	do("attr", 0, []byte("abc"))
	wantInline(t, fs, ino("attr"), "attr", true, 0)
	coreClose(t, fs, img)
	kernelCheck(t, v, img, models)
	kernelXattrCheck(t, v, img, map[string]map[string]string{"attr": {"user.big": string(pattern(2, 1000))}})
}

// TestInlineRandom runs random writes, truncates and attribute changes on
// small files, around the inline limit, against a model.
func TestInlineRandom(t *testing.T) {
	for _, v := range inlineVariants[:2] {
		t.Run(v.Name, func(t *testing.T) { testInlineRandom(t, v) })
	}
}

func testInlineRandom(t *testing.T, v testutil.Variant) {
	names := []string{"a", "b", "c", "d", "e"}
	files := map[string][]byte{}
	for i, n := range names {
		files[n] = pattern(uint64(i), i*25)
	}
	img, fs := coreImage(t, v, 16, files)
	rng := rand.New(rand.NewPCG(3, uint64(v.BlockSize)))
	models := map[string]*model{}
	attrs := map[string]map[string]string{}
	for _, n := range names {
		models[n] = &model{data: append([]byte(nil), files[n]...)}
		attrs[n] = map[string]string{}
	}
	sawConvert := false
	for step := range 300 {
		n := names[rng.IntN(len(names))]
		ino := lookup(t, fs, n)
		wasInline, _ := inlineState(t, fs, ino)
		switch op := rng.IntN(10); {
		case op < 5:
			off := rng.Int64N(140)
			if rng.IntN(20) == 0 {
				off = rng.Int64N(3 * int64(v.BlockSize))
			}
			p := pattern(uint64(step), 1+rng.IntN(60))
			if err := inlineWrite(fs, ino, off, p); err != nil {
				t.Fatalf("step %d: write %s at %d: %v", step, n, off, err)
			}
			models[n].write(off, p)
		case op < 8:
			size := rng.Int64N(160)
			truncateTo(t, fs, ino, uint64(size))
			models[n].truncate(size)
		default:
			k := fmt.Sprintf("user.%d", rng.IntN(4))
			if _, ok := attrs[n][k]; ok && rng.IntN(2) == 0 {
				if err := fs.RemoveXattr(ino, k); err != nil {
					t.Fatalf("step %d: remove %s %s: %v", step, n, k, err)
				}
				delete(attrs[n], k)
				break
			}
			val := string(pattern(uint64(step), rng.IntN(30)))
			if err := fs.SetXattr(ino, k, []byte(val), 0); err != nil {
				t.Fatalf("step %d: set %s %s: %v", step, n, k, err)
			}
			attrs[n][k] = val
		}
		checkFile(t, fs, ino, models[n])
		inl, value := inlineState(t, fs, ino)
		if inl {
			in, _ := fs.Inode(ino)
			if in.Size > uint64(disk.InlineDataIBlockSize+value) {
				t.Fatalf("step %d: %s inline with size %d past its %d-byte area", step, n, in.Size, disk.InlineDataIBlockSize+value)
			}
		}
		sawConvert = sawConvert || wasInline && !inl
		if d := diffXattrMaps(attrs[n], libXattrs(t, fs, ino)); d != "" {
			t.Fatalf("step %d: %s: %s", step, n, d)
		}
	}
	if !sawConvert {
		t.Errorf("no conversion to blocks happened")
	}
	coreClose(t, fs, img)
	kernelCheck(t, v, img, models)
	kernelXattrCheck(t, v, img, attrs)
}

// TestInlineMatchesKernel applies the same writes and truncates to inline
// files through the kernel (one image copy) and the library (another):
// contents, sizes, and which files stay inline with how large a
// system.data value must be the same.
func TestInlineMatchesKernel(t *testing.T) {
	testutil.RequireLoop(t)
	v := testutil.Ext4Inline
	rng := rand.New(rand.NewPCG(5, 5))
	type op struct {
		file  string
		trunc bool
		off   int64
		n     int
	}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var ops []op
	for range 60 {
		o := op{file: names[rng.IntN(len(names))], trunc: rng.IntN(3) == 0, off: rng.Int64N(130), n: 1 + rng.IntN(40)}
		ops = append(ops, o)
	}
	src := t.TempDir()
	for i, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), pattern(uint64(i), i*15), 0o644); err != nil {
			t.Fatal(err)
		}
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
	for i, o := range ops {
		p := filepath.Join(mnt, o.file)
		if o.trunc {
			if err := os.Truncate(p, o.off); err != nil {
				t.Fatal(err)
			}
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(pattern(uint64(100+i), o.n), o.off); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Unmount(t, mnt)

	models := map[string]*model{}
	for i, n := range names {
		models[n] = &model{data: pattern(uint64(i), i*15)}
	}
	for i, o := range ops {
		if o.trunc {
			models[o.file].truncate(o.off)
		} else {
			models[o.file].write(o.off, pattern(uint64(100+i), o.n))
		}
	}
	fs := coreOpen(t, libImg)
	for i, o := range ops {
		ino := lookup(t, fs, o.file)
		if o.trunc {
			truncateTo(t, fs, ino, uint64(o.off))
		} else if err := inlineWrite(fs, ino, o.off, pattern(uint64(100+i), o.n)); err != nil {
			t.Fatal(err)
		}
	}
	coreClose(t, fs, libImg)

	type state struct {
		inline bool
		value  int
		data   string
	}
	states := func(img string) map[string]state {
		fs := openImage(t, img, Options{ReadOnly: true})
		defer fs.Close()
		out := map[string]state{}
		for _, n := range names {
			ino := lookup(t, fs, n)
			in, err := fs.Inode(ino)
			if err != nil {
				t.Fatal(err)
			}
			inl, value := inlineState(t, fs, ino)
			b := make([]byte, in.Size)
			if _, err := fs.ReadAt(ino, b, 0); err != nil && len(b) > 0 {
				t.Fatal(err)
			}
			out[n] = state{inl, value, string(b)}
		}
		return out
	}
	kernelCheck(t, v, libImg, models)
	ks, ls := states(kimg), states(libImg)
	for _, n := range names {
		k, l := ks[n], ls[n]
		want := string(models[n].read(0, models[n].len()))
		if l.data != want {
			t.Errorf("%s: the library's data differs from the model at %d", n, firstDiffByte([]byte(l.data), []byte(want)))
		}
		if k.data != want {
			// Linux 6.18 loses writes made after ext4_setattr converted an
			// inline file on truncate up (even with fsync; seen here with
			// 90 inline bytes, truncate to 118, pwrite at 0): the kernel
			// is the oracle for layout here, the model for contents.
			t.Logf("%s: the kernel's own data differs from the model at %d", n, firstDiffByte([]byte(k.data), []byte(want)))
		}
		if k.inline != l.inline || k.value != l.value || len(k.data) != len(l.data) {
			t.Errorf("%s: kernel inline %v value %d size %d; library inline %v value %d size %d",
				n, k.inline, k.value, len(k.data), l.inline, l.value, len(l.data))
		}
	}
}
