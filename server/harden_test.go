package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/server"
)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// baseline starts the resource accounting of a flood test: goroutines,
// fds and heap once the proxy is warm. The returned check waits for all
// three to come back.
func baseline(t *testing.T, p *proxy, warm func()) (check func()) {
	t.Helper()
	warm()
	waitFor(t, "warm-up clients gone", func() bool { return p.Clients() == 0 })
	g0, f0 := resources(t)
	h0 := heapInUse()
	return func() {
		t.Helper()
		waitFor(t, "clients gone", func() bool { return p.Clients() == 0 })
		waitNoLeak(t, g0, f0)
		// Chunk pools and gnet's buffers keep a little; a leak of a
		// session per connection would be megabytes.
		if h := heapInUse(); h > h0+8<<20 {
			t.Errorf("heap in use %d MiB after the flood, %d MiB before", h>>20, h0>>20)
		}
	}
}

// warmEcho makes a round trip on four clients at once, so that the loops
// of the proxies below have their state before the baseline is taken.
func warmEcho(t *testing.T, addr string) func() {
	return func() {
		var conns []*tgclient.RawConn
		for range 4 {
			c := dial(t, addr, fakedc.TagIntermediate, 2)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			echo(t, c, 100)
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestSlowloris: connections that trickle one byte at a time never finish
// a header and are all closed at the handshake timeout; memory, goroutines
// and fds come back.
func TestSlowloris(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, HandshakeTimeout: time.Second})
	check := baseline(t, p, warmEcho(t, p.addr))
	n := 1000
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	// One byte per connection every 200 ms until the proxy hangs up.
	open := n
	for round := 0; open > 0 && time.Since(start) < 10*time.Second; round++ {
		open = 0
		for i, c := range conns {
			if c == nil {
				continue
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte{byte(round)}); err != nil || round > 12 {
				c.Close()
				conns[i] = nil
				continue
			}
			open++
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	waitFor(t, "every trickling client closed", func() bool { return p.stats(t).HandshakeTimeouts == uint64(n) })
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("closing %d trickling clients took %v with a 1 s handshake timeout", n, e)
	}
	check()
}

// TestFloodGarbage: connections that send garbage and leave cost nothing
// lasting.
func TestFloodGarbage(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2, HandshakeTimeout: time.Second})
	check := baseline(t, p, warmEcho(t, p.addr))
	n := 2000
	parallel(t, n, 64, func(i int) error {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		junk := make([]byte, 64+i%200)
		rand.Read(junk)
		_, err = c.Write(junk)
		return err
	})
	waitFor(t, "every garbage header counted", func() bool { return p.stats(t).HandshakesBad == uint64(n) })
	check()
}

// TestFloodHandshakeReset: valid clients that reset right after their
// header, while their DC connection is on its way, leave no session, DC
// connection or fd behind.
func TestFloodHandshakeReset(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2})
	check := baseline(t, p, warmEcho(t, p.addr))
	n := 2000
	parallel(t, n, 64, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := tgclient.DialRaw(ctx, p.addr, testKey, fakedc.TagIntermediate, 2)
		if err != nil {
			return err
		}
		c.Write([]byte("bytes after the header"))
		c.Conn.(*net.TCPConn).SetLinger(0)
		return c.Close() // RST
	})
	waitFor(t, "every handshake counted", func() bool { return p.stats(t).HandshakesOK >= uint64(n) })
	waitFor(t, "DC connections closed", func() bool { return p.snapshot(t).DCConns == 0 })
	check()
}

// TestShortConnections: many short sessions, each with a verified round
// trip: no byte lost, nothing left behind. `make soak` runs these
// scenarios at full size against the binary (benchmarks/soak).
func TestShortConnections(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	p := startProxy(t, d.Addr(), server.Config{Loops: 2})
	check := baseline(t, p, warmEcho(t, p.addr))
	n := 3000
	var bytes atomic.Int64
	start := time.Now()
	parallel(t, n, 32, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := tgclient.DialRaw(ctx, p.addr, testKey, allTags[i%3], 2)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 1+i%4000)
		rand.Read(msg)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != string(msg) {
			return fmt.Errorf("connection %d: echo differs", i)
		}
		bytes.Add(int64(len(msg)))
		return nil
	})
	t.Logf("%d connections, %d bytes each way verified, %v (%.0f connections/s)", n, bytes.Load(),
		time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	check()
}

// parallel runs f(0..n-1) on workers goroutines and fails t on the first
// error.
func parallel(t *testing.T, n, workers int, f func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// blackHole returns a loopback address whose accept queue is full, so that
// connecting to it hangs until the dialer gives up.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; later SYNs are dropped.
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestDCFaults: a DC that refuses, resets mid-stream or black-holes
// costs its clients a clean close; once it is back, new clients are
// served at once.
func TestDCFaults(t *testing.T) {
	t.Run("black hole", func(t *testing.T) {
		p := startProxy(t, blackHole(t), server.Config{Loops: 1, DialTimeout: 300 * time.Millisecond})
		c := dial(t, p.addr, fakedc.TagIntermediate, 2)
		c.Write([]byte("lost in the hole"))
		start := time.Now()
		expectClosed(t, c, 5*time.Second)
		if e := time.Since(start); e < 200*time.Millisecond {
			t.Errorf("closed after %v, before the connect timeout", e)
		}
		if st := p.stats(t); st.DCFailed != 1 {
			t.Errorf("counters %+v", st)
		}
	})
	t.Run("reset mid-stream", func(t *testing.T) {
		p := startProxy(t, resetter(t, 64+1000), server.Config{Loops: 1}) // header and some data, then RST
		c := dial(t, p.addr, fakedc.TagIntermediate, 2)
		go c.Write(make([]byte, 100_000))
		expectClosed(t, c, 5*time.Second)
		waitFor(t, "the client gone", func() bool { return p.Clients() == 0 })
	})
	t.Run("refuses, then recovers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := startProxy(t, addr, server.Config{Loops: 1})
		c := dial(t, p.addr, fakedc.TagIntermediate, 2)
		c.Write([]byte("hello"))
		expectClosed(t, c, 5*time.Second)
		startFakeDC(t, fakedc.Config{Mode: fakedc.Echo, Addr: addr})
		recovered := time.Now()
		c = dial(t, p.addr, fakedc.TagIntermediate, 2)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		echo(t, c, 1000)
		if e := time.Since(recovered); e > time.Second {
			t.Errorf("first client served %v after the DC came back", e)
		}
	})
}

// resetter is a loopback address that resets each connection once it has
// read n bytes.
func resetter(t testing.TB, n int64) string {
	return listen(t, func(c net.Conn) {
		io.CopyN(io.Discard, c, n)
		c.(*net.TCPConn).SetLinger(0) // the close is a reset
	})
}
