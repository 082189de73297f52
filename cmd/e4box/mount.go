package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/e4box/e4box/blockdev"
	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/fuseproto"
	"github.com/e4box/e4box/server"
)

// mountRequest is a parsed mount command line.
type mountRequest struct {
	source, mountpoint string
	foreground         bool
	logPath            string
	rawOpts            []string // -o arguments as given, for the background child
	opts               mountOptions
	// rw is the mode decided by prepareMount: -o rw, -o ro, or by
	// default read-write when the source is writable (as mount(8)).
	rw bool
	// roReason is why a default mount is read-only, for a warning.
	roReason string
}

// cmdMount is `e4box mount [-f] [-o opts] [--log FILE] SOURCE MOUNTPOINT`.
// Flags may come before or after the operands.
func cmdMount(args []string, stderr io.Writer) error {
	var req mountRequest
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--foreground":
			req.foreground = true
		case a == "-o" || a == "--log":
			if i+1 == len(args) {
				return usageErr("mount: %s needs an argument", a)
			}
			i++
			if a == "-o" {
				req.rawOpts = append(req.rawOpts, args[i])
			} else {
				req.logPath = args[i]
			}
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			req.rawOpts = append(req.rawOpts, a[2:])
		case strings.HasPrefix(a, "--log="):
			req.logPath = strings.TrimPrefix(a, "--log=")
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			return usageErr("mount: unknown flag %s", a)
		default:
			operands = append(operands, a)
		}
	}
	if len(operands) != 2 {
		return usageErr("mount: want SOURCE MOUNTPOINT")
	}
	req.source, req.mountpoint = operands[0], operands[1]
	return mount(&req, stderr)
}

// cmdMountHelper is the mount(8) helper form:
// `e4box SOURCE MOUNTPOINT [-sfnv] [-o opts] [-t type]`. Here -f means
// "fake" (check everything, mount nothing), as mount(8) uses it.
func cmdMountHelper(args []string, stderr io.Writer) error {
	var req mountRequest
	var operands []string
	fake, sloppy := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t":
			if i+1 == len(args) {
				return usageErr("%s needs an argument", a)
			}
			i++
			if a == "-o" {
				req.rawOpts = append(req.rawOpts, args[i])
			}
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			req.rawOpts = append(req.rawOpts, a[2:])
		case strings.HasPrefix(a, "-") && len(a) > 1 && strings.Trim(a[1:], "sfnv") == "":
			fake = fake || strings.Contains(a, "f")
			sloppy = sloppy || strings.Contains(a, "s")
		case strings.HasPrefix(a, "-"):
			return usageErr("unknown command or flag %s", a)
		default:
			operands = append(operands, a)
		}
	}
	if len(operands) != 2 {
		return usageErr("unknown command %q", args[0])
	}
	req.source, req.mountpoint = operands[0], operands[1]
	if sloppy {
		req.rawOpts = dropUnknownOptions(req.rawOpts)
	}
	if fake {
		_, err := prepareMount(&req)
		return err
	}
	return mount(&req, stderr)
}

// dropUnknownOptions implements mount -s: options we do not know are
// skipped instead of failing the mount.
func dropUnknownOptions(raw []string) []string {
	var kept []string
	for _, s := range raw {
		for _, opt := range strings.Split(s, ",") {
			var o mountOptions
			if parseMountOptions(&o, opt) == nil {
				kept = append(kept, opt)
			}
		}
	}
	return []string{strings.Join(kept, ",")}
}

// prepareMount parses options and checks what can be checked before
// forking: operands, the source and the mountpoint.
func prepareMount(req *mountRequest) (*mountRequest, error) {
	for _, s := range req.rawOpts {
		if err := parseMountOptions(&req.opts, s); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	var err error
	if req.source, err = filepath.Abs(req.source); err != nil {
		return nil, err
	}
	if req.mountpoint, err = filepath.Abs(req.mountpoint); err != nil {
		return nil, err
	}
	if _, err := os.Stat(req.source); err != nil {
		return nil, fmt.Errorf("%s: %w", req.source, describeOSError(err))
	}
	switch {
	case req.opts.readWrite:
		req.rw = true
	case req.opts.sawReadOnly:
		req.rw = false
	default:
		// Like mount(8): read-write unless the source is write-protected.
		req.rw = syscall.Access(req.source, 2 /* W_OK */) == nil
		if !req.rw {
			req.roReason = "source is write-protected"
		}
	}
	if err := checkMountpoint(req.mountpoint); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("no /dev/fuse: load the fuse kernel module (modprobe fuse) or give the container the device: %w", describeOSError(err))
	}
	return req, nil
}

// checkMountpoint refuses a missing or non-directory mountpoint and one
// that already has something mounted on it: stacking a second mount would
// hide the first and is almost always a mistake (a stale e4box mount).
func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, describeOSError(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s: not a directory", dir)
	}
	mounted, err := isMountpoint(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	if mounted {
		return fmt.Errorf("mountpoint %s is busy: something is already mounted there", dir)
	}
	return nil
}

// isMountpoint reports whether dir is the mount point of an entry in
// /proc/self/mountinfo.
func isMountpoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escaping (\040 for space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// mount validates the request and either serves in the foreground or
// hands off to a background child.
func mount(req *mountRequest, stderr io.Writer) error {
	if _, err := prepareMount(req); err != nil {
		return err
	}
	if req.foreground {
		return serve(req, stderr, childReadiness())
	}
	args := []string{"mount", "-f"}
	for _, o := range req.rawOpts {
		args = append(args, "-o", o)
	}
	args = append(args, "--", req.source, req.mountpoint)
	return background(args, req.logPath, stderr)
}

// lockImage takes an flock on an image file for the life of the mount:
// exclusive for read-write, shared for read-only. Two writers would
// corrupt the image, and a reader beside a writer would see it change
// underneath; the kernel does not lock regular files, so e4box mounts lock
// among themselves. Block devices get O_EXCL from blockdev.Open instead.
// The returned file is nil for block devices.
func lockImage(path string, rw bool) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, describeOSError(err))
	}
	if !st.Mode().IsRegular() {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, describeOSError(err))
	}
	how := syscall.LOCK_SH
	if rw {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if rw {
				return nil, fmt.Errorf("%s: image busy: another e4box mount is using it", path)
			}
			return nil, fmt.Errorf("%s: image busy: mounted read-write by another e4box", path)
		}
		return nil, fmt.Errorf("%s: locking the image: %w", path, err)
	}
	return f, nil
}

// warnings is a slog.Handler that also keeps the warnings logged through
// it, so the reason ext4.Open fell back to read-only can be put in an
// error or a warning line.
type warnings struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func newWarnings(h slog.Handler) *warnings {
	return &warnings{Handler: h, mu: new(sync.Mutex), msgs: new([]string)}
}

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			msg += " " + a.String()
			return true
		})
		w.mu.Lock()
		*w.msgs = append(*w.msgs, msg)
		w.mu.Unlock()
	}
	return w.Handler.Handle(ctx, r)
}

func (w *warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnings{Handler: w.Handler.WithAttrs(as), mu: w.mu, msgs: w.msgs}
}

func (w *warnings) WithGroup(name string) slog.Handler {
	return &warnings{Handler: w.Handler.WithGroup(name), mu: w.mu, msgs: w.msgs}
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(*w.msgs) == 0 {
		return "the filesystem cannot be written"
	}
	return strings.Join(*w.msgs, "; ")
}

// remountROPatience bounds the retries of errors=remount-ro's remount
// while files are open for writing.
const remountROPatience = 5 * time.Minute

// readyTimeout bounds the wait for the kernel's INIT after mount(2).
const readyTimeout = 30 * time.Second

// serve opens the image, mounts it and answers requests until unmounted
// (or SIGINT/SIGTERM, which unmount first). A read-write mount ends with
// ext4's clean Close: the superblock marked clean, the device flushed.
func serve(req *mountRequest, stderr io.Writer, ready *readiness) (err error) {
	defer func() {
		if err != nil {
			ready.fail(err)
		}
	}()
	level := slog.LevelInfo
	if req.opts.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	warn := func(msg string) {
		logger.Warn(msg)
		ready.warn(msg)
	}
	rw := req.rw
	if !rw && req.roReason != "" {
		warn(fmt.Sprintf("%s: %s, mounting read-only", req.source, req.roReason))
	}

	lock, err := lockImage(req.source, rw)
	if err != nil {
		return err
	}
	if lock != nil {
		defer lock.Close()
	}
	dev, err := openDevice(req.source, !rw)
	if err != nil {
		return err
	}
	defer dev.Close()
	opened := newWarnings(logger.Handler())
	fsys, err := ext4.Open(dev, ext4.Options{ReadOnly: !rw, NoRecovery: req.opts.noRecovery, Logger: slog.New(opened)})
	if err != nil {
		return fmt.Errorf("%s: %w", req.source, err)
	}
	if rw && fsys.ReadOnly() {
		// ext4 refused to write this filesystem (features it cannot keep
		// consistent, a journal needing recovery): an explicit rw fails,
		// a default one falls back to read-only, as mount(8) does.
		fsys.Close()
		if req.opts.readWrite {
			return fmt.Errorf("%s: cannot mount read-write: %s", req.source, opened)
		}
		warn(fmt.Sprintf("%s: mounting read-only: %s", req.source, opened))
		rw = false
	}
	defer func() {
		if cerr := fsys.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: clean unmount: %w", req.source, cerr)
		}
	}()

	var stopped atomic.Bool // errors=panic fired
	srv := server.New(fsys, server.Options{
		ReadOnly: !rw,
		Errors:   req.opts.errorPolicy(),
		Atime:    req.opts.atimePolicy(),
		Debug:    req.opts.debug,
		Logger:   logger,
		RemountReadOnly: func() {
			// The remount fails with EBUSY while any file on the mount is
			// open for writing (the request that met the error holds one),
			// so it is retried; meanwhile the server refuses writes itself.
			flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV)
			if req.opts.noExec {
				flags |= syscall.MS_NOEXEC
			}
			var err error
			for deadline := time.Now().Add(remountROPatience); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if err = syscall.Mount("", req.mountpoint, "", flags, ""); err != syscall.EBUSY {
					break
				}
			}
			if err != nil {
				logger.Error("errors=remount-ro: making the mount read-only (the server refuses writes regardless)", "err", err)
			}
		},
		Shutdown: func() {
			stopped.Store(true)
			if err := fuse.Unmount(req.mountpoint, true); err != nil {
				logger.Error("errors=panic: unmounting", "err", err)
			}
		},
	})
	fsname := req.opts.fsname
	if fsname == "" {
		fsname = req.source
	}
	// fuse-iomap hands the kernel device addresses, so it needs a block
	// device the server owns for writing; the fuse layer asks for it only
	// when discovery says the running kernel supports it.
	bdev, _ := dev.(*blockdev.File)
	useIomap := rw && bdev != nil && bdev.IsBlockDevice()
	fopts := &fuse.Options{
		FsName:             fsname,
		ReadOnly:           !rw,
		AllowOther:         req.opts.allowOther,
		DefaultPermissions: true,
		Debug:              req.opts.debug,
		Logger:             logger,
	}
	if useIomap {
		fopts.Iomap = fuseproto.IomapSupportAll
	}
	sess, err := fuse.Mount(req.mountpoint, srv, fopts)
	if err != nil {
		return err
	}
	srv.SetNotifier(sess)
	if useIomap {
		// Registration happens lazily on the first IOMAP_BEGIN, and only if
		// INIT negotiated iomap; otherwise this has no effect.
		srv.EnableIomap(sess, bdev.Fd())
	}
	if req.opts.noExec {
		// fuse.Mount always adds nosuid,nodev; noexec is a per-mount flag
		// that a bind remount can add without involving the filesystem.
		flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
		if !rw {
			flags |= syscall.MS_RDONLY
		}
		if err := syscall.Mount("", req.mountpoint, "", flags, ""); err != nil {
			go sess.Serve() // answer the kernel so the unmount cannot hang
			fuse.Unmount(req.mountpoint, true)
			sess.Wait()
			return fmt.Errorf("remount %s noexec: %w", req.mountpoint, err)
		}
	}
	stop := sess.UnmountOnSignal()
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- sess.Serve() }()
	if err := waitInit(sess, errc); err != nil {
		fuse.Unmount(req.mountpoint, true)
		return err
	}
	ready.ready()
	ready = nil // errors after this point are logged, not reported to the parent
	if err := <-errc; err != nil && !errors.Is(err, fuse.ErrAborted) {
		return err
	}
	if stopped.Load() {
		return errors.New("stopped after a filesystem error (errors=panic); run e2fsck")
	}
	return nil
}

// waitInit returns once the session is ready: the kernel's INIT has been
// answered and the fuse layer's own poll probe of the mount has finished,
// so the mount is live and an immediate unmount is not refused as busy.
func waitInit(sess *fuse.Server, errc chan error) error {
	select {
	case <-sess.Ready():
		return nil
	case err := <-errc:
		errc <- err // leave it for the caller's final wait
		if err == nil {
			// Unmounted (by a signal, say) before the probe finished:
			// a clean end, not a failure.
			return nil
		}
		return fmt.Errorf("serving %s: %w", sess.Mountpoint(), err)
	case <-time.After(readyTimeout):
		return fmt.Errorf("serving %s: kernel did not initialise the session within %v", sess.Mountpoint(), readyTimeout)
	}
}
