package corrupt

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/e4box/e4box/ext4/disk"
	"github.com/e4box/e4box/internal/crc"
)

// Mutation is one damaged metadata block: its bytes before and after.
type Mutation struct {
	Block    Block
	What     string // what was changed, e.g. "extent.ee_len=0xffff +csum"
	Fixed    bool   // the structure's checksum was recomputed afterwards
	Target   uint32 // the inode whose record was targeted (inode table blocks), else 0
	Old, New []byte
}

func (m *Mutation) String() string {
	return fmt.Sprintf("block %d (%s, owners %v): %s", m.Block.Nr, m.Block.Kind, short(m.Block.Owners), m.What)
}

func short(inos []uint32) []uint32 {
	if len(inos) > 6 {
		return inos[:6]
	}
	return inos
}

// Offset is the device byte offset of the mutated block.
func (m *Mutation) Offset() int64 { return int64(m.Block.Nr) * int64(len(m.Old)) }

// Apply writes the damaged block into img; Revert restores it.
func (m *Mutation) Apply(img []byte)  { copy(img[m.Offset():], m.New) }
func (m *Mutation) Revert(img []byte) { copy(img[m.Offset():], m.Old) }

// Changed reports whether the mutation changed any byte.
func (m *Mutation) Changed() bool { return string(m.Old) != string(m.New) }

// changed calls fn with the offset of each changed byte of the block.
func (m *Mutation) changed(fn func(off int)) {
	for i := range m.Old {
		if m.Old[i] != m.New[i] {
			fn(i)
		}
	}
}

func le16(b []byte) uint16     { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32     { return binary.LittleEndian.Uint32(b) }
func put16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }
func put32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// pick returns one of vs.
func pick[T any](r *rand.Rand, vs ...T) T { return vs[r.IntN(len(vs))] }

// Mutate damages block b in a copy and returns the mutation. About a third
// of mutations are generic (bit flips, overwrites with 0x00, 0xFF or
// random bytes); the rest rewrite a field of the structure b holds. On
// filesystems with checksums, half of them then recompute the damaged
// structure's checksum.
func (im *Image) Mutate(r *rand.Rand, b Block) Mutation {
	old := im.block(b.Nr)
	m := Mutation{Block: b, Old: old, New: append([]byte(nil), old...)}
	if r.IntN(3) > 0 {
		m.What = im.targeted(r, &m)
	}
	if m.What == "" {
		m.What = im.generic(r, &m)
	}
	if r.IntN(2) == 0 {
		if what := im.fixChecksum(&m); what != "" {
			m.Fixed = true
			m.What += " +" + what
		}
	}
	return m
}

// region returns the part of the block a generic mutation should hit:
// for inode table blocks, the record of one used inode most of the time.
func (im *Image) region(r *rand.Rand, m *Mutation) (lo, hi int) {
	if m.Block.Kind == KindInodeTable && len(m.Block.Owners) > 0 && r.IntN(5) > 0 {
		ino := im.pickOwner(r, m.Block.Owners)
		m.Target = ino
		off := im.recordOffset(ino)
		return off, off + im.SB.InodeSize()
	}
	if m.Block.Kind == KindSuperblock {
		off := im.sbOffset(m.Block.Nr)
		return off, off + disk.SuperblockSize
	}
	return 0, len(m.New)
}

func (im *Image) generic(r *rand.Rand, m *Mutation) string {
	lo, hi := im.region(r, m)
	b := m.New[lo:hi]
	switch r.IntN(4) {
	case 0:
		n := 1 + r.IntN(8)
		for range n {
			i := r.IntN(len(b))
			b[i] ^= 1 << r.IntN(8)
		}
		return fmt.Sprintf("flip %d bits", n)
	default:
		start, n := r.IntN(len(b)), 1+r.IntN(64)
		if r.IntN(8) == 0 {
			start, n = 0, len(b)
		}
		n = min(n, len(b)-start)
		kind := pick(r, "0x00", "0xff", "random")
		for i := start; i < start+n; i++ {
			switch kind {
			case "0x00":
				b[i] = 0
			case "0xff":
				b[i] = 0xff
			default:
				b[i] = byte(r.Uint32())
			}
		}
		return fmt.Sprintf("overwrite %d bytes at %d with %s", n, lo+start, kind)
	}
}

// targeted rewrites one field; "" if the block offers none.
func (im *Image) targeted(r *rand.Rand, m *Mutation) string {
	switch m.Block.Kind {
	case KindSuperblock:
		return im.mutSuper(r, m.New[im.sbOffset(m.Block.Nr):])
	case KindGDT:
		return im.mutGDT(r, m)
	case KindInodeTable:
		return im.mutInode(r, m)
	case KindExtentBlock:
		return im.mutExtentNode(r, m.New, m.Block.Nr)
	case KindIndirect:
		return im.mutIndirect(r, m)
	case KindDirLeaf:
		return im.mutDirLeaf(r, m)
	case KindDxRoot, KindDxNode:
		return im.mutDx(r, m)
	case KindXattrBlock:
		return im.mutXattrEntries(r, m.New, 0x20, "xattr")
	case KindSymlinkBlock:
		i := r.IntN(max(1, int(im.ownerSize(m.Block))))
		c := pick(r, byte(0), '/')
		m.New[i] = c
		return fmt.Sprintf("symlink[%d]=%#x", i, c)
	}
	return ""
}

func (im *Image) ownerSize(b Block) uint64 {
	if len(b.Owners) > 0 {
		if in := im.Inodes[b.Owners[0]]; in != nil {
			return min(in.Size, uint64(im.BlockSize))
		}
	}
	return uint64(im.BlockSize)
}

// sbOffset is where the superblock starts inside block nr.
func (im *Image) sbOffset(nr uint64) int {
	return disk.SuperblockOffset - int(nr)*im.BlockSize
}

func (im *Image) nblocks() uint64 { return uint64(len(im.Data)) / uint64(im.BlockSize) }

// setField sets a little-endian field of width 1, 2 or 4 bytes.
func setField(b []byte, off, width int, v uint64) {
	switch width {
	case 1:
		b[off] = byte(v)
	case 2:
		put16(b[off:], uint16(v))
	case 4:
		put32(b[off:], uint32(v))
	}
}

// field is a rewritable field: where it is and the values to try.
type field struct {
	name   string
	off    int
	width  int
	values []uint64
}

// applyField sets one of fs to one of its values and describes the change.
func applyField(r *rand.Rand, b []byte, fs []field, prefix string) string {
	f := fs[r.IntN(len(fs))]
	v := f.values[r.IntN(len(f.values))]
	setField(b, f.off, f.width, v)
	return fmt.Sprintf("%s.%s=%#x", prefix, f.name, v)
}

func (im *Image) mutSuper(r *rand.Rand, sb []byte) string {
	sb = sb[:disk.SuperblockSize]
	ipg := uint64(le32(sb[0x28:]))
	if r.IntN(5) == 0 {
		// Toggle one feature bit: compat, incompat or ro_compat.
		off := pick(r, 0x5C, 0x60, 0x64)
		bit := uint32(1) << r.IntN(20)
		put32(sb[off:], le32(sb[off:])^bit)
		return fmt.Sprintf("sb.features@%#x^=%#x", off, bit)
	}
	return applyField(r, sb, []field{
		{"s_inodes_count", 0x0, 4, []uint64{0, 1, 0xFFFFFFFF, uint64(le32(sb)) + ipg}},
		{"s_blocks_count_lo", 0x4, 4, []uint64{0, 1, 0xFFFFFFFF, uint64(le32(sb[4:])) + 1000}},
		{"s_first_data_block", 0x14, 4, []uint64{0, 1, 5, 0xFFFFFFFF}},
		{"s_log_block_size", 0x18, 4, []uint64{0, 1, 2, 7, 0xFFFFFFFF}},
		{"s_log_cluster_size", 0x1C, 4, []uint64{0, 4, 0xFFFFFFFF}},
		{"s_blocks_per_group", 0x20, 4, []uint64{0, 8, 0xFFFFFFFF}},
		{"s_inodes_per_group", 0x28, 4, []uint64{0, 1, 0xFFFFFFFF, ipg * 2, ipg - 1}},
		{"s_magic", 0x38, 2, []uint64{0, 0xEF52}},
		{"s_state", 0x3A, 2, []uint64{0, 2, 0xFFFF}},
		{"s_rev_level", 0x4C, 4, []uint64{0, 5}},
		{"s_first_ino", 0x54, 4, []uint64{0, 1, 3, 0xFFFFFFFF}},
		{"s_inode_size", 0x58, 2, []uint64{0, 100, 129, 1024, 0xFFFF}},
		{"s_hash_seed", 0xEC, 4, []uint64{0, 0xDEADBEEF}},
		{"s_def_hash_version", 0xFC, 1, []uint64{3, 6, 0xFF}},
		{"s_desc_size", 0xFE, 2, []uint64{0, 16, 33, 1024, 0xFFFF}},
		{"s_first_meta_bg", 0x104, 4, []uint64{1, 0xFFFFFFFF}},
		{"s_blocks_count_hi", 0x150, 4, []uint64{1, 0xFFFFFFFF}},
		{"s_min_extra_isize", 0x15C, 2, []uint64{3, 200, 0xFFFF}},
		{"s_want_extra_isize", 0x15E, 2, []uint64{3, 200, 0xFFFF}},
		{"s_log_groups_per_flex", 0x174, 1, []uint64{0, 31, 0xFF}},
		{"s_checksum_type", 0x175, 1, []uint64{0, 2}},
		{"s_checksum_seed", 0x270, 4, []uint64{0, 0x12345678}},
		{"s_inodes_count+ipg", 0x0, 4, []uint64{uint64(le32(sb)) * 2}},
	}, "sb")
}

func (im *Image) descSize() int { return im.SB.DescSize() }

func (im *Image) groupCount() uint32 { return uint32(im.SB.GroupCount()) }

func (im *Image) mutGDT(r *rand.Rand, m *Mutation) string {
	ds := im.descSize()
	dpb := im.BlockSize / ds
	n := min(uint32(dpb), im.groupCount()-m.Block.Group)
	i := r.IntN(int(n))
	rec := m.New[i*ds : (i+1)*ds]
	g := m.Block.Group + uint32(i)
	itable := uint64(le32(rec[8:]))
	other := uint64(im.itable[(g+1)%im.groupCount()])
	fs := []field{
		{"bg_inode_table_lo", 0x8, 4, []uint64{0, 1, im.nblocks() - 1, im.nblocks(), 0xFFFFFFFF, itable + 1, other}},
		{"bg_block_bitmap_lo", 0x0, 4, []uint64{0, 0xFFFFFFFF}},
		{"bg_inode_bitmap_lo", 0x4, 4, []uint64{0, 0xFFFFFFFF}},
		{"bg_free_inodes_count_lo", 0xE, 2, []uint64{0xFFFF}},
		{"bg_flags", 0x12, 2, []uint64{uint64(le16(rec[0x12:]) ^ 1), uint64(le16(rec[0x12:]) ^ 2), 0xFFFF}},
		{"bg_itable_unused_lo", 0x1C, 2, []uint64{0, uint64(im.SB.InodesPerGroup), 0xFFFF}},
		{"bg_checksum", 0x1E, 2, []uint64{0, 0xFFFF}},
	}
	if ds >= 64 {
		fs = append(fs, field{"bg_inode_table_hi", 0x28, 4, []uint64{1, 0xFFFFFFFF}})
	}
	return applyField(r, rec, fs, fmt.Sprintf("gd[%d]", g))
}

// recordOffset is the offset of inode ino's record in its table block.
func (im *Image) recordOffset(ino uint32) int {
	idx := uint64(ino-1) % uint64(im.SB.InodesPerGroup)
	return int(idx * uint64(im.SB.InodeSize()) % uint64(im.BlockSize))
}

const (
	extentsFL    = 0x80000
	inlineDataFL = 0x10000000
	indexFL      = 0x1000
	eaInodeFL    = 0x200000
	hugeFileFL   = 0x40000
)

func (im *Image) mutInode(r *rand.Rand, m *Mutation) string {
	if len(m.Block.Owners) == 0 {
		return ""
	}
	ino := im.pickOwner(r, m.Block.Owners)
	m.Target = ino
	off := im.recordOffset(ino)
	rec := m.New[off : off+im.SB.InodeSize()]
	p := fmt.Sprintf("inode %d", ino)
	flags := le32(rec[0x20:])
	switch r.IntN(6) {
	case 0: // i_block: the extent root, block map or inline data
		if flags&extentsFL != 0 {
			return im.mutExtentNode(r, rec[0x28:0x28+60], m.Block.Nr)
		}
		if flags&inlineDataFL != 0 {
			i := r.IntN(60)
			v := pick(r, byte(0), 0xff, byte(r.Uint32()))
			rec[0x28+i] = v
			return fmt.Sprintf("%s i_block[byte %d]=%#x (inline)", p, i, v)
		}
		slot := r.IntN(15)
		blk := uint64(le32(rec[0x28+4*slot:]))
		v := pick(r, im.nblocks(), 0xFFFFFFFF, 1, m.Block.Nr, uint64(le32(rec[0x28:])), blk+1)
		put32(rec[0x28+4*slot:], uint32(v))
		return fmt.Sprintf("%s i_block[%d]=%#x", p, slot, v)
	case 1:
		if im.SB.InodeSize() > disk.GoodOldInodeSize {
			if what := im.mutIbody(r, rec, p); what != "" {
				return what
			}
		}
		fallthrough
	default:
		size := uint64(le32(rec[4:])) | uint64(le32(rec[0x6C:]))<<32
		sizes := []uint64{0, 1 << 62, 1<<63 - 1, 1<<64 - 1, size*1000 + 7, size + 1<<32, size + uint64(im.BlockSize)*3}
		fs := []field{
			{"i_mode", 0x0, 2, []uint64{0x41ED, 0x81A4, 0xA1FF, 0x21A4, 0xF1FF, 0x01A4}},
			{"i_links_count", 0x1A, 2, []uint64{0}},
			{"i_blocks_lo", 0x1C, 4, []uint64{0, 0xFFFFFFFF, 8}},
			{"i_flags", 0x20, 4, []uint64{uint64(flags ^ extentsFL), uint64(flags ^ inlineDataFL), uint64(flags ^ indexFL),
				uint64(flags ^ eaInodeFL), uint64(flags ^ hugeFileFL), 0xFFFFFFFF}},
			{"i_file_acl_lo", 0x68, 4, []uint64{1, uint64(im.SB.FirstDataBlock), m.Block.Nr, im.nblocks() - 1, im.nblocks(), 0xFFFFFFFF, im.someBlock(r, KindXattrBlock), im.someBlock(r, KindDirLeaf)}},
			{"i_file_acl_hi", 0x76, 2, []uint64{1, 0xFFFF}},
			{"i_generation", 0x64, 4, []uint64{uint64(le32(rec[0x64:]) + 1)}},
			{"i_dtime", 0x14, 4, []uint64{1}},
		}
		if im.SB.InodeSize() > disk.GoodOldInodeSize {
			fs = append(fs, field{"i_extra_isize", 0x80, 2, []uint64{0, 3, 5, 160, 0xFFFF}})
		}
		if r.IntN(4) == 0 {
			v := sizes[r.IntN(len(sizes))]
			put32(rec[4:], uint32(v))
			put32(rec[0x6C:], uint32(v>>32))
			return fmt.Sprintf("%s i_size=%#x", p, v)
		}
		return applyField(r, rec, fs, p)
	}
}

// Interesting reports whether an inode has more to damage than an empty
// regular file: data, blocks, xattrs, or another type.
func (im *Image) Interesting(ino uint32) bool {
	in := im.Inodes[ino]
	return in != nil && (in.Type != "regular" || in.Size > 0 || in.FileACL != 0)
}

// pickOwner picks one of inos, an interesting one four times out of five.
func (im *Image) pickOwner(r *rand.Rand, inos []uint32) uint32 {
	var c []uint32
	for _, ino := range inos {
		if im.Interesting(ino) {
			c = append(c, ino)
		}
	}
	if len(c) == 0 || r.IntN(5) == 0 {
		c = inos
	}
	return c[r.IntN(len(c))]
}

// someBlock returns a block of kind k, or 1.
func (im *Image) someBlock(r *rand.Rand, k Kind) uint64 {
	bs := im.ByKind(k)
	if len(bs) == 0 {
		return 1
	}
	return bs[r.IntN(len(bs))].Nr
}

// mutIbody damages the in-inode xattr area, if the inode has one.
func (im *Image) mutIbody(r *rand.Rand, rec []byte, p string) string {
	start := disk.GoodOldInodeSize + int(le16(rec[0x80:]))
	if start+4 > len(rec) || le32(rec[start:]) != 0xEA020000 {
		return ""
	}
	if r.IntN(6) == 0 {
		put32(rec[start:], 0xEA020001)
		return p + " ibody magic=0xea020001"
	}
	return im.mutXattrEntries(r, rec[start:], 4, p+" ibody")
}

// mutXattrEntries damages an entry of the table starting at first, or,
// for an xattr block (first 0x20), sometimes its header.
func (im *Image) mutXattrEntries(r *rand.Rand, b []byte, first int, p string) string {
	if first == 0x20 && r.IntN(5) == 0 {
		return applyField(r, b, []field{
			{"h_magic", 0, 4, []uint64{0, 0xEA020001}},
			{"h_refcount", 4, 4, []uint64{0, 0xFFFFFFFF}},
			{"h_blocks", 8, 4, []uint64{0, 2}},
		}, p)
	}
	var offs []int
	off := first
	for off+16 <= len(b) && le32(b[off:]) != 0 && len(offs) < 64 {
		offs = append(offs, off)
		off += (16 + int(b[off]) + 3) &^ 3
	}
	if len(offs) == 0 {
		return ""
	}
	if r.IntN(8) == 0 && off+4 <= len(b) {
		put32(b[off:], 0xFFFFFFFF) // the terminating zero word
		return p + " entry terminator=0xffffffff"
	}
	i := r.IntN(len(offs))
	e := b[offs[i]:]
	vo, vs := uint64(le16(e[2:])), uint64(le32(e[8:]))
	return applyField(r, e, []field{
		{"e_name_len", 0, 1, []uint64{0, 255, uint64(e[0]) + 1}},
		{"e_name_index", 1, 1, []uint64{0, 3, 7, 8, 255}},
		{"e_value_offs", 2, 2, []uint64{0, 1, vo + 1, uint64(len(b) - 1), 0xFFFF, uint64(first)}},
		{"e_value_inum", 4, 4, []uint64{2, 11, 0xFFFFFFFF, uint64(im.SB.InodesCount)}},
		{"e_value_size", 8, 4, []uint64{0, vs + 1, uint64(len(b)), 65537, 0xFFFFFFFF}},
		{"e_hash", 12, 4, []uint64{0, 0xFFFFFFFF}},
	}, fmt.Sprintf("%s entry %d", p, i))
}

// mutExtentNode damages an extent tree node (a block, or the 60-byte root
// in i_block) whose own block is self.
func (im *Image) mutExtentNode(r *rand.Rand, n []byte, self uint64) string {
	entries, maxE, depth := int(le16(n[2:])), int(le16(n[4:])), le16(n[6:])
	if r.IntN(3) == 0 || entries == 0 {
		return applyField(r, n, []field{
			{"eh_magic", 0, 2, []uint64{0, 0xF30B}},
			{"eh_entries", 2, 2, []uint64{0, uint64(maxE) + 1, 0xFFFF, uint64(entries) + 1}},
			{"eh_max", 4, 2, []uint64{0, uint64(max(entries, 1)) - 1, 0xFFFF, uint64(len(n)-12)/12 + 1}},
			{"eh_depth", 6, 2, []uint64{uint64(depth) + 1, uint64(max(depth, 1)) - 1, 5, 0xFFFF}},
		}, "extent header")
	}
	entries = min(entries, (len(n)-12)/12)
	i := r.IntN(entries)
	e := n[12+12*i : 24+12*i]
	if entries > 1 && r.IntN(6) == 0 {
		j := (i + 1) % entries
		other := n[12+12*j : 24+12*j]
		if r.IntN(2) == 0 {
			copy(other, e)
			return fmt.Sprintf("extent entry %d duplicated into %d", i, j)
		}
		var tmp [12]byte
		copy(tmp[:], e)
		copy(e, other)
		copy(other, tmp[:])
		return fmt.Sprintf("extent entries %d and %d swapped", i, j)
	}
	nb := im.nblocks()
	if depth > 0 {
		leaf := uint64(le32(e[4:])) | uint64(le16(e[8:]))<<32
		return applyField(r, e, []field{
			{"ei_block", 0, 4, []uint64{0, 0xFFFFFFFF, uint64(le32(e)) + 1}},
			{"ei_leaf_lo", 4, 4, []uint64{0, 1, self, nb - 1, nb, 0xFFFFFFFF, leaf + 1, uint64(im.SB.FirstDataBlock)}},
			{"ei_leaf_hi", 8, 2, []uint64{1, 0xFFFF}},
		}, fmt.Sprintf("extent index %d", i))
	}
	return applyField(r, e, []field{
		{"ee_block", 0, 4, []uint64{0, 0xFFFFFFFF, uint64(le32(e)) + 1, 0xFFFFFFF0}},
		{"ee_len", 4, 2, []uint64{0, 0x8000, 0x8001, 0xFFFF, uint64(le16(e[4:])) + 1000}},
		{"ee_start_hi", 6, 2, []uint64{1, 0xFFFF}},
		{"ee_start_lo", 8, 4, []uint64{0, 1, self, nb - 1, nb, 0xFFFFFFFF}},
	}, fmt.Sprintf("extent %d", i))
}

func (im *Image) mutIndirect(r *rand.Rand, m *Mutation) string {
	b := m.New
	var nonzero []int
	for i := 0; i+4 <= len(b); i += 4 {
		if le32(b[i:]) != 0 {
			nonzero = append(nonzero, i/4)
		}
	}
	if len(nonzero) == 0 {
		return ""
	}
	if r.IntN(6) == 0 {
		v := le32(b[4*nonzero[0]:])
		for _, i := range nonzero {
			put32(b[4*i:], v)
		}
		return fmt.Sprintf("indirect: every pointer=%d", v)
	}
	i := nonzero[r.IntN(len(nonzero))]
	nb := im.nblocks()
	v := pick(r, nb, nb-1, 0xFFFFFFFF, 1, m.Block.Nr, uint64(im.SB.FirstDataBlock), im.someBlock(r, KindIndirect))
	put32(b[4*i:], uint32(v))
	return fmt.Sprintf("indirect[%d]=%#x", i, v)
}

// dirents returns the offsets of the entries of a directory block, up to
// the first malformed one.
func (im *Image) dirents(b []byte, start int) []int {
	var offs []int
	off := start
	for off+8 <= len(b) && len(offs) < 4096 {
		rl := disk.RecLenFromDisk(le16(b[off+4:]), im.BlockSize)
		if rl < 8 || off+rl > len(b) {
			break
		}
		offs = append(offs, off)
		off += rl
	}
	return offs
}

func (im *Image) mutDirLeaf(r *rand.Rand, m *Mutation) string {
	b := m.New
	offs := im.dirents(b, 0)
	if len(offs) == 0 {
		return ""
	}
	i := r.IntN(len(offs))
	e := b[offs[i]:]
	rl := uint64(le16(e[4:]))
	self := uint64(0)
	if len(m.Block.Owners) > 0 {
		self = uint64(m.Block.Owners[0])
	}
	return applyField(r, e, []field{
		{"rec_len", 4, 2, []uint64{0, 1, 5, 6, 8, rl + 4, max(rl, 16) - 4, uint64(im.BlockSize), 0xFFFF, 12}},
		{"name_len", 6, 1, []uint64{0, 255, uint64(max(rl, 8)) - 7, uint64(e[6]) + 1}},
		{"inode", 0, 4, []uint64{0, 1, 2, 7, 8, self, uint64(im.SB.InodesCount), uint64(im.SB.InodesCount) + 1,
			0xFFFFFFFF, im.unusedInode(), im.someInode(r, "directory"), im.someInode(r, "regular")}},
		{"file_type", 7, 1, []uint64{0, 1, 2, 7, 8, 0xFF}},
		{"name[0]", 8, 1, []uint64{'/', 0}},
	}, fmt.Sprintf("dirent %d", i))
}

// unusedInode returns an inode number that is not in use.
func (im *Image) unusedInode() uint64 {
	for ino := im.SB.FirstInode(); ino < im.SB.InodesCount; ino++ {
		if im.Inodes[ino] == nil {
			return uint64(ino)
		}
	}
	return uint64(im.SB.InodesCount)
}

// someInode returns a used inode of debugfs type typ (or the root).
func (im *Image) someInode(r *rand.Rand, typ string) uint64 {
	var c []uint32
	for ino, in := range im.Inodes {
		if in.Type == typ {
			c = append(c, ino)
		}
	}
	if len(c) == 0 {
		return 2
	}
	slices.Sort(c) // map order is random; the choice must not be
	return uint64(c[r.IntN(len(c))])
}

func (im *Image) mutDx(r *rand.Rand, m *Mutation) string {
	b := m.New
	cl := 8 // count/limit offset in a dx node
	what := "dx node"
	if m.Block.Kind == KindDxRoot {
		what = "dx root"
		cl = 0x18 + int(b[0x1D])
		if cl+8 > len(b) || r.IntN(3) == 0 {
			return applyField(r, b, []field{
				{"dot.rec_len", 4, 2, []uint64{0, 8, uint64(im.BlockSize)}},
				{"dotdot.rec_len", 0x10, 2, []uint64{0, 12, uint64(im.BlockSize) - 8}},
				{"reserved_zero", 0x18, 4, []uint64{1}},
				{"hash_version", 0x1C, 1, []uint64{0, 1, 2, 3, 4, 5, 6, 0xFF}},
				{"info_length", 0x1D, 1, []uint64{0, 4, 0xFF}},
				{"indirect_levels", 0x1E, 1, []uint64{0, 1, 2, 3, 0xFF}},
				{"unused_flags", 0x1F, 1, []uint64{1}},
			}, what)
		}
	}
	limit, count := int(le16(b[cl:])), int(le16(b[cl+2:]))
	if r.IntN(3) == 0 || count == 0 {
		return applyField(r, b, []field{
			{"limit", cl, 2, []uint64{0, uint64(max(count, 1)) - 1, uint64(limit) + 1, 0xFFFF}},
			{"count", cl + 2, 2, []uint64{0, uint64(limit) + 1, 0xFFFF, uint64(count) + 1}},
		}, what)
	}
	count = min(count, (len(b)-cl)/8)
	i := r.IntN(count)
	e := b[cl+8*i:]
	if count > 1 && r.IntN(5) == 0 {
		j := 1 + r.IntN(count-1)
		copy(b[cl+8*j+4:cl+8*j+8], e[4:8])
		return fmt.Sprintf("%s entry %d block duplicated into %d", what, i, j)
	}
	// Entry 0 has no hash: its first word is count/limit.
	fs := []field{{"block", 4, 4, []uint64{0, m.Block.Lblk, uint64(le32(e[4:])) + 1, 0xFFFFFF, 0xFFFFFFFF,
		uint64(im.ownerSize(m.Block)/uint64(im.BlockSize)) + 1}}}
	if i > 0 {
		fs = append(fs, field{"hash", 0, 4, []uint64{0, 1, 0xFFFFFFFE, uint64(le32(e)) ^ 0x80000000}})
	}
	return applyField(r, e, fs, fmt.Sprintf("%s entry %d", what, i))
}

// fixChecksum recomputes the checksum of the structure m damaged, where
// the filesystem has one, and says which; "" if none was set.
func (im *Image) fixChecksum(m *Mutation) string {
	csum := im.SB.HasMetadataCsum()
	b := m.New
	seedOf := func() uint32 {
		ino := m.Block.Owners[0]
		gen := uint32(0)
		if in := im.Inodes[ino]; in != nil {
			gen = in.Generation
		}
		return disk.InodeCsumSeed(im.Seed, ino, gen)
	}
	switch m.Block.Kind {
	case KindSuperblock:
		sb := b[im.sbOffset(m.Block.Nr):]
		if le32(sb[0x64:])&uint32(disk.RoCompatMetadataCsum) == 0 {
			return ""
		}
		put32(sb[0x3FC:], crc.Crc32c(^uint32(0), sb[:0x3FC]))
		return "sb csum"
	case KindGDT:
		if !csum && !im.SB.HasGdtCsum() {
			return ""
		}
		ds := im.descSize()
		n := min(uint32(im.BlockSize/ds), im.groupCount()-m.Block.Group)
		for i := range n {
			rec := b[int(i)*ds : int(i+1)*ds]
			if string(rec) != string(m.Old[int(i)*ds:int(i+1)*ds]) {
				disk.SetGroupDescChecksum(im.SB, im.Seed, m.Block.Group+i, rec)
			}
		}
		return "gd csum"
	case KindInodeTable:
		if !csum {
			return ""
		}
		isize := im.SB.InodeSize()
		for _, ino := range m.Block.Owners {
			off := im.recordOffset(ino)
			if string(b[off:off+isize]) != string(m.Old[off:off+isize]) {
				if disk.SetInodeChecksum(im.Seed, ino, b[off:off+isize]) != nil {
					return ""
				}
			}
		}
		return "inode csum"
	}
	if !csum || len(m.Block.Owners) == 0 {
		return ""
	}
	switch m.Block.Kind {
	case KindExtentBlock:
		if disk.SetExtentBlockChecksum(seedOf(), b) == nil {
			return "extent csum"
		}
	case KindDirLeaf:
		if disk.SetDirBlockChecksum(seedOf(), b) == nil {
			return "dir csum"
		}
	case KindDxRoot, KindDxNode:
		if disk.SetDxChecksum(seedOf(), b) == nil {
			return "dx csum"
		}
	case KindXattrBlock:
		disk.SetXattrBlockChecksum(im.Seed, m.Block.Nr, b)
		return "xattr csum"
	}
	return ""
}

// Affected says which inodes m may legitimately break: every one (all),
// or those for which affected returns true. A damaged inode record breaks
// that inode; a damaged group descriptor the inodes of its group; a block
// owned by inodes (extent, indirect, directory, xattr, symlink blocks)
// those inodes; the superblock everything; bitmaps nothing, since reading
// never consults them.
func (im *Image) Affected(m *Mutation) (all bool, affected func(ino uint32) bool) {
	none := func(uint32) bool { return false }
	if !m.Changed() {
		return false, none
	}
	ipg := im.SB.InodesPerGroup
	switch m.Block.Kind {
	case KindSuperblock:
		lo := im.sbOffset(m.Block.Nr)
		m.changed(func(off int) {
			if off >= lo && off < lo+disk.SuperblockSize {
				all = true
			}
		})
		return all, none
	case KindGDT:
		groups := map[uint32]bool{}
		ds := im.descSize()
		m.changed(func(off int) { groups[m.Block.Group+uint32(off/ds)] = true })
		return false, func(ino uint32) bool { return ino > 0 && groups[(ino-1)/ipg] }
	case KindBlockBitmap, KindInodeBitmap:
		return false, none
	case KindInodeTable:
		inos := map[uint32]bool{}
		isize := im.SB.InodeSize()
		first := m.Block.Group*ipg + 1 + uint32((m.Block.Nr-im.itable[m.Block.Group])*uint64(im.BlockSize)/uint64(isize))
		m.changed(func(off int) { inos[first+uint32(off/isize)] = true })
		return false, func(ino uint32) bool { return inos[ino] }
	}
	owners := map[uint32]bool{}
	for _, o := range m.Block.Owners {
		owners[o] = true
	}
	return false, func(ino uint32) bool { return owners[ino] }
}

// Describe summarises the scan, e.g. for a test log.
func (im *Image) Describe() string {
	var parts []string
	c := im.Count()
	for _, k := range Kinds {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, c[k]))
		}
	}
	return fmt.Sprintf("%d-byte blocks, %d used inodes; %s", im.BlockSize, len(im.Inodes), strings.Join(parts, " "))
}
