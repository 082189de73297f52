package fuse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mount mounts a FUSE filesystem on mountpoint and returns its Server; run
// Serve to answer requests (accesses block until it does). As root it
// calls mount(2) directly; otherwise it runs fusermount3 (or fusermount),
// which passes the /dev/fuse descriptor back over a socket.
func Mount(mountpoint string, fs FileSystem, opts *Options) (*Server, error) {
	s := NewServer(nil, fs, opts)
	dir, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("fuse: mount %s: %w", mountpoint, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("fuse: mountpoint %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("fuse: mountpoint %s: %w", dir, syscall.ENOTDIR)
	}
	var fd int
	if os.Geteuid() == 0 {
		fd, err = mountDirect(dir, &s.opts, s.maxWrite, st.Mode&unix.S_IFMT)
	} else {
		fd, err = mountFusermount(dir, &s.opts, s.maxWrite)
	}
	if err != nil {
		return nil, err
	}
	s.conn = &devConn{fd: fd}
	s.mountpoint = dir
	return s, nil
}

// openDevFuse opens /dev/fuse with a readable error for the usual failures.
func openDevFuse() (int, error) {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return -1, fmt.Errorf("fuse: /dev/fuse is missing (load the fuse module: modprobe fuse): %w", err)
	default:
		return -1, fmt.Errorf("fuse: open /dev/fuse: %w", err)
	}
}

// commonOptions are the mount options that mean the same to the kernel
// and to fusermount.
func commonOptions(o *Options, maxRead int) []string {
	var opt []string
	if o.DefaultPermissions {
		opt = append(opt, "default_permissions")
	}
	if o.AllowOther {
		opt = append(opt, "allow_other")
	}
	opt = append(opt, "max_read="+strconv.Itoa(maxRead))
	if o.BlockDevice && o.BlockSize > 0 {
		opt = append(opt, "blksize="+strconv.Itoa(o.BlockSize))
	}
	return opt
}

func mountDirect(dir string, o *Options, maxRead int, rootType uint32) (int, error) {
	fd, err := openDevFuse()
	if err != nil {
		return -1, err
	}
	fstype := "fuse." + o.Subtype
	if o.BlockDevice {
		fstype = "fuseblk"
	}
	data := append([]string{
		"fd=" + strconv.Itoa(fd),
		"rootmode=" + strconv.FormatUint(uint64(rootType), 8),
		"user_id=" + strconv.Itoa(os.Geteuid()),
		"group_id=" + strconv.Itoa(os.Getegid()),
	}, commonOptions(o, maxRead)...)
	if o.BlockDevice {
		data = append(data, "subtype="+o.Subtype)
	}
	// nosuid/nodev: the image is untrusted.
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if o.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if o.NoExec {
		flags |= unix.MS_NOEXEC
	}
	if err := unix.Mount(o.FsName, dir, fstype, flags, strings.Join(data, ",")); err != nil {
		unix.Close(fd)
		return -1, mountError(dir, fstype, err)
	}
	return fd, nil
}

func mountError(dir, fstype string, err error) error {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("fuse: mount %s: mountpoint busy: %w", dir, err)
	case errors.Is(err, syscall.ENODEV):
		return fmt.Errorf("fuse: mount %s: filesystem type %s unknown to the kernel (fuse module not loaded?): %w", dir, fstype, err)
	case errors.Is(err, syscall.ENOTBLK):
		return fmt.Errorf("fuse: mount %s: fuseblk needs a block device source: %w", dir, err)
	}
	return fmt.Errorf("fuse: mount %s (%s): %w", dir, fstype, err)
}

// fusermountPath finds the setuid mount helper.
func fusermountPath() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("fuse: not root and no fusermount3/fusermount in PATH")
}

// mountFusermount runs fusermount with _FUSE_COMMFD set to one end of a
// socketpair; fusermount opens /dev/fuse, mounts, and sends the descriptor
// back as SCM_RIGHTS.
func mountFusermount(dir string, o *Options, maxRead int) (int, error) {
	bin, err := fusermountPath()
	if err != nil {
		return -1, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fuse: socketpair: %w", err)
	}
	local := os.NewFile(uintptr(pair[0]), "fusermount-local")
	remote := os.NewFile(uintptr(pair[1]), "fusermount-remote")
	defer local.Close()

	opt := append([]string{"fsname=" + o.FsName, "subtype=" + o.Subtype, "nosuid", "nodev"},
		commonOptions(o, maxRead)...)
	if o.ReadOnly {
		opt = append(opt, "ro")
	}
	if o.NoExec {
		opt = append(opt, "noexec")
	}
	if o.BlockDevice {
		opt = append(opt, "blkdev")
	}
	cmd := exec.Command(bin, "-o", strings.Join(opt, ","), "--", dir)
	cmd.ExtraFiles = []*os.File{remote} // fd 3 in the child
	cmd.Env = append(os.Environ(), "_FUSE_COMMFD=3")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Start()
	remote.Close()
	if err != nil {
		return -1, fmt.Errorf("fuse: start %s: %w", bin, err)
	}
	fd, rerr := recvFd(int(local.Fd()))
	werr := cmd.Wait()
	if werr != nil || rerr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		msg := strings.TrimSpace(stderr.String())
		if werr != nil {
			return -1, fmt.Errorf("fuse: %s failed: %v: %s", bin, werr, msg)
		}
		return -1, fmt.Errorf("fuse: %s sent no descriptor: %v: %s", bin, rerr, msg)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// recvFd reads one SCM_RIGHTS descriptor from sock.
func recvFd(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err == nil && len(fds) > 0 {
			for _, extra := range fds[1:] {
				unix.Close(extra)
			}
			return fds[0], nil
		}
	}
	return -1, errors.New("no SCM_RIGHTS message")
}

// Unmount unmounts the FUSE filesystem at mountpoint. lazy detaches it even
// while busy (MNT_DETACH); otherwise a busy mount fails with EBUSY. Without
// root it runs fusermount -u.
func Unmount(mountpoint string, lazy bool) error {
	return unmount(mountpoint, lazy)
}

func unmount(dir string, lazy bool) error {
	if os.Geteuid() == 0 {
		flags := 0
		if lazy {
			flags = unix.MNT_DETACH
		}
		err := unix.Unmount(dir, flags)
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("fuse: unmount %s: busy (files open?): %w", dir, err)
		}
		if err != nil {
			return fmt.Errorf("fuse: unmount %s: %w", dir, err)
		}
		return nil
	}
	return unmountFusermount(dir, lazy)
}

// unmountFusermount runs fusermount -u [-z], which unmounts FUSE mounts
// the calling user made.
func unmountFusermount(dir string, lazy bool) error {
	bin, err := fusermountPath()
	if err != nil {
		return err
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	out, err := exec.Command(bin, append(args, "--", dir)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fuse: %s -u %s: %v: %s", bin, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Unmount unmounts the session's mountpoint, falling back to a lazy
// unmount when it is busy; Serve then returns. For a session on a bare
// Conn it closes the Conn.
func (s *Server) Unmount() error {
	if s.mountpoint == "" {
		return s.conn.Close()
	}
	err := unmount(s.mountpoint, false)
	if errors.Is(err, syscall.EBUSY) {
		err = unmount(s.mountpoint, true)
	}
	return err
}
