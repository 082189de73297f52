package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Backgrounding.
//
// Without -f, `e4box mount` re-executes itself with -f in a new session
// and waits on a pipe until the child reports that the mount is live
// ("ok") or why it failed (any other line); "warning: " lines before
// either are printed and the wait goes on. Only then does the parent
// exit, so `e4box mount img mnt && ls mnt` works, and a failure is
// printed by the command the user ran. The child's stdout and stderr go
// to the --log file, or /dev/null.

// readyFDEnv names the environment variable that tells a foreground
// child which inherited fd is the readiness pipe.
const readyFDEnv = "E4BOX_READY_FD"

const readyMsg = "ok"

// readiness is the child's end of the pipe; nil in a plain foreground run.
type readiness struct{ f *os.File }

// childReadiness returns the readiness pipe inherited from a backgrounding
// parent, if any, and removes the variable so it does not leak further.
func childReadiness() *readiness {
	v := os.Getenv(readyFDEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return &readiness{f: os.NewFile(uintptr(fd), "ready-pipe")}
}

// ready tells the parent the mount is serving.
func (r *readiness) ready() {
	if r == nil {
		return
	}
	fmt.Fprintln(r.f, readyMsg)
	r.f.Close()
}

// warnPrefix marks a warning line: the parent prints it and keeps
// waiting for the outcome.
const warnPrefix = "warning: "

// warn hands the parent a warning to print.
func (r *readiness) warn(msg string) {
	if r == nil {
		return
	}
	fmt.Fprintln(r.f, warnPrefix+strings.ReplaceAll(msg, "\n", " "))
}

// fail hands the parent the error to print.
func (r *readiness) fail(err error) {
	if r == nil {
		return
	}
	fmt.Fprintln(r.f, strings.ReplaceAll(err.Error(), "\n", " "))
	r.f.Close()
}

// background re-runs the mount in the foreground as a detached child and
// returns once the child reports readiness or failure.
func background(args []string, logPath string, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find own executable: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()

	out := io.Writer(nil) // nil: the child gets /dev/null
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			pw.Close()
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		out = f
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{pw} // fd 3 in the child
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The child must not be cut off from its working directory's mount or
	// hold it busy; relative paths were made absolute by the caller.
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("starting server: %w", err)
	}
	pw.Close() // only the child holds the write end now

	br := bufio.NewReader(pr)
	line, rerr := br.ReadString('\n')
	for strings.HasPrefix(line, warnPrefix) {
		fmt.Fprintf(stderr, "e4box: %s", line)
		line, rerr = br.ReadString('\n')
	}
	line = strings.TrimSuffix(line, "\n")
	if line == readyMsg {
		// The server keeps running on its own; do not reap it.
		cmd.Process.Release()
		return nil
	}
	werr := cmd.Wait()
	if line != "" {
		return errors.New(line)
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return fmt.Errorf("reading server status: %w", rerr)
	}
	return fmt.Errorf("server exited before the mount was ready (%v)", werr)
}
