package proxyproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"port": "8443", "dc_addr": "127.0.0.1:1", "msg": "two words"}
	tests := []struct {
		in   string
		want []string
	}{
		{"bin/mtproxy -H {port} --dc 1={dc_addr}", []string{"bin/mtproxy", "-H", "8443", "--dc", "1=127.0.0.1:1"}},
		{"  sh -c 'echo {msg} && exit'  ", []string{"sh", "-c", "echo two words && exit"}},
		{`a "b c"d e\ f {msg}`, []string{"a", "b cd", "e f", "two words"}},
		{`x '' y`, []string{"x", "", "y"}},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, vars)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "  ", "a {nope}", "a 'b", `a \`} {
		if got, err := Expand(bad, vars); err == nil {
			t.Errorf("Expand(%q) = %q, want an error", bad, got)
		}
	}
}

// TestMain doubles as a tiny TCP server for TestStartStop.
func TestMain(m *testing.M) {
	if addr := os.Getenv("PROXYPROC_TEST_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	}
	os.Exit(m.Run())
}

func TestRaiseNoFile(t *testing.T) {
	n, err := RaiseNoFile()
	if err != nil || n < 1024 {
		t.Fatalf("RaiseNoFile() = %d, %v", n, err)
	}
	out, err := exec.Command("sh", "-c", "ulimit -n").Output()
	if err != nil {
		t.Skip(err)
	}
	if got := strings.TrimSpace(string(out)); got != fmt.Sprint(n) && got != "unlimited" {
		t.Errorf("a child sees a limit of %s, want %d", got, n)
	}
}

func TestStartStop(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	t.Setenv("PROXYPROC_TEST_LISTEN", addr)
	var log strings.Builder
	p, err := Start([]string{os.Args[0]}, &log, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); exited || p.PID() <= 0 {
		t.Fatalf("exited %v, pid %d", exited, p.PID())
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Fatal("still running after Stop")
	}
	if !strings.Contains(log.String(), "listening") {
		t.Errorf("output %q not captured", log.String())
	}

	t.Setenv("PROXYPROC_TEST_LISTEN", "")
	if _, err := Start([]string{"/bin/false"}, nil, addr, 5*time.Second); err == nil {
		t.Error("a command that exits at once was reported listening")
	}
}
