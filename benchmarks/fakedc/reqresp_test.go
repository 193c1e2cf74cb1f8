package fakedc_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/proto/codec"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
)

var framings = []framing.Framing{framing.Abridged, framing.Intermediate, framing.Padded}

// sendRequest writes one framed request with a payload of n bytes, and in
// padded intermediate n%16 bytes of random padding.
func sendRequest(t *testing.T, w io.Writer, f framing.Framing, q fakedc.Request, n int) {
	t.Helper()
	pad := 0
	if f == framing.Padded {
		pad = n % 16
	}
	frame, err := f.AppendHeader(nil, n+pad)
	if err != nil {
		t.Error(err)
		return
	}
	if frame, err = fakedc.AppendRequest(frame, q, n); err != nil {
		t.Error(err)
		return
	}
	frame = append(frame, make([]byte, pad)...)
	rand.Read(frame[len(frame)-pad:])
	if _, err := w.Write(frame); err != nil {
		t.Error(err)
	}
}

// readReply reads one framed reply and checks it against q.
func readReply(t *testing.T, r io.Reader, f framing.Framing, q fakedc.Request) {
	t.Helper()
	n, quickAck, err := f.ReadHeader(r)
	if err != nil {
		t.Fatalf("%v: reply to %#x: %v", f, q.ID, err)
	}
	if quickAck {
		t.Errorf("%v: reply to %#x has the quick-ack bit", f, q.ID)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	if err := fakedc.CheckReply(body, q.ID, q.ReplySize, f); err != nil {
		t.Fatalf("%v: %v", f, err)
	}
	if pad := n - q.ReplySize; f == framing.Padded && pad > 3 {
		t.Errorf("%v: reply padded with %d bytes, want 0..3", f, pad)
	}
}

// TestReqResp sends pipelined requests of many sizes on every framing,
// including the abridged short/long boundary and unaligned padded frames,
// and checks every reply.
func TestReqResp(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.ReqResp})
	type exchange struct{ size, reply int }
	exchanges := []exchange{
		{20, 8}, {21, 12}, {504, 504}, {508, 508}, {512, 4}, {65536, 16}, {64, 65536}, {framing.MaxLen - 16, fakedc.MaxReply},
	}
	for _, f := range framings {
		c := dial(t, s.Addr(), f.Tag(), 2)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		var qs []fakedc.Request
		for i, e := range exchanges {
			size, reply := e.size, e.reply
			if f != framing.Padded {
				size &^= 3
			}
			if reply < fakedc.MinReply {
				continue
			}
			q := fakedc.Request{ID: uint64(f)<<32 | uint64(i), ReplySize: reply}
			qs = append(qs, q)
			// Requests go out from another goroutine: the server stops
			// reading while a large reply is unread.
			var wg sync.WaitGroup
			wg.Go(func() { sendRequest(t, c, f, q, size) })
			readReply(t, c, f, q)
			wg.Wait()
		}
		// Pipelined: all requests first, then all replies.
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, q := range qs {
				sendRequest(t, c, f, q, fakedc.RequestHeaderLen+32)
			}
		})
		r := bufio.NewReader(c)
		for _, q := range qs {
			readReply(t, r, f, q)
		}
		wg.Wait()
		c.Close()
	}
	if st := s.Stats(); st.BadRequests != 0 {
		t.Errorf("%d bad requests", st.BadRequests)
	}
}

func TestReqRespDelay(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.ReqResp})
	c := dial(t, s.Addr(), fakedc.TagIntermediate, 2)
	const delay = 100 * time.Millisecond
	q := fakedc.Request{ID: 7, ReplySize: 64, ReplyDelay: delay}
	t0 := time.Now()
	sendRequest(t, c, framing.Intermediate, q, 32)
	readReply(t, c, framing.Intermediate, q)
	if d := time.Since(t0); d < delay {
		t.Errorf("reply after %v, want at least %v", d, delay)
	}
}

// TestReqRespGotdCodec talks to the server with gotd's transport codecs,
// an independent implementation of the framings.
func TestReqRespGotdCodec(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.ReqResp})
	codecs := map[framing.Framing]codec.Codec{
		framing.Abridged:     codec.Abridged{},
		framing.Intermediate: codec.Intermediate{},
		framing.Padded:       codec.PaddedIntermediate{},
	}
	for _, f := range framings {
		cdc := codecs[f]
		c := dial(t, s.Addr(), f.Tag(), 2)
		for i, size := range []int{20, 508, 512, 100000} {
			q := fakedc.Request{ID: uint64(i + 1), ReplySize: size}
			req, err := fakedc.AppendRequest(nil, q, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := cdc.Write(c, &bin.Buffer{Buf: req}); err != nil {
				t.Fatalf("%v: %v", f, err)
			}
			var reply bin.Buffer
			if err := cdc.Read(c, &reply); err != nil {
				t.Fatalf("%v: %v", f, err)
			}
			// gotd strips the padding itself.
			if err := fakedc.CheckReply(reply.Buf, q.ID, q.ReplySize, framing.Intermediate); err != nil {
				t.Fatalf("%v: %v", f, err)
			}
		}
	}
}

func TestReqRespRefuses(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	s := start(t, fakedc.Config{Mode: fakedc.ReqResp, OnError: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	good, err := fakedc.AppendRequest(nil, fakedc.Request{ID: 3, ReplySize: 8}, 64)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good)
	corrupt[40] ^= 1
	hugeReply := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeReply[12:16], fakedc.MaxReply+4)
	longDelay := bytes.Clone(good)
	binary.LittleEndian.PutUint32(longDelay[16:20], uint32(fakedc.MaxReplyDelay/time.Microsecond)+1)
	bad := map[string][]byte{
		"corrupt":    corrupt,
		"huge reply": hugeReply,
		"long delay": longDelay,
		"short":      good[:12],
		"cut":        good[:60],
		// Padding is only allowed in padded intermediate.
		"padded": append(bytes.Clone(good), 0, 0, 0, 0),
	}
	for name, body := range bad {
		c := dial(t, s.Addr(), fakedc.TagIntermediate, 2)
		frame, _ := framing.Intermediate.AppendHeader(nil, len(body))
		if _, err := c.Write(append(frame, body...)); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("%s: read %d bytes, %v; want the connection closed", name, n, err)
		}
	}
	waitFor(t, "all refusals", func() bool { return s.Stats().BadRequests == int64(len(bad)) })
	mu.Lock()
	if len(errs) != len(bad) {
		t.Errorf("OnError called %d times, want %d: %v", len(errs), len(bad), errs)
	}
	mu.Unlock()
}

func TestRequestRoundTrip(t *testing.T) {
	q := fakedc.Request{ID: 0x1122334455667788, ReplySize: 1024, ReplyDelay: 1500 * time.Microsecond}
	body, err := fakedc.AppendRequest([]byte("prefix"), q, 99)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fakedc.ParseRequest(body[6:], framing.Abridged)
	if err != nil || got != q {
		t.Fatalf("ParseRequest = %+v, %v; want %+v", got, err, q)
	}
	padded := append(body[6:], make([]byte, fakedc.MaxPadding)...)
	if got, err := fakedc.ParseRequest(padded, framing.Padded); err != nil || got != q {
		t.Fatalf("ParseRequest with padding = %+v, %v; want %+v", got, err, q)
	}
	if _, err := fakedc.ParseRequest(append(padded, 0), framing.Padded); err == nil {
		t.Error("ParseRequest accepted 16 bytes of padding")
	}
	for _, bad := range []fakedc.Request{{ReplySize: 4}, {ReplySize: 10}, {ReplySize: 8, ReplyDelay: -1}} {
		if _, err := fakedc.AppendRequest(nil, bad, 16); err == nil {
			t.Errorf("AppendRequest accepted %+v", bad)
		}
	}
	if _, err := fakedc.AppendRequest(nil, q, fakedc.RequestHeaderLen-1); err == nil {
		t.Error("AppendRequest accepted a request shorter than its header")
	}
}

func TestCheckReplyCatches(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.ReqResp})
	c := dial(t, s.Addr(), fakedc.TagPaddedIntermediate, 2)
	q := fakedc.Request{ID: 5, ReplySize: 64}
	sendRequest(t, c, framing.Padded, q, 24)
	n, _, err := framing.Padded.ReadHeader(c)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if err := fakedc.CheckReply(body, 5, 64, framing.Padded); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(body)
	flipped[63] ^= 0x80
	cases := map[string]error{
		"other id":      fakedc.CheckReply(body, 6, 64, framing.Padded),
		"flipped byte":  fakedc.CheckReply(flipped, 5, 64, framing.Padded),
		"short":         fakedc.CheckReply(body[:60], 5, 64, framing.Padded),
		"padding":       fakedc.CheckReply(append(body[:64:64], 1), 5, 64, framing.Intermediate),
		"too much pad":  fakedc.CheckReply(append(body[:64:64], make([]byte, 16)...), 5, 64, framing.Padded),
		"shorter asked": fakedc.CheckReply(body[:64], 5, 60, framing.Abridged),
	}
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, m := range []fakedc.Mode{fakedc.Echo, fakedc.Sink, fakedc.Source, fakedc.MTProto, fakedc.ReqResp} {
		if got, err := fakedc.ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := fakedc.ParseMode("nope"); err == nil {
		t.Error("unknown mode accepted")
	}
	for _, addr := range []string{"192.0.2.1:0", "localhost:0", "0.0.0.0:0", "nonsense"} {
		if s, err := fakedc.Start(fakedc.Config{Addr: addr}); err == nil {
			s.Close()
			t.Errorf("listening on %s accepted", addr)
		}
	}
	s := start(t, fakedc.Config{Addr: "[::1]:0"})
	if host, _, _ := net.SplitHostPort(s.Addr()); host != "::1" {
		t.Errorf("listening on %s, want ::1", s.Addr())
	}
}
