package dirhash

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s required: %v", name, err)
		}
		t.Skipf("%s not available: %v", name, err)
	}
}

// testNames returns deterministic names of every length from 1 to 255
// (crossing the 16- and 32-byte chunking of TEA and half-MD4), with bytes
// >= 0x80 so signed and unsigned flavours differ, avoiding only the bytes
// debugfs's command parser treats specially.
func testNames(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for i := range n {
		l := 1 + i%255
		name := make([]byte, l)
		for j := range name {
			for {
				c := byte(r.IntN(256))
				if c > ' ' && c != '"' && c != '\\' && c != '#' && c != '/' && c != 0x7f && (j > 0 || c != '-') {
					name[j] = c
					break
				}
			}
		}
		out = append(out, name)
	}
	return out
}

// uuidString renders a seed the way debugfs's -s takes it (the on-disk
// byte order of s_hash_seed).
func uuidString(seed [4]uint32) string {
	var b []byte
	for _, w := range seed {
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// TestAgainstDebugfs compares every version and two seeds with debugfs's
// dx_hash (e2fsprogs's ext2fs_dirhash2).
func TestAgainstDebugfs(t *testing.T) {
	requireTool(t, "debugfs")
	requireTool(t, "mkfs.ext4")
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "1M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v\n%s", err, out)
	}
	names := testNames(600)
	seeds := [][4]uint32{{}, {0x98badcfe, 0x10325476, 0xfedcba98, 0x76543210}, {1, 0, 0, 0}}
	type q struct {
		v    Version
		seed [4]uint32
		name []byte
	}
	var qs []q
	var cmds bytes.Buffer
	for _, v := range []Version{Legacy, HalfMD4, Tea, LegacyUnsigned, HalfMD4Unsigned, TeaUnsigned} {
		for _, seed := range seeds {
			for _, name := range names {
				qs = append(qs, q{v, seed, name})
				// debugfs takes numeric versions; "tea_unsigned" is not a name it knows.
				fmt.Fprintf(&cmds, "dx_hash -h %d -s %s %s\n", v, uuidString(seed), name)
			}
		}
	}
	cmdFile := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cmdFile, cmds.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("debugfs", "-f", cmdFile, img).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	re := regexp.MustCompile(`is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)`)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		m := re.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		if i >= len(qs) {
			t.Fatal("debugfs printed more hashes than asked for")
		}
		wantMaj, _ := strconv.ParseUint(string(m[1]), 16, 32)
		wantMin, _ := strconv.ParseUint(string(m[2]), 16, 32)
		c := qs[i]
		maj, min, err := Hash(c.v, c.name, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		if maj != uint32(wantMaj) || min != uint32(wantMin) {
			t.Errorf("%v seed %x name %q: %#x/%#x, debugfs %#x/%#x", c.v, c.seed, c.name, maj, min, wantMaj, wantMin)
		}
		i++
	}
	if i != len(qs) {
		t.Fatalf("debugfs answered %d of %d queries", i, len(qs))
	}
}

func TestSignedness(t *testing.T) {
	ascii := []byte("plain-ascii-name")
	high := []byte("caf\xc3\xa9-\xff")
	for _, p := range [][2]Version{{Legacy, LegacyUnsigned}, {HalfMD4, HalfMD4Unsigned}, {Tea, TeaUnsigned}} {
		a1, b1, _ := Hash(p[0], ascii, [4]uint32{})
		a2, b2, _ := Hash(p[1], ascii, [4]uint32{})
		if a1 != a2 || b1 != b2 {
			t.Errorf("%v and %v differ on ASCII", p[0], p[1])
		}
		a1, _, _ = Hash(p[0], high, [4]uint32{})
		a2, _, _ = Hash(p[1], high, [4]uint32{})
		if a1 == a2 {
			t.Errorf("%v and %v agree on bytes >= 0x80", p[0], p[1])
		}
	}
}

func TestEffectiveAndErrors(t *testing.T) {
	if Effective(1, true) != HalfMD4Unsigned || Effective(1, false) != HalfMD4 || Effective(6, true) != SipHash {
		t.Error("Effective")
	}
	if _, _, err := Hash(SipHash, []byte("x"), [4]uint32{}); err != ErrUnsupported {
		t.Errorf("siphash: %v", err)
	}
	if _, _, err := Hash(7, []byte("x"), [4]uint32{}); err != ErrUnsupported {
		t.Errorf("version 7: %v", err)
	}
	// An all-zero seed means the default one.
	a, b, _ := Hash(Tea, []byte("name"), [4]uint32{})
	c, d, _ := Hash(Tea, []byte("name"), DefaultSeed)
	if a != c || b != d {
		t.Error("zero seed is not the default seed")
	}
}

func FuzzHash(f *testing.F) {
	for _, n := range testNames(40) {
		f.Add(n, uint8(1), uint32(0))
	}
	f.Add([]byte{}, uint8(2), uint32(7))
	f.Fuzz(func(t *testing.T, name []byte, v uint8, s uint32) {
		seed := [4]uint32{s, s * 3, s * 5, s * 7}
		maj, min, err := Hash(Version(v), name, seed)
		if err != nil {
			if Version(v) <= TeaUnsigned {
				t.Fatalf("version %d: %v", v, err)
			}
			return
		}
		if maj&1 != 0 || maj == EOF32<<1 {
			t.Fatalf("major %#x", maj)
		}
		if (Version(v) == Legacy || Version(v) == LegacyUnsigned) && min != 0 {
			t.Fatalf("legacy minor %#x", min)
		}
		maj2, min2, _ := Hash(Version(v), name, seed)
		if maj2 != maj || min2 != min {
			t.Fatal("not deterministic")
		}
	})
}
