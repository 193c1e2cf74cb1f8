package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

var bin string // our proxy, built by TestMain

// fakeEnv makes the test binary a misbehaving proxy (see fakeProxy).
const fakeEnv = "SOAK_TEST_FAKE_PROXY"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeProxy(mode, os.Args[1:]))
	}
	proxytest.Main(m, &bin)
}

// small is a run of every phase at test sizes. The handshake timeout
// must leave room for a client that stalls between its connect and its
// header: the tests of several packages run at once.
func small(t *testing.T) Config {
	return Config{
		Proxy: bin, Conns: 200, Short: 2000, Concurrency: 32, FloodConcurrency: 32,
		MaxDuration: time.Minute, HandshakeTimeout: 2 * time.Second, Trickle: 400 * time.Millisecond,
		Settle: 10 * time.Second, RSSWait: 10 * time.Second, LogDir: t.TempDir(), Progress: testWriter{t},
		steady: 500 * time.Millisecond,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestSoak runs every phase in both modes against the binary, at sizes
// that take a few seconds, and checks every figure of the report.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the proxy and floods it; not in -short mode")
	}
	cfg := small(t)
	cfg.Modes = AllModes
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	if !rep.Passed || len(rep.Modes) != 2 {
		t.Fatalf("passed %v, %d modes", rep.Passed, len(rep.Modes))
	}
	for _, m := range rep.Modes {
		if !m.Passed || len(m.Phases) != len(AllPhases) || m.Shutdown != "clean" || m.Baseline.FDs == 0 || m.Baseline.RSSMiB == 0 {
			t.Errorf("%s: passed %v, %d phases, shutdown %q, baseline %+v, failures %q", m.Mode, m.Passed, len(m.Phases), m.Shutdown, m.Baseline, m.Failures)
		}
		for _, ph := range m.Phases {
			if !ph.Passed || ph.Proxy.After.FDs != m.Baseline.FDs || ph.Proxy.Peak.FDs < ph.Proxy.Before.FDs || ph.Proxy.Peak.RSSMiB < ph.Proxy.After.RSSMiB {
				t.Errorf("%s %s: passed %v, fds %+v, CPU %v, failures %q", m.Mode, ph.Name, ph.Passed, ph.Proxy, ph.ProxyCPUSeconds, ph.Failures)
			}
			if ph.Log.Problems != 0 {
				t.Errorf("%s %s: log %+v", m.Mode, ph.Name, ph.Log)
			}
		}
		s := m.Phases[0].Slowloris
		if s == nil || s.Opened != cfg.Conns || s.Closed != cfg.Conns || s.NotClosed != 0 || s.Early != 0 || s.Late != 0 ||
			s.CloseAfter.Min < cfg.HandshakeTimeout.Seconds() || s.BytesSent < int64(cfg.Conns) {
			t.Errorf("%s slowloris: %+v", m.Mode, s)
		}
		// Every connection was open at once: the proxy held them all.
		if s != nil && (s.Held != cfg.Conns || m.Phases[0].Proxy.Peak.FDs < m.Baseline.FDs+cfg.Conns) {
			t.Errorf("%s slowloris: %d held, proxy peak %d fds", m.Mode, s.Held, m.Phases[0].Proxy.Peak.FDs)
		}
		for _, ph := range m.Phases[1:3] {
			if f := ph.Flood; f == nil || f.Completed != int64(cfg.Conns) || f.Errors != 0 || f.BytesSent == 0 {
				t.Errorf("%s %s: %+v", m.Mode, ph.Name, f)
			}
		}
		sh := m.Phases[3].Short
		if sh == nil || sh.OK != int64(cfg.Short) || sh.Errors != 0 || sh.Mismatches != 0 || sh.BytesLost != 0 ||
			sh.BytesVerified < int64(cfg.Short) || sh.BytesVerified != sh.BytesSent || sh.StoppedBy != "" || sh.PerSecond <= 0 {
			t.Errorf("%s short: %+v", m.Mode, sh)
		}
		if m.Phases[0].ProxyCPUSeconds <= 0 || m.Phases[3].ProxyCPUPer1000 <= 0 {
			t.Errorf("%s short: proxy CPU per 1000 connections %v", m.Mode, m.Phases[3].ProxyCPUPer1000)
		}
	}
	if d := rep.Modes[0]; d.FakeDC == nil || d.FakeDC.Accepted < int64(cfg.Short) {
		t.Errorf("fake DC: %+v", d.FakeDC)
	}
	if mm := rep.Modes[1]; mm.FakeME == nil || mm.FakeME.Requests < int64(cfg.Short) || mm.FakeME.Errors != 0 {
		t.Errorf("fake middle proxy: %+v", mm.FakeME)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !back.Passed || back.Modes[1].Phases[3].Short.OK != int64(cfg.Short) {
		t.Errorf("JSON round trip: %v", err)
	}
}

// TestMaxDuration: the short phase stops at its bound and says so, which
// is no failure.
func TestMaxDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the proxy; not in -short mode")
	}
	cfg := small(t)
	cfg.Phases, cfg.Short, cfg.MaxDuration = []string{Short}, 1<<30, 500*time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sh := rep.Modes[0].Phases[0].Short
	if !rep.Passed || sh.StoppedBy != "max-duration" || sh.OK == 0 || sh.Started >= int64(cfg.Short) || sh.BytesLost != 0 {
		t.Errorf("passed %v, %+v", rep.Passed, sh)
	}
}

// TestDetectsFailures runs the phases against proxies that misbehave:
// each failure must be reported.
func TestDetectsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the proxy; not in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	template := self + " {port} " + bin + " {dc_addr} {secret} {handshake_timeout}"
	for _, tc := range []struct {
		fake string
		want []string // in the failures of the slowloris phase
	}{
		// Keeps every connection that sent less than a header open after
		// the proxy behind it closed it, and logs a panic.
		{"leak", []string{"still open", "descriptors", "panic"}},
		// Exits while the connections come in.
		{"exit", []string{"exited"}},
	} {
		t.Run(tc.fake, func(t *testing.T) {
			t.Setenv(fakeEnv, tc.fake)
			cfg := small(t)
			cfg.DirectTemplate = template
			cfg.Phases = []string{Slowloris}
			if tc.fake == "exit" {
				cfg.Phases = append(cfg.Phases, Garbage) // must not run
			}
			cfg.Conns, cfg.HandshakeTimeout, cfg.Trickle, cfg.Settle = 50, time.Second, 200*time.Millisecond, 500*time.Millisecond
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Log("\n" + text.String())
			if rep.Passed || len(rep.Modes) != 1 || len(rep.Modes[0].Phases) == 0 {
				t.Fatalf("passed %v, %d modes, no phase run: %q", rep.Passed, len(rep.Modes), rep.Modes[0].Failures)
			}
			ph := rep.Modes[0].Phases[0]
			got := strings.Join(ph.Failures, "\n")
			for _, w := range tc.want {
				if ph.Passed || !strings.Contains(got, w) {
					t.Errorf("no %q in the failures:\n%s", w, got)
				}
			}
			if tc.fake == "leak" && (ph.Slowloris.NotClosed == 0 || ph.Log.Problems == 0) {
				t.Errorf("slowloris %+v, log %+v", ph.Slowloris, ph.Log)
			}
			if tc.fake == "exit" && len(rep.Modes[0].Phases) != 1 {
				t.Errorf("%d phases ran after the proxy exited", len(rep.Modes[0].Phases)-1)
			}
		})
	}
}

// TestCheck: sizes beyond the open-file limit are refused up front, with
// the reason.
func TestCheck(t *testing.T) {
	cfg := Config{Proxy: "x", Conns: 1 << 30}
	cfg.setDefaults()
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE") || !strings.Contains(err.Error(), "lower -conns") {
		t.Errorf("Check: %v", err)
	}
	for _, c := range []Config{
		{Proxy: "x", Modes: []string{"sideways"}},
		{Proxy: "x", Phases: []string{"nap"}},
		{Proxy: "x", Conns: -1},
		{},
	} {
		c.setDefaults()
		if err := c.Check(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if _, err := Run(context.Background(), Config{Proxy: "x", Conns: 1 << 30}); err == nil {
		t.Error("Run started with too few descriptors")
	}
}

// TestLogScan: panics and fatal errors are found, also in a line written
// in two pieces; warnings are counted.
func TestLogScan(t *testing.T) {
	path := t.TempDir() + "/log"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &logScan{path: path}
	f.WriteString("2026-01-01 INFO\tlistening\n2026-01-01 WARN\tgnet stale\npanic: runtime error: index out of ra")
	lf, err := l.scan()
	if err != nil || lf.Lines != 2 || lf.Warnings != 1 || lf.Problems != 0 {
		t.Fatalf("%+v %v", lf, err)
	}
	f.WriteString("nge\ngoroutine 1 [running]:\n{\"level\":\"fatal\",\"msg\":\"x\"}\n")
	lf, err = l.scan()
	if err != nil || lf.Lines != 3 || lf.Problems != 2 || !strings.HasPrefix(lf.Quoted[0], "panic: runtime error: index out of range") {
		t.Fatalf("%+v %v", lf, err)
	}
	f.WriteString("fatal error: out of memory")
	lf, _ = l.scan()
	l.flush(&lf)
	if lf.Problems != 1 {
		t.Errorf("unterminated last line: %+v", lf)
	}
}

// TestFDs counts this process's descriptors as the kernel does.
func TestFDs(t *testing.T) {
	n0, err := countFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n1, _ := countFDs(os.Getpid())
	k := fdKinds(os.Getpid())
	ln.Close()
	if n1 != n0+1 || k["socket"] == 0 {
		t.Errorf("%d fds, %d with a listener; kinds %v", n0, n1, k)
	}
	if lim, err := noFileLimit(os.Getpid()); err != nil || lim == 0 {
		t.Errorf("open-file limit %d, %v", lim, err)
	}
}

// fakeProxy is a proxy that misbehaves: it runs the real one (args:
// port, binary, DC address, secret, handshake timeout) behind a TCP relay
// of its own, the process the soak measures. mode "leak" keeps every
// client connection that sent less than a whole header open after the
// proxy behind closed it, and logs a panic; "exit" exits at the fifth
// such connection.
func fakeProxy(mode string, args []string) int {
	if len(args) != 5 {
		fmt.Fprintln(os.Stderr, "fake proxy: want port, binary, DC address, secret, handshake timeout")
		return 2
	}
	port, err := proxyproc.FreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	up := fmt.Sprintf("127.0.0.1:%d", port)
	// Not in a process group of its own: stopping the fake stops it too.
	real := exec.Command(args[1], "-H", fmt.Sprint(port), "--address", "127.0.0.1", "-S", args[3],
		"--dc", "2="+args[2], "--handshake-timeout", args[4])
	real.Stdout, real.Stderr = io.Discard, io.Discard
	if err := real.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer real.Process.Kill()
	for range 200 {
		if c, err := net.Dial("tcp", up); err == nil {
			c.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	var kept []net.Conn
	short := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			u, err := net.Dial("tcp", up)
			if err != nil {
				c.Close()
				return
			}
			cr := &countingReader{r: c}
			go func() {
				io.Copy(u, cr)
				u.(*net.TCPConn).CloseWrite()
			}()
			io.Copy(c, u) // until the proxy behind closes
			u.Close()
			if cr.n.Load() >= 64 || cr.eof.Load() {
				c.Close()
				return
			}
			mu.Lock()
			defer mu.Unlock()
			short++
			switch {
			case mode == "exit" && short == 5:
				real.Process.Kill()
				os.Exit(3)
			case mode == "leak":
				if len(kept) == 0 {
					fmt.Fprintln(os.Stderr, "panic: soak test: keeping connections")
				}
				kept = append(kept, c)
			default:
				c.Close()
			}
		}()
	}
}

// countingReader counts the bytes read and notes an EOF.
type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	eof atomic.Bool
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	if err == io.EOF {
		c.eof.Store(true)
	}
	return n, err
}
