package ext4

import (
	"bytes"
	"syscall"

	"github.com/e4box/e4box/ext4/disk"
)

// xattrValueMax is the largest value getxattr(2) can return (XATTR_SIZE_MAX).
const xattrValueMax = 64 << 10

// ibodyXattrs decodes the in-inode attribute area, after i_extra_isize.
// Entries alias in.rec, which is immutable.
func (fs *FS) ibodyXattrs(in *Inode) ([]disk.XattrEntry, error) {
	start := disk.GoodOldInodeSize + int(in.raw.ExtraIsize)
	if len(in.rec) <= disk.GoodOldInodeSize || start >= len(in.rec) {
		return nil, nil
	}
	es, err := disk.DecodeXattrIbody(in.rec[start:])
	if err != nil {
		return nil, fs.corrupt("in-inode xattrs", in.Ino, 0, err)
	}
	return es, nil
}

// blockXattrs reads and verifies the inode's xattr block (i_file_acl).
// Entries alias a private copy of the block.
func (fs *FS) blockXattrsLocked(in *Inode) ([]disk.XattrEntry, error) {
	blk := PBlk(in.raw.FileACL())
	if blk == 0 {
		return nil, nil
	}
	b, err := fs.readBlockLocked(blk, "xattr block", in.Ino)
	if err != nil {
		return nil, err
	}
	data := append([]byte(nil), b.Data...)
	fs.cache.Put(b)
	if fs.csum {
		if err := disk.VerifyXattrBlockChecksum(fs.seed, uint64(blk), data); err != nil {
			return nil, fs.corrupt("xattr block", in.Ino, blk, err)
		}
	}
	_, es, err := disk.DecodeXattrBlock(data)
	if err != nil {
		return nil, fs.corrupt("xattr block", in.Ino, blk, err)
	}
	return es, nil
}

// findXattr looks up (index, name): in the inode body first, then in the
// xattr block, as the kernel does.
func (fs *FS) findXattrLocked(in *Inode, index uint8, name []byte) (*disk.XattrEntry, error) {
	for _, src := range []func(*Inode) ([]disk.XattrEntry, error){fs.ibodyXattrs, fs.blockXattrsLocked} {
		es, err := src(in)
		if err != nil {
			return nil, err
		}
		for i := range es {
			if es[i].NameIndex == index && bytes.Equal(es[i].Name, name) {
				return &es[i], nil
			}
		}
	}
	return nil, nil
}

// xattrValue returns an entry's value, reading it from its EA inode when
// the value lives there (ea_inode feature).
func (fs *FS) xattrValueLocked(in *Inode, e *disk.XattrEntry) ([]byte, error) {
	if e.ValueInum == 0 {
		return append([]byte(nil), e.Value...), nil
	}
	if !fs.features.eaInode {
		return nil, fs.corruptf("xattr", in.Ino, 0, "value in inode %d without ea_inode feature", e.ValueInum)
	}
	if e.ValueSize > xattrValueMax {
		return nil, syscall.E2BIG
	}
	ea, err := fs.inodeLocked(Ino(e.ValueInum))
	if err != nil {
		if err == syscall.ESTALE {
			return nil, fs.corruptf("xattr", in.Ino, 0, "EA inode %d not in use", e.ValueInum)
		}
		return nil, err
	}
	if !ea.hasFlag(disk.EAInodeFL) || !ea.IsReg() || ea.Size != uint64(e.ValueSize) {
		return nil, fs.corruptf("xattr", in.Ino, 0, "EA inode %d: flags %#x mode %#o size %d, want EA_INODE file of %d bytes",
			ea.Ino, ea.Flags, ea.Mode, ea.Size, e.ValueSize)
	}
	v := make([]byte, e.ValueSize)
	if _, err := fs.readAtLocked(ea, v, 0); err != nil && len(v) > 0 {
		return nil, err
	}
	return v, nil
}

// visibleXattr reports whether the kernel exposes attributes of this name
// index through listxattr/getxattr. system.data (inline data) and the
// Lustre, richacl, encryption and Hurd indexes are not.
func visibleXattr(index uint8) bool {
	switch index {
	case disk.XattrIndexUser, disk.XattrIndexPosixACLAccess, disk.XattrIndexPosixACLDefault,
		disk.XattrIndexTrusted, disk.XattrIndexSecurity:
		return true
	}
	return false
}

// ListXattr returns the full names of the inode's attributes, in-inode
// ones first. Access control on namespaces (trusted.*) is the caller's.
func (fs *FS) ListXattr(ino Ino) ([]string, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, src := range []func(*Inode) ([]disk.XattrEntry, error){fs.ibodyXattrs, fs.blockXattrsLocked} {
		es, err := src(in)
		if err != nil {
			return nil, err
		}
		for i := range es {
			if !visibleXattr(es[i].NameIndex) {
				continue
			}
			n, ok := disk.XattrFullName(es[i].NameIndex, es[i].Name)
			if !ok {
				continue
			}
			// A damaged entry can make a name no getxattr finds (an ACL
			// index with a name, "user." alone): list only names that
			// lead back to it.
			if idx, _, ok := disk.XattrSplitName(n); !ok || idx != es[i].NameIndex {
				fs.corruptf("xattr", ino, 0, "entry name %q (index %d) cannot be looked up", es[i].Name, es[i].NameIndex)
				continue
			}
			names = append(names, n)
		}
	}
	return names, nil
}

// GetXattr returns the value of attribute name: ENODATA if absent,
// EOPNOTSUPP for a namespace ext4 does not expose. POSIX ACLs are returned
// in the kernel's xattr format (version 2), converted from ext4's on-disk
// form.
func (fs *FS) GetXattr(ino Ino, name string) ([]byte, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	in, err := fs.inodeLocked(ino)
	if err != nil {
		return nil, err
	}
	index, suffix, ok := disk.XattrSplitName(name)
	if !ok || !visibleXattr(index) {
		return nil, syscall.EOPNOTSUPP
	}
	e, err := fs.findXattrLocked(in, index, []byte(suffix))
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, syscall.ENODATA
	}
	v, err := fs.xattrValueLocked(in, e)
	if err != nil {
		return nil, err
	}
	if index == disk.XattrIndexPosixACLAccess || index == disk.XattrIndexPosixACLDefault {
		es, err := disk.DecodeExtACL(v)
		if err != nil {
			return nil, fs.corrupt("ACL", in.Ino, 0, err)
		}
		if len(es) == 0 {
			return nil, syscall.ENODATA // an empty ACL is no ACL, as in the kernel
		}
		return disk.EncodeXattrACL(es), nil
	}
	return v, nil
}

// inlineData returns the stored bytes of an inline_data inode: i_block
// followed by the system.data attribute's value, clipped to i_size.
func (fs *FS) inlineData(in *Inode) ([]byte, error) {
	es, err := fs.ibodyXattrs(in)
	if err != nil {
		return nil, err
	}
	var extra []byte
	found := false
	for i := range es {
		if es[i].NameIndex == disk.InlineDataXattrIndex && string(es[i].Name) == disk.InlineDataXattrName {
			if es[i].ValueInum != 0 {
				return nil, fs.corruptf("inline data", in.Ino, 0, "system.data stored in an EA inode")
			}
			extra, found = es[i].Value, true
			break
		}
	}
	if !found {
		// The kernel requires the attribute on every inline inode.
		return nil, fs.corruptf("inline data", in.Ino, 0, "no system.data attribute")
	}
	data := make([]byte, 0, disk.InlineDataIBlockSize+len(extra))
	data = append(append(data, in.raw.Block[:]...), extra...)
	if uint64(len(data)) > in.Size {
		data = data[:in.Size]
	}
	return data, nil
}
