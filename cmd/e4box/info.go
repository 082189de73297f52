package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/e4box/e4box/ext4"
)

// cmdInfo prints a superblock summary, a little like dumpe2fs -h.
func cmdInfo(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageErr("info: want IMAGE")
	}
	fsys, err := openImage(args[0], ext4.Options{NoRecovery: true, IgnoreErrorState: true})
	if err != nil {
		return err
	}
	defer fsys.Close()
	sb := fsys.Superblock()
	st := fsys.Statfs()
	w := &fieldWriter{w: stdout}
	label := sb.VolumeLabel()
	if label == "" {
		label = "<none>"
	}
	w.field("Label", label)
	w.field("UUID", sb.UUIDString())
	w.field("Revision", fmt.Sprintf("%d.%d", sb.RevLevel, sb.MinorRevLevel))
	w.field("State", stateString(sb.State))
	w.field("Errors", errorsBehavior(sb.Errors))
	var features []string
	features = append(features, sb.FeatureCompat.Names()...)
	features = append(features, sb.FeatureIncompat.Names()...)
	features = append(features, sb.FeatureRoCompat.Names()...)
	w.field("Features", strings.Join(features, " "))
	w.field("Block size", sb.BlockSize())
	if cs := sb.ClusterSize(); cs != sb.BlockSize() {
		w.field("Cluster size", cs)
	}
	w.field("Inode size", sb.InodeSize())
	w.field("Blocks", fmt.Sprintf("%d (%d free, %d reserved)", sb.BlocksCount(), sb.FreeBlocksCount(), sb.RBlocksCount()))
	w.field("Inodes", fmt.Sprintf("%d (%d free)", sb.InodesCount, sb.FreeInodesCount))
	w.field("First inode", sb.FirstInode())
	w.field("Statfs", fmt.Sprintf("blocks %d, bfree %d, bavail %d, files %d, ffree %d (bsize %d)",
		st.Blocks, st.Bfree, st.Bavail, st.Files, st.Ffree, st.Bsize))
	groups := fmt.Sprintf("%d groups, %d blocks and %d inodes per group, descriptor size %d",
		sb.GroupCount(), sb.BlocksPerGroup, sb.InodesPerGroup, sb.DescSize())
	if n := sb.GroupsPerFlex(); n > 1 {
		groups += fmt.Sprintf(", %d groups per flex group", n)
	}
	w.field("Groups", groups)
	w.field("First data blk", sb.FirstDataBlock)
	if sb.JournalInum != 0 {
		w.field("Journal inode", sb.JournalInum)
	}
	w.field("Created", unixTime(sb.MkfsTime, sb.MkfsTimeHi))
	w.field("Last mount", unixTime(sb.Mtime, sb.MtimeHi))
	w.field("Last write", unixTime(sb.Wtime, sb.WtimeHi))
	w.field("Mount count", fmt.Sprintf("%d (max %d)", sb.MntCount, int16(sb.MaxMntCount)))
	if sb.ErrorCount != 0 {
		w.field("Error count", sb.ErrorCount)
	}
	return w.err
}

func unixTime(lo uint32, hi uint8) string {
	sec := int64(hi)<<32 | int64(lo)
	if sec == 0 {
		return "never"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}

// stateString decodes s_state (EXT2_VALID_FS 1, EXT2_ERROR_FS 2,
// EXT3_ORPHAN_FS 4).
func stateString(s uint16) string {
	var parts []string
	if s&1 != 0 {
		parts = append(parts, "clean")
	} else {
		parts = append(parts, "not clean")
	}
	if s&2 != 0 {
		parts = append(parts, "with errors")
	}
	if s&4 != 0 {
		parts = append(parts, "orphans being recovered")
	}
	return strings.Join(parts, ", ")
}

// errorsBehavior decodes s_errors.
func errorsBehavior(e uint16) string {
	switch e {
	case 1:
		return "continue"
	case 2:
		return "remount-ro"
	case 3:
		return "panic"
	}
	return fmt.Sprintf("unknown (%d)", e)
}
