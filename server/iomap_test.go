package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"github.com/e4box/e4box/server/iomaptest"
)

// iomapFixture serves an image read-write over an iomap session driven by
// the kernel harness. The harness registers the image file itself as the
// device (a test-only stand-in for a block device).
type iomapFixture struct {
	t    *testing.T
	img  string
	fs   *ext4.FS
	srv  *Server
	sess *fusetest.Session
	k    *iomaptest.Kernel
	dev  *os.File // the fd registered with the "kernel"
	bdev blockdev.Device
}

// newIomapImage builds an empty image of variant v in a temp dir.
func newIomapImage(t *testing.T, v testutil.Variant, sizeMB int) string {
	t.Helper()
	testutil.RequireE2fsprogs(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	testutil.MkfsD(t, img, src, v, sizeMB)
	return img
}

func openIomap(t *testing.T, img string) *iomapFixture {
	t.Helper()
	bdev, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(bdev, ext4.Options{})
	if err != nil {
		bdev.Close()
		t.Fatal(err)
	}
	dev, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &iomapFixture{t: t, img: img, fs: fsys, bdev: bdev, dev: dev}
	f.srv = New(fsys, Options{})
	var devs *fusetest.IomapDevices
	f.sess, devs = fusetest.StartIomap(t, f.srv, nil)
	f.srv.EnableIomap(f.sess.Server, int(dev.Fd()))
	f.srv.SetNotifier(f.sess.Server)
	f.k = iomaptest.New(f.sess, devs, int64(fsys.BlockSize()))
	t.Cleanup(func() { f.close() })
	return f
}

// close ends the session and the FS (clean unmount) once.
func (f *iomapFixture) close() {
	if f.fs == nil {
		return
	}
	f.sess.Close()
	if err := f.fs.Close(); err != nil {
		f.t.Errorf("ext4 Close: %v", err)
	}
	f.bdev.Close()
	f.dev.Close()
	f.fs = nil
}

// finish writes back, closes and requires e2fsck -fn to be clean.
func (f *iomapFixture) finish() {
	f.t.Helper()
	if err := f.k.Destroy(); err != nil {
		f.t.Fatalf("destroy: %v", err)
	}
	f.close()
	testutil.E2fsckClean(f.t, f.img)
}

func TestIomapWriteReadback(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2, testutil.Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) {
			f := openIomap(t, newIomapImage(t, v, 16))
			k := f.k
			node, err := k.Create(rootNodeID, "a", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
			if n, err := k.Write(node, 1000, data); err != nil || n != len(data) {
				t.Fatalf("write: %d, %v", n, err)
			}
			if err := k.Fsync(node); err != nil {
				t.Fatal(err)
			}
			k.Forget(node)
			got, err := k.Read(node, 0, 200000)
			if err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, 1000), data...)
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d (equal prefix %d)", len(got), len(want), commonPrefix(got, want))
			}
			// The classic path sees the same bytes and size.
			c := iomaptest.Classic{S: f.sess}
			if sz, _ := c.Size(node); sz != int64(len(want)) {
				t.Errorf("GETATTR size %d, want %d", sz, len(want))
			}
			cg, err := c.Read(node, 0, 200000)
			if err != nil || !bytes.Equal(cg, want) {
				t.Fatalf("classic read: %d bytes, %v", len(cg), err)
			}
			dr, err := k.DirectRead(node, 0, 81920)
			if err != nil || !bytes.Equal(dr, want) {
				t.Fatalf("direct read: %d bytes, %v", len(dr), err)
			}
			if len(k.Rejected) != 0 {
				t.Errorf("rejected replies: %v", k.Rejected)
			}
			st := k.Stats
			wb := fuseproto.IomapOpWrite | fuseproto.IomapOpDirect
			if st.Begin[fuseproto.IomapOpWrite] == 0 || st.Begin[wb] == 0 || st.Begin[0] == 0 || st.End == 0 {
				t.Errorf("upcalls %v, %d ENDs: the data did not go through iomap", st.Begin, st.End)
			}
			if unwritten := v.Name != "ext2"; unwritten != (st.Ioend > 0) {
				t.Errorf("%d IOENDs on %s", st.Ioend, v.Name)
			}
			f.finish()
		})
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
