package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"github.com/e4box/e4box/server/iomaptest"
)

// The randomised differential test: one workload of buffered, short,
// direct and sparse writes, truncates, fallocates, writebacks and reads
// over many files, applied to two copies of an image, one through the
// iomap harness and one through the classic FUSE opcodes. After every
// operation sizes agree (the harness's in-core size, and what the iomap
// server and the classic server report), reads agree, and every write or
// read mapping lies inside the file's own extents; at checkpoints no two
// files' extents overlap and every mapped block is allocated in the
// bitmaps (debugfs testb). At the end contents agree, both images are
// e2fsck-clean, SEEK_DATA/SEEK_HOLE agree, and the kernel's ext4 reads the
// iomap image's files back byte for byte.

// diffOps is the default number of operations per variant; E4BOX_IOMAP_OPS
// overrides it.
const diffOps = 1200

func TestIomapDifferential(t *testing.T) {
	nops := diffOps
	if s := os.Getenv("E4BOX_IOMAP_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("E4BOX_IOMAP_OPS: %v", err)
		}
		nops = n
	} else if testing.Short() {
		nops = 200
	}
	variants := []testutil.Variant{testutil.Ext4, testutil.Ext4Block1K, testutil.Ext2, testutil.Ext4NoExtent, testutil.Ext4Inline}
	for i, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			runIomapDiff(t, v, uint64(i+1), nops)
		})
	}
}

// classicSide serves a copy of the image through the classic opcodes.
type classicSide struct {
	img  string
	fs   *ext4.FS
	bdev blockdev.Device
	sess *fusetest.Session
	c    iomaptest.Classic
}

func openClassic(t *testing.T, img string) *classicSide {
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
	s := &classicSide{img: img, fs: fsys, bdev: bdev}
	srv := New(fsys, Options{})
	s.sess = fusetest.Start(t, srv, nil)
	srv.SetNotifier(s.sess.Server)
	s.c = iomaptest.Classic{S: s.sess}
	t.Cleanup(func() { s.close(t) })
	return s
}

func (s *classicSide) close(t *testing.T) {
	if s.fs == nil {
		return
	}
	s.sess.Close()
	if err := s.fs.Close(); err != nil {
		t.Errorf("ext4 Close: %v", err)
	}
	s.bdev.Close()
	s.fs = nil
}

func copyImage(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	return dst
}

// mapRec is a mapping the harness used for a write or read.
type mapRec struct {
	node uint64
	op   fuseproto.IomapOpFlags
	m    iomaptest.Mapping
}

type diffRun struct {
	t      *testing.T
	rng    *rand.Rand
	a      *iomapFixture
	b      *classicSide
	bs     int64
	names  []string
	nodeA  map[string]uint64
	nodeB  map[string]uint64
	recs   []mapRec
	extent bool // the variant preallocates (extent files)
}

func runIomapDiff(t *testing.T, v testutil.Variant, seed uint64, nops int) {
	imgA := newIomapImage(t, v, 128)
	imgB := copyImage(t, imgA)
	r := &diffRun{t: t, rng: rand.New(rand.NewPCG(seed, 0x10ac)), nodeA: map[string]uint64{}, nodeB: map[string]uint64{},
		extent: !strings.Contains(v.Name, "noextent") && v.Name != "ext2"}
	r.a = openIomap(t, imgA)
	r.b = openClassic(t, imgB)
	r.bs = int64(v.BlockSize)
	for i := range 12 {
		r.names = append(r.names, fmt.Sprintf("f%02d", i))
	}
	r.a.k.OnMap = func(node uint64, op fuseproto.IomapOpFlags, m iomaptest.Mapping) {
		if op&(fuseproto.IomapOpReport|fuseproto.IomapOpZero) == 0 &&
			(m.Type == fuseproto.IomapTypeMapped || m.Type == fuseproto.IomapTypeUnwritten) {
			r.recs = append(r.recs, mapRec{node, op, m})
		}
	}
	kinds := map[string]int{}
	for i := range nops {
		name := r.names[r.rng.IntN(len(r.names))]
		kind := r.step(i, name)
		kinds[kind]++
		if i%300 == 299 {
			r.checkpoint(i)
		}
	}
	t.Logf("%d operations: %v; upcalls %v, %d END, %d IOEND", nops, kinds, r.a.k.Stats.Begin, r.a.k.Stats.End, r.a.k.Stats.Ioend)
	r.finish()
}

// node returns name's nodeids, creating the file on both sides.
func (r *diffRun) node(name string) (uint64, uint64) {
	if a, ok := r.nodeA[name]; ok {
		return a, r.nodeB[name]
	}
	a, err := r.a.k.Create(rootNodeID, name, 0o644)
	if err != nil {
		r.t.Fatalf("create %s (iomap): %v", name, err)
	}
	b, err := r.b.c.Create(rootNodeID, name, 0o644)
	if err != nil {
		r.t.Fatalf("create %s (classic): %v", name, err)
	}
	r.nodeA[name], r.nodeB[name] = a, b
	return a, b
}

const maxDiffFile = 10 << 20

// offset picks a write position: appending, inside or just past the data,
// or far out (sparse).
func (r *diffRun) offset(size int64) int64 {
	switch x := r.rng.IntN(10); {
	case x < 4:
		return min(size, maxDiffFile)
	case x < 8:
		return r.rng.Int64N(min(size, maxDiffFile) + 65536)
	}
	return r.rng.Int64N(maxDiffFile)
}

func (r *diffRun) length() int64 {
	if r.rng.IntN(10) == 0 {
		return 1 + r.rng.Int64N(600<<10)
	}
	return 1 + r.rng.Int64N(64<<10)
}

func (r *diffRun) data(n int64) []byte {
	p := make([]byte, n)
	for i := range p {
		if i%8 == 0 {
			v := r.rng.Uint64()
			for j := 0; j < 8 && i+j < len(p); j++ {
				p[i+j] = byte(v >> (8 * j))
			}
		}
	}
	return p
}

// step runs one random operation on name and checks the outcome.
func (r *diffRun) step(i int, name string) string {
	t := r.t
	a, b := r.node(name)
	k, c := r.a.k, &r.b.c
	size, err := k.Size(a)
	if err != nil {
		t.Fatal(err)
	}
	kind := ""
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("op %d (%s on %s, size %d): %s", i, kind, name, size, fmt.Sprintf(format, args...))
	}
	same := func(ea, eb error) {
		t.Helper()
		if !sameErr(ea, eb) {
			fail("iomap: %v, classic: %v", ea, eb)
		}
	}
	bs := r.bs
	switch x := r.rng.IntN(100); {
	case x < 30, x < 38:
		kind = "write"
		off, n := r.offset(size), r.length()
		p := r.data(n)
		if x >= 30 {
			kind = "short write"
			cut := r.rng.IntN(int(n))
			k.ShortCopy = func(int64, int) int { return cut }
		}
		wa, ea := k.Write(a, off, p)
		k.ShortCopy = nil
		if ea != nil && !(x >= 30 && errors.Is(ea, syscall.EFAULT)) {
			fail("iomap write [%d,+%d): %v", off, n, ea)
		}
		if wa > 0 {
			if wb, eb := c.Write(b, off, p[:wa]); eb != nil || wb != wa {
				fail("classic write: %d, %v; iomap wrote %d", wb, eb, wa)
			}
		}
	case x < 50:
		kind = "direct write"
		off := r.offset(size) / bs * bs
		n := max(bs, r.length()/bs*bs)
		p := r.data(n)
		wa, ea := k.DirectWrite(a, off, p)
		wb, eb := c.Write(b, off, p)
		same(ea, eb)
		if wa != wb {
			fail("wrote %d (iomap) and %d (classic)", wa, wb)
		}
	case x < 58:
		kind = "truncate"
		ns := r.rng.Int64N(size + size/2 + 2*bs)
		if r.rng.IntN(4) == 0 {
			ns = ns / bs * bs
		}
		same(k.Truncate(a, ns), c.Truncate(b, ns))
	case x < 68:
		modes := []uint32{0, iomaptest.FallocKeepSize, iomaptest.FallocPunchHole | iomaptest.FallocKeepSize,
			iomaptest.FallocZeroRange, iomaptest.FallocZeroRange | iomaptest.FallocKeepSize}
		mode := modes[r.rng.IntN(len(modes))]
		kind = fmt.Sprintf("fallocate %#x", mode)
		off := r.rng.Int64N(min(size, maxDiffFile) + (1 << 20))
		n := 1 + r.rng.Int64N(512<<10)
		same(k.Fallocate(a, mode, off, n), c.Fallocate(b, mode, off, n))
	case x < 76:
		kind = "fsync"
		if err := k.Fsync(a); err != nil {
			fail("%v", err)
		}
	case x < 79:
		kind = "sync"
		if err := k.Sync(); err != nil {
			fail("%v", err)
		}
	case x < 84:
		kind = "forget"
		k.Forget(a)
	case x < 94:
		kind = "read"
		off := r.rng.Int64N(size + bs)
		n := int(r.length())
		ga, ea := k.Read(a, off, n)
		gb, eb := c.Read(b, off, n)
		same(ea, eb)
		if !bytes.Equal(ga, gb) {
			fail("read [%d,+%d): %d bytes (iomap), %d (classic), equal for %d", off, n, len(ga), len(gb), commonPrefix(ga, gb))
		}
	default:
		kind = "direct read"
		off := r.rng.Int64N(size+bs) / bs * bs
		n := int(max(bs, r.length()/bs*bs))
		ga, ea := k.DirectRead(a, off, n)
		gb, eb := c.Read(b, off, n)
		same(ea, eb)
		if !bytes.Equal(ga, gb) {
			fail("direct read [%d,+%d): %d bytes (iomap), %d (classic), equal for %d", off, n, len(ga), len(gb), commonPrefix(ga, gb))
		}
	}
	if len(k.Rejected) > 0 {
		fail("the harness rejected replies: %v", k.Rejected)
	}
	// Sizes: in-core, the iomap server's and the classic server's.
	sa, _ := k.Size(a)
	sb, err := c.Size(b)
	if err != nil {
		fail("classic GETATTR: %v", err)
	}
	ss, err := (&iomaptest.Classic{S: r.a.sess}).Size(a)
	if err != nil {
		fail("iomap GETATTR: %v", err)
	}
	if sa != sb || ss != sa {
		fail("size: in-core %d, iomap server %d, classic %d", sa, ss, sb)
	}
	r.checkMappings(i, kind)
	return strings.Fields(kind)[0]
}

// sameErr compares outcomes by errno.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	ea, oka := errors.AsType[syscall.Errno](a)
	eb, okb := errors.AsType[syscall.Errno](b)
	return oka && okb && ea == eb
}

// checkMappings requires every mapping used since the last call to lie in
// its file's current extents (as REPORT sees them).
func (r *diffRun) checkMappings(i int, kind string) {
	recs := r.recs
	r.recs = nil
	if strings.HasPrefix(kind, "truncate") || strings.HasPrefix(kind, "fallocate") {
		return // their zeroing mappings may be freed by the request that follows
	}
	for _, rec := range recs {
		size, _ := r.a.k.Size(rec.node)
		if rec.m.Offset >= size {
			continue // post-EOF blocks (the harness's REPORT sees up to EOF)
		}
		end := min(rec.m.End(), (size+r.bs-1)/r.bs*r.bs)
		ext, err := r.a.k.Fiemap(rec.node, rec.m.Offset, end-rec.m.Offset)
		if err != nil {
			r.t.Fatalf("op %d: fiemap: %v", i, err)
		}
		for pos := rec.m.Offset; pos < end; pos += r.bs {
			want := rec.m.Addr + uint64(pos-rec.m.Offset)
			found := false
			for _, e := range ext {
				if uint64(pos) >= e.Logical && uint64(pos) < e.Logical+e.Length {
					found = e.Physical+uint64(pos)-e.Logical == want
					break
				}
			}
			if !found {
				r.t.Fatalf("op %d (%s): %v mapping of node %d at %d (addr %#x) is not the file's block: extents %v",
					i, kind, rec.m.Type, rec.node, pos, want, ext)
			}
		}
	}
	r.recs = nil
}

// checkpoint requires the files' extents to be disjoint and allocated.
func (r *diffRun) checkpoint(i int) {
	t := r.t
	type span struct {
		start, end uint64 // blocks
		name       string
	}
	var spans []span
	for _, name := range r.names {
		a, ok := r.nodeA[name]
		if !ok {
			continue
		}
		ext, err := r.a.k.Fiemap(a, 0, 1<<62)
		if err != nil {
			t.Fatalf("checkpoint %d: fiemap %s: %v", i, name, err)
		}
		for _, e := range ext {
			s := e.Physical / uint64(r.bs)
			spans = append(spans, span{s, s + e.Length/uint64(r.bs), name})
		}
	}
	slices.SortFunc(spans, func(x, y span) int { return int(x.start) - int(y.start) })
	for j := 1; j < len(spans); j++ {
		if spans[j].start < spans[j-1].end {
			t.Fatalf("checkpoint %d: %s blocks [%d,%d) overlap %s blocks [%d,%d)", i,
				spans[j].name, spans[j].start, spans[j].end, spans[j-1].name, spans[j-1].start, spans[j-1].end)
		}
	}
	if len(spans) == 0 {
		return
	}
	var cmds strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&cmds, "testb %d %d\n", s.start, s.end-s.start)
	}
	cmdFile := filepath.Join(t.TempDir(), "testb")
	if err := os.WriteFile(cmdFile, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	outb, err := exec.Command("debugfs", "-f", cmdFile, r.a.img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -f: %v: %s", err, outb)
	}
	out := string(outb)
	if strings.Contains(out, "not in use") {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "not in use") {
				t.Fatalf("checkpoint %d: a mapped block is free in the bitmap: %s", i, line)
			}
		}
	}
	if n := strings.Count(out, "marked in use"); n == 0 {
		t.Fatalf("checkpoint %d: debugfs testb said nothing: %s", i, out)
	}
}

// finish compares the files after writeback, on both servers and through
// the kernel's ext4, and requires both images clean.
func (r *diffRun) finish() {
	t := r.t
	k, c := r.a.k, &r.b.c
	if err := k.Sync(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	ca := iomaptest.Classic{S: r.a.sess}
	for _, name := range r.names {
		a, ok := r.nodeA[name]
		if !ok {
			continue
		}
		b := r.nodeB[name]
		k.Forget(a)
		size, _ := k.Size(a)
		ga, err := k.Read(a, 0, int(size)+1)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := c.Read(b, 0, int(size)+1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ga, gb) {
			t.Fatalf("%s: %d bytes (iomap), %d (classic), equal for %d", name, len(ga), len(gb), commonPrefix(ga, gb))
		}
		want[name] = gb
		// With no page cache, iomap's SEEK_DATA/SEEK_HOLE agrees with the
		// classic LSEEK on the same image. (The two images' layouts may
		// differ: a short iomap write leaves unwritten, or on block-mapped
		// files zeroed, blocks inside the file where the classic write
		// allocated nothing.)
		k.Forget(a)
		for range 8 {
			off := r.rng.Int64N(size + 1)
			for _, whence := range []uint32{3, 4} {
				var gk int64
				var ek error
				if whence == 3 {
					gk, ek = k.SeekData(a, off)
				} else {
					gk, ek = k.SeekHole(a, off)
				}
				gc, ec := ca.Seek(a, off, whence)
				if !sameErr(ek, ec) || gk != gc {
					t.Errorf("%s: lseek(%d, %d): iomap %d %v, classic %d %v", name, off, whence, gk, ek, gc, ec)
				}
			}
		}
	}
	r.checkpoint(-1)
	r.a.close()
	r.b.close(t)
	testutil.E2fsckClean(t, r.a.img)
	testutil.E2fsckClean(t, r.b.img)
	mnt := t.TempDir()
	testutil.LoopMount(t, r.a.img, mnt, true)
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("kernel reads %s: %d bytes, want %d, equal for %d", name, len(got), len(w), commonPrefix(got, w))
		}
	}
	testutil.Unmount(t, mnt)
}
