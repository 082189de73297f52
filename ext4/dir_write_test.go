package ext4

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/testutil"
)

// Block-level directory edits against a map model: after every insert or
// delete the region must still parse, its records must tile it, and its
// live entries must be exactly the model's.

// checkRegion parses region b and compares its live entries with want.
func checkRegion(t *testing.T, b []byte, recBlock int, want map[string]uint32) {
	t.Helper()
	got := map[string]uint32{}
	it := disk.NewDirIter(b, recBlock)
	for de, ok := it.Next(); ok; de, ok = it.Next() {
		if de.Inode != 0 {
			if _, dup := got[string(de.Name)]; dup {
				t.Fatalf("duplicate %q", de.Name)
			}
			got[string(de.Name)] = de.Inode
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("region does not parse: %v", err)
	}
	if it.Offset() != len(b) {
		t.Fatalf("records end at %d of %d", it.Offset(), len(b))
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%q -> %d, want %d", k, got[k], v)
		}
	}
}

func TestDirentInsertDelete(t *testing.T) {
	for _, c := range []struct {
		bs   int
		csum bool
	}{{56, false}, {1024, true}, {4096, true}, {4096, false}, {65536, true}, {65536, false}} {
		bs := c.bs
		t.Run(fmt.Sprint(bs, c.csum), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(bs)))
			fs := &FS{bsize: bs, csum: c.csum, geo: &disk.Superblock{}}
			b := make([]byte, bs)
			region := b
			if bs == 56 { // an inline region
				disk.EncodeDirEntry(b, 0, bs, 0, nil, bs)
			} else {
				fs.initLeaf(b)
				region = b[:fs.leafEnd()]
			}
			model := map[string]uint32{}
			for i := range 3000 {
				if len(model) > 0 && r.IntN(3) == 0 {
					names := make([]string, 0, len(model))
					for k := range model {
						names = append(names, k)
					}
					slices.Sort(names)
					victim := names[r.IntN(len(names))]
					off, _, ok, err := findEntry(region, bs, []byte(victim))
					if !ok || err != nil {
						t.Fatalf("find %q: %v %v", victim, ok, err)
					}
					if err := deleteAt(region, bs, off); err != nil {
						t.Fatal(err)
					}
					delete(model, victim)
				} else {
					name := fmt.Sprintf("n%d-%s", i, make([]byte, r.IntN(40)))
					e := &dent{name: []byte(name), ino: uint32(i + 11), ft: 1}
					switch err := insertEntry(region, bs, e); err {
					case nil:
						model[name] = e.ino
					case errNoSpace:
					default:
						t.Fatal(err)
					}
				}
				checkRegion(t, region, bs, model)
				if fs.csum && !disk.HasDirTail(b) {
					t.Fatal("tail lost")
				}
			}
			// A duplicate is refused wherever it is in the region.
			for k := range model {
				if err := insertEntry(region, bs, &dent{name: []byte(k), ino: 99}); err != syscall.EEXIST {
					t.Fatalf("duplicate insert of %q: %v", k, err)
				}
			}
		})
	}
}

func TestPackLeafAndSplit(t *testing.T) {
	fs := &FS{bsize: 1024, csum: true, geo: &disk.Superblock{}}
	var es []dent
	used := 0
	for i := 0; ; i++ {
		e := dent{name: []byte(fmt.Sprintf("name-%d-%s", i, make([]byte, i%50))), ino: uint32(100 + i)}
		if used+e.recLen() > fs.leafEnd() {
			break
		}
		used += e.recLen()
		es = append(es, e)
	}
	b := make([]byte, fs.bsize)
	if !fs.packLeaf(b, es) {
		t.Fatal("packLeaf: entries that fit do not")
	}
	want := map[string]uint32{}
	for _, e := range es {
		want[string(e.name)] = e.ino
	}
	checkRegion(t, b[:fs.leafEnd()], fs.bsize, want)
	if !disk.HasDirTail(b) {
		t.Fatal("no tail")
	}
	if fs.packLeaf(b, append(es, dent{name: make([]byte, 200), ino: 1})) {
		t.Fatal("packLeaf accepted too much")
	}

	// Splits keep every entry, order halves by hash, and leave room.
	for _, hv := range []uint8{disk.DxHashLegacy, disk.DxHashHalfMD4, disk.DxHashTea} {
		extra := &dent{name: []byte("the-new-one"), ino: 7}
		h, err := fs.dxNameHash(hv, extra.name)
		if err != nil {
			t.Fatal(err)
		}
		lower, upper, start, err := fs.splitLeafEntries(es, extra, h, hv)
		if err != nil {
			t.Fatal(err)
		}
		if len(lower)+len(upper) != len(es)+1 || len(lower) == 0 || len(upper) == 0 {
			t.Fatalf("split %d+%d of %d", len(lower), len(upper), len(es)+1)
		}
		for _, e := range lower {
			if h, _ := fs.dxNameHash(hv, e.name); h > start&^1 || h == start&^1 && start&1 == 0 {
				t.Fatalf("lower entry %q hash %#x >= start %#x", e.name, h, start)
			}
		}
		for _, e := range upper {
			if h, _ := fs.dxNameHash(hv, e.name); h < start&^1 {
				t.Fatalf("upper entry %q hash %#x < start %#x", e.name, h, start)
			}
		}
		if !fs.packLeaf(b, lower) || !fs.packLeaf(b, upper) {
			t.Fatal("split halves do not fit")
		}
	}
}

func TestSplitIndexCollisions(t *testing.T) {
	// All equal hashes: the split must still leave both sides non-empty.
	es := make([]hashed, 10)
	for i := range es {
		es[i] = hashed{dent: dent{name: make([]byte, 100)}, hash: 42}
	}
	s := splitIndex(es, 1024)
	if s < 1 || s >= len(es) {
		t.Fatalf("split %d", s)
	}
}

// FuzzDirentEdits runs the block edits on arbitrary bytes: they must
// report malformed records, never panic or write outside the region, and
// leave a region that parses when they succeed on one that did.
func FuzzDirentEdits(f *testing.F) {
	fs := &FS{bsize: 1024, csum: false, geo: &disk.Superblock{}}
	seed := make([]byte, 1024)
	fs.initLeaf(seed)
	_ = insertEntry(seed, 1024, &dent{name: []byte("hello"), ino: 12, ft: 1})
	_ = insertEntry(seed, 1024, &dent{name: []byte("world"), ino: 13, ft: 2})
	f.Add(seed, []byte("new"), uint8(0))
	f.Add(seed, []byte("hello"), uint8(1))
	f.Add(seed[:56], []byte("x"), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, name []byte, op uint8) {
		if len(name) == 0 || len(name) > disk.MaxNameLen || len(b) > 1<<16 {
			return
		}
		_, perr := liveEntries(b, len(b))
		orig := append([]byte(nil), b...)
		guard := append(append([]byte(nil), b...), 0xAA, 0xBB) // detects writes past the region
		region := guard[:len(b)]
		switch op % 3 {
		case 0:
			err := insertEntry(region, len(region), &dent{name: name, ino: 99, ft: 1})
			if err == nil && perr != nil {
				t.Fatalf("insert into a malformed region succeeded")
			}
		case 1:
			if off, _, ok, err := findEntry(region, len(region), name); ok && err == nil {
				if err := deleteAt(region, len(region), off); err != nil {
					t.Fatalf("delete of a found entry: %v", err)
				}
			}
		case 2:
			if perr == nil {
				es, _ := liveEntries(region, len(region))
				fs.bsize = max(len(region), disk.DirRecLen(1))
				fs.packLeaf(make([]byte, fs.bsize), es)
			}
		}
		if guard[len(b)] != 0xAA || guard[len(b)+1] != 0xBB {
			t.Fatal("write past the region")
		}
		if perr == nil {
			if _, err := liveEntries(region, len(region)); err != nil {
				t.Fatalf("edit broke a valid region: %v\nbefore %x", err, orig)
			}
		}
	})
}

// Namespace operations on damaged directories: the operation touching the
// damage fails with a corruption error and changes nothing; other
// directories keep working.

// pokeDir overwrites bytes of a directory's logical block lblk in img.
func pokeDir(t *testing.T, img string, fs *FS, dir Ino, lblk int64, off int, b []byte) {
	t.Helper()
	mp, err := fs.Map(dir, lblk*int64(fs.BlockSize()), int64(fs.BlockSize()))
	if err != nil || mp.Type != MapMapped {
		t.Fatalf("map dir %d block %d: %v %+v", dir, lblk, err, mp)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, mp.Addr+int64(off)); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptDirWrites(t *testing.T) {
	for _, c := range []struct {
		v      testutil.Variant
		big    bool // an htree directory
		lblk   int64
		off    int
		poke   []byte
		reason string
	}{
		{testutil.Ext4NoCsum, false, 0, 24 + 4, []byte{3, 0}, "rec_len not a multiple of 4"},
		{testutil.Ext4NoCsum, false, 0, 24 + 4, []byte{0xF0, 0x3F}, "rec_len past the block"},
		{testutil.Ext4, false, 0, 100, []byte{0x55}, "checksum mismatch"},
		{testutil.Ext4NoCsum, true, 0, 0x20 + 8 + 4, []byte{0xFF, 0xFF, 0, 0}, "index entry beyond the directory"},
		{testutil.Ext4NoCsum, true, 0, 0x1E, []byte{7}, "too many index levels"},
		{testutil.Ext4, true, 1, 200, []byte{0x55}, "leaf checksum mismatch"},
	} {
		t.Run(c.v.Name+"/"+c.reason, func(t *testing.T) {
			img, fs := newRWImage(t, c.v, 32, 1000)
			m := newModel(t, fs)
			m.mkdir("bad")
			m.mkdir("good")
			n := 5
			if c.big {
				n = 400
			}
			for i := range n {
				m.create(fmt.Sprintf("bad/file-%d-xxxxxxxxxxxxxxxx", i))
			}
			m.create("good/g")
			bad := m.dir("bad")
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			ro := openImage(t, img, Options{})
			pokeDir(t, img, ro, bad, c.lblk, c.off, c.poke)
			before, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			fs = openRW(t, img)
			m.fs = fs
			// Names whose hash lands anywhere: some operations may not touch
			// the damaged block, but none may succeed half-way.
			ops := map[string]func() error{
				"mknod": func() error {
					_, err := fs.Mknod(bad, []byte("new"), sIFREG|0o644, 0, Cred{})
					return err
				},
				"unlink": func() error { _, err := fs.Unlink(bad, []byte("file-1-xxxxxxxxxxxxxxxx")); return err },
				"rmdir":  func() error { _, err := fs.Rmdir(RootIno, []byte("bad")); return err },
				"rename in": func() error {
					_, err := fs.Rename(m.dir("good"), []byte("g"), bad, []byte("g2"), 0)
					return err
				},
				"rename out": func() error {
					_, err := fs.Rename(bad, []byte("file-2-xxxxxxxxxxxxxxxx"), m.dir("good"), []byte("h"), 0)
					return err
				},
			}
			corrupt := 0
			for name, op := range ops {
				err := op()
				switch {
				case errors.Is(err, ErrCorrupt):
					corrupt++
				case err == nil || errors.Is(err, syscall.ENOTEMPTY):
					// Untouched by the damage (an htree leaf elsewhere).
				default:
					t.Errorf("%s: %v", name, err)
				}
			}
			if corrupt == 0 {
				t.Errorf("no operation noticed the damage")
			}
			// Other directories still work.
			if _, err := fs.Mknod(m.dir("good"), []byte("fine"), sIFREG|0o644, 0, Cred{}); err != nil {
				t.Fatalf("mknod in an undamaged directory: %v", err)
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			// The damaged block is as it was: failed operations wrote nothing there.
			ro = openImage(t, img, Options{})
			mp, err := ro.Map(bad, c.lblk*int64(ro.BlockSize()), int64(ro.BlockSize()))
			if err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			a, b := mp.Addr, mp.Addr+int64(ro.BlockSize())
			if string(before[a:b]) != string(after[a:b]) {
				t.Errorf("damaged block changed")
			}
		})
	}
}
