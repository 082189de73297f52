package blockdev

import (
	"errors"
	"sync"
)

// ErrInjected is the default error returned by a Fault device.
var ErrInjected = errors.New("blockdev: injected fault")

// Op selects which operations a fault applies to.
type Op uint8

const (
	OpRead Op = 1 << iota
	OpWrite
	OpFlush
)

// Rule fails operations overlapping [Off, Off+Len). Len 0 means the rule
// matches every offset (useful for OpFlush). Count is how many times the rule
// fires before it is exhausted; 0 means forever.
type Rule struct {
	Op    Op
	Off   int64
	Len   int64
	Count int
	Err   error // nil means ErrInjected
}

// Fault wraps a Device and fails chosen operations, for tests.
type Fault struct {
	Device
	mu    sync.Mutex // protects rules and hits
	rules []Rule
	hits  []int // hits[i] counts the times rules[i] fired
}

// NewFault wraps dev with no rules.
func NewFault(dev Device) *Fault { return &Fault{Device: dev} }

// Add installs a rule.
func (f *Fault) Add(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	f.hits = append(f.hits, 0)
}

// Clear removes all rules.
func (f *Fault) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules, f.hits = nil, nil
}

// Hits reports how many faults have been injected in total.
func (f *Fault) Hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.hits {
		n += h
	}
	return n
}

func (f *Fault) match(op Op, off int64, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.Op&op == 0 || (r.Count > 0 && f.hits[i] >= r.Count) {
			continue
		}
		if r.Len != 0 && (off >= r.Off+r.Len || off+int64(n) <= r.Off) {
			continue
		}
		f.hits[i]++
		if r.Err != nil {
			return r.Err
		}
		return ErrInjected
	}
	return nil
}

func (f *Fault) ReadAt(p []byte, off int64) (int, error) {
	if err := f.match(OpRead, off, len(p)); err != nil {
		return 0, err
	}
	return f.Device.ReadAt(p, off)
}

func (f *Fault) WriteAt(p []byte, off int64) (int, error) {
	if err := f.match(OpWrite, off, len(p)); err != nil {
		return 0, err
	}
	return f.Device.WriteAt(p, off)
}

func (f *Fault) Flush() error {
	if err := f.match(OpFlush, 0, 0); err != nil {
		return err
	}
	return f.Device.Flush()
}
