package ext4

import (
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4/disk"
)

// Cred is the caller's filesystem identity (fsuid/fsgid) for new inodes
// and reserve checks: uid 0 may use the blocks s_r_blocks_count reserves.
type Cred struct{ Uid, Gid uint32 }

// inodeRef is a transaction's mutable working copy of an inode. Writers
// change Raw (never the first 128+i_extra_isize bytes of Rec, which commit
// re-encodes from Raw) and call dirtyInodeLocked; Rec beyond that is the
// in-inode xattr area, which xattr code edits in place. At commit Raw is
// encoded into Rec, the checksum is set and the record is copied into its
// inode table block.
type inodeRef struct {
	Ino Ino
	Raw disk.Inode
	Rec []byte // the full s_inode_size record

	// MayInline is set on inodes created in this transaction on an
	// inline_data filesystem: like the kernel's EXT4_STATE_MAY_INLINE_DATA,
	// their first data may be stored inline (the inline code decides).
	MayInline bool

	dirty bool
	fresh bool // allocated in this transaction
}

// inodeLocked returns the transaction's working copy of inode ino, the
// same *inodeRef for the same ino within a transaction. Unlike the read
// path it accepts inodes with no links (orphans being evicted); inodes
// never allocated (mode 0) are ESTALE.
func (tx *Tx) inodeLocked(ino Ino) (*inodeRef, error) {
	if r, ok := tx.inodes[ino]; ok {
		return r, nil
	}
	fs := tx.fs
	blk, off, err := tx.inodeLocLocked(ino)
	if err != nil {
		return nil, err
	}
	gr, err := tx.groupLocked(fs.inodeGroup(ino))
	if err != nil {
		return nil, err
	}
	if fs.gdtCsum && gr.d.Flags&disk.BgInodeUninit != 0 {
		return nil, syscall.ESTALE
	}
	b, err := tx.getBlockLocked(blk, "inode", ino)
	if err != nil {
		return nil, err
	}
	rec := append([]byte(nil), b.Data[off:off+fs.isize]...)
	if disk.InodeIsUnused(rec) {
		return nil, syscall.ESTALE
	}
	if fs.csum {
		if err := disk.VerifyInodeChecksum(fs.seed, uint32(ino), rec); err != nil {
			return nil, fs.corrupt("inode", ino, blk, err)
		}
	}
	r := &inodeRef{Ino: ino, Rec: rec}
	if err := r.Raw.Decode(rec); err != nil {
		return nil, fs.corrupt("inode", ino, blk, err)
	}
	if r.Raw.Mode == 0 {
		return nil, syscall.ESTALE
	}
	if r.Raw.Size() > 1<<63-1 {
		return nil, fs.corruptf("inode", ino, blk, "i_size %d negative", r.Raw.Size())
	}
	if err := fs.checkInodeFlags(fs.inodeSnapshot(r), blk); err != nil {
		return nil, err
	}
	tx.inodes[ino] = r
	return r, nil
}

// inodeGroup is the group holding inode ino.
func (fs *FS) inodeGroup(ino Ino) Group { return Group((uint32(ino) - 1) / fs.ipg) }

// inodeLocLocked locates inode ino's record using the transaction's view
// of its group descriptor.
func (tx *Tx) inodeLocLocked(ino Ino) (PBlk, int, error) {
	fs := tx.fs
	if ino == 0 || uint32(ino) > fs.geo.InodesCount {
		return 0, 0, syscall.ESTALE
	}
	gr, err := tx.groupLocked(fs.inodeGroup(ino))
	if err != nil {
		return 0, 0, err
	}
	table := PBlk(gr.d.InodeTable())
	if !fs.validBlockRange(table, fs.itableBlocks()) {
		return 0, 0, fs.corruptf("group descriptor", ino, 0, "group %d inode table at %d outside filesystem", gr.g, table)
	}
	byteOff := uint64((uint32(ino)-1)%fs.ipg) * uint64(fs.isize)
	return table + PBlk(byteOff>>fs.bshift), int(byteOff & uint64(fs.bsize-1)), nil
}

// dirtyInodeLocked schedules r for write-back at commit. It also refreshes
// the cached snapshot, so read-path helpers called later in the same
// transaction (fs.inodeLocked) see the change; call it again after
// further changes if such helpers are used.
func (tx *Tx) dirtyInodeLocked(r *inodeRef) {
	r.dirty = true
	tx.fs.icache.put(tx.fs.inodeSnapshot(r))
}

// inode returns a read-only snapshot of the working copy, for read-path
// helpers that take an *Inode.
func (r *inodeRef) inode(fs *FS) *Inode { return fs.inodeSnapshot(r) }

// inodeSnapshot decodes a working copy into an *Inode like readInode.
func (fs *FS) inodeSnapshot(r *inodeRef) *Inode {
	raw := &r.Raw
	in := &Inode{Ino: r.Ino, raw: r.Raw, rec: append([]byte(nil), r.Rec...)}
	raw.Encode(in.rec) // the snapshot's record reflects Raw
	in.Mode = raw.Mode
	in.Uid, in.Gid = raw.Uid(), raw.Gid()
	in.Size = raw.Size()
	in.Nlink = uint32(raw.LinksCount)
	in.Generation = raw.Generation
	in.Flags = uint32(raw.Flags)
	in.blocks512 = raw.Blocks512(fs.features.hugeFile, fs.bsize)
	in.Atime = unixTime(raw.Atime())
	in.Mtime = unixTime(raw.Mtime())
	in.Ctime = unixTime(raw.Ctime())
	if s, ns, ok := raw.Crtime(); ok {
		in.Crtime = time.Unix(s, int64(ns))
	}
	return in
}

// writeInodeLocked encodes r into its inode table block with its checksum.
func (tx *Tx) writeInodeLocked(r *inodeRef) error {
	fs := tx.fs
	blk, off, err := tx.inodeLocLocked(r.Ino)
	if err != nil {
		return err
	}
	b, err := tx.getBlockLocked(blk, "inode", r.Ino)
	if err != nil {
		return err
	}
	r.Raw.Encode(r.Rec)
	if fs.csum {
		if err := disk.SetInodeChecksum(fs.seed, uint32(r.Ino), r.Rec); err != nil {
			return err
		}
	}
	copy(b.Data[off:off+fs.isize], r.Rec)
	tx.dirtyLocked(b, nil)
	return nil
}

// csumSeed is the inode's seed for its extent, directory and htree block
// checksums.
func (fs *FS) csumSeedOf(r *inodeRef) uint32 {
	return disk.InodeCsumSeed(fs.seed, uint32(r.Ino), r.Raw.Generation)
}

// now is the current time, as inode timestamps take it.
func now() (int64, uint32) {
	t := time.Now()
	return t.Unix(), uint32(t.Nanosecond())
}

// touchLocked sets the given timestamps of r to now.
func touch(r *inodeRef, mtime, ctime bool) {
	s, ns := now()
	if mtime {
		r.Raw.SetMtime(s, ns)
	}
	if ctime {
		r.Raw.SetCtime(s, ns)
	}
}

// addBlocksLocked charges (or with a negative delta, credits) delta
// filesystem blocks to r's i_blocks, and marks r dirty.
func (tx *Tx) addBlocksLocked(r *inodeRef, delta int64) error {
	fs := tx.fs
	cur := r.Raw.Blocks512(fs.features.hugeFile, fs.bsize)
	d := delta << (fs.bshift - 9)
	v := int64(cur) + d
	if v < 0 {
		v = 0
	}
	if !r.Raw.SetBlocks512(uint64(v), fs.features.hugeFile, fs.bsize) {
		return syscall.EFBIG
	}
	tx.dirtyInodeLocked(r)
	return nil
}

// freeInodeLocked releases inode r: its data and mapping blocks, its
// reference on a shared xattr block, and (at the end of the commit) its
// bitmap bit. The record keeps its mode, gets i_dtime, and is written
// back. The caller has already taken it off the orphan list and out of
// every directory.
func (tx *Tx) freeInodeLocked(r *inodeRef) error {
	if tx.fs.refHasBlocks(r) {
		if err := tx.truncateBlocksLocked(r, 0); err != nil {
			return err
		}
	}
	if err := tx.releaseXattrBlockLocked(r); err != nil {
		return err
	}
	r.Raw.SetSize(0)
	r.Raw.LinksCount = 0
	s, _ := now()
	r.Raw.Dtime = uint32(s)
	tx.dirtyInodeLocked(r)
	tx.fs.icache.drop(r.Ino)
	tx.freeInodes = append(tx.freeInodes, freedInode{ino: r.Ino, dir: r.Raw.IsDir()})
	return nil
}

// refHasBlocks is hasBlocks for a working copy: whether i_block holds an
// extent tree or block map.
func (fs *FS) refHasBlocks(r *inodeRef) bool {
	if r.Raw.Flags&disk.InlineDataFL != 0 {
		return false
	}
	switch r.Raw.Mode & sIFMT {
	case sIFREG, sIFDIR:
		return true
	case sIFLNK:
		return !fs.refIsFastSymlink(r)
	}
	return false
}

// refIsFastSymlink mirrors isFastSymlink for a working copy.
func (fs *FS) refIsFastSymlink(r *inodeRef) bool {
	if r.Raw.Mode&sIFMT != sIFLNK {
		return false
	}
	if r.Raw.Flags&disk.EAInodeFL != 0 {
		return r.Raw.Size() > 0 && r.Raw.Size() < disk.InlineDataIBlockSize
	}
	var eaBlocks uint64
	if r.Raw.FileACL() != 0 {
		eaBlocks = uint64(fs.geo.ClusterSize() >> 9)
	}
	return r.Raw.Blocks512(fs.features.hugeFile, fs.bsize) == eaBlocks
}

// releaseXattrBlockLocked drops r's reference on its xattr block
// (i_file_acl): the block is freed with its last reference, otherwise its
// h_refcount is decremented. EA inodes referenced from the block are not
// released here (ea_inode).
func (tx *Tx) releaseXattrBlockLocked(r *inodeRef) error {
	fs := tx.fs
	blk := PBlk(r.Raw.FileACL())
	if blk == 0 {
		return nil
	}
	r.Raw.SetFileACL(0)
	if err := tx.addBlocksLocked(r, -1); err != nil {
		return err
	}
	b, err := tx.getBlockLocked(blk, "xattr block", r.Ino)
	if err != nil {
		return err
	}
	h, err := disk.DecodeXattrHeader(b.Data)
	if err != nil {
		return fs.corrupt("xattr block", r.Ino, blk, err)
	}
	if h.Refcount <= 1 {
		tx.freeBlocksLocked(blk, 1, r.Ino)
		return nil
	}
	h.Refcount--
	h.Encode(b.Data)
	tx.dirtyLocked(b, func(data []byte) {
		if fs.csum {
			disk.SetXattrBlockChecksum(fs.seed, uint64(blk), data)
		}
	})
	return nil
}
