package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/e4box/e4box/ext4"
)

func newTestReporter() (*errorReporter, *bytes.Buffer) {
	var buf bytes.Buffer
	return newErrorReporter(slog.New(slog.NewTextHandler(&buf, nil)), false), &buf
}

func TestToErrno(t *testing.T) {
	corrupt := &ext4.CorruptError{Kind: "extent header", Ino: 12, Block: 345, Err: errors.New("bad magic")}
	tests := []struct {
		name   string
		err    error
		want   syscall.Errno
		logged string // substring expected in the log, "" for no log
	}{
		{"nil", nil, 0, ""},
		{"errno", syscall.ENOENT, syscall.ENOENT, ""},
		{"wrapped errno", fmt.Errorf("lookup: %w", syscall.ENOTDIR), syscall.ENOTDIR, ""},
		{"enodata", syscall.ENODATA, syscall.ENODATA, ""},
		{"corrupt", corrupt, syscall.EUCLEAN, "ino=12 block=345"},
		{"wrapped corrupt", fmt.Errorf("read: %w", corrupt), syscall.EUCLEAN, "extent header"},
		{"bare ErrCorrupt", fmt.Errorf("x: %w", ext4.ErrCorrupt), syscall.EUCLEAN, "filesystem corruption"},
		// A corruption carrying an errno is still corruption.
		{"corrupt wrapping errno", &ext4.CorruptError{Kind: "k", Ino: 3, Err: syscall.ENOENT}, syscall.EUCLEAN, "ino=3"},
		{"device error", &os.PathError{Op: "pread", Path: "/img", Err: syscall.EBADF}, syscall.EIO, "I/O error"},
		{"syscall error", os.NewSyscallError("pread", syscall.ENOSPC), syscall.EIO, "I/O error"},
		{"plain error", errors.New("boom"), syscall.EIO, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, log := newTestReporter()
			if got := r.toErrno(tt.err); got != tt.want {
				t.Errorf("toErrno(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if tt.logged == "" && log.Len() != 0 {
				t.Errorf("unexpected log: %s", log)
			}
			if tt.logged != "" && !strings.Contains(log.String(), tt.logged) {
				t.Errorf("log %q does not contain %q", log, tt.logged)
			}
		})
	}
}

func TestCorruptionLoggedOncePerInodeBlock(t *testing.T) {
	r, log := newTestReporter()
	a := &ext4.CorruptError{Kind: "dir block", Ino: 20, Block: 100}
	b := &ext4.CorruptError{Kind: "dir block", Ino: 20, Block: 101}
	for range 5 {
		if got := r.toErrno(a); got != syscall.EUCLEAN {
			t.Fatalf("got %v", got)
		}
	}
	r.toErrno(b)
	r.toErrno(a)
	if n := strings.Count(log.String(), "filesystem corruption"); n != 2 {
		t.Errorf("logged %d corruption lines, want 2:\n%s", n, log)
	}
}

func TestCorruptionLogIsBounded(t *testing.T) {
	r, log := newTestReporter()
	for i := range maxCorruptReports + 10 {
		r.toErrno(&ext4.CorruptError{Kind: "inode", Ino: ext4.Ino(i + 1)})
	}
	if len(r.seen) != maxCorruptReports {
		t.Errorf("remembered %d reports, want cap %d", len(r.seen), maxCorruptReports)
	}
	if n := strings.Count(log.String(), "further ones are not logged"); n != 1 {
		t.Errorf("suppression notice logged %d times, want 1", n)
	}
}

func TestDebugLogsPOSIXErrors(t *testing.T) {
	var buf bytes.Buffer
	r := newErrorReporter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), true)
	if got := r.toErrno(syscall.ENOENT); got != syscall.ENOENT {
		t.Fatalf("got %v", got)
	}
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "no such file") {
		t.Errorf("debug log %q", buf.String())
	}
}
