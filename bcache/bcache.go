// Package bcache is e4box's metadata buffer cache: block-sized buffers keyed
// by physical block number, shared by reference count, with a bounded LRU
// over unreferenced clean buffers and dirty tracking for the write path.
//
// Only metadata goes through the cache (superblock-adjacent structures, group
// descriptors, inode tables, extent/index blocks, directory and xattr
// blocks). File data never does: it is read and written straight at device
// offsets. A block that is freed must leave the cache at once (Forget), so a
// later reuse of the block as file data cannot be shadowed by a stale buffer.
//
// The package may import only blockdev and the standard library.
//
// # Concurrency
//
// A Cache is safe for concurrent use. Cache.mu protects the cache's index
// (bufs), the LRU list, the dirty set, statistics, and every Buf's
// bookkeeping fields (refs, dirty, forgotten, elem). It is never held across
// device I/O: a miss inserts a loading placeholder, drops the lock, reads,
// and publishes the result by closing Buf.ready; concurrent getters of the
// same block wait on ready instead of issuing a second read.
//
// Buf.Data is not protected by the cache. Its contents are immutable while
// only readers hold the buffer; a writer must have exclusive access through
// its own locking (ext4 modifies buffers only inside fs.Update, which
// excludes readers), and Flush must not race with modification.
//
// Lock order: Cache.mu is a leaf; callers may hold their own locks around any
// Cache method.
package bcache

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/e4box/e4box/blockdev"
)

// ErrOutOfRange is returned for a block number beyond the device.
var ErrOutOfRange = errors.New("bcache: block beyond end of device")

// Buf is one cached block.
type Buf struct {
	Blk  uint64 // physical block number; immutable
	Data []byte // block contents, len == block size; see the package doc on locking

	ready chan struct{} // closed once the load finished (err set or Data valid)
	err   error         // load error; written before ready is closed

	// Protected by Cache.mu.
	refs      int
	dirty     bool
	forgotten bool          // dropped from the index while referenced
	elem      *list.Element // position in Cache.lru when unreferenced and clean
}

// Stats counts cache events since creation.
type Stats struct {
	Hits, Misses, Evictions, Writes int
}

// Cache caches blocks of one device.
type Cache struct {
	dev      blockdev.Device // immutable
	bsize    int             // immutable
	nblocks  uint64          // immutable: whole blocks on the device
	maxClean int             // immutable: LRU capacity

	// OnWrite, if set before first use, is called after a dirty buffer has
	// been written to the device by Flush (the journal's end-of-write hook).
	OnWrite func(b *Buf)

	mu    sync.Mutex // protects bufs, lru, dirty, stats and Buf bookkeeping
	bufs  map[uint64]*Buf
	lru   list.List // unreferenced clean loaded buffers, most recent at front
	dirty map[uint64]*Buf
	stats Stats
}

// New returns a cache of blockSize-byte blocks over dev that keeps at most
// maxClean unreferenced clean buffers.
func New(dev blockdev.Device, blockSize, maxClean int) (*Cache, error) {
	if blockSize <= 0 || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("bcache: invalid block size %d", blockSize)
	}
	if maxClean < 0 {
		maxClean = 0
	}
	return &Cache{
		dev:      dev,
		bsize:    blockSize,
		nblocks:  uint64(dev.Size()) / uint64(blockSize),
		maxClean: maxClean,
		bufs:     make(map[uint64]*Buf),
		dirty:    make(map[uint64]*Buf),
	}, nil
}

// BlockSize returns the cache's block size in bytes.
func (c *Cache) BlockSize() int { return c.bsize }

// Get returns the buffer for blk with a reference held; release it with Put.
// A read error is returned to every waiter and nothing is cached.
func (c *Cache) Get(blk uint64) (*Buf, error) {
	return c.get(blk, true)
}

// GetZero returns a referenced buffer for blk without reading the device:
// its contents are zero unless the block was already cached. It is for the
// write path, for blocks just allocated whose old contents are irrelevant.
func (c *Cache) GetZero(blk uint64) (*Buf, error) {
	return c.get(blk, false)
}

func (c *Cache) get(blk uint64, read bool) (*Buf, error) {
	if blk >= c.nblocks {
		return nil, fmt.Errorf("%w: block %d of %d", ErrOutOfRange, blk, c.nblocks)
	}
	c.mu.Lock()
	if b, ok := c.bufs[blk]; ok {
		c.refLocked(b)
		c.stats.Hits++
		c.mu.Unlock()
		<-b.ready
		if b.err != nil {
			c.Put(b)
			return nil, b.err
		}
		return b, nil
	}
	b := &Buf{Blk: blk, Data: make([]byte, c.bsize), ready: make(chan struct{}), refs: 1}
	c.bufs[blk] = b
	c.stats.Misses++
	c.mu.Unlock()

	var err error
	if read {
		err = c.read(b)
	}
	if err != nil {
		// Unpublish before waking waiters, so no later Get sees the failed
		// buffer; waiters already holding it get the error and Put it.
		c.mu.Lock()
		if c.bufs[blk] == b {
			delete(c.bufs, blk)
		}
		b.forgotten = true
		b.err = err
		c.mu.Unlock()
		close(b.ready)
		c.Put(b)
		return nil, err
	}
	close(b.ready)
	return b, nil
}

func (c *Cache) read(b *Buf) error {
	off := int64(b.Blk) * int64(c.bsize)
	n, err := c.dev.ReadAt(b.Data, off)
	if n == len(b.Data) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("bcache: read block %d: %w", b.Blk, err)
}

// refLocked takes a reference, removing b from the LRU if it was there.
func (c *Cache) refLocked(b *Buf) {
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
	}
	b.refs++
}

// Put releases a reference obtained from Get or GetZero.
func (c *Cache) Put(b *Buf) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.refs <= 0 {
		panic("bcache: Put of unreferenced buffer") // caller bug, not disk input
	}
	b.refs--
	if b.refs > 0 || b.forgotten || b.dirty {
		return // dirty buffers stay pinned in the index until flushed
	}
	c.toLRULocked(b)
}

func (c *Cache) toLRULocked(b *Buf) {
	b.elem = c.lru.PushFront(b)
	for c.lru.Len() > c.maxClean {
		old := c.lru.Remove(c.lru.Back()).(*Buf)
		old.elem = nil
		delete(c.bufs, old.Blk)
		c.stats.Evictions++
	}
}

// MarkDirty records that b's contents were modified and must be written by
// the next Flush. The caller must hold a reference.
func (c *Cache) MarkDirty(b *Buf) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.refs <= 0 {
		panic("bcache: MarkDirty of unreferenced buffer")
	}
	if b.forgotten {
		return // the block was freed; its contents must not reach the disk
	}
	b.dirty = true
	c.dirty[b.Blk] = b
}

// Forget drops blk from the cache at once: a freed block must not be served
// from a stale buffer later. Any unwritten modification is discarded. A
// buffer still referenced stays valid for its holders but is no longer
// found by Get, which reads the block afresh.
func (c *Cache) Forget(blk uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bufs[blk]
	if !ok {
		return
	}
	delete(c.bufs, blk)
	delete(c.dirty, blk)
	b.dirty = false
	b.forgotten = true
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
	}
}

// IsDirty reports whether b has modifications not yet written by Flush.
func (c *Cache) IsDirty(b *Buf) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.dirty
}

// DirtyBlocks returns the numbers of the dirty blocks in ascending order.
func (c *Cache) DirtyBlocks() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, 0, len(c.dirty))
	for blk := range c.dirty {
		out = append(out, blk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Flush writes every dirty buffer to the device in block order, then flushes
// the device. On a write error the failing buffer and those not yet written
// stay dirty.
func (c *Cache) Flush() error {
	c.mu.Lock()
	todo := make([]*Buf, 0, len(c.dirty))
	for _, b := range c.dirty {
		b.refs++ // pin across the unlocked write
		todo = append(todo, b)
	}
	c.mu.Unlock()
	sort.Slice(todo, func(i, j int) bool { return todo[i].Blk < todo[j].Blk })

	var firstErr error
	for _, b := range todo {
		c.mu.Lock()
		still := b.dirty // Forget may have discarded it since the snapshot
		c.mu.Unlock()
		if firstErr == nil && still {
			_, err := c.dev.WriteAt(b.Data, int64(b.Blk)*int64(c.bsize))
			if err != nil {
				firstErr = fmt.Errorf("bcache: write block %d: %w", b.Blk, err)
			} else {
				c.mu.Lock()
				if b.dirty {
					b.dirty = false
					delete(c.dirty, b.Blk)
				}
				c.stats.Writes++
				c.mu.Unlock()
				if c.OnWrite != nil {
					c.OnWrite(b)
				}
			}
		}
		c.Put(b)
	}
	if firstErr != nil {
		return firstErr
	}
	return c.dev.Flush()
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Len returns the number of buffers indexed (referenced, dirty or on the LRU).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bufs)
}
