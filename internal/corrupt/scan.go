package corrupt

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/e4box/e4box/ext4/disk"
)

// Kind is the structure a metadata block holds.
type Kind string

const (
	KindSuperblock   Kind = "superblock"    // the block holding the primary superblock
	KindGDT          Kind = "gdt"           // a primary group descriptor block
	KindBlockBitmap  Kind = "block-bitmap"  // never read by the read path
	KindInodeBitmap  Kind = "inode-bitmap"  // never read by the read path
	KindInodeTable   Kind = "inode-table"   // an inode table block holding used inodes
	KindExtentBlock  Kind = "extent-block"  // extent tree index or leaf block
	KindIndirect     Kind = "indirect"      // single, double or triple indirect block
	KindDirLeaf      Kind = "dir-leaf"      // directory block holding entries
	KindDxRoot       Kind = "dx-root"       // htree root (block 0 of an indexed directory)
	KindDxNode       Kind = "dx-node"       // htree interior index block
	KindXattrBlock   Kind = "xattr-block"   // extended attribute block (i_file_acl)
	KindSymlinkBlock Kind = "symlink-block" // the target block of a slow symlink
)

// Kinds lists every Kind, in a fixed order.
var Kinds = []Kind{KindSuperblock, KindGDT, KindBlockBitmap, KindInodeBitmap, KindInodeTable,
	KindExtentBlock, KindIndirect, KindDirLeaf, KindDxRoot, KindDxNode, KindXattrBlock, KindSymlinkBlock}

// Block is one metadata block of an image.
type Block struct {
	Nr     uint64
	Kind   Kind
	Owners []uint32 // the inodes whose metadata it holds (inode table: the used inodes in it)
	Group  uint32   // bitmaps and inode table blocks: their group
	Lblk   uint64   // directory blocks: the logical block in the directory
}

// InodeInfo is what debugfs reports about a used inode.
type InodeInfo struct {
	Ino        uint32
	Type       string // debugfs's: "regular", "directory", "symlink", ...
	Flags      uint32
	Generation uint32
	Size       uint64
	FileACL    uint64
}

// Image is a scanned image: its bytes and metadata blocks.
type Image struct {
	Data      []byte // the pristine image; Mutate never changes it
	BlockSize int
	SB        *disk.Superblock
	Seed      uint32 // metadata checksum seed
	Blocks    []Block
	Inodes    map[uint32]*InodeInfo // used inodes that debugfs could stat

	itable map[uint32]uint64 // group -> first inode table block
}

// Scan reads the image at path and lists its metadata blocks.
func Scan(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < disk.SuperblockOffset+disk.SuperblockSize {
		return nil, fmt.Errorf("corrupt: %s: too small", path)
	}
	sb, err := disk.DecodeSuperblock(data[disk.SuperblockOffset : disk.SuperblockOffset+disk.SuperblockSize])
	if err != nil {
		return nil, fmt.Errorf("corrupt: %s: %w", path, err)
	}
	im := &Image{Data: data, BlockSize: sb.BlockSize(), SB: sb, Seed: sb.CsumSeed(),
		Inodes: make(map[uint32]*InodeInfo), itable: make(map[uint32]uint64)}
	groups, err := dumpGroups(path)
	if err != nil {
		return nil, err
	}
	used := im.addGroupBlocks(groups)
	if err := im.addInodeBlocks(path, used); err != nil {
		return nil, err
	}
	sort.SliceStable(im.Blocks, func(i, j int) bool { return im.Blocks[i].Nr < im.Blocks[j].Nr })
	return im, nil
}

// groupInfo is one group of dumpe2fs's listing.
type groupInfo struct {
	nr                       uint32
	super                    int64 // primary superblock block, or -1
	gdt                      [2]int64
	blockBitmap, inodeBitmap int64
	itable                   [2]int64
	freeInodes               [][2]uint32
}

var (
	reGroup  = regexp.MustCompile(`^Group (\d+):`)
	reSuper  = regexp.MustCompile(`Primary superblock at (\d+)`)
	reGDT    = regexp.MustCompile(`Group descriptors at (\d+)-(\d+)`)
	reBB     = regexp.MustCompile(`Block bitmap at (\d+)`)
	reIB     = regexp.MustCompile(`Inode bitmap at (\d+)`)
	reIT     = regexp.MustCompile(`Inode table at (\d+)-(\d+)`)
	reFreeIn = regexp.MustCompile(`^\s*Free inodes: (.*)$`)
)

// dumpGroups runs dumpe2fs and parses its per-group section.
func dumpGroups(path string) ([]*groupInfo, error) {
	out, err := exec.Command("dumpe2fs", path).Output()
	if err != nil {
		return nil, fmt.Errorf("corrupt: dumpe2fs %s: %w", path, err)
	}
	var gs []*groupInfo
	var g *groupInfo
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := reGroup.FindStringSubmatch(line); m != nil {
			g = &groupInfo{nr: uint32(num(m[1])), super: -1, gdt: [2]int64{-1, -2}, blockBitmap: -1, inodeBitmap: -1}
			gs = append(gs, g)
			continue
		}
		if g == nil {
			continue
		}
		if m := reSuper.FindStringSubmatch(line); m != nil {
			g.super = num(m[1])
		}
		if m := reGDT.FindStringSubmatch(line); m != nil && g.super >= 0 {
			g.gdt = [2]int64{num(m[1]), num(m[2])}
		}
		if m := reBB.FindStringSubmatch(line); m != nil {
			g.blockBitmap = num(m[1])
		}
		if m := reIB.FindStringSubmatch(line); m != nil {
			g.inodeBitmap = num(m[1])
		}
		if m := reIT.FindStringSubmatch(line); m != nil {
			g.itable = [2]int64{num(m[1]), num(m[2])}
		}
		if m := reFreeIn.FindStringSubmatch(line); m != nil {
			for _, r := range strings.Split(m[1], ",") {
				r = strings.TrimSpace(r)
				if r == "" {
					continue
				}
				a, b, ok := strings.Cut(r, "-")
				if !ok {
					b = a
				}
				g.freeInodes = append(g.freeInodes, [2]uint32{uint32(num(a)), uint32(num(b))})
			}
		}
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("corrupt: dumpe2fs %s: no groups listed", path)
	}
	return gs, nil
}

// addGroupBlocks records the superblock, descriptor, bitmap and inode
// table blocks, and returns the used inodes.
func (im *Image) addGroupBlocks(gs []*groupInfo) []uint32 {
	ipg := im.SB.InodesPerGroup
	isize := uint64(im.SB.InodeSize())
	bs := uint64(im.BlockSize)
	var used []uint32
	for _, g := range gs {
		if g.super >= 0 {
			im.Blocks = append(im.Blocks, Block{Nr: uint64(g.super), Kind: KindSuperblock})
			dpb := uint32(im.BlockSize / im.SB.DescSize())
			for b := g.gdt[0]; b <= g.gdt[1]; b++ {
				im.Blocks = append(im.Blocks, Block{Nr: uint64(b), Kind: KindGDT, Group: uint32(b-g.gdt[0]) * dpb})
			}
		}
		if g.blockBitmap >= 0 {
			im.Blocks = append(im.Blocks, Block{Nr: uint64(g.blockBitmap), Kind: KindBlockBitmap, Group: g.nr})
		}
		if g.inodeBitmap >= 0 {
			im.Blocks = append(im.Blocks, Block{Nr: uint64(g.inodeBitmap), Kind: KindInodeBitmap, Group: g.nr})
		}
		im.itable[g.nr] = uint64(g.itable[0])
		first := g.nr*ipg + 1
		free := func(ino uint32) bool {
			for _, r := range g.freeInodes {
				if ino >= r[0] && ino <= r[1] {
					return true
				}
			}
			return false
		}
		perBlock := map[uint64][]uint32{}
		for i := uint32(0); i < ipg; i++ {
			ino := first + i
			if free(ino) || ino != 2 && ino < im.SB.FirstInode() {
				continue // reserved inodes other than the root are not reachable
			}
			used = append(used, ino)
			blk := uint64(g.itable[0]) + uint64(i)*isize/bs
			perBlock[blk] = append(perBlock[blk], ino)
		}
		for blk, inos := range perBlock {
			im.Blocks = append(im.Blocks, Block{Nr: blk, Kind: KindInodeTable, Owners: inos, Group: g.nr})
		}
	}
	return used
}

var (
	reInode   = regexp.MustCompile(`^Inode: (\d+)\s+Type: (\S+)\s+Mode:\s+\S+\s+Flags: 0x([0-9a-fA-F]+)`)
	reGen     = regexp.MustCompile(`^Generation: (\d+)`)
	reSize    = regexp.MustCompile(`Size: (\d+)\s*$`)
	reFileACL = regexp.MustCompile(`^File ACL: (\d+)`)
	reRange   = regexp.MustCompile(`^\((ETB\d+|IND|DIND|TIND|\d+(?:-\d+)?)\):(\d+)(?:-(\d+))?$`)
)

// addInodeBlocks stats every used inode with one debugfs run and records
// the blocks holding their metadata.
func (im *Image) addInodeBlocks(path string, used []uint32) error {
	cmds, err := os.CreateTemp("", "corrupt-debugfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(cmds.Name())
	w := bufio.NewWriter(cmds)
	for _, ino := range used {
		fmt.Fprintf(w, "stat <%d>\n", ino)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	cmds.Close()
	out, err := exec.Command("debugfs", "-f", cmds.Name(), filepath.Clean(path)).Output()
	if err != nil {
		return fmt.Errorf("corrupt: debugfs %s: %w", path, err)
	}
	// A block claimed twice (a shared xattr block) keeps its first kind
	// and collects every owner.
	owners := map[uint64][]uint32{}
	lblks := map[uint64]uint64{}
	kindOf := map[uint64]Kind{}
	var order []uint64
	add := func(blk uint64, k Kind, ino uint32, lblk uint64) {
		if _, ok := kindOf[blk]; !ok {
			kindOf[blk] = k
			lblks[blk] = lblk
			order = append(order, blk)
		}
		owners[blk] = append(owners[blk], ino)
	}
	var cur *InodeInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	inExtents := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "debugfs: ") {
			cur, inExtents = nil, false
			continue
		}
		if m := reInode.FindStringSubmatch(line); m != nil {
			ino, _ := strconv.ParseUint(m[1], 10, 32)
			fl, _ := strconv.ParseUint(m[3], 16, 32)
			cur = &InodeInfo{Ino: uint32(ino), Type: m[2], Flags: uint32(fl)}
			im.Inodes[cur.Ino] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := reGen.FindStringSubmatch(line); m != nil {
			g, _ := strconv.ParseUint(m[1], 10, 32)
			cur.Generation = uint32(g)
		}
		if strings.HasPrefix(line, "User:") {
			if m := reSize.FindStringSubmatch(line); m != nil {
				cur.Size, _ = strconv.ParseUint(m[1], 10, 64)
			}
		}
		if m := reFileACL.FindStringSubmatch(line); m != nil {
			cur.FileACL, _ = strconv.ParseUint(m[1], 10, 64)
			if cur.FileACL != 0 {
				add(cur.FileACL, KindXattrBlock, cur.Ino, 0)
			}
		}
		if line == "EXTENTS:" || line == "BLOCKS:" {
			inExtents = true
			continue
		}
		if !inExtents || strings.HasPrefix(line, "TOTAL:") {
			continue
		}
		for _, tok := range strings.Split(line, ", ") {
			m := reRange.FindStringSubmatch(strings.TrimSpace(tok))
			if m == nil {
				continue
			}
			start, _ := strconv.ParseUint(m[2], 10, 64)
			end := start
			if m[3] != "" {
				end, _ = strconv.ParseUint(m[3], 10, 64)
			}
			switch {
			case strings.HasPrefix(m[1], "ETB"):
				add(start, KindExtentBlock, cur.Ino, 0)
			case m[1] == "IND" || m[1] == "DIND" || m[1] == "TIND":
				add(start, KindIndirect, cur.Ino, 0)
			default:
				l0, _, _ := strings.Cut(m[1], "-")
				lstart, _ := strconv.ParseUint(l0, 10, 64)
				switch cur.Type {
				case "directory":
					for b := start; b <= end; b++ {
						add(b, im.dirKind(cur, lstart+b-start, b), cur.Ino, lstart+b-start)
					}
				case "symlink":
					add(start, KindSymlinkBlock, cur.Ino, lstart)
				}
			}
		}
	}
	for _, blk := range order {
		im.Blocks = append(im.Blocks, Block{Nr: blk, Kind: kindOf[blk], Owners: owners[blk], Lblk: lblks[blk]})
	}
	return nil
}

// dirKind classifies directory block blk (logical lblk of dir) the way
// the kernel's __ext4_read_dirblock does.
func (im *Image) dirKind(dir *InodeInfo, lblk, blk uint64) Kind {
	const indexFL = 0x1000
	if dir.Flags&indexFL == 0 {
		return KindDirLeaf
	}
	if lblk == 0 {
		return KindDxRoot
	}
	b := im.block(blk)
	if b != nil && le32(b[0:]) == 0 && disk.RecLenFromDisk(le16(b[4:]), im.BlockSize) == im.BlockSize {
		return KindDxNode
	}
	return KindDirLeaf
}

// block returns the bytes of block nr in the pristine image, or nil.
func (im *Image) block(nr uint64) []byte {
	off := nr * uint64(im.BlockSize)
	if off+uint64(im.BlockSize) > uint64(len(im.Data)) {
		return nil
	}
	return im.Data[off : off+uint64(im.BlockSize)]
}

// Count returns how many blocks of each kind the image has.
func (im *Image) Count() map[Kind]int {
	n := map[Kind]int{}
	for _, b := range im.Blocks {
		n[b.Kind]++
	}
	return n
}

// ByKind returns the blocks of kind k.
func (im *Image) ByKind(k Kind) []Block {
	var out []Block
	for _, b := range im.Blocks {
		if b.Kind == k {
			out = append(out, b)
		}
	}
	return out
}
