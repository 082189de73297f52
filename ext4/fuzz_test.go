package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
)

// Robustness: damaged images must give errors, never panics, hangs or huge
// allocations. A small image is damaged at random metadata bytes and every
// operation is run over everything reachable.

var smallImage struct {
	once sync.Once
	img  []byte
	meta []int64 // byte offsets of metadata blocks worth damaging
	bs   int
	err  error
}

// buildSmallImage makes a 4 MiB image with a little of everything: an
// indexed directory, a multi-level extent tree, xattrs in the inode and in a
// block, symlinks of each kind, inline data.
func buildSmallImage(t testing.TB) ([]byte, []int64, int) {
	requireTools(t)
	s := &smallImage
	s.once.Do(func() {
		dir, err := os.MkdirTemp("", "e4box-small-")
		if err != nil {
			s.err = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "src")
		r := rand.New(rand.NewPCG(3, 4))
		os.MkdirAll(filepath.Join(src, "d/e"), 0o755)
		os.WriteFile(filepath.Join(src, "small"), []byte("tiny"), 0o644)
		os.WriteFile(filepath.Join(src, "d/e/f"), randBytes(r, 5000), 0o644)
		for i := range 40 {
			writeAt(t, filepath.Join(src, "frag"), int64(i)*2048, randBytes(r, 1024))
		}
		os.Mkdir(filepath.Join(src, "many"), 0o755)
		for i := range 150 {
			os.WriteFile(filepath.Join(src, fmt.Sprintf("many/name-%03d-%s", i, strings.Repeat("q", i%30))), nil, 0o644)
		}
		os.Symlink("small", filepath.Join(src, "fast"))
		os.Symlink(strings.Repeat("s", 300), filepath.Join(src, "slow"))
		unix.Lsetxattr(filepath.Join(src, "small"), "user.a", []byte("1"), 0)
		unix.Lsetxattr(filepath.Join(src, "small"), "user.b", randBytes(r, 500), 0)
		img := filepath.Join(dir, "img")
		out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-I", "256", "-O", "inline_data",
			"-E", "lazy_itable_init=0", "-d", src, img, "4M").CombinedOutput()
		if err != nil {
			s.err = fmt.Errorf("mkfs: %v: %s", err, out)
			return
		}
		exec.Command("e2fsck", "-fyD", img).Run()
		if s.img, err = os.ReadFile(img); err != nil {
			s.err = err
			return
		}
		s.bs = 1024
		s.meta = metadataOffsets(t, s.img)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.img, s.meta, s.bs
}

// metadataOffsets lists the byte offsets of metadata blocks in img: the
// start of the device (superblock, descriptors, bitmaps, inode table) and
// every directory, extent, and xattr block reachable from the root.
func metadataOffsets(t testing.TB, img []byte) []int64 {
	fs, err := openMem(t, img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for b := int64(1); b < 64; b++ {
		offs = append(offs, b*int64(fs.bsize))
	}
	walkAll(fs, func(in *Inode) {
		if fb := in.raw.FileACL(); fb != 0 {
			offs = append(offs, fs.pblkOff(PBlk(fb)))
		}
		if in.IsDir() && fs.hasBlocks(in) {
			n, _ := fs.dirBlocks(in)
			for l := uint64(0); l < n; l++ {
				if bm, err := fs.mapBlockLocked(in, l); err == nil && bm.kind == MapMapped {
					offs = append(offs, fs.pblkOff(bm.pblk))
				}
			}
		}
		if in.hasFlag(0x80000) {
			if h := binary.LittleEndian.Uint16(in.raw.Block[6:]); h > 0 {
				_, child := extentIdxAt(in.raw.Block[:], 0)
				offs = append(offs, fs.pblkOff(child))
			}
		}
	})
	return offs
}

// walkAll visits every inode reachable from the root (each once) and runs
// every read operation on it, ignoring errors. It is bounded: each
// directory is listed once and reads are capped.
func walkAll(fs *FS, visit func(*Inode)) {
	seen := map[Ino]bool{}
	queue := []Ino{RootIno}
	for len(queue) > 0 && len(seen) < 10000 {
		ino := queue[0]
		queue = queue[1:]
		if seen[ino] {
			continue
		}
		seen[ino] = true
		in, err := fs.Inode(ino)
		if err != nil {
			checkErr(err)
			continue
		}
		if visit != nil {
			visit(in)
		}
		names, err := fs.ListXattr(ino)
		checkErr(err)
		for _, n := range names {
			_, err := fs.GetXattr(ino, n)
			checkErr(err)
		}
		switch {
		case in.IsDir():
			err := fs.ReadDir(ino, 0, func(e DirEntry) bool {
				if _, err := fs.Lookup(ino, e.Name); err != nil {
					checkErr(err)
				}
				queue = append(queue, e.Ino)
				return true
			})
			checkErr(err)
		case in.IsSymlink():
			_, err := fs.ReadLink(ino)
			checkErr(err)
		case in.IsReg():
			buf := make([]byte, 1<<16)
			for off := int64(0); off < int64(min(in.Size, 1<<20)); off += int64(len(buf)) {
				if _, err := fs.ReadAt(ino, buf, off); err != nil {
					checkErr(err)
					break
				}
			}
			_, err := fs.SeekData(ino, 0)
			checkErr(err)
			_, err = fs.SeekHole(ino, 0)
			checkErr(err)
			_, err = fs.Map(ino, 0, 1<<30)
			checkErr(err)
		}
	}
}

// checkErr panics on an error of a kind the library must not produce: the
// only acceptable ones are errnos, corruption reports and EOF.
func checkErr(err error) {
	if err == nil {
		return
	}
	var errno syscall.Errno
	if errors.As(err, &errno) || errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "EOF") {
		return
	}
	panic(fmt.Sprintf("unexpected error kind %T: %v", err, err))
}

// damageAndWalk flips bytes of img (a private copy) and walks it.
func damageAndWalk(img []byte, meta []int64, bs int, r *rand.Rand, flips int) {
	for range flips {
		off := meta[r.IntN(len(meta))] + int64(r.IntN(bs))
		img[off] ^= byte(1 << r.IntN(8))
	}
	fs, err := Open(blockdev.NewMemFrom(img, true), Options{ReadOnly: true, IgnoreErrorState: true})
	if err != nil {
		checkErr(err)
		return
	}
	walkAll(fs, nil)
}

func TestRandomDamage(t *testing.T) {
	base, meta, bs := buildSmallImage(t)
	// The pristine image must walk cleanly.
	fs, err := openMem(t, base, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	walkAll(fs, func(*Inode) { n++ })
	if n < 150 {
		t.Fatalf("walked %d inodes of the pristine image", n)
	}
	r := rand.New(rand.NewPCG(5, 6))
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for range iters {
		damageAndWalk(append([]byte(nil), base...), meta, bs, r, 1+r.IntN(8))
	}
}

// FuzzDamage lets the fuzzer choose the damage: pairs of (metadata block
// index, byte offset, xor value) from the input.
func FuzzDamage(f *testing.F) {
	base, meta, bs := buildSmallImage(f)
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{5, 0x10, 0, 0xff, 70, 4, 0, 7})
	f.Fuzz(func(t *testing.T, patch []byte) {
		img := append([]byte(nil), base...)
		for i := 0; i+4 <= len(patch) && i < 64; i += 4 {
			blk := meta[int(patch[i])%len(meta)]
			off := int(binary.LittleEndian.Uint16(patch[i+1:])) % bs
			img[blk+int64(off)] ^= patch[i+3]
		}
		fs, err := Open(blockdev.NewMemFrom(img, true), Options{ReadOnly: true, IgnoreErrorState: true})
		if err != nil {
			checkErr(err)
			return
		}
		walkAll(fs, nil)
	})
}
