package disk

// A minimal, test-only file reader over testFS, built from this package's
// decoders, so tests can reach the structures of named files.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// mapBlocks returns the physical block of every logical block of the inode
// (0 for holes), verifying extent block checksums on the way.
func (fs *testFS) mapBlocks(t testing.TB, ino uint32, in *Inode) []uint64 {
	t.Helper()
	bs := uint64(fs.sb.BlockSize())
	n := (in.Size() + bs - 1) / bs
	out := make([]uint64, n)
	if in.Flags&InlineDataFL != 0 {
		return nil
	}
	if in.Flags&ExtentsFL != 0 {
		seed := InodeCsumSeed(fs.seed, ino, in.Generation)
		var walk func(b []byte, depth int)
		walk = func(b []byte, depth int) {
			node, err := DecodeExtentNode(b)
			if err != nil {
				t.Fatalf("inode %d: %v", ino, err)
			}
			if depth >= 0 && int(node.Header.Depth) != depth {
				t.Fatalf("inode %d: depth %d, expected %d", ino, node.Header.Depth, depth)
			}
			for _, x := range node.Index {
				child := fs.block(x.Leaf())
				if fs.sb.HasMetadataCsum() {
					if err := VerifyExtentBlockChecksum(seed, child); err != nil {
						t.Fatalf("inode %d extent block %d: %v", ino, x.Leaf(), err)
					}
				}
				walk(child, int(node.Header.Depth)-1)
			}
			for _, e := range node.Extents {
				for i := range uint64(e.Length()) {
					if l := uint64(e.Block) + i; l < n && !e.Unwritten() {
						out[l] = e.Start() + i
					}
				}
			}
		}
		walk(in.Block[:], -1)
		return out
	}
	// Block map: 12 direct, then single, double, triple indirect.
	per := bs / 4
	var ind func(blk uint64, level int, base uint64)
	ind = func(blk uint64, level int, base uint64) {
		if blk == 0 {
			return
		}
		b := fs.block(blk)
		span := uint64(1)
		for range level - 1 {
			span *= per
		}
		for i := range per {
			p := uint64(binary.LittleEndian.Uint32(b[4*i:]))
			l := base + i*span
			if l >= n {
				return
			}
			if level == 1 {
				out[l] = p
			} else {
				ind(p, level-1, l)
			}
		}
	}
	for i := range uint64(12) {
		if i < n {
			out[i] = uint64(in.IBlock(int(i)))
		}
	}
	ind(uint64(in.IBlock(12)), 1, 12)
	ind(uint64(in.IBlock(13)), 2, 12+per)
	ind(uint64(in.IBlock(14)), 3, 12+per+per*per)
	return out
}

type testDirent struct {
	name string
	ino  uint32
	ft   uint8
}

// readDir lists a directory, verifying leaf and htree checksums.
func (fs *testFS) readDir(t testing.TB, ino uint32) []testDirent {
	t.Helper()
	in := fs.inode(t, ino)
	if !in.IsDir() {
		t.Fatalf("inode %d is not a directory", ino)
	}
	var out []testDirent
	collect := func(region []byte, bsz int, where string) {
		it := NewDirIter(region, bsz)
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			if e.Inode != 0 {
				out = append(out, testDirent{string(e.Name), e.Inode, e.FileType})
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("dir %d %s: %v", ino, where, err)
		}
	}
	if in.Flags&InlineDataFL != 0 {
		data := fs.inlineData(t, ino, in)
		parent, a, b := InlineDirRegions(&in.Block, data)
		out = append(out, testDirent{".", ino, FtDir}, testDirent{"..", parent, FtDir})
		collect(a, len(a), "i_block")
		collect(b, len(b), "system.data")
		return out
	}
	seed := InodeCsumSeed(fs.seed, ino, in.Generation)
	csum := fs.sb.HasMetadataCsum()
	bs := fs.sb.BlockSize()
	for l, p := range fs.mapBlocks(t, ino, in) {
		b := fs.block(p)
		if in.Flags&IndexFL != 0 && l == 0 {
			root, err := DecodeDxRoot(b, csum)
			if err != nil {
				t.Fatalf("dir %d: %v", ino, err)
			}
			if csum {
				if err := VerifyDxChecksum(seed, b); err != nil {
					t.Fatalf("dir %d dx_root: %v", ino, err)
				}
			}
			out = append(out, testDirent{".", root.DotInode, FtDir}, testDirent{"..", root.DotDotInode, FtDir})
			continue
		}
		if in.Flags&IndexFL != 0 && binary.LittleEndian.Uint32(b) == 0 &&
			RecLenFromDisk(binary.LittleEndian.Uint16(b[4:]), bs) == bs {
			if _, err := DecodeDxNode(b, csum); err != nil {
				t.Fatalf("dir %d block %d: %v", ino, l, err)
			}
			if csum {
				if err := VerifyDxChecksum(seed, b); err != nil {
					t.Fatalf("dir %d dx_node %d: %v", ino, l, err)
				}
			}
			continue
		}
		if csum {
			if err := VerifyDirBlockChecksum(seed, b); err != nil {
				t.Fatalf("dir %d block %d: %v", ino, l, err)
			}
			b = b[:len(b)-DirTailSize]
		}
		collect(b, bs, fmt.Sprintf("block %d", l))
	}
	return out
}

// inlineData returns the system.data value of an inline-data inode.
func (fs *testFS) inlineData(t testing.TB, ino uint32, in *Inode) []byte {
	for _, x := range fs.xattrs(t, ino, in) {
		if x.NameIndex == InlineDataXattrIndex && string(x.Name) == InlineDataXattrName {
			return x.Value
		}
	}
	t.Fatalf("inode %d: no system.data", ino)
	return nil
}

// xattrs lists in-inode then block attributes, verifying the block checksum.
func (fs *testFS) xattrs(t testing.TB, ino uint32, in *Inode) []XattrEntry {
	t.Helper()
	var out []XattrEntry
	if rec := fs.inodeRecord(ino); len(rec) > GoodOldInodeSize {
		es, err := DecodeXattrIbody(rec[GoodOldInodeSize+int(in.ExtraIsize):])
		if err != nil {
			t.Fatalf("inode %d ibody xattrs: %v", ino, err)
		}
		out = append(out, es...)
	}
	if blk := in.FileACL(); blk != 0 {
		b := fs.block(blk)
		_, es, err := DecodeXattrBlock(b)
		if err != nil {
			t.Fatalf("inode %d xattr block: %v", ino, err)
		}
		if fs.sb.HasMetadataCsum() {
			if err := VerifyXattrBlockChecksum(fs.seed, blk, b); err != nil {
				t.Fatalf("inode %d xattr block: %v", ino, err)
			}
			if err := VerifyXattrBlockChecksum(fs.seed, blk+1, b); !errors.Is(err, ErrChecksum) {
				t.Fatalf("xattr block verifies at the wrong address: %v", err)
			}
		}
		out = append(out, es...)
	}
	return out
}

// lookup resolves a slash-separated path from the root.
func (fs *testFS) lookup(t testing.TB, path string) uint32 {
	t.Helper()
	ino := uint32(RootIno)
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		found := false
		for _, e := range fs.readDir(t, ino) {
			if e.name == c {
				ino, found = e.ino, true
				break
			}
		}
		if !found {
			t.Fatalf("%s: %q not found", fs.name, path)
		}
	}
	return ino
}

// readFile returns the contents of a regular file.
func (fs *testFS) readFile(t testing.TB, ino uint32) []byte {
	in := fs.inode(t, ino)
	if in.Flags&InlineDataFL != 0 {
		data := append(bytes.Clone(in.Block[:]), fs.inlineData(t, ino, in)...)
		return data[:in.Size()]
	}
	var buf []byte
	bs := fs.sb.BlockSize()
	for _, p := range fs.mapBlocks(t, ino, in) {
		if p == 0 {
			buf = append(buf, make([]byte, bs)...)
		} else {
			buf = append(buf, fs.block(p)...)
		}
	}
	return buf[:in.Size()]
}
