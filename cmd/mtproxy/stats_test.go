package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// get fetches url and returns its body.
func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, body)
	}
	return string(body)
}

// TestStatsEndpoints: after known traffic through the binary, /stats and
// /metrics on the -p port show it, per user too.
func TestStatsEndpoints(t *testing.T) {
	t.Parallel()
	d := startEchoDC(t)
	port, sport := freePort(t, "tcp4", "127.0.0.1"), freePort(t, "tcp4", "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := writeConfig(t, fmt.Sprintf("http-ports = %d\naddress = \"127.0.0.1\"\ndc = [\"2=%s\"]\nport = \"%d\"\n[users]\nalice = \"%s\"\nbob = \"dd%s\"\n",
		port, d.Addr(), sport, key, keyB))
	p := startChild(t, "--config", cfg)
	p.waitLog("statistics", 1)

	a := dialKey(t, addr, mustKey(t, key))
	echo(t, a, 1000)
	echo(t, a, 3000)
	b := dialKey(t, addr, mustKey(t, keyB))
	echo(t, b, 500)
	a.Close()

	base := fmt.Sprintf("http://127.0.0.1:%d", sport)
	lines := map[string]string{}
	waitFor(t, "alice's closed client in /stats", 10*time.Second, func() bool {
		for _, l := range strings.Split(get(t, base+"/stats"), "\n") {
			if k, v, ok := strings.Cut(l, "\t"); ok {
				lines[k] = v
			}
		}
		return lines["user_active:alice"] == "0"
	})
	for k, want := range map[string]string{
		"user_handshakes:alice": "1", "user_bytes_in:alice": "4000", "user_bytes_out:alice": "4000",
		"user_handshakes:bob": "1", "user_active:bob": "1", "user_bytes_in:bob": "500",
		"handshakes_ok": "2", "inbound_connections": "1", "client_bytes": "4500",
	} {
		if lines[k] != want {
			t.Errorf("/stats %s = %q, want %s", k, lines[k], want)
		}
	}
	if lines["pid"] != strconv.Itoa(p.cmd.Process.Pid) {
		t.Errorf("/stats pid %q", lines["pid"])
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(get(t, base+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		for _, m := range families[name].GetMetric() {
			match := true
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				match = match && found
			}
			if match {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Errorf("no %s%v in /metrics", name, labels)
		return -1
	}
	if v := value("mtproxy_handshakes_total", map[string]string{"outcome": "ok"}); v != 2 {
		t.Errorf("handshakes ok %v, want 2", v)
	}
	if v := value("mtproxy_user_bytes_total", map[string]string{"user": "alice", "direction": "from_client"}); v != 4000 {
		t.Errorf("alice's bytes %v, want 4000", v)
	}
	if v := value("mtproxy_client_connections", nil); v != 1 {
		t.Errorf("open clients %v, want 1", v)
	}
	if v := value("mtproxy_info", map[string]string{"mode": "direct"}); v != 1 {
		t.Errorf("info %v", v)
	}

	p.signal(syscall.SIGTERM)
	b.Close()
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestHealthcheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var out, errOut strings.Builder
	if code := run([]string{"healthcheck", addr}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "accepts connections") {
		t.Fatalf("listening: exit %d, %q %q", code, out.String(), errOut.String())
	}
	ln.Close()
	errOut.Reset()
	if code := run([]string{"healthcheck", addr}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "unhealthy") {
		t.Fatalf("closed: exit %d, %q", code, errOut.String())
	}
	if code := run([]string{"healthcheck", "a", "b"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("two arguments: exit %d", code)
	}
}
