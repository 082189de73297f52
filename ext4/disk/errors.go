package disk

import (
	"errors"
	"fmt"
)

// ErrCorrupt is matched (errors.Is) by every error this package returns for
// bad on-disk data.
var ErrCorrupt = errors.New("corrupt ext4 metadata")

// ErrChecksum is matched, in addition to ErrCorrupt, by checksum mismatches,
// so callers can offer a "verify checksums" escape hatch like e2fsprogs.
var ErrChecksum = errors.New("checksum mismatch")

// FormatError describes malformed on-disk data: which structure, the byte
// offset of the offending field within the buffer handed to the decoder, and
// what was wrong with it.
type FormatError struct {
	Struct string // C struct name, e.g. "ext4_super_block"
	Off    int    // offset of the bad field within the decoded buffer
	Msg    string
	Err    error // optional extra sentinel (ErrChecksum); ErrCorrupt is implied
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at offset %#x: %s", e.Struct, e.Off, e.Msg)
}

// Unwrap reports ErrCorrupt and, if set, Err.
func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

func corrupt(st string, off int, format string, args ...any) error {
	return &FormatError{Struct: st, Off: off, Msg: fmt.Sprintf(format, args...)}
}

func badChecksum(st string, off int, stored, computed uint32) error {
	return &FormatError{Struct: st, Off: off, Err: ErrChecksum,
		Msg: fmt.Sprintf("checksum %#08x, computed %#08x", stored, computed)}
}
