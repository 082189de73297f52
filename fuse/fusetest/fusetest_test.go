package fusetest

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/e4box/e4box/fuseproto"
)

func TestConnSemantics(t *testing.T) {
	c := NewConn()
	c.Feed([]byte("abc"))
	buf := make([]byte, 8)
	if n, err := c.ReadRequest(buf); n != 3 || err != nil || string(buf[:3]) != "abc" {
		t.Fatalf("ReadRequest = %d, %v", n, err)
	}
	c.Feed(make([]byte, 9))
	if _, err := c.ReadRequest(buf); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("oversized request: %v, want EINVAL", err)
	}
	if err := c.WriteReply([][]byte{[]byte("ab"), []byte("cd")}); err != nil {
		t.Fatal(err)
	}
	if m, ok := c.Next(time.Second); !ok || string(m) != "abcd" {
		t.Errorf("Next = %q, %v", m, ok)
	}
	c.Abort()
	c.Close() // the first terminal condition wins
	if _, err := c.ReadRequest(buf); !errors.Is(err, syscall.ECONNABORTED) {
		t.Errorf("read after Abort: %v", err)
	}
	if err := c.WriteReply([][]byte{{1}}); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("write after close: %v", err)
	}
}

func TestRequestAndHex(t *testing.T) {
	r := Request(fuseproto.OpLookup, 7, 1, Name("ab"))
	want := Hex(
		"2b000000 01000000", // len 43, LOOKUP
		"0700000000000000",
		"0100000000000000",
		"e8030000 e8030000",
		"2a000000 00000000",
		"616200",
	)
	if string(r) != string(want) {
		t.Errorf("Request = %x\nwant      %x", r, want)
	}
	h, body := Reply(Hex("13000000 feffffff", "0900000000000000", "010203"))
	if h.Len != 19 || h.Error != -2 || h.Unique != 9 || len(body) != 3 {
		t.Errorf("Reply = %+v, %x", h, body)
	}
}
