package disk

import (
	"encoding/binary"
	"errors"
	"testing"
)

// The extra-epoch table of the kernel doc ("Inode Timestamps"): the sign
// bit of the 32-bit seconds and the two epoch bits of *_extra select the
// decoded range. Each row is checked at both ends.
func TestTimeEpochTable(t *testing.T) {
	for _, row := range []struct {
		epoch   uint32
		lo, hi  uint32 // 32-bit seconds field at the range ends
		from    int64
		to      int64
		comment string
	}{
		{0, 0x80000000, 0xffffffff, -0x80000000, -1, "1901-1970"},
		{0, 0x00000000, 0x7fffffff, 0, 0x7fffffff, "1970-2038"},
		{1, 0x80000000, 0xffffffff, 0x80000000, 0xffffffff, "2038-2106"},
		{1, 0x00000000, 0x7fffffff, 0x100000000, 0x17fffffff, "2106-2174"},
		{2, 0x80000000, 0xffffffff, 0x180000000, 0x1ffffffff, "2174-2242"},
		{2, 0x00000000, 0x7fffffff, 0x200000000, 0x27fffffff, "2242-2310"},
		{3, 0x80000000, 0xffffffff, 0x280000000, 0x2ffffffff, "2310-2378"},
		{3, 0x00000000, 0x7fffffff, 0x300000000, 0x37fffffff, "2378-2446"},
	} {
		const nsec = 999999999
		extra := row.epoch | nsec<<2
		for _, c := range []struct {
			raw  uint32
			want int64
		}{{row.lo, row.from}, {row.hi, row.to}} {
			sec, ns := DecodeTime(c.raw, extra, true)
			if sec != c.want || ns != nsec {
				t.Errorf("%s: DecodeTime(%#x, epoch %d) = %#x.%d, want %#x", row.comment, c.raw, row.epoch, sec, ns, c.want)
			}
			lo, ex := EncodeTime(c.want, nsec)
			if lo != c.raw || ex != extra {
				t.Errorf("%s: EncodeTime(%#x) = %#x/%#x, want %#x/%#x", row.comment, c.want, lo, ex, c.raw, extra)
			}
		}
	}
	// Without the extra field, seconds are signed 32-bit.
	if s, ns := DecodeTime(0xffffffff, 3, false); s != -1 || ns != 0 {
		t.Errorf("no extra: %d.%d", s, ns)
	}
	// Out of range values clamp.
	if lo, ex := EncodeTime(1<<40, 0); lo != 0x7fffffff || ex != 3 {
		t.Errorf("clamp high: %#x %#x", lo, ex)
	}
	if lo, ex := EncodeTime(-1<<40, 0); lo != 0x80000000 || ex != 0 {
		t.Errorf("clamp low: %#x %#x", lo, ex)
	}
}

func inodeRecord(size, extra int) []byte {
	b := make([]byte, size)
	if size >= GoodOldInodeSize+2 {
		binary.LittleEndian.PutUint16(b[0x80:], uint16(extra))
	}
	return b
}

func TestInodeExtraIsize(t *testing.T) {
	for _, c := range []struct {
		size, extra int
		ok          bool
	}{
		{128, 0, true}, {256, 0, true}, {256, 4, true}, {256, 32, true}, {256, 128, true},
		{256, 2, false}, {256, 30, false}, {256, 132, false}, {160, 36, false}, {1024, 896, true},
		{100, 0, false}, {129, 0, false}, {130, 0, false}, {192, 0, false},
	} {
		_, err := DecodeInode(inodeRecord(c.size, c.extra))
		if (err == nil) != c.ok {
			t.Errorf("size %d extra %d: %v", c.size, c.extra, err)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("error does not match ErrCorrupt: %v", err)
		}
	}
	// Fields beyond 128+extra_isize decode as zero even if bytes are there.
	b := inodeRecord(256, 4)
	for i := 0x84; i < 0xA0; i++ {
		b[i] = 0xAA
	}
	binary.LittleEndian.PutUint16(b[0x82:], 0x1234)
	in, err := DecodeInode(b)
	if err != nil {
		t.Fatal(err)
	}
	if in.ChecksumHi != 0x1234 || in.CtimeExtra != 0 || in.CrtimeRaw != 0 || in.Projid != 0 {
		t.Errorf("fields past extra_isize leaked: %+v", in)
	}
	if _, _, ok := in.Crtime(); ok {
		t.Error("Crtime present with extra_isize 4")
	}
	// Encode must leave the bytes it does not own alone.
	out := make([]byte, 256)
	for i := range out {
		out[i] = 0x55
	}
	in.Encode(out)
	if out[0x84] != 0x55 || out[0xFF] != 0x55 {
		t.Error("Encode wrote past extra_isize")
	}
}

func TestInodeChecksumWithoutHi(t *testing.T) {
	// 128-byte inodes and extra_isize 0 carry only the low 16 bits.
	for _, rec := range [][]byte{inodeRecord(128, 0), inodeRecord(256, 0), inodeRecord(256, 4)} {
		rec[0] = 0x80 // some content
		if err := SetInodeChecksum(7, 12, rec); err != nil {
			t.Fatal(err)
		}
		if err := VerifyInodeChecksum(7, 12, rec); err != nil {
			t.Fatalf("len %d: %v", len(rec), err)
		}
		hasHi := len(rec) > 128 && binary.LittleEndian.Uint16(rec[0x80:]) >= 4
		if len(rec) > 128 && !hasHi && binary.LittleEndian.Uint16(rec[0x82:]) != 0 {
			t.Errorf("extra_isize 0: i_checksum_hi written")
		}
		rec[0x100%len(rec)] ^= 1
		if err := VerifyInodeChecksum(7, 12, rec); !errors.Is(err, ErrChecksum) {
			t.Errorf("len %d: corruption not detected: %v", len(rec), err)
		}
	}
}

func TestRdev(t *testing.T) {
	var in Inode
	for _, c := range []struct{ major, minor uint32 }{{4, 5}, {0, 1}, {255, 255}, {300, 70000}, {8, 256}, {4095, 1<<20 - 1}} {
		in.SetRdev(c.major, c.minor)
		ma, mi := in.RdevMajorMinor()
		if ma != c.major || mi != c.minor {
			t.Errorf("%d:%d decoded as %d:%d", c.major, c.minor, ma, mi)
		}
		if got, want := in.Rdev(), c.minor&0xff|c.major<<8|(c.minor&^0xff)<<12; got != want {
			t.Errorf("%d:%d Rdev %#x, want %#x", c.major, c.minor, got, want)
		}
		old := c.major < 256 && c.minor < 256
		if (in.IBlock(0) != 0) != (old && (c.major|c.minor) != 0) {
			t.Errorf("%d:%d stored in the wrong encoding", c.major, c.minor)
		}
	}
	// The old encoding is 16 bits: the kernel's old_decode_dev truncates.
	binary.LittleEndian.PutUint32(in.Block[0:], 0x10000|0x0102)
	if ma, mi := in.RdevMajorMinor(); ma != 1 || mi != 2 {
		t.Errorf("old encoding with high bits: %d:%d", ma, mi)
	}
}

func TestBlocks512(t *testing.T) {
	in := Inode{BlocksLo: 10, BlocksHigh: 1}
	if got := in.Blocks512(false, 4096); got != 10 {
		t.Errorf("no huge_file: %d", got)
	}
	if got := in.Blocks512(true, 4096); got != 1<<32|10 {
		t.Errorf("huge_file: %d", got)
	}
	in.Flags |= HugeFileFL
	if got := in.Blocks512(true, 4096); got != (1<<32|10)*8 {
		t.Errorf("HUGE_FILE_FL: %d", got)
	}
	for _, v := range []uint64{0, 8, 1 << 32, 1<<48 - 1, 1 << 48, (1<<48 - 1) * 8} {
		var x Inode
		if !x.SetBlocks512(v, true, 4096) {
			t.Fatalf("SetBlocks512(%d) failed", v)
		}
		if got := x.Blocks512(true, 4096); got != v {
			t.Errorf("SetBlocks512(%d) reads back %d", v, got)
		}
	}
	var x Inode
	if x.SetBlocks512(1<<32, false, 4096) {
		t.Error("2^32 sectors stored without huge_file")
	}
}
