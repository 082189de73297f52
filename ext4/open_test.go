package ext4

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4/disk"
)

// superblockEdit returns a copy-on-write view of img whose superblock has
// fn applied (checksum fixed).
func superblockEdit(t *testing.T, img []byte, fn func(sb *disk.Superblock)) *cowDev {
	t.Helper()
	sb, err := disk.DecodeSuperblock(img[disk.SuperblockOffset:])
	if err != nil {
		t.Fatal(err)
	}
	fn(sb)
	sb.SetChecksum()
	buf := make([]byte, disk.SuperblockSize)
	sb.Encode(buf)
	d := newCow(img, false)
	d.patch(disk.SuperblockOffset, buf...)
	return d
}

func TestOpenFeatureGate(t *testing.T) {
	data := imageBytes(t, variantByName(t, "ext4"))

	// Unknown and unsupported incompat features refuse the mount, naming them.
	for _, tc := range []struct {
		f    disk.IncompatFeature
		name string
	}{{disk.IncompatEncrypt, "encrypt"}, {disk.IncompatCasefold, "casefold"}, {1 << 30, "FEATURE_I30"}} {
		bad := superblockEdit(t, data, func(sb *disk.Superblock) { sb.FeatureIncompat |= tc.f })
		_, err := Open(bad, Options{ReadOnly: true})
		if !errors.Is(err, ErrUnsupportedFeature) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("incompat %s: Open = %v", tc.name, err)
		}
	}

	// Error state: refused unless asked.
	errState := superblockEdit(t, data, func(sb *disk.Superblock) { sb.State |= disk.StateError })
	if _, err := Open(errState, Options{ReadOnly: true}); !errors.Is(err, ErrErrorState) {
		t.Errorf("error state: Open = %v", err)
	}
	if _, err := Open(errState, Options{ReadOnly: true, IgnoreErrorState: true}); err != nil {
		t.Errorf("error state with IgnoreErrorState: %v", err)
	}

	// needs_recovery: refused with the norecovery hint; with NoRecovery the
	// mount is forced read-only.
	rec := superblockEdit(t, data, func(sb *disk.Superblock) { sb.FeatureIncompat |= disk.IncompatRecover })
	_, err := Open(rec, Options{})
	if !errors.Is(err, ErrNeedsRecovery) || !strings.Contains(err.Error(), "norecovery") {
		t.Errorf("needs_recovery: Open = %v", err)
	}
	fs, err := Open(rec, Options{NoRecovery: true})
	if err != nil || !fs.ReadOnly() {
		t.Errorf("needs_recovery with NoRecovery: %v, read-only %v", err, fs != nil && fs.ReadOnly())
	}

	// Unknown ro_compat bits force read-only; a clean image opens rw.
	roc := superblockEdit(t, data, func(sb *disk.Superblock) { sb.FeatureRoCompat |= 1 << 29 })
	fs, err = Open(roc, Options{})
	if err != nil || !fs.ReadOnly() {
		t.Errorf("unknown ro_compat: %v, read-only %v", err, fs != nil && fs.ReadOnly())
	}
	fs, err = Open(newCow(data, false), Options{})
	if err != nil || fs.ReadOnly() {
		t.Errorf("clean image: %v, read-only %v", err, fs != nil && fs.ReadOnly())
	}

	// Geometry: more blocks than the device holds.
	big := superblockEdit(t, data, func(sb *disk.Superblock) { sb.SetBlocksCount(sb.BlocksCount() * 2) })
	if _, err := Open(big, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("oversized block count: Open = %v", err)
	}
	// A truncated device.
	if _, err := Open(newCow(data[:len(data)/2], true), Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated device: Open = %v", err)
	}
}

// TestConcurrentReaders hammers one FS from many goroutines (run with -race).
func TestConcurrentReaders(t *testing.T) {
	img, _, spec := image(t, variantByName(t, "ext4-1k-tea"))
	fs := openImage(t, img, Options{})
	big, err := resolve(fs, spec.bigDir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := readAll(fs, mustResolve(t, fs, "f300000"))
	if err != nil {
		t.Fatal(err)
	}
	fs.icache.clear() // start cold so goroutines race on loading
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := spec.bigNames[(i*31+g*97)%len(spec.bigNames)]
				if _, err := fs.Lookup(big, []byte(n)); err != nil {
					t.Errorf("Lookup(%s): %v", n, err)
					return
				}
				if i%50 == 0 {
					got, err := readAll(fs, mustResolve(t, fs, "f300000"))
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("concurrent read: %v", err)
						return
					}
					cnt := 0
					fs.ReadDir(big, 0, func(DirEntry) bool { cnt++; return cnt < 500 })
					fs.Statfs()
					fs.ListXattr(mustResolve(t, fs, "f10"))
				}
			}
		})
	}
	wg.Wait()
}

func mustResolve(t testing.TB, fs *FS, path string) Ino {
	ino, err := resolve(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// TestErrnos checks the POSIX outcomes of misuse.
func TestErrnos(t *testing.T) {
	img, _, _ := image(t, variantByName(t, "ext4"))
	fs := openImage(t, img, Options{})
	f10 := mustResolve(t, fs, "f10")
	dir := mustResolve(t, fs, "dir")
	link := mustResolve(t, fs, "sl_short")
	for _, tc := range []struct {
		what string
		err  error
		want syscall.Errno
	}{
		{"Lookup in file", second(fs.Lookup(f10, []byte("x"))), syscall.ENOTDIR},
		{"Lookup absent", second(fs.Lookup(dir, []byte("nope"))), syscall.ENOENT},
		{"ReadDir of file", fs.ReadDir(f10, 0, func(DirEntry) bool { return true }), syscall.ENOTDIR},
		{"ReadLink of file", second(fs.ReadLink(f10)), syscall.EINVAL},
		{"ReadAt of dir", second(fs.ReadAt(dir, make([]byte, 1), 0)), syscall.EISDIR},
		{"ReadAt of symlink", second(fs.ReadAt(link, make([]byte, 1), 0)), syscall.EINVAL},
		{"SeekData past EOF", second(fs.SeekData(f10, 10)), syscall.ENXIO},
		{"SeekHole past EOF", second(fs.SeekHole(f10, 100)), syscall.ENXIO},
		{"Inode 0", second(fs.Inode(0)), syscall.ESTALE},
		{"Inode beyond count", second(fs.Inode(Ino(fs.geo.InodesCount + 1))), syscall.ESTALE},
		{"Inode unused", second(fs.Inode(Ino(fs.geo.InodesCount))), syscall.ESTALE},
		{"GetXattr absent", second(fs.GetXattr(f10, "user.none")), syscall.ENODATA},
		{"GetXattr bad namespace", second(fs.GetXattr(f10, "bogus.x")), syscall.EOPNOTSUPP},
		{"GetXattr system.data", second(fs.GetXattr(f10, "system.data")), syscall.EOPNOTSUPP},
		{"Map negative", second(fs.Map(f10, -1, 10)), syscall.EINVAL},
		{"Map fast symlink", second(fs.Map(link, 0, 10)), syscall.EINVAL},
		{"Update read-only", fs.Update(func(*Tx) error { return nil }), syscall.EROFS},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	// Map beyond EOF answers a hole covering the request.
	m, err := fs.Map(f10, 1<<20, 100)
	if err != nil || m.Type != MapHole || m.Offset != 1<<20 || m.Length != int64(fs.BlockSize()) {
		t.Errorf("Map past EOF = %+v, %v", m, err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestUpdate exercises the transaction skeleton: a successful transaction
// writes its dirty buffers back, a failed one leaves the disk and the cache
// as they were.
func TestUpdate(t *testing.T) {
	dev := newCow(imageBytes(t, variantByName(t, "ext4")), false)
	fs, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A spare block: the last one of the filesystem is free in these images.
	blk := PBlk(fs.nblocks - 1)
	write := func(v byte, fail bool) error {
		return fs.Update(func(tx *Tx) error {
			b, err := tx.getBlockLocked(blk, "test", 0)
			if err != nil {
				return err
			}
			b.Data[0] = v
			tx.dirtyLocked(b, func(d []byte) { d[1] = d[0] ^ 0xFF }) // a stand-in checksum
			tx.touchInodeLocked(RootIno)
			if fail {
				return errStop
			}
			return nil
		})
	}
	if err := write(0xAB, false); err != nil {
		t.Fatal(err)
	}
	if got := dev.bytesAt(fs.pblkOff(blk), 2); got[0] != 0xAB || got[1] != 0x54 {
		t.Fatalf("committed bytes = %x, want ab54 (value and checksum)", got)
	}
	if err := write(0xCD, true); !errors.Is(err, errStop) {
		t.Fatalf("failed transaction returned %v", err)
	}
	if got := dev.bytesAt(fs.pblkOff(blk), 1)[0]; got != 0xAB {
		t.Fatalf("aborted transaction reached the disk: %#x", got)
	}
	b, err := fs.readBlockLocked(blk, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.cache.Put(b)
	if b.Data[0] != 0xAB {
		t.Fatalf("aborted transaction left %#x in the cache", b.Data[0])
	}
	if len(fs.cache.DirtyBlocks()) != 0 {
		t.Fatal("dirty buffers left after transactions")
	}
}
