package disk

// Fuzz targets, one per decoder, seeded from the test images. Properties:
// decoders never panic and never allocate beyond a constant factor of
// their input; what decodes re-encodes to the same bytes; checksum and
// accessor functions accept whatever decoded.

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"testing"
)

// seedImages loads the test images for seeding, or returns nil when they
// cannot be built here (fuzzing still runs on the synthetic seeds; under
// CI a missing tool is a failure).
func seedImages(f *testing.F) []*testFS {
	f.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			f.Fatal("seed images need mkfs.ext4 and root")
		}
		return nil
	}
	var out []*testFS
	for _, n := range imageNames() {
		out = append(out, loadImage(f, n))
	}
	return out
}

// seedInodes returns the inode numbers of the image's interesting inodes.
func (fs *testFS) seedInodes(t testing.TB) []uint32 {
	inos := []uint32{RootIno, 11}
	for _, n := range []string{"hello", "big", "sparse", "fastlink", "slowlink", "cdev", "bdev", "xattrs", "small", "large"} {
		inos = append(inos, fs.lookup(t, n))
	}
	return inos
}

// FuzzSuperblock: minimising each new 1 KiB input dominates short runs;
// use e.g. -fuzzminimizetime=0x or =100x to spend the time fuzzing.
func FuzzSuperblock(f *testing.F) {
	for _, fs := range seedImages(f) {
		f.Add(bytes.Clone(fs.img[SuperblockOffset : SuperblockOffset+SuperblockSize]))
	}
	f.Add(make([]byte, SuperblockSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := DecodeSuperblock(b)
		if err != nil {
			return
		}
		var enc [SuperblockSize]byte
		sb.Encode(enc[:])
		if !bytes.Equal(enc[:], b[:SuperblockSize]) {
			t.Fatal("Encode(Decode(b)) != b")
		}
		_ = sb.VerifyChecksum()
		_, _, _, _ = sb.GroupCount(), sb.DescPerBlock(), sb.ClusterSize(), sb.GroupsPerFlex()
		_, _ = sb.UnknownFeatures(), sb.CsumSeed()
		_, _ = sb.BlockBitmapBytes(), sb.InodeBitmapBytes()
		if sb.InodeSize() < GoodOldInodeSize || sb.InodeSize() > sb.BlockSize() || sb.DescSize() < MinDescSize {
			t.Fatalf("validated superblock with inode size %d, desc size %d", sb.InodeSize(), sb.DescSize())
		}
	})
}

func FuzzGroupDesc(f *testing.F) {
	var sbs []*Superblock
	for _, fs := range seedImages(f) {
		for _, rec := range fs.gdb[:min(4, len(fs.gdb))] {
			f.Add(bytes.Clone(rec), uint8(len(rec)), uint32(0))
		}
		sbs = append(sbs, fs.sb)
	}
	f.Add(make([]byte, 64), uint8(64), uint32(1))
	synthetic := []*Superblock{
		{FeatureRoCompat: RoCompatMetadataCsum, FeatureIncompat: Incompat64Bit, DescSizeRaw: 64},
		{FeatureRoCompat: RoCompatGdtCsum},
		{FeatureRoCompat: RoCompatGdtCsum, FeatureIncompat: Incompat64Bit, DescSizeRaw: 64},
		{},
	}
	sbs = append(sbs, synthetic...)
	f.Fuzz(func(t *testing.T, b []byte, size uint8, group uint32) {
		ds := int(size)
		g, err := DecodeGroupDesc(b, ds)
		if err != nil {
			return
		}
		enc := bytes.Clone(b[:ds])
		g.Encode(enc, ds)
		if !bytes.Equal(enc, b[:ds]) {
			t.Fatal("Encode(Decode(b)) != b")
		}
		for _, sb := range sbs {
			if sb.DescSize() == ds {
				err := VerifyGroupDescChecksum(sb, 1, group, enc)
				SetGroupDescChecksum(sb, 1, group, enc)
				if err := VerifyGroupDescChecksum(sb, 1, group, enc); err != nil {
					t.Fatalf("after Set: %v", err)
				}
				_ = err
			}
		}
		_ = g.BlockBitmap() + g.InodeBitmap() + g.InodeTable() + uint64(g.FreeBlocksCount()+g.ItableUnused())
	})
}

func FuzzInode(f *testing.F) {
	for _, fs := range seedImages(f) {
		for _, ino := range fs.seedInodes(f) {
			f.Add(bytes.Clone(fs.inodeRecord(ino)), ino)
		}
	}
	f.Add(make([]byte, 256), uint32(12))
	f.Fuzz(func(t *testing.T, b []byte, ino uint32) {
		in, err := DecodeInode(b)
		if err != nil {
			return
		}
		enc := bytes.Clone(b)
		in.Encode(enc)
		if !bytes.Equal(enc, b) {
			t.Fatal("Encode(Decode(b)) != b")
		}
		_ = VerifyInodeChecksum(5, ino, enc)
		if err := SetInodeChecksum(5, ino, enc); err != nil {
			t.Fatal(err)
		}
		if err := VerifyInodeChecksum(5, ino, enc); err != nil {
			t.Fatalf("after Set: %v", err)
		}
		in.Atime()
		in.Mtime()
		in.Ctime()
		in.Crtime()
		_, _, _ = in.Rdev(), in.Blocks512(true, 65536), in.FileACL()
		sec, nsec := in.Mtime()
		in.SetMtime(sec, nsec)
		if s2, n2 := in.Mtime(); s2 != sec || (n2 != nsec && nsec < 1e9) {
			t.Fatalf("mtime %d.%d round-trips to %d.%d", sec, nsec, s2, n2)
		}
	})
}

func FuzzExtentNode(f *testing.F) {
	for _, fs := range seedImages(f) {
		for _, ino := range fs.seedInodes(f) {
			in := fs.inode(f, ino)
			if in.Flags&ExtentsFL != 0 {
				f.Add(bytes.Clone(in.Block[:]))
			}
		}
	}
	// An index node of depth 1 with two children, in a 1 KiB block.
	idx := make([]byte, 1024)
	(&ExtentHeader{Magic: ExtentMagic, Entries: 2, Max: 84, Depth: 1}).Encode(idx)
	(&ExtentIdx{Block: 0, LeafLo: 100}).Encode(idx, 0)
	(&ExtentIdx{Block: 500, LeafLo: 200, LeafHi: 1}).Encode(idx, 1)
	_ = SetExtentBlockChecksum(9, idx)
	f.Add(idx)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeExtentNode(b)
		_ = VerifyExtentBlockChecksum(9, b)
		if err != nil {
			return
		}
		if len(n.Extents)+len(n.Index) > ExtentCapacity(len(b)) {
			t.Fatal("more entries than fit")
		}
		enc := bytes.Clone(b)
		n.Encode(enc)
		if !bytes.Equal(enc, b) {
			t.Fatal("Encode(Decode(b)) != b")
		}
		for _, e := range n.Extents {
			if e.Length() == 0 || e.Length() > MaxInitExtentLen {
				t.Fatalf("extent length %d", e.Length())
			}
		}
	})
}

func FuzzDirBlock(f *testing.F) {
	for _, fs := range seedImages(f) {
		for _, d := range []uint32{RootIno, fs.lookup(f, "large"), fs.lookup(f, "small")} {
			in := fs.inode(f, d)
			if in.Flags&InlineDataFL != 0 {
				f.Add(bytes.Clone(in.Block[4:]), uint32(56), false)
				continue
			}
			blocks := fs.mapBlocks(f, d, in)
			for _, p := range blocks[:min(3, len(blocks))] {
				f.Add(bytes.Clone(fs.block(p)), uint32(fs.sb.BlockSize()), fs.sb.HasMetadataCsum())
			}
		}
	}
	f.Add(make([]byte, 4096), uint32(4096), false)
	f.Fuzz(func(t *testing.T, b []byte, blockSize uint32, csum bool) {
		// Leaf view.
		it := NewDirIter(b, int(blockSize))
		enc := bytes.Clone(b)
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			if len(e.Name) != int(e.NameLen) {
				t.Fatal("name length")
			}
		}
		it = NewDirIter(b, int(blockSize))
		for {
			off := it.Offset()
			e, ok := it.Next()
			if !ok {
				break
			}
			EncodeDirEntry(enc[off:], e.Inode, RecLenFromDisk(e.RecLen, int(blockSize)), e.FileType, e.Name, int(blockSize))
		}
		if it.Err() == nil && !bytes.Equal(enc, b) {
			t.Fatal("re-encoding entries changed the block")
		}
		_ = VerifyDirBlockChecksum(3, b)
		// Index views.
		for _, decode := range []func([]byte, bool) (*DxNode, error){DecodeDxRoot, DecodeDxNode} {
			n, err := decode(b, csum)
			if err != nil {
				continue
			}
			if len(n.Entries) > int(n.Limit) || len(n.Entries) == 0 {
				t.Fatalf("%d entries, limit %d", len(n.Entries), n.Limit)
			}
			enc := bytes.Clone(b)
			n.Encode(enc)
			if !bytes.Equal(enc, b) {
				t.Fatal("DxNode Encode(Decode(b)) != b")
			}
			if i := n.Search(blockSize); i < 0 || i >= len(n.Entries) {
				t.Fatalf("Search gave %d", i)
			}
		}
		_ = VerifyDxChecksum(3, b)
	})
}

func FuzzXattr(f *testing.F) {
	for _, fs := range seedImages(f) {
		ino := fs.lookup(f, "xattrs")
		in := fs.inode(f, ino)
		if rec := fs.inodeRecord(ino); len(rec) > GoodOldInodeSize {
			f.Add(bytes.Clone(rec[GoodOldInodeSize+int(in.ExtraIsize):]), false)
		}
		if blk := in.FileACL(); blk != 0 {
			f.Add(bytes.Clone(fs.block(blk)), true)
		}
	}
	f.Add(binary.LittleEndian.AppendUint32(make([]byte, 0, 64), XattrMagic), false)
	f.Fuzz(func(t *testing.T, b []byte, block bool) {
		var es []XattrEntry
		var err error
		if block {
			var h XattrHeader
			h, es, err = DecodeXattrBlock(b)
			if err == nil {
				_ = XattrBlockHash(es)
				enc := bytes.Clone(b)
				h.Encode(enc)
				if !bytes.Equal(enc, b) {
					t.Fatal("header Encode(Decode(b)) != b")
				}
				_ = VerifyXattrBlockChecksum(1, 2, b)
			}
		} else {
			es, err = DecodeXattrIbody(b)
		}
		if err != nil {
			return
		}
		enc := bytes.Clone(b)
		want := bytes.Clone(b) // with name padding zeroed, as EncodeXattrEntry writes it
		for i := range es {
			e := &es[i]
			clear(want[e.EntryOff+XattrEntrySize+int(e.NameLen) : e.EntryOff+e.EntryBytes])
			if e.EntryOff+e.EntryBytes > len(b) || len(e.Value) > len(b) {
				t.Fatal("entry out of bounds")
			}
			EncodeXattrEntry(enc, e.EntryOff, e)
			_ = XattrEntryHashOK(e)
			if full, ok := XattrFullName(e.NameIndex, e.Name); ok {
				XattrSplitName(full)
			}
			if e.NameIndex == XattrIndexPosixACLAccess || e.NameIndex == XattrIndexPosixACLDefault {
				_, _ = ExtACLToXattr(e.Value)
			}
		}
		if !bytes.Equal(enc, want) {
			t.Fatal("entries Encode(Decode(b)) != b")
		}
	})
}

func FuzzACL(f *testing.F) {
	f.Add(bytes.Clone(testACLXattr))
	if ext, err := XattrACLToExt(testACLXattr); err == nil {
		f.Add(ext)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if es, err := DecodeExtACL(b); err == nil {
			if !bytes.Equal(EncodeExtACL(es), b) {
				t.Fatal("ext ACL Encode(Decode(b)) != b")
			}
			x := EncodeXattrACL(es)
			if back, err := XattrACLToExt(x); err == nil && !bytes.Equal(back, b) {
				t.Fatal("ext -> xattr -> ext changed the ACL")
			}
		}
		if es, err := DecodeXattrACL(b); err == nil {
			es2, err := DecodeXattrACL(EncodeXattrACL(es))
			if err != nil || len(es2) != len(es) {
				t.Fatalf("xattr ACL round trip: %v", err)
			}
			for i := range es {
				if es[i] != es2[i] {
					t.Fatal("xattr ACL round trip changed an entry")
				}
			}
			ext := EncodeExtACL(es)
			if x, err := ExtACLToXattr(ext); err != nil || !bytes.Equal(x, EncodeXattrACL(es)) {
				t.Fatalf("xattr -> ext -> xattr: %v", err)
			}
		}
	})
}

func FuzzJournalSuperblock(f *testing.F) {
	b := make([]byte, 1024)
	binary.BigEndian.PutUint32(b, JournalMagic)
	binary.BigEndian.PutUint32(b[4:], JournalSuperblockV2)
	f.Add(b)
	for _, fs := range seedImages(f) {
		if fs.sb.HasCompat(CompatHasJournal) {
			j := fs.inode(f, JournalIno)
			f.Add(bytes.Clone(fs.block(fs.mapBlocks(f, JournalIno, j)[0])))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeJournalSuperblock(b)
		if err == nil && j.Magic != JournalMagic {
			t.Fatal("accepted bad magic")
		}
	})
}
