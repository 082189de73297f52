package optest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

type opKind int

const (
	opCreate opKind = iota
	opWrite
	opRead
	opTruncate
	opFallocate
	opRename
	opLink
	opUnlink
	opMkdir
	opRmdir
	opSymlink
	opMknod
	opSetxattr
	opRemovexattr
	opChmod
	opChown
	opUtimens
	opUnlinkedWrite
	opMmapWrite
	opCopyRange
	opOpen
	opHWrite
	opHRead
	opHTruncate
	opHFallocate
	opHSync
	opClose
	numOpKinds
)

var opNames = [numOpKinds]string{
	"create", "write", "read", "truncate", "fallocate", "rename", "link", "unlink",
	"mkdir", "rmdir", "symlink", "mknod", "setxattr", "removexattr", "chmod", "chown",
	"utimens", "unlinked-write", "mmap-write", "copy-range", "open", "h-write", "h-read", "h-truncate",
	"h-fallocate", "h-sync", "close",
}

func (k opKind) String() string { return opNames[k] }

// OpKinds lists the operation names Result counts, for Result.Coverage.
func OpKinds() []string { return append([]string(nil), opNames[:]...) }

func (k opKind) usesHandle() bool { return k >= opHWrite }

// modifiesHandle: the handle's file may get a new mtime.
func (k opKind) modifiesHandle() bool {
	return k == opHWrite || k == opHTruncate || k == opHFallocate
}

// Data kinds for writes.
const (
	dataRandom = iota
	dataZeros  // written zeros must read as zeros, like holes
	dataByte   // one byte repeated
	dataText
	numDataKinds
)

// op is one generated operation. Which fields matter depends on kind.
type op struct {
	kind        opKind
	path, path2 string
	off, n      int64 // offset; length or size
	mode        uint32
	flags       int // open flags, rename flags, xattr flags, fallocate mode, utimens flags
	uid, gid    int
	rdev        uint64
	seed        uint64 // data
	data        int    // data kind
	name        string // xattr name
	target      string // symlink target
	times       [2]unix.Timespec
	follow      bool // utimens: follow a final symlink
	slot        int
}

func (o *op) String() string {
	p, p2 := shortPath(o.path), shortPath(o.path2)
	switch o.kind {
	case opCreate, opMkdir:
		return fmt.Sprintf("%s %q mode=%#o", o.kind, p, o.mode)
	case opWrite:
		return fmt.Sprintf("write %q flags=%s off=%d len=%d data=%d/%d", p, openFlags(o.flags), o.off, o.n, o.data, o.seed)
	case opRead:
		return fmt.Sprintf("read %q off=%d len=%d", p, o.off, o.n)
	case opTruncate:
		return fmt.Sprintf("truncate %q size=%d", p, o.n)
	case opFallocate:
		return fmt.Sprintf("fallocate %q mode=%s off=%d len=%d", p, fallocMode(o.flags), o.off, o.n)
	case opRename:
		return fmt.Sprintf("rename %q -> %q flags=%s", p, p2, renameFlags(o.flags))
	case opLink:
		return fmt.Sprintf("link %q -> %q", p, p2)
	case opUnlink, opRmdir:
		return fmt.Sprintf("%s %q", o.kind, p)
	case opSymlink:
		return fmt.Sprintf("symlink %q -> target %q (%d bytes)", p, shortPath(o.target), len(o.target))
	case opMknod:
		return fmt.Sprintf("mknod %q %s %#o rdev=%d:%d", p, typeName(o.mode), o.mode&0o7777, unix.Major(o.rdev), unix.Minor(o.rdev))
	case opSetxattr:
		return fmt.Sprintf("setxattr %q %s len=%d flags=%d data=%d/%d", p, shortPath(o.name), o.n, o.flags, o.data, o.seed)
	case opRemovexattr:
		return fmt.Sprintf("removexattr %q %s", p, shortPath(o.name))
	case opChmod:
		return fmt.Sprintf("chmod %q %#o", p, o.mode)
	case opChown:
		return fmt.Sprintf("lchown %q %d:%d", p, o.uid, o.gid)
	case opUtimens:
		return fmt.Sprintf("utimensat %q atime=%s mtime=%s follow=%v", p, fmtTs(o.times[0]), fmtTs(o.times[1]), o.follow)
	case opUnlinkedWrite:
		return fmt.Sprintf("open-unlink-write-close %q off=%d len=%d data=%d/%d", p, o.off, o.n, o.data, o.seed)
	case opMmapWrite:
		return fmt.Sprintf("mmap-write %q off=%d len=%d data=%d/%d", p, o.off, o.n, o.data, o.seed)
	case opCopyRange:
		return fmt.Sprintf("copy_file_range %q@%d -> %q@%d len=%d", p, o.off, p2, o.seed, o.n)
	case opOpen:
		return fmt.Sprintf("open[%d] %q flags=%s mode=%#o", o.slot, p, openFlags(o.flags), o.mode)
	case opHWrite:
		return fmt.Sprintf("h-write[%d] off=%d len=%d data=%d/%d", o.slot, o.off, o.n, o.data, o.seed)
	case opHRead:
		return fmt.Sprintf("h-read[%d] off=%d len=%d", o.slot, o.off, o.n)
	case opHTruncate:
		return fmt.Sprintf("h-truncate[%d] size=%d", o.slot, o.n)
	case opHFallocate:
		return fmt.Sprintf("h-fallocate[%d] mode=%s off=%d len=%d", o.slot, fallocMode(o.flags), o.off, o.n)
	case opHSync:
		return fmt.Sprintf("h-sync[%d] datasync=%v", o.slot, o.flags != 0)
	case opClose:
		return fmt.Sprintf("close[%d]", o.slot)
	}
	return o.kind.String()
}

func fmtTs(ts unix.Timespec) string {
	switch ts.Nsec {
	case unix.UTIME_NOW:
		return "NOW"
	case unix.UTIME_OMIT:
		return "OMIT"
	}
	return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
}

func openFlags(f int) string {
	var s []string
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		s = append(s, "RDONLY")
	case unix.O_WRONLY:
		s = append(s, "WRONLY")
	case unix.O_RDWR:
		s = append(s, "RDWR")
	}
	for _, b := range []struct {
		f    int
		name string
	}{{unix.O_CREAT, "CREAT"}, {unix.O_EXCL, "EXCL"}, {unix.O_TRUNC, "TRUNC"}, {unix.O_APPEND, "APPEND"}} {
		if f&b.f != 0 {
			s = append(s, b.name)
		}
	}
	return strings.Join(s, "|")
}

func fallocMode(m int) string {
	switch m {
	case 0:
		return "default"
	case unix.FALLOC_FL_KEEP_SIZE:
		return "KEEP_SIZE"
	case unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE:
		return "PUNCH_HOLE|KEEP_SIZE"
	case unix.FALLOC_FL_ZERO_RANGE:
		return "ZERO_RANGE"
	case unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE:
		return "ZERO_RANGE|KEEP_SIZE"
	}
	return fmt.Sprintf("%#x", m)
}

func renameFlags(f int) string {
	switch f {
	case 0:
		return "0"
	case unix.RENAME_NOREPLACE:
		return "NOREPLACE"
	case unix.RENAME_EXCHANGE:
		return "EXCHANGE"
	}
	return fmt.Sprintf("%#x", f)
}

// pathRef names a path whose inode an operation may give a new mtime.
type pathRef struct {
	rel     string
	follow  bool
	dirOnly bool // only if it is a directory (a renamed directory's ".." changes)
}

func parent(rel string) string {
	if d := path.Dir(rel); d != "" {
		return d
	}
	return "."
}

// touches lists the paths whose inodes the operation may give a new
// mtime; do() looks them up before and after, and forgets their pinned
// mtimes.
func (o *op) touches() []pathRef {
	switch o.kind {
	case opCreate, opMkdir, opSymlink, opMknod, opUnlinkedWrite:
		return []pathRef{{rel: parent(o.path)}, {rel: o.path}}
	case opWrite, opOpen:
		if o.flags&(unix.O_CREAT|unix.O_TRUNC) != 0 || o.kind == opWrite {
			return []pathRef{{rel: parent(o.path)}, {rel: o.path, follow: true}}
		}
	case opTruncate, opFallocate, opMmapWrite:
		return []pathRef{{rel: o.path, follow: true}}
	case opCopyRange:
		return []pathRef{{rel: o.path2, follow: true}}
	case opRename:
		return []pathRef{{rel: parent(o.path)}, {rel: parent(o.path2)},
			{rel: o.path, dirOnly: true}, {rel: o.path2, dirOnly: true}}
	case opLink:
		return []pathRef{{rel: parent(o.path2)}}
	case opUnlink, opRmdir:
		return []pathRef{{rel: parent(o.path)}}
	}
	return nil
}

// checks lists the paths whose attributes must agree after the operation.
func (o *op) checks() []string {
	var ps []string
	add := func(p string) {
		if p != "" && !contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if !o.kind.usesHandle() {
		add(o.path)
		add(o.path2)
		if o.path != "" {
			add(parent(o.path))
		}
		if o.path2 != "" {
			add(parent(o.path2))
		}
	}
	return ps
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// fill returns the n bytes a write with this seed and data kind writes.
func fill(seed uint64, kind int, n int64) []byte {
	b := make([]byte, n)
	switch kind {
	case dataRandom:
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], seed)
		rand.NewChaCha8(key).Read(b)
	case dataByte:
		for i := range b {
			b[i] = byte(seed) | 1
		}
	case dataText:
		line := fmt.Sprintf("line of text for seed %d\n", seed)
		for i := range b {
			b[i] = line[i%len(line)]
		}
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// apply runs the operation on one side and describes the outcome; the two
// descriptions must be equal.
func (o *op) apply(r *runner, side int) string {
	root := r.roots[side]
	p, p2 := abs(root, o.path), abs(root, o.path2)
	switch o.kind {
	case opCreate:
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, o.mode)
		if err != nil {
			return errName(err)
		}
		return closeOutcome(fd, "ok")
	case opWrite:
		fd, err := unix.Open(p, o.flags|unix.O_CLOEXEC|unix.O_NONBLOCK, o.mode)
		if err != nil {
			return "open: " + errName(err)
		}
		out := writeOutcome(fd, o)
		return closeOutcome(fd, out)
	case opRead:
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return "open: " + errName(err)
		}
		return closeOutcome(fd, readOutcome(fd, o.off, o.n))
	case opTruncate:
		return result(unix.Truncate(p, o.n))
	case opFallocate:
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return "open: " + errName(err)
		}
		return closeOutcome(fd, fallocate(fd, o, side))
	case opRename:
		return result(unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, p2, uint(o.flags)))
	case opLink:
		return result(unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, p2, 0))
	case opUnlink:
		return result(unix.Unlink(p))
	case opMkdir:
		return result(unix.Mkdir(p, o.mode))
	case opRmdir:
		return result(unix.Rmdir(p))
	case opSymlink:
		return result(unix.Symlink(o.target, p))
	case opMknod:
		return result(unix.Mknod(p, o.mode, int(o.rdev)))
	case opSetxattr:
		err := unix.Lsetxattr(p, o.name, fill(o.seed, o.data, o.n), o.flags)
		return result(err) + " " + xattrOutcome(p, o.name)
	case opRemovexattr:
		return result(unix.Lremovexattr(p, o.name)) + " " + xattrOutcome(p, o.name)
	case opChmod:
		return result(unix.Chmod(p, o.mode))
	case opChown:
		return result(unix.Lchown(p, o.uid, o.gid))
	case opUtimens:
		flags := unix.AT_SYMLINK_NOFOLLOW
		if o.follow {
			flags = 0
		}
		return result(unix.UtimesNanoAt(unix.AT_FDCWD, p, o.times[:], flags))
	case opUnlinkedWrite:
		return unlinkedWrite(p, o)
	case opMmapWrite:
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return "open: " + errName(err)
		}
		return closeOutcome(fd, mmapWrite(fd, o))
	case opCopyRange:
		return copyRange(p, p2, o)
	case opOpen:
		return openHandle(r, side, p, o)
	}
	h := r.handles[o.slot]
	if h == nil || h.fd[side] < 0 {
		return "no handle" // cannot happen: the generator checks
	}
	fd := h.fd[side]
	switch o.kind {
	case opHWrite:
		return writeOutcome(fd, o) + " " + fstatLine(fd)
	case opHRead:
		return readOutcome(fd, o.off, o.n)
	case opHTruncate:
		return result(unix.Ftruncate(fd, o.n)) + " " + fstatLine(fd)
	case opHFallocate:
		return fallocate(fd, o, side) + " " + fstatLine(fd)
	case opHSync:
		if o.flags != 0 {
			return result(unix.Fdatasync(fd))
		}
		return result(unix.Fsync(fd))
	case opClose:
		err := unix.Close(fd)
		h.fd[side] = -1
		if h.fd[0] < 0 && h.fd[1] < 0 {
			r.handles[o.slot] = nil
		}
		return result(err)
	}
	return "unknown operation"
}

func result(err error) string {
	if err != nil {
		return errName(err)
	}
	return "ok"
}

// closeOutcome closes fd; a failing close (a deferred write error) is
// part of the outcome.
func closeOutcome(fd int, out string) string {
	if err := unix.Close(fd); err != nil {
		return out + " close: " + errName(err)
	}
	return out
}

// writeOutcome writes the operation's data at its offset (or appends, on
// an O_APPEND descriptor) and reports the count and the resulting size.
func writeOutcome(fd int, o *op) string {
	b := fill(o.seed, o.data, o.n)
	var n int
	var err error
	if o.flags&unix.O_APPEND != 0 {
		n, err = unix.Write(fd, b)
	} else {
		n, err = unix.Pwrite(fd, b, o.off)
	}
	if err != nil {
		return "write: " + errName(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Sprintf("wrote %d, fstat: %s", n, errName(err))
	}
	return fmt.Sprintf("ok n=%d size=%d", n, st.Size)
}

func readOutcome(fd int, off, n int64) string {
	b := make([]byte, n)
	got, err := unix.Pread(fd, b, off)
	if err != nil {
		return "read: " + errName(err)
	}
	return fmt.Sprintf("ok n=%d data=%s", got, sum(b[:got]))
}

// fallocate applies the operation's mode. The reference (tmpfs) has no
// ZERO_RANGE: there it writes zeros over the range (only inside the size
// with KEEP_SIZE), which reads the same and leaves data wherever the
// target may have written zeros rather than made a hole.
func fallocate(fd int, o *op, side int) string {
	mode := uint32(o.flags)
	if side == sideRef && mode&unix.FALLOC_FL_ZERO_RANGE != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errName(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			// Let the kernel give the errno a real ZERO_RANGE would.
			return result(unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, o.off, o.n))
		}
		end := o.off + o.n
		if mode&unix.FALLOC_FL_KEEP_SIZE != 0 {
			end = min(end, st.Size)
		}
		if end <= o.off {
			return "ok"
		}
		// pwrite on an O_APPEND descriptor appends: drop the flag
		// meanwhile.
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return errName(err)
		}
		if fl&unix.O_APPEND != 0 {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_APPEND); err != nil {
				return errName(err)
			}
			defer unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
		}
		return result(pwriteAll(fd, make([]byte, end-o.off), o.off))
	}
	return result(unix.Fallocate(fd, mode, o.off, o.n))
}

func xattrOutcome(p, name string) string {
	sz, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return "get: " + errName(err)
	}
	v := make([]byte, sz)
	n, err := unix.Lgetxattr(p, name, v)
	if err != nil {
		return "get: " + errName(err)
	}
	return fmt.Sprintf("get n=%d data=%s", n, sum(v[:n]))
}

func fstatLine(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "fstat: " + errName(err)
	}
	return fmt.Sprintf("[%s %#o %d:%d nlink=%d size=%d]", typeName(st.Mode), st.Mode&0o7777, st.Uid, st.Gid, st.Nlink, st.Size)
}

// unlinkedWrite opens (creating if needed) p, unlinks it, writes to the
// open file, checks it from the descriptor and closes it: the inode lives
// on with no name until the close.
func unlinkedWrite(p string, o *op) string {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return "open: " + errName(err)
	}
	out := []string{"ok", "unlink " + result(unix.Unlink(p))}
	out = append(out, writeOutcome(fd, o), fstatLine(fd))
	out = append(out, readOutcome(fd, 0, o.off+o.n+10))
	return closeOutcome(fd, strings.Join(out, ", "))
}

// openHandle opens a handle kept across steps, replacing what the slot
// held (do saved it in runner.prev); the target side opens first, and the
// handle exists once both have.
func openHandle(r *runner, side int, p string, o *op) string {
	out := ""
	if prev := r.prev; prev != nil && prev.fd[side] >= 0 {
		if err := unix.Close(prev.fd[side]); err != nil {
			out = "close: " + errName(err) + " "
		}
		prev.fd[side] = -1
	}
	fd, err := unix.Open(p, o.flags|unix.O_CLOEXEC|unix.O_NONBLOCK, o.mode)
	if err == nil {
		out += "ok " + fstatLine(fd)
	} else {
		out += errName(err)
	}
	if side == sideTarget {
		r.handles[o.slot] = nil
		if err == nil {
			r.handles[o.slot] = &handle{fd: [2]int{fd, -1}, rel: o.path, append: o.flags&unix.O_APPEND != 0}
		}
		return out
	}
	// A handle open on one side only is a mismatch, which ends the run:
	// close it rather than leave it to the generator.
	switch h := r.handles[o.slot]; {
	case err == nil && h != nil:
		h.fd[sideRef] = fd
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			h.refIno = st.Ino
		}
	case err == nil:
		unix.Close(fd)
	case h != nil:
		unix.Close(h.fd[sideTarget])
		r.handles[o.slot] = nil
	}
	return out
}

// mmapWrite writes through a shared mapping and msyncs it: the page-fault
// and writeback path rather than write(2). It maps only what lies inside
// the file on this side, so a side whose size is wrong gives a different
// outcome instead of SIGBUS, and a fault (an I/O error while paging) is an
// outcome too.
func mmapWrite(fd int, o *op) (out string) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "fstat: " + errName(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || o.n <= 0 || o.off+o.n > st.Size {
		return fmt.Sprintf("not mapped: %s size=%d", typeName(st.Mode), st.Size)
	}
	start := o.off &^ int64(os.Getpagesize()-1)
	m, err := unix.Mmap(fd, start, int(o.off+o.n-start), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return "mmap: " + errName(err)
	}
	defer unix.Munmap(m)
	data := fill(o.seed, o.data, o.n)
	// A page fault is not a system call to the Go runtime: a thread
	// blocked in one keeps its P, so a garbage collection starting then
	// waits for it forever, while the fault waits for FUSE requests this
	// very process (an in-process e4box mount) must answer. So fault the
	// pages in with madvise (a system call), and keep the collector off
	// until the copy is done. The madvise error is ignored: the copy then
	// faults and the fault is the outcome, as without it.
	defer noGC()()
	unix.Madvise(m, unix.MADV_POPULATE_WRITE)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("fault: %v", r)
		}
	}()
	copy(m[o.off-start:], data)
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return "msync: " + errName(err)
	}
	return "ok " + fstatLine(fd)
}

// gcOff counts the callers of noGC; mu protects it and the saved percent.
var gcOff struct {
	mu      sync.Mutex
	n       int
	percent int
}

// noGC turns the garbage collector off until the returned function is
// called. SetGCPercent(-1) returns only once no collection is running.
func noGC() (restore func()) {
	gcOff.mu.Lock()
	if gcOff.n == 0 {
		gcOff.percent = debug.SetGCPercent(-1)
	}
	gcOff.n++
	gcOff.mu.Unlock()
	return func() {
		gcOff.mu.Lock()
		gcOff.n--
		if gcOff.n == 0 {
			debug.SetGCPercent(gcOff.percent)
		}
		gcOff.mu.Unlock()
	}
}

// copyRange copies o.n bytes from p at o.off to p2 at the offset kept in
// o.seed with copy_file_range(2), the call cp(1) uses.
func copyRange(p, p2 string, o *op) string {
	in, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "open in: " + errName(err)
	}
	defer unix.Close(in)
	outFd, err := unix.Open(p2, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "open out: " + errName(err)
	}
	roff, woff := o.off, int64(o.seed)
	n, err := unix.CopyFileRange(in, &roff, outFd, &woff, int(o.n), 0)
	if err != nil {
		return closeOutcome(outFd, "copy: "+errName(err))
	}
	return closeOutcome(outFd, fmt.Sprintf("ok n=%d %s", n, fstatLine(outFd)))
}
