package ext4

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/e4box/e4box/bcache"
	"github.com/e4box/e4box/ext4/disk"
)

// Tx is a metadata transaction, the only way to modify the filesystem.
//
// There is no journal: a transaction collects its changes in the buffer
// cache and in inode working copies, and Update writes them through at
// commit in an order that leaves a crash repairable by e2fsck without
// losing committed files:
//
//  1. blocks allocated in this transaction (new extent, index, indirect,
//     directory and xattr blocks), which nothing on disk points to yet;
//  2. block and inode bitmaps, group descriptors and the superblock
//     (allocations recorded);
//  3. inode records and pre-existing blocks that link the new things in;
//  4. frees: blocks and inodes released during the transaction stay
//     allocated in the bitmaps until everything else is written, so they
//     are never reused inside the transaction, and a crash before step 4
//     only leaks them.
//
// Checksums are computed in exactly one place, at commit, just before a
// structure is written: each dirtied buffer carries its checksum function,
// inode records, bitmaps, descriptors and the superblock are checksummed
// by the commit itself.
//
// Commit writes with pwrite and does not flush the device: the order
// survives a crash of this process (the kernel keeps completed writes), and
// Sync, FsyncInode and Close flush the device for durability against power
// loss.
//
// If the transaction's function fails, everything is dropped: dirtied
// buffers leave the cache (which then reflects the disk again), inode
// working copies and allocations are discarded, and the live superblock
// and statfs counters are restored.
type Tx struct {
	fs *FS

	// privileged callers (uid 0) may allocate from the blocks reserved by
	// s_r_blocks_count; set from the operation's Cred.
	privileged bool
	// useReserved lets an allocation dip into the filesystem's last
	// reserve (s_resv_clusters), for metadata that must not fail with
	// ENOSPC half-way through an operation (extent tree splits), as the
	// kernel's EXT4_MB_USE_RESERVED.
	useReserved bool

	bufs   map[uint64]*txBuf
	inodes map[Ino]*inodeRef
	groups map[Group]*groupRef
	// frees are released to the bitmaps only at the end of the commit.
	freeBlocks []blockRun
	freeInodes []freedInode
	// zeroData are device byte ranges of kept file blocks to zero before
	// any metadata is written (the tail of a truncated file, the edges of
	// a punched hole): data first, like the kernel's ordered mode.
	zeroData []byteRange

	// touched inodes have their cached snapshots dropped at the end.
	touched map[Ino]struct{}

	sbDirty bool

	// orphanAdds and orphanDels change fs.orphans when the commit succeeds.
	orphanAdds, orphanDels []Ino

	// Saved at the start, restored when the transaction fails.
	savedSB   disk.Superblock
	savedStat Statfs
}

// blockRun is a run of physical blocks with its owning inode (for logs).
type blockRun struct {
	start PBlk
	n     uint64
	ino   Ino
}

type freedInode struct {
	ino Ino
	dir bool
}

// Write phases of a dirty buffer; see Tx.
const (
	phaseNew  = iota // allocated in this transaction
	phaseMeta        // bitmaps and group descriptor blocks
	phaseLink        // everything else: inode tables, existing blocks
)

// txBuf is a buffer held by a transaction.
type txBuf struct {
	b     *bcache.Buf
	kind  string
	ino   Ino
	phase int
	dirty bool
	csum  func([]byte) // run on the block contents at commit; may be nil
	// synth marks a bitmap built in memory for an uninitialised group:
	// unless written, it must leave the cache with the transaction.
	synth   bool
	written bool
}

// Update runs fn as one transaction with FS.mu held exclusively, so no
// reader observes a partial mutation. It returns EROFS on a read-only
// filesystem. If fn fails, the transaction is dropped (see Tx) and fn's
// error is returned.
func (fs *FS) Update(fn func(tx *Tx) error) error {
	return fs.update(nil, fn)
}

// update is Update with the caller's credentials, if any.
func (fs *FS) update(c *Cred, fn func(tx *Tx) error) error {
	if fs.ro {
		return errReadOnly
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.wr.closed {
		return errReadOnly
	}
	tx := &Tx{
		fs:        fs,
		bufs:      make(map[uint64]*txBuf),
		inodes:    make(map[Ino]*inodeRef),
		groups:    make(map[Group]*groupRef),
		savedSB:   *fs.sb,
		savedStat: fs.stat,
	}
	if c != nil {
		tx.privileged = c.Uid == 0
	}
	err := fn(tx)
	if err != nil {
		tx.abortLocked()
		return err
	}
	if err := tx.commitLocked(); err != nil {
		// Part of the transaction may be on disk: the cache is dropped
		// back to what the disk says, and the filesystem is marked as
		// having errors (written at Close), so e2fsck gets to look.
		fs.log.Error("ext4: transaction commit failed", slog.Any("err", err))
		tx.abortLocked()
		fs.sb.State |= disk.StateError
		return err
	}
	for _, ino := range tx.orphanAdds {
		fs.orphans[ino] = struct{}{}
	}
	for _, ino := range tx.orphanDels {
		delete(fs.orphans, ino)
	}
	return nil
}

// abortLocked drops everything the transaction changed from memory.
func (tx *Tx) abortLocked() {
	fs := tx.fs
	for blk, tb := range tx.bufs {
		if tb.dirty || tb.phase == phaseNew || tb.synth {
			fs.cache.Forget(blk)
		}
		fs.cache.Put(tb.b)
	}
	for ino := range tx.inodes {
		fs.icache.drop(ino)
	}
	for ino := range tx.touched {
		fs.icache.drop(ino)
	}
	*fs.sb = tx.savedSB
	fs.stat = tx.savedStat
}

// commitLocked writes the transaction out in the order described on Tx.
func (tx *Tx) commitLocked() error {
	fs := tx.fs
	// Inode working copies go into their inode table blocks first, so
	// those blocks are dirty buffers like any other.
	for _, ino := range sortedKeys(tx.inodes) {
		r := tx.inodes[ino]
		if !r.dirty {
			continue
		}
		if err := tx.writeInodeLocked(r); err != nil {
			return err
		}
	}
	tx.prepareFreesLocked()
	if err := tx.encodeGroupsLocked(); err != nil {
		return err
	}
	for _, z := range tx.zeroData {
		if err := fs.zeroDeviceLocked(z.addr, z.n); err != nil {
			return err
		}
	}
	for _, phase := range []int{phaseNew, phaseMeta, phaseLink} {
		if err := tx.writePhaseLocked(phase); err != nil {
			return err
		}
		if phase == phaseMeta && tx.sbDirty {
			if err := fs.writeSuperblockLocked(); err != nil {
				return err
			}
			tx.sbDirty = false
		}
	}
	// Frees last: release the bits, then write the bitmaps, descriptors
	// and superblock again.
	if len(tx.freeBlocks) > 0 || len(tx.freeInodes) > 0 {
		if err := tx.releaseFreesLocked(); err != nil {
			return err
		}
		if err := tx.encodeGroupsLocked(); err != nil {
			return err
		}
		if err := tx.writePhaseLocked(phaseMeta); err != nil {
			return err
		}
		if tx.sbDirty {
			if err := fs.writeSuperblockLocked(); err != nil {
				return err
			}
		}
	}
	for blk, tb := range tx.bufs {
		if tb.synth && !tb.written {
			fs.cache.Forget(blk)
		}
		fs.cache.Put(tb.b)
	}
	// Cached snapshots of changed inodes are replaced by the committed
	// state.
	for ino, r := range tx.inodes {
		if r.dirty {
			fs.icache.drop(ino)
		}
	}
	for ino := range tx.touched {
		fs.icache.drop(ino)
	}
	return nil
}

// writePhaseLocked runs the checksum functions of, and writes, the dirty
// buffers of one phase in block order.
func (tx *Tx) writePhaseLocked(phase int) error {
	fs := tx.fs
	var blks []uint64
	for blk, tb := range tx.bufs {
		if tb.dirty && tb.phase == phase {
			blks = append(blks, blk)
		}
	}
	slices.Sort(blks)
	for _, blk := range blks {
		tb := tx.bufs[blk]
		if tb.csum != nil {
			tb.csum(tb.b.Data)
		}
		if err := fs.writeBlockLocked(PBlk(blk), tb.b.Data); err != nil {
			return fmt.Errorf("ext4: writing %s block %d (inode %d): %w", tb.kind, blk, tb.ino, err)
		}
		tb.dirty, tb.written = false, true
	}
	return nil
}

// writeBlockLocked writes one metadata block to the device.
func (fs *FS) writeBlockLocked(blk PBlk, data []byte) error {
	if !fs.validBlockRange(blk, 1) {
		return fs.corruptf("metadata write", 0, blk, "block %d outside the filesystem", blk)
	}
	if _, err := fs.dev.WriteAt(data, fs.pblkOff(blk)); err != nil {
		return err
	}
	fs.wr.bytesWritten.Add(uint64(len(data)))
	return nil
}

// getBlockLocked returns metadata block blk for modification. The buffer
// stays referenced until the transaction ends; the caller must call
// dirtyLocked after changing it.
func (tx *Tx) getBlockLocked(blk PBlk, kind string, ino Ino) (*bcache.Buf, error) {
	if tb, ok := tx.bufs[uint64(blk)]; ok {
		return tb.b, nil
	}
	b, err := tx.fs.readBlockLocked(blk, kind, ino)
	if err != nil {
		return nil, err
	}
	tx.bufs[uint64(blk)] = &txBuf{b: b, kind: kind, ino: ino, phase: phaseLink}
	return b, nil
}

// newBlockLocked returns a zeroed buffer for blk, a block just allocated
// for metadata in this transaction (never read from the device). It is
// marked dirty and written in the first commit phase.
func (tx *Tx) newBlockLocked(blk PBlk, kind string, ino Ino) (*bcache.Buf, error) {
	if !tx.fs.validBlockRange(blk, 1) {
		return nil, tx.fs.corruptf(kind, ino, blk, "new block %d outside the filesystem", blk)
	}
	if tb, ok := tx.bufs[uint64(blk)]; ok {
		if tb.phase != phaseNew {
			return nil, fmt.Errorf("ext4: block %d reused as a new %s block in one transaction", blk, kind)
		}
		clear(tb.b.Data)
		return tb.b, nil
	}
	// A stale cached copy (a block freed by an earlier transaction) must
	// not leak into the new block.
	tx.fs.cache.Forget(uint64(blk))
	b, err := tx.fs.cache.GetZero(uint64(blk))
	if err != nil {
		return nil, err
	}
	clear(b.Data)
	tx.bufs[uint64(blk)] = &txBuf{b: b, kind: kind, ino: ino, phase: phaseNew, dirty: true}
	return b, nil
}

// dirtyLocked marks a buffer obtained from getBlockLocked or
// newBlockLocked as modified. csum, if not nil, replaces the buffer's
// checksum function and runs on its contents just before it is written.
func (tx *Tx) dirtyLocked(b *bcache.Buf, csum func([]byte)) {
	tb, ok := tx.bufs[b.Blk]
	if !ok || tb.b != b {
		panic("ext4: dirtyLocked on a buffer not held by the transaction") // caller bug
	}
	tb.dirty = true
	if csum != nil {
		tb.csum = csum
	}
}

// metaBlockLocked is getBlockLocked for bitmaps and descriptor blocks,
// which are written in the second phase.
func (tx *Tx) metaBlockLocked(blk PBlk, kind string) (*bcache.Buf, error) {
	b, err := tx.getBlockLocked(blk, kind, 0)
	if err != nil {
		return nil, err
	}
	if tb := tx.bufs[uint64(blk)]; tb.phase == phaseLink {
		tb.phase = phaseMeta
	}
	return b, nil
}

// forgetBlocksLocked drops freed blocks from the cache and from the
// transaction, so their contents never reach the disk again.
func (tx *Tx) forgetBlocksLocked(start PBlk, n uint64) {
	lo, hi := uint64(start), uint64(start)+n
	drop := func(blk uint64, tb *txBuf) {
		tx.fs.cache.Forget(blk)
		tx.fs.cache.Put(tb.b)
		delete(tx.bufs, blk)
	}
	if n > uint64(len(tx.bufs)) {
		for blk, tb := range tx.bufs {
			if blk >= lo && blk < hi {
				drop(blk, tb)
			}
		}
	} else {
		for blk := lo; blk < hi; blk++ {
			if tb, ok := tx.bufs[blk]; ok {
				drop(blk, tb)
			}
		}
	}
	for blk := lo; blk < hi; blk++ {
		tx.fs.cache.Forget(blk)
	}
}

// byteRange is a range of device bytes.
type byteRange struct{ addr, n int64 }

// zeroDataLocked schedules zeroing n device bytes at addr (inside a file
// block the transaction keeps) before the commit writes any metadata.
func (tx *Tx) zeroDataLocked(addr, n int64) {
	if n > 0 {
		tx.zeroData = append(tx.zeroData, byteRange{addr, n})
	}
}

// touchInodeLocked records that inode ino changes in this transaction
// outside an inodeRef, so its cached snapshot is dropped at the end.
func (tx *Tx) touchInodeLocked(ino Ino) {
	if tx.touched == nil {
		tx.touched = make(map[Ino]struct{})
	}
	tx.touched[ino] = struct{}{}
}

func sortedKeys[K ~uint32 | ~uint64, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
