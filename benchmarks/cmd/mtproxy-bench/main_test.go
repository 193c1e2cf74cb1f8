package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

var bin string // our proxy, built by TestMain

func TestMain(m *testing.M) { proxytest.Main(m, &bin) }

func runCmd(args ...string) (int, string) {
	var out strings.Builder
	code := run(args, &out, &out)
	return code, out.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-h"},
		{"nope"},
		{"compare"},
		{"compare", "-proxy", "name=x"},
		{"load", "-secret", "xyz"},
		{"load", "-secret", "00112233445566778899aabbccddeeff", "-addr", "192.0.2.1:443"},
		{"load", "-secret", "00112233445566778899aabbccddeeff", "-dc", "70000"},
		{"fakedc", "-mode", "mtproto"},
		{"fakedc", "extra"},
		{"fakeme", "-mode", "mtproto"},
		{"fakeme", "-mode", "forward"},
		{"fakeme", "-mode", "reqresp", "-forward", "127.0.0.1:1"},
		{"fakeme", "-stats", "0"},
		{"load", "-h"},
		{"soak", "-conns", "0"},
		{"soak", "-modes", "sideways"},
		{"soak", "-phases", "slowloris,nap"},
		{"soak", "-max-duration", "0s"},
		{"soak", "extra"},
	} {
		if code, out := runCmd(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, out)
		}
	}
	if code, out := runCmd("fakedc", "-listen", "192.0.2.1:4430"); code != 1 || !strings.Contains(out, "loopback") {
		t.Errorf("fakedc off loopback: exit %d\n%s", code, out)
	}
}

func TestFakeDC(t *testing.T) {
	code, out := runCmd("fakedc", "-listen", "127.0.0.1:0", "-mode", "echo", "-duration", "300ms", "-stats", "100ms")
	if code != 0 || !strings.Contains(out, "fake DC (echo) on 127.0.0.1:") || !strings.Contains(out, "Accepted:0") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestFakeME(t *testing.T) {
	dir := t.TempDir()
	secret, conf := filepath.Join(dir, "proxy-secret"), filepath.Join(dir, "proxy-multi.conf")
	code, out := runCmd("fakeme", "-addr", "127.0.0.1:0", "-mode", "reqresp", "-secret-file", secret, "-conf", conf,
		"-duration", "300ms", "-stats", "100ms")
	if code != 0 || !strings.Contains(out, "fake middle proxy (reqresp) on 127.0.0.1:") || !strings.Contains(out, "wrote a fresh proxy secret") ||
		!strings.Contains(out, "HandshakesOK:0") {
		t.Errorf("exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(secret)
	if err != nil || len(b) != 128 {
		t.Fatalf("proxy secret: %d bytes, %v", len(b), err)
	}
	if c, err := os.ReadFile(conf); err != nil || !strings.Contains(string(c), "proxy_for 2 127.0.0.1:") || !strings.Contains(string(c), "default 2;") {
		t.Errorf("proxy-multi.conf %q, %v", c, err)
	}
	// The second time the secret is read, not written; a bad one is refused.
	if code, out := runCmd("fakeme", "-addr", "127.0.0.1:0", "-secret-file", secret, "-duration", "10ms"); code != 0 || strings.Contains(out, "wrote") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if b2, _ := os.ReadFile(secret); string(b2) != string(b) {
		t.Error("the proxy secret changed")
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("short"), 0o600)
	if code, out := runCmd("fakeme", "-addr", "127.0.0.1:0", "-secret-file", short, "-duration", "10ms"); code != 1 {
		t.Errorf("short secret: exit %d\n%s", code, out)
	}
	if code, out := runCmd("fakeme", "-addr", "192.0.2.1:8888", "-secret-file", secret); code != 1 || !strings.Contains(out, "loopback") {
		t.Errorf("fakeme off loopback: exit %d\n%s", code, out)
	}
}

// TestLoadMiddle runs the load command with -middle against our proxy in
// middle-proxy mode before a fake middle proxy in ReqResp mode.
func TestLoadMiddle(t *testing.T) {
	secret := fakeme.NewSecret()
	me, err := fakeme.Start(fakeme.Config{Secret: secret, Mode: fakeme.ReqResp})
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close()
	secretPath, confPath, err := fakeme.WriteFiles(t.TempDir(), me.Addr(), secret)
	if err != nil {
		t.Fatal(err)
	}
	key := "00112233445566778899aabbccddeeff"
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv, err := proxyproc.Expand(proxytest.MiddleTemplate(bin), map[string]string{
		"port": fmt.Sprint(port), "secret": key, "workers": "1", "proxy_secret": secretPath, "proxy_multi_conf": confPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxyproc.Start(argv, nil, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	code, out := runCmd("load", "-addr", addr, "-secret", "dd"+key, "-middle", "-mode", "rr", "-conns", "3", "-duration", "200ms")
	if code != 0 || !strings.Contains(out, "latency: p50") {
		t.Errorf("load -middle: exit %d\n%s", code, out)
	}
	if st := me.Stats(); st.Requests < 3 || st.BadRequests != 0 {
		t.Errorf("fake middle proxy: %+v", st)
	}
	// A request below 56 bytes would be dropped by the proxy: load
	// refuses to send it.
	code, out = runCmd("load", "-addr", addr, "-secret", "dd"+key, "-middle", "-mode", "rr", "-req", "20", "-conns", "1", "-duration", "100ms")
	if code != 1 || !strings.Contains(out, "middle-proxy mode") {
		t.Errorf("load -middle -req 20: exit %d\n%s", code, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := proxyproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestLoad runs every mode of the load command against our proxy.
func TestLoad(t *testing.T) {
	dc, err := fakedc.Start(fakedc.Config{Mode: fakedc.ReqResp})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	key := "00112233445566778899aabbccddeeff"
	port, err := proxyproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv, err := proxyproc.Expand(proxytest.Template(bin), map[string]string{
		"port": fmt.Sprint(port), "secret": key, "workers": "1", "dc_addr": dc.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxyproc.Start(argv, nil, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)

	common := []string{"load", "-addr", addr, "-conns", "3", "-duration", "200ms"}
	for mode, want := range map[string]string{
		"bulk":  "requests in",
		"rr":    "latency: p50",
		"idle":  "3 of 3 connections still work",
		"storm": "handshakes in",
	} {
		for _, secret := range []string{key, "dd" + key} {
			code, out := runCmd(append(common, "-mode", mode, "-secret", secret)...)
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("%s %s: exit %d, want %q in\n%s", mode, secret, code, want, out)
			}
		}
	}
	if st := dc.Stats(); st.BadRequests != 0 {
		t.Errorf("%d bad requests", st.BadRequests)
	}
}

func TestCompare(t *testing.T) {
	out := t.TempDir()
	code, text := runCmd("compare", "-out", out, "-only", "storm,rr", "-duration", "200ms", "-rr", "5", "-storm", "2",
		"-proxy", "name=ours;cmd="+proxytest.Template(bin))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, text)
	}
	for _, name := range []string{"report.json", "report.md", "report.svg"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !strings.Contains(text, "### Connection storm") {
		t.Errorf("no table printed:\n%s", text)
	}
	logs, _ := filepath.Glob(filepath.Join(out, "logs", "*.log"))
	if len(logs) != 2 {
		t.Errorf("proxy logs %q, want one per scenario", logs)
	}
}

// TestSoak runs the soak command at small sizes against our proxy, and
// checks that it refuses sizes the open-file limit cannot hold and a
// missing binary.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the proxy; not in -short mode")
	}
	out := t.TempDir()
	code, text := runCmd("soak", "-proxy", bin, "-modes", "direct", "-conns", "100", "-short", "500",
		"-handshake-timeout", "2s", "-trickle", "400ms", "-out", out)
	if code != 0 || !strings.Contains(text, "Soak of "+bin+": PASS") || !strings.Contains(text, "500 of 500 sessions ran") ||
		!strings.Contains(text, "closed by the proxy: 100 ") {
		t.Fatalf("exit %d\n%s", code, text)
	}
	for _, name := range []string{"soak.json", "soak.txt", "logs/soak-direct.log"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if code, text := runCmd("soak", "-proxy", bin, "-conns", "1000000", "-out", out); code != 1 || !strings.Contains(text, "RLIMIT_NOFILE") {
		t.Errorf("-conns 1000000: exit %d\n%s", code, text)
	}
	if code, text := runCmd("soak", "-proxy", filepath.Join(out, "nothing"), "-out", out); code != 1 || !strings.Contains(text, "make build") {
		t.Errorf("no binary: exit %d\n%s", code, text)
	}
}
