package server

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/internal/testutil"
	"github.com/e4box/e4box/server/iomaptest"
)

// Reply validation: no request makes the engine produce a reply the
// kernel would reject, and the harness rejects every kind of malformed
// reply the kernel rejects.

// iomapShapes creates files of every mapping shape through the classic
// opcodes of f's session and returns their nodeids by name.
func iomapShapes(t *testing.T, f *iomapFixture, prealloc bool) map[string]uint64 {
	t.Helper()
	c := iomaptest.Classic{S: f.sess}
	nodes := map[string]uint64{}
	mk := func(name string) uint64 {
		n, err := c.Create(rootNodeID, name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		nodes[name] = n
		return n
	}
	write := func(n uint64, off int64, size int) {
		if _, err := c.Write(n, off, bytes.Repeat([]byte{0xa5}, size)); err != nil {
			t.Fatal(err)
		}
	}
	mk("empty")
	write(mk("dense"), 0, 300<<10)
	s := mk("sparse")
	write(s, 0, 8<<10)
	write(s, 1<<20, 100<<10)
	write(s, 5<<20+123, 1000)
	write(mk("tiny"), 0, 100) // inline on inline_data filesystems
	if prealloc {
		p := mk("prealloc")
		write(p, 0, 4096)
		if err := c.Fallocate(p, 0, 64<<10, 512<<10); err != nil {
			t.Fatal(err)
		}
		write(p, 128<<10, 5000)
		if err := c.Fallocate(p, iomaptest.FallocKeepSize, 2<<20, 256<<10); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// opflags the kernel sends (spec §2.1), with and without NOWAIT.
var kernelOpflags = []fuseproto.IomapOpFlags{
	0, fuseproto.IomapOpDirect, fuseproto.IomapOpDirect | fuseproto.IomapOpNowait,
	fuseproto.IomapOpWrite, fuseproto.IomapOpWrite | fuseproto.IomapOpNowait,
	fuseproto.IomapOpWrite | fuseproto.IomapOpFault,
	fuseproto.IomapOpWrite | fuseproto.IomapOpDirect, fuseproto.IomapOpWrite | fuseproto.IomapOpDirect | fuseproto.IomapOpNowait,
	fuseproto.IomapOpWrite | fuseproto.IomapOpDontcache,
	fuseproto.IomapOpZero, fuseproto.IomapOpReport,
}

func TestIomapBeginRepliesAlwaysValid(t *testing.T) {
	for _, v := range []testutil.Variant{testutil.Ext4, testutil.Ext2, testutil.Ext4Inline, testutil.Ext4Block1K} {
		t.Run(v.Name, func(t *testing.T) {
			f := openIomap(t, newIomapImage(t, v, 64))
			extents := v.Name != "ext2"
			nodes := iomapShapes(t, f, extents)
			names := make([]string, 0, len(nodes))
			for _, n := range []string{"empty", "dense", "sparse", "tiny", "prealloc"} {
				if _, ok := nodes[n]; ok {
					names = append(names, n)
				}
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(v.Name))))
			bs := int64(f.fs.BlockSize())
			answers := map[string]int{}
			for i := range 3000 {
				name := names[rng.IntN(len(names))]
				node := nodes[name]
				op := kernelOpflags[rng.IntN(len(kernelOpflags))]
				pos := randPos(rng)
				count := randCount(rng)
				in := fuseproto.IomapBeginIn{Opflags: op, AttrIno: node, Pos: pos, Count: count}
				free := f.fs.Statfs().Bfree
				msg := f.sess.Roundtrip(fusetest.Request(fuseproto.OpIomapBegin, uint64(1<<41+2*i+1), node, fusetest.Bytes(&in)))
				h, _ := fusetest.Reply(msg)
				desc := fmt.Sprintf("request %d: %s %v pos %d count %d", i, name, op, pos, count)
				if h.Error != 0 {
					errno := syscall.Errno(-h.Error)
					answers[errno.Error()]++
					switch errno {
					case syscall.EFBIG, syscall.ENOSPC, syscall.EAGAIN:
					case syscall.EINVAL: // only for offsets no kernel sends
						if pos <= math.MaxInt64 || op&fuseproto.IomapOpWrite != 0 {
							t.Fatalf("%s: EINVAL", desc)
						}
					case syscall.ENOSYS: // inline data outside REPORT
						if name != "tiny" || v.Name != "ext4-inline" || op&fuseproto.IomapOpWrite != 0 {
							t.Fatalf("%s: ENOSYS", desc)
						}
					default:
						t.Fatalf("%s: errno %v", desc, errno)
					}
				} else {
					out, err := iomaptest.CheckBeginReply(&in, msg, f.k.Registered)
					if err != nil {
						t.Fatalf("%s: %v", desc, err)
					}
					answers[out.ReadType.String()]++
					checkStrict(t, desc, &in, out, bs, name == "tiny" && v.Name == "ext4-inline")
				}
				if op&fuseproto.IomapOpWrite == 0 && f.fs.Statfs().Bfree != free {
					t.Fatalf("%s allocated blocks", desc)
				}
				if op&fuseproto.IomapOpWrite != 0 {
					// The write fails before copying anything: END
					// releases what BEGIN reserved past the end of file.
					end := fuseproto.IomapEndIn{Opflags: op, AttrIno: node, Pos: pos, Count: count}
					h, _ := f.sess.Do(fuseproto.OpIomapEnd, node, fusetest.Bytes(&end))
					if h.Error != 0 && h.Error != -int32(syscall.EFBIG) && h.Error != -int32(syscall.EINVAL) {
						t.Fatalf("%s: END: errno %d", desc, -h.Error)
					}
				}
			}
			t.Logf("answers: %v", answers)
			if answers["MAPPED"] == 0 || answers["HOLE"] == 0 || (extents && answers["UNWRITTEN"] == 0) {
				t.Errorf("answers %v lack a mapping type", answers)
			}
			f.close()
			if extents {
				testutil.E2fsckClean(t, f.img)
			}
		})
	}
}

func randPos(rng *rand.Rand) uint64 {
	switch rng.IntN(12) {
	case 0:
		return math.MaxInt64 - uint64(rng.IntN(5000))
	case 1:
		return 1<<44 - uint64(rng.IntN(3))*4096 // around the extent limit (2^32 blocks of 4 KiB)
	case 2:
		return uint64(rng.Int64N(1 << 40))
	case 3:
		return math.MaxUint64 - uint64(rng.IntN(3))
	}
	return uint64(rng.Int64N(6 << 20))
}

func randCount(rng *rand.Rand) uint64 {
	switch rng.IntN(10) {
	case 0:
		return math.MaxUint64 - uint64(rng.IntN(3))
	case 1:
		return 1
	}
	return 1 + uint64(rng.Int64N(4<<20))
}

// checkStrict holds a reply to more than the seed kernel checks: the
// mapping covers pos, is block-aligned (except an inline file's), carries
// an address exactly when it has blocks, and writes are never holes.
func checkStrict(t *testing.T, desc string, in *fuseproto.IomapBeginIn, out *fuseproto.IomapBeginOut, bs int64, inline bool) {
	t.Helper()
	if out.Offset > in.Pos || out.Offset+out.Length <= in.Pos || out.Offset+out.Length < out.Offset {
		t.Fatalf("%s: [%d,+%d) does not cover pos", desc, out.Offset, out.Length)
	}
	if !inline && (out.Offset%uint64(bs) != 0 || out.Length%uint64(bs) != 0) && out.Offset+out.Length != math.MaxInt64 {
		t.Fatalf("%s: [%d,+%d) is not block-aligned", desc, out.Offset, out.Length)
	}
	if out.WriteType != fuseproto.IomapTypePureOverwrite || out.WriteDev != out.ReadDev || out.WriteFlags != 0 {
		t.Fatalf("%s: write mapping %v dev %#x flags %v, want a pure overwrite on the read device", desc,
			out.WriteType, out.WriteDev, out.WriteFlags)
	}
	hasBlocks := out.ReadType == fuseproto.IomapTypeMapped || out.ReadType == fuseproto.IomapTypeUnwritten
	if hasBlocks != (out.ReadAddr != fuseproto.IomapNullAddr) || (hasBlocks && out.ReadAddr%uint64(bs) != 0) {
		t.Fatalf("%s: %v mapping with address %#x", desc, out.ReadType, out.ReadAddr)
	}
	if in.Opflags&fuseproto.IomapOpWrite != 0 && !hasBlocks {
		t.Fatalf("%s: write mapped to %v", desc, out.ReadType)
	}
	if in.Opflags&fuseproto.IomapOpWrite != 0 && out.Length > in.Count && out.Length-in.Count > uint64(2*bs) {
		t.Fatalf("%s: write mapping of %d bytes for %d asked", desc, out.Length, in.Count)
	}
	if out.ReadFlags&^(fuseproto.IomapFNew|fuseproto.IomapFDirty|fuseproto.IomapFMerged) != 0 {
		t.Fatalf("%s: flags %v", desc, out.ReadFlags)
	}
}

// The harness refuses each kind of reply the seed kernel refuses, with
// the kernel's errno, and does no I/O with it.
func TestIomapHarnessRejectsMalformedReplies(t *testing.T) {
	f := openIomap(t, newIomapImage(t, testutil.Ext4, 32))
	k := f.k
	node, err := k.Create(rootNodeID, "victim", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("victim data "), 1000)
	if _, err := k.Write(node, 0, data); err != nil {
		t.Fatal(err)
	}
	if err := k.Fsync(node); err != nil {
		t.Fatal(err)
	}
	type mutation struct {
		name  string
		check fuseproto.IomapCheck // 0: not a validate failure
		errno syscall.Errno
		mut   func(pos uint64, out *fuseproto.IomapBeginOut, body []byte) []byte
	}
	set := func(fn func(pos uint64, o *fuseproto.IomapBeginOut)) func(uint64, *fuseproto.IomapBeginOut, []byte) []byte {
		return func(pos uint64, o *fuseproto.IomapBeginOut, _ []byte) []byte { fn(pos, o); return fusetest.Bytes(o) }
	}
	muts := []mutation{
		{"read_dev null", fuseproto.IomapCheckReadDev, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.ReadDev = fuseproto.IomapDevNull })},
		{"write_dev null under pure overwrite", fuseproto.IomapCheckWriteDev, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.WriteDev = fuseproto.IomapDevNull })},
		{"offset past pos", fuseproto.IomapCheckOffset, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.Offset = pos + 4096 })},
		{"length 0", fuseproto.IomapCheckLength, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.Length = 0 })},
		{"ends at pos", fuseproto.IomapCheckEnd, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.Offset, o.Length = 0, pos })},
		{"end wraps", fuseproto.IomapCheckEnd, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.Offset, o.Length = pos, math.MaxUint64 })},
		{"unknown write type", fuseproto.IomapCheckWriteType, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.WriteType = 5 })},
		{"write flag 0x10", fuseproto.IomapCheckWriteFlags, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.WriteFlags = 0x10 })},
		{"unknown read type", fuseproto.IomapCheckReadType, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.ReadType = 9 })},
		{"read flag SIZE_CHANGED", fuseproto.IomapCheckReadFlags, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.ReadFlags |= fuseproto.IomapFSizeChanged })},
		{"inline outside report", fuseproto.IomapCheckInline, syscall.EIO, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.ReadType = fuseproto.IomapTypeInline })},
		{"unregistered device", 0, syscall.ENODEV, set(func(pos uint64, o *fuseproto.IomapBeginOut) { o.ReadDev, o.WriteDev = 7, 7 })},
		{"short payload", 0, syscall.EIO, func(_ uint64, _ *fuseproto.IomapBeginOut, b []byte) []byte { return b[:40] }},
		{"long payload", 0, syscall.EIO, func(_ uint64, _ *fuseproto.IomapBeginOut, b []byte) []byte { return append(b, 0, 0, 0, 0, 0, 0, 0, 0) }},
	}
	for _, m := range muts {
		t.Run(m.name, func(t *testing.T) {
			k.Rejected = nil
			k.Inject = func(in *fuseproto.IomapBeginIn, msg []byte) []byte {
				h, body := fusetest.Reply(msg)
				if h.Error != 0 {
					return msg
				}
				out := fusetest.Decode[fuseproto.IomapBeginOut](body)
				nb := m.mut(in.Pos, &out, append([]byte(nil), body...))
				h.Len = uint32(16 + len(nb))
				return append(fusetest.Bytes(&h), nb...)
			}
			k.Forget(node)
			_, rerr := k.Read(node, 4096, 100)
			_, werr := k.DirectWrite(node, 4096, make([]byte, 4096))
			k.Inject = nil
			for _, err := range []error{rerr, werr} {
				if !errors.Is(err, m.errno) {
					t.Errorf("got %v, want %v", err, m.errno)
				}
			}
			if len(k.Rejected) != 2 {
				t.Fatalf("rejected %d replies: %v", len(k.Rejected), k.Rejected)
			}
			for _, err := range k.Rejected {
				var re *fuseproto.IomapReplyError
				switch {
				case m.check != 0:
					if !errors.As(err, &re) || re.Check != m.check {
						t.Errorf("rejection %v, want check %v", err, m.check)
					}
				case m.errno == syscall.ENODEV:
					if !errors.As(err, new(*iomaptest.DeviceError)) {
						t.Errorf("rejection %v, want a device error", err)
					}
				default:
					if !errors.As(err, new(*iomaptest.LengthError)) {
						t.Errorf("rejection %v, want a length error", err)
					}
				}
			}
			// Nothing was written through the refused mappings.
			k.Forget(node)
			got, err := k.Read(node, 0, len(data))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("file changed: %v (equal for %d)", err, commonPrefix(got, data))
			}
		})
	}
	f.finish()
}
