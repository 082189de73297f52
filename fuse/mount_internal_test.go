package fuse

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/fuseproto"
)

type rootOnlyFS struct{ NotImplemented }

func (rootOnlyFS) GetAttr(r *Request, in *fuseproto.GetattrIn, out *fuseproto.AttrOut) syscall.Errno {
	if r.NodeID != fuseproto.RootID {
		return syscall.ENOENT
	}
	out.Attr = fuseproto.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o750, Nlink: 2}
	return 0
}

// TestFusermountPath mounts through fusermount3 and its _FUSE_COMMFD
// socket protocol, the path unprivileged users take (fusermount3 works for
// root too, which is how it is tested here).
func TestFusermountPath(t *testing.T) {
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = "/dev/fuse"
	} else if _, err := exec.LookPath("fusermount3"); err != nil {
		missing = "fusermount3"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("requirement missing under CI: %s", missing)
		}
		t.Skipf("requirement missing: %s", missing)
	}
	dir := t.TempDir()
	s := NewServer(nil, rootOnlyFS{}, &Options{FsName: "fmtest", ReadOnly: true})
	fd, err := mountFusermount(dir, &s.opts, s.maxWrite)
	if err != nil {
		t.Fatalf("mountFusermount: %v", err)
	}
	s.conn, s.mountpoint = &devConn{fd: fd}, dir
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	// Until the poll probe has closed its file, the mount is busy.
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("session not ready")
	}

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Errorf("stat mount root: %v, %v", fi, err)
	}
	info, _ := os.ReadFile("/proc/self/mountinfo")
	var line string
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			line = l
		}
	}
	if !strings.Contains(line, "fuse.e4box fmtest") || !strings.Contains(line, "ro,nosuid,nodev") {
		t.Errorf("mountinfo: %q", line)
	}
	if err := unmountFusermount(dir, false); err != nil {
		_ = unmount(dir, true)
		t.Fatalf("fusermount -u: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}
