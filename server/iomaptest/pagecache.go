package iomaptest

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

// file is the kernel's in-core inode of a regular file.
type file struct {
	nodeid, ino uint64
	size        int64            // in-core i_size
	pages       map[int64][]byte // uptodate blocks by block index
	dirty       map[int64]bool
}

func (k *Kernel) bs() int64 { return k.BlockSize }

// Attach makes the kernel know nodeid (a regular file) with its current
// attributes, as after a LOOKUP.
func (k *Kernel) Attach(nodeid uint64) error {
	payload, err := k.do(fuseproto.OpGetattr, nodeid, fusetest.Bytes(&fuseproto.GetattrIn{}))
	if err != nil {
		return err
	}
	out := fusetest.Decode[fuseproto.AttrOut](payload)
	k.attach(nodeid, &out.Attr)
	return nil
}

func (k *Kernel) attach(nodeid uint64, a *fuseproto.Attr) *file {
	f := &file{nodeid: nodeid, ino: a.Ino, size: int64(a.Size), pages: map[int64][]byte{}, dirty: map[int64]bool{}}
	k.files[nodeid] = f
	return f
}

// Create creates and opens a regular file name in directory parent and
// returns its nodeid.
func (k *Kernel) Create(parent uint64, name string, mode uint32) (uint64, error) {
	in := fuseproto.CreateIn{Flags: uint32(syscall.O_RDWR), Mode: mode}
	payload, err := k.do(fuseproto.OpCreate, parent, fusetest.Bytes(&in), fusetest.Name(name))
	if err != nil {
		return 0, err
	}
	out := fusetest.Decode[fuseproto.CreateOut](payload)
	k.attach(out.Entry.NodeID, &out.Entry.Attr)
	return out.Entry.NodeID, nil
}

func (k *Kernel) file(nodeid uint64) (*file, error) {
	if f, ok := k.files[nodeid]; ok {
		return f, nil
	}
	if err := k.Attach(nodeid); err != nil {
		return nil, err
	}
	return k.files[nodeid], nil
}

// Size is the in-core i_size of nodeid.
func (k *Kernel) Size(nodeid uint64) (int64, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return 0, err
	}
	return f.size, nil
}

// srcOf is iomap_iter_srcmap: the mapping data is read from.
func srcOf(iomap, srcmap *Mapping) *Mapping {
	if srcmap.Type != fuseproto.IomapTypeHole {
		return srcmap
	}
	return iomap
}

// fill reads block b into a new page from mapping src, as
// __iomap_write_begin and the read path do: blocks at or past i_size,
// and anything but MAPPED without NEW, are zeros.
func (k *Kernel) fill(f *file, b int64, src *Mapping) ([]byte, error) {
	page := make([]byte, k.bs())
	bpos := b * k.bs()
	if bpos >= f.size || src.Type != fuseproto.IomapTypeMapped || src.Flags&fuseproto.IomapFNew != 0 {
		return page, nil
	}
	if err := pread(src, page, bpos); err != nil {
		return nil, err
	}
	return page, nil
}

// pread and pwrite do the kernel's bios: at addr + (pos - offset) on the
// mapping's device.
func pread(m *Mapping, p []byte, pos int64) error {
	if m.Addr == fuseproto.IomapNullAddr || pos < m.Offset || pos+int64(len(p)) > m.End() {
		return fmt.Errorf("iomaptest: read of [%d,+%d) outside %v mapping [%d,+%d) addr %#x: %w",
			pos, len(p), m.Type, m.Offset, m.Length, m.Addr, syscall.EIO)
	}
	n, err := syscall.Pread(m.fd, p, int64(m.Addr)+pos-m.Offset)
	if err == nil && n < len(p) {
		clear(p[n:]) // past the end of an image file: a sparse tail
	}
	return err
}

func pwrite(m *Mapping, p []byte, pos int64) error {
	if m.Addr == fuseproto.IomapNullAddr || pos < m.Offset || pos+int64(len(p)) > m.End() {
		return fmt.Errorf("iomaptest: write of [%d,+%d) outside %v mapping [%d,+%d) addr %#x: %w",
			pos, len(p), m.Type, m.Offset, m.Length, m.Addr, syscall.EIO)
	}
	n, err := syscall.Pwrite(m.fd, p, int64(m.Addr)+pos-m.Offset)
	if err == nil && n < len(p) {
		err = syscall.EIO
	}
	return err
}

// Write is a buffered write(2) (iomap_file_buffered_write): zero the gap
// past EOF, then per mapping of BEGIN(WRITE) copy into the page cache,
// growing i_size, and END when the size changed or the copy was short.
func (k *Kernel) Write(nodeid uint64, off int64, data []byte) (int, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return 0, err
	}
	if off > f.size {
		if err := k.zeroRange(f, f.size, off-f.size); err != nil {
			return 0, err
		}
	}
	budget := int64(len(data))
	if k.ShortCopy != nil {
		if n := k.ShortCopy(off, len(data)); n >= 0 && n < len(data) {
			budget = int64(n)
		}
	}
	done := int64(0)
	for done < int64(len(data)) {
		pos := off + done
		count := int64(len(data)) - done
		m, src, err := k.begin(f, fuseproto.IomapOpWrite, pos, count)
		if err != nil {
			return k.partial(done, err)
		}
		n := min(count, m.End()-pos)
		copied, err := k.copyIn(f, &m, srcOf(&m, &src), pos, data[done:done+n], budget-done)
		if err != nil {
			return k.partial(done, err)
		}
		grew := pos+copied > f.size
		if grew {
			f.size = pos + copied
		}
		if err := k.end(f, fuseproto.IomapOpWrite, pos, n, copied, &m, grew); err != nil {
			return k.partial(done+copied, err)
		}
		done += copied
		if copied < n {
			break
		}
	}
	if done == 0 && len(data) > 0 {
		return 0, syscall.EFAULT
	}
	return int(done), nil
}

// partial is a write's result after an error: the bytes done, or the
// error if none.
func (k *Kernel) partial(done int64, err error) (int, error) {
	if done > 0 {
		return int(done), nil
	}
	return 0, err
}

// copyIn copies p (file offset pos, inside mapping m) into the page
// cache, at most budget bytes (a fault ends the copy). A block that was
// not uptodate and is copied only in part is dropped, as
// __iomap_write_end refuses it. It returns the bytes copied.
func (k *Kernel) copyIn(f *file, m, src *Mapping, pos int64, p []byte, budget int64) (int64, error) {
	bs := k.bs()
	done := int64(0)
	for done < int64(len(p)) {
		cur := pos + done
		b := cur / bs
		bpos := b * bs
		n := min(int64(len(p))-done, bpos+bs-cur)
		page, cached := f.pages[b]
		readIn := false
		if !cached {
			if cur > bpos || cur+n < bpos+bs {
				var err error
				if page, err = k.fill(f, b, src); err != nil {
					return done, err
				}
				readIn = true
			} else {
				page = make([]byte, bs)
			}
		}
		c := max(0, min(n, budget-done))
		if c < n && !cached && !readIn {
			c = 0
		}
		if c == 0 {
			break
		}
		copy(page[cur-bpos:], p[done:done+c])
		f.pages[b] = page
		f.dirty[b] = true
		done += c
		if c < n {
			break
		}
	}
	return done, nil
}

// zeroRange is iomap_zero_range: HOLE and UNWRITTEN ranges are skipped
// unless dirty pages cover them (then they are written back and mapped
// again), MAPPED ones are zeroed through the page cache. It returns
// whether anything was zeroed.
func (k *Kernel) zeroRange(f *file, pos, length int64) error {
	_, err := k.zeroRangeDid(f, pos, length)
	return err
}

func (k *Kernel) zeroRangeDid(f *file, pos, length int64) (bool, error) {
	end := pos + length
	flushed, did := false, false
	for pos < end {
		m, src, err := k.begin(f, fuseproto.IomapOpZero, pos, end-pos)
		if err != nil {
			return did, err
		}
		n := min(end, m.End()) - pos
		s := srcOf(&m, &src)
		switch s.Type {
		case fuseproto.IomapTypeHole, fuseproto.IomapTypeUnwritten:
			if !flushed && k.anyDirty(f, pos, end) {
				flushed = true
				if err := k.writeback(f, pos, end); err != nil {
					return did, err
				}
				continue // the mapping is stale: ask again
			}
		case fuseproto.IomapTypeMapped:
			if err := k.zeroPages(f, s, pos, n); err != nil {
				return did, err
			}
			did = true
		default:
			return did, fmt.Errorf("iomaptest: zeroing over a %v mapping: %w", s.Type, syscall.EIO)
		}
		if err := k.end(f, fuseproto.IomapOpZero, pos, n, n, &m, false); err != nil {
			return did, err
		}
		pos += n
	}
	return did, nil
}

// zeroPages zeroes [pos, pos+n) in the page cache, reading blocks in.
func (k *Kernel) zeroPages(f *file, src *Mapping, pos, n int64) error {
	bs := k.bs()
	for cur := pos; cur < pos+n; {
		b := cur / bs
		e := min(pos+n, (b+1)*bs)
		page, ok := f.pages[b]
		if !ok {
			var err error
			if page, err = k.fill(f, b, src); err != nil {
				return err
			}
		}
		clear(page[cur-b*bs : e-b*bs])
		f.pages[b] = page
		f.dirty[b] = true
		cur = e
	}
	return nil
}

func (k *Kernel) anyDirty(f *file, pos, end int64) bool {
	for b := range f.dirty {
		if b*k.bs() < end && (b+1)*k.bs() > pos {
			return true
		}
	}
	return false
}

// Read is a buffered read(2): blocks not in the page cache are read with
// BEGIN(0) mappings (zeros for all but MAPPED, and at or past i_size).
func (k *Kernel) Read(nodeid uint64, off int64, n int) ([]byte, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return nil, err
	}
	if off >= f.size {
		return nil, nil
	}
	end := min(off+int64(n), f.size)
	if err := k.readIn(f, off, end); err != nil {
		return nil, err
	}
	out := make([]byte, 0, end-off)
	bs := k.bs()
	for cur := off; cur < end; {
		b := cur / bs
		e := min(end, (b+1)*bs)
		out = append(out, f.pages[b][cur-b*bs:e-b*bs]...)
		cur = e
	}
	return out, nil
}

// readIn brings the blocks of [off, end) into the page cache.
func (k *Kernel) readIn(f *file, off, end int64) error {
	bs := k.bs()
	for b := off / bs; b*bs < end; {
		if _, ok := f.pages[b]; ok {
			b++
			continue
		}
		last := b + 1 // a readahead window: the uncached run
		for last*bs < end {
			if _, ok := f.pages[last]; ok {
				break
			}
			last++
		}
		pos := b * bs
		m, _, err := k.begin(f, 0, pos, last*bs-pos)
		if err != nil {
			return err
		}
		if m.Type == fuseproto.IomapTypeDelalloc || m.Type == fuseproto.IomapTypeInline {
			return fmt.Errorf("iomaptest: read over a %v mapping: %w", m.Type, syscall.EIO)
		}
		stop := last
		if m.End() < last*bs {
			stop = (m.End() + bs - 1) / bs
		}
		if stop <= b {
			return fmt.Errorf("iomaptest: read mapping [%d,+%d) ends before %d: %w", m.Offset, m.Length, pos, syscall.EIO)
		}
		for ; b < stop; b++ {
			page, err := k.fill(f, b, &m)
			if err != nil {
				return err
			}
			f.pages[b] = page
		}
		if err := k.end(f, 0, pos, stop*bs-pos, stop*bs-pos, &m, false); err != nil {
			return err
		}
	}
	return nil
}

// ioendAcc is one ioend being built by writeback.
type ioendAcc struct {
	pos, size int64
	addr      uint64
	flags     fuseproto.IomapIoendFlags
}

// Sync writes back every dirty page of every file (syncfs).
func (k *Kernel) Sync() error {
	nodes := make([]uint64, 0, len(k.files))
	for n := range k.files {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		if err := k.Fsync(n); err != nil {
			return err
		}
	}
	return nil
}

// Fsync writes back nodeid's dirty pages.
func (k *Kernel) Fsync(nodeid uint64) error {
	f, err := k.file(nodeid)
	if err != nil {
		return err
	}
	return k.writeback(f, 0, 1<<63-1)
}

// Forget drops nodeid's clean pages (as memory pressure would), so the
// next reads come from the disk.
func (k *Kernel) Forget(nodeid uint64) {
	if f, ok := k.files[nodeid]; ok {
		for b := range f.pages {
			if !f.dirty[b] {
				delete(f.pages, b)
			}
		}
	}
}

// writeback writes the dirty blocks of [pos, end) like iomap_writepages:
// BEGIN(WRITE|DIRECT) mappings are cached and reused while they cover the
// block (the wpc, never revalidated), the post-EOF part of the EOF block
// is zeroed, blocks past EOF are dropped, and completed bios are merged
// into ioends (contiguous in file and disk, same flags), clamped to EOF,
// each completed with IOEND.
func (k *Kernel) writeback(f *file, pos, end int64) error {
	bs := k.bs()
	var blocks []int64
	for b := range f.dirty {
		if b*bs < end && (b+1)*bs > pos {
			blocks = append(blocks, b)
		}
	}
	slices.Sort(blocks)
	var wpc *Mapping
	var ioends []ioendAcc
	const op = fuseproto.IomapOpWrite | fuseproto.IomapOpDirect
	for i, b := range blocks {
		bpos := b * bs
		if bpos >= f.size {
			delete(f.dirty, b)
			delete(f.pages, b)
			continue
		}
		if wpc == nil || bpos < wpc.Offset || bpos >= wpc.End() {
			run := int64(1)
			for i+int(run) < len(blocks) && blocks[i+int(run)] == b+run {
				run++
			}
			m, _, err := k.begin(f, op, bpos, run*bs)
			if err != nil {
				return err
			}
			wpc = &m
		}
		switch wpc.Type {
		case fuseproto.IomapTypeHole:
			delete(f.dirty, b) // "skip writing"
			continue
		case fuseproto.IomapTypeMapped, fuseproto.IomapTypeUnwritten:
		default:
			return fmt.Errorf("iomaptest: writeback onto a %v mapping: %w", wpc.Type, syscall.EIO)
		}
		page := f.pages[b]
		if eof := f.size - bpos; eof < bs {
			clear(page[eof:]) // iomap_writepage_handle_eof
		}
		if err := pwrite(wpc, page, bpos); err != nil {
			return err
		}
		delete(f.dirty, b)
		var flags fuseproto.IomapIoendFlags
		if wpc.Type == fuseproto.IomapTypeUnwritten {
			flags |= fuseproto.IomapIoendUnwritten
		}
		if wpc.Flags&fuseproto.IomapFShared != 0 {
			flags |= fuseproto.IomapIoendShared
		}
		addr := wpc.Addr + uint64(bpos-wpc.Offset)
		if n := len(ioends); n > 0 {
			last := &ioends[n-1]
			if last.flags == flags && last.pos+last.size == bpos && last.addr+uint64(last.size) == addr {
				last.size += bs
				continue
			}
		}
		ioends = append(ioends, ioendAcc{pos: bpos, size: bs, addr: addr, flags: flags})
	}
	for _, io := range ioends {
		size := min(io.size, f.size-io.pos) // byte-accurate at EOF
		if err := k.ioend(f, io.flags, io.pos, size, 0); err != nil {
			return fmt.Errorf("iomaptest: writeback ioend [%d,+%d): %w", io.pos, size, err)
		}
	}
	return nil
}

// Truncate is ftruncate(2) in pagecache mode (§4.4): zero [old, new) on
// growth or the tail of the new EOF block on shrink, set the in-core
// size, drop the pages past it, write everything back, then
// FUSE_SETATTR(size).
func (k *Kernel) Truncate(nodeid uint64, size int64) error {
	f, err := k.file(nodeid)
	if err != nil {
		return err
	}
	bs := k.bs()
	old := f.size
	zeroed := false
	switch {
	case size > old:
		if zeroed, err = k.zeroRangeDid(f, old, size-old); err != nil {
			return err
		}
	case size < old && size%bs != 0:
		if zeroed, err = k.zeroRangeDid(f, size, bs-size%bs); err != nil {
			return err
		}
	}
	k.setSize(f, size)
	if zeroed || size > 0 {
		if err := k.writeback(f, 0, 1<<63-1); err != nil {
			return err
		}
	}
	in := fuseproto.SetattrIn{Valid: fuseproto.FattrSize, Size: uint64(size)}
	_, err = k.do(fuseproto.OpSetattr, nodeid, fusetest.Bytes(&in))
	return err
}

// setSize is truncate_setsize: the page cache past the new size goes,
// and the EOF page is zeroed past it.
func (k *Kernel) setSize(f *file, size int64) {
	bs := k.bs()
	f.size = size
	for b := range f.pages {
		if b*bs >= size {
			delete(f.pages, b)
			delete(f.dirty, b)
		}
	}
	if page, ok := f.pages[size/bs]; ok && size%bs != 0 {
		clear(page[size%bs:])
	}
}

// fallocate(2) modes.
const (
	FallocKeepSize  = 0x01
	FallocPunchHole = 0x02
	FallocZeroRange = 0x10
)

// Fallocate is fallocate(2): for PUNCH_HOLE and ZERO_RANGE the range's
// pages are written back and dropped first; FUSE_FALLOCATE goes to the
// server; then the partial blocks at the edges inside i_size are zeroed
// through the page cache, and an extending mode runs the setsize logic.
func (k *Kernel) Fallocate(nodeid uint64, mode uint32, off, length int64) error {
	f, err := k.file(nodeid)
	if err != nil {
		return err
	}
	bs := k.bs()
	end := off + length
	edges := mode&(FallocPunchHole|FallocZeroRange) != 0
	if edges {
		if err := k.writeback(f, off, end); err != nil {
			return err
		}
		for b := off / bs; b*bs < end; b++ {
			delete(f.pages, b)
		}
	}
	in := fuseproto.FallocateIn{Offset: uint64(off), Length: uint64(length), Mode: mode}
	if _, err := k.do(fuseproto.OpFallocate, nodeid, fusetest.Bytes(&in)); err != nil {
		return err
	}
	if edges {
		head := off % bs
		if head != 0 && off < f.size {
			if err := k.zeroRange(f, off, min(bs-head, length, f.size-off)); err != nil {
				return err
			}
		}
		if tail := end % bs; tail != 0 && end-tail > off && end-tail < f.size {
			if err := k.zeroRange(f, end-tail, min(tail, f.size-(end-tail))); err != nil {
				return err
			}
		}
	}
	if mode&FallocKeepSize == 0 && end > f.size {
		if err := k.zeroRange(f, f.size, end-f.size); err != nil {
			return err
		}
		k.setSize(f, end)
	}
	return nil
}
