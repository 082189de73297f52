package fuse_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/e4box/e4box/fuse/fusetest"
)

// Golden byte vectors for every opcode the runtime dispatches. Requests and
// replies are written as they appear on /dev/fuse (little-endian, the host
// order on the machines we run on), one annotated 8-byte row per line.
// Every request has the same header shape:
//
//	len, opcode | unique | nodeid | uid, gid | pid, total_extlen, padding

// attrRows is goldenAttr as struct fuse_attr.
var attrRows = []string{
	"0500000000000000",  // ino 5
	"0010000000000000",  // size 4096
	"0800000000000000",  // blocks 8
	"0000006500000000",  // atime
	"0000006500000000",  // mtime
	"0000006500000000",  // ctime
	"01000000 02000000", // atimensec 1, mtimensec 2
	"03000000 a4810000", // ctimensec 3, mode 0100644
	"01000000 e8030000", // nlink 1, uid 1000
	"e8030000 00000000", // gid 1000, rdev 0
	"00100000 00000000", // blksize 4096, flags 0
}

// entryRows is goldenEntry as struct fuse_entry_out.
var entryRows = slices.Concat([]string{
	"0500000000000000",  // nodeid 5
	"0700000000000000",  // generation 7
	"0100000000000000",  // entry_valid 1
	"0200000000000000",  // attr_valid 2
	"00000000 00000000", // entry_valid_nsec, attr_valid_nsec
}, attrRows)

// attrOutRows is struct fuse_attr_out with attr_valid 2.
var attrOutRows = slices.Concat([]string{
	"0200000000000000",  // attr_valid 2
	"00000000 00000000", // attr_valid_nsec, dummy
}, attrRows)

func zeroRows(n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = "0000000000000000"
	}
	return r
}

func hx(parts ...[]string) []byte { return fusetest.Hex(slices.Concat(parts...)...) }

type goldenCase struct {
	name  string
	req   []byte
	calls []string // what goldenFS must record
	reply []byte   // nil: the opcode has no reply
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"LOOKUP", hx([]string{
			"2c000000 01000000", // len 44, LOOKUP
			"1000000000000000",  // unique 0x10
			"0100000000000000",  // nodeid 1
			"e8030000 e8030000", // uid 1000, gid 1000
			"2a000000 00000000", // pid 42
			"666f6f00",          // "foo\0"
		}), []string{"Lookup(1, foo) uid=1000 gid=1000 pid=42"}, hx([]string{
			"90000000 00000000", // len 144, error 0
			"1000000000000000",  // unique
		}, entryRows)},

		{"GETATTR", hx([]string{
			"38000000 03000000", // len 56, GETATTR
			"1200000000000000",  // unique
			"0500000000000000",  // nodeid 5
			"e8030000 e8030000",
			"2a000000 00000000",
			"01000000 00000000", // getattr_flags FH, dummy
			"1100000000000000",  // fh 0x11
		}), []string{"GetAttr(5, flags=FH fh=17)"}, hx([]string{
			"78000000 00000000", // len 120
			"1200000000000000",
		}, attrOutRows)},

		{"SETATTR", hx([]string{
			"80000000 04000000", // len 128, SETATTR
			"1400000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"09000000 00000000", // valid MODE|SIZE, padding
			"0000000000000000",  // fh
			"0020000000000000",  // size 8192
			"0000000000000000",  // lock_owner
			"0000000000000000",  // atime
			"0000000000000000",  // mtime
			"0000000000000000",  // ctime
			"00000000 00000000", // atimensec, mtimensec
			"00000000 80810000", // ctimensec, mode 0100600
			"00000000 00000000", // unused4, uid
			"00000000 00000000", // gid, unused5
		}), []string{"SetAttr(5, valid=MODE|SIZE size=8192 mode=100600)"}, hx([]string{
			"78000000 00000000",
			"1400000000000000",
		}, attrOutRows)},

		{"READLINK", hx([]string{
			"28000000 05000000", // len 40, READLINK
			"1600000000000000",
			"0600000000000000", // nodeid 6
			"e8030000 e8030000",
			"2a000000 00000000",
		}), []string{"ReadLink(6)"}, hx([]string{
			"16000000 00000000", // len 22
			"1600000000000000",
			"746172676574", // "target"
		})},

		{"SYMLINK", hx([]string{
			"32000000 06000000", // len 50, SYMLINK
			"1800000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"6c6e0074 61726765", // "ln\0" "targe"
			"7400",              // "t\0"
		}), []string{"Symlink(1, ln -> target)"}, hx([]string{
			"90000000 00000000",
			"1800000000000000",
		}, entryRows)},

		{"MKNOD", hx([]string{
			"3a000000 08000000", // len 58, MKNOD
			"1a00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"a4110000 00000000", // mode 010644 (fifo), rdev 0
			"12000000 00000000", // umask 022, padding
			"7000",              // "p\0"
		}), []string{"Mknod(1, p, mode=10644 rdev=0 umask=22)"}, hx([]string{
			"90000000 00000000",
			"1a00000000000000",
		}, entryRows)},

		{"MKDIR", hx([]string{
			"32000000 09000000", // len 50, MKDIR
			"1c00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"ed010000 12000000", // mode 0755, umask 022
			"6400",              // "d\0"
		}), []string{"Mkdir(1, d, mode=755 umask=22)"}, hx([]string{
			"90000000 00000000",
			"1c00000000000000",
		}, entryRows)},

		{"UNLINK", hx([]string{
			"2c000000 0a000000", // len 44, UNLINK
			"1e00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"666f6f00", // "foo\0"
		}), []string{"Unlink(1, foo)"}, hx([]string{
			"10000000 00000000", // len 16, error 0
			"1e00000000000000",
		})},

		{"RMDIR", hx([]string{
			"2a000000 0b000000", // len 42, RMDIR
			"2000000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"6400", // "d\0"
		}), []string{"Rmdir(1, d)"}, hx([]string{
			"10000000 00000000",
			"2000000000000000",
		})},

		{"RENAME", hx([]string{
			"34000000 0c000000", // len 52, RENAME
			"2200000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0700000000000000", // newdir 7
			"61006200",         // "a\0" "b\0"
		}), []string{"Rename(1, a -> 7, b, flags=0)"}, hx([]string{
			"10000000 00000000",
			"2200000000000000",
		})},

		{"RENAME2", hx([]string{
			"3c000000 2d000000", // len 60, RENAME2
			"2400000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0700000000000000",  // newdir 7
			"01000000 00000000", // flags RENAME_NOREPLACE, padding
			"61006200",          // "a\0" "b\0"
		}), []string{"Rename(1, a -> 7, b, flags=1)"}, hx([]string{
			"10000000 00000000",
			"2400000000000000",
		})},

		{"LINK", hx([]string{
			"32000000 0d000000", // len 50, LINK
			"2600000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0500000000000000", // oldnodeid 5
			"6800",             // "h\0"
		}), []string{"Link(1, h, old=5)"}, hx([]string{
			"90000000 00000000",
			"2600000000000000",
		}, entryRows)},

		{"OPEN", hx([]string{
			"30000000 0e000000", // len 48, OPEN
			"2800000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"02000000 00000000", // flags O_RDWR, open_flags
		}), []string{"Open(5, flags=0x2)"}, hx([]string{
			"20000000 00000000", // len 32
			"2800000000000000",
			"9900000000000000",  // fh 0x99
			"02000000 00000000", // open_flags KEEP_CACHE, backing_id
		})},

		{"READ", hx([]string{
			"50000000 0f000000", // len 80, READ
			"2a00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"1000000000000000",  // offset 16
			"08000000 00000000", // size 8, read_flags
			"0000000000000000",  // lock_owner
			"02000000 00000000", // flags O_RDWR, padding
		}), []string{"Read(5, fh=0x99 off=16 size=8 len(buf)=8)"}, hx([]string{
			"15000000 00000000", // len 21
			"2a00000000000000",
			"68656c6c6f", // "hello" (short read)
		})},

		{"WRITE", hx([]string{
			"55000000 10000000", // len 85, WRITE
			"2c00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"0000000000000000",  // offset 0
			"05000000 00000000", // size 5, write_flags
			"0000000000000000",  // lock_owner
			"02000000 00000000", // flags, padding
			"776f726c64",        // "world"
		}), []string{"Write(5, fh=0x99 off=0 data=world)"}, hx([]string{
			"18000000 00000000", // len 24
			"2c00000000000000",
			"05000000 00000000", // size 5, padding
		})},

		{"STATFS", hx([]string{
			"28000000 11000000", // len 40, STATFS
			"2e00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
		}), []string{"StatFs(1)"}, hx([]string{
			"60000000 00000000", // len 96
			"2e00000000000000",
			"6400000000000000",  // blocks 100
			"3200000000000000",  // bfree 50
			"2800000000000000",  // bavail 40
			"0a00000000000000",  // files 10
			"0500000000000000",  // ffree 5
			"00100000 ff000000", // bsize 4096, namelen 255
			"00100000 00000000", // frsize 4096, padding
		}, zeroRows(3))}, // spare[6]

		{"RELEASE", hx([]string{
			"40000000 12000000", // len 64, RELEASE
			"3000000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"02000000 01000000", // flags O_RDWR, release_flags FLUSH
			"0000000000000000",  // lock_owner
		}), []string{"Release(5, fh=0x99 flags=0x2 FLUSH)"}, hx([]string{
			"10000000 00000000",
			"3000000000000000",
		})},

		{"FSYNC", hx([]string{
			"38000000 14000000", // len 56, FSYNC
			"3200000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"01000000 00000000", // fsync_flags FDATASYNC
		}), []string{"Fsync(5, fh=0x99 FDATASYNC)"}, hx([]string{
			"10000000 00000000",
			"3200000000000000",
		})},

		{"SETXATTR (no SETXATTR_EXT: 8-byte header)", hx([]string{
			"3a000000 15000000", // len 58, SETXATTR
			"3400000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"03000000 01000000", // size 3, flags XATTR_CREATE
			"757365722e610078",  // "user.a\0" "x"
			"797a",              // "yz"
		}), []string{"SetXattr(5, user.a=xyz flags=1 0)"}, hx([]string{
			"10000000 00000000",
			"3400000000000000",
		})},

		{"GETXATTR size probe", hx([]string{
			"37000000 16000000", // len 55, GETXATTR
			"3600000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00000000 00000000", // size 0, padding
			"757365722e6100",    // "user.a\0"
		}), []string{"GetXattr(5, user.a, len(dest)=0)"}, hx([]string{
			"18000000 00000000", // len 24
			"3600000000000000",
			"03000000 00000000", // size 3, padding
		})},

		{"GETXATTR value", hx([]string{
			"37000000 16000000",
			"3800000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"10000000 00000000", // size 16
			"757365722e6100",
		}), []string{"GetXattr(5, user.a, len(dest)=16)"}, hx([]string{
			"13000000 00000000", // len 19
			"3800000000000000",
			"78797a", // "xyz"
		})},

		{"GETXATTR buffer too small", hx([]string{
			"37000000 16000000",
			"3a00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"02000000 00000000", // size 2
			"757365722e6100",
		}), []string{"GetXattr(5, user.a, len(dest)=2)"}, hx([]string{
			"10000000 deffffff", // len 16, error -ERANGE
			"3a00000000000000",
		})},

		{"LISTXATTR size probe", hx([]string{
			"30000000 17000000", // len 48, LISTXATTR
			"3c00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00000000 00000000", // size 0
		}), []string{"ListXattr(5, len(dest)=0)"}, hx([]string{
			"18000000 00000000",
			"3c00000000000000",
			"0e000000 00000000", // size 14
		})},

		{"LISTXATTR names", hx([]string{
			"30000000 17000000",
			"3e00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"40000000 00000000", // size 64
		}), []string{"ListXattr(5, len(dest)=64)"}, hx([]string{
			"1e000000 00000000", // len 30
			"3e00000000000000",
			"757365722e610075", // "user.a\0" "u"
			"7365722e6200",     // "ser.b\0"
		})},

		{"REMOVEXATTR", hx([]string{
			"2f000000 18000000", // len 47, REMOVEXATTR
			"4000000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"757365722e6100", // "user.a\0"
		}), []string{"RemoveXattr(5, user.a)"}, hx([]string{
			"10000000 00000000",
			"4000000000000000",
		})},

		{"FLUSH", hx([]string{
			"40000000 19000000", // len 64, FLUSH
			"4200000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"00000000 00000000", // unused, padding
			"3412000000000000",  // lock_owner 0x1234
		}), []string{"Flush(5, fh=0x99 owner=0x1234)"}, hx([]string{
			"10000000 00000000",
			"4200000000000000",
		})},

		{"OPENDIR", hx([]string{
			"30000000 1b000000", // len 48, OPENDIR
			"4400000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00000100 00000000", // flags O_DIRECTORY
		}), []string{"OpenDir(1, flags=0x10000)"}, hx([]string{
			"20000000 00000000",
			"4400000000000000",
			"4200000000000000",  // fh 0x42
			"08000000 00000000", // open_flags CACHE_DIR
		})},

		{"READDIR (third entry does not fit)", hx([]string{
			"50000000 1c000000", // len 80, READDIR
			"4600000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"4200000000000000",  // fh
			"0000000000000000",  // offset 0
			"50000000 00000000", // size 80
			"0000000000000000",
			"00000000 00000000",
		}), []string{"ReadDir(1, fh=0x42 off=0 size=80) added=2"}, hx([]string{
			"50000000 00000000", // len 80
			"4600000000000000",
			"0100000000000000",  // ino 1
			"0100000000000000",  // off 1
			"01000000 08000000", // namelen 1, type DT_REG
			"2e00000000000000",  // ".", padding
			"0500000000000000",  // ino 5
			"0200000000000000",  // off 2
			"03000000 08000000", // namelen 3, type DT_REG
			"666f6f0000000000",  // "foo", padding
		})},

		{"READDIRPLUS", hx([]string{
			"50000000 2c000000", // len 80, READDIRPLUS
			"4800000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"4200000000000000",  // fh
			"0000000000000000",  // offset 0
			"90010000 00000000", // size 400
			"0000000000000000",
			"00000000 00000000",
		}), []string{"ReadDirPlus(1, fh=0x42 off=0 size=400) added=2"}, hx([]string{
			"50010000 00000000", // len 336
			"4800000000000000",
		}, zeroRows(5), []string{ // ".": entry_out with nodeid 0 (no lookup)
			"0100000000000000", // attr.ino 1
		}, zeroRows(5), []string{
			"00000000 00000000", // atimensec, mtimensec
			"00000000 ed410000", // ctimensec, mode 040755
			"00000000 00000000", // nlink, uid
			"00000000 00000000", // gid, rdev
			"00000000 00000000", // blksize, flags
			"0100000000000000",  // dirent ino 1
			"0100000000000000",  // off 1
			"01000000 04000000", // namelen 1, type DT_DIR
			"2e00000000000000",  // "."
		}, entryRows, []string{ // "foo"
			"0500000000000000",  // dirent ino 5
			"0200000000000000",  // off 2
			"03000000 08000000", // namelen 3, type DT_REG
			"666f6f0000000000",  // "foo"
		})},

		{"RELEASEDIR", hx([]string{
			"40000000 1d000000", // len 64, RELEASEDIR
			"4a00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"4200000000000000", // fh
			"00000000 00000000",
			"0000000000000000",
		}), []string{"ReleaseDir(1, fh=0x42)"}, hx([]string{
			"10000000 00000000",
			"4a00000000000000",
		})},

		{"FSYNCDIR", hx([]string{
			"38000000 1e000000", // len 56, FSYNCDIR
			"4c00000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"4200000000000000",
			"00000000 00000000",
		}), []string{"FsyncDir(1, fh=0x42 0)"}, hx([]string{
			"10000000 00000000",
			"4c00000000000000",
		})},

		{"GETLK", hx([]string{
			"58000000 1f000000", // len 88, GETLK
			"4e00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"7700000000000000",  // owner
			"0000000000000000",  // lk.start
			"6400000000000000",  // lk.end 100
			"01000000 2a000000", // lk.type F_WRLCK, lk.pid 42
			"00000000 00000000", // lk_flags, padding
		}), []string{"GetLk(5, fh=0x99 owner=0x77 0-100 type=1 pid=42)"}, hx([]string{
			"28000000 00000000", // len 40
			"4e00000000000000",
			"0000000000000000",
			"0000000000000000",
			"02000000 00000000", // type F_UNLCK
		})},

		{"SETLK", hx([]string{
			"58000000 20000000", // len 88, SETLK
			"5000000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",
			"7700000000000000",
			"0000000000000000",
			"6400000000000000",
			"01000000 2a000000",
			"00000000 00000000",
		}), []string{"SetLk(5, type=1 wait=false)"}, hx([]string{
			"10000000 00000000",
			"5000000000000000",
		})},

		{"SETLKW", hx([]string{
			"58000000 21000000", // len 88, SETLKW
			"5200000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",
			"7700000000000000",
			"0000000000000000",
			"6400000000000000",
			"01000000 2a000000",
			"00000000 00000000",
		}), []string{"SetLk(5, type=1 wait=true)"}, hx([]string{
			"10000000 00000000",
			"5200000000000000",
		})},

		{"ACCESS (EACCES)", hx([]string{
			"30000000 22000000", // len 48, ACCESS
			"5400000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"04000000 00000000", // mask R_OK
		}), []string{"Access(5, mask=4)"}, hx([]string{
			"10000000 f3ffffff", // len 16, error -EACCES
			"5400000000000000",
		})},

		{"CREATE", hx([]string{
			"3c000000 23000000", // len 60, CREATE
			"5600000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"41000000 a4810000", // flags O_CREAT|O_WRONLY, mode 0100644
			"12000000 00000000", // umask 022, open_flags
			"6e657700",          // "new\0"
		}), []string{"Create(1, new, flags=0x41 mode=100644 umask=22)"}, hx([]string{
			"a0000000 00000000", // len 160
			"5600000000000000",
		}, entryRows, []string{
			"9900000000000000",  // fh
			"00000000 00000000", // open_flags, backing_id
		})},

		{"TMPFILE", hx([]string{
			"38000000 33000000", // len 56, TMPFILE
			"5800000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"02004100 80810000", // flags O_TMPFILE|O_RDWR, mode 0100600
			"00000000 00000000", // umask, open_flags
		}), []string{"Tmpfile(1, flags=0x410002 mode=100600)"}, hx([]string{
			"a0000000 00000000",
			"5800000000000000",
		}, entryRows, []string{
			"9900000000000000",
			"00000000 00000000",
		})},

		{"BMAP", hx([]string{
			"38000000 25000000", // len 56, BMAP
			"5a00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0300000000000000",  // block 3
			"00100000 00000000", // blocksize 4096, padding
		}), []string{"Bmap(5, block=3 bs=4096)"}, hx([]string{
			"18000000 00000000",
			"5a00000000000000",
			"0310000000000000", // block 0x1003
		})},

		{"IOCTL", hx([]string{
			"48000000 27000000", // len 72, IOCTL
			"5c00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"00000000 01660880", // flags 0, cmd FS_IOC_GETFLAGS
			"0000000000000000",  // arg
			"00000000 04000000", // in_size 0, out_size 4
		}), []string{"Ioctl(5, cmd=0x80086601 in=0 out=4)"}, hx([]string{
			"24000000 00000000", // len 36
			"5c00000000000000",
			"00000000 00000000", // result 0, flags
			"00000000 00000000", // in_iovs, out_iovs
			"00000800",          // EXT4_EXTENTS_FL
		})},

		{"FALLOCATE", hx([]string{
			"48000000 2b000000", // len 72, FALLOCATE
			"5e00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"0000000000000000",  // offset
			"0000010000000000",  // length 0x10000
			"01000000 00000000", // mode FALLOC_FL_KEEP_SIZE
		}), []string{"Fallocate(5, fh=0x99 off=0 len=65536 mode=1)"}, hx([]string{
			"10000000 00000000",
			"5e00000000000000",
		})},

		{"LSEEK", hx([]string{
			"40000000 2e000000", // len 64, LSEEK
			"6000000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",  // fh
			"0001000000000000",  // offset 0x100
			"03000000 00000000", // whence SEEK_DATA
		}), []string{"Lseek(5, fh=0x99 off=256 whence=3)"}, hx([]string{
			"18000000 00000000",
			"6000000000000000",
			"0010000000000000", // offset 0x1000
		})},

		{"COPY_FILE_RANGE", hx([]string{
			"60000000 2f000000", // len 96, COPY_FILE_RANGE
			"6200000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000", // fh_in
			"0000000000000000", // off_in
			"0600000000000000", // nodeid_out 6
			"9a00000000000000", // fh_out
			"1000000000000000", // off_out 16
			"0020000000000000", // len 0x2000
			"0000000000000000", // flags
		}), []string{"CopyFileRange(5, fh=0x99 off=0 -> 6 fh=0x9a off=16 len=8192)"}, hx([]string{
			"18000000 00000000",
			"6200000000000000",
			"00200000 00000000", // fuse_write_out.size 0x2000
		})},

		{"COPY_FILE_RANGE_64", hx([]string{
			"60000000 35000000", // len 96, COPY_FILE_RANGE_64
			"6400000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",
			"0000000000000000",
			"0600000000000000",
			"9a00000000000000",
			"1000000000000000",
			"0000000001000000", // len 4 GiB
			"0000000000000000",
		}), []string{"CopyFileRange(5, fh=0x99 off=0 -> 6 fh=0x9a off=16 len=4294967296)"}, hx([]string{
			"18000000 00000000",
			"6400000000000000",
			"0000000001000000", // bytes_copied 4 GiB
		})},

		{"COPY_FILE_RANGE over 32 bits is capped", hx([]string{
			"60000000 2f000000",
			"6600000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"9900000000000000",
			"0000000000000000",
			"0600000000000000",
			"9a00000000000000",
			"1000000000000000",
			"0000000001000000", // len 4 GiB
			"0000000000000000",
		}), []string{"CopyFileRange(5, fh=0x99 off=0 -> 6 fh=0x9a off=16 len=1073741824)"}, hx([]string{
			"18000000 00000000",
			"6600000000000000",
			"00000040 00000000", // size 1 GiB
		})},

		{"SYNCFS", hx([]string{
			"30000000 32000000", // len 48, SYNCFS
			"6800000000000000",
			"0100000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0000000000000000", // padding
		}), []string{"SyncFs(1)"}, hx([]string{
			"10000000 00000000",
			"6800000000000000",
		})},

		{"STATX", hx([]string{
			"40000000 34000000", // len 64, STATX
			"6a00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"00000000 00000000", // getattr_flags, reserved
			"0000000000000000",  // fh
			"00000000 ff070000", // sx_flags, sx_mask 0x7ff
		}), []string{"Statx(5, mask=0x7ff)"}, hx([]string{
			"30010000 00000000", // len 304
			"6a00000000000000",
			"0200000000000000",  // attr_valid 2
			"00000000 00000000", // attr_valid_nsec, flags
			"0000000000000000",  // spare[0]
			"0000000000000000",  // spare[1]
			"ff070000 00100000", // stat.mask, blksize 4096
			"0000000000000000",  // attributes
			"01000000 e8030000", // nlink 1, uid 1000
			"e8030000 a4810000", // gid 1000, mode 0100644, __spare0
			"0500000000000000",  // ino 5
			"0010000000000000",  // size 4096
			"0800000000000000",  // blocks 8
			"0000000000000000",  // attributes_mask
			"0000000000000000",  // atime.tv_sec
			"00000000 00000000", // atime.tv_nsec, __reserved
			"0000006500000000",  // btime.tv_sec
			"00000000 00000000",
			"0000000000000000", // ctime
			"00000000 00000000",
			"0000000000000000", // mtime
			"00000000 00000000",
			"00000000 00000000", // rdev_major, rdev_minor
			"00000000 00000000", // dev_major, dev_minor
		}, zeroRows(14))}, // __spare2

		{"FORGET (no reply)", hx([]string{
			"30000000 02000000", // len 48, FORGET
			"6c00000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"0300000000000000", // nlookup 3
		}), []string{"Forget(5, 3)"}, nil},

		{"BATCH_FORGET (no reply)", hx([]string{
			"50000000 2a000000", // len 80, BATCH_FORGET
			"6e00000000000000",
			"0000000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
			"02000000 00000000", // count 2, dummy
			"0500000000000000",  // [0].nodeid 5
			"0100000000000000",  // [0].nlookup 1
			"0600000000000000",  // [1].nodeid 6
			"0200000000000000",  // [1].nlookup 2
		}), []string{"Forget(5, 1)", "Forget(6, 2)"}, nil},

		{"NOTIFY_REPLY (no reply)", hx([]string{
			"50000000 29000000", // len 80, NOTIFY_REPLY
			"7000000000000000",
			"0500000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
		}, zeroRows(5)), nil, nil}, // fuse_notify_retrieve_in

		{"DESTROY", hx([]string{
			"28000000 26000000", // len 40, DESTROY
			"7200000000000000",
			"0000000000000000",
			"e8030000 e8030000",
			"2a000000 00000000",
		}), []string{"Destroy"}, hx([]string{
			"10000000 00000000",
			"7200000000000000",
		})},
	}
}

// rowsOf formats b as hex rows for failure messages.
func rowsOf(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 8 {
		sb.WriteString("\n\t" + hex.EncodeToString(b[i:min(i+8, len(b))]))
	}
	return sb.String()
}

func requireLittleEndian(t *testing.T) {
	var probe uint16 = 1
	if *(*byte)(unsafe.Pointer(&probe)) != 1 {
		t.Skip("golden vectors are little-endian; FUSE is host-endian")
	}
}

func TestGolden(t *testing.T) {
	requireLittleEndian(t)
	fs := &goldenFS{}
	s := fusetest.Start(t, fs, nil)
	for _, c := range goldenCases() {
		hdrLen := binary.LittleEndian.Uint32(c.req)
		if int(hdrLen) != len(c.req) {
			t.Fatalf("%s: vector bug: header len %d, %d bytes", c.name, hdrLen, len(c.req))
		}
		unique := binary.LittleEndian.Uint64(c.req[8:])
		s.Conn.Feed(c.req)
		if c.reply != nil {
			got, ok := s.Await(unique, 10*time.Second)
			if !ok {
				t.Errorf("%s: no reply", c.name)
				continue
			}
			if !bytes.Equal(got, c.reply) {
				t.Errorf("%s: reply%s\nwant%s", c.name, rowsOf(got), rowsOf(c.reply))
			}
		} else {
			deadline := time.Now().Add(10 * time.Second)
			for fs.count() < len(c.calls) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got, ok := s.Await(unique, 50*time.Millisecond); ok {
				t.Errorf("%s: unexpected reply%s", c.name, rowsOf(got))
			}
		}
		if got := fs.take(); !slices.Equal(got, c.calls) {
			t.Errorf("%s: calls %q, want %q", c.name, got, c.calls)
		}
	}
}
