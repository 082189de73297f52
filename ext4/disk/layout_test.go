package disk

import (
	"bytes"
	"encoding/binary"
	"go/ast"
	"go/parser"
	"go/token"
	iofs "io/fs"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// layouts lists every on-disk struct with its size in bytes (for structs
// ending in a variable-length name, the size of the fixed part).
var layouts = []struct {
	v    any
	size int
}{
	{Superblock{}, 1024},
	{GroupDesc{}, 64},
	{Inode{}, 160},
	{ExtentHeader{}, 12},
	{Extent{}, 12},
	{ExtentIdx{}, 12},
	{ExtentTail{}, 4},
	{DirEntry{}, 8},
	{DirTail{}, 12},
	{DxRootInfo{}, 8},
	{DxRootHeader{}, 32},
	{DxCountLimit{}, 4},
	{DxEntry{}, 8},
	{DxTail{}, 8},
	{XattrHeader{}, 32},
	{XattrIbodyHeader{}, 4},
	{XattrEntry{}, 16},
	{ACLEntry{}, 8},
	{JournalSuperblock{}, 256},
}

type fieldLayout struct {
	off, size int
}

// fixedLayout walks a struct's fields in order, summing their encoded
// sizes, up to the first field that has no fixed size (a slice).
func fixedLayout(v any) (map[string]fieldLayout, int) {
	out := map[string]fieldLayout{}
	rv := reflect.ValueOf(v)
	off := 0
	for i := range rv.NumField() {
		if rv.Field(i).Kind() == reflect.Slice {
			break
		}
		n := binary.Size(rv.Field(i).Interface())
		out[rv.Type().Field(i).Name] = fieldLayout{off, n}
		off += n
	}
	return out, off
}

// commentOffsets reads the "// 0xNN c_name" comments of the package's
// struct declarations: the table every field's offset is checked against
// (the comments were written from the kernel's disk-layout documentation).
func commentOffsets(t *testing.T) map[string]map[string]int {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi iofs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^0x([0-9A-Fa-f]+) [a-z_]`)
	out := map[string]map[string]int{}
	for _, f := range pkgs["disk"].Files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			m := map[string]int{}
			for _, fl := range st.Fields.List {
				if fl.Comment == nil || len(fl.Names) != 1 {
					continue
				}
				if sm := re.FindStringSubmatch(strings.TrimSpace(fl.Comment.Text())); sm != nil {
					off, _ := strconv.ParseInt(sm[1], 16, 32)
					m[fl.Names[0].Name] = int(off)
				}
			}
			if len(m) > 0 {
				out[ts.Name.Name] = m
			}
			return false
		})
	}
	return out
}

func TestLayouts(t *testing.T) {
	comments := commentOffsets(t)
	seen := map[string]bool{}
	for _, l := range layouts {
		name := reflect.TypeOf(l.v).Name()
		seen[name] = true
		fields, size := fixedLayout(l.v)
		if size != l.size {
			t.Errorf("%s: %d bytes, want %d", name, size, l.size)
		}
		want := comments[name]
		if len(want) == 0 {
			t.Errorf("%s: no offset comments", name)
		}
		for f, fl := range fields {
			off, ok := want[f]
			if !ok {
				t.Errorf("%s.%s (offset %#x, %d bytes): no offset comment", name, f, fl.off, fl.size)
				continue
			}
			if off != fl.off {
				t.Errorf("%s.%s: at %#x, comment says %#x", name, f, fl.off, off)
			}
		}
		// Contiguity and sizes: each field ends where the next begins.
		for f := range want {
			if _, ok := fields[f]; !ok && reflect.ValueOf(l.v).FieldByName(f).Kind() != reflect.Slice {
				t.Errorf("%s.%s: commented but not laid out", name, f)
			}
		}
	}
	for name := range comments {
		if !seen[name] {
			t.Errorf("struct %s has offset comments but no layout test entry", name)
		}
	}
}

// Some anchors straight from the kernel doc tables, independent of the
// comments: offset and size of fields whose position checksums depend on.
func TestLayoutAnchors(t *testing.T) {
	for _, c := range []struct {
		v         any
		field     string
		off, size int
	}{
		{Superblock{}, "Magic", 0x38, 2},
		{Superblock{}, "UUID", 0x68, 16},
		{Superblock{}, "HashSeed", 0xEC, 16},
		{Superblock{}, "DescSizeRaw", 0xFE, 2},
		{Superblock{}, "ChecksumType", 0x175, 1},
		{Superblock{}, "ChecksumSeed", 0x270, 4},
		{Superblock{}, "OrphanFileInum", 0x280, 4},
		{Superblock{}, "Checksum", 0x3FC, 4},
		{GroupDesc{}, "Checksum", 0x1E, 2},
		{GroupDesc{}, "InodeBitmapCsumHi", 0x3A, 2},
		{Inode{}, "Block", 0x28, 60},
		{Inode{}, "ChecksumLo", 0x7C, 2},
		{Inode{}, "ExtraIsize", 0x80, 2},
		{Inode{}, "ChecksumHi", 0x82, 2},
		{Inode{}, "Projid", 0x9C, 4},
		{XattrHeader{}, "Checksum", 0x10, 4},
		{XattrEntry{}, "Hash", 0xC, 4},
		{DxRootHeader{}, "Info", 0x18, 8},
		{JournalSuperblock{}, "Checksum", 0xFC, 4},
	} {
		fields, _ := fixedLayout(c.v)
		if got := fields[c.field]; got != (fieldLayout{c.off, c.size}) {
			t.Errorf("%T.%s: %+v, want offset %#x size %d", c.v, c.field, got, c.off, c.size)
		}
	}
}

// The hand-written codecs must agree with the struct layout: decoding
// random bytes by hand equals encoding/binary's reflection decoding.
func TestHandCodecsMatchLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for range 50 {
		b := random(SuperblockSize)
		var wantSB Superblock
		binary.Decode(b, binary.LittleEndian, &wantSB)
		var sb Superblock
		sb.decode(b)
		if sb != wantSB {
			t.Fatalf("Superblock: %+v, want %+v", sb, wantSB)
		}
		enc := make([]byte, SuperblockSize)
		sb.Encode(enc)
		if !bytes.Equal(enc, b) {
			t.Fatal("Superblock encode")
		}

		b = random(64)
		var want GroupDesc
		binary.Decode(b, binary.LittleEndian, &want)
		got, err := DecodeGroupDesc(b, 64)
		if err != nil || got != want {
			t.Fatalf("GroupDesc: %+v, want %+v (%v)", got, want, err)
		}
		enc = make([]byte, 64)
		got.Encode(enc, 64)
		if !bytes.Equal(enc, b) {
			t.Fatal("GroupDesc encode")
		}

		b = random(256)
		binary.LittleEndian.PutUint16(b[0x80:], 32) // extra_isize covering all fields
		var wantIn Inode
		binary.Decode(b[:InodeFullSize], binary.LittleEndian, &wantIn)
		in, err := DecodeInode(b)
		if err != nil || *in != wantIn {
			t.Fatalf("Inode: %+v, want %+v (%v)", in, wantIn, err)
		}
		enc = make([]byte, 256)
		copy(enc[InodeFullSize:], b[InodeFullSize:])
		in.Encode(enc)
		if !bytes.Equal(enc, b) {
			t.Fatal("Inode encode")
		}

		b = random(24)
		var wh ExtentHeader
		binary.Decode(b, binary.LittleEndian, &wh)
		var we Extent
		binary.Decode(b[12:], binary.LittleEndian, &we)
		var wi ExtentIdx
		binary.Decode(b[12:], binary.LittleEndian, &wi)
		if ExtentAt(b, 0) != we || ExtentIdxAt(b, 0) != wi {
			t.Fatal("extent entry codecs")
		}
		binary.LittleEndian.PutUint16(b[0:], ExtentMagic)
		binary.LittleEndian.PutUint16(b[2:], 1)
		binary.LittleEndian.PutUint16(b[4:], 1)
		binary.LittleEndian.PutUint16(b[6:], 1)
		binary.Decode(b, binary.LittleEndian, &wh)
		if h, err := DecodeExtentHeader(b); err != nil || h != wh {
			t.Fatalf("ExtentHeader: %+v, want %+v (%v)", h, wh, err)
		}

		b = random(XattrHeaderSize)
		binary.LittleEndian.PutUint32(b[0:], XattrMagic)
		binary.LittleEndian.PutUint32(b[8:], 1)
		var wx XattrHeader
		binary.Decode(b, binary.LittleEndian, &wx)
		if h, err := DecodeXattrHeader(b); err != nil || h != wx {
			t.Fatalf("XattrHeader: %+v, want %+v (%v)", h, wx, err)
		}
	}
}
