package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/refresh"
	"github.com/mtproxy-go/mtproxy/internal/testnet"
)

// Every test stays on loopback: the clock URL, DC table, middle proxies and
// fronted site all point at local servers, and localOnly fails a test that
// dials anything else.

// localOnly is a Dialer that refuses, and fails the test for, any address
// that is not a loopback IP.
func localOnly(t *testing.T) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
			t.Errorf("dial to non-loopback address %s", addr)
			return nil, errors.New("test: not a loopback address")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// blocking is a Dialer that never connects: a blackhole. It gives up
// after a while even if ctx never ends, since net/http goes on dialling
// after the request that asked for the connection is cancelled.
func blocking(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
		return nil, errors.New("test: blackhole")
	}
}

// bounded is the context for calling one check directly, bounded as Run
// bounds each check, so that a check that waits on a silent peer fails the
// test rather than hanging it.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listener returns the address of a local listener that accepts and holds
// connections without a word, until the test ends.
func listener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// tlsServer starts an HTTPS server that does not log handshake errors
// (the checks hang up after the handshake on purpose).
func tlsServer(t *testing.T, h http.Handler, cfg *tls.Config) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// clockServer returns the URL of a server whose Date is off by off.
func clockServer(t *testing.T, off time.Duration) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(off).UTC().Format(http.TimeFormat))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// dcTable sends DCs 1 to 5 to addrs[i], the last address repeating.
func dcTable(t *testing.T, addrs ...string) *dc.Table {
	t.Helper()
	tab := dc.Default()
	for id := 1; id <= 5; id++ {
		if err := tab.Override(id, addrs[min(id-1, len(addrs)-1)]); err != nil {
			t.Fatal(err)
		}
	}
	return tab
}

func find(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result %q in %+v", name, rs)
	return Result{}
}

func expect(t *testing.T, r Result, st Status, substrs ...string) {
	t.Helper()
	if r.Status != st {
		t.Errorf("%s: status %v, want %v; detail: %s", r.Name, r.Status, st, r.Detail)
	}
	for _, s := range substrs {
		if !strings.Contains(r.Detail, s) {
			t.Errorf("%s: detail lacks %q: %s", r.Name, s, r.Detail)
		}
	}
}

// local returns a configuration whose every check stays on loopback.
func local(t *testing.T) Config {
	return Config{
		ClockURL: clockServer(t, 0),
		DCs:      dcTable(t, listener(t)),
		Timeout:  2 * time.Second,
		Dialer:   localOnly(t),
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{OK: "OK", Warn: "WARN", Fail: "FAIL", Skip: "SKIP", 9: "Status(9)"} {
		if st.String() != want {
			t.Errorf("%d: %q, want %q", int(st), st.String(), want)
		}
	}
}

func TestListen(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := local(t)
	cfg.Listen = []string{busy.Addr().String(), "127.0.0.1:0"}
	rs := Run(context.Background(), cfg)
	expect(t, find(t, rs, "listen "+busy.Addr().String()), Fail, "already in use", "another process listens there")
	expect(t, find(t, rs, "listen 127.0.0.1:0"), OK, "can be bound")

	// Root may bind anything, so the message is checked on its own.
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	if got := listenError("0.0.0.0:443", denied); !strings.Contains(got, "CAP_NET_BIND_SERVICE") {
		t.Errorf("port 443: %q", got)
	}
	if got := listenError("0.0.0.0:8443", denied); got != "permission denied: permission denied" {
		t.Errorf("port 8443: %q", got)
	}
	notHere := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
	if got := listenError("192.0.2.1:443", notHere); !strings.Contains(got, "not an address of this machine") {
		t.Errorf("not available: %q", got)
	}
}

func TestNoListen(t *testing.T) {
	rs := Run(context.Background(), local(t))
	expect(t, find(t, rs, "listen"), Skip)
}

func TestFileLimits(t *testing.T) {
	for _, c := range []struct {
		hard     uint64
		maxConns int
		middle   bool
		want     Status
		detail   string
	}{
		{1024, 10000, false, Warn, "-C 10000 needs about 20256"},
		{1024, 10000, true, Warn, "lower -C to 768"},
		{20255, 10000, false, Warn, "needs about 20256"},
		{20256, 10000, false, OK, "enough for -C 10000"},
		{10255, 10000, true, Warn, "1 per client in middle-proxy mode"},
		{15000, 10000, true, OK, "1 per client"},
		{512, 0, false, Warn, "room for only about 128 clients"},
		{1 << 20, 0, false, OK, "consider -C"},
		{^uint64(0), 0, false, OK, "hard unlimited"},
		{^uint64(0), 1 << 30, false, OK, "enough"},
	} {
		r := fileLimits(c.hard, c.hard, c.maxConns, c.middle)
		r.Name = fmt.Sprintf("hard %d -C %d middle %v", c.hard, c.maxConns, c.middle)
		expect(t, r, c.want, c.detail)
	}
	// This machine's: some numbers, never a failure.
	r := checkFileLimits(100, false)
	r.Name = "this machine"
	if r.Status == Fail || !strings.Contains(r.Detail, "hard") && r.Status != Skip {
		t.Errorf("%v: %s", r.Status, r.Detail)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		off    time.Duration
		want   Status
		detail string
	}{
		{0, OK, "local clock"},
		{time.Second, OK, "behind"},
		{-time.Second, OK, "ahead of"},
		{5 * time.Second, Warn, "over 2s"},
		{60 * time.Second, Fail, "s behind"},
		{-60 * time.Second, Fail, "middle proxies refuse"},
	} {
		cfg := local(t)
		cfg.ClockURL = clockServer(t, c.off)
		r := newRunner(cfg).checkClock(bounded(t))
		r.Name = fmt.Sprintf("clock off by %v", c.off)
		expect(t, r, c.want, c.detail)
	}

	cfg := local(t)
	cfg.ClockURL = "http://" + testnet.RefusedAddr(t)
	r := newRunner(cfg).checkClock(bounded(t))
	r.Name = "closed port"
	expect(t, r, Warn, "unreachable", "connection refused", "clock not checked")

	noDate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
	}))
	defer noDate.Close()
	cfg.ClockURL = noDate.URL
	r = newRunner(cfg).checkClock(bounded(t))
	r.Name = "no Date"
	expect(t, r, Warn, "no Date header")

	cfg.ClockURL = "ftp://example.com"
	r = newRunner(cfg).checkClock(bounded(t))
	r.Name = "bad URL"
	expect(t, r, Warn, "not an http(s) URL")
}

// An HTTPS clock whose certificate does not verify is still read: a clock
// far off is what makes certificates fail.
func TestClockUnverified(t *testing.T) {
	t.Parallel()
	srv := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	}), nil)
	cfg := local(t)
	cfg.ClockURL = srv.URL
	r := newRunner(cfg).checkClock(bounded(t))
	r.Name = "unverified"
	expect(t, r, Fail, "certificate not verified", "s behind")
	if !strings.Contains(r.Detail, "clock 3599.") && !strings.Contains(r.Detail, "clock 3600.") {
		t.Errorf("skew of an hour: %s", r.Detail)
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg.RootCAs = pool
	r = newRunner(cfg).checkClock(bounded(t))
	r.Name = "verified"
	expect(t, r, Fail, "s behind")
	if strings.Contains(r.Detail, "not verified") {
		t.Errorf("verified: %s", r.Detail)
	}
}

func TestDCs(t *testing.T) {
	t.Parallel()
	up, down := listener(t), testnet.RefusedAddr(t)
	for _, c := range []struct {
		name   string
		addrs  []string
		want   Status
		detail []string
	}{
		{"all up", []string{up}, OK, []string{"5 of 5 DCs reachable", "DC 1  " + up + "  "}},
		{"DC 5 down", []string{up, up, up, up, down}, Warn, []string{"4 of 5", "DC 5  " + down + "  unreachable: connection refused"}},
		{"all down", []string{down}, Fail, []string{"0 of 5", "check the firewall"}},
	} {
		cfg := local(t)
		cfg.DCs = dcTable(t, c.addrs...)
		r := newRunner(cfg).checkDCs(bounded(t))
		r.Name = c.name
		expect(t, r, c.want, c.detail...)
	}

	cfg := local(t)
	cfg.Middle = true
	r := newRunner(cfg).checkDCs(bounded(t))
	r.Name = "middle"
	expect(t, r, Skip)
}

func TestDCsIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ln.Close()
	cfg := local(t)
	cfg.PreferIPv6 = true
	// IPv4 addresses stay closed: the IPv6 ones must be the ones dialled.
	cfg.DCs = dcTable(t, testnet.RefusedAddr(t))
	for id := 1; id <= 5; id++ {
		if err := cfg.DCs.Override(id, ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	r := newRunner(cfg).checkDCs(bounded(t))
	r.Name = "IPv6"
	expect(t, r, OK, "5 of 5", "IPv6 preferred", ln.Addr().String())
}

// middleFiles writes proxy-multi.conf and proxy-secret into a temporary
// directory.
func middleFiles(t *testing.T, conf string) *refresh.Config {
	t.Helper()
	dir := t.TempDir()
	confPath, secretPath := filepath.Join(dir, "proxy-multi.conf"), filepath.Join(dir, "proxy-secret")
	secret := make([]byte, 128)
	rand.Read(secret)
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return &refresh.Config{ProxyConfig: refresh.Source{Path: confPath}, ProxySecret: refresh.Source{Path: secretPath}}
}

func TestMiddle(t *testing.T) {
	t.Parallel()
	a, b, down := listener(t), listener(t), testnet.RefusedAddr(t)
	run := func(name string, rc *refresh.Config) Result {
		cfg := local(t)
		cfg.Middle, cfg.Refresh = true, rc
		r := newRunner(cfg).checkMiddle(bounded(t))
		r.Name = name
		return r
	}

	good := fmt.Sprintf("default 2;\nproxy_for 2 %s;\nproxy_for -2 %s;\nproxy_for 4 %s;\n", a, a, b)
	expect(t, run("good", middleFiles(t, good)), OK,
		"2 of 2 middle proxies reachable", "DC 2 -2  "+a, "DC 4     "+b, "128 bytes", "default DC 2")

	some := fmt.Sprintf("proxy_for 2 %s;\nproxy_for 4 %s;\n", a, down)
	expect(t, run("one down", middleFiles(t, some)), Warn, "1 of 2", down+"  unreachable: connection refused")

	expect(t, run("all down", middleFiles(t, "proxy_for 2 "+down+";\n")), Fail, "0 of 1")

	bad := fmt.Sprintf("proxy_for 2 %s;\nproxy_for x 1.2.3.4:443;\n", a)
	expect(t, run("bad config", middleFiles(t, bad)), Fail, "proxy-multi.conf:2:", "refuse to start")

	rc := middleFiles(t, good)
	rc.ProxySecret.Path += ".missing"
	expect(t, run("no secret", rc), Fail, "proxy secret", "no such file")

	rc = middleFiles(t, good)
	os.WriteFile(rc.ProxySecret.Path, []byte("short"), 0o600)
	expect(t, run("short secret", rc), Fail, "5 bytes")

	// Downloaded rather than read.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/conf":
			fmt.Fprint(w, good)
		case "/secret":
			w.Write(bytes.Repeat([]byte{7}, 64))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	expect(t, run("downloaded", &refresh.Config{
		ProxyConfig: refresh.Source{URL: srv.URL + "/conf"},
		ProxySecret: refresh.Source{URL: srv.URL + "/secret"},
	}), OK, "2 of 2", srv.URL+"/conf", "key selector 07070707")
	expect(t, run("404", &refresh.Config{
		ProxyConfig: refresh.Source{URL: srv.URL + "/nothing"},
		ProxySecret: refresh.Source{URL: srv.URL + "/secret"},
	}), Fail, "404")

	cfg := local(t)
	r := newRunner(cfg).checkMiddle(bounded(t))
	r.Name = "direct"
	expect(t, r, Skip)
}

func TestNATHint(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	private := netip.MustParseAddr("10.0.0.5")
	for _, c := range []struct {
		local net.Addr
		nat   map[netip.Addr]netip.Addr
		hint  bool
	}{
		{tcp("10.0.0.5:40000"), nil, true},
		{tcp("100.64.1.2:40000"), nil, true},
		{tcp("10.0.0.5:40000"), map[netip.Addr]netip.Addr{private: netip.MustParseAddr("203.0.113.7")}, false},
		{tcp("127.0.0.1:40000"), nil, false},
		{tcp("203.0.113.7:40000"), nil, false},
		{nil, nil, false},
	} {
		got := natHint([]probe{{local: c.local}}, c.nat)
		if (got != "") != c.hint {
			t.Errorf("%v %v: %q", c.local, c.nat, got)
		}
	}
}

func TestFronting(t *testing.T) {
	t.Parallel()
	srv := tlsServer(t, http.NotFoundHandler(), nil)
	addr := srv.Listener.Addr().String()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	tls12 := tlsServer(t, http.NotFoundHandler(), &tls.Config{MaxVersion: tls.VersionTLS12})

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()

	for _, c := range []struct {
		name, addr, domain string
		roots              *x509.CertPool
		dialer             bool // use localOnly (which skips the shape probe)
		want               Status
		detail             []string
	}{
		// Go's server sends its encrypted flight as several records.
		{"valid", addr, "example.com", pool, false, OK, []string{"TLS 1.3", "valid until", "first encrypted record of"}},
		{"valid, own dialer", addr, "example.com", pool, true, OK, []string{"TLS 1.3", "not probed"}},
		{"SNI mismatch", addr, "wrong.example", pool, false, Warn, []string{"not valid for wrong.example", "TLS 1.3"}},
		{"unknown CA", addr, "example.com", nil, false, Warn, []string{"not valid for example.com", "unknown authority"}},
		{"TLS 1.2", tls12.Listener.Addr().String(), "example.com", nil, true, Warn, []string{"TLS 1.2", "not TLS 1.3"}},
		{"not TLS", plain.Listener.Addr().String(), "example.com", nil, true, Fail, []string{"handshake", "failed"}},
		{"closed", testnet.RefusedAddr(t), "example.com", nil, true, Fail, []string{"unreachable", "connection refused"}},
		{"no domain", addr, "", pool, true, OK, []string{"SNI 127.0.0.1"}},
	} {
		cfg := local(t)
		cfg.FrontingAddr, cfg.Domain, cfg.RootCAs = c.addr, c.domain, c.roots
		if !c.dialer {
			cfg.Dialer = nil // only loopback addresses here
		}
		r := newRunner(cfg).checkFronting(bounded(t))
		r.Name = c.name
		expect(t, r, c.want, c.detail...)
	}

	// The domain's DNS points at the proxy and --fronting was not given.
	cfg := local(t)
	cfg.Listen = []string{":8443"}
	cfg.FrontingAddr = "127.0.0.1:8443"
	r := newRunner(cfg).checkFronting(bounded(t))
	r.Name = "itself"
	expect(t, r, Fail, "loop back")

	r = newRunner(local(t)).checkFronting(bounded(t))
	r.Name = "no fake TLS"
	expect(t, r, Skip)
}

// Run reports every check, in a fixed order, and a local setup passes.
func TestRunAllLocal(t *testing.T) {
	t.Parallel()
	srv := tlsServer(t, http.NotFoundHandler(), nil)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	cfg := local(t)
	cfg.Listen = []string{"127.0.0.1:0", "[::1]:0"}
	cfg.FrontingAddr, cfg.Domain, cfg.RootCAs = srv.Listener.Addr().String(), "example.com", pool
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		cfg.Listen = cfg.Listen[:1]
	} else {
		l.Close()
	}
	rs := Run(context.Background(), cfg)
	want := append([]string{}, func() []string {
		var ns []string
		for _, l := range cfg.Listen {
			ns = append(ns, "listen "+l)
		}
		return ns
	}()...)
	want = append(want, "file limits", "clock", "DC reachability", "middle proxies", "fronting")
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rs), len(want), rs)
	}
	for i, r := range rs {
		if r.Name != want[i] {
			t.Errorf("result %d is %q, want %q", i, r.Name, want[i])
		}
		wantSt := OK
		switch r.Name {
		case "middle proxies":
			wantSt = Skip
		case "file limits":
			wantSt = r.Status // depends on the machine; never Fail
			if r.Status == Fail {
				t.Errorf("file limits failed: %s", r.Detail)
			}
		}
		expect(t, r, wantSt)
		if r.Status != Skip && r.Took <= 0 {
			t.Errorf("%s: took %v", r.Name, r.Took)
		}
	}
	var out bytes.Buffer
	if Report(&out, rs) {
		t.Errorf("Report says failed:\n%s", &out)
	}

	cfg.Middle = true
	cfg.Refresh = middleFiles(t, "proxy_for 2 "+listener(t)+";\n")
	rs = Run(context.Background(), cfg)
	expect(t, find(t, rs, "DC reachability"), Skip)
	expect(t, find(t, rs, "middle proxies"), OK, "1 of 1")
}

// hangs checks that Run returns in about Timeout when every network
// operation hangs, and that the checks say so.
func hangs(t *testing.T, cfg Config, want map[string]Status) {
	t.Helper()
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	rs := Run(context.Background(), cfg)
	if took := time.Since(start); took > cfg.Timeout+margin+300*time.Millisecond {
		t.Errorf("Run took %v with a timeout of %v", took, cfg.Timeout)
	}
	for name, st := range want {
		r := find(t, rs, name)
		expect(t, r, st)
		if r.Took > cfg.Timeout+margin+200*time.Millisecond {
			t.Errorf("%s took %v", name, r.Took)
		}
	}
	var out bytes.Buffer
	Report(&out, rs)
	t.Logf("\n%s", &out)
}

func TestHangBlackhole(t *testing.T) {
	t.Parallel()
	base := func() Config {
		return Config{
			Listen:       []string{"127.0.0.1:0"},
			ClockURL:     "http://" + testnet.RefusedAddr(t),
			DCs:          dcTable(t, testnet.RefusedAddr(t)),
			FrontingAddr: testnet.RefusedAddr(t),
			Domain:       "example.com",
			Dialer:       blocking,
		}
	}
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		hangs(t, base(), map[string]Status{"clock": Warn, "DC reachability": Fail, "fronting": Fail, "middle proxies": Skip})
	})
	t.Run("middle", func(t *testing.T) {
		t.Parallel()
		cfg := base()
		cfg.Middle = true
		cfg.Refresh = &refresh.Config{
			ProxyConfig: refresh.Source{URL: "http://" + testnet.RefusedAddr(t) + "/conf"},
			ProxySecret: refresh.Source{URL: "http://" + testnet.RefusedAddr(t) + "/secret"},
		}
		hangs(t, cfg, map[string]Status{"middle proxies": Fail, "DC reachability": Skip})
	})
	t.Run("middle proxies", func(t *testing.T) {
		t.Parallel()
		cfg := base()
		cfg.Middle = true
		cfg.Refresh = middleFiles(t, "proxy_for 2 "+testnet.RefusedAddr(t)+";\n")
		hangs(t, cfg, map[string]Status{"middle proxies": Fail})
	})
}

// Servers that accept and never answer.
func TestHangSilent(t *testing.T) {
	t.Parallel()
	silent := listener(t)
	cfg := local(t)
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.ClockURL = "https://" + silent
	cfg.FrontingAddr, cfg.Domain = silent, "example.com"
	cfg.Middle = true
	cfg.Refresh = &refresh.Config{
		ProxyConfig: refresh.Source{URL: "http://" + silent + "/conf"},
		ProxySecret: refresh.Source{URL: "http://" + silent + "/secret"},
	}
	hangs(t, cfg, map[string]Status{"clock": Warn, "fronting": Fail, "middle proxies": Fail})
	r := Run(context.Background(), Config{ClockURL: "http://" + silent, Timeout: 200 * time.Millisecond, Dialer: localOnly(t), DCs: dcTable(t, silent)})
	expect(t, find(t, r, "clock"), Warn, "no answer within 200ms")
}

// A cancelled context ends Run early.
func TestCancel(t *testing.T) {
	t.Parallel()
	cfg := local(t)
	cfg.Dialer, cfg.Timeout = blocking, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	rs := Run(ctx, cfg)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %v after cancel", took)
	}
	expect(t, find(t, rs, "DC reachability"), Fail, "cancelled")
}

func TestReport(t *testing.T) {
	rs := []Result{
		{Name: "listen 0.0.0.0:443", Status: OK, Detail: "can be bound", Took: 300 * time.Microsecond},
		{Name: "clock", Status: Warn, Detail: "local clock 3.0 s ahead", Took: 40 * time.Millisecond},
		{Name: "DC reachability", Status: Fail, Detail: "0 of 2 DCs reachable\nDC 1  a:443  unreachable\nDC 2  b:443  unreachable", Took: 5 * time.Second},
		{Name: "middle proxies", Status: Skip, Detail: "direct mode"},
	}
	var out bytes.Buffer
	if !Report(&out, rs) {
		t.Error("a FAIL is not reported as failed")
	}
	text := out.String()
	t.Logf("\n%s", text)
	for _, r := range rs {
		line := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, r.Name) {
				line = l
			}
		}
		if !strings.HasPrefix(line, r.Status.String()) || !strings.Contains(line, strings.Split(r.Detail, "\n")[0]) {
			t.Errorf("%s: line %q", r.Name, line)
		}
	}
	lines := strings.Split(text, "\n")
	col := strings.Index(lines[0], "can be bound")
	for _, l := range lines[1:4] {
		if !strings.HasPrefix(l[col:], "local clock") && !strings.HasPrefix(l[col:], "0 of 2") && !strings.HasPrefix(l[col:], "  DC 1") {
			t.Errorf("not aligned at column %d: %q", col, l)
		}
	}
	if !strings.Contains(text, "4 checks: 1 OK, 1 WARN, 1 FAIL, 1 SKIP: not ready") {
		t.Errorf("summary missing")
	}

	out.Reset()
	if Report(&out, rs[:2]) {
		t.Error("no FAIL but reported as failed")
	}
	if !strings.Contains(out.String(), "ready, but see the WARN lines") {
		t.Errorf("summary: %s", &out)
	}
	out.Reset()
	if Report(&out, rs[:1]) || !strings.Contains(out.String(), "1 checks: 1 OK, 0 WARN, 0 FAIL, 0 SKIP: ready\n") {
		t.Errorf("all OK: %s", &out)
	}
}
