package fakeme

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// request returns an RPC_PROXY_REQ for id carrying a fakedc request of
// size bytes followed by pad bytes, from a client with the given flags.
func request(t *testing.T, id int64, flags uint32, q fakedc.Request, size, pad int) []byte {
	t.Helper()
	b := rpc.AppendProxyReq(nil, &rpc.ProxyReq{
		Flags:  rpc.FlagMagic | rpc.FlagExtMode2 | flags,
		ConnID: id,
		Client: netip.MustParseAddrPort("198.51.100.7:51000"),
		Proxy:  netip.MustParseAddrPort("203.0.113.5:443"),
	})
	b, err := fakedc.AppendRequest(b, q, size)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, make([]byte, pad)...)
}

// reply reads RPC_PROXY_ANS frames for id until they hold size bytes, and
// returns them concatenated with the payload size of each frame.
func (c *client) reply(id int64, size int) ([]byte, []int, error) {
	c.t.Helper()
	var got []byte
	var parts []int
	for len(got) < size {
		body, err := c.recv()
		if err != nil {
			return got, parts, err
		}
		_, gid, p, err := rpc.ParseProxyAns(body)
		if err != nil || gid != id {
			c.t.Fatalf("%v for id %#x, %v; want an answer for %#x", rpc.TypeOf(body), gid, err, id)
		}
		got = append(got, p...)
		parts = append(parts, len(p))
	}
	return got, parts, nil
}

func TestReqResp(t *testing.T) {
	s := start(t, Config{Mode: ReqResp})
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		flags      uint32
		size, pad  int
		replySize  int
		id         uint64
		connID     int64
		wantAnswer bool
	}{
		{rpc.FlagIntermediate, 56, 0, 56, 1, 0x11, true},
		{rpc.FlagAbridged, 128, 0, 1024, 2<<32 | 7, 0x22, true},
		{rpc.FlagIntermediate, 64 << 10, 12, 64 << 10, 3<<32 | 1, 0x33, true}, // padding cut to 12 bytes
		{rpc.FlagIntermediate, 100, 0, fakedc.MaxReply, 0xfeed, 0x44, true},
	} {
		q := fakedc.Request{ID: tc.id, ReplySize: tc.replySize}
		if err := c.send(request(t, tc.connID, tc.flags, q, tc.size, tc.pad)); err != nil {
			t.Fatal(err)
		}
		got, parts, err := c.reply(tc.connID, tc.replySize)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 1 {
			t.Errorf("case %d: reply in %d answers, want 1", i, len(parts))
		}
		if err := fakedc.CheckReply(got, tc.id, tc.replySize, framing.Intermediate); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.Requests != 4 || st.Answers != 4 || st.BadRequests != 0 || st.BytesOut != 56+1024+64<<10+fakedc.MaxReply {
		t.Errorf("stats %+v", st)
	}
}

func TestReqRespSplit(t *testing.T) {
	const chunk = 1000
	s := start(t, Config{Mode: ReqResp, ReplyChunk: chunk})
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	// Two clients interleaved: each one's pieces come in order, whole.
	qa := fakedc.Request{ID: 0xa0000001, ReplySize: 4100}
	qb := fakedc.Request{ID: 0xb0000001, ReplySize: 800}
	if err := c.send(request(t, 0xa, rpc.FlagIntermediate, qa, 60, 0), request(t, 0xb, rpc.FlagAbridged, qb, 60, 0)); err != nil {
		t.Fatal(err)
	}
	got, parts, err := c.reply(0xa, qa.ReplySize)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 1000, 1000, 100}; !equalInts(parts, want) {
		t.Errorf("pieces %v, want %v", parts, want)
	}
	if err := fakedc.CheckReply(got, qa.ID, qa.ReplySize, framing.Intermediate); err != nil {
		t.Error(err)
	}
	got, parts, err = c.reply(0xb, qb.ReplySize)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 {
		t.Errorf("pieces %v, want one", parts)
	}
	if err := fakedc.CheckReply(got, qb.ID, qb.ReplySize, framing.Intermediate); err != nil {
		t.Error(err)
	}
	if st := s.Stats(); st.Answers != 6 || st.BytesOut != 4900 {
		t.Errorf("stats %+v", st)
	}
	if _, err := Start(Config{Secret: testSecret(0), Mode: ReqResp, ReplyChunk: 1001}); err == nil {
		t.Error("a reply chunk that is not a multiple of 4 was accepted")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReqRespBad sends requests that break the rules: each closes its own
// client with RPC_CLOSE_EXT, and the others are still served.
func TestReqRespBad(t *testing.T) {
	s := start(t, Config{Mode: ReqResp})
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	good := fakedc.Request{ID: 5, ReplySize: 64}
	corrupt := request(t, 2, rpc.FlagIntermediate, fakedc.Request{ID: 6, ReplySize: 64}, 200, 0)
	corrupt[len(corrupt)-50] ^= 1
	for i, bad := range [][]byte{
		corrupt,
		request(t, 3, rpc.FlagAbridged, fakedc.Request{ID: 7, ReplySize: 64}, 60, 4),      // abridged has no padding
		request(t, 4, rpc.FlagIntermediate, fakedc.Request{ID: 8, ReplySize: 64}, 60, 16), // more than any padding
		append(proxyReq(5, nil, nil), make([]byte, 12)...),                                // shorter than a header
	} {
		if err := c.send(bad, request(t, 9, rpc.FlagIntermediate, good, 60, 0)); err != nil {
			t.Fatal(err)
		}
		body, err := c.recv()
		if err != nil {
			t.Fatal(err)
		}
		id, err := rpc.ParseCloseExt(body)
		if err != nil || id != int64(i+2) {
			t.Fatalf("bad request %d: got %v for %d (%v), want RPC_CLOSE_EXT for %d", i, rpc.TypeOf(body), id, err, i+2)
		}
		got, _, err := c.reply(9, good.ReplySize)
		if err != nil {
			t.Fatal(err)
		}
		if err := fakedc.CheckReply(got, good.ID, good.ReplySize, framing.Intermediate); err != nil {
			t.Error(err)
		}
	}
	if st := s.Stats(); st.BadRequests != 4 || st.CloseExts != 4 || st.Answers != 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestReqRespDelay checks that a delayed reply holds back only its own
// client, and that the client's later replies wait for it.
func TestReqRespDelay(t *testing.T) {
	s := start(t, Config{Mode: ReqResp})
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	const delay = 200 * time.Millisecond
	slow := fakedc.Request{ID: 1, ReplySize: 64, ReplyDelay: delay}
	slowNext := fakedc.Request{ID: 2, ReplySize: 96}
	fast := fakedc.Request{ID: 3, ReplySize: 128}
	start := time.Now()
	if err := c.send(
		request(t, 1, rpc.FlagIntermediate, slow, 60, 0),
		request(t, 1, rpc.FlagIntermediate, slowNext, 60, 0),
		request(t, 2, rpc.FlagIntermediate, fast, 60, 0),
	); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		connID int64
		q      fakedc.Request
		early  bool
	}{{2, fast, true}, {1, slow, false}, {1, slowNext, false}} {
		got, _, err := c.reply(w.connID, w.q.ReplySize)
		if err != nil {
			t.Fatal(err)
		}
		if err := fakedc.CheckReply(got, w.q.ID, w.q.ReplySize, framing.Intermediate); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); (el < delay) != w.early {
			t.Errorf("reply %d after %v; the delay is %v", w.q.ID, el, delay)
		}
	}
}
