package ext4

import (
	"container/list"
	"sync"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4/disk"
)

// Inode is a decoded, verified snapshot of an on-disk inode. Callers must
// treat it as read-only: it may be shared with other callers through the
// inode cache.
type Inode struct {
	Ino        Ino
	Mode       uint16 // including the S_IFMT file type bits
	Uid, Gid   uint32
	Size       uint64
	Nlink      uint32
	Atime      time.Time
	Mtime      time.Time
	Ctime      time.Time
	Crtime     time.Time // zero if the inode record has no creation time
	Generation uint32
	Flags      uint32 // i_flags (EXT4_*_FL)

	raw       disk.Inode
	rec       []byte // the full on-disk record, for in-inode xattrs
	blocks512 uint64
}

// Rdev returns the device number of a character or block special file in
// the kernel's new_encode_dev form (what stat(2) reports); 0 otherwise.
func (in *Inode) Rdev() uint32 {
	if t := in.Mode & sIFMT; t != sIFCHR && t != sIFBLK {
		return 0
	}
	return in.raw.Rdev()
}

// Blocks512 is st_blocks as the kernel's stat reports it: the 512-byte
// sectors charged to the inode (huge_file aware), plus, for inline-data
// regular files, the sectors their inline bytes would take, which the
// kernel's ext4_file_getattr adds so archivers do not take such files for
// entirely sparse ones.
func (in *Inode) Blocks512() uint64 {
	if in.IsReg() && in.hasFlag(disk.InlineDataFL) {
		return in.blocks512 + (in.Size+511)>>9
	}
	return in.blocks512
}

// IsDir reports a directory.
func (in *Inode) IsDir() bool { return in.Mode&sIFMT == sIFDIR }

// IsReg reports a regular file.
func (in *Inode) IsReg() bool { return in.Mode&sIFMT == sIFREG }

// IsSymlink reports a symbolic link.
func (in *Inode) IsSymlink() bool { return in.Mode&sIFMT == sIFLNK }

func (in *Inode) hasFlag(f disk.InodeFlags) bool { return in.raw.Flags&f != 0 }

// inodeCache keeps recently decoded inodes. Entries are immutable
// snapshots; the write path replaces or drops them under FS.mu held
// exclusively.
type inodeCache struct {
	mu  sync.Mutex // protects m and lru
	max int        // immutable after init
	m   map[Ino]*list.Element
	lru list.List // of *Inode, most recent at front
}

func (c *inodeCache) init(max int) {
	c.max = max
	c.m = make(map[Ino]*list.Element)
}

func (c *inodeCache) get(ino Ino) *Inode {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[ino]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*Inode)
}

func (c *inodeCache) put(in *Inode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[in.Ino]; ok {
		e.Value = in
		c.lru.MoveToFront(e)
		return
	}
	c.m[in.Ino] = c.lru.PushFront(in)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*Inode)
		delete(c.m, old.Ino)
	}
}

func (c *inodeCache) drop(ino Ino) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[ino]; ok {
		c.lru.Remove(e)
		delete(c.m, ino)
	}
}

func (c *inodeCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = make(map[Ino]*list.Element)
	c.lru.Init()
}

// Inode returns the verified inode ino. An inode number outside the
// filesystem, or one that is not in use, yields ESTALE (as the kernel's
// ext4_iget does for file handles).
func (fs *FS) Inode(ino Ino) (*Inode, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	return fs.inodeLocked(ino)
}

// inode is Inode for callers holding FS.mu.
func (fs *FS) inodeLocked(ino Ino) (*Inode, error) {
	if in := fs.icache.get(ino); in != nil {
		return in, nil
	}
	in, err := fs.readInodeLocked(ino)
	if err != nil {
		return nil, err
	}
	fs.icache.put(in)
	return in, nil
}

// inodeLocation returns the block holding inode ino and the record's byte
// offset in it, after checking the group descriptor.
func (fs *FS) inodeLocationLocked(ino Ino) (PBlk, int, error) {
	if ino == 0 || uint32(ino) > fs.geo.InodesCount {
		return 0, 0, syscall.ESTALE
	}
	g := Group((uint32(ino) - 1) / fs.ipg)
	idx := (uint32(ino) - 1) % fs.ipg
	d, err := fs.groupDescLocked(g)
	if err != nil {
		return 0, 0, err
	}
	if fs.gdtCsum && d.Flags&disk.BgInodeUninit != 0 {
		return 0, 0, syscall.ESTALE // no inode of this group was ever used
	}
	itBlocks := (uint64(fs.ipg)*uint64(fs.isize) + uint64(fs.bsize) - 1) >> fs.bshift
	table := PBlk(d.InodeTable())
	if !fs.validBlockRange(table, itBlocks) {
		return 0, 0, fs.corruptf("group descriptor", ino, 0, "group %d inode table at %d (+%d blocks) outside filesystem", g, table, itBlocks)
	}
	byteOff := uint64(idx) * uint64(fs.isize)
	return table + PBlk(byteOff>>fs.bshift), int(byteOff & uint64(fs.bsize-1)), nil
}

// readInode reads, verifies and decodes inode ino from the inode table.
func (fs *FS) readInodeLocked(ino Ino) (*Inode, error) {
	blk, off, err := fs.inodeLocationLocked(ino)
	if err != nil {
		return nil, err
	}
	b, err := fs.readBlockLocked(blk, "inode", ino)
	if err != nil {
		return nil, err
	}
	rec := append([]byte(nil), b.Data[off:off+fs.isize]...)
	fs.cache.Put(b)

	if fs.csum {
		if disk.InodeIsUnused(rec) {
			return nil, syscall.ESTALE
		}
		if err := disk.VerifyInodeChecksum(fs.seed, uint32(ino), rec); err != nil {
			return nil, fs.corrupt("inode", ino, blk, err)
		}
	}
	in := &Inode{Ino: ino, rec: rec}
	if err := in.raw.Decode(rec); err != nil {
		return nil, fs.corrupt("inode", ino, blk, err)
	}
	r := &in.raw
	if r.LinksCount == 0 && (ino >= fs.firstIno || ino == RootIno) {
		// Deleted or never allocated, unless it was unlinked during this
		// mount while still open: such an orphan stays readable until Evict.
		if _, open := fs.orphans[ino]; !open {
			return nil, syscall.ESTALE
		}
	}
	if modeToDT(r.Mode) == DTUnknown && (ino >= fs.firstIno || ino == RootIno) {
		// ext4_iget's "bogus i_mode": no file type to serve it as (FUSE
		// would fail it with EIO after the kernel rejects the attributes).
		return nil, fs.corruptf("inode", ino, blk, "bogus i_mode %#o", r.Mode)
	}
	in.Mode = r.Mode
	in.Uid, in.Gid = r.Uid(), r.Gid()
	in.Size = r.Size()
	if in.Size > 1<<63-1 {
		return nil, fs.corruptf("inode", ino, blk, "i_size %d negative", in.Size)
	}
	in.Nlink = uint32(r.LinksCount)
	in.Generation = r.Generation
	in.Flags = uint32(r.Flags)
	in.blocks512 = r.Blocks512(fs.features.hugeFile, fs.bsize)
	in.Atime = unixTime(r.Atime())
	in.Mtime = unixTime(r.Mtime())
	in.Ctime = unixTime(r.Ctime())
	if s, ns, ok := r.Crtime(); ok {
		in.Crtime = time.Unix(s, int64(ns))
	}
	if err := fs.checkInodeFlags(in, blk); err != nil {
		return nil, err
	}
	return in, nil
}

func unixTime(sec int64, nsec uint32) time.Time { return time.Unix(sec, int64(nsec)) }

// checkInodeFlags rejects flag combinations the rest of the package cannot
// interpret, so mapping code can trust them.
func (fs *FS) checkInodeFlags(in *Inode, blk PBlk) error {
	ext := in.hasFlag(disk.ExtentsFL)
	inl := in.hasFlag(disk.InlineDataFL)
	switch {
	case ext && inl:
		return fs.corruptf("inode", in.Ino, blk, "both extents and inline data flags set")
	case inl && !fs.features.inlineData:
		return fs.corruptf("inode", in.Ino, blk, "inline data flag without inline_data feature")
	case ext && !fs.features.extents:
		return fs.corruptf("inode", in.Ino, blk, "extents flag without extent feature")
	}
	return nil
}
