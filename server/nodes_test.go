package server

import (
	"errors"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4"
)

func TestNodeIDMapping(t *testing.T) {
	tests := []struct {
		ino  ext4.Ino
		want uint64
		bad  bool
	}{
		{ext4.RootIno, 1, false},
		{11, 11, false},
		{0xffffffff, 0xffffffff, false},
		{0, 0, true},
		{1, 0, true}, // bad-blocks inode is never exposed
	}
	for _, tt := range tests {
		got, err := nodeID(tt.ino)
		if tt.bad {
			if !errors.Is(err, ext4.ErrCorrupt) {
				t.Errorf("nodeID(%d) err = %v, want corruption", tt.ino, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("nodeID(%d) = %d, %v; want %d", tt.ino, got, err, tt.want)
		}
		back, errno := inoOf(got)
		if errno != 0 || back != tt.ino {
			t.Errorf("inoOf(%d) = %d, %v; want %d", got, back, errno, tt.ino)
		}
	}
	for _, id := range []uint64{0, 2, 1 << 32} {
		if _, errno := inoOf(id); errno != syscall.ESTALE {
			t.Errorf("inoOf(%d) errno = %v, want ESTALE", id, errno)
		}
	}
}

func TestNodeTableLookups(t *testing.T) {
	c := newNodeTable()
	c.ref(rootNodeID) // never counted
	c.ref(12)
	c.ref(12)
	c.ref(13)
	if got := c.count(12); got != 2 {
		t.Fatalf("count(12) = %d", got)
	}
	if got := c.count(rootNodeID); got != 0 {
		t.Fatalf("root counted: %d", got)
	}
	if c.forget(12, 1) || c.count(12) != 1 {
		t.Fatalf("forget(12,1): count %d", c.count(12))
	}
	if c.forget(12, 1) || c.count(12) != 0 {
		t.Fatalf("forget(12,1): count %d", c.count(12))
	}
	if c.forget(13, 5) || c.count(13) != 0 { // over-forget clamps
		t.Fatalf("over-forget left %d", c.count(13))
	}
	if c.len() != 0 {
		t.Fatalf("%d nodes still tracked", c.len())
	}
}

// TestNodeTableEviction: an unlinked inode is evicted exactly once, when
// the last of its lookups and handles goes, in whatever order they go.
func TestNodeTableEviction(t *testing.T) {
	c := newNodeTable()
	// unlink while referenced and open; forget, then the last release.
	c.ref(20)
	c.open(20)
	c.open(20)
	if c.unlink(20) {
		t.Fatal("evicted while referenced")
	}
	if c.forget(20, 1) {
		t.Fatal("evicted while open")
	}
	if c.release(20) {
		t.Fatal("evicted with a handle left")
	}
	if !c.release(20) {
		t.Fatal("not evicted at the last release")
	}
	if c.release(20) || c.forget(20, 1) || c.len() != 0 {
		t.Fatal("evicted twice, or state left")
	}
	// release first, the forget last.
	c.ref(21)
	c.open(21)
	c.unlink(21)
	if c.release(21) || !c.forget(21, 1) {
		t.Fatal("not evicted at the last forget")
	}
	// unreferenced at unlink: evict at once.
	if !c.unlink(22) {
		t.Fatal("unreferenced unlinked inode not evicted")
	}
	// linked inodes are never evicted, only forgotten.
	c.ref(23)
	c.open(23)
	if c.release(23) || c.forget(23, 1) || c.len() != 0 {
		t.Fatal("linked inode evicted, or state left")
	}
	// the end of the session hands over what is left.
	c.ref(24)
	c.unlink(24)
	c.ref(25)
	if ids := c.drainUnlinked(); len(ids) != 1 || ids[0] != 24 || c.len() != 1 {
		t.Fatalf("drainUnlinked = %v, %d left", ids, c.len())
	}
}
