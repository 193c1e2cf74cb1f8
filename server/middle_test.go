package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/server"
)

var (
	testProxySecret = bytes.Repeat([]byte("proxy-secret-for-tests!!"), 4)
	testAdTag, _    = hex.DecodeString("0123456789abcdef0123456789abcdef")
)

// startMe starts a fake middle proxy that is closed with the test.
func startMe(t testing.TB, cfg fakeme.Config) *fakeme.Server {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testProxySecret
	}
	me, err := fakeme.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { me.Close() })
	return me
}

// proxyConfigTo is a proxy-multi.conf sending every DC to addr.
func proxyConfigTo(t testing.TB, addr string) *proxyconf.Config {
	t.Helper()
	conf, err := proxyconf.Parse("test.conf", []byte(fmt.Sprintf("proxy_for 2 %s;\nproxy_for -2 %s;\ndefault 2;\n", addr, addr)))
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// startMiddleProxy runs a server in middle-proxy mode towards the fake
// middle proxy at meAddr. cfg.Middle may preset anything but the config.
func startMiddleProxy(t testing.TB, meAddr string, cfg server.Config) *proxy {
	t.Helper()
	if cfg.Middle == nil {
		cfg.Middle = &server.MiddleConfig{}
	}
	m := *cfg.Middle
	m.ProxyConfig = proxyConfigTo(t, meAddr)
	if m.Secret == nil {
		m.Secret = testProxySecret
	}
	if m.ReconnectDelay == 0 {
		m.ReconnectDelay = 20 * time.Millisecond
	}
	cfg.Middle = &m
	return startProxy(t, "127.0.0.1:1", cfg)
}

// mtPacket is a client packet the middle-proxy check (§6.7) forwards: a
// non-zero auth_key_id and at least 56 bytes.
func mtPacket(n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	p[0] |= 1
	return p
}

// writePacket frames p for f, asking for a quick ack if ack.
func writePacket(w io.Writer, f framing.Framing, p []byte, ack bool) error {
	h, err := f.AppendHeader(nil, len(p))
	if err != nil {
		return err
	}
	if ack {
		if f == framing.Abridged {
			h[0] |= 0x80
		} else {
			h[3] |= 0x80
		}
	}
	_, err = w.Write(append(h, p...))
	return err
}

// readPacket reads one framed packet, cutting a padded one's 0–3 bytes of
// padding.
func readPacket(r io.Reader, f framing.Framing) ([]byte, error) {
	n, _, err := f.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	return p[:n&^3], nil
}

// echoPacket sends msg and reads its echo. The write runs alongside the
// read, since msg may exceed what the socket buffers hold, and is waited
// for, so that the caller's next write does not overlap it.
func echoPacket(c io.ReadWriter, f framing.Framing, msg []byte) ([]byte, error) {
	written := make(chan error, 1)
	go func() { written <- writePacket(c, f, msg, false) }()
	got, err := readPacket(c, f)
	if err != nil {
		return nil, err // the writer ends when the test closes c
	}
	return got, <-written
}

var allFramings = []framing.Framing{framing.Abridged, framing.Intermediate, framing.Padded}

// TestMiddleEcho: packets of every framing go out as RPC_PROXY_REQ with
// the official's flags and the ad tag, and the middle proxy's answers
// come back framed for each client.
func TestMiddleEcho(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 2, Middle: &server.MiddleConfig{AdTag: testAdTag}})
	for _, f := range allFramings {
		for _, dcIndex := range []int16{2, -2, 7} {
			c := dial(t, p.addr, f.Tag(), dcIndex)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for _, n := range []int{56, 1000, 4 * 127, 300_000} {
				msg := mtPacket(n)
				got, err := echoPacket(c, f, msg)
				if err != nil {
					t.Fatalf("%v dc %d len %d: %v", f, dcIndex, n, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("%v dc %d len %d: echo differs", f, dcIndex, n)
				}
			}
			c.Close()
		}
	}
	st := p.stats(t)
	if st.HandshakesOK != 9 || st.MPRequests != 36 || st.MPAnswers != 36 || st.MPConnected == 0 {
		t.Errorf("counters %+v, want 9 handshakes, 36 requests and answers", st)
	}
	if got := me.AdTags()[hex.EncodeToString(testAdTag)]; got != 36 {
		t.Errorf("%d requests carried the ad tag, want 36 (%v)", got, me.AdTags())
	}
	flags := me.Flags()
	if flags[0x40021008] != 12 || flags[0x20021008] != 24 {
		t.Errorf("flags %x, want 12 × 0x40021008 (abridged) and 24 × 0x20021008 (intermediate, padded)", flags)
	}
}

// TestMiddleFlags: unencrypted handshake packets and quick-ack requests
// get their flags, and packets that are not MTProto are dropped with the
// client kept.
func TestMiddleFlags(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))

	// req_pq_multi with auth_key_id 0: auth_key_id, msg_id, length 20,
	// constructor, nonce.
	reqPQ := make([]byte, 40)
	binary.LittleEndian.PutUint32(reqPQ[16:], 20)
	binary.LittleEndian.PutUint32(reqPQ[20:], 0xbe7e8ef1)
	junk := make([]byte, 40) // auth_key_id 0 and no known constructor
	acked := mtPacket(64)
	for _, pk := range []struct {
		p   []byte
		ack bool
	}{{junk, false}, {reqPQ, false}, {acked, true}} {
		if err := writePacket(c, framing.Intermediate, pk.p, pk.ack); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]byte{reqPQ, acked} {
		got, err := readPacket(c, framing.Intermediate)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("answer %x, %v; want %x", got, err, want)
		}
	}
	flags := me.Flags()
	if flags[0x20021002] != 1 || flags[0xa0021000] != 1 || len(flags) != 2 {
		t.Errorf("flags %x, want 0x20021002 (unencrypted) and 0xa0021000 (quick ack) once each", flags)
	}
	if st := p.stats(t); st.MPDropped != 1 || st.MPRequests != 2 {
		t.Errorf("counters %+v, want 1 dropped and 2 requests", st)
	}
}

// TestMiddleManyClients: a thousand clients share the few RPC connections
// of two reactors and each gets exactly its own bytes back.
func TestMiddleManyClients(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 2, Middle: &server.MiddleConfig{ConnsPerTarget: 2}})
	const clients = 1000
	conns := make([]*tgclient.RawConn, clients)
	for i := range conns {
		conns[i] = dial(t, p.addr, allFramings[i%3].Tag(), 2)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			f := allFramings[i%3]
			c.SetDeadline(time.Now().Add(30 * time.Second))
			for round := range 3 {
				msg := mtPacket(64 + 4*(i%50))
				binary.LittleEndian.PutUint32(msg[8:], uint32(i))
				binary.LittleEndian.PutUint32(msg[12:], uint32(round))
				if err := writePacket(c, f, msg, false); err != nil {
					errs <- err
					return
				}
				got, err := readPacket(c, f)
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("client %d round %d got another client's bytes", i, round)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := me.Stats(); st.HandshakesOK > 4 || st.Requests != 3*clients {
		t.Errorf("fake middle proxy saw %d RPC connections and %d requests, want at most 4 and %d", st.HandshakesOK, st.Requests, 3*clients)
	}
	waitFor(t, "clients to close", func() bool { return p.Clients() == 0 })
	waitFor(t, "RPC_CLOSE_CONN for every client", func() bool { return me.Stats().Closes == clients })
}

// TestMiddleSlowClient: a client that does not read is closed at its queue
// bound, and another client on the same RPC connection goes on.
func TestMiddleSlowClient(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1, Middle: &server.MiddleConfig{ConnsPerTarget: 1, ClientQueueLimit: 1 << 20}})
	slow := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	fast := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	msg := mtPacket(256 << 10)
	go func() {
		for range 64 { // 16 MiB echoed to a client that never reads
			if writePacket(slow, framing.Intermediate, msg, false) != nil {
				return
			}
		}
	}()
	waitFor(t, "the slow client to be closed", func() bool { return p.stats(t).MPOverflow == 1 })
	fast.SetDeadline(time.Now().Add(10 * time.Second))
	for range 10 {
		got, err := echoPacket(fast, framing.Intermediate, msg)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("fast client: %v", err)
		}
	}
	if st := me.Stats(); st.HandshakesOK != 1 {
		t.Errorf("%d RPC connections, want the one both clients share", st.HandshakesOK)
	}
}

// echoOnce sends one packet and checks it comes back.
func echoOnce(t testing.TB, c io.ReadWriter, f framing.Framing) error {
	t.Helper()
	msg := mtPacket(128)
	if err := writePacket(c, f, msg, false); err != nil {
		return err
	}
	got, err := readPacket(c, f)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs")
	}
	return nil
}

// TestMiddleRestart: when the middle proxy goes away its clients are closed
// cleanly, and once it is back new clients are served again.
func TestMiddleRestart(t *testing.T) {
	goroutines, fds := resources(t)
	t.Cleanup(func() { waitNoLeak(t, goroutines, fds) }) // runs last, after the servers stop
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	addr := me.Addr()
	p := startMiddleProxy(t, addr, server.Config{Loops: 2, DialTimeout: 5 * time.Second})
	var clients []*tgclient.RawConn
	for range 10 {
		c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := echoOnce(t, c, framing.Intermediate); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	me.Close()
	for _, c := range clients {
		expectClosed(t, c, 5*time.Second)
	}
	if st := p.stats(t); st.MPClientsLost != 10 || st.MPLost == 0 {
		t.Errorf("counters %+v, want 10 clients lost with their connections", st)
	}
	if p.logs.FilterMessage("middle-proxy connection lost").Len() == 0 {
		t.Error("no log line for the lost connection")
	}

	// Back on the same address: the pool reconnects by itself.
	startMe(t, fakeme.Config{Mode: fakeme.Echo, Addr: addr})
	c := dial(t, p.addr, framing.Abridged.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, c, framing.Abridged); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	c.Close()
	waitFor(t, "clients to close", func() bool { return p.Clients() == 0 })
}

// TestMiddleWrongSecret: a middle proxy with another secret fails the
// handshake with a log line that says so; clients waiting for a connection
// are closed after the dial timeout, and reconnects back off.
func TestMiddleWrongSecret(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo, Secret: bytes.Repeat([]byte("another secret!!"), 4)})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1, DialTimeout: 300 * time.Millisecond,
		Middle: &server.MiddleConfig{ConnsPerTarget: 1, ReconnectDelay: 50 * time.Millisecond}})
	c := dial(t, p.addr, framing.Padded.Tag(), 2)
	go writePacket(c, framing.Padded, mtPacket(64), false)
	expectClosed(t, c, 5*time.Second)
	waitFor(t, "a log line naming the secret", func() bool {
		for _, e := range p.logs.FilterMessage("middle-proxy handshake failed").All() {
			for _, f := range e.Context {
				if f.Key == "error" && bytes.Contains([]byte(f.Interface.(error).Error()), []byte("wrong proxy secret")) {
					return true
				}
			}
		}
		return false
	})
	st := p.stats(t)
	if st.MPNoConn != 1 || st.MPConnected != 0 || st.MPFailed == 0 {
		t.Errorf("counters %+v, want a client closed for want of a connection and failed handshakes", st)
	}
	// 50 ms growing ×1.5: about 6 attempts in the first second, not the
	// official's hundreds (protocol.md §14).
	time.Sleep(time.Second)
	if n := me.Stats().Conns; n > 12 {
		t.Errorf("%d connection attempts in about a second; reconnects do not back off", n)
	}
}

// TestMiddleResets: a middle proxy that resets every connection during the
// handshake costs failed attempts, never a panic or a leak.
func TestMiddleResets(t *testing.T) {
	goroutines, fds := resources(t)
	t.Cleanup(func() { waitNoLeak(t, goroutines, fds) })
	p := startMiddleProxy(t, resetter(t, 16), server.Config{Loops: 1, DialTimeout: 300 * time.Millisecond,
		Middle: &server.MiddleConfig{ReconnectDelay: 10 * time.Millisecond}})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	expectClosed(t, c, 5*time.Second)
	if st := p.stats(t); st.MPFailed == 0 || st.MPNoConn != 1 {
		t.Errorf("counters %+v", st)
	}
}

// TestGotdClientThroughMiddleProxy runs gotd/td's client through our proxy
// in middle-proxy mode, the fake middle proxy in forward mode and gotd's
// tgtest behind it: auth key exchange and RPCs with verified uploads and
// downloads, for classic, dd and fake-TLS secrets; the ad tag arrives
// with every request.
func TestGotdClientThroughMiddleProxy(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.MTProto, Plain: true})
	me := startMe(t, fakeme.Config{Mode: fakeme.Forward, ForwardAddr: d.Addr()})
	site := startSite(t)
	plain := startMiddleProxy(t, me.Addr(), server.Config{Loops: 2, Middle: &server.MiddleConfig{AdTag: testAdTag}})
	tls := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1, Domains: []string{tlsDomain}, FrontingAddr: site.addr,
		Middle: &server.MiddleConfig{AdTag: testAdTag}})
	cases := []struct {
		name      string
		p         *proxy
		transport tgclient.Transport
		secret    tgclient.Secret
	}{
		{"abridged", plain, tgclient.Abridged, tgclient.Secret{Key: testKey}},
		{"intermediate", plain, tgclient.Intermediate, tgclient.Secret{Key: testKey}},
		{"dd", plain, tgclient.PaddedIntermediate, tgclient.Secret{Key: testKey, DD: true}},
		{"ee", tls, tgclient.PaddedIntermediate, tgclient.Secret{Key: testKey, Domain: tlsDomain}},
	}
	t.Run("clients", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				err := tgclient.Run(ctx, tgclient.Config{
					ProxyAddr: tc.p.addr,
					Secret:    tc.secret,
					Transport: tc.transport,
					PublicKey: d.PublicKey(),
					Workload:  tgclient.Workload{Parts: 3, PartSize: 40 << 10, Seed: uint64(i)},
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	st := me.Stats()
	if st.Requests == 0 || me.AdTags()[hex.EncodeToString(testAdTag)] != st.Requests {
		t.Errorf("%d requests, %v with ad tags: want every request tagged", st.Requests, me.AdTags())
	}
	flags := me.Flags()
	for _, f := range []uint32{0x40021008, 0x20021008, 0x4002100a, 0x2002100a} {
		if flags[f] == 0 {
			t.Errorf("no request with flags %#x (%x)", f, flags)
		}
	}
	for _, ci := range d.Conns() {
		if ci.Err != nil || ci.Tag != fakedc.TagIntermediate {
			t.Errorf("MTProto server saw %v, want plain intermediate", ci)
		}
	}
	for _, p := range []*proxy{plain, tls} {
		if st := p.stats(t); st.MPRequests == 0 || st.MPAnswers == 0 || st.HandshakesBad != 0 || st.Fronted != 0 {
			t.Errorf("proxy counters %+v", st)
		}
	}
}

// TestMiddleBadChecksum: a frame with a bad checksum fails its RPC
// connection with a log line that says so; the clients on it are closed
// and new clients are served on a new connection.
func TestMiddleBadChecksum(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo, CorruptAnswer: 3})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1, Middle: &server.MiddleConfig{ConnsPerTarget: 1}})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for range 2 {
		if err := echoOnce(t, c, framing.Intermediate); err != nil {
			t.Fatal(err)
		}
	}
	go writePacket(c, framing.Intermediate, mtPacket(64), false)
	expectClosed(t, c, 5*time.Second)
	waitFor(t, "a log line naming the checksum", func() bool {
		for _, e := range p.logs.FilterMessage("middle-proxy connection lost").All() {
			for _, f := range e.Context {
				if f.Key == "error" && bytes.Contains([]byte(f.Interface.(error).Error()), []byte("checksum mismatch")) {
					return true
				}
			}
		}
		return false
	})
	c = dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, c, framing.Intermediate); err != nil {
		t.Fatalf("after the bad frame: %v", err)
	}
	if st := p.stats(t); st.MPLost != 1 || st.MPClientsLost != 1 || st.MPConnected != 2 {
		t.Errorf("counters %+v, want one connection lost with its client, and a second one", st)
	}
}

// TestMiddleRecoversFast: once the middle proxy is back, a new client is
// served within a second even though the back-off has grown: a waiting
// client brings the reconnect forward.
func TestMiddleRecoversFast(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	addr := me.Addr()
	p := startMiddleProxy(t, addr, server.Config{Loops: 1, DialTimeout: 3 * time.Second,
		Middle: &server.MiddleConfig{ConnsPerTarget: 1, ReconnectDelay: 5 * time.Second}})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, c, framing.Intermediate); err != nil {
		t.Fatal(err)
	}
	me.Close()
	expectClosed(t, c, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // the first reconnect fails; the next is 5 s away
	startMe(t, fakeme.Config{Mode: fakeme.Echo, Addr: addr})
	back := time.Now()
	c = dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, c, framing.Intermediate); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(back); e > time.Second {
		t.Errorf("served %v after the middle proxy came back", e)
	}
}

// TestSetMiddleProxy: a new config sends new clients to the new middle
// proxy while an open client stays on the old one; the old connection
// closes once its last client has gone.
func TestSetMiddleProxy(t *testing.T) {
	me1 := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	me2 := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me1.Addr(), server.Config{Loops: 1, HandshakeTimeout: 200 * time.Millisecond,
		Middle: &server.MiddleConfig{ConnsPerTarget: 1}})
	a := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	a.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, a, framing.Intermediate); err != nil {
		t.Fatal(err)
	}
	if err := p.SetMiddleProxy(proxyConfigTo(t, me2.Addr()), testProxySecret); err != nil {
		t.Fatal(err)
	}
	// The loop applies it at its next sweep (every 50 ms here).
	waitFor(t, "a new client served by the new middle proxy", func() bool {
		b := dial(t, p.addr, framing.Intermediate.Tag(), 2)
		defer b.Close()
		b.SetDeadline(time.Now().Add(5 * time.Second))
		return echoOnce(t, b, framing.Intermediate) == nil && me2.Stats().Requests > 0
	})
	before := me1.Stats().Requests
	if err := echoOnce(t, a, framing.Intermediate); err != nil {
		t.Fatalf("the open client after the change: %v", err)
	}
	if me1.Stats().Requests != before+1 {
		t.Error("the open client's request did not go to its own middle proxy")
	}
	a.Close()
	waitFor(t, "the old middle-proxy connection to close", func() bool { return p.snapshot(t).MPReady == 1 })
	if err := p.SetMiddleProxy(nil, testProxySecret); err == nil {
		t.Error("a missing config was accepted")
	}
	if err := p.SetMiddleProxy(proxyConfigTo(t, me2.Addr()), []byte("short")); err == nil {
		t.Error("a short secret was accepted")
	}
}

// TestMiddleSlowReaderPaused: a client whose answers pile up stops being
// read, so it asks for no more; nothing is lost and nothing closed, and
// once it reads it gets every answer in order.
func TestMiddleSlowReaderPaused(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	const n = 400 // 64 KiB each: 25 MiB asked for while not reading
	sent := make([][]byte, n)
	for i := range sent {
		sent[i] = mtPacket(64 << 10)
	}
	go func() {
		for _, msg := range sent {
			if writePacket(c, framing.Intermediate, msg, false) != nil {
				return
			}
		}
	}()
	waitFor(t, "the client to be paused", func() bool { return p.stats(t).Pauses > 0 })
	time.Sleep(300 * time.Millisecond)
	// What it asked for before the pause took effect is still answered:
	// a few MiB, more on a loaded machine, far from the 25 MiB it sent.
	if snap := p.snapshot(t); snap.QueuedBytes > 8<<20 || snap.MPOverflow != 0 {
		t.Errorf("queued %d bytes, %d closed for overflow: want the client's input paused instead", snap.QueuedBytes, snap.MPOverflow)
	}
	for i, want := range sent {
		got, err := readPacket(c, framing.Intermediate)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("answer %d differs", i)
		}
	}
}
