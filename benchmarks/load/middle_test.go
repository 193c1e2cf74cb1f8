package load_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

// replyChunk is where the fake middle proxy splits replies in TestMiddle.
const replyChunk = 12 << 10

// startMiddle starts a fake middle proxy in ReqResp mode and our proxy in
// middle-proxy mode in front of it, and returns the proxy's address.
func startMiddle(t *testing.T) (string, *fakeme.Server) {
	t.Helper()
	secret := fakeme.NewSecret()
	me, err := fakeme.Start(fakeme.Config{Secret: secret, Mode: fakeme.ReqResp, ReplyChunk: replyChunk, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { me.Close() })
	dir := t.TempDir()
	secretPath, confPath, err := fakeme.WriteFiles(dir, me.Addr(), secret)
	if err != nil {
		t.Fatal(err)
	}
	port, err := proxyproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv, err := proxyproc.Expand(proxytest.MiddleTemplate(bin), map[string]string{
		"port": fmt.Sprint(port), "secret": hex.EncodeToString(key[:]), "workers": "1",
		"proxy_secret": secretPath, "proxy_multi_conf": confPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(dir + "/proxy.log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p, err := proxyproc.Start(argv, log, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			b, _ := os.ReadFile(dir + "/proxy.log")
			t.Logf("proxy log:\n%s", b)
		}
	})
	return addr, me
}

// TestMiddle runs bulk, request/response and storm through our proxy in
// middle-proxy mode, with replies larger than replyChunk split by the fake
// middle proxy into several answers, so several frames.
func TestMiddle(t *testing.T) {
	addr, me := startMiddle(t)
	classic := load.Secret{Kind: load.Classic, Key: key}
	var bulkRequests int64
	for _, tt := range []target{
		{"classic/abridged", load.Target{Addr: addr, Secret: classic, Framing: framing.Abridged, Middle: true}},
		{"classic/intermediate", load.Target{Addr: addr, Secret: classic, Middle: true}},
		{"dd", load.Target{Addr: addr, Secret: load.Secret{Kind: load.DD, Key: key}, DC: 4, Middle: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns := open(t, tt.t, 3)
			var m load.Meter
			cfg := load.BulkConfig{UpSize: 20 << 10, DownSize: 40 << 10, Duration: 200 * time.Millisecond}
			res := load.Bulk(context.Background(), conns, cfg, &m)
			checkClean(t, res)
			bulkRequests += res.Requests
			if res.Down < res.Requests*int64(cfg.DownSize) {
				t.Errorf("%d requests, but %d bytes down", res.Requests, res.Down)
			}
			var rm load.Meter
			const delay = 2 * time.Millisecond
			res = load.RequestResponse(context.Background(), conns, load.RRConfig{
				ReqSize: 100, ReplySize: 1000, Delay: delay, Rate: 50, Duration: 200 * time.Millisecond,
			}, &rm)
			checkClean(t, res)
			if p50 := rm.Latency.Quantile(0.5); p50 < delay {
				t.Errorf("median latency %v, below the delay %v", p50, delay)
			}
		})
	}
	var m load.Meter
	res := load.Storm(context.Background(), load.Target{Addr: addr, Secret: load.Secret{Kind: load.DD, Key: key}, Middle: true}, 0,
		load.StormConfig{Concurrency: 4, Handshakes: 40, Duration: time.Minute}, &m)
	if res.Errors != 0 || res.Conns != 40 {
		t.Fatalf("storm: %d handshakes, %d errors (first %v)", res.Conns, res.Errors, res.Err)
	}
	st := me.Stats()
	if st.BadRequests != 0 || st.Errors != 0 {
		t.Errorf("fake middle proxy: %+v", st)
	}
	// Every 40 KiB reply went in 4 answers, the others in one.
	if st.Answers != st.Requests+3*bulkRequests {
		t.Errorf("%d answers to %d requests: the replies were not split", st.Answers, st.Requests)
	}
	if tags := me.AdTags(); tags[proxytest.Tag] != st.Requests {
		t.Errorf("ad tags %v on %d requests", tags, st.Requests)
	}
}

// TestMiddleSizes checks that requests a middle-proxy mode proxy would
// drop are refused up front.
func TestMiddleSizes(t *testing.T) {
	addr, _ := startMiddle(t)
	conns := open(t, load.Target{Addr: addr, Secret: load.Secret{Kind: load.DD, Key: key}, Middle: true}, 1)
	for _, size := range []int{52, 58} {
		if _, _, err := conns[0].RoundTrip(size, 64, 0); err == nil || !strings.Contains(err.Error(), "middle-proxy mode") {
			t.Errorf("request of %d bytes: %v", size, err)
		}
	}
	if _, _, err := conns[0].RoundTrip(load.MinMiddleSize, 8, 0); err != nil {
		t.Error(err)
	}
}
