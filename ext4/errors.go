package ext4

import (
	"errors"
	"fmt"
	"log/slog"
)

// ErrCorrupt is matched (errors.Is) by every error reporting malformed
// on-disk metadata, in particular by *CorruptError.
var ErrCorrupt = errors.New("ext4: filesystem metadata corrupted")

// ErrUnsupportedFeature is wrapped by Open's error for an incompat feature
// this library does not implement; the message names the features.
var ErrUnsupportedFeature = errors.New("ext4: unsupported filesystem features")

// ErrErrorState is wrapped by Open's error when the superblock records
// errors and Options.IgnoreErrorState is not set.
var ErrErrorState = errors.New("ext4: filesystem has errors recorded (run e2fsck)")

// ErrNeedsRecovery is wrapped by Open's error when the journal needs replay
// and Options.NoRecovery is not set.
var ErrNeedsRecovery = errors.New("journal needs recovery; replay not yet supported, mount with -o norecovery to proceed read-only")

// CorruptError reports malformed metadata: what kind of structure, the
// inode it belongs to (0 if none) and the block it was read from (0 if not
// block-based). Err is the underlying decoder error, if any.
type CorruptError struct {
	Kind  string
	Ino   Ino
	Block PBlk
	Err   error
}

func (e *CorruptError) Error() string {
	s := "ext4: corrupted " + e.Kind
	if e.Ino != 0 {
		s += fmt.Sprintf(" (inode %d", e.Ino)
		if e.Block != 0 {
			s += fmt.Sprintf(", block %d", e.Block)
		}
		s += ")"
	} else if e.Block != 0 {
		s += fmt.Sprintf(" (block %d)", e.Block)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap reports ErrCorrupt and the underlying error.
func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

// corrupt builds a CorruptError and logs it. Every corruption is logged
// where it is detected, so the log names the inode and block even when the
// caller only sees an errno.
func (fs *FS) corrupt(kind string, ino Ino, blk PBlk, err error) error {
	ce := &CorruptError{Kind: kind, Ino: ino, Block: blk, Err: err}
	fs.log.Warn("ext4 corruption", slog.String("kind", kind), slog.Uint64("ino", uint64(ino)),
		slog.Uint64("block", uint64(blk)), slog.Any("err", err))
	return ce
}

// corruptf is corrupt with a formatted message as the underlying error.
func (fs *FS) corruptf(kind string, ino Ino, blk PBlk, format string, args ...any) error {
	return fs.corrupt(kind, ino, blk, fmt.Errorf(format, args...))
}
