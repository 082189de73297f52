package iomaptest

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

// aligned reports whether an O_DIRECT range is i_blocksize aligned.
func (k *Kernel) aligned(off, n int64) bool {
	return off%k.bs() == 0 && n%k.bs() == 0
}

// DirectRead is an O_DIRECT read(2) (iomap_dio_rw): dirty pages of the
// range are written back, then BEGIN(DIRECT) mappings are read from the
// device (zeros for holes and unwritten extents), the result clipped to
// i_size. ENOSYS from the server falls back to FUSE_READ.
func (k *Kernel) DirectRead(nodeid uint64, off int64, n int) ([]byte, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return nil, err
	}
	if !k.aligned(off, int64(n)) {
		return nil, syscall.EINVAL
	}
	if off >= f.size || n == 0 {
		return nil, nil
	}
	end := off + int64(n)
	if err := k.writeback(f, off, end); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	for pos := off; pos < end && pos < f.size; {
		m, _, err := k.begin(f, fuseproto.IomapOpDirect, pos, end-pos)
		if err == syscall.ENOSYS && pos == off {
			k.Stats.Fallback++
			return k.classicRead(f, off, n)
		}
		if err != nil {
			return nil, err
		}
		seg := out[pos-off : min(end, m.End())-off]
		switch m.Type {
		case fuseproto.IomapTypeMapped:
			if err := pread(&m, seg, pos); err != nil {
				return nil, err
			}
		case fuseproto.IomapTypeHole, fuseproto.IomapTypeUnwritten:
			clear(seg)
		default:
			return nil, fmt.Errorf("iomaptest: direct read of a %v mapping: %w", m.Type, syscall.EIO)
		}
		if err := k.end(f, fuseproto.IomapOpDirect, pos, end-pos, int64(len(seg)), &m, false); err != nil {
			return nil, err
		}
		pos += int64(len(seg))
	}
	return out[:min(int64(n), f.size-off)], nil
}

// classicRead is the FUSE_READ fallback.
func (k *Kernel) classicRead(f *file, off int64, n int) ([]byte, error) {
	in := fuseproto.ReadIn{Offset: uint64(off), Size: uint32(n)}
	return k.do(fuseproto.OpRead, f.nodeid, fusetest.Bytes(&in))
}

// DirectWrite is an O_DIRECT write(2): an unaligned one is done as a
// synchronous buffered write (ENOTBLK in pagecache mode); otherwise the
// post-EOF gap is zeroed, the range's pages are written back and
// dropped, BEGIN(WRITE|DIRECT) mappings (which must be MAPPED or
// UNWRITTEN) are written on the device, and one IOEND(DIRECT, UNWRITTEN
// if any mapping was, APPEND past i_size) completes the write, after
// which i_size grows. ENOSYS falls back to FUSE_WRITE.
func (k *Kernel) DirectWrite(nodeid uint64, off int64, data []byte) (int, error) {
	f, err := k.file(nodeid)
	if err != nil {
		return 0, err
	}
	n := int64(len(data))
	if !k.aligned(off, n) {
		w, err := k.Write(nodeid, off, data)
		if err == nil {
			err = k.writeback(f, off, off+int64(w))
		}
		return w, err
	}
	if n == 0 {
		return 0, nil
	}
	if off > f.size {
		if err := k.zeroRange(f, f.size, off-f.size); err != nil {
			return 0, err
		}
	}
	end := off + n
	if err := k.writeback(f, off, end); err != nil {
		return 0, err
	}
	for b := off / k.bs(); b*k.bs() < end; b++ {
		delete(f.pages, b)
	}
	const op = fuseproto.IomapOpWrite | fuseproto.IomapOpDirect
	var flags fuseproto.IomapIoendFlags = fuseproto.IomapIoendDirect
	written := int64(0)
	var ioErr error
	for pos := off; pos < end; {
		m, _, err := k.begin(f, op, pos, end-pos)
		if err == syscall.ENOSYS && pos == off {
			k.Stats.Fallback++
			return k.classicWrite(f, off, data)
		}
		if err != nil {
			ioErr = err
			break
		}
		switch m.Type {
		case fuseproto.IomapTypeMapped:
		case fuseproto.IomapTypeUnwritten:
			flags |= fuseproto.IomapIoendUnwritten
		default: // iomap WARNs: a direct write needs real blocks
			ioErr = fmt.Errorf("iomaptest: direct write onto a %v mapping: %w", m.Type, syscall.EIO)
		}
		if ioErr != nil {
			break
		}
		if m.Flags&fuseproto.IomapFShared != 0 {
			flags |= fuseproto.IomapIoendShared
		}
		seg := min(end, m.End()) - pos
		if err := pwrite(&m, data[pos-off:pos-off+seg], pos); err != nil {
			ioErr = err
			break
		}
		if err := k.end(f, op, pos, end-pos, seg, &m, false); err != nil {
			ioErr = err
			break
		}
		written += seg
		pos += seg
	}
	if ioErr != nil {
		// The dio completes with the error: the server must change
		// nothing for the bytes that did reach the disk.
		if written > 0 {
			errno, ok := errors.AsType[syscall.Errno](ioErr)
			if !ok {
				errno = syscall.EIO
			}
			if err := k.ioend(f, flags, off, written, errno); err != nil && err != errno {
				return 0, fmt.Errorf("iomaptest: ioend of a failed direct write answered %w", err)
			}
		}
		return 0, ioErr
	}
	if err := k.ioend(f, flags, off, written, 0); err != nil {
		return 0, err // the server's verdict is the write's
	}
	if off+written > f.size {
		f.size = off + written
	}
	return int(written), nil
}

// classicWrite is the FUSE_WRITE fallback of a direct write.
func (k *Kernel) classicWrite(f *file, off int64, data []byte) (int, error) {
	in := fuseproto.WriteIn{Offset: uint64(off), Size: uint32(len(data))}
	payload, err := k.do(fuseproto.OpWrite, f.nodeid, fusetest.Bytes(&in), data)
	if err != nil {
		return 0, err
	}
	out := fusetest.Decode[fuseproto.WriteOut](payload)
	if end := off + int64(out.Size); end > f.size {
		f.size = end
	}
	return int(out.Size), nil
}
