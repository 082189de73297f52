package dirhash

// Real directories as the oracle: the kernel (through a loop mount) or
// e2fsck -D builds an htree from names, placing each name in the leaf whose
// hash range holds it. If our hash of every name falls in its leaf's range,
// we agree with the code that built the tree.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

// htreeLeaf is one leaf block from debugfs's htree_dump: the hash its index
// entry starts at and the names in it with the hashes debugfs printed.
type htreeLeaf struct {
	lower   uint32
	entries []htreeName
}

type htreeName struct {
	name         []byte
	major, minor uint32
}

var (
	reEntry = regexp.MustCompile(`^Entry #(\d+): Hash 0x([0-9a-f]{8}), block (\d+)`)
	reRead  = regexp.MustCompile(`^Reading directory block`)
	reName  = regexp.MustCompile(`(\d+) 0x([0-9a-f]{8})-([0-9a-f]{8}) \((\d+)\) (\S+)`)
)

// parseHtreeDump returns the leaves in hash order with their lower bounds.
// An index node's entry 0 has no stored hash; its range starts where its
// parent's entry does, which is at least the previous leaf's lower bound.
func parseHtreeDump(out []byte) []htreeLeaf {
	var leaves []htreeLeaf
	var last uint32
	var pending *uint32
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if m := reEntry.FindSubmatch(line); m != nil {
			h, _ := strconv.ParseUint(string(m[2]), 16, 32)
			v := uint32(h) &^ 1 // the low bit flags a collision continuation
			pending = &v
			continue
		}
		if reRead.Match(line) {
			lower := last
			if pending != nil && *pending > lower {
				lower = *pending
			}
			last = lower
			leaves = append(leaves, htreeLeaf{lower: lower})
			pending = nil
			continue
		}
		if len(leaves) == 0 {
			continue
		}
		for _, m := range reName.FindAllSubmatch(line, -1) {
			if m[1][0] == '0' && len(m[1]) == 1 {
				continue // unused entry
			}
			maj, _ := strconv.ParseUint(string(m[2]), 16, 32)
			min, _ := strconv.ParseUint(string(m[3]), 16, 32)
			l := &leaves[len(leaves)-1]
			l.entries = append(l.entries, htreeName{bytes.Clone(m[5]), uint32(maj), uint32(min)})
		}
	}
	return leaves
}

func TestRealDirectories(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "tune2fs", "debugfs", "e2fsck"} {
		requireTool(t, tool)
	}
	names := testNames(1500)
	for i := range names {
		names[i] = names[i][:min(len(names[i]), 1+i%60)]
	}
	seedUUID := "fedcba98-7654-3210-fedc-ba9876543210"
	// s_hash_seed holds the UUID's bytes; as little-endian words:
	seed := [4]uint32{0x98badcfe, 0x10325476, 0x98badcfe, 0x10325476}
	if uuidString(seed) != seedUUID {
		t.Fatalf("seed %x is not %s", seed, seedUUID)
	}
	kernel := os.Geteuid() == 0
	for _, alg := range []string{"legacy", "half_md4", "tea"} {
		for _, unsigned := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-unsigned=%v", alg, unsigned), func(t *testing.T) {
				dir := t.TempDir()
				img := filepath.Join(dir, "img")
				src := filepath.Join(dir, "src")
				if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
					t.Fatal(err)
				}
				if !kernel {
					for _, n := range names {
						if err := os.WriteFile(filepath.Join(src, "d", string(n)), nil, 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
				run(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-E", "hash_seed="+seedUUID, "-d", src, img, "8M")
				run(t, "tune2fs", "-E", "hash_alg="+alg, img)
				flags := "1" // signed_directory_hash
				if unsigned {
					flags = "2"
				}
				run(t, "debugfs", "-w", "-R", "ssv flags "+flags, img)
				if kernel {
					fillWithKernel(t, img, filepath.Join(dir, "mnt"), names)
				} else {
					// Without root, e2fsck -D (e2fsprogs) builds the tree.
					if out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput(); err != nil {
						if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
							t.Fatalf("e2fsck -D: %v\n%s", err, out)
						}
					}
				}
				dump := run(t, "debugfs", "-R", "htree_dump /d", img)
				defer func() {
					if t.Failed() {
						t.Logf("htree_dump head:\n%s", dump[:min(len(dump), 400)])
					}
				}()
				leaves := parseHtreeDump(dump)
				if len(leaves) < 10 {
					t.Fatalf("only %d leaves: directory not indexed?", len(leaves))
				}
				v := Effective(map[string]uint8{"legacy": 0, "half_md4": 1, "tea": 2}[alg], unsigned)
				seen := 0
				for i, l := range leaves {
					upper := uint64(1) << 32
					if i+1 < len(leaves) {
						upper = uint64(leaves[i+1].lower) + 1 // a collision may straddle the boundary
					}
					for _, e := range l.entries {
						maj, min, err := Hash(v, e.name, seed)
						if err != nil {
							t.Fatal(err)
						}
						if string(e.name) == "." || string(e.name) == ".." {
							continue
						}
						seen++
						if maj != e.major || min != e.minor {
							t.Errorf("%q: %#x-%#x, debugfs %#x-%#x", e.name, maj, min, e.major, e.minor)
						}
						if maj < l.lower || uint64(maj) >= upper {
							t.Errorf("%q: hash %#x outside its leaf's range [%#x, %#x)", e.name, maj, l.lower, upper)
						}
					}
				}
				if seen != len(names) {
					t.Errorf("checked %d names, want %d", seen, len(names))
				}
			})
		}
	}
}

// fillWithKernel mounts the image through a loop device and creates the
// names with the kernel's ext4, which computes the hashes and builds the
// htree; then unmounts and checks the result with e2fsck.
func fillWithKernel(t *testing.T, img, mnt string, names [][]byte) {
	t.Helper()
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("loop mount: %v\n%s", err, out)
		}
		t.Skipf("loop mount unavailable: %v %s", err, out)
	}
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	for _, n := range names {
		f, err := os.Create(filepath.Join(mnt, "d", string(n)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	run(t, "umount", mnt)
	mounted = false
	run(t, "e2fsck", "-fn", img)
}
