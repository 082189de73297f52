package ext4

import (
	"github.com/e4box/e4box/bcache"
)

// Tx is a metadata transaction, the only way to modify the filesystem.
//
// This is the skeleton the write path plugs into: today it only records
// the metadata buffers a mutation dirtied, writes them back when the
// function succeeds, and discards them (so the cache again reflects the
// disk) when it fails. There is no journal yet, so a crash in the middle of
// a writeback is not atomic, and no mutation operations exist yet.
type Tx struct {
	fs    *FS
	bufs  map[uint64]*bcache.Buf  // buffers used by the transaction, each holding a reference
	csums map[uint64]func([]byte) // per dirty block: sets its checksum just before write-back
	inos  map[Ino]struct{}        // inodes whose cached snapshots must be dropped
	ended bool
}

// Update runs fn as one transaction with FS.mu held exclusively, so no
// reader observes a partial mutation. It returns EROFS on a read-only
// filesystem. If fn fails, the buffers it dirtied are dropped from the
// cache and fn's error is returned.
func (fs *FS) Update(fn func(tx *Tx) error) error {
	if fs.ro {
		return errReadOnly
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	tx := &Tx{fs: fs, bufs: make(map[uint64]*bcache.Buf), csums: make(map[uint64]func([]byte)),
		inos: make(map[Ino]struct{})}
	err := fn(tx)
	tx.ended = true
	for ino := range tx.inos {
		fs.icache.drop(ino)
	}
	if err != nil {
		for blk, b := range tx.bufs {
			fs.cache.Forget(blk)
			fs.cache.Put(b)
		}
		return err
	}
	// Checksums are set once, on the final contents (lwext4's
	// checksum-on-put), never at the call sites that modify a block.
	for blk, csum := range tx.csums {
		if csum != nil {
			csum(tx.bufs[blk].Data)
		}
	}
	for _, b := range tx.bufs {
		fs.cache.Put(b)
	}
	return fs.cache.Flush()
}

// getBlockLocked returns metadata block blk for modification. The buffer
// stays referenced until the transaction ends; the caller must call
// dirtyLocked after changing it.
func (tx *Tx) getBlockLocked(blk PBlk, kind string, ino Ino) (*bcache.Buf, error) {
	if b, ok := tx.bufs[uint64(blk)]; ok {
		return b, nil
	}
	b, err := tx.fs.readBlockLocked(blk, kind, ino)
	if err != nil {
		return nil, err
	}
	tx.bufs[uint64(blk)] = b
	return b, nil
}

// dirtyLocked marks a buffer obtained from getBlockLocked as modified.
// csum, if not nil, is run on the block's final contents at commit, just
// before write-back (the last one given for a block wins).
func (tx *Tx) dirtyLocked(b *bcache.Buf, csum func([]byte)) {
	tx.fs.cache.MarkDirty(b)
	tx.csums[b.Blk] = csum
}

// touchInodeLocked records that inode ino changes in this transaction, so
// its cached snapshot is dropped when the transaction ends.
func (tx *Tx) touchInodeLocked(ino Ino) { tx.inos[ino] = struct{}{} }
