package ext4

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4/disk"
)

// Superblock state across a read-write mount, as the kernel keeps it for
// a filesystem without a journal: mounting clears EXT2_VALID_FS ("not
// cleanly unmounted") and counts the mount; a clean Close restores the
// state found at mount, stamps s_wtime and s_kbytes_written, and writes
// the primary superblock. Backup superblocks are never rewritten, as in
// the kernel. has_journal filesystems are written without the journal
// (needs_recovery is never set), like fuse2fs.

// writeState is the write path's part of FS.
type writeState struct {
	closed     bool   // Close ran; protected by FS.mu
	mountState uint16 // s_state at mount; immutable after Open
	// zone is the system zone (alloc.go), computed on first allocation;
	// protected by FS.mu (held exclusively by writers).
	zone systemZone
	// badBlockGroups and badInodeGroups are groups whose bitmaps proved
	// corrupt: allocation skips them until the next mount. Protected by
	// FS.mu.
	badBlockGroups, badInodeGroups map[Group]bool
	// bytesWritten counts device bytes written since Open, for
	// s_kbytes_written. Data writes happen outside FS.mu.
	bytesWritten atomic.Uint64
	kbytesBase   uint64 // s_kbytes_written at mount
}

// defaultMaxMntCount is EXT4_DFL_MAX_MNT_COUNT, set by the kernel when
// s_max_mnt_count is 0.
const defaultMaxMntCount = 20

// rwBlockers names the features present that this library cannot keep
// consistent when writing: the filesystem is then served read-only.
// ro_compat features outside supportedRoCompat are handled by Open
// (bigalloc, quota, project, verity, read-only, snapshot, replica,
// shared_blocks); here are the compat ones with on-disk state the write
// path would have to maintain.
func rwBlockers(sb *disk.Superblock) []string {
	var bad []string
	if sb.HasCompat(disk.CompatOrphanFile) {
		bad = append(bad, "orphan_file") // orphans would have to go in the orphan file
	}
	if sb.HasCompat(disk.CompatExcludeBitmap) {
		bad = append(bad, "exclude_bitmap")
	}
	if sb.HasRoCompat(disk.RoCompatOrphanPresent) && !sb.HasCompat(disk.CompatOrphanFile) {
		bad = append(bad, "orphan_present")
	}
	return bad
}

// mountRW marks the superblock mounted (not clean), writes it, and
// processes the orphan list. Called by Open for read-write mounts.
func (fs *FS) mountRW() error {
	fs.mu.Lock()
	sb := fs.sb
	fs.wr.mountState = sb.State
	fs.wr.kbytesBase = sb.KbytesWritten
	if sb.State&disk.StateValid == 0 {
		fs.log.Warn("ext4: mounting a filesystem that was not cleanly unmounted; running e2fsck is recommended")
	}
	sb.State &^= disk.StateValid
	if sb.MaxMntCount == 0 {
		sb.MaxMntCount = defaultMaxMntCount
	}
	sb.MntCount++
	t := time.Now().Unix()
	sb.Mtime, sb.MtimeHi = uint32(t), uint8(t>>32)
	err := fs.writeSuperblockLocked()
	fs.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ext4: marking the superblock mounted: %w", err)
	}
	if err := fs.Update(func(tx *Tx) error { return fs.processOrphansLocked(tx) }); err != nil {
		return fmt.Errorf("ext4: processing the orphan list: %w", err)
	}
	return nil
}

// writeSuperblockLocked writes the live superblock (checksummed) to the
// primary location, with s_wtime and s_kbytes_written brought up to date.
func (fs *FS) writeSuperblockLocked() error {
	sb := fs.sb
	t := time.Now().Unix()
	sb.Wtime, sb.WtimeHi = uint32(t), uint8(t>>32)
	sb.KbytesWritten = fs.wr.kbytesBase + fs.wr.bytesWritten.Load()>>10
	sb.SetChecksum()
	var buf [disk.SuperblockSize]byte
	sb.Encode(buf[:])
	if _, err := fs.dev.WriteAt(buf[:], disk.SuperblockOffset); err != nil {
		return fmt.Errorf("ext4: writing the superblock: %w", err)
	}
	fs.wr.bytesWritten.Add(disk.SuperblockSize)
	return nil
}

// unmountLocked is the clean-unmount half of Close: restore the state
// found at mount (VALID if it was clean), write the superblock, flush the
// device. Later Updates fail with EROFS.
func (fs *FS) unmountLocked() error {
	if fs.wr.closed {
		return nil
	}
	fs.wr.closed = true
	fs.sb.State = fs.wr.mountState | fs.sb.State&disk.StateError
	if err := fs.writeSuperblockLocked(); err != nil {
		return err
	}
	return fs.dev.Flush()
}

// Sync makes everything written so far durable: committed transactions
// are already on the device, so this writes the superblock (free counts,
// s_wtime) and flushes the device.
func (fs *FS) Sync() error {
	if fs.ro {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.wr.closed {
		return nil
	}
	if err := fs.writeSuperblockLocked(); err != nil {
		return err
	}
	return fs.dev.Flush()
}

// FsyncInode makes inode ino's data and metadata durable. Transactions
// write through at commit, so a device flush is all it takes; datasync
// makes no difference here.
func (fs *FS) FsyncInode(ino Ino, datasync bool) error {
	if fs.ro {
		return nil
	}
	if ino == 0 || uint32(ino) > fs.geo.InodesCount {
		return syscall.ESTALE
	}
	return fs.dev.Flush()
}
