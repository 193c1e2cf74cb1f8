package server_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
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

// BenchmarkEcho moves data both ways through one pair: our proxy (client
// and fake DC do AES too, in the same process) next to a plain loopback
// copy relay in front of a plain echo server, as the baseline.
func BenchmarkEcho(b *testing.B) {
	b.Run("proxy", func(b *testing.B) {
		d := startFakeDC(b, fakedc.Config{Mode: fakedc.Echo})
		p := startProxy(b, d.Addr(), server.Config{Loops: 1})
		pump(b, dial(b, p.addr, fakedc.TagIntermediate, 2))
	})
	b.Run("plain-copy", func(b *testing.B) {
		echo := listen(b, func(c net.Conn) { io.Copy(c, c) })
		relay := listen(b, func(c net.Conn) {
			up, err := net.Dial("tcp", echo)
			if err != nil {
				return
			}
			defer up.Close()
			go io.Copy(up, c)
			io.Copy(c, up)
		})
		c, err := net.Dial("tcp", relay)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pump(b, c)
	})
}

// listen serves each connection with serve on 127.0.0.1 until b ends.
func listen(b *testing.B, serve func(net.Conn)) string {
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
