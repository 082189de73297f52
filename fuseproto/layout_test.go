package fuseproto

import (
	"testing"
	"unsafe"
)

// field is one C field: its name, the Go offset, and the offset in the
// kernel header (include/uapi/linux/fuse.h, protocol 7.45).
type field struct {
	name     string
	got      uintptr
	want     uintptr
	gotSize  uintptr
	wantSize uintptr
}

func f(name string, got, gotSize, want, wantSize uintptr) field {
	return field{name, got, want, gotSize, wantSize}
}

type layout struct {
	cname  string
	size   uintptr
	want   uintptr
	fields []field
}

// Offsets and sizes below are computed by hand from the C declarations
// (every member naturally aligned, structs padded to 8 bytes).
func layouts() []layout {
	var (
		ih  InHeader
		oh  OutHeader
		at  Attr
		sxt SxTime
		sx  Statx
		ks  Kstatfs
		fl  FileLock
		eo  EntryOut
		fi  ForgetIn
		fo  ForgetOne
		bf  BatchForgetIn
		gi  GetattrIn
		ao  AttrOut
		si  StatxIn
		so  StatxOut
		mn  MknodIn
		md  MkdirIn
		rn  RenameIn
		r2  Rename2In
		li  LinkIn
		sa  SetattrIn
		oi  OpenIn
		ci  CreateIn
		oo  OpenOut
		co  CreateOut
		ri  ReleaseIn
		fli FlushIn
		rd  ReadIn
		wi  WriteIn
		wo  WriteOut
		sf  StatfsOut
		fs  FsyncIn
		sxi SetxattrIn
		gxi GetxattrIn
		gxo GetxattrOut
		lki LkIn
		lko LkOut
		ac  AccessIn
		ii  InitIn
		io  InitOut
		cii CuseInitIn
		cio CuseInitOut
		iin InterruptIn
		bmi BmapIn
		bmo BmapOut
		ioi IoctlIn
		iov IoctlIovec
		ioo IoctlOut
		pi  PollIn
		po  PollOut
		pw  NotifyPollWakeupOut
		fa  FallocateIn
		de  Dirent
		dp  Direntplus
		nii NotifyInvalInodeOut
		nie NotifyInvalEntryOut
		nd  NotifyDeleteOut
		ns  NotifyStoreOut
		nro NotifyRetrieveOut
		nri NotifyRetrieveIn
		np  NotifyPruneOut
		bm  BackingMap
		lsi LseekIn
		lso LseekOut
		cfi CopyFileRangeIn
		cfo CopyFileRangeOut
		smi SetupmappingIn
		rmi RemovemappingIn
		rmo RemovemappingOne
		sfi SyncfsIn
		sc  Secctx
		sch SecctxHeader
		eh  ExtHeader
		sg  SuppGroups
	)
	return []layout{
		{"fuse_in_header", unsafe.Sizeof(ih), 40, []field{
			f("len", unsafe.Offsetof(ih.Len), unsafe.Sizeof(ih.Len), 0, 4),
			f("opcode", unsafe.Offsetof(ih.Opcode), unsafe.Sizeof(ih.Opcode), 4, 4),
			f("unique", unsafe.Offsetof(ih.Unique), unsafe.Sizeof(ih.Unique), 8, 8),
			f("nodeid", unsafe.Offsetof(ih.NodeID), unsafe.Sizeof(ih.NodeID), 16, 8),
			f("uid", unsafe.Offsetof(ih.Uid), unsafe.Sizeof(ih.Uid), 24, 4),
			f("gid", unsafe.Offsetof(ih.Gid), unsafe.Sizeof(ih.Gid), 28, 4),
			f("pid", unsafe.Offsetof(ih.Pid), unsafe.Sizeof(ih.Pid), 32, 4),
			f("total_extlen", unsafe.Offsetof(ih.TotalExtlen), unsafe.Sizeof(ih.TotalExtlen), 36, 2),
			f("padding", unsafe.Offsetof(ih.Padding), unsafe.Sizeof(ih.Padding), 38, 2),
		}},
		{"fuse_out_header", unsafe.Sizeof(oh), 16, []field{
			f("len", unsafe.Offsetof(oh.Len), unsafe.Sizeof(oh.Len), 0, 4),
			f("error", unsafe.Offsetof(oh.Error), unsafe.Sizeof(oh.Error), 4, 4),
			f("unique", unsafe.Offsetof(oh.Unique), unsafe.Sizeof(oh.Unique), 8, 8),
		}},
		{"fuse_attr", unsafe.Sizeof(at), 88, []field{
			f("ino", unsafe.Offsetof(at.Ino), unsafe.Sizeof(at.Ino), 0, 8),
			f("size", unsafe.Offsetof(at.Size), unsafe.Sizeof(at.Size), 8, 8),
			f("blocks", unsafe.Offsetof(at.Blocks), unsafe.Sizeof(at.Blocks), 16, 8),
			f("atime", unsafe.Offsetof(at.Atime), unsafe.Sizeof(at.Atime), 24, 8),
			f("mtime", unsafe.Offsetof(at.Mtime), unsafe.Sizeof(at.Mtime), 32, 8),
			f("ctime", unsafe.Offsetof(at.Ctime), unsafe.Sizeof(at.Ctime), 40, 8),
			f("atimensec", unsafe.Offsetof(at.Atimensec), unsafe.Sizeof(at.Atimensec), 48, 4),
			f("mtimensec", unsafe.Offsetof(at.Mtimensec), unsafe.Sizeof(at.Mtimensec), 52, 4),
			f("ctimensec", unsafe.Offsetof(at.Ctimensec), unsafe.Sizeof(at.Ctimensec), 56, 4),
			f("mode", unsafe.Offsetof(at.Mode), unsafe.Sizeof(at.Mode), 60, 4),
			f("nlink", unsafe.Offsetof(at.Nlink), unsafe.Sizeof(at.Nlink), 64, 4),
			f("uid", unsafe.Offsetof(at.Uid), unsafe.Sizeof(at.Uid), 68, 4),
			f("gid", unsafe.Offsetof(at.Gid), unsafe.Sizeof(at.Gid), 72, 4),
			f("rdev", unsafe.Offsetof(at.Rdev), unsafe.Sizeof(at.Rdev), 76, 4),
			f("blksize", unsafe.Offsetof(at.Blksize), unsafe.Sizeof(at.Blksize), 80, 4),
			f("flags", unsafe.Offsetof(at.Flags), unsafe.Sizeof(at.Flags), 84, 4),
		}},
		{"fuse_sx_time", unsafe.Sizeof(sxt), 16, []field{
			f("tv_sec", unsafe.Offsetof(sxt.Sec), unsafe.Sizeof(sxt.Sec), 0, 8),
			f("tv_nsec", unsafe.Offsetof(sxt.Nsec), unsafe.Sizeof(sxt.Nsec), 8, 4),
			f("__reserved", unsafe.Offsetof(sxt.Reserved), unsafe.Sizeof(sxt.Reserved), 12, 4),
		}},
		{"fuse_statx", unsafe.Sizeof(sx), 256, []field{
			f("mask", unsafe.Offsetof(sx.Mask), unsafe.Sizeof(sx.Mask), 0, 4),
			f("blksize", unsafe.Offsetof(sx.Blksize), unsafe.Sizeof(sx.Blksize), 4, 4),
			f("attributes", unsafe.Offsetof(sx.Attributes), unsafe.Sizeof(sx.Attributes), 8, 8),
			f("nlink", unsafe.Offsetof(sx.Nlink), unsafe.Sizeof(sx.Nlink), 16, 4),
			f("uid", unsafe.Offsetof(sx.Uid), unsafe.Sizeof(sx.Uid), 20, 4),
			f("gid", unsafe.Offsetof(sx.Gid), unsafe.Sizeof(sx.Gid), 24, 4),
			f("mode", unsafe.Offsetof(sx.Mode), unsafe.Sizeof(sx.Mode), 28, 2),
			f("__spare0", unsafe.Offsetof(sx.Spare0), unsafe.Sizeof(sx.Spare0), 30, 2),
			f("ino", unsafe.Offsetof(sx.Ino), unsafe.Sizeof(sx.Ino), 32, 8),
			f("size", unsafe.Offsetof(sx.Size), unsafe.Sizeof(sx.Size), 40, 8),
			f("blocks", unsafe.Offsetof(sx.Blocks), unsafe.Sizeof(sx.Blocks), 48, 8),
			f("attributes_mask", unsafe.Offsetof(sx.AttributesMask), unsafe.Sizeof(sx.AttributesMask), 56, 8),
			f("atime", unsafe.Offsetof(sx.Atime), unsafe.Sizeof(sx.Atime), 64, 16),
			f("btime", unsafe.Offsetof(sx.Btime), unsafe.Sizeof(sx.Btime), 80, 16),
			f("ctime", unsafe.Offsetof(sx.Ctime), unsafe.Sizeof(sx.Ctime), 96, 16),
			f("mtime", unsafe.Offsetof(sx.Mtime), unsafe.Sizeof(sx.Mtime), 112, 16),
			f("rdev_major", unsafe.Offsetof(sx.RdevMajor), unsafe.Sizeof(sx.RdevMajor), 128, 4),
			f("rdev_minor", unsafe.Offsetof(sx.RdevMinor), unsafe.Sizeof(sx.RdevMinor), 132, 4),
			f("dev_major", unsafe.Offsetof(sx.DevMajor), unsafe.Sizeof(sx.DevMajor), 136, 4),
			f("dev_minor", unsafe.Offsetof(sx.DevMinor), unsafe.Sizeof(sx.DevMinor), 140, 4),
			f("__spare2", unsafe.Offsetof(sx.Spare2), unsafe.Sizeof(sx.Spare2), 144, 112),
		}},
		{"fuse_kstatfs", unsafe.Sizeof(ks), 80, []field{
			f("blocks", unsafe.Offsetof(ks.Blocks), unsafe.Sizeof(ks.Blocks), 0, 8),
			f("bfree", unsafe.Offsetof(ks.Bfree), unsafe.Sizeof(ks.Bfree), 8, 8),
			f("bavail", unsafe.Offsetof(ks.Bavail), unsafe.Sizeof(ks.Bavail), 16, 8),
			f("files", unsafe.Offsetof(ks.Files), unsafe.Sizeof(ks.Files), 24, 8),
			f("ffree", unsafe.Offsetof(ks.Ffree), unsafe.Sizeof(ks.Ffree), 32, 8),
			f("bsize", unsafe.Offsetof(ks.Bsize), unsafe.Sizeof(ks.Bsize), 40, 4),
			f("namelen", unsafe.Offsetof(ks.Namelen), unsafe.Sizeof(ks.Namelen), 44, 4),
			f("frsize", unsafe.Offsetof(ks.Frsize), unsafe.Sizeof(ks.Frsize), 48, 4),
			f("padding", unsafe.Offsetof(ks.Padding), unsafe.Sizeof(ks.Padding), 52, 4),
			f("spare", unsafe.Offsetof(ks.Spare), unsafe.Sizeof(ks.Spare), 56, 24),
		}},
		{"fuse_file_lock", unsafe.Sizeof(fl), 24, []field{
			f("start", unsafe.Offsetof(fl.Start), unsafe.Sizeof(fl.Start), 0, 8),
			f("end", unsafe.Offsetof(fl.End), unsafe.Sizeof(fl.End), 8, 8),
			f("type", unsafe.Offsetof(fl.Type), unsafe.Sizeof(fl.Type), 16, 4),
			f("pid", unsafe.Offsetof(fl.Pid), unsafe.Sizeof(fl.Pid), 20, 4),
		}},
		{"fuse_entry_out", unsafe.Sizeof(eo), 128, []field{
			f("nodeid", unsafe.Offsetof(eo.NodeID), unsafe.Sizeof(eo.NodeID), 0, 8),
			f("generation", unsafe.Offsetof(eo.Generation), unsafe.Sizeof(eo.Generation), 8, 8),
			f("entry_valid", unsafe.Offsetof(eo.EntryValid), unsafe.Sizeof(eo.EntryValid), 16, 8),
			f("attr_valid", unsafe.Offsetof(eo.AttrValid), unsafe.Sizeof(eo.AttrValid), 24, 8),
			f("entry_valid_nsec", unsafe.Offsetof(eo.EntryValidNsec), unsafe.Sizeof(eo.EntryValidNsec), 32, 4),
			f("attr_valid_nsec", unsafe.Offsetof(eo.AttrValidNsec), unsafe.Sizeof(eo.AttrValidNsec), 36, 4),
			f("attr", unsafe.Offsetof(eo.Attr), unsafe.Sizeof(eo.Attr), 40, 88),
		}},
		{"fuse_forget_in", unsafe.Sizeof(fi), 8, []field{
			f("nlookup", unsafe.Offsetof(fi.Nlookup), unsafe.Sizeof(fi.Nlookup), 0, 8),
		}},
		{"fuse_forget_one", unsafe.Sizeof(fo), 16, []field{
			f("nodeid", unsafe.Offsetof(fo.NodeID), unsafe.Sizeof(fo.NodeID), 0, 8),
			f("nlookup", unsafe.Offsetof(fo.Nlookup), unsafe.Sizeof(fo.Nlookup), 8, 8),
		}},
		{"fuse_batch_forget_in", unsafe.Sizeof(bf), 8, []field{
			f("count", unsafe.Offsetof(bf.Count), unsafe.Sizeof(bf.Count), 0, 4),
			f("dummy", unsafe.Offsetof(bf.Dummy), unsafe.Sizeof(bf.Dummy), 4, 4),
		}},
		{"fuse_getattr_in", unsafe.Sizeof(gi), 16, []field{
			f("getattr_flags", unsafe.Offsetof(gi.GetattrFlags), unsafe.Sizeof(gi.GetattrFlags), 0, 4),
			f("dummy", unsafe.Offsetof(gi.Dummy), unsafe.Sizeof(gi.Dummy), 4, 4),
			f("fh", unsafe.Offsetof(gi.Fh), unsafe.Sizeof(gi.Fh), 8, 8),
		}},
		{"fuse_attr_out", unsafe.Sizeof(ao), 104, []field{
			f("attr_valid", unsafe.Offsetof(ao.AttrValid), unsafe.Sizeof(ao.AttrValid), 0, 8),
			f("attr_valid_nsec", unsafe.Offsetof(ao.AttrValidNsec), unsafe.Sizeof(ao.AttrValidNsec), 8, 4),
			f("dummy", unsafe.Offsetof(ao.Dummy), unsafe.Sizeof(ao.Dummy), 12, 4),
			f("attr", unsafe.Offsetof(ao.Attr), unsafe.Sizeof(ao.Attr), 16, 88),
		}},
		{"fuse_statx_in", unsafe.Sizeof(si), 24, []field{
			f("getattr_flags", unsafe.Offsetof(si.GetattrFlags), unsafe.Sizeof(si.GetattrFlags), 0, 4),
			f("reserved", unsafe.Offsetof(si.Reserved), unsafe.Sizeof(si.Reserved), 4, 4),
			f("fh", unsafe.Offsetof(si.Fh), unsafe.Sizeof(si.Fh), 8, 8),
			f("sx_flags", unsafe.Offsetof(si.SxFlags), unsafe.Sizeof(si.SxFlags), 16, 4),
			f("sx_mask", unsafe.Offsetof(si.SxMask), unsafe.Sizeof(si.SxMask), 20, 4),
		}},
		{"fuse_statx_out", unsafe.Sizeof(so), 288, []field{
			f("attr_valid", unsafe.Offsetof(so.AttrValid), unsafe.Sizeof(so.AttrValid), 0, 8),
			f("attr_valid_nsec", unsafe.Offsetof(so.AttrValidNsec), unsafe.Sizeof(so.AttrValidNsec), 8, 4),
			f("flags", unsafe.Offsetof(so.Flags), unsafe.Sizeof(so.Flags), 12, 4),
			f("spare", unsafe.Offsetof(so.Spare), unsafe.Sizeof(so.Spare), 16, 16),
			f("stat", unsafe.Offsetof(so.Stat), unsafe.Sizeof(so.Stat), 32, 256),
		}},
		{"fuse_mknod_in", unsafe.Sizeof(mn), 16, []field{
			f("mode", unsafe.Offsetof(mn.Mode), unsafe.Sizeof(mn.Mode), 0, 4),
			f("rdev", unsafe.Offsetof(mn.Rdev), unsafe.Sizeof(mn.Rdev), 4, 4),
			f("umask", unsafe.Offsetof(mn.Umask), unsafe.Sizeof(mn.Umask), 8, 4),
			f("padding", unsafe.Offsetof(mn.Padding), unsafe.Sizeof(mn.Padding), 12, 4),
		}},
		{"fuse_mkdir_in", unsafe.Sizeof(md), 8, []field{
			f("mode", unsafe.Offsetof(md.Mode), unsafe.Sizeof(md.Mode), 0, 4),
			f("umask", unsafe.Offsetof(md.Umask), unsafe.Sizeof(md.Umask), 4, 4),
		}},
		{"fuse_rename_in", unsafe.Sizeof(rn), 8, []field{
			f("newdir", unsafe.Offsetof(rn.Newdir), unsafe.Sizeof(rn.Newdir), 0, 8),
		}},
		{"fuse_rename2_in", unsafe.Sizeof(r2), 16, []field{
			f("newdir", unsafe.Offsetof(r2.Newdir), unsafe.Sizeof(r2.Newdir), 0, 8),
			f("flags", unsafe.Offsetof(r2.Flags), unsafe.Sizeof(r2.Flags), 8, 4),
			f("padding", unsafe.Offsetof(r2.Padding), unsafe.Sizeof(r2.Padding), 12, 4),
		}},
		{"fuse_link_in", unsafe.Sizeof(li), 8, []field{
			f("oldnodeid", unsafe.Offsetof(li.Oldnodeid), unsafe.Sizeof(li.Oldnodeid), 0, 8),
		}},
		{"fuse_setattr_in", unsafe.Sizeof(sa), 88, []field{
			f("valid", unsafe.Offsetof(sa.Valid), unsafe.Sizeof(sa.Valid), 0, 4),
			f("padding", unsafe.Offsetof(sa.Padding), unsafe.Sizeof(sa.Padding), 4, 4),
			f("fh", unsafe.Offsetof(sa.Fh), unsafe.Sizeof(sa.Fh), 8, 8),
			f("size", unsafe.Offsetof(sa.Size), unsafe.Sizeof(sa.Size), 16, 8),
			f("lock_owner", unsafe.Offsetof(sa.LockOwner), unsafe.Sizeof(sa.LockOwner), 24, 8),
			f("atime", unsafe.Offsetof(sa.Atime), unsafe.Sizeof(sa.Atime), 32, 8),
			f("mtime", unsafe.Offsetof(sa.Mtime), unsafe.Sizeof(sa.Mtime), 40, 8),
			f("ctime", unsafe.Offsetof(sa.Ctime), unsafe.Sizeof(sa.Ctime), 48, 8),
			f("atimensec", unsafe.Offsetof(sa.Atimensec), unsafe.Sizeof(sa.Atimensec), 56, 4),
			f("mtimensec", unsafe.Offsetof(sa.Mtimensec), unsafe.Sizeof(sa.Mtimensec), 60, 4),
			f("ctimensec", unsafe.Offsetof(sa.Ctimensec), unsafe.Sizeof(sa.Ctimensec), 64, 4),
			f("mode", unsafe.Offsetof(sa.Mode), unsafe.Sizeof(sa.Mode), 68, 4),
			f("unused4", unsafe.Offsetof(sa.Unused4), unsafe.Sizeof(sa.Unused4), 72, 4),
			f("uid", unsafe.Offsetof(sa.Uid), unsafe.Sizeof(sa.Uid), 76, 4),
			f("gid", unsafe.Offsetof(sa.Gid), unsafe.Sizeof(sa.Gid), 80, 4),
			f("unused5", unsafe.Offsetof(sa.Unused5), unsafe.Sizeof(sa.Unused5), 84, 4),
		}},
		{"fuse_open_in", unsafe.Sizeof(oi), 8, []field{
			f("flags", unsafe.Offsetof(oi.Flags), unsafe.Sizeof(oi.Flags), 0, 4),
			f("open_flags", unsafe.Offsetof(oi.OpenFlags), unsafe.Sizeof(oi.OpenFlags), 4, 4),
		}},
		{"fuse_create_in", unsafe.Sizeof(ci), 16, []field{
			f("flags", unsafe.Offsetof(ci.Flags), unsafe.Sizeof(ci.Flags), 0, 4),
			f("mode", unsafe.Offsetof(ci.Mode), unsafe.Sizeof(ci.Mode), 4, 4),
			f("umask", unsafe.Offsetof(ci.Umask), unsafe.Sizeof(ci.Umask), 8, 4),
			f("open_flags", unsafe.Offsetof(ci.OpenFlags), unsafe.Sizeof(ci.OpenFlags), 12, 4),
		}},
		{"fuse_open_out", unsafe.Sizeof(oo), 16, []field{
			f("fh", unsafe.Offsetof(oo.Fh), unsafe.Sizeof(oo.Fh), 0, 8),
			f("open_flags", unsafe.Offsetof(oo.OpenFlags), unsafe.Sizeof(oo.OpenFlags), 8, 4),
			f("backing_id", unsafe.Offsetof(oo.BackingID), unsafe.Sizeof(oo.BackingID), 12, 4),
		}},
		{"fuse_entry_out+fuse_open_out (CREATE reply)", unsafe.Sizeof(co), 144, []field{
			f("entry", unsafe.Offsetof(co.Entry), unsafe.Sizeof(co.Entry), 0, 128),
			f("open", unsafe.Offsetof(co.Open), unsafe.Sizeof(co.Open), 128, 16),
		}},
		{"fuse_release_in", unsafe.Sizeof(ri), 24, []field{
			f("fh", unsafe.Offsetof(ri.Fh), unsafe.Sizeof(ri.Fh), 0, 8),
			f("flags", unsafe.Offsetof(ri.Flags), unsafe.Sizeof(ri.Flags), 8, 4),
			f("release_flags", unsafe.Offsetof(ri.ReleaseFlags), unsafe.Sizeof(ri.ReleaseFlags), 12, 4),
			f("lock_owner", unsafe.Offsetof(ri.LockOwner), unsafe.Sizeof(ri.LockOwner), 16, 8),
		}},
		{"fuse_flush_in", unsafe.Sizeof(fli), 24, []field{
			f("fh", unsafe.Offsetof(fli.Fh), unsafe.Sizeof(fli.Fh), 0, 8),
			f("unused", unsafe.Offsetof(fli.Unused), unsafe.Sizeof(fli.Unused), 8, 4),
			f("padding", unsafe.Offsetof(fli.Padding), unsafe.Sizeof(fli.Padding), 12, 4),
			f("lock_owner", unsafe.Offsetof(fli.LockOwner), unsafe.Sizeof(fli.LockOwner), 16, 8),
		}},
		{"fuse_read_in", unsafe.Sizeof(rd), 40, []field{
			f("fh", unsafe.Offsetof(rd.Fh), unsafe.Sizeof(rd.Fh), 0, 8),
			f("offset", unsafe.Offsetof(rd.Offset), unsafe.Sizeof(rd.Offset), 8, 8),
			f("size", unsafe.Offsetof(rd.Size), unsafe.Sizeof(rd.Size), 16, 4),
			f("read_flags", unsafe.Offsetof(rd.ReadFlags), unsafe.Sizeof(rd.ReadFlags), 20, 4),
			f("lock_owner", unsafe.Offsetof(rd.LockOwner), unsafe.Sizeof(rd.LockOwner), 24, 8),
			f("flags", unsafe.Offsetof(rd.Flags), unsafe.Sizeof(rd.Flags), 32, 4),
			f("padding", unsafe.Offsetof(rd.Padding), unsafe.Sizeof(rd.Padding), 36, 4),
		}},
		{"fuse_write_in", unsafe.Sizeof(wi), 40, []field{
			f("fh", unsafe.Offsetof(wi.Fh), unsafe.Sizeof(wi.Fh), 0, 8),
			f("offset", unsafe.Offsetof(wi.Offset), unsafe.Sizeof(wi.Offset), 8, 8),
			f("size", unsafe.Offsetof(wi.Size), unsafe.Sizeof(wi.Size), 16, 4),
			f("write_flags", unsafe.Offsetof(wi.WriteFlags), unsafe.Sizeof(wi.WriteFlags), 20, 4),
			f("lock_owner", unsafe.Offsetof(wi.LockOwner), unsafe.Sizeof(wi.LockOwner), 24, 8),
			f("flags", unsafe.Offsetof(wi.Flags), unsafe.Sizeof(wi.Flags), 32, 4),
			f("padding", unsafe.Offsetof(wi.Padding), unsafe.Sizeof(wi.Padding), 36, 4),
		}},
		{"fuse_write_out", unsafe.Sizeof(wo), 8, []field{
			f("size", unsafe.Offsetof(wo.Size), unsafe.Sizeof(wo.Size), 0, 4),
			f("padding", unsafe.Offsetof(wo.Padding), unsafe.Sizeof(wo.Padding), 4, 4),
		}},
		{"fuse_statfs_out", unsafe.Sizeof(sf), 80, []field{
			f("st", unsafe.Offsetof(sf.St), unsafe.Sizeof(sf.St), 0, 80),
		}},
		{"fuse_fsync_in", unsafe.Sizeof(fs), 16, []field{
			f("fh", unsafe.Offsetof(fs.Fh), unsafe.Sizeof(fs.Fh), 0, 8),
			f("fsync_flags", unsafe.Offsetof(fs.FsyncFlags), unsafe.Sizeof(fs.FsyncFlags), 8, 4),
			f("padding", unsafe.Offsetof(fs.Padding), unsafe.Sizeof(fs.Padding), 12, 4),
		}},
		{"fuse_setxattr_in", unsafe.Sizeof(sxi), 16, []field{
			f("size", unsafe.Offsetof(sxi.Size), unsafe.Sizeof(sxi.Size), 0, 4),
			f("flags", unsafe.Offsetof(sxi.Flags), unsafe.Sizeof(sxi.Flags), 4, 4),
			f("setxattr_flags", unsafe.Offsetof(sxi.SetxattrFlags), unsafe.Sizeof(sxi.SetxattrFlags), 8, 4),
			f("padding", unsafe.Offsetof(sxi.Padding), unsafe.Sizeof(sxi.Padding), 12, 4),
		}},
		{"fuse_getxattr_in", unsafe.Sizeof(gxi), 8, []field{
			f("size", unsafe.Offsetof(gxi.Size), unsafe.Sizeof(gxi.Size), 0, 4),
			f("padding", unsafe.Offsetof(gxi.Padding), unsafe.Sizeof(gxi.Padding), 4, 4),
		}},
		{"fuse_getxattr_out", unsafe.Sizeof(gxo), 8, []field{
			f("size", unsafe.Offsetof(gxo.Size), unsafe.Sizeof(gxo.Size), 0, 4),
			f("padding", unsafe.Offsetof(gxo.Padding), unsafe.Sizeof(gxo.Padding), 4, 4),
		}},
		{"fuse_lk_in", unsafe.Sizeof(lki), 48, []field{
			f("fh", unsafe.Offsetof(lki.Fh), unsafe.Sizeof(lki.Fh), 0, 8),
			f("owner", unsafe.Offsetof(lki.Owner), unsafe.Sizeof(lki.Owner), 8, 8),
			f("lk", unsafe.Offsetof(lki.Lk), unsafe.Sizeof(lki.Lk), 16, 24),
			f("lk_flags", unsafe.Offsetof(lki.LkFlags), unsafe.Sizeof(lki.LkFlags), 40, 4),
			f("padding", unsafe.Offsetof(lki.Padding), unsafe.Sizeof(lki.Padding), 44, 4),
		}},
		{"fuse_lk_out", unsafe.Sizeof(lko), 24, []field{
			f("lk", unsafe.Offsetof(lko.Lk), unsafe.Sizeof(lko.Lk), 0, 24),
		}},
		{"fuse_access_in", unsafe.Sizeof(ac), 8, []field{
			f("mask", unsafe.Offsetof(ac.Mask), unsafe.Sizeof(ac.Mask), 0, 4),
			f("padding", unsafe.Offsetof(ac.Padding), unsafe.Sizeof(ac.Padding), 4, 4),
		}},
		{"fuse_init_in", unsafe.Sizeof(ii), 64, []field{
			f("major", unsafe.Offsetof(ii.Major), unsafe.Sizeof(ii.Major), 0, 4),
			f("minor", unsafe.Offsetof(ii.Minor), unsafe.Sizeof(ii.Minor), 4, 4),
			f("max_readahead", unsafe.Offsetof(ii.MaxReadahead), unsafe.Sizeof(ii.MaxReadahead), 8, 4),
			f("flags", unsafe.Offsetof(ii.Flags), unsafe.Sizeof(ii.Flags), 12, 4),
			f("flags2", unsafe.Offsetof(ii.Flags2), unsafe.Sizeof(ii.Flags2), 16, 4),
			f("unused", unsafe.Offsetof(ii.Unused), unsafe.Sizeof(ii.Unused), 20, 44),
		}},
		{"fuse_init_out", unsafe.Sizeof(io), 64, []field{
			f("major", unsafe.Offsetof(io.Major), unsafe.Sizeof(io.Major), 0, 4),
			f("minor", unsafe.Offsetof(io.Minor), unsafe.Sizeof(io.Minor), 4, 4),
			f("max_readahead", unsafe.Offsetof(io.MaxReadahead), unsafe.Sizeof(io.MaxReadahead), 8, 4),
			f("flags", unsafe.Offsetof(io.Flags), unsafe.Sizeof(io.Flags), 12, 4),
			f("max_background", unsafe.Offsetof(io.MaxBackground), unsafe.Sizeof(io.MaxBackground), 16, 2),
			f("congestion_threshold", unsafe.Offsetof(io.CongestionThreshold), unsafe.Sizeof(io.CongestionThreshold), 18, 2),
			f("max_write", unsafe.Offsetof(io.MaxWrite), unsafe.Sizeof(io.MaxWrite), 20, 4),
			f("time_gran", unsafe.Offsetof(io.TimeGran), unsafe.Sizeof(io.TimeGran), 24, 4),
			f("max_pages", unsafe.Offsetof(io.MaxPages), unsafe.Sizeof(io.MaxPages), 28, 2),
			f("map_alignment", unsafe.Offsetof(io.MapAlignment), unsafe.Sizeof(io.MapAlignment), 30, 2),
			f("flags2", unsafe.Offsetof(io.Flags2), unsafe.Sizeof(io.Flags2), 32, 4),
			f("max_stack_depth", unsafe.Offsetof(io.MaxStackDepth), unsafe.Sizeof(io.MaxStackDepth), 36, 4),
			f("request_timeout", unsafe.Offsetof(io.RequestTimeout), unsafe.Sizeof(io.RequestTimeout), 40, 2),
			f("unused", unsafe.Offsetof(io.Unused), unsafe.Sizeof(io.Unused), 42, 22),
		}},
		{"cuse_init_in", unsafe.Sizeof(cii), 16, []field{
			f("major", unsafe.Offsetof(cii.Major), unsafe.Sizeof(cii.Major), 0, 4),
			f("minor", unsafe.Offsetof(cii.Minor), unsafe.Sizeof(cii.Minor), 4, 4),
			f("unused", unsafe.Offsetof(cii.Unused), unsafe.Sizeof(cii.Unused), 8, 4),
			f("flags", unsafe.Offsetof(cii.Flags), unsafe.Sizeof(cii.Flags), 12, 4),
		}},
		{"cuse_init_out", unsafe.Sizeof(cio), 72, []field{
			f("major", unsafe.Offsetof(cio.Major), unsafe.Sizeof(cio.Major), 0, 4),
			f("minor", unsafe.Offsetof(cio.Minor), unsafe.Sizeof(cio.Minor), 4, 4),
			f("unused", unsafe.Offsetof(cio.Unused), unsafe.Sizeof(cio.Unused), 8, 4),
			f("flags", unsafe.Offsetof(cio.Flags), unsafe.Sizeof(cio.Flags), 12, 4),
			f("max_read", unsafe.Offsetof(cio.MaxRead), unsafe.Sizeof(cio.MaxRead), 16, 4),
			f("max_write", unsafe.Offsetof(cio.MaxWrite), unsafe.Sizeof(cio.MaxWrite), 20, 4),
			f("dev_major", unsafe.Offsetof(cio.DevMajor), unsafe.Sizeof(cio.DevMajor), 24, 4),
			f("dev_minor", unsafe.Offsetof(cio.DevMinor), unsafe.Sizeof(cio.DevMinor), 28, 4),
			f("spare", unsafe.Offsetof(cio.Spare), unsafe.Sizeof(cio.Spare), 32, 40),
		}},
		{"fuse_interrupt_in", unsafe.Sizeof(iin), 8, []field{
			f("unique", unsafe.Offsetof(iin.Unique), unsafe.Sizeof(iin.Unique), 0, 8),
		}},
		{"fuse_bmap_in", unsafe.Sizeof(bmi), 16, []field{
			f("block", unsafe.Offsetof(bmi.Block), unsafe.Sizeof(bmi.Block), 0, 8),
			f("blocksize", unsafe.Offsetof(bmi.Blocksize), unsafe.Sizeof(bmi.Blocksize), 8, 4),
			f("padding", unsafe.Offsetof(bmi.Padding), unsafe.Sizeof(bmi.Padding), 12, 4),
		}},
		{"fuse_bmap_out", unsafe.Sizeof(bmo), 8, []field{
			f("block", unsafe.Offsetof(bmo.Block), unsafe.Sizeof(bmo.Block), 0, 8),
		}},
		{"fuse_ioctl_in", unsafe.Sizeof(ioi), 32, []field{
			f("fh", unsafe.Offsetof(ioi.Fh), unsafe.Sizeof(ioi.Fh), 0, 8),
			f("flags", unsafe.Offsetof(ioi.Flags), unsafe.Sizeof(ioi.Flags), 8, 4),
			f("cmd", unsafe.Offsetof(ioi.Cmd), unsafe.Sizeof(ioi.Cmd), 12, 4),
			f("arg", unsafe.Offsetof(ioi.Arg), unsafe.Sizeof(ioi.Arg), 16, 8),
			f("in_size", unsafe.Offsetof(ioi.InSize), unsafe.Sizeof(ioi.InSize), 24, 4),
			f("out_size", unsafe.Offsetof(ioi.OutSize), unsafe.Sizeof(ioi.OutSize), 28, 4),
		}},
		{"fuse_ioctl_iovec", unsafe.Sizeof(iov), 16, []field{
			f("base", unsafe.Offsetof(iov.Base), unsafe.Sizeof(iov.Base), 0, 8),
			f("len", unsafe.Offsetof(iov.Len), unsafe.Sizeof(iov.Len), 8, 8),
		}},
		{"fuse_ioctl_out", unsafe.Sizeof(ioo), 16, []field{
			f("result", unsafe.Offsetof(ioo.Result), unsafe.Sizeof(ioo.Result), 0, 4),
			f("flags", unsafe.Offsetof(ioo.Flags), unsafe.Sizeof(ioo.Flags), 4, 4),
			f("in_iovs", unsafe.Offsetof(ioo.InIovs), unsafe.Sizeof(ioo.InIovs), 8, 4),
			f("out_iovs", unsafe.Offsetof(ioo.OutIovs), unsafe.Sizeof(ioo.OutIovs), 12, 4),
		}},
		{"fuse_poll_in", unsafe.Sizeof(pi), 24, []field{
			f("fh", unsafe.Offsetof(pi.Fh), unsafe.Sizeof(pi.Fh), 0, 8),
			f("kh", unsafe.Offsetof(pi.Kh), unsafe.Sizeof(pi.Kh), 8, 8),
			f("flags", unsafe.Offsetof(pi.Flags), unsafe.Sizeof(pi.Flags), 16, 4),
			f("events", unsafe.Offsetof(pi.Events), unsafe.Sizeof(pi.Events), 20, 4),
		}},
		{"fuse_poll_out", unsafe.Sizeof(po), 8, []field{
			f("revents", unsafe.Offsetof(po.Revents), unsafe.Sizeof(po.Revents), 0, 4),
			f("padding", unsafe.Offsetof(po.Padding), unsafe.Sizeof(po.Padding), 4, 4),
		}},
		{"fuse_notify_poll_wakeup_out", unsafe.Sizeof(pw), 8, []field{
			f("kh", unsafe.Offsetof(pw.Kh), unsafe.Sizeof(pw.Kh), 0, 8),
		}},
		{"fuse_fallocate_in", unsafe.Sizeof(fa), 32, []field{
			f("fh", unsafe.Offsetof(fa.Fh), unsafe.Sizeof(fa.Fh), 0, 8),
			f("offset", unsafe.Offsetof(fa.Offset), unsafe.Sizeof(fa.Offset), 8, 8),
			f("length", unsafe.Offsetof(fa.Length), unsafe.Sizeof(fa.Length), 16, 8),
			f("mode", unsafe.Offsetof(fa.Mode), unsafe.Sizeof(fa.Mode), 24, 4),
			f("padding", unsafe.Offsetof(fa.Padding), unsafe.Sizeof(fa.Padding), 28, 4),
		}},
		{"fuse_dirent (without name)", unsafe.Sizeof(de), DirentNameOffset, []field{
			f("ino", unsafe.Offsetof(de.Ino), unsafe.Sizeof(de.Ino), 0, 8),
			f("off", unsafe.Offsetof(de.Off), unsafe.Sizeof(de.Off), 8, 8),
			f("namelen", unsafe.Offsetof(de.Namelen), unsafe.Sizeof(de.Namelen), 16, 4),
			f("type", unsafe.Offsetof(de.Type), unsafe.Sizeof(de.Type), 20, 4),
		}},
		{"fuse_direntplus (without name)", unsafe.Sizeof(dp), DirentplusNameOffset, []field{
			f("entry_out", unsafe.Offsetof(dp.EntryOut), unsafe.Sizeof(dp.EntryOut), 0, 128),
			f("dirent", unsafe.Offsetof(dp.Dirent), unsafe.Sizeof(dp.Dirent), 128, 24),
		}},
		{"fuse_notify_inval_inode_out", unsafe.Sizeof(nii), 24, []field{
			f("ino", unsafe.Offsetof(nii.Ino), unsafe.Sizeof(nii.Ino), 0, 8),
			f("off", unsafe.Offsetof(nii.Off), unsafe.Sizeof(nii.Off), 8, 8),
			f("len", unsafe.Offsetof(nii.Len), unsafe.Sizeof(nii.Len), 16, 8),
		}},
		{"fuse_notify_inval_entry_out", unsafe.Sizeof(nie), 16, []field{
			f("parent", unsafe.Offsetof(nie.Parent), unsafe.Sizeof(nie.Parent), 0, 8),
			f("namelen", unsafe.Offsetof(nie.Namelen), unsafe.Sizeof(nie.Namelen), 8, 4),
			f("flags", unsafe.Offsetof(nie.Flags), unsafe.Sizeof(nie.Flags), 12, 4),
		}},
		{"fuse_notify_delete_out", unsafe.Sizeof(nd), 24, []field{
			f("parent", unsafe.Offsetof(nd.Parent), unsafe.Sizeof(nd.Parent), 0, 8),
			f("child", unsafe.Offsetof(nd.Child), unsafe.Sizeof(nd.Child), 8, 8),
			f("namelen", unsafe.Offsetof(nd.Namelen), unsafe.Sizeof(nd.Namelen), 16, 4),
			f("padding", unsafe.Offsetof(nd.Padding), unsafe.Sizeof(nd.Padding), 20, 4),
		}},
		{"fuse_notify_store_out", unsafe.Sizeof(ns), 24, []field{
			f("nodeid", unsafe.Offsetof(ns.NodeID), unsafe.Sizeof(ns.NodeID), 0, 8),
			f("offset", unsafe.Offsetof(ns.Offset), unsafe.Sizeof(ns.Offset), 8, 8),
			f("size", unsafe.Offsetof(ns.Size), unsafe.Sizeof(ns.Size), 16, 4),
			f("padding", unsafe.Offsetof(ns.Padding), unsafe.Sizeof(ns.Padding), 20, 4),
		}},
		{"fuse_notify_retrieve_out", unsafe.Sizeof(nro), 32, []field{
			f("notify_unique", unsafe.Offsetof(nro.NotifyUnique), unsafe.Sizeof(nro.NotifyUnique), 0, 8),
			f("nodeid", unsafe.Offsetof(nro.NodeID), unsafe.Sizeof(nro.NodeID), 8, 8),
			f("offset", unsafe.Offsetof(nro.Offset), unsafe.Sizeof(nro.Offset), 16, 8),
			f("size", unsafe.Offsetof(nro.Size), unsafe.Sizeof(nro.Size), 24, 4),
			f("padding", unsafe.Offsetof(nro.Padding), unsafe.Sizeof(nro.Padding), 28, 4),
		}},
		{"fuse_notify_retrieve_in", unsafe.Sizeof(nri), 40, []field{
			f("dummy1", unsafe.Offsetof(nri.Dummy1), unsafe.Sizeof(nri.Dummy1), 0, 8),
			f("offset", unsafe.Offsetof(nri.Offset), unsafe.Sizeof(nri.Offset), 8, 8),
			f("size", unsafe.Offsetof(nri.Size), unsafe.Sizeof(nri.Size), 16, 4),
			f("dummy2", unsafe.Offsetof(nri.Dummy2), unsafe.Sizeof(nri.Dummy2), 20, 4),
			f("dummy3", unsafe.Offsetof(nri.Dummy3), unsafe.Sizeof(nri.Dummy3), 24, 8),
			f("dummy4", unsafe.Offsetof(nri.Dummy4), unsafe.Sizeof(nri.Dummy4), 32, 8),
		}},
		{"fuse_notify_prune_out", unsafe.Sizeof(np), 16, []field{
			f("count", unsafe.Offsetof(np.Count), unsafe.Sizeof(np.Count), 0, 4),
			f("padding", unsafe.Offsetof(np.Padding), unsafe.Sizeof(np.Padding), 4, 4),
			f("spare", unsafe.Offsetof(np.Spare), unsafe.Sizeof(np.Spare), 8, 8),
		}},
		{"fuse_backing_map", unsafe.Sizeof(bm), 16, []field{
			f("fd", unsafe.Offsetof(bm.Fd), unsafe.Sizeof(bm.Fd), 0, 4),
			f("flags", unsafe.Offsetof(bm.Flags), unsafe.Sizeof(bm.Flags), 4, 4),
			f("padding", unsafe.Offsetof(bm.Padding), unsafe.Sizeof(bm.Padding), 8, 8),
		}},
		{"fuse_lseek_in", unsafe.Sizeof(lsi), 24, []field{
			f("fh", unsafe.Offsetof(lsi.Fh), unsafe.Sizeof(lsi.Fh), 0, 8),
			f("offset", unsafe.Offsetof(lsi.Offset), unsafe.Sizeof(lsi.Offset), 8, 8),
			f("whence", unsafe.Offsetof(lsi.Whence), unsafe.Sizeof(lsi.Whence), 16, 4),
			f("padding", unsafe.Offsetof(lsi.Padding), unsafe.Sizeof(lsi.Padding), 20, 4),
		}},
		{"fuse_lseek_out", unsafe.Sizeof(lso), 8, []field{
			f("offset", unsafe.Offsetof(lso.Offset), unsafe.Sizeof(lso.Offset), 0, 8),
		}},
		{"fuse_copy_file_range_in", unsafe.Sizeof(cfi), 56, []field{
			f("fh_in", unsafe.Offsetof(cfi.FhIn), unsafe.Sizeof(cfi.FhIn), 0, 8),
			f("off_in", unsafe.Offsetof(cfi.OffIn), unsafe.Sizeof(cfi.OffIn), 8, 8),
			f("nodeid_out", unsafe.Offsetof(cfi.NodeidOut), unsafe.Sizeof(cfi.NodeidOut), 16, 8),
			f("fh_out", unsafe.Offsetof(cfi.FhOut), unsafe.Sizeof(cfi.FhOut), 24, 8),
			f("off_out", unsafe.Offsetof(cfi.OffOut), unsafe.Sizeof(cfi.OffOut), 32, 8),
			f("len", unsafe.Offsetof(cfi.Len), unsafe.Sizeof(cfi.Len), 40, 8),
			f("flags", unsafe.Offsetof(cfi.Flags), unsafe.Sizeof(cfi.Flags), 48, 8),
		}},
		{"fuse_copy_file_range_out", unsafe.Sizeof(cfo), 8, []field{
			f("bytes_copied", unsafe.Offsetof(cfo.BytesCopied), unsafe.Sizeof(cfo.BytesCopied), 0, 8),
		}},
		{"fuse_setupmapping_in", unsafe.Sizeof(smi), 40, []field{
			f("fh", unsafe.Offsetof(smi.Fh), unsafe.Sizeof(smi.Fh), 0, 8),
			f("foffset", unsafe.Offsetof(smi.Foffset), unsafe.Sizeof(smi.Foffset), 8, 8),
			f("len", unsafe.Offsetof(smi.Len), unsafe.Sizeof(smi.Len), 16, 8),
			f("flags", unsafe.Offsetof(smi.Flags), unsafe.Sizeof(smi.Flags), 24, 8),
			f("moffset", unsafe.Offsetof(smi.Moffset), unsafe.Sizeof(smi.Moffset), 32, 8),
		}},
		{"fuse_removemapping_in", unsafe.Sizeof(rmi), 4, []field{
			f("count", unsafe.Offsetof(rmi.Count), unsafe.Sizeof(rmi.Count), 0, 4),
		}},
		{"fuse_removemapping_one", unsafe.Sizeof(rmo), 16, []field{
			f("moffset", unsafe.Offsetof(rmo.Moffset), unsafe.Sizeof(rmo.Moffset), 0, 8),
			f("len", unsafe.Offsetof(rmo.Len), unsafe.Sizeof(rmo.Len), 8, 8),
		}},
		{"fuse_syncfs_in", unsafe.Sizeof(sfi), 8, []field{
			f("padding", unsafe.Offsetof(sfi.Padding), unsafe.Sizeof(sfi.Padding), 0, 8),
		}},
		{"fuse_secctx", unsafe.Sizeof(sc), 8, []field{
			f("size", unsafe.Offsetof(sc.Size), unsafe.Sizeof(sc.Size), 0, 4),
			f("padding", unsafe.Offsetof(sc.Padding), unsafe.Sizeof(sc.Padding), 4, 4),
		}},
		{"fuse_secctx_header", unsafe.Sizeof(sch), 8, []field{
			f("size", unsafe.Offsetof(sch.Size), unsafe.Sizeof(sch.Size), 0, 4),
			f("nr_secctx", unsafe.Offsetof(sch.NrSecctx), unsafe.Sizeof(sch.NrSecctx), 4, 4),
		}},
		{"fuse_ext_header", unsafe.Sizeof(eh), 8, []field{
			f("size", unsafe.Offsetof(eh.Size), unsafe.Sizeof(eh.Size), 0, 4),
			f("type", unsafe.Offsetof(eh.Type), unsafe.Sizeof(eh.Type), 4, 4),
		}},
		{"fuse_supp_groups (without groups)", unsafe.Sizeof(sg), 4, []field{
			f("nr_groups", unsafe.Offsetof(sg.NrGroups), unsafe.Sizeof(sg.NrGroups), 0, 4),
		}},
	}
}

func TestLayout(t *testing.T) {
	for _, l := range layouts() {
		if l.size != l.want {
			t.Errorf("sizeof(%s) = %d, want %d", l.cname, l.size, l.want)
		}
		end := uintptr(0)
		for _, fl := range l.fields {
			if fl.got != fl.want {
				t.Errorf("%s.%s at %d, want %d", l.cname, fl.name, fl.got, fl.want)
			}
			if fl.gotSize != fl.wantSize {
				t.Errorf("%s.%s is %d bytes, want %d", l.cname, fl.name, fl.gotSize, fl.wantSize)
			}
			if fl.got < end {
				t.Errorf("%s.%s overlaps the previous field", l.cname, fl.name)
			}
			end = fl.got + fl.gotSize
		}
		// The fields listed must tile the whole struct: a missed field
		// would otherwise hide in the padding.
		if end != l.size {
			t.Errorf("%s: fields end at %d, size %d", l.cname, end, l.size)
		}
	}
}

// TestCompatSizes checks the compat sizes against the structs they cut:
// each must end on a field boundary of the current layout.
func TestCompatSizes(t *testing.T) {
	var (
		eo EntryOut
		ao AttrOut
		wi WriteIn
		ri ReadIn
		ii InitIn
		io InitOut
		mn MknodIn
		sx SetxattrIn
	)
	cases := []struct {
		name      string
		size, cut uintptr
	}{
		// Before 7.9 fuse_attr lacked blksize and padding (8 bytes).
		{"FUSE_COMPAT_ENTRY_OUT_SIZE", CompatEntryOutSize, unsafe.Sizeof(eo) - 8},
		{"FUSE_COMPAT_ATTR_OUT_SIZE", CompatAttrOutSize, unsafe.Sizeof(ao) - 8},
		{"FUSE_COMPAT_WRITE_IN_SIZE", CompatWriteInSize, unsafe.Offsetof(wi.LockOwner)},
		{"read_in before 7.9", CompatReadInSize, unsafe.Offsetof(ri.LockOwner)},
		{"FUSE_COMPAT_MKNOD_IN_SIZE", CompatMknodInSize, unsafe.Offsetof(mn.Umask)},
		{"FUSE_COMPAT_SETXATTR_IN_SIZE", CompatSetxattrInSize, unsafe.Offsetof(sx.SetxattrFlags)},
		{"init_in before 7.36", CompatInitInSize, unsafe.Offsetof(ii.Flags2)},
		{"FUSE_COMPAT_INIT_OUT_SIZE", CompatInitOutSize, unsafe.Offsetof(io.MaxReadahead)},
		{"FUSE_COMPAT_22_INIT_OUT_SIZE", Compat22InitOutSize, unsafe.Offsetof(io.TimeGran)},
		{"FUSE_COMPAT_STATFS_SIZE", CompatStatfsSize, 48},
	}
	for _, c := range cases {
		if c.size != c.cut {
			t.Errorf("%s = %d, want %d", c.name, c.size, c.cut)
		}
	}
	// The kernel values, restated so a typo in the constants shows twice.
	want := map[string]int{"entry": 120, "attr": 96, "mknod": 8, "write": 24, "statfs": 48,
		"setxattr": 8, "init": 8, "init22": 24}
	got := map[string]int{"entry": CompatEntryOutSize, "attr": CompatAttrOutSize, "mknod": CompatMknodInSize,
		"write": CompatWriteInSize, "statfs": CompatStatfsSize, "setxattr": CompatSetxattrInSize,
		"init": CompatInitOutSize, "init22": Compat22InitOutSize}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("compat %s = %d, want %d", k, got[k], v)
		}
	}
}

func TestDirentSizes(t *testing.T) {
	for _, c := range []struct{ namelen, plain, plus int }{
		{1, 32, 160}, {7, 32, 160}, {8, 32, 160}, {9, 40, 168}, {255, 280, 408},
	} {
		if got := DirentSize(c.namelen); got != c.plain {
			t.Errorf("DirentSize(%d) = %d, want %d", c.namelen, got, c.plain)
		}
		if got := DirentplusSize(c.namelen); got != c.plus {
			t.Errorf("DirentplusSize(%d) = %d, want %d", c.namelen, got, c.plus)
		}
	}
}
