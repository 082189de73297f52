// Command e4box serves ext2/3/4 images from userspace over FUSE and
// inspects them offline.
//
//	e4box mount [-f] [-o opts] SOURCE MOUNTPOINT
//	e4box SOURCE MOUNTPOINT [-o opts]      (mount(8) helper form)
//	e4box ls IMAGE [PATH]
//	e4box cat IMAGE PATH
//	e4box stat IMAGE PATH
//	e4box info IMAGE
//
// The command is thin: it turns flags into options, calls packages
// server, fuse, ext4 and blockdev, and turns the outcome into one line on
// stderr and an exit code (0 success, 1 failure, 2 usage). It may import
// only those packages (see DESIGN.md).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  e4box mount [-f] [-o opts] [--log FILE] SOURCE MOUNTPOINT
  e4box SOURCE MOUNTPOINT [-o opts]        (mount(8) helper form)
  e4box ls IMAGE [PATH]
  e4box cat IMAGE PATH
  e4box stat IMAGE PATH
  e4box info IMAGE

mount options (-o, comma separated):
  rw                  read-write; the default when SOURCE is writable (as
                      with mount(8)); fails if ext4 cannot write this
                      filesystem, where the default falls back to read-only
  ro                  read-only
  errors=continue|remount-ro|panic
                      on corruption or a device error during a write:
                      report it (continue, the default), refuse further
                      writes (remount-ro), or flush, unmount and exit (panic)
  relatime|noatime|strictatime
                      access time updates (relatime by default)
  allow_other         let users other than the mounter access the mount
  norecovery          mount even if the journal needs recovery (not replayed;
                      read-only)
  debug               log one line per FUSE request and reply
  fsname=NAME         source name shown in /proc/mounts
  nodev, nosuid, noexec, and standard options such as defaults

An image file is locked while mounted (exclusively when read-write), so a
second read-write mount of it fails with "image busy"; a block device
mounted read-write is opened exclusively. Unmounting (umount, fusermount -u,
SIGINT/SIGTERM to the server) leaves a read-write filesystem marked clean.
`

// exitError carries an exit code through the subcommand functions.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks a command-line mistake (exit status 2).
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "e4box: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code == 2 {
			fmt.Fprint(stderr, usage)
		}
		return ee.code
	}
	return 1
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("missing command")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "mount":
		return cmdMount(args[1:], stderr)
	case "ls":
		return cmdLs(args[1:], stdout)
	case "cat":
		return cmdCat(args[1:], stdout)
	case "stat":
		return cmdStat(args[1:], stdout)
	case "info":
		return cmdInfo(args[1:], stdout)
	}
	// mount(8) runs helpers as "mount.fuse.e4box SOURCE DIR -o opts";
	// anything that is not a subcommand is taken as that form.
	return cmdMountHelper(args, stderr)
}
