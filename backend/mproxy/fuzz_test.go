package mproxy

import (
	"testing"

	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// FuzzFeed feeds a ready connection well-encrypted frames whose bodies the
// fuzzer chooses, split at a chosen point, then raw bytes: whatever a
// middle proxy sends, Feed must not panic, must hand the Handler only
// messages of the four kinds with the room ProxyAns promises, and once it
// fails must stay failed.
func FuzzFeed(f *testing.F) {
	ans := append(rpc.AppendProxyAns(nil, 0, 5), make([]byte, 8)...)
	f.Add(ans, rpc.AppendPing(nil, 7), uint16(3), []byte{})
	f.Add(rpc.AppendSimpleAck(nil, 1, 2), rpc.AppendCloseExt(nil, 9), uint16(100), []byte{1, 2, 3})
	f.Add([]byte{0x0d, 0xda, 0x03, 0x44}, []byte{0xdf, 0xa2, 0x30}, uint16(0), make([]byte, 32))
	f.Fuzz(func(t *testing.T, body1, body2 []byte, split uint16, raw []byte) {
		if len(body1) > 1<<16 || len(body2) > 1<<16 {
			return
		}
		m := newMemMP(t, testSecret())
		h := newRecorder()
		c := handshake(t, m, h, len(raw)%2 == 0)
		var in []byte
		for _, b := range [][]byte{body1, body2} {
			b = b[:len(b)&^3] // frame bodies are whole words, at least one
			if len(b) == 0 {
				b = []byte{0, 0, 0, 0}
			}
			in = m.sendNext(in, b)
		}
		at := min(int(split), len(in))
		out, err := c.Feed(in[:at], nil)
		if err == nil {
			out, err = c.Feed(in[at:], out)
		}
		if err == nil && len(out)%16 != 0 {
			t.Fatalf("output of %d bytes is not whole blocks", len(out))
		}
		if h.roomless != 0 {
			t.Fatal("an answer without room for the checksum after it")
		}
		if _, err2 := c.Feed(raw, nil); err != nil && err2 == nil {
			t.Fatal("a failed connection accepted more input")
		}
	})
}
