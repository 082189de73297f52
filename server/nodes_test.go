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

func TestLookupCounts(t *testing.T) {
	c := newLookupCounts()
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
	if rem := c.forget(12, 1); rem != 1 {
		t.Fatalf("forget(12,1) left %d", rem)
	}
	if rem := c.forget(12, 1); rem != 0 {
		t.Fatalf("forget(12,1) left %d", rem)
	}
	if rem := c.forget(13, 5); rem != 0 { // over-forget clamps
		t.Fatalf("over-forget left %d", rem)
	}
	if c.len() != 0 {
		t.Fatalf("%d nodes still tracked", c.len())
	}
}
