package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/e4box/e4box/ext4"
	"github.com/e4box/e4box/fuse"
	"github.com/e4box/e4box/server"
)

// mountRequest is a parsed mount command line.
type mountRequest struct {
	source, mountpoint string
	foreground         bool
	logPath            string
	rawOpts            []string // -o arguments as given, for the background child
	opts               mountOptions
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
	if req.opts.readWrite {
		return nil, errRWUnsupported
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
	return background(args, req.logPath)
}

// readyTimeout bounds the wait for the kernel's INIT after mount(2).
const readyTimeout = 30 * time.Second

// serve opens the image, mounts it and answers requests until unmounted
// (or SIGINT/SIGTERM, which unmount first).
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

	dev, err := openDevice(req.source)
	if err != nil {
		return err
	}
	fsys, err := ext4.Open(dev, ext4.Options{ReadOnly: true, NoRecovery: req.opts.noRecovery, Logger: logger})
	if err != nil {
		dev.Close()
		return fmt.Errorf("%s: %w", req.source, err)
	}
	defer fsys.Close()

	srv := server.New(fsys, server.Options{ReadOnly: true, Debug: req.opts.debug, Logger: logger})
	fsname := req.opts.fsname
	if fsname == "" {
		fsname = req.source
	}
	sess, err := fuse.Mount(req.mountpoint, srv, &fuse.Options{
		FsName:             fsname,
		ReadOnly:           true,
		AllowOther:         req.opts.allowOther,
		DefaultPermissions: true,
		Debug:              req.opts.debug,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	if req.opts.noExec {
		// fuse.Mount always adds nosuid,nodev; noexec is a per-mount flag
		// that a bind remount can add without involving the filesystem.
		flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY |
			syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
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
	return nil
}

// waitInit returns once the kernel's INIT has been answered, so the mount
// is live when the caller reports readiness.
func waitInit(sess *fuse.Server, errc chan error) error {
	deadline := time.Now().Add(readyTimeout)
	for sess.Protocol() == nil {
		select {
		case err := <-errc:
			errc <- err // leave it for the caller's final wait
			if err == nil {
				err = errors.New("unmounted before the kernel initialised the session")
			}
			return fmt.Errorf("serving %s: %w", sess.Mountpoint(), err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serving %s: kernel did not initialise the session within %v", sess.Mountpoint(), readyTimeout)
		}
	}
	return nil
}
