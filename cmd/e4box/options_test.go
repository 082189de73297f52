package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4box/e4box/server"
)

func TestParseMountOptions(t *testing.T) {
	var o mountOptions
	err := parseMountOptions(&o, "ro,allow_other,norecovery,errors=remount-ro,debug,fsname=/dev/img,nodev,nosuid,noexec,defaults,noatime,x-systemd.automount")
	if err != nil {
		t.Fatal(err)
	}
	if o.readWrite || !o.sawReadOnly || !o.allowOther || !o.noRecovery || o.errors != "remount-ro" ||
		!o.debug || o.fsname != "/dev/img" || !o.noDev || !o.noSuid || !o.noExec {
		t.Errorf("parsed %+v", o)
	}
	if len(o.ignored) != 2 || o.atime != "noatime" {
		t.Errorf("ignored = %v (want defaults, x-systemd.automount), atime %q", o.ignored, o.atime)
	}
}

func TestParseMountOptionsErrors(t *testing.T) {
	for _, s := range []string{"bogus", "errors=explode", "fsname=", "fsname", "ro,what=1"} {
		var o mountOptions
		err := parseMountOptions(&o, s)
		if err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	var o mountOptions
	err := parseMountOptions(&o, "ro,frobnicate")
	if err == nil || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Errorf("unknown option error does not name it: %v", err)
	}
}

// TestMountMode: -o rw and -o ro decide, the last one winning as with
// mount(8); without either a writable source is mounted read-write.
func TestMountMode(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		opts []string
		rw   bool
	}{
		{nil, true},
		{[]string{"rw"}, true},
		{[]string{"ro"}, false},
		{[]string{"rw", "ro"}, false},
		{[]string{"ro,rw"}, true},
	} {
		req := &mountRequest{source: img, mountpoint: "/nonexistent", rawOpts: tt.opts}
		prepareMount(req) // fails at the mountpoint, after deciding
		if req.rw != tt.rw {
			t.Errorf("%q: rw = %v, want %v", tt.opts, req.rw, tt.rw)
		}
	}
}

func TestMountOptionPolicies(t *testing.T) {
	var o mountOptions
	if o.errorPolicy() != server.ErrorsContinue || o.atimePolicy() != server.AtimeRelative {
		t.Error("defaults are not errors=continue, relatime")
	}
	if err := parseMountOptions(&o, "errors=panic,strictatime"); err != nil {
		t.Fatal(err)
	}
	if o.errorPolicy() != server.ErrorsPanic || o.atimePolicy() != server.AtimeStrict {
		t.Errorf("errors=panic,strictatime parsed as %v, %v", o.errorPolicy(), o.atimePolicy())
	}
	if err := parseMountOptions(&o, "errors=remount-ro,noatime"); err != nil {
		t.Fatal(err)
	}
	if o.errorPolicy() != server.ErrorsRemountRO || o.atimePolicy() != server.AtimeNever {
		t.Errorf("errors=remount-ro,noatime parsed as %v, %v", o.errorPolicy(), o.atimePolicy())
	}
}

func TestDropUnknownOptions(t *testing.T) {
	got := dropUnknownOptions([]string{"ro,bogus", "debug,zzz=1"})
	if len(got) != 1 || got[0] != "ro,debug" {
		t.Errorf("got %q", got)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/a\040b`:   "/mnt/a b",
		`/plain`:        "/plain",
		`/tab\011x\134`: "/tab\tx\\",
		`/short\04`:     `/short\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[uint16]string{
		0o040755: "drwxr-xr-x",
		0o100644: "-rw-r--r--",
		0o104755: "-rwsr-xr-x",
		0o102644: "-rw-r-Sr--",
		0o041777: "drwxrwxrwt",
		0o120777: "lrwxrwxrwx",
		0o020600: "crw-------",
		0o060660: "brw-rw----",
		0o010644: "prw-r--r--",
		0o140755: "srwxr-xr-x",
	} {
		if got := modeString(mode); got != want {
			t.Errorf("modeString(%#o) = %s, want %s", mode, got, want)
		}
	}
}

func TestDecodeDev(t *testing.T) {
	// new_encode_dev(MKDEV(259, 70000)) per include/linux/kdev_t.h.
	maj, min := uint32(259), uint32(70000)
	enc := (min & 0xff) | (maj << 8) | ((min &^ 0xff) << 12)
	if gm, gn := decodeDev(enc); gm != maj || gn != min {
		t.Errorf("decodeDev = %d,%d want %d,%d", gm, gn, maj, min)
	}
}
