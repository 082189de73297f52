package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/disk"
)

// Extended attribute writes, after fs/ext4/xattr.c.
//
// An inode's attributes live in two regions: the in-inode area after
// i_extra_isize ("ibody") and one xattr block (i_file_acl), which several
// inodes may share. Like the kernel, a set tries the ibody first and falls
// back to the block, and an attribute lives in only one of them. Each
// change decodes the region into items, edits the list and re-encodes the
// whole region: entries in list order from the front, values packed from
// the end in 4-byte units, and for the block the kernel's sorted entry
// order, entry hashes and ext4_xattr_rehash's h_hash. The block's
// checksum is set at commit. Values in EA inodes (ea_inode) are kept as
// found, never created (a value that fits neither region is ENOSPC), and
// such attributes cannot be replaced or removed (EOPNOTSUPP).

// setxattr(2) flags.
const (
	XattrCreate  = 0x1 // XATTR_CREATE: fail with EEXIST if the attribute exists
	XattrReplace = 0x2 // XATTR_REPLACE: fail with ENODATA if it does not
)

// xattrNameMax is XATTR_NAME_MAX, the longest full attribute name.
const xattrNameMax = 255

// xattrItem is one attribute of a region being rebuilt.
type xattrItem struct {
	index uint8
	name  []byte
	value []byte // stored in the region when inum == 0
	inum  uint32 // EA inode holding the value (ea_inode), kept as found
	size  uint32 // e_value_size when inum != 0
	hash  uint32 // e_hash when inum != 0
}

// itemsOf copies decoded entries (which alias a buffer) into items.
func itemsOf(es []disk.XattrEntry) []xattrItem {
	items := make([]xattrItem, len(es))
	for i, e := range es {
		items[i] = xattrItem{index: e.NameIndex, name: bytes.Clone(e.Name), inum: e.ValueInum}
		if e.ValueInum != 0 {
			items[i].size, items[i].hash = e.ValueSize, e.Hash
		} else {
			items[i].value = bytes.Clone(e.Value)
		}
	}
	return items
}

// space is the room the item takes in a region: its entry and its padded
// value.
func (it *xattrItem) space() int {
	n := disk.XattrEntryLen(len(it.name))
	if it.inum == 0 {
		n += disk.XattrValueLen(len(it.value))
	}
	return n
}

func (it *xattrItem) is(index uint8, name []byte) bool {
	return it.index == index && bytes.Equal(it.name, name)
}

// findItem returns the position of (index, name) in items, or -1.
func findItem(items []xattrItem, index uint8, name []byte) int {
	for i := range items {
		if items[i].is(index, name) {
			return i
		}
	}
	return -1
}

// itemsSpace is the room a list of items takes, plus the 4-byte
// terminator after the last entry.
func itemsSpace(items []xattrItem) int {
	n := 4
	for i := range items {
		n += items[i].space()
	}
	return n
}

// xattrKeyLess orders block entries as the kernel's sorted search does:
// by name index, then name length, then name bytes.
func xattrKeyLess(a *xattrItem, index uint8, name []byte) bool {
	if a.index != index {
		return a.index < index
	}
	if len(a.name) != len(name) {
		return len(a.name) < len(name)
	}
	return bytes.Compare(a.name, name) < 0
}

// withItem returns items with it set: replaced where it was, otherwise
// inserted (sorted: before the first entry not below it, as
// ext4_xattr_find_entry places a new name in a block; unsorted: at the
// end, as in the inode body).
func withItem(items []xattrItem, it xattrItem, sorted bool) []xattrItem {
	out := append([]xattrItem(nil), items...)
	if i := findItem(out, it.index, it.name); i >= 0 {
		out[i] = it
		return out
	}
	at := len(out)
	if sorted {
		for i := range out {
			if !xattrKeyLess(&out[i], it.index, it.name) {
				at = i
				break
			}
		}
	}
	return append(out[:at], append([]xattrItem{it}, out[at:]...)...)
}

// withoutItem returns items without the entry at i.
func withoutItem(items []xattrItem, i int) []xattrItem {
	out := append([]xattrItem(nil), items[:i]...)
	return append(out, items[i+1:]...)
}

// encodeXattrItems writes the entries of items into buf from first on, the
// values packed down from the end of buf, and the terminator; e_value_offs
// are relative to valueBase. buf[first:] is cleared first. The caller has
// checked that the items fit. It returns the entries as written (for the
// block hash). Entry hashes are computed for a block only: the kernel
// leaves e_hash 0 in the inode body, which e2fsck accepts.
func encodeXattrItems(buf []byte, first, valueBase int, items []xattrItem, block bool) []disk.XattrEntry {
	clear(buf[first:])
	es := make([]disk.XattrEntry, len(items))
	off, end := first, len(buf)
	for i := range items {
		it := &items[i]
		e := disk.XattrEntry{NameIndex: it.index, Name: it.name, ValueInum: it.inum}
		if it.inum != 0 {
			e.ValueSize, e.Hash = it.size, it.hash
		} else {
			e.ValueSize = uint32(len(it.value))
			if len(it.value) > 0 {
				end -= disk.XattrValueLen(len(it.value))
				copy(buf[end:], it.value)
				e.ValueOffs = uint16(end - valueBase)
			}
			if block {
				e.Hash = disk.XattrEntryHash(it.name, it.value)
			}
		}
		disk.EncodeXattrEntry(buf, off, &e)
		off += disk.XattrEntryLen(len(it.name))
		es[i] = e
	}
	return es
}

// ibodyRegion returns the in-inode attribute area of r (from 128 +
// i_extra_isize to the end of the record), or nil when the inode has no
// room for attributes (EXT4_INODE_HAS_XATTR_SPACE).
//
// A large inode with i_extra_isize 0 (old images) first gets the kernel's
// default, as ext4_iget does in memory before any write-back: the kernel
// looks for attributes only after a non-zero i_extra_isize. Attributes
// some other tool already put at offset 128 stay where they are.
func (fs *FS) ibodyRegion(r *inodeRef) []byte {
	if r.Raw.ExtraIsize == 0 && len(r.Rec) >= disk.GoodOldInodeSize+defaultExtraIsize+disk.XattrIbodyHeaderLen+4 &&
		binary.LittleEndian.Uint32(r.Rec[disk.GoodOldInodeSize:]) != disk.XattrMagic {
		r.Raw.ExtraIsize = defaultExtraIsize
	}
	start := disk.GoodOldInodeSize + int(r.Raw.ExtraIsize)
	if len(r.Rec) <= disk.GoodOldInodeSize || start+disk.XattrIbodyHeaderLen+4 > len(r.Rec) {
		return nil
	}
	return r.Rec[start:]
}

// ibodyItemsLocked decodes r's in-inode attributes.
func (fs *FS) ibodyItemsLocked(r *inodeRef) ([]xattrItem, error) {
	region := fs.ibodyRegion(r)
	if region == nil {
		return nil, nil
	}
	es, err := disk.DecodeXattrIbody(region)
	if err != nil {
		return nil, fs.corrupt("in-inode xattrs", r.Ino, 0, err)
	}
	return itemsOf(es), nil
}

// ibodyFits reports whether items fit r's in-inode area.
func (fs *FS) ibodyFits(r *inodeRef, items []xattrItem) bool {
	region := fs.ibodyRegion(r)
	return region != nil && disk.XattrIbodyHeaderLen+itemsSpace(items) <= len(region)
}

// writeIbodyLocked stores items as r's in-inode attributes. An empty list
// clears the area, magic included, as ext4_xattr_ibody_set does. The
// caller has checked ibodyFits.
func (tx *Tx) writeIbodyLocked(r *inodeRef, items []xattrItem) {
	region := tx.fs.ibodyRegion(r)
	if region == nil {
		return
	}
	if len(items) == 0 {
		clear(region)
	} else {
		binary.LittleEndian.PutUint32(region, disk.XattrMagic)
		encodeXattrItems(region, disk.XattrIbodyHeaderLen, disk.XattrIbodyHeaderLen, items, false)
	}
	tx.dirtyInodeLocked(r)
}

// blockItemsLocked reads and verifies r's xattr block. It returns the
// block's items and header; no block is (nil, nil header, nil).
func (tx *Tx) blockItemsLocked(r *inodeRef) ([]xattrItem, *disk.XattrHeader, error) {
	fs := tx.fs
	blk := PBlk(r.Raw.FileACL())
	if blk == 0 {
		return nil, nil, nil
	}
	b, err := tx.xattrBufLocked(r, blk)
	if err != nil {
		return nil, nil, err
	}
	h, es, err := disk.DecodeXattrBlock(b.Data)
	if err != nil {
		return nil, nil, fs.corrupt("xattr block", r.Ino, blk, err)
	}
	if h.Refcount == 0 {
		return nil, nil, fs.corruptf("xattr block", r.Ino, blk, "h_refcount 0")
	}
	return itemsOf(es), &h, nil
}

// xattrBufLocked returns xattr block blk of r, its checksum verified
// unless it was already changed in this transaction (then its checksum is
// set only at commit).
func (tx *Tx) xattrBufLocked(r *inodeRef, blk PBlk) (*bcache.Buf, error) {
	fs := tx.fs
	b, err := tx.getBlockLocked(blk, "xattr block", r.Ino)
	if err != nil {
		return nil, err
	}
	if fs.csum && !tx.changedLocked(b) {
		if err := disk.VerifyXattrBlockChecksum(fs.seed, uint64(blk), b.Data); err != nil {
			return nil, fs.corrupt("xattr block", r.Ino, blk, err)
		}
	}
	return b, nil
}

// blockFits reports whether items fit an xattr block.
func (fs *FS) blockFits(items []xattrItem) bool {
	return disk.XattrHeaderSize+itemsSpace(items) <= fs.bsize
}

// xattrCsum is the commit-time checksum setter of xattr block blk.
func (fs *FS) xattrCsum(blk PBlk) func([]byte) {
	if !fs.csum {
		return nil
	}
	return func(data []byte) { disk.SetXattrBlockChecksum(fs.seed, uint64(blk), data) }
}

// encodeXattrBlock formats data as an xattr block holding items.
func encodeXattrBlock(data []byte, refcount uint32, items []xattrItem) {
	es := encodeXattrItems(data, disk.XattrHeaderSize, 0, items, true)
	h := disk.XattrHeader{Magic: disk.XattrMagic, Refcount: refcount, Blocks: 1, Hash: disk.XattrBlockHash(es)}
	h.Encode(data)
}

// writeXattrBlockLocked makes items r's xattr block contents
// (ext4_xattr_block_set): no items release the block; a block only r uses
// is rewritten in place; a shared block (h_refcount > 1) is copied on
// write: r gets a new block and the old one loses a reference. The
// caller has checked blockFits.
func (tx *Tx) writeXattrBlockLocked(r *inodeRef, items []xattrItem, h *disk.XattrHeader) error {
	fs := tx.fs
	old := PBlk(r.Raw.FileACL())
	if len(items) == 0 {
		return tx.releaseXattrBlockLocked(r)
	}
	if old != 0 && h != nil && h.Refcount == 1 {
		b, err := tx.xattrBufLocked(r, old)
		if err != nil {
			return err
		}
		encodeXattrBlock(b.Data, 1, items)
		tx.dirtyLocked(b, fs.xattrCsum(old))
		return nil
	}
	// A new block, near the start of the inode's group like the kernel's
	// goal for xattr blocks.
	goal := PBlk(uint64(fs.inodeGroup(r.Ino))*uint64(fs.bpg) + uint64(fs.geo.FirstDataBlock))
	blk, _, err := tx.allocBlocksLocked(goal, 1, r.Ino)
	if err != nil {
		return err
	}
	b, err := tx.newBlockLocked(blk, "xattr block", r.Ino)
	if err != nil {
		return err
	}
	encodeXattrBlock(b.Data, 1, items)
	tx.dirtyLocked(b, fs.xattrCsum(blk))
	if old != 0 {
		if err := tx.releaseXattrBlockLocked(r); err != nil {
			return err
		}
	}
	r.Raw.SetFileACL(uint64(blk))
	if err := tx.addBlocksLocked(r, 1); err != nil {
		return err
	}
	tx.setExtAttrFeatureLocked()
	tx.dirtyInodeLocked(r)
	return nil
}

// setExtAttrFeatureLocked records that the filesystem holds extended
// attributes (ext4_xattr_update_super_block).
func (tx *Tx) setExtAttrFeatureLocked() {
	sb := tx.fs.sb
	if !sb.HasCompat(disk.CompatExtAttr) {
		sb.FeatureCompat |= disk.CompatExtAttr
		tx.sbDirty = true
	}
}

// xattrState is an inode's attributes loaded for a change.
type xattrState struct {
	ibody  []xattrItem
	block  []xattrItem
	header *disk.XattrHeader // nil without a block
}

func (tx *Tx) loadXattrsLocked(r *inodeRef) (*xattrState, error) {
	ib, err := tx.fs.ibodyItemsLocked(r)
	if err != nil {
		return nil, err
	}
	bl, h, err := tx.blockItemsLocked(r)
	if err != nil {
		return nil, err
	}
	return &xattrState{ibody: ib, block: bl, header: h}, nil
}

// setXattrLocked sets attribute (index, name) of r to value, or removes it
// when value is nil, with the placement and flag rules of
// ext4_xattr_set_handle: ENODATA when removing an absent attribute with
// XattrReplace (removexattr passes it) and when replacing one that does
// not exist, EEXIST when creating one that does, ENOSPC when the value
// fits neither the inode nor a block. A set to the same value changes
// nothing. On a change ctime is updated and r dirtied.
func (tx *Tx) setXattrLocked(r *inodeRef, index uint8, name, value []byte, flags int) error {
	fs := tx.fs
	if len(name) > xattrNameMax {
		return syscall.ERANGE
	}
	st, err := tx.loadXattrsLocked(r)
	if err != nil {
		return err
	}
	ii, bi := findItem(st.ibody, index, name), findItem(st.block, index, name)
	switch {
	case ii < 0 && bi < 0:
		if flags&XattrReplace != 0 {
			return syscall.ENODATA
		}
		if value == nil {
			return nil
		}
	case flags&XattrCreate != 0:
		return syscall.EEXIST
	case ii >= 0 && st.ibody[ii].inum != 0, bi >= 0 && st.block[bi].inum != 0:
		// Dropping the value would need the EA inode's reference count
		// updated (and the inode freed at zero), which is not done here.
		return syscall.EOPNOTSUPP
	}
	switch {
	case value == nil && ii >= 0:
		tx.writeIbodyLocked(r, withoutItem(st.ibody, ii))
	case value == nil:
		if err := tx.writeXattrBlockLocked(r, withoutItem(st.block, bi), st.header); err != nil {
			return err
		}
	case ii >= 0 && st.ibody[ii].inum == 0 && bytes.Equal(st.ibody[ii].value, value),
		bi >= 0 && st.block[bi].inum == 0 && bytes.Equal(st.block[bi].value, value):
		return nil // unchanged: the kernel skips the update, ctime included
	default:
		it := xattrItem{index: index, name: bytes.Clone(name), value: bytes.Clone(value)}
		if ib := withItem(st.ibody, it, false); fs.ibodyFits(r, ib) {
			tx.writeIbodyLocked(r, ib)
			if bi >= 0 {
				if err := tx.writeXattrBlockLocked(r, withoutItem(st.block, bi), st.header); err != nil {
					return err
				}
			}
			break
		}
		bl := withItem(st.block, it, true)
		if !fs.blockFits(bl) {
			return syscall.ENOSPC
		}
		if err := tx.writeXattrBlockLocked(r, bl, st.header); err != nil {
			return err
		}
		if ii >= 0 {
			tx.writeIbodyLocked(r, withoutItem(st.ibody, ii))
		}
	}
	touch(r, false, true)
	tx.dirtyInodeLocked(r)
	return nil
}

// parseXattrName maps a full attribute name to the name index and stored
// suffix of a namespace ext4 lets users set: user., trusted., security.
// and the two POSIX ACL names. As the VFS and ext4: a name longer than
// XATTR_NAME_MAX (or empty) is ERANGE, a bare prefix EINVAL, and other
// namespaces (system.data included) EOPNOTSUPP.
func parseXattrName(full string) (uint8, []byte, error) {
	if len(full) == 0 || len(full) > xattrNameMax {
		return 0, nil, syscall.ERANGE
	}
	switch full {
	case disk.XattrNamePosixACLAccess:
		return disk.XattrIndexPosixACLAccess, []byte{}, nil
	case disk.XattrNamePosixACLDefault:
		return disk.XattrIndexPosixACLDefault, []byte{}, nil
	}
	for _, ns := range []struct {
		prefix string
		index  uint8
	}{{"user.", disk.XattrIndexUser}, {"trusted.", disk.XattrIndexTrusted}, {"security.", disk.XattrIndexSecurity}} {
		if len(full) >= len(ns.prefix) && full[:len(ns.prefix)] == ns.prefix {
			if len(full) == len(ns.prefix) {
				return 0, nil, syscall.EINVAL
			}
			return ns.index, []byte(full[len(ns.prefix):]), nil
		}
	}
	return 0, nil, syscall.EOPNOTSUPP
}

func isACLIndex(index uint8) bool {
	return index == disk.XattrIndexPosixACLAccess || index == disk.XattrIndexPosixACLDefault
}

// SetXattr sets attribute name of inode ino to value, as setxattr(2) on
// ext4: flags XattrCreate/XattrReplace (EEXIST/ENODATA), ERANGE for names
// over 255 bytes, E2BIG for values over 64 KiB, ENOSPC when the value fits
// neither the inode nor an xattr block. POSIX ACLs are taken in the
// kernel's xattr format (version 2), validated (EINVAL) and stored in
// ext4's format; see setACLLocked for their effect on the mode. Access
// control (trusted.*, ownership) is the caller's.
func (fs *FS) SetXattr(ino Ino, name string, value []byte, flags int) error {
	if flags&^(XattrCreate|XattrReplace) != 0 {
		return syscall.EINVAL
	}
	index, suffix, err := parseXattrName(name)
	if err != nil {
		return err
	}
	if len(value) > xattrValueMax {
		return syscall.E2BIG
	}
	return fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if isACLIndex(index) {
			return tx.setACLLocked(r, index, value)
		}
		if value == nil {
			value = []byte{} // an empty value, not a removal
		}
		return tx.setXattrLocked(r, index, suffix, value, flags)
	})
}

// RemoveXattr removes attribute name of inode ino: ENODATA if absent,
// except for POSIX ACLs, whose removal succeeds either way (the kernel
// sets a NULL ACL).
func (fs *FS) RemoveXattr(ino Ino, name string) error {
	index, suffix, err := parseXattrName(name)
	if err != nil {
		return err
	}
	return fs.Update(func(tx *Tx) error {
		r, err := tx.inodeLocked(ino)
		if err != nil {
			return err
		}
		if isACLIndex(index) {
			return tx.setACLLocked(r, index, nil)
		}
		return tx.setXattrLocked(r, index, suffix, nil, XattrReplace)
	})
}

// errBadACL is a malformed or invalid POSIX ACL.
var errBadACL = fmt.Errorf("ext4: invalid POSIX ACL: %w", syscall.EINVAL)

// setACLLocked sets (or with a nil or empty value, removes) a POSIX ACL
// like the kernel's set_posix_acl and ext4_set_acl:
//   - the value is the xattr form; a header without entries is no ACL;
//     malformed or invalid ACLs (posix_acl_valid) are EINVAL;
//   - symlinks take no ACLs (EOPNOTSUPP), and only directories take a
//     default ACL (EACCES, but removing one succeeds);
//   - an access ACL sets the mode's permission bits (posix_acl_update_mode,
//     minus its set-group-ID clearing, which needs the caller's groups),
//     and one the mode fully expresses is stored as no ACL;
//   - setxattr's XATTR_CREATE/REPLACE flags do not apply (the VFS passes
//     none to set_acl).
func (tx *Tx) setACLLocked(r *inodeRef, index uint8, value []byte) error {
	if r.Raw.Mode&sIFMT == sIFLNK {
		return syscall.EOPNOTSUPP
	}
	var acl []disk.ACLEntry
	if len(value) > 0 {
		es, err := disk.DecodeXattrACL(value)
		if err != nil {
			return errBadACL // not corruption: the caller's value
		}
		if len(es) > 0 { // a header alone is no ACL
			if err := validACL(es); err != nil {
				return err
			}
			acl = es
		}
	}
	if index == disk.XattrIndexPosixACLDefault && r.Raw.Mode&sIFMT != sIFDIR {
		if acl != nil {
			return syscall.EACCES
		}
		return nil
	}
	modeChanged := false
	if index == disk.XattrIndexPosixACLAccess && acl != nil {
		mode, equiv := aclMode(acl, r.Raw.Mode)
		if equiv {
			acl = nil
		}
		if mode != r.Raw.Mode {
			r.Raw.Mode = mode
			modeChanged = true
		}
	}
	var stored []byte
	if acl != nil {
		stored = disk.EncodeExtACL(acl)
	}
	// The ACL path ignores XATTR_CREATE/REPLACE, as the kernel's set_acl.
	if err := tx.setXattrLocked(r, index, []byte{}, stored, 0); err != nil {
		return err
	}
	if modeChanged {
		touch(r, false, true)
		tx.dirtyInodeLocked(r)
	}
	return nil
}

// validACL is the kernel's posix_acl_valid: entries in the order
// USER_OBJ, USER..., GROUP_OBJ, GROUP..., MASK, OTHER, with exactly one of
// each *_OBJ and OTHER, a MASK when named entries exist, and ids mapped.
func validACL(es []disk.ACLEntry) error {
	const (
		stUserObj = iota
		stUser
		stGroup
		stOther
		stDone
	)
	state, needsMask := stUserObj, false
	for _, e := range es {
		if e.Perm&^7 != 0 {
			return errBadACL
		}
		switch {
		case e.Tag == disk.ACLUserObj && state == stUserObj:
			state = stUser
		case e.Tag == disk.ACLUser && state == stUser && e.ID != disk.ACLUndefinedID:
			needsMask = true
		case e.Tag == disk.ACLGroupObj && state == stUser:
			state = stGroup
		case e.Tag == disk.ACLGroup && state == stGroup && e.ID != disk.ACLUndefinedID:
			needsMask = true
		case e.Tag == disk.ACLMask && state == stGroup:
			state = stOther
		case e.Tag == disk.ACLOther && (state == stOther || state == stGroup && !needsMask):
			state = stDone
		default:
			return errBadACL
		}
	}
	if state != stDone {
		return errBadACL
	}
	return nil
}

// aclMode is posix_acl_equiv_mode: the mode with the permission bits an
// ACL implies (the mask standing for the group bits), and whether the ACL
// says no more than those bits.
func aclMode(es []disk.ACLEntry, mode uint16) (uint16, bool) {
	var perm uint16
	equiv := true
	for _, e := range es {
		p := e.Perm & 7
		switch e.Tag {
		case disk.ACLUserObj:
			perm |= p << 6
		case disk.ACLGroupObj:
			perm |= p << 3
		case disk.ACLOther:
			perm |= p
		case disk.ACLMask:
			perm = perm&^0o070 | p<<3
			equiv = false
		default:
			equiv = false
		}
	}
	return mode&^0o777 | perm, equiv
}
