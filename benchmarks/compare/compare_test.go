package compare_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/compare"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

var bin string // our proxy, built by TestMain

func TestMain(m *testing.M) { proxytest.Main(m, &bin) }

func TestParseProxy(t *testing.T) {
	p, err := compare.ParseProxy("name=a;kinds=dd,ee;cmd=x -a {port}; y")
	if err != nil || p.Name != "a" || p.Command != "x -a {port}; y" || len(p.Kinds) != 2 || p.Kinds[1] != load.EE {
		t.Errorf("%+v, %v", p, err)
	}
	p, err = compare.ParseProxy("name=b;addr=127.0.0.1:1;pid=42;secret=dd00112233445566778899aabbccddeeff")
	if err != nil || p.PID != 42 || p.Addr != "127.0.0.1:1" || p.Secret.Kind != load.DD {
		t.Errorf("%+v, %v", p, err)
	}
	p, err = compare.ParseProxy("name=c d;backend=middle;cmd=x")
	if err != nil || p.Name != "c d" || !p.Middle || p.Command != "x" {
		t.Errorf("%+v, %v", p, err)
	}
	if p, err = compare.ParseProxy("name=c;backend=direct;cmd=x"); err != nil || p.Middle {
		t.Errorf("%+v, %v", p, err)
	}
	for _, bad := range []string{
		"", "cmd=x", "name=a", "name=a;pid=1;addr=127.0.0.1:1", "name=a;addr=1;pid=x;secret=00",
		"name=a;color=red;cmd=x", "name=a;kinds=xx;cmd=x", "name=a;novalue;cmd=x", "name=a;backend=me;cmd=x",
	} {
		if p, err := compare.ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) = %+v, want an error", bad, p)
		}
	}
}

// TestSmoke runs a tiny matrix against our proxy twice: once started from
// a template, once already running; the ee scenarios are skipped.
func TestSmoke(t *testing.T) {
	port, err := proxyproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dcAddr := fmt.Sprintf("127.0.0.1:%d", port)
	key := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	running := startRunning(t, dcAddr, key)
	template := proxytest.Template(bin)

	plan := compare.Plan{
		Kinds:    []load.Kind{load.DD, load.EE},
		Duration: 500 * time.Millisecond,
		Bulk:     []int{4},
		BulkUp:   16 << 10, BulkDown: 32 << 10,
		Idle: 50, Settle: 100 * time.Millisecond,
		StormConcurrency: 4,
		RRConns:          10, RRRate: 50,
		Workers: 1,
	}
	proxies := []compare.Proxy{
		{Name: "started", Command: template},
		{Name: "running", Addr: running.addr, PID: running.pid, Secret: load.Secret{Kind: load.Classic, Key: key}},
	}
	var progress bytes.Buffer
	rep, err := compare.Run(context.Background(), plan, proxies, compare.Options{DCAddr: dcAddr, LogDir: t.TempDir(), Out: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(progress.String())

	var js, md, svg bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	t.Log(md.String())

	var back compare.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if got, want := len(back.Results), 4*2*2; got != want {
		t.Fatalf("%d results, want 4 scenarios × 2 secrets × 2 proxies", got)
	}
	for _, r := range back.Results {
		name := r.Scenario + " " + r.Secret + " " + r.Proxy
		if r.Secret == "ee" {
			if r.Skipped == "" {
				t.Errorf("%s: not skipped", name)
			}
			continue
		}
		if r.Errors != 0 || r.Skipped != "" {
			t.Errorf("%s: %d errors (%s), skipped %q", name, r.Errors, r.Error, r.Skipped)
			continue
		}
		sane := map[string]bool{}
		switch r.Type {
		case "bulk":
			// CPU time comes in 10 ms ticks, which a short bulk run under
			// the race detector may not fill; the storm always does.
			sane["throughput"] = r.UpMBps > 0 && r.DownMBps > r.UpMBps
			sane["cpu"] = r.CPUSeconds >= 0 && (r.CPUSeconds == 0 || r.CPUSecondsPerGB > 0 && r.MBPerCPUSecond > 0)
			sane["rss"] = r.PeakRSSMiB > 1
		case "idle":
			sane["conns"] = r.Conns == 50
			sane["rss"] = r.RSSIdleMiB > 1 && r.RSSBeforeMiB > 1
		case "storm":
			sane["handshakes"] = r.Conns > 0 && r.HandshakesPerSecond > 0 && r.Latency != nil
			sane["cpu"] = r.CPUSeconds > 0 && r.CPUMicrosPerHandshake > 0
		case "rr":
			sane["requests"] = r.Requests > 0 && r.RequestsPerSecond > 0
			sane["latency"] = r.Latency != nil && r.Latency.P50 > 0 && r.Latency.P99 >= r.Latency.P50
		}
		for what, ok := range sane {
			if !ok {
				t.Errorf("%s: implausible %s: %+v", name, what, r)
			}
		}
	}
	for _, want := range []string{"### Bulk throughput", "### Idle connections", "### Connection storm", "### Request/response latency", "× started", "skipped: no ee secrets"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	d := xml.NewDecoder(&svg)
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG: %v", err)
		}
	}
}

type runningProxy struct {
	addr string
	pid  int
}

// startRunning starts our proxy the way a user would before passing its
// address and pid.
func startRunning(t *testing.T, dcAddr string, key [16]byte) runningProxy {
	port, err := proxyproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	argv, err := proxyproc.Expand(proxytest.Template(bin), map[string]string{
		"port": fmt.Sprint(port), "secret": hex.EncodeToString(key[:]), "workers": "1", "dc_addr": dcAddr,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := proxyproc.Start(argv, nil, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return runningProxy{addr: addr, pid: p.PID()}
}

// TestSmokeMiddle runs every scenario against our proxy in direct mode and
// in middle-proxy mode, in one run: the middle rows come with their ratio
// to the direct ones, and their traffic went through the fake middle
// proxy.
func TestSmokeMiddle(t *testing.T) {
	plan := compare.Plan{
		Kinds:    []load.Kind{load.DD},
		Duration: 200 * time.Millisecond,
		Bulk:     []int{2},
		BulkUp:   16 << 10, BulkDown: 32 << 10,
		Idle: 20, Settle: 100 * time.Millisecond,
		StormConcurrency: 2,
		RRConns:          5, RRRate: 50,
		Workers: 1,
	}
	proxies := []compare.Proxy{
		{Name: "direct", Command: proxytest.Template(bin)},
		{Name: "ours middle", Middle: true, Command: proxytest.MiddleTemplate(bin)},
	}
	logDir := t.TempDir()
	var progress bytes.Buffer
	rep, err := compare.Run(context.Background(), plan, proxies, compare.Options{LogDir: logDir, Out: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(progress.String())
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Log(md.String())
	if len(rep.Results) != 4*2 {
		t.Fatalf("%d results, want 4 scenarios × 2 proxies", len(rep.Results))
	}
	var middleDown, middleRequests int64
	for _, r := range rep.Results {
		if r.Errors != 0 || r.Skipped != "" {
			t.Errorf("%s %s: %d errors (%s), skipped %q", r.Scenario, r.Proxy, r.Errors, r.Error, r.Skipped)
		}
		if r.Proxy == "ours middle" && r.Type == "bulk" {
			middleDown += r.BytesDown
			middleRequests += r.BytesDown / (32 << 10)
		}
	}
	me := rep.MiddleProxy
	if me == nil || middleDown == 0 {
		t.Fatalf("fake middle proxy %+v, %d bytes down in middle bulk", me, middleDown)
	}
	// Frame bytes down include a header and padding per reply, which the
	// answers' payload does not.
	if me.BytesOut < middleDown*9/10 || me.Requests < middleRequests || me.BadRequests != 0 {
		t.Errorf("fake middle proxy %+v; middle bulk moved %d bytes down", *me, middleDown)
	}
	for _, want := range []string{"| bulk-2 | dd | ours middle |", "| storm | dd | ours middle |", "| idle-20 | dd | ours middle |", "| rr-5 | dd | ours middle |", "× direct"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"fake_middle_proxy"`) {
		t.Errorf("JSON without the fake middle proxy's counters (%v)", err)
	}
	if logs, _ := filepath.Glob(filepath.Join(logDir, "ours_middle-*.log")); len(logs) != 4 {
		t.Errorf("middle logs %q, want one per scenario", logs)
	}
}
