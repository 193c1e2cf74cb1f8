package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/server"
	"github.com/mtproxy-go/mtproxy/stats"
)

var otherKey = [16]byte{0xfe, 0xed, 0xfa, 0xce}

func dialKey(t testing.TB, addr string, key [16]byte) *tgclient.RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRaw(ctx, addr, key, fakedc.TagIntermediate, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends n random bytes through c and checks they come back. The
// write runs alongside the read and is waited for, so that the caller's
// next write does not overlap it.
func echo(t testing.TB, c io.ReadWriter, n int) {
	t.Helper()
	msg := make([]byte, n)
	rand.Read(msg)
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		written <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

func (p *proxy) snapshot(t testing.TB) stats.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := p.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestSnapshot: after known traffic the snapshot's gauges and per-secret
// shares match it.
func TestSnapshot(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, Secrets: [][16]byte{testKey, otherKey}})
	a1, a2 := dialKey(t, p.addr, testKey), dialKey(t, p.addr, testKey)
	b := dialKey(t, p.addr, otherKey)
	for _, c := range []*tgclient.RawConn{a1, a2, b} {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	echo(t, a1, 1000)
	echo(t, a2, 3000)
	echo(t, b, 500)
	a2.Close()
	waitFor(t, "a closed client to be counted", func() bool { return p.snapshot(t).PerSecret[testKey].Active == 1 })
	snap := p.snapshot(t)
	if a := snap.PerSecret[testKey]; a.Handshakes != 2 || a.BytesIn != 4000 || a.BytesOut != 4000 {
		t.Errorf("first secret %+v, want 2 handshakes and 4000 bytes each way", a)
	}
	if o := snap.PerSecret[otherKey]; o.Handshakes != 1 || o.Active != 1 || o.BytesIn != 500 || o.BytesOut != 500 {
		t.Errorf("second secret %+v", o)
	}
	if snap.Clients != 2 || snap.DCConns != 2 || snap.Loops != 2 || snap.HandshakesOK != 3 {
		t.Errorf("gauges %+v, want 2 clients with 2 DC connections on 2 loops", snap)
	}
}

// TestSetSecrets: a replaced secret set applies to new clients only: a
// relaying client of a removed secret keeps going, the new secret works,
// the removed one is refused.
func TestSetSecrets(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1, Secrets: [][16]byte{testKey}, HandshakeTimeout: 300 * time.Millisecond})
	old := dialKey(t, p.addr, testKey)
	old.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, old, 100)
	if err := p.SetSecrets([][16]byte{otherKey}); err != nil {
		t.Fatal(err)
	}
	echo(t, old, 100_000) // the removed secret's client relays on
	c := dialKey(t, p.addr, otherKey)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, c, 100)
	gone := dialKey(t, p.addr, testKey)
	go gone.Write(make([]byte, 10))
	expectClosed(t, gone, 5*time.Second)
	if st := p.stats(t); st.HandshakesBad != 1 || st.HandshakesOK != 2 {
		t.Errorf("counters %+v, want the removed secret refused once", st)
	}
	if err := p.SetSecrets(nil); err == nil {
		t.Error("switched to secretless mode while running")
	}
}

// TestSetSecretsFakeTLS: fake TLS checks hellos against the new set.
func TestSetSecretsFakeTLS(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, Secrets: [][16]byte{otherKey}})
	if err := p.SetSecrets([][16]byte{{9}, testKey}); err != nil {
		t.Fatal(err)
	}
	rc, _ := tlsClient(t, tcpDial(t, p.addr), nil)
	rc.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, rc, 5000)
	if st := p.stats(t); st.TLSValid != 1 || st.Fronted != 0 {
		t.Errorf("counters %+v", st)
	}
}

// TestShutdownDrains: while draining, new clients are closed at once and
// open ones relay on; Shutdown returns when the last one leaves.
func TestShutdownDrains(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2})
	c := dial(t, p.addr, fakedc.TagIntermediate, 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, c, 100)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	waitFor(t, "a new client to be refused", func() bool {
		n := dial(t, p.addr, fakedc.TagIntermediate, 2)
		defer n.Close() // one accepted before Shutdown began must leave too
		n.SetReadDeadline(time.Now().Add(time.Second))
		_, err := n.Read(make([]byte, 1))
		return err == io.EOF || p.stats(t).Refused > 0
	})
	echo(t, c, 200_000)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned with a client open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last client left")
	}
}

// TestShutdownTimeout: clients still open at the deadline are closed.
func TestShutdownTimeout(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1})
	c := dial(t, p.addr, fakedc.TagIntermediate, 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, c, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("Shutdown took %v, want about the drain timeout", took)
	}
	expectClosed(t, c, 5*time.Second)
}

// TestMiddleSnapshot: middle-proxy connections and per-secret bytes.
func TestMiddleSnapshot(t *testing.T) {
	me := startMe(t, fakeme.Config{Mode: fakeme.Echo})
	p := startMiddleProxy(t, me.Addr(), server.Config{Loops: 1, Middle: &server.MiddleConfig{ConnsPerTarget: 2}})
	c := dial(t, p.addr, framing.Intermediate.Tag(), 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := echoOnce(t, c, framing.Intermediate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both RPC connections", func() bool { return p.snapshot(t).MPReady == 2 })
	sc := p.snapshot(t).PerSecret[testKey]
	// 128 bytes each way plus the 4-byte intermediate header.
	if sc.Active != 1 || sc.BytesIn != 132 || sc.BytesOut != 132 {
		t.Errorf("secret share %+v", sc)
	}
}

// TestPerIPLimit: connections over the per-IP cap are closed at once,
// other addresses are not affected, and a closed one frees its place.
func TestPerIPLimit(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, MaxConnectionsPerIP: 3})
	var conns []*tgclient.RawConn
	for range 3 {
		c := dial(t, p.addr, fakedc.TagIntermediate, 2)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		echo(t, c, 100)
		conns = append(conns, c)
	}
	over := dial(t, p.addr, fakedc.TagIntermediate, 2)
	expectClosed(t, over, 5*time.Second)

	// Another loopback address has its own count.
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	raw, err := nd.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tgclient.NewRawConn(context.Background(), raw, testKey, fakedc.TagIntermediate, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, other, 100)

	conns[0].Close()
	waitFor(t, "the closed client's place", func() bool { return p.Clients() == 3 })
	c := dial(t, p.addr, fakedc.TagIntermediate, 2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, c, 100)
	if st := p.stats(t); st.OverIPLimit != 1 {
		t.Errorf("%d refused over the per-IP cap, want 1", st.OverIPLimit)
	}
}

// TestBufferBudget: when clients that do not read make all buffers
// together pass the budget, the least recently active of them are closed,
// and a client that reads goes on.
func TestBufferBudget(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Source, SourceBytes: 1 << 30})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1, BufferBudget: 2 << 20, HandshakeTimeout: 400 * time.Millisecond})
	var stalled []*tgclient.RawConn
	for range 6 {
		stalled = append(stalled, dial(t, p.addr, fakedc.TagIntermediate, 2)) // never read
	}
	waitFor(t, "the budget to close stalled clients", func() bool { return p.stats(t).BudgetClosed > 0 })
	waitFor(t, "queued bytes under the budget", func() bool { return p.snapshot(t).QueuedBytes <= 2<<20 })
	// Three quarters of the budget left: some stalled clients stay.
	if n := p.stats(t).BudgetClosed; n >= uint64(len(stalled)) {
		t.Errorf("%d of %d stalled clients closed, want some but not all", n, len(stalled))
	}

	// A client that reads, newer than every stalled one: it is the most
	// recently active from now on, so the budget never picks it first.
	reader := dial(t, p.addr, fakedc.TagIntermediate, 2)
	var read atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := reader.Read(buf)
			read.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	waitFor(t, "the reading client to get data", func() bool { return read.Load() > 8<<20 })
	closed := 0
	for _, c := range stalled {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := io.Copy(io.Discard, c); err == nil {
			closed++
		}
	}
	if closed == 0 {
		t.Error("no stalled client was closed")
	}
	before := read.Load()
	waitFor(t, "the reading client to go on", func() bool { return read.Load() > before+1<<20 })
}
