package ext4

import (
	"encoding/binary"
	"log/slog"
)

// The orphan list: inodes whose last link is gone while something still
// uses them (or, with links, whose blocks past i_size must go). Like the
// kernel's classic list it lives on disk as a chain: s_last_orphan names
// the first inode, and each orphan's i_dtime names the next (0 ends it).
// An inode goes on the list when its link count reaches zero (Unlink,
// Rmdir, Rename over it) and comes off when it is freed (Evict); a chain
// left behind by a crash is processed at the next read-write mount, as
// the kernel's ext4_orphan_cleanup does.

// nextOrphanLocked returns the orphan after ino (its i_dtime): from the
// transaction's working copy if it has one, else straight from the inode
// table block, so walking a long chain costs no inode decoding. The
// inodes actually changed are loaded (and verified) by inodeLocked.
func (tx *Tx) nextOrphanLocked(ino Ino) (Ino, error) {
	if r, ok := tx.inodes[ino]; ok {
		return Ino(r.Raw.Dtime), nil
	}
	blk, off, err := tx.inodeLocLocked(ino)
	if err != nil {
		return 0, err
	}
	b, err := tx.getBlockLocked(blk, "inode", ino)
	if err != nil {
		return 0, err
	}
	return Ino(binary.LittleEndian.Uint32(b.Data[off+inodeDtimeOff:])), nil
}

// inodeDtimeOff is the offset of i_dtime in an inode record.
const inodeDtimeOff = 0x14

// orphanAddLocked puts r, whose last link just went, at the head of the
// orphan list (the kernel's ext4_orphan_add). Only inodes that had links
// get here, and linked inodes are never on the list (it is emptied at
// mount), so r is not on it yet.
func (tx *Tx) orphanAddLocked(r *inodeRef) {
	fs := tx.fs
	r.Raw.Dtime = fs.sb.LastOrphan
	fs.sb.LastOrphan = uint32(r.Ino)
	tx.sbDirty = true
	tx.dirtyInodeLocked(r)
	tx.orphanAdds = append(tx.orphanAdds, r.Ino)
}

// orphanDelLocked takes r off the orphan list (the kernel's
// ext4_orphan_del); an inode not on it is left alone. Evict calls it
// before freeing an inode. The chain is walked from the head with a
// cycle check, so a crafted chain fails the operation instead of looping.
func (tx *Tx) orphanDelLocked(r *inodeRef) error {
	fs := tx.fs
	seen := make(map[Ino]struct{})
	prev, cur := Ino(0), Ino(fs.sb.LastOrphan)
	for cur != r.Ino {
		if cur == 0 {
			return nil // not on the list
		}
		if _, dup := seen[cur]; dup || uint32(cur) > fs.geo.InodesCount {
			return fs.corruptf("orphan list", prev, 0, "bad next orphan %d", cur)
		}
		seen[cur] = struct{}{}
		next, err := tx.nextOrphanLocked(cur)
		if err != nil {
			return err
		}
		prev, cur = cur, next
	}
	if prev == 0 {
		fs.sb.LastOrphan = r.Raw.Dtime
		tx.sbDirty = true
	} else {
		p, err := tx.inodeLocked(prev)
		if err != nil {
			return err
		}
		p.Raw.Dtime = r.Raw.Dtime
		tx.dirtyInodeLocked(p)
	}
	r.Raw.Dtime = 0
	tx.dirtyInodeLocked(r)
	tx.orphanDels = append(tx.orphanDels, r.Ino)
	return nil
}

// processOrphansLocked empties the orphan list left by an earlier mount
// (the kernel's ext4_orphan_cleanup): inodes without links are freed,
// the others truncated to i_size. A corrupt chain is cut where it goes
// bad, as the kernel does, leaving any lost inodes to e2fsck. The
// read-write Open runs it in a transaction of its own.
func (fs *FS) processOrphansLocked(tx *Tx) error {
	if fs.sb.LastOrphan == 0 {
		return nil
	}
	seen := make(map[Ino]struct{})
	freed, truncated := 0, 0
	for fs.sb.LastOrphan != 0 {
		ino := Ino(fs.sb.LastOrphan)
		_, dup := seen[ino]
		seen[ino] = struct{}{}
		var r *inodeRef
		var err error
		if !dup && ino >= fs.firstIno && uint32(ino) <= fs.geo.InodesCount {
			r, err = tx.inodeLocked(ino)
		}
		if dup || r == nil || err != nil || r.Raw.Dtime > fs.geo.InodesCount {
			fs.log.Warn("ext4: bad orphan inode, cutting the orphan list", slog.Uint64("ino", uint64(ino)), slog.Any("err", err))
			fs.sb.LastOrphan = 0
			tx.sbDirty = true
			break
		}
		fs.sb.LastOrphan = r.Raw.Dtime
		tx.sbDirty = true
		r.Raw.Dtime = 0
		tx.dirtyInodeLocked(r)
		if r.Raw.LinksCount == 0 {
			if err := tx.freeInodeLocked(r); err != nil {
				return err
			}
			freed++
			continue
		}
		if fs.refHasBlocks(r) {
			if err := tx.truncateBlocksLocked(r, r.Raw.Size()); err != nil {
				return err
			}
		}
		truncated++
	}
	fs.log.Info("ext4: orphan list processed", slog.Int("freed", freed), slog.Int("truncated", truncated))
	return nil
}
