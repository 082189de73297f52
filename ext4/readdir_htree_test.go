package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/ext4/dirhash"
)

// kdirent is one entry as the kernel's getdents64 reports it.
type kdirent struct {
	name string
	off  uint64 // d_off: the position after this entry
}

// kernelGetdents lists dir through getdents64, in the kernel's order.
func kernelGetdents(t *testing.T, dir string) []kdirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var out []kdirent
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		for p := buf[:n]; len(p) > 0; {
			reclen := int(binary.LittleEndian.Uint16(p[16:]))
			name, _, _ := bytes.Cut(p[19:reclen], []byte{0})
			out = append(out, kdirent{name: string(name), off: binary.LittleEndian.Uint64(p[8:])})
			p = p[reclen:]
		}
	}
}

// htreeNames are the names the kernel puts in the test directory: enough
// for dozens of 1 KiB leaves, with varied lengths and some bytes >= 0x80
// (where signed and unsigned hashing differ).
func htreeNames() []string {
	names := make([]string, 700)
	for i := range names {
		names[i] = fmt.Sprintf("f%04d-%s", i, strings.Repeat("xé"[i%3:], i%23))
	}
	return names
}

// kernelHtreeImage makes a 1 KiB-block filesystem with hash algorithm alg,
// creates directory "d" holding names through a kernel loop mount, and
// returns the image and the kernel's getdents listing of "d".
func kernelHtreeImage(t *testing.T, alg string, extra ...string) (string, []kdirent) {
	t.Helper()
	requireTools(t)
	requireRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	args := append([]string{"-q", "-F", "-b", "1024"}, extra...)
	run(t, "mkfs.ext4", append(args, img, "16M")...)
	run(t, "tune2fs", "-E", "hash_alg="+alg, img) // new directories use it
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-o", "loop", img, mnt)
	mounted := true
	defer func() {
		if mounted {
			run(t, "umount", mnt)
		}
	}()
	d := filepath.Join(mnt, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range htreeNames() {
		if err := os.WriteFile(filepath.Join(d, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kl := kernelGetdents(t, d)
	run(t, "umount", mnt)
	mounted = false
	run(t, "e2fsck", "-fn", img)
	return img, kl
}

// listFrom lists dir from cookie to the end, calling ReadDir again after
// every chunk entries (chunk 0: one call) as a server with a small reply
// buffer would.
func listFrom(t *testing.T, fs *FS, dir Ino, cookie uint64, chunk int) []DirEntry {
	t.Helper()
	var out []DirEntry
	for calls := 0; ; calls++ {
		if calls > 100000 {
			t.Fatal("listing does not end")
		}
		got := 0
		err := fs.ReadDir(dir, cookie, func(e DirEntry) bool {
			if chunk > 0 && got == chunk {
				return false
			}
			got++
			out = append(out, e)
			cookie = e.Next
			return true
		})
		if err != nil {
			t.Fatalf("ReadDir(%d, %#x): %v", dir, cookie, err)
		}
		if chunk == 0 || got < chunk {
			return out
		}
	}
}

func entryNames(es []DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Name))
	}
	return out
}

// TestReadDirHtreeOrder compares listings of kernel-built htree
// directories with the kernel's own: the same names in the same (hash)
// order, the hashes behind the kernel's d_off values equal to ours, and
// resuming from any cookie giving exactly the rest.
func TestReadDirHtreeOrder(t *testing.T) {
	for _, c := range []struct {
		alg   string
		v     dirhash.Version
		extra []string
	}{
		{"half_md4", dirhash.HalfMD4, nil},
		{"tea", dirhash.Tea, nil},
		{"legacy", dirhash.Legacy, []string{"-O", "^metadata_csum"}},
	} {
		t.Run(c.alg, func(t *testing.T) {
			img, kl := kernelHtreeImage(t, c.alg, c.extra...)
			fs := openImage(t, img, Options{})
			d := mustResolve(t, fs, "d")
			in, err := fs.Inode(d)
			if err != nil {
				t.Fatal(err)
			}
			if !fs.isDx(in) || in.Size < 20*1024 {
				t.Fatalf("d is not a multi-leaf htree directory (indexed %v, size %d)", fs.isDx(in), in.Size)
			}
			ix, err := fs.dxRootLocked(in)
			if err != nil {
				t.Fatal(err)
			}
			if ix.version != c.v {
				t.Fatalf("d hashes with %v, want %v", ix.version, c.v)
			}

			full := listFrom(t, fs, d, 0, 0)
			var want []string
			for _, k := range kl {
				want = append(want, k.name)
			}
			if got := entryNames(full); !slices.Equal(got, want) {
				t.Fatalf("order differs from the kernel's:\n got %q\nwant %q", got[:min(len(got), 12)], want[:min(len(want), 12)])
			}

			// The kernel's 64-bit d_off of an entry is hash2pos of the next
			// one: (major>>1)<<32 | minor. Ours keeps the same bits less
			// the low 9 of minor, so entries map one to one.
			pos := make([]uint64, len(full))
			for i, e := range full {
				switch i {
				case 0:
					pos[i] = dxDotPos
					continue
				case 1:
					pos[i] = dxDotDotPos
					continue
				}
				major, minor, err := ix.hash(e.Name)
				if err != nil {
					t.Fatal(err)
				}
				if kpos := uint64(major>>1)<<32 | uint64(minor); kl[i-1].off != kpos {
					t.Errorf("%q: kernel position %#x, hash gives %#x", e.Name, kl[i-1].off, kpos)
				}
				pos[i] = dxPos(dxKey(major, minor), 0)
			}
			if last := kl[len(kl)-1].off; last != dxEOFPos || full[len(full)-1].Next != dxEOFPos {
				t.Errorf("end position: kernel %#x, ours %#x, want %#x", last, full[len(full)-1].Next, uint64(dxEOFPos))
			}
			for i := range len(full) - 1 {
				if !(pos[i] < full[i].Next && full[i].Next <= pos[i+1]) {
					t.Fatalf("%q at %#x has Next %#x, next entry at %#x", full[i].Name, pos[i], full[i].Next, pos[i+1])
				}
			}

			// Resuming from every cookie lists exactly the rest.
			cookies := []uint64{0}
			for _, e := range full {
				cookies = append(cookies, e.Next)
			}
			for i, c := range cookies {
				got := entryNames(listFrom(t, fs, d, c, 0))
				if !slices.Equal(got, want[i:]) {
					t.Fatalf("from cookie %#x (entry %d): %d entries, want %d", c, i, len(got), len(want)-i)
				}
			}
			// So does listing in small chunks, as a full reply buffer stops
			// a server's listing.
			for _, chunk := range []int{1, 7} {
				if got := entryNames(listFrom(t, fs, d, 0, chunk)); !slices.Equal(got, want) {
					t.Fatalf("chunks of %d: %d entries, want %d", chunk, len(got), len(want))
				}
			}
		})
	}
}

// TestReadDirHtreeResumeAcrossSplits interrupts a listing, then inserts
// enough names to split leaves and removes others, and resumes: every name
// present throughout must be listed exactly once, with no name twice.
func TestReadDirHtreeResumeAcrossSplits(t *testing.T) {
	for _, alg := range []string{"half_md4", "legacy"} {
		t.Run(alg, func(t *testing.T) {
			img, _ := kernelHtreeImage(t, alg)
			fs := openRW(t, img)
			d := mustResolve(t, fs, "d")
			before, err := fs.Inode(d)
			if err != nil {
				t.Fatal(err)
			}
			size0 := before.Size

			original := htreeNames()
			var first []DirEntry
			if err := fs.ReadDir(d, 0, func(e DirEntry) bool {
				if len(first) == len(original)/2 {
					return false
				}
				first = append(first, e)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			cookie := first[len(first)-1].Next

			// Remove every third original name (on both sides of the
			// cookie), then add many names: the leaves split.
			removed := map[string]bool{}
			for i, n := range original {
				if i%3 == 1 {
					if _, err := fs.Unlink(d, []byte(n)); err != nil {
						t.Fatalf("Unlink %s: %v", n, err)
					}
					removed[n] = true
				}
			}
			for i := range 1500 {
				n := fmt.Sprintf("new%05d-%s", i, strings.Repeat("y", i%31))
				if _, err := fs.Mknod(d, []byte(n), sIFREG|0o644, 0, Cred{}); err != nil {
					t.Fatalf("Mknod %s: %v", n, err)
				}
			}
			after, err := fs.Inode(d)
			if err != nil {
				t.Fatal(err)
			}
			if after.Size <= size0+10*1024 {
				t.Fatalf("directory grew from %d to %d bytes only: too few leaf splits", size0, after.Size)
			}

			rest := listFrom(t, fs, d, cookie, 5)
			seen := map[string]int{}
			for _, e := range append(first, rest...) {
				seen[string(e.Name)]++
			}
			for n, k := range seen {
				if k > 1 {
					t.Errorf("%q listed %d times", n, k)
				}
			}
			for _, n := range original {
				if !removed[n] && seen[n] != 1 {
					t.Errorf("%q, present throughout, listed %d times", n, seen[n])
				}
			}
			// The resumed part lists only names that exist now.
			for _, e := range rest {
				if _, err := fs.Lookup(d, e.Name); err != nil {
					t.Errorf("resumed listing has %q: Lookup: %v", e.Name, err)
				}
			}
		})
	}
}

// legacyCollisions returns groups of names with the same legacy (signed)
// hash, found by brute force: the hash has 31 bits, so a few hundred
// thousand names hold several colliding pairs.
func legacyCollisions(t *testing.T, groups int) [][]string {
	t.Helper()
	byHash := map[uint32][]string{}
	var out [][]string
	for i := 0; len(out) < groups && i < 2_000_000; i++ {
		n := fmt.Sprintf("c%07d", i)
		h, _, err := dirhash.Hash(dirhash.Legacy, []byte(n), [4]uint32{})
		if err != nil {
			t.Fatal(err)
		}
		byHash[h] = append(byHash[h], n)
		if len(byHash[h]) == 2 {
			out = append(out, byHash[h])
		}
	}
	if len(out) < groups {
		t.Fatalf("found %d colliding pairs, want %d", len(out), groups)
	}
	return out
}

// TestReadDirHtreeCollisions lists a legacy-hash directory holding names
// whose hashes collide (same major, minor 0): each gets its own cookie,
// so a listing stopped between two of them resumes with the second.
func TestReadDirHtreeCollisions(t *testing.T) {
	pairs := legacyCollisions(t, 4)
	img, _ := kernelHtreeImage(t, "legacy", "-O", "^metadata_csum")
	fs := openRW(t, img)
	d := mustResolve(t, fs, "d")
	for _, p := range pairs {
		for _, n := range p {
			if _, err := fs.Mknod(d, []byte(n), sIFREG|0o644, 0, Cred{}); err != nil {
				t.Fatalf("Mknod %s: %v", n, err)
			}
		}
	}
	full := listFrom(t, fs, d, 0, 0)
	at := map[string]int{}
	for i, e := range full {
		at[string(e.Name)] = i
	}
	for _, p := range pairs {
		i, j := at[p[0]], at[p[1]]
		// Equal hashes list together, by name.
		if i == 0 || j != i+1 {
			t.Fatalf("colliding %q and %q listed at %d and %d", p[0], p[1], i, j)
		}
		if full[i-1].Next == full[i].Next {
			t.Fatalf("colliding %q and %q share cookie %#x", p[0], p[1], full[i].Next)
		}
		// Resume between them.
		rest := entryNames(listFrom(t, fs, d, full[i].Next, 0))
		if !slices.Equal(rest, entryNames(full[j:])) {
			t.Fatalf("resuming after %q lists %d entries starting %q, want %d starting %q",
				p[0], len(rest), rest[0], len(full)-j, p[1])
		}
	}
	// In chunks of one, as the smallest reply buffer would.
	if got := entryNames(listFrom(t, fs, d, 0, 1)); !slices.Equal(got, entryNames(full)) {
		t.Fatalf("chunks of 1: %d entries, want %d", len(got), len(full))
	}
}

// TestDxRankSaturates checks positions within an oversized collision
// group: ranks count up, then the tail shares the last rank.
func TestDxRankSaturates(t *testing.T) {
	var batch []dxEnt
	for i := range dxMaxRank + 10 {
		batch = append(batch, dxEnt{major: 0x1234, minor: 0x5678, name: fmt.Appendf(nil, "n%04d", i)})
	}
	batch = append(batch, dxEnt{major: 0x1234, minor: 0x5678 + 1<<9, name: []byte("other")})
	pos := dxRank(batch)
	k := dxKey(0x1234, 0x5678)
	for i := range batch[:len(batch)-1] {
		if want := dxPos(k, min(i, dxMaxRank)); pos[i] != want {
			t.Fatalf("entry %d at %#x, want %#x", i, pos[i], want)
		}
	}
	if last := pos[len(pos)-1]; last != dxPos(k+1, 0) {
		t.Fatalf("next key's entry at %#x, want %#x", last, dxPos(k+1, 0))
	}
	// The largest position stays clear of the end marker and loff_t's sign.
	if top := dxPos(dxKeyLimit-1, dxMaxRank); top >= dxEOFPos {
		t.Fatalf("largest position %#x reaches the end marker", top)
	}
}
