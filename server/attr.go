package server

import (
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuseproto"
)

// fillAttr fills a FUSE attribute block from a decoded inode, matching
// what the kernel's ext4 reports through stat(2): st_ino is the ext4 inode
// number (2 for the root, even though its nodeid is 1), st_blocks is in
// 512-byte units, st_blksize is the filesystem block size and st_rdev is
// in the kernel's new_encode_dev form, which FUSE decodes the same way.
func (s *Server) fillAttr(a *fuseproto.Attr, inode *ext4.Inode) {
	*a = fuseproto.Attr{
		Ino:     uint64(inode.Ino),
		Size:    inode.Size,
		Blocks:  inode.Blocks512(),
		Mode:    uint32(inode.Mode),
		Nlink:   inode.Nlink,
		Uid:     inode.Uid,
		Gid:     inode.Gid,
		Rdev:    inode.Rdev(),
		Blksize: uint32(s.blockSize),
	}
	a.SetTimes(inode.Atime, inode.Mtime, inode.Ctime)
}

// fillStatx fills a statx reply: everything fillAttr reports, plus the
// birth time ext4 keeps in i_crtime when the inode is large enough.
func (s *Server) fillStatx(st *fuseproto.Statx, inode *ext4.Inode) {
	*st = fuseproto.Statx{
		Mask:    statxBasicStats,
		Blksize: uint32(s.blockSize),
		Nlink:   inode.Nlink,
		Uid:     inode.Uid,
		Gid:     inode.Gid,
		Mode:    inode.Mode,
		Ino:     uint64(inode.Ino),
		Size:    inode.Size,
		Blocks:  inode.Blocks512(),
		Atime:   sxTime(inode.Atime),
		Ctime:   sxTime(inode.Ctime),
		Mtime:   sxTime(inode.Mtime),
	}
	st.RdevMajor, st.RdevMinor = decodeDev(inode.Rdev())
	if !inode.Crtime.IsZero() {
		st.Mask |= statxBtime
		st.Btime = sxTime(inode.Crtime)
	}
}

// statx(2) mask bits (uapi/linux/stat.h).
const (
	statxBasicStats = 0x7ff
	statxBtime      = 0x800
)

func sxTime(t time.Time) fuseproto.SxTime {
	return fuseproto.SxTime{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
}

// decodeDev splits a new_encode_dev device number like the kernel's
// new_decode_dev.
func decodeDev(dev uint32) (major, minor uint32) {
	return (dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00)
}

// splitDuration converts a timeout into the seconds and nanoseconds pair
// FUSE replies carry.
func splitDuration(d time.Duration) (uint64, uint32) {
	if d <= 0 {
		return 0, 0
	}
	return uint64(d / time.Second), uint32(d % time.Second)
}
