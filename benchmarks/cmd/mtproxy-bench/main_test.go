package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
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
		{"load", "-h"},
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
