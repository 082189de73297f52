package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSuperblockImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			sb := fs.sb
			raw := fs.img[SuperblockOffset : SuperblockOffset+SuperblockSize]
			var enc [SuperblockSize]byte
			sb.Encode(enc[:])
			if !bytes.Equal(enc[:], raw) {
				t.Fatal("Encode(Decode(sb)) differs from the image")
			}
			if err := sb.VerifyChecksum(); err != nil {
				t.Fatal(err)
			}
			// Cross-check with dumpe2fs's view via debugfs "stats".
			out := fs.debugfs(t, "stats")
			want := map[string]string{
				"Block count:":          fmt.Sprint(sb.BlocksCount()),
				"Block size:":           fmt.Sprint(sb.BlockSize()),
				"Inode count:":          fmt.Sprint(sb.InodesCount),
				"Free blocks:":          fmt.Sprint(sb.FreeBlocksCount()),
				"Reserved block count:": fmt.Sprint(sb.RBlocksCount()),
				"Filesystem UUID:":      sb.UUIDString(),
				"Inode size:":           fmt.Sprint(sb.InodeSize()),
			}
			if sb.HasMetadataCsum() {
				want["Checksum:"] = fmt.Sprintf("0x%08x", sb.Checksum)
			}
			for _, line := range strings.Split(out, "\n") {
				for k, v := range want {
					if rest, ok := strings.CutPrefix(line, k); ok {
						if got := strings.TrimSpace(rest); got != v {
							t.Errorf("%s debugfs says %q, we say %q", k, got, v)
						}
						delete(want, k)
					}
				}
			}
			for k := range want {
				t.Errorf("debugfs stats lacks %q", k)
			}
			if n := sb.UnknownFeatures(); n != nil {
				t.Errorf("unknown features %v", n)
			}
			var feats []string
			for _, line := range strings.Split(out, "\n") {
				if rest, ok := strings.CutPrefix(line, "Filesystem features:"); ok {
					feats = strings.Fields(rest)
				}
			}
			ours := append(append(sb.FeatureCompat.Names(), sb.FeatureIncompat.Names()...), sb.FeatureRoCompat.Names()...)
			if strings.Join(sortedCopy(ours), " ") != strings.Join(sortedCopy(feats), " ") {
				t.Errorf("features: debugfs %v, we %v", feats, ours)
			}
			// Flip one bit: the checksum must catch it.
			if sb.HasMetadataCsum() {
				bad := *sb
				bad.FreeInodesCount ^= 1
				if err := bad.VerifyChecksum(); !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrCorrupt) {
					t.Errorf("corrupted superblock: %v", err)
				}
				bad.SetChecksum()
				if err := bad.VerifyChecksum(); err != nil {
					t.Errorf("after SetChecksum: %v", err)
				}
			}
		})
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestGroupDescImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			sb := fs.sb
			ds := sb.DescSize()
			checked := sb.HasMetadataCsum() || sb.HasGdtCsum()
			for g, rec := range fs.gdb {
				if err := VerifyGroupDescChecksum(sb, fs.seed, uint32(g), rec); err != nil {
					t.Fatalf("group %d: %v", g, err)
				}
				enc := make([]byte, ds)
				gd := fs.gds[g]
				gd.Encode(enc, ds)
				if !bytes.Equal(enc, rec) {
					t.Fatalf("group %d: Encode(Decode) differs", g)
				}
				if checked {
					enc[0x0C] ^= 1 // free blocks count
					if err := VerifyGroupDescChecksum(sb, fs.seed, uint32(g), enc); !errors.Is(err, ErrChecksum) {
						t.Fatalf("group %d: flipped bit not detected: %v", g, err)
					}
					SetGroupDescChecksum(sb, fs.seed, uint32(g), enc)
					if err := VerifyGroupDescChecksum(sb, fs.seed, uint32(g), enc); err != nil {
						t.Fatal(err)
					}
					// Wrong group number must not verify either.
					if err := VerifyGroupDescChecksum(sb, fs.seed, uint32(g)+1, rec); err == nil {
						t.Fatalf("group %d verifies as group %d", g, g+1)
					}
				}
				if sb.HasMetadataCsum() && gd.Flags&BgBlockUninit == 0 {
					if err := VerifyBlockBitmapChecksum(sb, fs.seed, &gd, fs.block(gd.BlockBitmap())); err != nil {
						t.Errorf("group %d block bitmap: %v", g, err)
					}
				}
				if sb.HasMetadataCsum() && gd.Flags&BgInodeUninit == 0 {
					if err := VerifyInodeBitmapChecksum(sb, fs.seed, &gd, fs.block(gd.InodeBitmap())); err != nil {
						t.Errorf("group %d inode bitmap: %v", g, err)
					}
				}
			}
			// Compare a few fields with dumpe2fs's view through debugfs.
			out := fs.debugfs(t, "show_super_stats")
			for g, gd := range fs.gds {
				want := fmt.Sprintf("Group %2d: block bitmap at %d, inode bitmap at %d, inode table at %d",
					g, gd.BlockBitmap(), gd.InodeBitmap(), gd.InodeTable())
				if !strings.Contains(out, want) {
					t.Errorf("debugfs stats lacks %q", want)
				}
				want = fmt.Sprintf("%d free %s, %d free inodes, %d used director",
					gd.FreeBlocksCount(), map[bool]string{true: "blocks", false: "block"}[gd.FreeBlocksCount() != 1],
					gd.FreeInodesCount(), gd.UsedDirsCount())
				if !strings.Contains(out, want) {
					t.Errorf("group %d: debugfs stats lacks %q", g, want)
				}
			}
		})
	}
}

func TestInodeChecksumImages(t *testing.T) {
	for _, name := range imageNames() {
		t.Run(name, func(t *testing.T) {
			fs := loadImage(t, name)
			sb := fs.sb
			n := 0
			for ino := uint32(1); ino <= sb.InodesCount; ino++ {
				rec := fs.inodeRecord(ino)
				if InodeIsUnused(rec) {
					continue
				}
				in, err := DecodeInode(rec)
				if err != nil {
					t.Fatalf("inode %d: %v", ino, err)
				}
				enc := bytes.Clone(rec)
				in.Encode(enc)
				if !bytes.Equal(enc, rec) {
					t.Fatalf("inode %d: Encode(Decode) differs", ino)
				}
				if !sb.HasMetadataCsum() {
					continue
				}
				n++
				if err := VerifyInodeChecksum(fs.seed, ino, rec); err != nil {
					t.Fatalf("inode %d: %v", ino, err)
				}
				binary.LittleEndian.PutUint32(enc[0x04:], in.SizeLo^1)
				if err := VerifyInodeChecksum(fs.seed, ino, enc); !errors.Is(err, ErrChecksum) {
					t.Fatalf("inode %d: flipped size not detected: %v", ino, err)
				}
				if err := SetInodeChecksum(fs.seed, ino, enc); err != nil {
					t.Fatal(err)
				}
				if err := VerifyInodeChecksum(fs.seed, ino, enc); err != nil {
					t.Fatal(err)
				}
				if err := VerifyInodeChecksum(fs.seed, ino+1, rec); err == nil {
					t.Fatalf("inode %d verifies as %d", ino, ino+1)
				}
			}
			if sb.HasMetadataCsum() && n < 20 {
				t.Fatalf("only %d inodes checked", n)
			}
		})
	}
}

func TestJournalSuperblockImages(t *testing.T) {
	n := 0
	for _, name := range imageNames() {
		fs := loadImage(t, name)
		if !fs.sb.HasCompat(CompatHasJournal) {
			continue
		}
		n++
		in := fs.inode(t, JournalIno)
		blocks := fs.mapBlocks(t, JournalIno, in)
		j, err := DecodeJournalSuperblock(fs.block(blocks[0]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(j.BlockSize) != fs.sb.BlockSize() || int(j.MaxLen) != len(blocks) || j.NeedsRecovery() {
			t.Errorf("%s: journal block size %d, length %d (inode has %d blocks), start %d",
				name, j.BlockSize, j.MaxLen, len(blocks), j.Start)
		}
	}
	if n == 0 {
		t.Fatal("no image has a journal")
	}
}
