package main

import (
	"fmt"
	"strings"

	"github.com/e4box/e4box/server"
)

// mountOptions is the parsed form of `-o opt,opt=val,...`.
type mountOptions struct {
	readWrite   bool   // "rw" was requested explicitly (and not overridden by a later ro)
	allowOther  bool   // allow_other
	noRecovery  bool   // norecovery / noload: skip journal replay requirement
	errors      string // errors=continue|remount-ro|panic ("" = continue)
	atime       string // noatime, relatime or strictatime ("" = relatime)
	debug       bool   // one log line per request/reply
	fsname      string // fsname=, shown as the source in /proc/mounts
	noDev       bool
	noSuid      bool
	noExec      bool
	ignored     []string // standard options accepted but meaningless here
	sawReadOnly bool     // "ro" was given
}

// errorPolicy maps errors= to the server's policy.
func (o *mountOptions) errorPolicy() server.ErrorPolicy {
	switch o.errors {
	case "remount-ro":
		return server.ErrorsRemountRO
	case "panic":
		return server.ErrorsPanic
	}
	return server.ErrorsContinue
}

// atimePolicy maps noatime/relatime/strictatime to the server's policy.
func (o *mountOptions) atimePolicy() server.AtimePolicy {
	switch o.atime {
	case "noatime":
		return server.AtimeNever
	case "strictatime":
		return server.AtimeStrict
	}
	return server.AtimeRelative
}

// ignoredOptions are standard mount(8)/fstab options that have no effect
// on a FUSE mount of an image; accepting them lets fstab entries and
// mount helpers work unchanged.
var ignoredOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "_netdev": true, "nofail": true,
	"async": true, "sync": true, "atime": true,
	"norelatime": true, "nostrictatime": true, "lazytime": true,
	"nolazytime": true, "diratime": true, "nodiratime": true, "dev": true,
	"suid": true, "exec": true, "loop": true, "silent": true, "loud": true,
	"iversion": true, "noiversion": true, "mand": true, "nomand": true,
	"dirsync": true, "default_permissions": true,
}

// ignoredPrefixes are option families owned by other tools (systemd,
// util-linux) that a mount helper may be handed.
var ignoredPrefixes = []string{"x-", "comment=", "context=", "fscontext=", "defcontext=", "rootcontext="}

// parseMountOptions parses comma-separated mount options, accumulating
// into o. Unknown options are an error naming them.
func parseMountOptions(o *mountOptions, s string) error {
	for _, opt := range strings.Split(s, ",") {
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		switch key {
		case "ro":
			o.sawReadOnly, o.readWrite = true, false
		case "rw":
			o.readWrite, o.sawReadOnly = true, false
		case "noatime", "relatime", "strictatime":
			o.atime = key
		case "allow_other":
			o.allowOther = true
		case "norecovery", "noload":
			o.noRecovery = true
		case "errors":
			switch val {
			case "continue", "remount-ro", "panic":
				o.errors = val
			default:
				return fmt.Errorf("invalid option errors=%s (want continue, remount-ro or panic)", val)
			}
		case "debug":
			o.debug = true
		case "fsname":
			if !hasVal || val == "" {
				return fmt.Errorf("option fsname needs a value")
			}
			o.fsname = val
		case "nodev":
			o.noDev = true
		case "nosuid":
			o.noSuid = true
		case "noexec":
			o.noExec = true
		default:
			if ignoredOptions[opt] || hasPrefix(opt, ignoredPrefixes) {
				o.ignored = append(o.ignored, opt)
				continue
			}
			return fmt.Errorf("unknown mount option %q", opt)
		}
	}
	return nil
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
