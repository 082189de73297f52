package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4/disk"
)

func variantByName(t *testing.T, name string) variant {
	for _, v := range variants {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("no variant %s", name)
	return variant{}
}

// corruptFixture is a private in-memory copy of an image plus helpers to
// damage it at known places.
type corruptFixture struct {
	t   *testing.T
	dev *cowDev // private copy-on-write view of the shared image
	fs  *FS     // opened on the pristine image, used to locate structures
}

func newCorruptFixture(t *testing.T, variantName string) *corruptFixture {
	base := imageBytes(t, variantByName(t, variantName))
	fs, err := Open(newCow(base, true), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return &corruptFixture{t: t, dev: newCow(base, true), fs: fs}
}

func (f *corruptFixture) ino(path string) Ino {
	ino, err := resolve(f.fs, path)
	if err != nil {
		f.t.Fatal(err)
	}
	return ino
}

// reopen opens the damaged image, logging to log.
func (f *corruptFixture) reopen(log *bytes.Buffer) *FS {
	fs, err := Open(f.dev, Options{ReadOnly: true,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		f.t.Fatalf("Open after damage: %v", err)
	}
	return fs
}

// wantCorrupt asserts err is a *CorruptError for ino (and block, if nonzero)
// and that the log names them.
func wantCorrupt(t *testing.T, what string, err error, ino Ino, blk PBlk, log *bytes.Buffer) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: err = %v, want *CorruptError", what, err)
	}
	if ce.Ino != ino || blk != 0 && ce.Block != blk {
		t.Fatalf("%s: CorruptError{Kind %q, Ino %d, Block %d}, want ino %d block %d", what, ce.Kind, ce.Ino, ce.Block, ino, blk)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("ino=%d", ino)) || blk != 0 && !strings.Contains(log.String(), fmt.Sprintf("block=%d", blk)) {
		t.Fatalf("%s: log does not name inode %d block %d:\n%s", what, ino, blk, log)
	}
}

// readAll reads a whole file through the library.
func readAll(fs *FS, ino Ino) ([]byte, error) {
	in, err := fs.Inode(ino)
	if err != nil {
		return nil, err
	}
	b := make([]byte, in.Size)
	n, err := fs.ReadAt(ino, b, 0)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	return b[:n], err
}

func TestCorruptExtentBlock(t *testing.T) {
	for _, vn := range []string{"ext4", "ext4-nocsum"} {
		t.Run(vn, func(t *testing.T) {
			f := newCorruptFixture(t, vn)
			frag, other := f.ino("frag"), f.ino("f300000")
			in, _ := f.fs.Inode(frag)
			if h, _ := disk.DecodeExtentHeader(in.raw.Block[:]); h.Depth == 0 {
				t.Fatalf("frag has a depth-0 extent tree; the test needs an extent block")
			}
			_, child := extentIdxAt(in.raw.Block[:], 0)
			off := f.fs.pblkOff(child)
			// Move the first extent far beyond its node's range: caught by the
			// checksum with metadata_csum, by the range check without.
			f.dev.put32(off+12, 0xFFFFFF00)
			var log bytes.Buffer
			fs := f.reopen(&log)
			_, err := readAll(fs, frag)
			wantCorrupt(t, "read frag", err, frag, child, &log)
			if _, err := fs.Map(frag, 0, 1<<20); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Map of damaged file: %v", err)
			}
			if _, err := fs.Inode(frag); err != nil {
				t.Fatalf("the inode itself is intact: %v", err)
			}
			if _, err := readAll(fs, other); err != nil {
				t.Fatalf("another file: %v", err)
			}
		})
	}
}

func TestCorruptDirBlock(t *testing.T) {
	for _, vn := range []string{"ext4", "ext4-nocsum", "ext2"} {
		t.Run(vn, func(t *testing.T) {
			f := newCorruptFixture(t, vn)
			dir := f.ino("dir")
			din, _ := f.fs.Inode(dir)
			bm, err := f.fs.mapBlockLocked(din, 0)
			if err != nil || bm.kind != MapMapped {
				t.Fatal(bm, err)
			}
			// rec_len 5 of the first entry (".") is invalid everywhere.
			f.dev.put16(f.fs.pblkOff(bm.pblk)+4, 5)
			var log bytes.Buffer
			fs := f.reopen(&log)
			err = fs.ReadDir(dir, 0, func(DirEntry) bool { return true })
			wantCorrupt(t, "ReadDir", err, dir, bm.pblk, &log)
			_, err = fs.Lookup(dir, []byte("small0"))
			wantCorrupt(t, "Lookup", err, dir, bm.pblk, &log)
			if _, err := fs.Lookup(RootIno, []byte("f10")); err != nil {
				t.Fatalf("root lookup: %v", err)
			}
			if _, err := resolve(fs, "big/"+"entry-00007-"); err == nil || errors.Is(err, ErrCorrupt) {
				t.Fatalf("unrelated directory: %v", err)
			}
		})
	}
}

func TestCorruptHtree(t *testing.T) {
	for _, vn := range []string{"ext4", "ext4-nocsum"} {
		t.Run(vn, func(t *testing.T) {
			f := newCorruptFixture(t, vn)
			big := f.ino("big")
			bin, _ := f.fs.Inode(big)
			bm, _ := f.fs.mapBlockLocked(bin, 0)
			// dx_root_info.info_length must be 8.
			f.dev.patch(f.fs.pblkOff(bm.pblk)+0x1D, 9)
			var log bytes.Buffer
			fs := f.reopen(&log)
			_, err := fs.Lookup(big, []byte("entry-00001-"))
			// No fallback to a linear scan: the kernel reports the index.
			wantCorrupt(t, "htree Lookup", err, big, bm.pblk, &log)
		})
	}
}

func TestCorruptInode(t *testing.T) {
	for _, vn := range []string{"ext4", "ext4-nocsum"} {
		t.Run(vn, func(t *testing.T) {
			f := newCorruptFixture(t, vn)
			victim, neighbour := f.ino("f4097"), f.ino("f4096")
			blk, off, err := f.fs.inodeLocationLocked(victim)
			if err != nil {
				t.Fatal(err)
			}
			rec := f.fs.pblkOff(blk) + int64(off)
			if f.fs.csum {
				f.dev.xor(rec+0x10, 0x40) // i_mtime: only the checksum notices
			} else {
				// Both the extents and the inline-data flag: never valid.
				flags := binary.LittleEndian.Uint32(f.dev.bytesAt(rec+0x20, 4))
				f.dev.put32(rec+0x20, flags|uint32(disk.InlineDataFL|disk.ExtentsFL))
			}
			var log bytes.Buffer
			fs := f.reopen(&log)
			_, err = fs.Inode(victim)
			wantCorrupt(t, "Inode", err, victim, blk, &log)
			if _, err := fs.ReadAt(victim, make([]byte, 10), 0); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadAt of damaged inode: %v", err)
			}
			if _, err := readAll(fs, neighbour); err != nil {
				t.Fatalf("neighbour inode: %v", err)
			}
		})
	}
}

func TestCorruptGroupDescriptor(t *testing.T) {
	f := newCorruptFixture(t, "ext4-1k-tea")
	// Regular files by the group their inode lives in.
	byGroup := map[Group][]Ino{}
	for _, dir := range []Ino{RootIno, f.ino("big")} {
		f.fs.ReadDir(dir, 0, func(e DirEntry) bool {
			if e.Type == DTReg {
				g := Group((uint32(e.Ino) - 1) / f.fs.ipg)
				byGroup[g] = append(byGroup[g], e.Ino)
			}
			return true
		})
	}
	if len(byGroup) < 2 {
		t.Fatalf("files in %d groups; need two", len(byGroup))
	}
	var g Group
	for gg := range byGroup {
		g = max(g, gg)
	}
	blk, off := f.fs.descLocation(g)
	f.dev.xor(f.fs.pblkOff(blk)+int64(off)+0x0E, 0x01) // bg_free_inodes_count_lo
	var log bytes.Buffer
	fs := f.reopen(&log)
	_, err := fs.Inode(byGroup[g][0])
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Kind != "group descriptor" || ce.Block != blk {
		t.Fatalf("Inode in damaged group %d: %v", g, err)
	}
	for gg, inos := range byGroup {
		if gg == g {
			continue
		}
		if _, err := readAll(fs, inos[0]); err != nil {
			t.Errorf("file %d in group %d: %v", inos[0], gg, err)
		}
	}
}

func TestCorruptSuperblock(t *testing.T) {
	f := newCorruptFixture(t, "ext4")
	f.dev.xor(disk.SuperblockOffset+0x20, 1) // s_blocks_per_group, covered by the checksum
	_, err := Open(f.dev, Options{ReadOnly: true})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want corruption", err)
	}
	f.dev.put16(disk.SuperblockOffset+0x38, 0x1234)
	if _, err := Open(f.dev, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with bad magic = %v", err)
	}
	if _, err := openMem(t, make([]byte, 1000), Options{}); err == nil {
		t.Fatal("Open of a 1000-byte device succeeded")
	}
}

// TestDeviceErrors checks that a failing device read surfaces as an I/O
// error (not corruption) and is not cached.
func TestDeviceErrors(t *testing.T) {
	f := newCorruptFixture(t, "ext4")
	ino := f.ino("f300000")
	m, err := f.fs.Map(ino, 0, 4096)
	if err != nil || m.Type != MapMapped {
		t.Fatal(m, err)
	}
	dev := blockdev.NewFault(f.dev)
	fs, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dev.Add(blockdev.Rule{Op: blockdev.OpRead, Off: m.Addr, Len: 4096, Count: 1, Err: syscall.EIO})
	if _, err := fs.ReadAt(ino, make([]byte, 100), 0); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadAt over failing device = %v, want EIO", err)
	}
	if _, err := fs.ReadAt(ino, make([]byte, 100), 0); err != nil {
		t.Fatalf("retry after transient failure: %v", err)
	}
	// A metadata read failure: the directory block of "dir".
	dir := f.ino("dir")
	din, _ := f.fs.Inode(dir)
	bm, _ := f.fs.mapBlockLocked(din, 0)
	fs2, _ := Open(dev, Options{ReadOnly: true})
	dev.Add(blockdev.Rule{Op: blockdev.OpRead, Off: f.fs.pblkOff(bm.pblk), Len: 1, Count: 1, Err: syscall.EIO})
	if _, err := fs2.Lookup(dir, []byte("small0")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Lookup over failing device = %v, want EIO", err)
	}
	if _, err := fs2.Lookup(dir, []byte("small0")); err != nil {
		t.Fatalf("Lookup after transient failure (must not be cached): %v", err)
	}
}
