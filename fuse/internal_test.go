package fuse

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/e4box/e4box/fuseproto"
)

func TestTableInvariants(t *testing.T) {
	for op, info := range opTable {
		if strings.HasPrefix(op.String(), "OPCODE(") {
			t.Errorf("opcode %d has no name in fuseproto", uint32(op))
		}
		if info.fn == nil {
			t.Errorf("%v: no handler", op)
		}
		if info.in > argStoreWords*8 {
			t.Errorf("%v: input struct %d bytes exceeds argStore", op, info.in)
		}
		if info.in%8 != 0 {
			t.Errorf("%v: input size %d breaks 8-byte alignment of what follows", op, info.in)
		}
		if info.names > len(call{}.names) {
			t.Errorf("%v: %d names", op, info.names)
		}
		if info.minIn > info.in {
			t.Errorf("%v: minIn %d > in %d", op, info.minIn, info.in)
		}
		if info.noReply && !info.inline {
			t.Errorf("%v: no-reply opcodes are served inline", op)
		}
	}
	// Every reply struct fits outStore.
	var c call
	for _, size := range []uintptr{
		unsafe.Sizeof(fuseproto.StatxOut{}), unsafe.Sizeof(fuseproto.CreateOut{}),
		unsafe.Sizeof(fuseproto.InitOut{}), unsafe.Sizeof(fuseproto.StatfsOut{}),
	} {
		if size > unsafe.Sizeof(c.outStore) {
			t.Errorf("reply struct of %d bytes exceeds outStore", size)
		}
	}
}

func TestDirListAdd(t *testing.T) {
	buf := bytes.Repeat([]byte{0xff}, 72) // dirty, to catch unwritten padding
	l := NewDirList(buf, false)
	if !l.Add([]byte("a"), 10, syscall.DT_REG, 1) {
		t.Fatal("first entry rejected")
	}
	if !l.Add([]byte("abcdefghi"), 11, syscall.DT_DIR, 2) { // 24+9 -> 40
		t.Fatal("second entry rejected")
	}
	if l.Len() != 72 {
		t.Fatalf("Len = %d, want 72", l.Len())
	}
	if l.Add([]byte("x"), 12, syscall.DT_REG, 3) {
		t.Error("entry accepted into a full buffer")
	}
	if l.Len() != 72 {
		t.Errorf("rejected entry changed Len to %d", l.Len())
	}
	want := []byte{
		10, 0, 0, 0, 0, 0, 0, 0, // ino
		1, 0, 0, 0, 0, 0, 0, 0, // off
		1, 0, 0, 0, 8, 0, 0, 0, // namelen, DT_REG
		'a', 0, 0, 0, 0, 0, 0, 0, // name, zero padding
		11, 0, 0, 0, 0, 0, 0, 0,
		2, 0, 0, 0, 0, 0, 0, 0,
		9, 0, 0, 0, 4, 0, 0, 0,
		'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
		'i', 0, 0, 0, 0, 0, 0, 0,
	}
	if !bytes.Equal(l.Bytes(), want) {
		t.Errorf("Bytes =\n%v\nwant\n%v", l.Bytes(), want)
	}
}

func TestDirListEdges(t *testing.T) {
	l := NewDirList(make([]byte, 100), false)
	if l.Add(nil, 1, 0, 1) {
		t.Error("empty name accepted")
	}
	if l.Add(bytes.Repeat([]byte("n"), 77), 1, 0, 1) { // 24+77 = 101 > 100
		t.Error("oversized entry accepted")
	}
	// 24+76 = 100 bytes, but records are 8-aligned: 104 does not fit.
	if l.Add(bytes.Repeat([]byte("n"), 76), 1, 0, 1) {
		t.Error("entry whose aligned size exceeds the buffer accepted")
	}
	if !l.Add(bytes.Repeat([]byte("n"), 72), 1, 0, 1) || l.Len() != 96 {
		t.Errorf("96-byte entry: len %d", l.Len())
	}

	// AddPlus on a plain list drops the attributes; Add on a plus list
	// writes a zero entry_out (no lookup counted).
	plain := NewDirList(make([]byte, 64), false)
	e := fuseproto.EntryOut{NodeID: 7}
	e.Attr.Ino, e.Attr.Mode = 7, syscall.S_IFLNK|0o777
	if !plain.AddPlus([]byte("l"), &e, 1) || plain.Len() != 32 {
		t.Fatalf("AddPlus on plain list: len %d", plain.Len())
	}
	if typ := plain.Bytes()[20]; typ != syscall.DT_LNK {
		t.Errorf("type = %d, want DT_LNK", typ)
	}
	plus := NewDirList(bytes.Repeat([]byte{0xff}, 200), true)
	if !plus.Add([]byte("x"), 3, syscall.DT_REG, 9) || plus.Len() != 160 {
		t.Fatalf("Add on plus list: len %d", plus.Len())
	}
	if !bytes.Equal(plus.Bytes()[:128], make([]byte, 128)) {
		t.Error("entry_out of a plain Add on a plus list is not zero")
	}
	if plus.AddPlus([]byte("y"), &e, 10) {
		t.Error("second plus entry fits in 40 bytes?")
	}
}
