package bcache

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/e4box/e4box/blockdev"
)

const bs = 1024

// newDev returns a memory device of n blocks where block i is filled with byte i.
func newDev(n int) *blockdev.Mem {
	b := make([]byte, n*bs)
	for i := range n {
		for j := range bs {
			b[i*bs+j] = byte(i)
		}
	}
	return blockdev.NewMemFrom(b, false)
}

// countingDev counts reads.
type countingDev struct {
	blockdev.Device
	reads atomic.Int64
}

func (d *countingDev) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	return d.Device.ReadAt(p, off)
}

func TestGetPutHitMiss(t *testing.T) {
	dev := &countingDev{Device: newDev(16)}
	c, err := New(dev, bs, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(3)
	if err != nil {
		t.Fatal(err)
	}
	if b.Blk != 3 || len(b.Data) != bs || b.Data[0] != 3 || b.Data[bs-1] != 3 {
		t.Fatalf("bad buffer: blk %d len %d data[0] %d", b.Blk, len(b.Data), b.Data[0])
	}
	b2, err := c.Get(3)
	if err != nil || b2 != b {
		t.Fatalf("second Get = %p, %v; want same buffer", b2, err)
	}
	c.Put(b)
	c.Put(b2)
	b3, _ := c.Get(3)
	c.Put(b3)
	if got := dev.reads.Load(); got != 1 {
		t.Fatalf("device reads = %d, want 1", got)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if _, err := c.Get(16); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Get past end: %v", err)
	}
}

func TestLRUBound(t *testing.T) {
	dev := &countingDev{Device: newDev(32)}
	c, _ := New(dev, bs, 4)
	// Referenced buffers are never evicted, whatever the bound.
	var held []*Buf
	for i := range 8 {
		b, err := c.Get(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	if c.Len() != 8 {
		t.Fatalf("Len = %d with 8 referenced, want 8", c.Len())
	}
	for _, b := range held {
		c.Put(b)
	}
	if c.Len() != 4 {
		t.Fatalf("Len = %d after releasing, want LRU bound 4", c.Len())
	}
	// The 4 most recently released (4..7) survive; 0 was evicted.
	before := dev.reads.Load()
	b, _ := c.Get(7)
	c.Put(b)
	if dev.reads.Load() != before {
		t.Fatal("block 7 should have been cached")
	}
	b, _ = c.Get(0)
	c.Put(b)
	if dev.reads.Load() != before+1 {
		t.Fatal("block 0 should have been evicted")
	}
	if c.Stats().Evictions < 4 {
		t.Fatalf("evictions = %d", c.Stats().Evictions)
	}
}

func TestReadFailureNotCached(t *testing.T) {
	f := blockdev.NewFault(newDev(8))
	f.Add(blockdev.Rule{Op: blockdev.OpRead, Off: 2 * bs, Len: bs, Count: 1})
	c, _ := New(f, bs, 8)
	if _, err := c.Get(2); !errors.Is(err, blockdev.ErrInjected) {
		t.Fatalf("Get = %v, want injected error", err)
	}
	if c.Len() != 0 {
		t.Fatalf("failed read left %d buffers", c.Len())
	}
	b, err := c.Get(2)
	if err != nil {
		t.Fatalf("retry after transient failure: %v", err)
	}
	if b.Data[0] != 2 {
		t.Fatal("wrong data after retry")
	}
	c.Put(b)

	// A short device read is an error too.
	short := blockdev.NewMemFrom(make([]byte, bs+100), true)
	c2, _ := New(short, bs, 8)
	if _, err := c2.Get(1); err == nil {
		t.Fatal("Get of partial block succeeded")
	}
}

// slowDev blocks reads until released, to let getters pile up on one miss.
type slowDev struct {
	blockdev.Device
	gate  chan struct{}
	reads atomic.Int64
	fail  bool
}

func (d *slowDev) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	<-d.gate
	if d.fail {
		return 0, blockdev.ErrInjected
	}
	return d.Device.ReadAt(p, off)
}

func TestConcurrentMissSingleRead(t *testing.T) {
	for _, fail := range []bool{false, true} {
		dev := &slowDev{Device: newDev(4), gate: make(chan struct{}), fail: fail}
		c, _ := New(dev, bs, 4)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				b, err := c.Get(1)
				if err != nil {
					errs <- err
					return
				}
				if b.Data[0] != 1 {
					errs <- errors.New("bad data")
				}
				c.Put(b)
			})
		}
		// Let every goroutine reach Get before releasing the single read.
		for c.Stats().Hits+c.Stats().Misses < 16 {
			runtime.Gosched()
		}
		close(dev.gate)
		wg.Wait()
		close(errs)
		n := 0
		for err := range errs {
			n++
			if !fail {
				t.Fatal(err)
			}
		}
		if dev.reads.Load() != 1 {
			t.Fatalf("fail=%v: %d device reads, want 1", fail, dev.reads.Load())
		}
		if fail && (n != 16 || c.Len() != 0) {
			t.Fatalf("failing read: %d errors, %d cached; want 16, 0", n, c.Len())
		}
	}
}

func TestDirtyFlushForget(t *testing.T) {
	dev := newDev(8)
	c, _ := New(dev, bs, 0) // no clean buffers kept at all
	var written []uint64
	c.OnWrite = func(b *Buf) { written = append(written, b.Blk) }

	b5, _ := c.Get(5)
	b5.Data[0] = 0xAA
	c.MarkDirty(b5)
	c.Put(b5)
	b1, _ := c.GetZero(1)
	if b1.Data[0] != 0 {
		t.Fatal("GetZero read the device")
	}
	b1.Data[0] = 0xBB
	c.MarkDirty(b1)
	c.Put(b1)
	// Dirty buffers stay pinned despite maxClean 0.
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2 dirty buffers pinned", c.Len())
	}
	b3, _ := c.Get(3)
	b3.Data[0] = 0xCC
	c.MarkDirty(b3)
	c.Forget(3) // freed: its modification must never reach the disk
	c.MarkDirty(b3)
	c.Put(b3)
	if got := c.DirtyBlocks(); len(got) != 2 || got[0] != 1 || got[1] != 5 {
		t.Fatalf("DirtyBlocks = %v", got)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	img := dev.Bytes()
	if img[5*bs] != 0xAA || img[1*bs] != 0xBB || img[3*bs] != 3 {
		t.Fatalf("device after flush: %x %x %x", img[5*bs], img[1*bs], img[3*bs])
	}
	if len(written) != 2 || written[0] != 1 || written[1] != 5 {
		t.Fatalf("OnWrite order = %v", written)
	}
	if c.Len() != 0 {
		t.Fatalf("Len after flush = %d, want 0 (clean, unreferenced, maxClean 0)", c.Len())
	}
	// Forget of a cached clean block makes the next Get read the device.
	c2, _ := New(dev, bs, 8)
	b, _ := c2.Get(6)
	c2.Put(b)
	dev.WriteAt(bytes.Repeat([]byte{0x66}, bs), 6*bs)
	c2.Forget(6)
	b, _ = c2.Get(6)
	if b.Data[0] != 0x66 {
		t.Fatal("Forget did not drop the stale buffer")
	}
	c2.Put(b)
}

func TestFlushErrorKeepsDirty(t *testing.T) {
	f := blockdev.NewFault(newDev(8))
	c, _ := New(f, bs, 8)
	for _, blk := range []uint64{2, 4} {
		b, _ := c.Get(blk)
		b.Data[0] = 0xEE
		c.MarkDirty(b)
		c.Put(b)
	}
	f.Add(blockdev.Rule{Op: blockdev.OpWrite, Off: 4 * bs, Len: bs, Count: 1})
	if err := c.Flush(); !errors.Is(err, blockdev.ErrInjected) {
		t.Fatalf("Flush = %v", err)
	}
	if got := c.DirtyBlocks(); len(got) != 1 || got[0] != 4 {
		t.Fatalf("DirtyBlocks after failed flush = %v, want [4]", got)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.DirtyBlocks()) != 0 {
		t.Fatal("still dirty")
	}
}

func TestConcurrentStress(t *testing.T) {
	c, _ := New(newDev(64), bs, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				blk := uint64((i*7 + g*13) % 64)
				b, err := c.Get(blk)
				if err != nil {
					t.Error(err)
					return
				}
				if b.Data[bs/2] != byte(blk) {
					t.Errorf("block %d has data %d", blk, b.Data[bs/2])
				}
				if i%50 == 0 {
					c.Forget(blk)
				}
				c.Put(b)
			}
		})
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Fatalf("Len = %d after all released, bound 8", c.Len())
	}
}
