package fuseproto

import "testing"

func TestFlagStrings(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{InitFlags(0).String(), "0"},
		{(InitAsyncRead | InitBigWrites).String(), "ASYNC_READ|BIG_WRITES"},
		{(InitExt | InitRequestTimeout | 1<<50).String(), "INIT_EXT|REQUEST_TIMEOUT|0x4000000000000"},
		{(FattrSize | FattrMtimeNow).String(), "SIZE|MTIME_NOW"},
		{(FopenKeepCache | FopenNoflush).String(), "KEEP_CACHE|NOFLUSH"},
		{(ReleaseFlush | 8).String(), "FLUSH|0x8"},
		{WriteKillSuidgid.String(), "KILL_SUIDGID"},
		{FsyncFdatasync.String(), "FDATASYNC"},
		{ExpireOnly.String(), "EXPIRE_ONLY"},
		{OpLookup.String(), "LOOKUP"},
		{OpCopyFileRange64.String(), "COPY_FILE_RANGE_64"},
		{Opcode(4000).String(), "OPCODE(4000)"},
		{NotifyInvalEntry.String(), "NOTIFY_INVAL_ENTRY"},
		{NotifyCode(99).String(), "NOTIFY(99)"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestInitFlagsSplit(t *testing.T) {
	f := InitAsyncRead | InitExt | InitPassthrough | InitRequestTimeout
	lo, hi := f.Split()
	if lo != uint32(InitAsyncRead|InitExt) || hi != 1<<(37-32)|1<<(42-32) {
		t.Fatalf("Split = %#x, %#x", lo, hi)
	}
	if JoinInitFlags(lo, hi) != f {
		t.Fatalf("Join(Split) = %v", JoinInitFlags(lo, hi))
	}
	// flags2 counts only when INIT_EXT is set.
	in := InitIn{Flags: uint32(InitAsyncRead), Flags2: 1}
	if in.Flags64() != InitAsyncRead {
		t.Errorf("Flags64 without INIT_EXT = %v", in.Flags64())
	}
	in.Flags |= uint32(InitExt)
	if in.Flags64() != InitAsyncRead|InitExt|InitSecurityCtx {
		t.Errorf("Flags64 with INIT_EXT = %v", in.Flags64())
	}
}

// Every bit from 0 to 42 has a name: a renumbering or a gap in the table
// would show as a hex remainder.
func TestInitFlagNamesComplete(t *testing.T) {
	for bit := range 43 {
		s := InitFlags(1 << bit).String()
		if len(s) > 1 && s[:2] == "0x" {
			t.Errorf("bit %d has no name", bit)
		}
	}
}

func TestOpcodeValues(t *testing.T) {
	// Values from enum fuse_opcode; a sample across the minors.
	want := map[Opcode]uint32{
		OpLookup: 1, OpSymlink: 6, OpMknod: 8, OpRelease: 18, OpFsync: 20, OpInit: 26,
		OpInterrupt: 36, OpBatchForget: 42, OpReaddirplus: 44, OpRename2: 45, OpLseek: 46,
		OpCopyFileRange: 47, OpSyncfs: 50, OpTmpfile: 51, OpStatx: 52, OpCopyFileRange64: 53,
		CuseInit: 4096, InitBswapReserved: 26 << 24, CuseInitBswapReserved: 4096 << 8,
	}
	for op, v := range want {
		if uint32(op) != v {
			t.Errorf("%v = %d, want %d", op, uint32(op), v)
		}
	}
	for op := Opcode(1); op <= OpCopyFileRange64; op++ {
		if op == 7 || op == 19 { // never assigned
			continue
		}
		if _, ok := opcodeNames[op]; !ok {
			t.Errorf("opcode %d has no name", op)
		}
	}
}
