package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"github.com/e4box/e4box/server/iomaptest"
)

// The kernel as the oracle: FIEMAP through the harness against filefrag
// -v on a loop mount of the same image, SEEK_DATA/SEEK_HOLE through the
// harness and on a real e4box mount against the loop mount, and
// discovery on this kernel.

// shapeFiles writes files of many layouts through the harness's iomap
// paths and returns their nodeids by name. Preallocation needs extents.
func shapeFiles(t *testing.T, k *iomaptest.Kernel, extents bool) map[string]uint64 {
	t.Helper()
	nodes := map[string]uint64{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name string) uint64 {
		n, err := k.Create(rootNodeID, name, 0o644)
		must(err)
		nodes[name] = n
		return n
	}
	write := func(n uint64, off int64, size int) {
		t.Helper()
		p := bytes.Repeat([]byte{byte(off>>12) | 1}, size)
		_, err := k.Write(n, off, p)
		must(err)
	}
	h := mk("holes")
	write(h, 0, 5000)
	write(h, 1<<20, 20000)
	write(h, 3<<20+100, 1)

	p := mk("punched")
	write(p, 0, 1<<20)
	must(k.Fsync(p))
	must(k.Fallocate(p, iomaptest.FallocPunchHole|iomaptest.FallocKeepSize, 300<<10+7, 200<<10))

	a := mk("appended")
	for i := range 50 {
		write(a, int64(i*3000), 3000)
		if i%7 == 0 {
			must(k.Fsync(a))
		}
	}
	d := mk("dio")
	_, err := k.DirectWrite(d, 0, bytes.Repeat([]byte{7}, 64<<10))
	must(err)
	_, err = k.DirectWrite(d, 512<<10, bytes.Repeat([]byte{8}, 64<<10))
	must(err)

	tr := mk("truncated")
	write(tr, 0, 2<<20)
	must(k.Truncate(tr, 700001))
	must(k.Truncate(tr, 1500<<10))

	o := mk("overwritten")
	write(o, 0, 256<<10)
	must(k.Fsync(o))
	write(o, 100<<10, 10000)

	if extents {
		pr := mk("prealloc")
		must(k.Fallocate(pr, 0, 0, 1<<20))
		write(pr, 256<<10, 10000)
		write(pr, 700<<10, 4096)
		z := mk("zeroed")
		write(z, 0, 1<<20)
		must(k.Fsync(z))
		must(k.Fallocate(z, iomaptest.FallocZeroRange, 400<<10+5, 100<<10))
	}
	must(k.Sync())
	return nodes
}

// filefragExtent is one line of filefrag -v, in blocks.
type filefragExtent struct {
	logical, physical, length uint64
	flags                     string
}

var filefragLine = regexp.MustCompile(`^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(\d*):?\s*(.*)$`)

func filefrag(t *testing.T, path string) []filefragExtent {
	t.Helper()
	out, err := exec.Command("filefrag", "-v", path).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag -v %s: %v: %s", path, err, out)
	}
	var ext []filefragExtent
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := filefragLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n := func(i int) uint64 {
			v, _ := strconv.ParseUint(m[i], 10, 64)
			return v
		}
		ext = append(ext, filefragExtent{logical: n(1), physical: n(3), length: n(5), flags: m[7]})
	}
	return ext
}

// fiemapFlags renders the FIEMAP flags filefrag names.
func fiemapFlags(f uint32) []string {
	var s []string
	for _, x := range []struct {
		bit  uint32
		name string
	}{{iomaptest.FiemapExtentLast, "last"}, {iomaptest.FiemapExtentUnwritten, "unwritten"},
		{iomaptest.FiemapExtentMerged, "merged"}, {iomaptest.FiemapExtentDataInline, "inline"},
		{iomaptest.FiemapExtentShared, "shared"}, {iomaptest.FiemapExtentDelalloc, "delalloc"}} {
		if f&x.bit != 0 {
			s = append(s, x.name)
		}
	}
	return s
}

func TestIomapFiemapMatchesFilefrag(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireLoop(t)
	testutil.RequireTool(t, "filefrag")
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext2} {
		t.Run(v.Name, func(t *testing.T) {
			f := openIomap(t, newIomapImage(t, v, 64))
			nodes := shapeFiles(t, f.k, v.Name != "ext2")
			bs := uint64(f.fs.BlockSize())
			ours := map[string][]iomaptest.Extent{}
			for name, n := range nodes {
				ext, err := f.k.Fiemap(n, 0, 1<<40)
				if err != nil {
					t.Fatalf("%s: fiemap: %v", name, err)
				}
				if len(ext) == 0 {
					t.Fatalf("%s: no extents", name)
				}
				ours[name] = ext
			}
			f.finish()
			mnt := t.TempDir()
			testutil.LoopMount(t, f.img, mnt, true)
			defer testutil.Unmount(t, mnt)
			for name, ext := range ours {
				kern := filefrag(t, filepath.Join(mnt, name))
				var a, b []string
				for _, e := range ext {
					a = append(a, fmt.Sprintf("%d+%d@%d %v", e.Logical/bs, e.Length/bs, e.Physical/bs, fiemapFlags(e.Flags)))
				}
				for _, e := range kern {
					var fl []string
					for _, w := range strings.Split(e.flags, ",") {
						if w = strings.TrimSpace(w); w != "" && w != "eof" {
							fl = append(fl, w)
						}
					}
					b = append(b, fmt.Sprintf("%d+%d@%d %v", e.logical, e.length, e.physical, fl))
				}
				if strings.Join(a, "\n") != strings.Join(b, "\n") {
					t.Errorf("%s: harness FIEMAP:\n  %s\nfilefrag -v on the kernel:\n  %s", name,
						strings.Join(a, "\n  "), strings.Join(b, "\n  "))
				}
			}
		})
	}
}

// seekGrid is the offsets probed in a file of the given size.
func seekGrid(size, bs int64) []int64 {
	var offs []int64
	for off := int64(0); off < size+bs; off += bs / 2 {
		offs = append(offs, off)
		if len(offs) > 4000 {
			step := max(bs, size/500) / bs * bs
			offs = offs[:0]
			for o := int64(0); o < size+bs; o += step {
				offs = append(offs, o, o+1, o+step-1)
			}
			break
		}
	}
	return append(offs, size-1, size, size+1)
}

type seekAnswer struct {
	off int64
	err syscall.Errno
}

func (a seekAnswer) String() string {
	if a.err != 0 {
		return a.err.Error()
	}
	return strconv.FormatInt(a.off, 10)
}

// seekFile probes SEEK_DATA (3) and SEEK_HOLE (4) at every offset.
func seekFile(t *testing.T, path string, offs []int64) map[[2]int64]seekAnswer {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	res := map[[2]int64]seekAnswer{}
	for _, off := range offs {
		for _, whence := range []int{3, 4} {
			o, err := unix.Seek(fd, off, whence)
			errno, _ := errors.AsType[syscall.Errno](err)
			if err != nil && errno == 0 {
				t.Fatal(err)
			}
			if errno != 0 {
				o = 0
			}
			res[[2]int64{off, int64(whence)}] = seekAnswer{o, errno}
		}
	}
	return res
}

// mountForSeek mounts img with e4box for real, asking for iomap (which
// this kernel lacks), and returns the mount point, the session and its
// unmount.
func mountIomapWanted(t *testing.T, img string) (string, *fuse.Server, func()) {
	t.Helper()
	dev, err := blockdev.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(dev, ext4.Options{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := New(fsys, Options{})
	sess, err := fuse.Mount(dir, srv, &fuse.Options{FsName: img, DefaultPermissions: true, Iomap: fuseproto.IomapSupportAll})
	if err != nil {
		fsys.Close()
		dev.Close()
		t.Fatalf("fuse.Mount: %v", err)
	}
	srv.SetNotifier(sess)
	reg := &countingRegistrar{reg: sess}
	imgFile, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.EnableIomap(reg, int(imgFile.Fd()))
	serve := make(chan error, 1)
	go func() { serve <- sess.Serve() }()
	waitReady(t, sess, serve)
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		if ok, _ := testutil.IsMountPoint(dir); ok {
			testutil.Unmount(t, dir)
		}
		select {
		case err := <-serve:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("Serve did not return")
		}
		if err := fsys.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		dev.Close()
		imgFile.Close()
		if reg.calls != 0 {
			t.Errorf("the server registered an iomap device %d times on a classic session", reg.calls)
		}
	}
	t.Cleanup(unmount)
	return dir, sess, unmount
}

type countingRegistrar struct {
	reg   IomapRegistrar
	calls int
}

func (c *countingRegistrar) AddIomapDevice(fd int) (uint32, error) {
	c.calls++
	return c.reg.AddIomapDevice(fd)
}

func TestIomapSeekMatchesKernel(t *testing.T) {
	requireRWMount(t)
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) {
			f := openIomap(t, newIomapImage(t, v, 64))
			nodes := shapeFiles(t, f.k, true)
			bs := int64(f.fs.BlockSize())
			harness := map[string]map[[2]int64]seekAnswer{}
			grids := map[string][]int64{}
			for name, n := range nodes {
				f.k.Forget(n) // a cold page cache, like the mounts below
				size, _ := f.k.Size(n)
				grids[name] = seekGrid(size, bs)
				res := map[[2]int64]seekAnswer{}
				for _, off := range grids[name] {
					for _, whence := range []int64{3, 4} {
						var o int64
						var err error
						if whence == 3 {
							o, err = f.k.SeekData(n, off)
						} else {
							o, err = f.k.SeekHole(n, off)
						}
						errno, _ := errors.AsType[syscall.Errno](err)
						if err != nil && errno == 0 {
							t.Fatal(err)
						}
						if errno != 0 {
							o = 0
						}
						res[[2]int64{off, whence}] = seekAnswer{o, errno}
					}
				}
				harness[name] = res
			}
			f.finish()

			dir, _, unmount := mountIomapWanted(t, f.img)
			e4box := map[string]map[[2]int64]seekAnswer{}
			for name := range nodes {
				e4box[name] = seekFile(t, filepath.Join(dir, name), grids[name])
			}
			unmount()

			mnt := t.TempDir()
			testutil.LoopMount(t, f.img, mnt, true)
			defer testutil.Unmount(t, mnt)
			for name := range nodes {
				kern := seekFile(t, filepath.Join(mnt, name), grids[name])
				bad := 0
				for _, off := range grids[name] {
					for _, whence := range []int64{3, 4} {
						key := [2]int64{off, whence}
						if kern[key] != e4box[name][key] || kern[key] != harness[name][key] {
							bad++
							if bad <= 5 {
								t.Errorf("%s: lseek(%d, %d): kernel %v, e4box mount %v, iomap harness %v",
									name, off, whence, kern[key], e4box[name][key], harness[name][key])
							}
						}
					}
				}
				if bad > 5 {
					t.Errorf("%s: %d disagreements in all", name, bad)
				}
			}
		})
	}
}

// On this machine's kernel (no fuse-iomap series), discovery reports no
// support and an e4box mount that asks for iomap runs classic: no iomap
// bits at INIT, no device registration, data through READ/WRITE. Set
// E4BOX_IOMAP_KERNEL=1 on a kernel with the series.
func TestIomapDiscoveryThisKernel(t *testing.T) {
	requireRWMount(t)
	if os.Getenv("E4BOX_IOMAP_KERNEL") == "1" {
		t.Skip("E4BOX_IOMAP_KERNEL=1: this kernel has fuse-iomap")
	}
	sup, err := fuse.DiscoverIomap()
	if sup != 0 || !errors.Is(err, fuse.ErrNoKernelIomap) {
		t.Fatalf("DiscoverIomap = %v, %v; want no support", sup, err)
	}
	img := newIomapImage(t, testutil.Ext4, 32)
	dir, sess, unmount := mountIomapWanted(t, img)
	data := bytes.Repeat([]byte("classic path "), 4000)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if p := sess.Protocol(); p == nil || p.Flags&fuseproto.InitIomapAll != 0 {
		t.Errorf("negotiated %v", p)
	}
	if got := sess.IomapStatus(); got != fuse.NoKernelIomapMessage {
		t.Errorf("IomapStatus = %q, want %q", got, fuse.NoKernelIomapMessage)
	}
	unmount() // checks that no device was registered
	testutil.E2fsckClean(t, img)
}

// The iomap INIT bits reach the kernel only when discovery found support:
// the server never adds them itself.
func TestIomapNegotiatedOnlyWhenDiscovered(t *testing.T) {
	img := newIomapImage(t, testutil.Ext4, 16)
	for _, c := range []struct {
		name     string
		discover func() (fuseproto.IomapSupport, error)
		want     fuseproto.InitFlags
	}{
		{"discovered", func() (fuseproto.IomapSupport, error) { return fuseproto.IomapSupportAll, nil }, fuseproto.InitIomapAll},
		{"no kernel support", func() (fuseproto.IomapSupport, error) { return 0, fuse.ErrNoKernelIomap }, 0},
		{"enable_iomap off", func() (fuseproto.IomapSupport, error) { return 0, nil }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dev, err := blockdev.Open(img, false)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			fsys, err := ext4.Open(dev, ext4.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			srv := New(fsys, Options{})
			s := fusetest.StartNoInit(t, srv, &fuse.Options{Iomap: fuseproto.IomapSupportAll, IomapDiscover: c.discover})
			devs := &fusetest.IomapDevices{AnyFile: true}
			s.Conn.SetWriteHook(fusetest.AddIomapDeviceHook(devs.Register))
			in := fusetest.IomapInit()
			h, body := s.Init(&in)
			if h.Error != 0 {
				t.Fatalf("INIT: errno %d", -h.Error)
			}
			out := fusetest.Decode[fuseproto.InitOut](body)
			if got := out.Flags64() & fuseproto.InitIomapAll; got != c.want {
				t.Errorf("INIT reply iomap bits %v, want %v", got, c.want)
			}
			imgFile, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer imgFile.Close()
			srv.EnableIomap(s.Server, int(imgFile.Fd()))
			bin := fuseproto.IomapBeginIn{Opflags: fuseproto.IomapOpReport, AttrIno: uint64(ext4.RootIno), Count: 4096}
			h, _ = s.Do(fuseproto.OpIomapBegin, rootNodeID, fusetest.Bytes(&bin))
			registered := len(devs.Registered()) > 0
			if registered != (c.want != 0) {
				t.Errorf("device registered: %v (BEGIN errno %d)", registered, -h.Error)
			}
			s.Close()
		})
	}
}
