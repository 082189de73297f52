package iomaptest

import (
	"syscall"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

// Classic drives a session through the classic FUSE data opcodes
// (FUSE_WRITE, FUSE_READ, FUSE_SETATTR, FUSE_FALLOCATE, FUSE_LSEEK), as a
// kernel without fuse-iomap does with direct_io-style requests: the
// reference side of differential tests.
type Classic struct {
	S *fusetest.Session
}

// Create creates and opens a regular file and returns its nodeid.
func (c *Classic) Create(parent uint64, name string, mode uint32) (uint64, error) {
	in := fuseproto.CreateIn{Flags: uint32(syscall.O_RDWR), Mode: mode}
	payload, err := doRequest(c.S, fuseproto.OpCreate, parent, fusetest.Bytes(&in), fusetest.Name(name))
	if err != nil {
		return 0, err
	}
	return fusetest.Decode[fuseproto.CreateOut](payload).Entry.NodeID, nil
}

// Write writes data at off with FUSE_WRITE requests of at most max bytes.
func (c *Classic) Write(nodeid uint64, off int64, data []byte) (int, error) {
	const max = 128 << 10
	done := 0
	for done < len(data) {
		n := min(len(data)-done, max)
		in := fuseproto.WriteIn{Offset: uint64(off) + uint64(done), Size: uint32(n)}
		payload, err := doRequest(c.S, fuseproto.OpWrite, nodeid, fusetest.Bytes(&in), data[done:done+n])
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		w := int(fusetest.Decode[fuseproto.WriteOut](payload).Size)
		done += w
		if w < n {
			break
		}
	}
	return done, nil
}

// Read reads up to n bytes at off.
func (c *Classic) Read(nodeid uint64, off int64, n int) ([]byte, error) {
	const max = 128 << 10
	var out []byte
	for len(out) < n {
		want := min(n-len(out), max)
		in := fuseproto.ReadIn{Offset: uint64(off) + uint64(len(out)), Size: uint32(want)}
		p, err := doRequest(c.S, fuseproto.OpRead, nodeid, fusetest.Bytes(&in))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
		if len(p) < want {
			break
		}
	}
	return out, nil
}

// Truncate sets the size with FUSE_SETATTR.
func (c *Classic) Truncate(nodeid uint64, size int64) error {
	in := fuseproto.SetattrIn{Valid: fuseproto.FattrSize, Size: uint64(size)}
	_, err := doRequest(c.S, fuseproto.OpSetattr, nodeid, fusetest.Bytes(&in))
	return err
}

// Fallocate sends FUSE_FALLOCATE.
func (c *Classic) Fallocate(nodeid uint64, mode uint32, off, length int64) error {
	in := fuseproto.FallocateIn{Offset: uint64(off), Length: uint64(length), Mode: mode}
	_, err := doRequest(c.S, fuseproto.OpFallocate, nodeid, fusetest.Bytes(&in))
	return err
}

// Size returns the size FUSE_GETATTR reports.
func (c *Classic) Size(nodeid uint64) (int64, error) {
	payload, err := doRequest(c.S, fuseproto.OpGetattr, nodeid, fusetest.Bytes(&fuseproto.GetattrIn{}))
	if err != nil {
		return 0, err
	}
	return int64(fusetest.Decode[fuseproto.AttrOut](payload).Attr.Size), nil
}

// Seek sends FUSE_LSEEK with whence SEEK_DATA (3) or SEEK_HOLE (4).
func (c *Classic) Seek(nodeid uint64, off int64, whence uint32) (int64, error) {
	in := fuseproto.LseekIn{Offset: uint64(off), Whence: whence}
	payload, err := doRequest(c.S, fuseproto.OpLseek, nodeid, fusetest.Bytes(&in))
	if err != nil {
		return 0, err
	}
	return int64(fusetest.Decode[fuseproto.LseekOut](payload).Offset), nil
}
