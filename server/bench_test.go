package server_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/server"
)

const benchChunk = 64 << 10

// pump writes b.N chunks to c while reading as many back, and fails b on
// any error. Bytes are counted once (each way moves the same amount).
func pump(b *testing.B, c io.ReadWriter) {
	b.SetBytes(benchChunk)
	out := make([]byte, benchChunk)
	in := make([]byte, benchChunk)
	var wg sync.WaitGroup
	wg.Add(1)
	b.ResetTimer()
	go func() {
		defer wg.Done()
		for range b.N {
			if _, err := c.Write(out); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for left := b.N * benchChunk; left > 0; {
		n, err := c.Read(in[:min(len(in), left)])
		if err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	wg.Wait()
}

// BenchmarkEcho moves data both ways through one client–DC pair, the
// proxy's path next to a plain loopback copy relay (io.Copy, which splices
// on Linux), same client, same fake DC. The client runs secretless, so its
// header is what the DC expects and the copy relay can pass it unchanged;
// the difference between the two is the proxy's own work.
func BenchmarkEcho(b *testing.B) {
	d := startFakeDC(b, fakedc.Config{Mode: fakedc.Echo})
	dialEcho := func(b *testing.B, addr string) *tgclient.RawConn {
		c, err := tgclient.DialRawSecretless(context.Background(), addr, fakedc.TagIntermediate, 2)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	b.Run("proxy", func(b *testing.B) {
		p := startProxy(b, d.Addr(), server.Config{Loops: 1, Secrets: [][16]byte{}})
		pump(b, dialEcho(b, p.addr))
	})
	b.Run("plain-copy", func(b *testing.B) {
		relay := listen(b, func(c net.Conn) {
			up, err := net.Dial("tcp", d.Addr())
			if err != nil {
				return
			}
			defer up.Close()
			go io.Copy(up, c)
			io.Copy(c, up)
		})
		pump(b, dialEcho(b, relay))
	})
}

// listen serves each connection with serve on 127.0.0.1 until b ends.
func listen(b testing.TB, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkMiddleEcho moves 64 KiB packets both ways through the proxy in
// middle-proxy mode (fake middle proxy in echo mode) next to direct mode
// (fake DC in echo mode), same client framing, same run. The fake middle
// proxy's own CBC work shares the machine, as the fake DC's CTR does.
func BenchmarkMiddleEcho(b *testing.B) {
	f := framing.Intermediate
	run := func(b *testing.B, addr string) {
		c := dial(b, addr, f.Tag(), 2)
		msg := mtPacket(benchChunk)
		frame, err := f.AppendHeader(nil, len(msg))
		if err != nil {
			b.Fatal(err)
		}
		frame = append(frame, msg...)
		b.SetBytes(benchChunk)
		b.ResetTimer()
		go func() {
			for range b.N {
				if _, err := c.Write(frame); err != nil {
					return
				}
			}
		}()
		in := make([]byte, len(frame))
		for range b.N {
			if _, err := io.ReadFull(c, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("middle", func(b *testing.B) {
		me := startMe(b, fakeme.Config{Mode: fakeme.Echo})
		run(b, startMiddleProxy(b, me.Addr(), server.Config{Loops: 1}).addr)
	})
	b.Run("direct", func(b *testing.B) {
		d := startFakeDC(b, fakedc.Config{Mode: fakedc.Echo})
		run(b, startProxy(b, d.Addr(), server.Config{Loops: 1}).addr)
	})
}

// BenchmarkHandshake opens a client, makes one small round trip through
// its DC and closes it: the cost of a new connection, in direct mode next
// to middle-proxy mode (no DC connection per client), same run.
func BenchmarkHandshake(b *testing.B) {
	run := func(b *testing.B, addr string) {
		msg := mtPacket(64)
		frame, _ := framing.Intermediate.AppendHeader(nil, len(msg))
		frame = append(frame, msg...)
		in := make([]byte, len(frame))
		for b.Loop() {
			c, err := tgclient.DialRaw(context.Background(), addr, testKey, framing.Intermediate.Tag(), 2)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, in); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	}
	b.Run("direct", func(b *testing.B) {
		d := startFakeDC(b, fakedc.Config{Mode: fakedc.Echo})
		run(b, startProxy(b, d.Addr(), server.Config{Loops: 1}).addr)
	})
	b.Run("middle", func(b *testing.B) {
		me := startMe(b, fakeme.Config{Mode: fakeme.Echo})
		run(b, startMiddleProxy(b, me.Addr(), server.Config{Loops: 1}).addr)
	})
}
