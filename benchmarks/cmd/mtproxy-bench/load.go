package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", `Puts load on one MTProxy on loopback whose DCs all lead to
'mtproxy-bench fakedc -mode reqresp', or, with -middle, on one in
middle-proxy mode whose middle proxies are 'mtproxy-bench fakeme -mode
reqresp'. Every reply is checked byte for byte. Modes:
  bulk   each connection streams -up-byte requests answered with -down bytes
  rr     each connection sends -req-rate requests per second; latency histogram
  idle   open the connections, hold them for -duration, check them, close
  storm  open and close connections, -concurrency at a time: handshakes/s`, stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "the proxy's `address`, a loopback IP and a port")
	secret := fs.String("secret", "", "client `secret`: 32 hex digits (classic), dd+hex, or ee+hex+hex(domain); base64 too")
	framingName := fs.String("framing", "intermediate", "framing of classic clients: abridged, intermediate or padded")
	dc := fs.Int("dc", 2, "DC index to announce")
	mode := fs.String("mode", "bulk", "`mode`: bulk, rr, idle or storm")
	conns := fs.Int("conns", 16, "connections (bulk, rr, idle)")
	concurrency := fs.Int("concurrency", 64, "connections being opened at once")
	rate := fs.Float64("rate", 0, "new connections per second; 0 for no limit")
	duration := fs.Duration("duration", 10*time.Second, "how long the load runs")
	bytes := fs.Int64("bytes", 0, "bulk: stop after sending this many payload bytes; 0 for no limit")
	up := fs.Int("up", 64<<10, "bulk: payload bytes per request")
	down := fs.Int("down", 64<<10, "bulk: payload bytes per reply")
	window := fs.Int("window", 8, "bulk: unanswered requests per connection")
	req := fs.Int("req", 128, "rr: payload bytes per request")
	reply := fs.Int("reply", 1024, "rr: payload bytes per reply")
	delay := fs.Duration("delay", 0, "rr: how long the fake DC waits before each reply")
	reqRate := fs.Float64("req-rate", 10, "rr: requests per second per connection; 0 for back to back")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each dial and its first round trip")
	middle := fs.Bool("middle", false, "the proxy is in middle-proxy mode: requests of at least 56 bytes, replies possibly in pieces")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dc < math.MinInt16 || *dc > math.MaxInt16 {
		return usageError{fmt.Errorf("-dc %d is not a 16-bit DC index", *dc)}
	}
	sec, err := load.ParseSecret(*secret)
	if err != nil {
		return usageError{err}
	}
	f, err := framing.Parse(*framingName)
	if err != nil {
		return usageError{err}
	}
	t := load.Target{Addr: *addr, Secret: sec, DC: int16(*dc), Timeout: *timeout, Middle: *middle}
	if sec.Kind == load.Classic {
		t.Framing = f
	}
	if err := t.Check(); err != nil {
		return usageError{err}
	}
	open := load.OpenConfig{Conns: *conns, Concurrency: *concurrency, Rate: *rate}

	var m load.Meter
	progress := func(label string, m *load.Meter) (stop func()) {
		return load.Progress(ctx, stdout, label, m, time.Second)
	}
	openAll := func() []*load.Conn {
		var om load.Meter
		stop := progress("opening", &om)
		cs := load.Open(ctx, t, 0, open, &om)
		stop()
		n, err := om.Errors()
		fmt.Fprintf(stdout, "%d of %d connections established", len(cs), *conns)
		if n > 0 {
			fmt.Fprintf(stdout, "; %d errors, first: %v", n, err)
		}
		fmt.Fprintln(stdout)
		return cs
	}

	var res load.Result
	switch *mode {
	case "bulk":
		cs := openAll()
		defer load.CloseAll(cs)
		stop := progress("bulk", &m)
		res = load.Bulk(ctx, cs, load.BulkConfig{UpSize: *up, DownSize: *down, Window: *window, Duration: *duration, Bytes: *bytes}, &m)
		stop()
	case "rr":
		cs := openAll()
		defer load.CloseAll(cs)
		stop := progress("rr", &m)
		res = load.RequestResponse(ctx, cs, load.RRConfig{ReqSize: *req, ReplySize: *reply, Delay: *delay, Rate: *reqRate, Duration: *duration}, &m)
		stop()
	case "idle":
		cs := openAll()
		defer load.CloseAll(cs)
		select {
		case <-ctx.Done():
		case <-time.After(*duration):
		}
		failed := load.Ping(ctx, cs, *concurrency, &m)
		fmt.Fprintf(stdout, "after %v: %d of %d connections still work\n", *duration, len(cs)-failed, len(cs))
		res = load.Result{Conns: len(cs), Requests: m.Requests.Load()}
		res.Errors, res.Err = m.Errors()
	case "storm":
		stop := progress("storm", &m)
		res = load.Storm(ctx, t, 0, load.StormConfig{Concurrency: *concurrency, Duration: *duration}, &m)
		stop()
		fmt.Fprintf(stdout, "%d handshakes in %.2fs: %.0f/s\n", res.Conns, res.Elapsed.Seconds(), float64(res.Conns)/res.Elapsed.Seconds())
	default:
		return usageError{fmt.Errorf("unknown mode %q", *mode)}
	}
	if res.Elapsed > 0 && (res.Up > 0 || res.Down > 0) {
		fmt.Fprintf(stdout, "%d requests in %.2fs on %d connections: up %s/s, down %s/s, %.0f req/s\n",
			res.Requests, res.Elapsed.Seconds(), res.Conns, load.Bytes(res.UpRate()), load.Bytes(res.DownRate()),
			float64(res.Requests)/res.Elapsed.Seconds())
	}
	if h := &m.Latency; h.Count() > 0 {
		fmt.Fprintf(stdout, "latency: p50 %v, p90 %v, p99 %v, p99.9 %v, max %v (%d samples)\n",
			h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.Quantile(0.999), h.Max(), h.Count())
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d errors, first: %w", res.Errors, res.Err)
	}
	return nil
}
