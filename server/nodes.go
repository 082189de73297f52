package server

import (
	"sync"
	"syscall"

	"github.com/e4box/e4box/ext4"
)

// Node IDs.
//
// A FUSE nodeid is the ext4 inode number, with one exception: the kernel
// insists that the root is nodeid 1 (FUSE_ROOT_ID), while ext4's root is
// inode 2. So ext4 inode 2 travels as nodeid 1, and nodeid 2 is never
// handed out. ext4 inode 1 is the bad-blocks inode: it is never a
// directory entry's target on a sane image, and a dirent naming it is
// treated as corruption rather than exposed (it would collide with the
// root's nodeid anyway). Inode 0 is never valid.
//
// Nodeids are stable across the life of the mount (an ext4 inode number
// does not change), so the kernel's notion of identity and ours coincide
// without a translation table; what the server does keep is the lookup
// count, which tells when the kernel has forgotten an inode.

const rootNodeID = 1

// nodeID returns the FUSE nodeid for an ext4 inode, or an error if the
// inode must not be exposed.
func nodeID(ino ext4.Ino) (uint64, error) {
	switch ino {
	case 0, 1:
		return 0, &ext4.CorruptError{Kind: "directory entry names a reserved inode", Ino: ino, Err: syscall.EUCLEAN}
	case ext4.RootIno:
		return rootNodeID, nil
	}
	return uint64(ino), nil
}

// inoOf returns the ext4 inode for a nodeid received from the kernel.
// Nodeid 2 is never handed out, and nodeids beyond 32 bits cannot be ours;
// the kernel sending either is a protocol error answered with ESTALE.
func inoOf(nodeid uint64) (ext4.Ino, syscall.Errno) {
	switch {
	case nodeid == rootNodeID:
		return ext4.RootIno, 0
	case nodeid <= uint64(ext4.RootIno) || nodeid > 0xffffffff:
		return 0, syscall.ESTALE
	}
	return ext4.Ino(nodeid), 0
}

// lookupCounts tracks, per nodeid, how many times the kernel has been
// told about a node (LOOKUP, READDIRPLUS, and later CREATE/MKNOD/...)
// minus what it has FORGOTten. When a count drops to zero the kernel holds
// no reference: that is the moment an unlinked-but-open inode may be
// freed (read-write issue). The root is never counted: the kernel never
// forgets it.
type lookupCounts struct {
	mu sync.Mutex // protects n
	n  map[uint64]uint64
}

func newLookupCounts() *lookupCounts {
	return &lookupCounts{n: make(map[uint64]uint64)}
}

// ref records that one more reference to nodeid was handed to the kernel.
func (c *lookupCounts) ref(nodeid uint64) {
	if nodeid == rootNodeID || nodeid == 0 {
		return
	}
	c.mu.Lock()
	c.n[nodeid]++
	c.mu.Unlock()
}

// forget drops n references and reports the remaining count. A forget
// larger than the count (a kernel or server bug) clamps at zero rather
// than wrapping.
func (c *lookupCounts) forget(nodeid, n uint64) (remaining uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.n[nodeid]
	if n >= cur {
		delete(c.n, nodeid)
		return 0
	}
	c.n[nodeid] = cur - n
	return cur - n
}

// count reports the current lookup count of nodeid.
func (c *lookupCounts) count(nodeid uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[nodeid]
}

// len reports how many nodeids the kernel currently references.
func (c *lookupCounts) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}
