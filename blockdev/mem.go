package blockdev

import (
	"io"
	"sync"
)

// Mem is an in-memory Device, used by tests.
type Mem struct {
	mu     sync.RWMutex // protects data and closed
	data   []byte
	closed bool
	ro     bool // immutable
}

// NewMem returns a writable in-memory device of size bytes, zero-filled.
func NewMem(size int) *Mem { return &Mem{data: make([]byte, size)} }

// NewMemFrom returns an in-memory device holding a copy of b.
func NewMemFrom(b []byte, readOnly bool) *Mem {
	return &Mem{data: append([]byte(nil), b...), ro: readOnly}
}

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, errNegativeOffset
	}
	if off >= int64(len(m.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if err := checkWrite(m.ro, int64(len(m.data)), off, len(p)); err != nil {
		return 0, err
	}
	return copy(m.data[off:], p), nil
}

// Bytes returns a copy of the device contents.
func (m *Mem) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]byte(nil), m.data...)
}

func (m *Mem) Size() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.data))
}

func (m *Mem) ReadOnly() bool { return m.ro }

func (m *Mem) Flush() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
