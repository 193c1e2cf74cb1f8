package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gotdobfs "github.com/gotd/td/mtproxy/obfuscated2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/internal/testnet"
	"github.com/mtproxy-go/mtproxy/server"
	"github.com/mtproxy-go/mtproxy/stats"
)

var testKey = [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

var allTags = []uint32{fakedc.TagAbridged, fakedc.TagIntermediate, fakedc.TagPaddedIntermediate}

// proxy is a server under test with its log.
type proxy struct {
	*server.Server
	addr string
	logs *observer.ObservedLogs
}

// startFakeDC starts a fake DC that is closed with the test.
func startFakeDC(t testing.TB, cfg fakedc.Config) *fakedc.Server {
	t.Helper()
	d, err := fakedc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// tableTo sends DCs 1–5 (and so their media DCs and unknown indexes) to addr.
func tableTo(t testing.TB, addr string) *dc.Table {
	t.Helper()
	table := dc.Default()
	for id := 1; id <= 5; id++ {
		if err := table.Override(id, addr); err != nil {
			t.Fatal(err)
		}
	}
	return table
}

// startProxy runs a server on 127.0.0.1:0 towards dcAddr. cfg may preset
// anything but Listen, Logger and DCs.
func startProxy(t testing.TB, dcAddr string, cfg server.Config) *proxy {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.Logger = zap.New(core)
	cfg.DCs = tableTo(t, dcAddr)
	if cfg.Secrets == nil {
		cfg.Secrets = [][16]byte{{1}, testKey}
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case <-srv.Ready():
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &proxy{Server: srv, addr: srv.Addrs()[0].String(), logs: logs}
}

func (p *proxy) stats(t testing.TB) stats.Counters {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dial(t testing.TB, addr string, tag uint32, dcIndex int16) *tgclient.RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRaw(ctx, addr, testKey, tag, dcIndex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEchoThroughProxy(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	// One reactor with four streams per pair, two in fast mode (the DC
	// enciphers for the client itself).
	for _, cfg := range []server.Config{{Loops: 1}, {Loops: 2, FastMode: true}} {
		loops := cfg.Loops
		p := startProxy(t, d.Addr(), cfg)
		for _, tag := range allTags {
			for _, dcIndex := range []int16{2, -4, 999} {
				c := dial(t, p.addr, tag, dcIndex)
				msg := make([]byte, 100_000)
				rand.Read(msg)
				go c.Write(msg)
				got := make([]byte, len(msg))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("loops %d tag %x dc %d: %v", loops, tag, dcIndex, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("loops %d tag %x dc %d: echo differs", loops, tag, dcIndex)
				}
				c.Close()
			}
		}
		st := p.stats(t)
		if st.HandshakesOK != 9 || st.UnknownDC != 3 || st.DCConnected != 9 || st.ClientBytes != 9*100_000 {
			t.Errorf("loops %d: counters %+v, want 9 handshakes, 3 unknown DCs, 9 DC connections, 900000 client bytes", loops, st)
		}
	}
	// The DC saw the client's tag and DC index (an unknown index is kept:
	// only the address falls back to the default DC).
	seen := map[[2]int64]bool{}
	for _, ci := range d.Conns() {
		if ci.Err != nil {
			t.Fatalf("fake DC refused a proxy header: %v", ci.Err)
		}
		seen[[2]int64{int64(ci.Tag), int64(ci.DC)}] = true
	}
	for _, tag := range allTags {
		for _, dcIndex := range []int16{2, -4, 999} {
			if !seen[[2]int64{int64(tag), int64(dcIndex)}] {
				t.Errorf("DC never saw tag %x dc %d", tag, dcIndex)
			}
		}
	}
}

// TestSecretless: with no secret configured the proxy takes the header's
// key material as is, like the official proxy without -S.
func TestSecretless(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1, Secrets: [][16]byte{}, HandshakeTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRawSecretless(ctx, p.addr, fakedc.TagIntermediate, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("secretless"))
	got := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "secretless" {
		t.Fatalf("echo %q, %v", got, err)
	}
	// A client with a secret is not understood.
	k := dial(t, p.addr, fakedc.TagIntermediate, 2)
	k.Write([]byte("keyed"))
	expectClosed(t, k, 5*time.Second)
}

func TestUnknownDCIsLogged(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1})
	c := dial(t, p.addr, fakedc.TagPaddedIntermediate, 777)
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if p.logs.FilterMessageSnippet("unknown DC").Len() != 1 {
		t.Fatalf("want one log line about the unknown DC, got %v", p.logs.All())
	}
}

// TestBulkBothWays pushes 64 MiB each way through the proxy on several
// clients at once and checks every byte.
func TestBulkBothWays(t *testing.T) {
	const size = 64 << 20
	const clients = 3
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, FastMode: true})
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	start := time.Now()
	for i := range clients {
		c := dial(t, p.addr, allTags[i%len(allTags)], 2)
		seed := uint64(100 + i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := io.Copy(c, io.LimitReader(fakedc.NewPattern(seed), size)); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			v := fakedc.NewVerifier(seed)
			if _, err := io.CopyN(v, c, size); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d MiB each way on %d clients in %v", size>>20, clients, time.Since(start))
	if st := p.stats(t); st.ClientBytes != clients*size || st.DCBytes != clients*size {
		t.Fatalf("counted %d client and %d DC bytes, want %d each", st.ClientBytes, st.DCBytes, clients*size)
	}
}

// TestBackpressure has the DC push 256 MiB to a client that reads slowly:
// the proxy must stop reading the DC instead of buffering, and deliver
// every byte.
func TestBackpressure(t *testing.T) {
	const size = 256 << 20
	const seed = 7
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Source, SourceBytes: size, Seed: seed})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1})

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse

	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()

	c := dial(t, p.addr, fakedc.TagIntermediate, 2)
	v := fakedc.NewVerifier(seed)
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(3 * time.Minute))
	start := time.Now()
	for v.Verified() < size {
		n, err := c.Read(buf[:min(len(buf), int(size-v.Verified()))])
		if _, verr := v.Write(buf[:n]); verr != nil {
			t.Fatal(verr)
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", v.Verified(), err)
		}
		// Slow (under 64 MB/s) for the first 48 MiB, so the proxy has to
		// hold the DC back for about a second; then as fast as it can check.
		if v.Verified() < 48<<20 {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	<-sampled
	growth := int64(peak) - int64(baseline)
	t.Logf("256 MiB in %v; heap in use grew by %.1f MiB", time.Since(start), float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d MiB while relaying to a slow reader, want < 16 MiB", growth>>20)
	}
	st := p.stats(t)
	t.Logf("the DC was paused %d times", st.Pauses)
	if st.Pauses == 0 || st.DCBytes != size {
		t.Fatalf("counters %+v: want pauses and %d DC bytes", st, size)
	}
}

// resources counts what a leak would leave behind. gnet's goroutine pool
// (Enroll runs there) is not counted: it keeps idle workers for ten seconds
// after a burst of dials, and its housekeeping comes and goes with them.
// Nor are the loops' tickers: one per loop, started with the loop's first
// client, for the server's life.
func resources(t testing.TB) (goroutines, fds int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	_, stacks, _ := strings.Cut(b.String(), "\n") // after "goroutine profile: total N"
	for _, stack := range strings.Split(stacks, "\n\n") {
		var n int
		if _, err := fmt.Sscanf(stack, "%d @", &n); err == nil && !strings.Contains(stack, "/ants/v2.") && !strings.Contains(stack, "server.(*loop).tick") {
			goroutines += n
		}
	}
	return goroutines, len(entries)
}

func waitNoLeak(t testing.TB, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := resources(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("leak: goroutines %d → %d, fds %d → %d\n%s", goroutines, g, fds, f, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectClosed reads from c until the proxy closes it, failing if any byte
// arrives or it stays open past the deadline.
func expectClosed(t testing.TB, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	n, err := c.Read(make([]byte, 1))
	if n > 0 {
		t.Fatal("proxy answered a bad client")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
}

func TestBadClients(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, HandshakeTimeout: 300 * time.Millisecond})
	// Warm up so that lazily started goroutines (loop sweepers, gnet's
	// worker pool) are in the baseline.
	warm := dial(t, p.addr, fakedc.TagAbridged, 2)
	warm.Write([]byte("warm"))
	io.ReadFull(warm, make([]byte, 4))
	warm.Close()
	waitFor(t, "warm-up client gone", func() bool { return p.Clients() == 0 })
	g0, f0 := resources(t)

	t.Run("wrong secret is swallowed until the handshake timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := tgclient.DialRaw(ctx, p.addr, [16]byte{0xba, 0xd}, fakedc.TagPaddedIntermediate, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write(bytes.Repeat([]byte{1}, 10_000)) // swallowed, never relayed
		expectClosed(t, c, 5*time.Second)
		if e := time.Since(start); e < 200*time.Millisecond {
			t.Fatalf("closed after %v, before the handshake timeout", e)
		}
		if p.logs.FilterMessageSnippet("matches no secret").Len() == 0 {
			t.Fatal("no log line for the bad header")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		junk := make([]byte, 4096)
		rand.Read(junk)
		c.Write(junk)
		expectClosed(t, c, 5*time.Second)
	})
	t.Run("truncated header", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(make([]byte, 30))
		expectClosed(t, c, 5*time.Second)
	})
	t.Run("silent client", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosed(t, c, 5*time.Second)
	})
	t.Run("reset mid-stream", func(t *testing.T) {
		c := dial(t, p.addr, fakedc.TagIntermediate, 2)
		go io.Copy(io.Discard, c)
		chunk := make([]byte, 256<<10)
		for range 20 {
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		c.Conn.(*net.TCPConn).SetLinger(0)
		c.Close() // RST
	})
	t.Run("DC refuses", func(t *testing.T) {
		q := startProxy(t, testnet.RefusedAddr(t), server.Config{Loops: 1})
		c := dial(t, q.addr, fakedc.TagPaddedIntermediate, 2)
		c.Write([]byte("hello"))
		expectClosed(t, c, 5*time.Second)
		if q.logs.FilterMessageSnippet("cannot connect to DC").Len() != 1 {
			t.Fatalf("want one log line for the refused DC, got %v", q.logs.All())
		}
		if st := q.stats(t); st.DCFailed != 1 || st.DCConnected != 0 {
			t.Fatalf("counters %+v, want one failed DC connection", st)
		}
		c.Close()
		waitFor(t, "client count back to 0", func() bool { return q.Clients() == 0 })
	})

	waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
	waitNoLeak(t, g0, f0)
	// Bad header: wrong secret and garbage. Timeouts: those two, the
	// truncated header and the silent client.
	if st := p.stats(t); st.HandshakesBad != 2 || st.HandshakeTimeouts != 4 {
		t.Fatalf("counters %+v, want 2 bad handshakes and 4 handshake timeouts", st)
	}
}

func TestIdleTimeout(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1, IdleTimeout: 300 * time.Millisecond})
	c := dial(t, p.addr, fakedc.TagAbridged, 2)
	c.Write([]byte("abcd"))
	io.ReadFull(c, make([]byte, 4))
	start := time.Now()
	expectClosed(t, c, 5*time.Second)
	if e := time.Since(start); e < 250*time.Millisecond {
		t.Fatalf("idle pair closed after %v", e)
	}
	waitFor(t, "DC side closed", func() bool { return p.Clients() == 0 })
	if st := p.stats(t); st.IdleTimeouts != 1 {
		t.Fatalf("counters %+v, want one idle timeout", st)
	}
}

func TestConnectionLimit(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1, MaxConnections: 2})
	for i := range 2 {
		c := dial(t, p.addr, fakedc.TagAbridged, 2)
		c.Write([]byte("1234"))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("client %d under the limit: %v", i, err)
		}
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, 5*time.Second)
	if p.logs.FilterMessageSnippet("connection limit").Len() != 1 {
		t.Fatal("no log line for the refused connection")
	}
	if st := p.stats(t); st.Accepted != 3 || st.OverLimit != 1 {
		t.Fatalf("counters %+v, want 3 accepted, 1 over the limit", st)
	}
}

// TestHeaderSplitAcrossReads feeds the client's header and first bytes to
// the proxy one byte per TCP segment.
func TestHeaderSplitAcrossReads(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 1})
	// A relay in front of the proxy that trickles the first 100 bytes.
	front := listenOnce(t, func(c net.Conn) {
		up, err := net.Dial("tcp", p.addr)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(c, up)
		one := make([]byte, 1)
		for range 100 {
			if _, err := io.ReadFull(c, one); err != nil {
				return
			}
			up.Write(one)
			time.Sleep(2 * time.Millisecond)
		}
		io.Copy(up, c)
	})
	c := dial(t, front, fakedc.TagPaddedIntermediate, 2)
	msg := []byte("split header, then this message")
	c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// TestDCClosesFirst: a DC sends its last bytes and closes while the proxy
// still holds a backlog for a client that is not reading yet; the client
// receives every byte, then its connection closes.
func TestDCClosesFirst(t *testing.T) {
	const size = 16 << 20 // more than the kernel buffers hold
	dcAddr := listenOnce(t, func(c net.Conn) {
		dcSide, _, err := gotdobfs.Accept(c, nil)
		if err != nil {
			return
		}
		io.Copy(dcSide, io.LimitReader(fakedc.NewPattern(5), size))
	})
	// A high watermark above size: the DC is never paused, and so the proxy
	// reads its EOF while still holding most of its bytes.
	p := startProxy(t, dcAddr, server.Config{Loops: 1, HighWatermark: 2 * size})
	// A front relay with a small receive buffer reads nothing from the
	// proxy for a while, so the bytes wait in the proxy when the DC closes.
	front := listenOnce(t, func(c net.Conn) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
			})
		}}
		up, err := d.Dial("tcp", p.addr)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, c)
		time.Sleep(300 * time.Millisecond)
		io.Copy(c, up)
	})
	c := dial(t, front, fakedc.TagAbridged, 2)
	v := fakedc.NewVerifier(5)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(v, c); err != nil {
		t.Fatal(err)
	}
	if v.Verified() != size {
		t.Fatalf("client got %d of %d bytes before the close", v.Verified(), size)
	}
	if p.logs.FilterMessageSnippet("delivering queued bytes").Len() != 1 {
		t.Fatal("the proxy held no backlog when the DC closed: the test did not exercise draining")
	}
	waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
}

// listenOnce serves connections on 127.0.0.1 with serve until the test ends,
// closing each when serve returns.
func listenOnce(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}
