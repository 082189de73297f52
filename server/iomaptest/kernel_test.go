package iomaptest

import (
	"errors"
	"syscall"
	"testing"

	"github.com/e4box/e4box/fuse/fusetest"
	"github.com/e4box/e4box/fuseproto"
)

func replyMsg(errno int32, body []byte) []byte {
	h := fuseproto.OutHeader{Len: uint32(16 + len(body)), Error: errno, Unique: 9}
	return append(fusetest.Bytes(&h), body...)
}

// CheckBeginReply applies the kernel's checks in the kernel's order:
// framing, then fuse_iomap_validate, then device resolution.
func TestCheckBeginReply(t *testing.T) {
	in := fuseproto.IomapBeginIn{Opflags: fuseproto.IomapOpWrite, AttrIno: 12, Pos: 8192, Count: 4096}
	good := fuseproto.IomapBeginOut{Offset: 4096, Length: 8192, ReadAddr: 1 << 20, ReadType: fuseproto.IomapTypeMapped,
		ReadDev: 0, WriteAddr: fuseproto.IomapNullAddr, WriteType: fuseproto.IomapTypePureOverwrite, WriteDev: 0}
	only0 := func(c uint32) bool { return c == 0 }
	if out, err := CheckBeginReply(&in, replyMsg(0, fusetest.Bytes(&good)), only0); err != nil || *out != good {
		t.Fatalf("valid reply: %v", err)
	}
	mut := func(fn func(o *fuseproto.IomapBeginOut)) []byte {
		o := good
		fn(&o)
		return replyMsg(0, fusetest.Bytes(&o))
	}
	for _, c := range []struct {
		name  string
		msg   []byte
		check fuseproto.IomapCheck
		want  error
	}{
		{"errno", replyMsg(-int32(syscall.ENOSPC), nil), 0, syscall.ENOSPC},
		{"errno with a payload", replyMsg(-int32(syscall.ENOSPC), make([]byte, 8)), 0, syscall.EIO},
		{"positive error", replyMsg(5, nil), 0, syscall.EIO},
		{"short", replyMsg(0, fusetest.Bytes(&good)[:47]), 0, syscall.EIO},
		{"long", replyMsg(0, append(fusetest.Bytes(&good), 0)), 0, syscall.EIO},
		{"bad header length", append(replyMsg(0, fusetest.Bytes(&good)), 1), 0, syscall.EIO},
		// Both devices null and the offset wrong: the read device is
		// checked first.
		{"order", mut(func(o *fuseproto.IomapBeginOut) {
			o.ReadDev, o.WriteDev, o.Offset = fuseproto.IomapDevNull, fuseproto.IomapDevNull, 1<<40
		}), fuseproto.IomapCheckReadDev, syscall.EIO},
		{"write dev before geometry", mut(func(o *fuseproto.IomapBeginOut) { o.WriteDev, o.Length = fuseproto.IomapDevNull, 0 }),
			fuseproto.IomapCheckWriteDev, syscall.EIO},
		{"write type before read type", mut(func(o *fuseproto.IomapBeginOut) { o.WriteType, o.ReadType = 6, 6 }),
			fuseproto.IomapCheckWriteType, syscall.EIO},
		{"inline", mut(func(o *fuseproto.IomapBeginOut) { o.ReadType = fuseproto.IomapTypeInline }),
			fuseproto.IomapCheckInline, syscall.EIO},
		{"unregistered read device, even a hole", mut(func(o *fuseproto.IomapBeginOut) {
			o.ReadType, o.ReadDev, o.WriteDev = fuseproto.IomapTypeHole, 3, 3
		}), 0, syscall.ENODEV},
		{"out-of-place write device", mut(func(o *fuseproto.IomapBeginOut) {
			o.WriteType, o.WriteDev, o.WriteAddr = fuseproto.IomapTypeMapped, 4, 1<<21
		}), 0, syscall.ENODEV},
	} {
		_, err := CheckBeginReply(&in, c.msg, only0)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		var re *fuseproto.IomapReplyError
		if got := errors.As(err, &re); got != (c.check != 0) || (got && re.Check != c.check) {
			t.Errorf("%s: %v, want check %v", c.name, err, c.check)
		}
	}
	// A pure overwrite's write device is only checked for DEV_NULL, not
	// resolved (the kernel resolves it only for out-of-place writes).
	if _, err := CheckBeginReply(&in, mut(func(o *fuseproto.IomapBeginOut) { o.WriteDev = 5 }), only0); err != nil {
		t.Errorf("pure overwrite with another write_dev: %v", err)
	}
}
