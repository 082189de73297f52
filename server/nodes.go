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

// nodeTable tracks, per nodeid, what keeps an inode alive besides its
// directory entries:
//   - the lookup count: how many times the kernel has been told about the
//     node (LOOKUP, READDIRPLUS, CREATE, MKNOD, MKDIR, SYMLINK, LINK) minus
//     what it has FORGOTten;
//   - the open count: file and directory handles not yet RELEASEd;
//   - whether the inode lost its last link (unlink, rmdir, or replaced by
//     rename) while still referenced: it then sits on ext4's orphan list.
//
// An unlinked inode is freed (ext4 Evict) once both counts are zero; the
// methods that drop a reference report that moment, and the caller evicts
// outside the lock. A node with both counts zero is forgotten here. The
// root is never counted: the kernel never forgets it.
type nodeTable struct {
	mu sync.Mutex // protects n
	n  map[uint64]*nodeState
}

type nodeState struct {
	lookups, opens uint64
	unlinked       bool
}

func newNodeTable() *nodeTable {
	return &nodeTable{n: make(map[uint64]*nodeState)}
}

// getLocked returns the state of nodeid, creating it.
func (c *nodeTable) getLocked(nodeid uint64) *nodeState {
	st := c.n[nodeid]
	if st == nil {
		st = &nodeState{}
		c.n[nodeid] = st
	}
	return st
}

// settleLocked drops the entry of an unreferenced node and reports
// whether it must be evicted.
func (c *nodeTable) settleLocked(nodeid uint64, st *nodeState) (evict bool) {
	if st.lookups != 0 || st.opens != 0 {
		return false
	}
	delete(c.n, nodeid)
	return st.unlinked
}

// ref records that one more reference to nodeid was handed to the kernel.
func (c *nodeTable) ref(nodeid uint64) {
	if nodeid == rootNodeID || nodeid == 0 {
		return
	}
	c.mu.Lock()
	c.getLocked(nodeid).lookups++
	c.mu.Unlock()
}

// forget drops n references. A forget larger than the count (a kernel or
// server bug) clamps at zero rather than wrapping.
func (c *nodeTable) forget(nodeid, n uint64) (evict bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.n[nodeid]
	if st == nil {
		return false
	}
	st.lookups -= min(n, st.lookups)
	return c.settleLocked(nodeid, st)
}

// open records a new file or directory handle on nodeid.
func (c *nodeTable) open(nodeid uint64) {
	if nodeid == rootNodeID || nodeid == 0 {
		return
	}
	c.mu.Lock()
	c.getLocked(nodeid).opens++
	c.mu.Unlock()
}

// release drops a handle.
func (c *nodeTable) release(nodeid uint64) (evict bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.n[nodeid]
	if st == nil || st.opens == 0 {
		return false
	}
	st.opens--
	return c.settleLocked(nodeid, st)
}

// unlink records that nodeid lost its last link. It reports whether the
// inode is already unreferenced and must be evicted now.
func (c *nodeTable) unlink(nodeid uint64) (evict bool) {
	if nodeid == rootNodeID || nodeid == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.getLocked(nodeid)
	st.unlinked = true
	return c.settleLocked(nodeid, st)
}

// drainUnlinked forgets every unlinked node and returns them: at the end
// of the session nothing references them any more.
func (c *nodeTable) drainUnlinked() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for id, st := range c.n {
		if st.unlinked {
			ids = append(ids, id)
			delete(c.n, id)
		}
	}
	return ids
}

// count reports the current lookup count of nodeid.
func (c *nodeTable) count(nodeid uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.n[nodeid]; st != nil {
		return st.lookups
	}
	return 0
}

// opens reports the open handle count of nodeid.
func (c *nodeTable) opens(nodeid uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.n[nodeid]; st != nil {
		return st.opens
	}
	return 0
}

// len reports how many nodeids the kernel currently references.
func (c *nodeTable) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}

// dataLocks serialise the data operations on one inode (write,
// truncate, fallocate, set-ID clearing): a write maps blocks, writes
// them and then completes them in separate ext4 calls, and a truncate or
// hole punch in between would free blocks the write is about to fill.
// The kernel already serialises most of these per inode; this makes the
// server safe on its own. Inodes share a fixed set of mutexes by number,
// so the set needs no bookkeeping; a data operation holds exactly one.
type dataLocks [64]sync.Mutex

// lock locks ino's mutex and returns its unlock.
func (l *dataLocks) lock(ino ext4.Ino) func() {
	m := &l[uint32(ino)%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
