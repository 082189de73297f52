package disk

import (
	"bytes"
	"testing"
)

// TestExtent48BitAddresses checks that physical block numbers past 2^32
// (64bit filesystems) land in ee_start_hi / ei_leaf_hi at the kernel's
// byte offsets and read back whole: the hi halves are the only thing that
// separates block 2^32+7 from block 7.
func TestExtent48BitAddresses(t *testing.T) {
	const blk = uint64(1)<<40 | 0x12345678 // 48 bits: hi 0x0100, lo 0x12345678
	node := make([]byte, ExtentHeaderSize+2*ExtentEntrySize)

	var e Extent
	e.Block = 9
	e.SetStart(blk)
	e.SetLength(100, true)
	e.Encode(node, 0)
	want := []byte{9, 0, 0, 0, 0x64 + 0x00, 0x80, 0x00, 0x01, 0x78, 0x56, 0x34, 0x12}
	if got := node[ExtentHeaderSize : ExtentHeaderSize+ExtentEntrySize]; !bytes.Equal(got, want) {
		t.Errorf("extent bytes % x, want % x", got, want)
	}
	if d := ExtentAt(node, 0); d.Start() != blk || d.Length() != 100 || !d.Unwritten() {
		t.Errorf("extent read back start %#x len %d unwritten %v", d.Start(), d.Length(), d.Unwritten())
	}

	var x ExtentIdx
	x.Block = 7
	x.SetLeaf(1<<32 + 7)
	x.Encode(node, 1)
	want = []byte{7, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0}
	if got := node[ExtentHeaderSize+ExtentEntrySize:]; !bytes.Equal(got, want) {
		t.Errorf("index bytes % x, want % x", got, want)
	}
	if d := ExtentIdxAt(node, 1); d.Leaf() != 1<<32+7 {
		t.Errorf("index leaf %#x, want %#x", d.Leaf(), uint64(1<<32+7))
	}
}
