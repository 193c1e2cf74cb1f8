package load_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/faketls"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

var (
	key       = [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	proxyAddr string // our proxy, built and started by TestMain
	frontAddr string // a fake-TLS front before it, for ee clients
	dc        *fakedc.Server
	bin       string // our proxy, built by TestMain
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "load-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin, err = proxytest.Build(dir)
	if err != nil {
		return 0, err
	}
	var dcErr error
	var mu sync.Mutex
	dc, err = fakedc.Start(fakedc.Config{Mode: fakedc.ReqResp, OnError: func(err error) {
		mu.Lock()
		dcErr = err
		mu.Unlock()
	}})
	if err != nil {
		return 0, err
	}
	defer dc.Close()

	port, err := proxyproc.FreePort()
	if err != nil {
		return 0, err
	}
	proxyAddr = fmt.Sprintf("127.0.0.1:%d", port)
	argv, err := proxyproc.Expand(proxytest.Template(bin), map[string]string{
		"port": fmt.Sprint(port), "secret": hex.EncodeToString(key[:]), "workers": "1", "dc_addr": dc.Addr(),
	})
	if err != nil {
		return 0, err
	}
	log, err := os.Create(dir + "/proxy.log")
	if err != nil {
		return 0, err
	}
	p, err := proxyproc.Start(argv, log, proxyAddr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer p.Stop(5 * time.Second)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	frontAddr = ln.Addr().String()
	go serveFront(ln)

	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if dcErr != nil {
		return code, fmt.Errorf("the fake DC refused a request: %w", dcErr)
	}
	return code, nil
}

// serveFront terminates fake TLS, which our proxy lacks so far, and relays
// the inner stream to the proxy.
func serveFront(ln net.Listener) {
	for {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer raw.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := faketls.Server(ctx, raw, key)
			cancel()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", proxyAddr)
			if err != nil {
				return
			}
			defer up.Close()
			go func() {
				io.Copy(up, c)
				up.(*net.TCPConn).CloseWrite()
			}()
			io.Copy(c, up)
		}()
	}
}

type target struct {
	name string
	t    load.Target
}

func targets() []target {
	classic := load.Secret{Kind: load.Classic, Key: key}
	return []target{
		{"classic/abridged", load.Target{Addr: proxyAddr, Secret: classic, Framing: framing.Abridged}},
		{"classic/intermediate", load.Target{Addr: proxyAddr, Secret: classic}},
		{"classic/padded", load.Target{Addr: proxyAddr, Secret: classic, Framing: framing.Padded, DC: -3}},
		{"dd", load.Target{Addr: proxyAddr, Secret: load.Secret{Kind: load.DD, Key: key}, DC: 4}},
		{"ee", load.Target{Addr: frontAddr, Secret: load.Secret{Kind: load.EE, Key: key, Domain: "example.com"}}},
	}
}

func open(t *testing.T, tg load.Target, n int) []*load.Conn {
	t.Helper()
	var m load.Meter
	conns := load.Open(context.Background(), tg, 0, load.OpenConfig{Conns: n, Concurrency: 4}, &m)
	t.Cleanup(func() { load.CloseAll(conns) })
	if errs, err := m.Errors(); errs != 0 || len(conns) != n || m.Established.Load() != int64(n) {
		t.Fatalf("opened %d of %d connections; %d errors, first %v", len(conns), n, errs, err)
	}
	return conns
}

func checkClean(t *testing.T, res load.Result) {
	t.Helper()
	if res.Errors != 0 {
		t.Fatalf("%d errors, first: %v", res.Errors, res.Err)
	}
	if res.Requests == 0 || res.Up == 0 || res.Down == 0 {
		t.Fatalf("nothing moved: %+v", res)
	}
}

func TestBulk(t *testing.T) {
	for _, tt := range targets() {
		t.Run(tt.name, func(t *testing.T) {
			conns := open(t, tt.t, 3)
			var m load.Meter
			cfg := load.BulkConfig{UpSize: 20 << 10, DownSize: 100 << 10, Duration: 200 * time.Millisecond}
			res := load.Bulk(context.Background(), conns, cfg, &m)
			checkClean(t, res)
			if res.Down < res.Requests*int64(cfg.DownSize) || res.Up < res.Requests*int64(cfg.UpSize) {
				t.Errorf("%d requests, but %d bytes up and %d down", res.Requests, res.Up, res.Down)
			}
			if res.Conns != 3 || res.Elapsed < cfg.Duration {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestBulkBytes(t *testing.T) {
	conns := open(t, targets()[3].t, 4)
	var m load.Meter
	res := load.Bulk(context.Background(), conns, load.BulkConfig{UpSize: 64 << 10, DownSize: 8, Bytes: 1 << 20, Duration: time.Minute}, &m)
	checkClean(t, res)
	if res.Requests != 16 {
		t.Errorf("%d requests of 64 KiB for a 1 MiB budget, want 16", res.Requests)
	}
}

func TestRequestResponse(t *testing.T) {
	for _, tt := range targets() {
		t.Run(tt.name, func(t *testing.T) {
			conns := open(t, tt.t, 5)
			var m load.Meter
			const delay = time.Millisecond
			res := load.RequestResponse(context.Background(), conns, load.RRConfig{
				ReqSize: 100, ReplySize: 1000, Delay: delay, Rate: 50, Duration: 300 * time.Millisecond,
			}, &m)
			checkClean(t, res)
			if n := m.Latency.Count(); n != uint64(res.Requests) {
				t.Errorf("%d latencies for %d requests", n, res.Requests)
			}
			if p50 := m.Latency.Quantile(0.5); p50 < delay {
				t.Errorf("median latency %v, below the DC's delay %v", p50, delay)
			}
		})
	}
}

func TestRequestResponseCount(t *testing.T) {
	conns := open(t, targets()[0].t, 3)
	var m load.Meter
	res := load.RequestResponse(context.Background(), conns, load.RRConfig{
		ReqSize: 20, ReplySize: 8, Requests: 7, Duration: time.Minute,
	}, &m)
	checkClean(t, res)
	if res.Requests != 21 {
		t.Errorf("%d requests, want 3×7", res.Requests)
	}
}

func TestStorm(t *testing.T) {
	for _, tt := range targets()[3:] {
		t.Run(tt.name, func(t *testing.T) {
			var m load.Meter
			res := load.Storm(context.Background(), tt.t, 0, load.StormConfig{Concurrency: 4, Handshakes: 40, Duration: time.Minute}, &m)
			if res.Errors != 0 || res.Conns != 40 || m.Latency.Count() != 40 {
				t.Fatalf("%d handshakes, %d errors (first %v)", res.Conns, res.Errors, res.Err)
			}
		})
	}
}

func TestIdle(t *testing.T) {
	conns := open(t, targets()[1].t, 100)
	var m load.Meter
	if failed := load.Ping(context.Background(), conns, 16, &m); failed != 0 {
		_, err := m.Errors()
		t.Fatalf("%d of %d idle connections failed: %v", failed, len(conns), err)
	}
	if m.Requests.Load() != 100 {
		t.Errorf("%d pings answered, want 100", m.Requests.Load())
	}
}

func TestWrongSecret(t *testing.T) {
	other := key
	other[15] ^= 1
	var m load.Meter
	tg := load.Target{Addr: proxyAddr, Secret: load.Secret{Kind: load.DD, Key: other}, Timeout: 300 * time.Millisecond}
	conns := load.Open(context.Background(), tg, 0, load.OpenConfig{Conns: 2}, &m)
	if errs, _ := m.Errors(); len(conns) != 0 || errs != 2 {
		t.Errorf("wrong secret: %d connections, %d errors; want none and 2", len(conns), errs)
	}
}

func TestOpenRate(t *testing.T) {
	var m load.Meter
	start := time.Now()
	conns := load.Open(context.Background(), targets()[1].t, 0, load.OpenConfig{Conns: 6, Rate: 20}, &m)
	load.CloseAll(conns)
	if d := time.Since(start); d < 250*time.Millisecond || len(conns) != 6 {
		t.Errorf("6 connections at 20/s took %v, want at least 250ms", d)
	}
}

// TestCatchesCorruption puts a relay before the proxy that flips one bit
// of what the proxy sends, after the first reply; the run must fail.
func TestCatchesCorruption(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() {
			io.Copy(up, c)
			up.Close()
		}()
		buf := make([]byte, 4096)
		for seen := 0; ; {
			n, err := up.Read(buf)
			if seen < 1000 && seen+n >= 1000 {
				buf[1000-seen] ^= 0x10
			}
			seen += n
			if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
				return
			}
		}
	}()
	tg := targets()[3].t
	tg.Addr = ln.Addr().String()
	conns := open(t, tg, 1)
	var m load.Meter
	res := load.Bulk(context.Background(), conns, load.BulkConfig{UpSize: 64, DownSize: 256, Duration: 200 * time.Millisecond}, &m)
	if res.Errors != 1 {
		t.Fatalf("%d errors, want the corruption caught once", res.Errors)
	}
	t.Logf("caught: %v", res.Err)
}
