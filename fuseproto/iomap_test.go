package fuseproto

import (
	"errors"
	"math"
	"syscall"
	"testing"
	"unsafe"
)

// Offsets and sizes from the seed's include/uapi/linux/fuse.h (spec §1.8).
func iomapLayouts() []layout {
	var (
		bi IomapBeginIn
		bo IomapBeginOut
		ei IomapEndIn
		ii IomapIoendIn
		ad IomapAddDeviceOut
		su IomapSupportOut
	)
	ptr := unsafe.Sizeof(uintptr(0))
	return []layout{
		{"fuse_iomap_begin_in", unsafe.Sizeof(bi), 32, []field{
			f("opflags", unsafe.Offsetof(bi.Opflags), unsafe.Sizeof(bi.Opflags), 0, 4),
			f("reserved", unsafe.Offsetof(bi.Reserved), unsafe.Sizeof(bi.Reserved), 4, 4),
			f("attr_ino", unsafe.Offsetof(bi.AttrIno), unsafe.Sizeof(bi.AttrIno), 8, 8),
			f("pos", unsafe.Offsetof(bi.Pos), unsafe.Sizeof(bi.Pos), 16, 8),
			f("count", unsafe.Offsetof(bi.Count), unsafe.Sizeof(bi.Count), 24, 8),
		}},
		{"fuse_iomap_begin_out", unsafe.Sizeof(bo), 48, []field{
			f("offset", unsafe.Offsetof(bo.Offset), unsafe.Sizeof(bo.Offset), 0, 8),
			f("length", unsafe.Offsetof(bo.Length), unsafe.Sizeof(bo.Length), 8, 8),
			f("read_addr", unsafe.Offsetof(bo.ReadAddr), unsafe.Sizeof(bo.ReadAddr), 16, 8),
			f("read_type", unsafe.Offsetof(bo.ReadType), unsafe.Sizeof(bo.ReadType), 24, 2),
			f("read_flags", unsafe.Offsetof(bo.ReadFlags), unsafe.Sizeof(bo.ReadFlags), 26, 2),
			f("read_dev", unsafe.Offsetof(bo.ReadDev), unsafe.Sizeof(bo.ReadDev), 28, 4),
			f("write_addr", unsafe.Offsetof(bo.WriteAddr), unsafe.Sizeof(bo.WriteAddr), 32, 8),
			f("write_type", unsafe.Offsetof(bo.WriteType), unsafe.Sizeof(bo.WriteType), 40, 2),
			f("write_flags", unsafe.Offsetof(bo.WriteFlags), unsafe.Sizeof(bo.WriteFlags), 42, 2),
			f("write_dev", unsafe.Offsetof(bo.WriteDev), unsafe.Sizeof(bo.WriteDev), 44, 4),
		}},
		{"fuse_iomap_end_in", unsafe.Sizeof(ei), 64, []field{
			f("opflags", unsafe.Offsetof(ei.Opflags), unsafe.Sizeof(ei.Opflags), 0, 4),
			f("reserved", unsafe.Offsetof(ei.Reserved), unsafe.Sizeof(ei.Reserved), 4, 4),
			f("attr_ino", unsafe.Offsetof(ei.AttrIno), unsafe.Sizeof(ei.AttrIno), 8, 8),
			f("pos", unsafe.Offsetof(ei.Pos), unsafe.Sizeof(ei.Pos), 16, 8),
			f("count", unsafe.Offsetof(ei.Count), unsafe.Sizeof(ei.Count), 24, 8),
			f("written", unsafe.Offsetof(ei.Written), unsafe.Sizeof(ei.Written), 32, 8),
			f("map_length", unsafe.Offsetof(ei.MapLength), unsafe.Sizeof(ei.MapLength), 40, 8),
			f("map_addr", unsafe.Offsetof(ei.MapAddr), unsafe.Sizeof(ei.MapAddr), 48, 8),
			f("map_type", unsafe.Offsetof(ei.MapType), unsafe.Sizeof(ei.MapType), 56, 2),
			f("map_flags", unsafe.Offsetof(ei.MapFlags), unsafe.Sizeof(ei.MapFlags), 58, 2),
			f("map_dev", unsafe.Offsetof(ei.MapDev), unsafe.Sizeof(ei.MapDev), 60, 4),
		}},
		{"fuse_iomap_ioend_in", unsafe.Sizeof(ii), 40, []field{
			f("ioendflags", unsafe.Offsetof(ii.Ioendflags), unsafe.Sizeof(ii.Ioendflags), 0, 2),
			f("reserved", unsafe.Offsetof(ii.Reserved), unsafe.Sizeof(ii.Reserved), 2, 2),
			f("error", unsafe.Offsetof(ii.Error), unsafe.Sizeof(ii.Error), 4, 4),
			f("attr_ino", unsafe.Offsetof(ii.AttrIno), unsafe.Sizeof(ii.AttrIno), 8, 8),
			f("pos", unsafe.Offsetof(ii.Pos), unsafe.Sizeof(ii.Pos), 16, 8),
			f("new_addr", unsafe.Offsetof(ii.NewAddr), unsafe.Sizeof(ii.NewAddr), 24, 8),
			f("written", unsafe.Offsetof(ii.Written), unsafe.Sizeof(ii.Written), 32, 4),
			f("reserved1", unsafe.Offsetof(ii.Reserved1), unsafe.Sizeof(ii.Reserved1), 36, 4),
		}},
		// 16 bytes on 64-bit, 12 on 32-bit: the C struct ends in a pointer.
		{"fuse_iomap_add_device_out", unsafe.Sizeof(ad), 8 + ptr, []field{
			f("fd", unsafe.Offsetof(ad.Fd), unsafe.Sizeof(ad.Fd), 0, 4),
			f("reserved", unsafe.Offsetof(ad.Reserved), unsafe.Sizeof(ad.Reserved), 4, 4),
			f("map_dev", unsafe.Offsetof(ad.MapDev), unsafe.Sizeof(ad.MapDev), 8, ptr),
		}},
		{"fuse_iomap_support", unsafe.Sizeof(su), 16, []field{
			f("flags", unsafe.Offsetof(su.Flags), unsafe.Sizeof(su.Flags), 0, 8),
			f("padding", unsafe.Offsetof(su.Padding), unsafe.Sizeof(su.Padding), 8, 8),
		}},
	}
}

func TestIomapLayout(t *testing.T) {
	for _, l := range iomapLayouts() {
		if l.size != l.want {
			t.Errorf("sizeof(%s) = %d, want %d", l.cname, l.size, l.want)
		}
		end := uintptr(0)
		for _, fl := range l.fields {
			if fl.got != fl.want || fl.gotSize != fl.wantSize {
				t.Errorf("%s.%s at %d size %d, want %d size %d", l.cname, fl.name, fl.got, fl.gotSize, fl.want, fl.wantSize)
			}
			if fl.got != end {
				t.Errorf("%s.%s at %d leaves a gap or overlap after %d", l.cname, fl.name, fl.got, end)
			}
			end = fl.got + fl.gotSize
		}
		if end != l.size {
			t.Errorf("%s: fields end at %d, size %d", l.cname, end, l.size)
		}
	}
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(IomapAddDeviceOut{}) != 16 {
		t.Errorf("add_device_out is not 16 bytes on 64-bit")
	}
}

// The values restated from the seed header, so a typo shows twice.
func TestIomapConstants(t *testing.T) {
	u := func(v any) uint64 {
		switch x := v.(type) {
		case Opcode:
			return uint64(x)
		case InitFlags:
			return uint64(x)
		case NotifyCode:
			return uint64(x)
		case IomapType:
			return uint64(x)
		case IomapFlags:
			return uint64(x)
		case IomapOpFlags:
			return uint64(x)
		case IomapIoendFlags:
			return uint64(x)
		case IomapSupport:
			return uint64(x)
		case uint32:
			return uint64(x)
		case uint64:
			return x
		case int:
			return uint64(x)
		}
		t.Fatalf("unexpected type %T", v)
		return 0
	}
	cases := []struct {
		name string
		got  any
		want uint64
	}{
		{"FUSE_IOMAP_IOEND", OpIomapIoend, 4093},
		{"FUSE_IOMAP_BEGIN", OpIomapBegin, 4094},
		{"FUSE_IOMAP_END", OpIomapEnd, 4095},
		{"FUSE_IOMAP", InitIomap, 1 << 43},
		{"FUSE_IOMAP_DIRECTIO", InitIomapDirectIO, 1 << 44},
		{"FUSE_IOMAP_PAGECACHE", InitIomapPagecache, 1 << 45},
		{"FUSE_NOTIFY_ADD_IOMAP_DEVICE", NotifyAddIomapDevice, 8},
		{"minor", IomapMinorVersion, 44},
		{"TYPE_HOLE", IomapTypeHole, 0},
		{"TYPE_DELALLOC", IomapTypeDelalloc, 1},
		{"TYPE_MAPPED", IomapTypeMapped, 2},
		{"TYPE_UNWRITTEN", IomapTypeUnwritten, 3},
		{"TYPE_INLINE", IomapTypeInline, 4},
		{"TYPE_PURE_OVERWRITE", IomapTypePureOverwrite, 0xFFFF},
		{"DEV_FUSEBLK", IomapDevFuseblk, 0},
		{"DEV_NULL", IomapDevNull, 0xFFFFFFFF},
		{"NULL_ADDR", IomapNullAddr, math.MaxUint64},
		{"F_NEW", IomapFNew, 0x1},
		{"F_DIRTY", IomapFDirty, 0x2},
		{"F_SHARED", IomapFShared, 0x4},
		{"F_MERGED", IomapFMerged, 0x8},
		{"F_XATTR", IomapFXattr, 0x20},
		{"F_BOUNDARY", IomapFBoundary, 0x40},
		{"F_ANON_WRITE", IomapFAnonWrite, 0x80},
		{"F_ATOMIC_BIO", IomapFAtomicBio, 0x100},
		{"F_WANT_IOMAP_END", IomapFWantIomapEnd, 0x1000},
		{"F_SIZE_CHANGED", IomapFSizeChanged, 0x4000},
		{"F_STALE", IomapFStale, 0x8000},
		{"F_ALL", IomapBeginFlagsMask, 0x11EF},
		{"OP_WRITE", IomapOpWrite, 0x1},
		{"OP_ZERO", IomapOpZero, 0x2},
		{"OP_REPORT", IomapOpReport, 0x4},
		{"OP_FAULT", IomapOpFault, 0x8},
		{"OP_DIRECT", IomapOpDirect, 0x10},
		{"OP_NOWAIT", IomapOpNowait, 0x20},
		{"OP_OVERWRITE_ONLY", IomapOpOverwriteOnly, 0x40},
		{"OP_UNSHARE", IomapOpUnshare, 0x80},
		{"OP_ATOMIC", IomapOpAtomic, 0x200},
		{"OP_DONTCACHE", IomapOpDontcache, 0x400},
		{"IOEND_SHARED", IomapIoendShared, 0x1},
		{"IOEND_UNWRITTEN", IomapIoendUnwritten, 0x2},
		{"IOEND_BOUNDARY", IomapIoendBoundary, 0x4},
		{"IOEND_DIRECT", IomapIoendDirect, 0x8},
		{"IOEND_APPEND", IomapIoendAppend, 0x8000},
		{"SUPPORT_BASICS", IomapSupportBasics, 1},
		{"SUPPORT_DIRECTIO", IomapSupportDirectIO, 2},
		{"SUPPORT_PAGECACHE", IomapSupportPagecache, 4},
		{"FUSE_DEV_IOC_IOMAP_SUPPORT", DevIocIomapSupport, 0x8010E503},
	}
	for _, c := range cases {
		if got := u(c.got); got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, got, c.want)
		}
	}
	// The mask is every begin-reply flag, and nothing else.
	var all IomapFlags
	for _, n := range iomapFlagNames {
		if f := IomapFlags(n.bit); f != IomapFSizeChanged && f != IomapFStale {
			all |= f
		}
	}
	if all != IomapBeginFlagsMask {
		t.Errorf("begin flags %#x, mask %#x", all, IomapBeginFlagsMask)
	}
	// flags2 bits 11..13.
	_, hi := InitIomapAll.Split()
	if hi != 0x3800 {
		t.Errorf("iomap flags2 bits = %#x, want 0x3800", hi)
	}
}

func TestIomapStrings(t *testing.T) {
	cases := []struct{ got, want string }{
		{OpIomapBegin.String(), "IOMAP_BEGIN"},
		{OpIomapEnd.String(), "IOMAP_END"},
		{OpIomapIoend.String(), "IOMAP_IOEND"},
		{(InitExt | InitIomap | InitIomapPagecache).String(), "INIT_EXT|IOMAP|IOMAP_PAGECACHE"},
		{IomapTypeMapped.String(), "MAPPED"},
		{IomapTypePureOverwrite.String(), "PURE_OVERWRITE"},
		{IomapType(5).String(), "TYPE(5)"},
		{(IomapFNew | IomapFWantIomapEnd).String(), "NEW|WANT_IOMAP_END"},
		{(IomapFSizeChanged | 0x10).String(), "SIZE_CHANGED|0x10"},
		{IomapOpFlags(0).String(), "READ"},
		{(IomapOpWrite | IomapOpDirect).String(), "WRITE|DIRECT"},
		{IomapOpFlags(0x100).String(), "0x100"},
		{(IomapIoendUnwritten | IomapIoendAppend).String(), "UNWRITTEN|APPEND"},
		{IomapSupportAll.String(), "BASICS|DIRECTIO|PAGECACHE"},
		{IomapCheckEnd.String(), "mapping ends at or before pos"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := (IomapSupportBasics | IomapSupportPagecache | 1<<9).InitFlags(); got != InitIomap|InitIomapPagecache {
		t.Errorf("InitFlags = %v", got)
	}
}

// good is a valid read reply for pos 4096: one mapped extent at [0, 8192).
func good() IomapBeginOut {
	return IomapBeginOut{
		Offset: 0, Length: 8192,
		ReadAddr: 1 << 20, ReadType: IomapTypeMapped, ReadDev: 0,
		WriteAddr: IomapNullAddr, WriteType: IomapTypePureOverwrite, WriteDev: 0,
	}
}

func TestValidateBeginOut(t *testing.T) {
	const pos = 4096
	cases := []struct {
		name    string
		opflags IomapOpFlags
		pos     uint64
		edit    func(o *IomapBeginOut)
		want    IomapCheck // 0: accepted
	}{
		{"valid read", 0, pos, func(o *IomapBeginOut) {}, 0},
		{"valid REPORT inline", IomapOpReport, pos, func(o *IomapBeginOut) { o.ReadType = IomapTypeInline }, 0},
		{"valid offset == pos", 0, pos, func(o *IomapBeginOut) { o.Offset = pos }, 0},
		{"valid end just past pos", 0, pos, func(o *IomapBeginOut) { o.Length = pos + 1 }, 0},
		{"valid all begin flags", IomapOpWrite, pos, func(o *IomapBeginOut) {
			o.ReadFlags, o.WriteFlags = IomapBeginFlagsMask, IomapBeginFlagsMask
		}, 0},
		// The kernel accepts PURE_OVERWRITE as a read type (a bug).
		{"PURE_OVERWRITE read type passes", 0, pos, func(o *IomapBeginOut) { o.ReadType = IomapTypePureOverwrite }, 0},
		{"HOLE with dev 0 passes", 0, pos, func(o *IomapBeginOut) { o.ReadType, o.ReadAddr = IomapTypeHole, IomapNullAddr }, 0},

		{"read_dev NULL", 0, pos, func(o *IomapBeginOut) { o.ReadDev = IomapDevNull }, IomapCheckReadDev},
		{"write_dev NULL on a read", 0, pos, func(o *IomapBeginOut) { o.WriteDev = IomapDevNull }, IomapCheckWriteDev},
		{"offset past pos", 0, pos, func(o *IomapBeginOut) { o.Offset = pos + 1 }, IomapCheckOffset},
		{"length 0", 0, pos, func(o *IomapBeginOut) { o.Length = 0 }, IomapCheckLength},
		{"ends at pos", 0, pos, func(o *IomapBeginOut) { o.Length = pos }, IomapCheckEnd},
		// u64 sum as in the kernel: a wrapping end lands before offset <= pos.
		{"wrapping end", 0, pos, func(o *IomapBeginOut) { o.Offset, o.Length = 10, math.MaxUint64 }, IomapCheckEnd},
		{"largest non-wrapping end", 0, pos, func(o *IomapBeginOut) { o.Offset, o.Length = 10, math.MaxUint64-10 }, 0},
		{"write type 5", 0, pos, func(o *IomapBeginOut) { o.WriteType = 5 }, IomapCheckWriteType},
		{"write flags BUFFER_HEAD", 0, pos, func(o *IomapBeginOut) { o.WriteFlags = 0x10 }, IomapCheckWriteFlags},
		{"write flags SIZE_CHANGED", IomapOpWrite, pos, func(o *IomapBeginOut) { o.WriteFlags = IomapFSizeChanged }, IomapCheckWriteFlags},
		{"read type 0x100", 0, pos, func(o *IomapBeginOut) { o.ReadType = 0x100 }, IomapCheckReadType},
		{"read flags STALE", 0, pos, func(o *IomapBeginOut) { o.ReadFlags = IomapFStale }, IomapCheckReadFlags},
		{"read INLINE on read", 0, pos, func(o *IomapBeginOut) { o.ReadType = IomapTypeInline }, IomapCheckInline},
		{"write INLINE on write", IomapOpWrite, pos, func(o *IomapBeginOut) { o.WriteType = IomapTypeInline }, IomapCheckInline},
		{"INLINE on ZERO", IomapOpZero, pos, func(o *IomapBeginOut) { o.ReadType = IomapTypeInline }, IomapCheckInline},

		// Order: with several faults the earliest check wins.
		{"read_dev before write_dev", 0, pos, func(o *IomapBeginOut) { o.ReadDev, o.WriteDev = IomapDevNull, IomapDevNull }, IomapCheckReadDev},
		{"dev before offset", 0, pos, func(o *IomapBeginOut) { o.WriteDev, o.Offset = IomapDevNull, pos+1 }, IomapCheckWriteDev},
		{"offset before length", 0, pos, func(o *IomapBeginOut) { o.Offset, o.Length = pos+1, 0 }, IomapCheckOffset},
		{"length before end", 0, pos, func(o *IomapBeginOut) { o.Length, o.ReadType = 0, 9 }, IomapCheckLength},
		{"end before types", 0, pos, func(o *IomapBeginOut) { o.Length, o.WriteType = 1, 9 }, IomapCheckEnd},
		{"write type before write flags", 0, pos, func(o *IomapBeginOut) { o.WriteType, o.WriteFlags = 9, 0x10 }, IomapCheckWriteType},
		{"write flags before read type", 0, pos, func(o *IomapBeginOut) { o.WriteFlags, o.ReadType = 0x10, 9 }, IomapCheckWriteFlags},
		{"read type before read flags", 0, pos, func(o *IomapBeginOut) { o.ReadType, o.ReadFlags = 9, 0x10 }, IomapCheckReadType},
		{"read flags before inline", 0, pos, func(o *IomapBeginOut) { o.ReadFlags, o.WriteType = 0x10, IomapTypeInline }, IomapCheckReadFlags},
	}
	for _, c := range cases {
		out := good()
		c.edit(&out)
		err := ValidateBeginOut(c.opflags, c.pos, &out)
		if c.want == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var re *IomapReplyError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v, want check %q", c.name, err, c.want)
			continue
		}
		if re.Check != c.want {
			t.Errorf("%s: check %q, want %q", c.name, re.Check, c.want)
		}
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v does not unwrap to EIO", c.name, err)
		}
		if re.Out != out || re.Pos != c.pos || re.Opflags != c.opflags {
			t.Errorf("%s: error does not carry the reply: %+v", c.name, re)
		}
	}
}

func TestOutOfPlace(t *testing.T) {
	o := good()
	if o.OutOfPlace(IomapOpWrite) || o.OutOfPlace(0) {
		t.Error("PURE_OVERWRITE reply treated as out-of-place")
	}
	o.WriteType = IomapTypeMapped
	if !o.OutOfPlace(IomapOpWrite | IomapOpDirect) {
		t.Error("mapped write mapping on WRITE not out-of-place")
	}
	if o.OutOfPlace(IomapOpZero) || o.OutOfPlace(IomapOpReport) {
		t.Error("non-write op treated as out-of-place")
	}
}
