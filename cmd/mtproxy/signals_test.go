package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

// TestMain lets the tests run this binary as mtproxy itself: with
// MTPROXY_TEST_MAIN=1 the arguments are mtproxy's.
func TestMain(m *testing.M) {
	if os.Getenv("MTPROXY_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is an mtproxy process started by a test.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when it has exited
	code   int
}

func (c *child) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.Write(p)
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// startChild runs mtproxy with args and waits until it listens (unless
// logs go to a file).
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(os.Args[0], args...), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "MTPROXY_TEST_MAIN=1")
	c.cmd.Stderr = c
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			c.code = exit.ExitCode()
		default:
			c.code = -1
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("mtproxy output:\n%s", c.output())
		}
	})
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitLog waits until the output holds n lines containing s.
func (c *child) waitLog(s string, n int) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%d log lines with %q", n, s), 10*time.Second, func() bool {
		return strings.Count(c.output(), s) >= n
	})
}

func (c *child) signal(s os.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(s); err != nil {
		c.t.Fatal(err)
	}
}

// exitCode waits for the process to exit within d.
func (c *child) exitCode(d time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(d):
		c.t.Fatalf("mtproxy still running after %v", d)
		return 0
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network, host string) int {
	t.Helper()
	l, err := net.Listen(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startEchoDC(t *testing.T) *fakedc.Server {
	t.Helper()
	d, err := fakedc.Start(fakedc.Config{Mode: fakedc.Echo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func dialKey(t *testing.T, addr string, k [16]byte) *tgclient.RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRaw(ctx, addr, k, fakedc.TagIntermediate, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends n random bytes through c and checks they come back.
func echo(t *testing.T, c io.ReadWriter, n int) {
	t.Helper()
	msg := make([]byte, n)
	rand.Read(msg)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

// expectClosed checks that c gets no byte and is closed within d; it
// returns how long that took.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v: want the connection closed without an answer", n, err)
	}
	return time.Since(start)
}

// TestSIGHUPReload: a changed config applies to new clients without
// dropping open ones; a setting that needs a restart is only logged; a
// broken config changes nothing.
func TestSIGHUPReload(t *testing.T) {
	t.Parallel()
	d := startEchoDC(t)
	port := freePort(t, "tcp4", "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	base := fmt.Sprintf("http-ports = %d\naddress = \"127.0.0.1\"\ndc = [\"2=%s\"]\nhandshake-timeout = \"400ms\"\nslaves = 2\n", port, d.Addr())
	path := writeConfig(t, base+"[users]\nalice = \""+key+"\"\n")
	rewrite := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := startChild(t, "--config", path)
	p.waitLog("listening", 1)
	a := dialKey(t, addr, mustKey(t, key))
	echo(t, a, 1000)

	rewrite(base + "[users]\nbob = \"dd" + keyB + "\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 1)
	echo(t, a, 2000) // the open client keeps relaying
	b := dialKey(t, addr, mustKey(t, keyB))
	echo(t, b, 1000)
	a2 := dialKey(t, addr, mustKey(t, key))
	a2.Write([]byte("hello?"))
	if took := expectClosed(t, a2, 5*time.Second); took < 200*time.Millisecond {
		t.Errorf("old secret closed after %v, before the handshake timeout: want it treated as any wrong secret", took)
	}
	if !strings.Contains(p.output(), `"added": ["bob"], "removed": ["alice"]`) {
		t.Error("reload does not log the users added and removed")
	}
	if !strings.Contains(p.output(), `"user": "bob"`) {
		t.Error("no links logged for the new user")
	}

	// A setting that cannot change while running.
	rewrite(strings.Replace(base, "slaves = 2", "slaves = 3", 1) + "[users]\nbob = \"" + keyB + "\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 2)
	if !strings.Contains(p.output(), `needs a restart; keeping the running value	{"setting": "slaves"}`) {
		t.Error("no restart warning for slaves")
	}

	// A broken file keeps everything.
	rewrite(base + "bogus = 1\n[users]\nalice = \"" + key + "\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLog("does not load", 1)
	if !strings.Contains(p.output(), `unknown key \"bogus\"`) {
		t.Error("the reload error does not name the bad key")
	}
	b2 := dialKey(t, addr, mustKey(t, keyB))
	echo(t, b2, 500)
	b2.Close()
	a3 := dialKey(t, addr, mustKey(t, key))
	a3.Write([]byte("hello?"))
	expectClosed(t, a3, 5*time.Second)

	a.Close()
	b.Close()
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

// TestSIGTERMDrains: after SIGTERM an open client keeps relaying, a new
// one is closed at once, and the process exits 0 once the client leaves.
func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	d := startEchoDC(t)
	port := strconv.Itoa(freePort(t, "tcp4", "127.0.0.1"))
	addr := net.JoinHostPort("127.0.0.1", port)
	p := startChild(t, "-H", port, "--address", "127.0.0.1", "--dc", "2="+d.Addr(), "-S", key, "--drain-timeout", "20s")
	p.waitLog("listening", 1)
	c := dialKey(t, addr, mustKey(t, key))
	echo(t, c, 1000)
	p.signal(syscall.SIGTERM)
	p.waitLog("draining", 1)
	echo(t, c, 5000)
	late := dialKey(t, addr, mustKey(t, key))
	late.Write([]byte("hello?"))
	if took := expectClosed(t, late, 5*time.Second); took > 2*time.Second {
		t.Errorf("a new client during the drain was closed after %v, want at once", took)
	}
	echo(t, c, 1000)
	select {
	case <-p.done:
		t.Fatal("exited while a client was open")
	default:
	}
	start := time.Now()
	c.Close()
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("exit %v after the last client left", e)
	}
}

// TestSecondSignalClosesAtOnce: SIGINT during the drain closes the
// remaining clients and exits 0.
func TestSecondSignalClosesAtOnce(t *testing.T) {
	t.Parallel()
	d := startEchoDC(t)
	port := strconv.Itoa(freePort(t, "tcp4", "127.0.0.1"))
	addr := net.JoinHostPort("127.0.0.1", port)
	p := startChild(t, "-H", port, "--address", "127.0.0.1", "--dc", "2="+d.Addr(), "-S", key)
	p.waitLog("listening", 1)
	c := dialKey(t, addr, mustKey(t, key))
	echo(t, c, 1000)
	p.signal(syscall.SIGTERM)
	p.waitLog("draining", 1)
	p.signal(syscall.SIGINT)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	p.waitLog("second signal", 1)
	expectClosed(t, c, 5*time.Second)
}

// TestSIGUSR1ReopensLogFile: after the log file is moved away, SIGUSR1
// makes a new one that gets the new lines.
func TestSIGUSR1ReopensLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mtproxy.log")
	port := strconv.Itoa(freePort(t, "tcp4", "127.0.0.1"))
	p := startChild(t, "-H", port, "--address", "127.0.0.1", "-S", key, "-l", logPath, "--drain-timeout", "0s")
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	waitFor(t, "listening in the log file", 10*time.Second, func() bool { return strings.Contains(read(logPath), "listening") })
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm()&0o137 != 0 {
		t.Fatalf("log file mode %v, %v: want at most 0640", fi.Mode(), err)
	}
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGUSR1)
	waitFor(t, "a new log file", 10*time.Second, func() bool { return strings.Contains(read(logPath), "log file reopened") })
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if cur := read(logPath); !strings.Contains(cur, "stopping") || strings.Contains(cur, "listening") {
		t.Errorf("new log file:\n%s", cur)
	}
	if old := read(rotated); !strings.Contains(old, "listening") || strings.Contains(old, "reopened") || strings.Contains(old, "stopping") {
		t.Errorf("rotated log file:\n%s", old)
	}
	if p.output() != "" {
		t.Errorf("logs on stderr with --log-file:\n%s", p.output())
	}
}

// TestSIGHUPMiddleProxy: in middle-proxy mode SIGHUP applies a new proxy
// tag and re-reads proxy-multi.conf: new clients go to the new middle
// proxy with the new tag, an open one keeps its middle proxy.
func TestSIGHUPMiddleProxy(t *testing.T) {
	t.Parallel()
	proxySecret := bytes.Repeat([]byte("proxy-secret-for-tests!!"), 4)
	var mes [2]*fakeme.Server
	for i := range mes {
		me, err := fakeme.Start(fakeme.Config{Mode: fakeme.Echo, Secret: proxySecret})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { me.Close() })
		mes[i] = me
	}
	const tag1, tag2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	port := freePort(t, "tcp4", "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	config := func(tag string) string {
		return fmt.Sprintf("http-ports = %d\naddress = \"127.0.0.1\"\naes-pwd = \"proxy-secret\"\nproxy-multi-conf = \"proxy-multi.conf\"\n"+
			"proxy-tag = %q\nconfig-refresh = \"0s\"\ndrain-timeout = \"0s\"\n[users]\nalice = %q\n", port, tag, key)
	}
	path := writeConfig(t, config(tag1))
	dir := filepath.Dir(path)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("proxy-secret", string(proxySecret))
	write("proxy-multi.conf", "proxy_for 2 "+mes[0].Addr()+";\ndefault 2;\n")
	p := startChild(t, "--config", path)
	p.waitLog("listening", 1)

	// packet sends one 64-byte MTProto-looking packet in the intermediate
	// framing and checks the echo.
	packet := func(c io.ReadWriter) {
		t.Helper()
		msg := make([]byte, 4+64)
		binary.LittleEndian.PutUint32(msg, 64)
		rand.Read(msg[4:])
		msg[4] |= 1 // a non-zero auth_key_id
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("echo differs")
		}
	}
	c1 := dialKey(t, addr, mustKey(t, key))
	packet(c1)

	write("proxy-multi.conf", "proxy_for 2 "+mes[1].Addr()+";\ndefault 2;\n")
	if err := os.WriteFile(path, []byte(config(tag2)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("proxy tag changed", 1)
	p.waitLog("middle-proxy configuration changed", 1)
	packet(c1)
	c2 := dialKey(t, addr, mustKey(t, key))
	packet(c2)
	if got := mes[0].AdTags(); got[tag1] != 2 || len(got) != 1 {
		t.Errorf("first middle proxy saw tags %v, want the first tag twice (the open client)", got)
	}
	if got := mes[1].AdTags(); got[tag2] != 1 || len(got) != 1 {
		t.Errorf("second middle proxy saw tags %v, want the new tag once", got)
	}
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
