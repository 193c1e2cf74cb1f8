package refresh

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
)

const (
	confA = "# force_probability 10 10\ndefault 2;\nproxy_for 1 127.0.0.1:8888;\nproxy_for 2 127.0.0.2:8888;\nproxy_for 2 127.0.0.3:8888;\n"
	confB = confA + "proxy_for 4 127.0.0.4:8888;\n"
)

var (
	secretA = bytes.Repeat([]byte{0xa1}, 128)
	secretB = bytes.Repeat([]byte{0xb2}, 128)
)

// waitFor is how long a test waits for something that should happen at
// once; a timeout means it did not happen.
const waitFor = time.Second

// fakeTelegram serves /conf and /secret on loopback; tests change what it
// serves while it runs.
type fakeTelegram struct {
	*httptest.Server
	mu       sync.Mutex
	conf     func(w http.ResponseWriter, r *http.Request)
	secret   func(w http.ResponseWriter, r *http.Request)
	confGets atomic.Int64
}

func newFake(t *testing.T) *fakeTelegram {
	f := &fakeTelegram{}
	f.setConf(body(confA))
	f.setSecret(body(string(secretA)))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		conf, secret := f.conf, f.secret
		f.mu.Unlock()
		switch r.URL.Path {
		case "/conf":
			f.confGets.Add(1)
			conf(w, r)
		case "/secret":
			secret(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTelegram) setConf(h http.HandlerFunc) {
	f.mu.Lock()
	f.conf = h
	f.mu.Unlock()
}

func (f *fakeTelegram) setSecret(h http.HandlerFunc) {
	f.mu.Lock()
	f.secret = h
	f.mu.Unlock()
}

// set changes both at once, so no refresh sees one without the other.
func (f *fakeTelegram) set(conf, secret http.HandlerFunc) {
	f.mu.Lock()
	f.conf, f.secret = conf, secret
	f.mu.Unlock()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func body(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(s)) }
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", code) }
}

// config returns a Config for f, with Apply sending to the returned
// channel and logs recorded.
func (f *fakeTelegram) config(interval time.Duration) (*Config, chan applied, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	ch := make(chan applied, 100)
	return &Config{
		ProxyConfig: Source{URL: f.URL + "/conf"},
		ProxySecret: Source{URL: f.URL + "/secret"},
		Interval:    interval,
		Client:      f.Client(),
		Logger:      zap.New(core),
		Apply:       func(c *proxyconf.Config, s []byte) { ch <- applied{c, s} },
	}, ch, logs
}

type applied struct {
	conf   *proxyconf.Config
	secret []byte
}

func mustLoad(t *testing.T, cfg *Config) *Refresher {
	t.Helper()
	r, _, _, err := Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRun runs r.Run until the test ends, and fails the test if it does
// not return then.
func startRun(t *testing.T, r *Refresher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
}

func waitApply(t *testing.T, ch chan applied) applied {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(waitFor):
		t.Fatal("Apply not called")
		return applied{}
	}
}

func noApply(t *testing.T, ch chan applied) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("Apply called with %v", a.conf)
	default:
	}
}

// waitLog waits for n entries at level containing text in their error
// field or message.
func waitLog(t *testing.T, logs *observer.ObservedLogs, level zapcore.Level, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := logs.Filter(func(e observer.LoggedEntry) bool {
			if e.Level != level {
				return false
			}
			if strings.Contains(e.Message, text) {
				return true
			}
			err, _ := e.ContextMap()["error"].(string)
			return strings.Contains(err, text)
		}).Len()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			all := logs.All()
			last := all[max(0, len(all)-3):]
			t.Fatalf("%d %v entries with %q, want %d; the last of %d: %v", got, level, text, n, len(all), last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitGets waits until the server has seen n requests for the config in
// all. Run fetches the config first, so request k+1 means refresh k is
// over, Apply included.
func (f *fakeTelegram) waitGets(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for f.confGets.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d config requests, want %d", f.confGets.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func targetsOf(c *proxyconf.Config) int {
	n := 0
	for _, cl := range c.Clusters() {
		n += len(cl.Targets)
	}
	return n
}

func TestLoadURL(t *testing.T) {
	f := newFake(t)
	cfg, ch, logs := f.config(0)
	r, conf, secret, err := Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil || len(conf.Clusters()) != 2 || targetsOf(conf) != 3 || conf.Default() != 2 {
		t.Fatalf("conf = %q", conf)
	}
	if !bytes.Equal(secret, secretA) {
		t.Fatalf("secret = %x", secret)
	}
	noApply(t, ch) // Load returns the first configuration, it does not apply it
	e := logs.FilterMessage("middle-proxy configuration loaded").All()
	if len(e) != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	m := e[0].ContextMap()
	if m["clusters"] != int64(2) || m["targets"] != int64(3) || m["key_selector"] != "a1a1a1a1" {
		t.Fatalf("summary: %v", m)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	confPath, secretPath := filepath.Join(dir, "proxy-multi.conf"), filepath.Join(dir, "proxy-secret")
	writeFile(t, confPath, []byte(confA))
	// A trailing newline is part of the binary secret, not trimmed.
	writeFile(t, secretPath, append(bytes.Clone(secretA), '\n'))
	_, conf, secret, err := Load(context.Background(), &Config{
		ProxyConfig: Source{Path: confPath},
		ProxySecret: Source{Path: secretPath},
	})
	if err != nil {
		t.Fatal(err)
	}
	if conf.String() != mustParse(t, confA).String() {
		t.Fatalf("conf = %q", conf)
	}
	if len(secret) != 129 || !bytes.Equal(secret[:128], secretA) {
		t.Fatalf("secret = %x", secret)
	}

	_, _, _, err = Load(context.Background(), &Config{
		ProxyConfig: Source{Path: filepath.Join(dir, "missing")},
		ProxySecret: Source{Path: secretPath},
	})
	if err == nil || !strings.Contains(err.Error(), "proxy config") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}

func mustParse(t *testing.T, s string) *proxyconf.Config {
	c, err := proxyconf.Parse("test", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		code       int
		secret     bool // the secret fails rather than the config
		what, path string
	}{
		{500, false, "proxy config", "/conf"},
		{404, false, "proxy config", "/conf"},
		{500, true, "proxy secret", "/secret"},
		{404, true, "proxy secret", "/secret"},
	} {
		f := newFake(t)
		if tc.secret {
			f.setSecret(status(tc.code))
		} else {
			f.setConf(status(tc.code))
		}
		cfg, _, _ := f.config(0)
		_, _, _, err := Load(context.Background(), cfg)
		if err == nil {
			t.Fatalf("%d on %s: no error", tc.code, tc.path)
		}
		for _, want := range []string{tc.what, f.URL + tc.path, http.StatusText(tc.code), strconv.Itoa(tc.code)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%d on %s: %q lacks %q", tc.code, tc.path, err, want)
			}
		}
	}
}

func TestLoadNetworkError(t *testing.T) {
	f := newFake(t)
	cfg, _, _ := f.config(0)
	f.Close() // nothing listens there any more
	_, _, _, err := Load(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "proxy config: "+f.URL+"/conf: ") {
		t.Fatalf("err = %v", err)
	}
	if strings.Count(err.Error(), f.URL) != 1 {
		t.Errorf("URL repeated: %v", err)
	}
}

func TestLoadOversized(t *testing.T) {
	f := newFake(t)
	// An endless body: reading it whole ends only with the deadline.
	f.setConf(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("# padding\n", 6554))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	cfg, _, _ := f.config(0)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, _, _, err := Load(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "proxy config") || !strings.Contains(err.Error(), "larger than 16777216 bytes") {
		t.Fatalf("endless config: %v", err)
	}

	f.setConf(body(confA))
	f.setSecret(body(strings.Repeat("s", proxyconf.MaxSecretLen+1)))
	_, _, _, err = Load(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "proxy secret") || !strings.Contains(err.Error(), "larger than 256 bytes") {
		t.Fatalf("257-byte secret: %v", err)
	}

	// The limit itself is fine.
	f.setSecret(body(strings.Repeat("s", proxyconf.MaxSecretLen)))
	if _, _, _, err = Load(context.Background(), cfg); err != nil {
		t.Fatalf("256-byte secret: %v", err)
	}
}

func TestLoadParseError(t *testing.T) {
	f := newFake(t)
	f.setConf(body("default 2;\nproxy_for 2 127.0.0.1:8888;\nproxy_for 2 127.0.0.1:;\n"))
	cfg, _, _ := f.config(0)
	_, _, _, err := Load(context.Background(), cfg)
	var se *proxyconf.SyntaxError
	if !errors.As(err, &se) || se.Line != 3 {
		t.Fatalf("err = %v, want a syntax error on line 3", err)
	}
	if !strings.Contains(err.Error(), f.URL+"/conf:3: ") {
		t.Fatalf("err = %v, want the URL and line", err)
	}

	f.setConf(body(confA))
	f.setSecret(body("short"))
	if _, _, _, err = Load(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "proxy secret: "+f.URL+"/secret") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestLoadBadConfig(t *testing.T) {
	ok := Source{Path: "/nonexistent"}
	for _, cfg := range []Config{
		{ProxyConfig: Source{}, ProxySecret: ok},
		{ProxyConfig: Source{Path: "a", URL: "http://127.0.0.1/"}, ProxySecret: ok},
		{ProxyConfig: ok, ProxySecret: Source{URL: "ftp://127.0.0.1/secret"}},
		{ProxyConfig: ok, ProxySecret: ok, Interval: -time.Second},
	} {
		_, _, _, err := Load(context.Background(), &cfg)
		// Refused before reading anything, so not for the missing file.
		if err == nil || strings.Contains(err.Error(), "nonexistent") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestSourceString(t *testing.T) {
	if s := (Source{URL: DefaultConfigURL}).String(); s != DefaultConfigURL {
		t.Error(s)
	}
	if s := (Source{Path: "/etc/proxy-secret"}).String(); s != "/etc/proxy-secret" {
		t.Error(s)
	}
}

func TestRunAppliesChange(t *testing.T) {
	f := newFake(t)
	cfg, ch, logs := f.config(5 * time.Millisecond)
	r := mustLoad(t, cfg)
	startRun(t, r)

	f.setConf(body(confB))
	a := waitApply(t, ch)
	if len(a.conf.Clusters()) != 3 || targetsOf(a.conf) != 4 || !bytes.Equal(a.secret, secretA) {
		t.Fatalf("applied %q, %x", a.conf, a.secret)
	}
	waitLog(t, logs, zapcore.InfoLevel, "middle-proxy configuration changed", 1)
	m := logs.FilterMessage("middle-proxy configuration changed").All()[0].ContextMap()
	if m["clusters"] != int64(3) || m["targets"] != int64(4) || m["key_selector"] != "a1a1a1a1" ||
		len(m["changed"].([]any)) != 1 || m["changed"].([]any)[0] != "proxy config" {
		t.Fatalf("summary: %v", m)
	}

	f.setSecret(body(string(secretB)))
	a2 := waitApply(t, ch)
	if a2.conf != a.conf || !bytes.Equal(a2.secret, secretB) {
		t.Fatalf("applied %q, %x; want the same config and the new secret", a2.conf, a2.secret)
	}
	waitLog(t, logs, zapcore.InfoLevel, "middle-proxy configuration changed", 2)
	m = logs.FilterMessage("middle-proxy configuration changed").All()[1].ContextMap()
	if m["key_selector"] != "b2b2b2b2" || m["changed"].([]any)[0] != "proxy secret" {
		t.Fatalf("summary: %v", m)
	}
}

func TestRunNoChange(t *testing.T) {
	f := newFake(t)
	cfg, ch, _ := f.config(5 * time.Millisecond)
	startRun(t, mustLoad(t, cfg))
	f.waitGets(t, 4) // Load, then three refreshes begun, two over
	noApply(t, ch)
}

func TestRunKeepsLastGood(t *testing.T) {
	f := newFake(t)
	cfg, ch, logs := f.config(5 * time.Millisecond)
	startRun(t, mustLoad(t, cfg))

	for _, tc := range []struct {
		name         string
		conf, secret http.HandlerFunc
		want         string // in the warning
	}{
		{"status", status(500), body(string(secretA)), "/conf: HTTP status 500"},
		{"garbage", body("<html>Bad gateway</html>"), body(string(secretA)), "/conf:1: unknown statement"},
		{"empty", body(""), body(string(secretA)), "no proxy_for or proxy statement"},
		{"comments only", body("# force_probability 10 10\n"), body(string(secretA)), "no proxy_for or proxy statement"},
		// The config stays as loaded: a refresh fetches the two files one
		// after the other, so a new one here could be fetched before the
		// restore below and applied with the restored secret. TestReload
		// checks that a new config with a bad secret is not applied.
		{"short secret", body(confA), body("x"), "proxy secret of 1 bytes"},
		{"secret gone", body(confA), status(404), "/secret: HTTP status 404"},
	} {
		logs.TakeAll()
		f.set(tc.conf, tc.secret)
		waitLog(t, logs, zapcore.WarnLevel, tc.want, 1)
		if got := logs.FilterMessage("middle-proxy configuration refresh failed; keeping the last good one").Len(); got == 0 {
			t.Fatalf("%s: warning has another message: %v", tc.name, logs.All())
		}
		// Let another refresh end, so a wrong Apply is caught.
		f.waitGets(t, f.confGets.Load()+2)
		noApply(t, ch)
		f.set(body(confA), body(string(secretA)))
	}

	// Back to what was loaded: nothing to apply. Then a change still
	// gets through, so failures do not stop Run.
	f.waitGets(t, f.confGets.Load()+2)
	noApply(t, ch)
	f.setConf(body(confB))
	if a := waitApply(t, ch); len(a.conf.Clusters()) != 3 {
		t.Fatalf("applied %q", a.conf)
	}
}

func TestReload(t *testing.T) {
	f := newFake(t)
	cfg, ch, logs := f.config(0)
	r := mustLoad(t, cfg)
	ctx := context.Background()

	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	noApply(t, ch)

	f.setConf(body(confB))
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	select { // Reload applies before it returns
	case a := <-ch:
		if len(a.conf.Clusters()) != 3 {
			t.Fatalf("applied %q", a.conf)
		}
	default:
		t.Fatal("Apply not called")
	}

	f.setConf(status(503))
	err := r.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	waitLog(t, logs, zapcore.WarnLevel, "503", 1)
	noApply(t, ch)

	// The last good is confB, not the confA loaded first.
	f.setConf(body(confB))
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	noApply(t, ch)

	// A good new config with a bad secret: neither is applied, the two
	// are one configuration.
	f.set(body(confA), body("x"))
	if err := r.Reload(ctx); err == nil || !strings.Contains(err.Error(), "proxy secret") {
		t.Fatalf("err = %v", err)
	}
	noApply(t, ch)
	f.set(body(confB), body(string(secretA)))
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	noApply(t, ch)
}

func TestReloadFile(t *testing.T) {
	dir := t.TempDir()
	confPath, secretPath := filepath.Join(dir, "proxy-multi.conf"), filepath.Join(dir, "proxy-secret")
	writeFile(t, confPath, []byte(confA))
	writeFile(t, secretPath, secretA)
	ch := make(chan applied, 1)
	r := mustLoad(t, &Config{
		ProxyConfig: Source{Path: confPath},
		ProxySecret: Source{Path: secretPath},
		Apply:       func(c *proxyconf.Config, s []byte) { ch <- applied{c, s} },
	})

	writeFile(t, confPath, []byte(confB)) // an operator replaces it
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := <-ch; len(a.conf.Clusters()) != 3 {
		t.Fatalf("applied %q", a.conf)
	}

	writeFile(t, confPath, nil) // truncated
	if err := r.Reload(context.Background()); err == nil {
		t.Fatal("empty file applied")
	}
	noApply(t, ch)
}

func TestRunStops(t *testing.T) {
	f := newFake(t)
	cfg, _, _ := f.config(5 * time.Millisecond)
	r := mustLoad(t, cfg)

	// Cancelled while a download hangs: the download is cancelled too.
	hung := make(chan struct{}, 1)
	f.setConf(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hung <- struct{}{}:
		default:
		}
		hang(r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	select {
	case <-hung:
	case <-time.After(waitFor):
		t.Fatal("Run did not refresh")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
	}

	// With no interval Run returns at once.
	cfg.Interval = 0
	f.setConf(body(confA))
	r = mustLoad(t, cfg)
	done = make(chan struct{})
	go func() {
		r.Run(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Run with Interval 0 did not return")
	}
}

// hang answers r only when the client gives up, or after waitFor so that
// a client that never does fails its test rather than hangs it.
func hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(waitFor):
	}
}

func TestReloadCancelled(t *testing.T) {
	f := newFake(t)
	cfg, _, _ := f.config(0)
	r := mustLoad(t, cfg)
	f.setConf(func(_ http.ResponseWriter, r *http.Request) { hang(r) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Reload(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// Run and Reload together: Apply calls never overlap, and -race checks
// the rest.
func TestConcurrent(t *testing.T) {
	f := newFake(t)
	var flip atomic.Int64
	f.setConf(func(w http.ResponseWriter, _ *http.Request) {
		if flip.Add(1)%2 == 0 {
			w.Write([]byte(confA))
		} else {
			w.Write([]byte(confB))
		}
	})
	cfg, _, _ := f.config(time.Millisecond)
	var inApply, overlaps, applies atomic.Int64
	cfg.Apply = func(*proxyconf.Config, []byte) {
		if inApply.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(100 * time.Microsecond)
		applies.Add(1)
		inApply.Add(-1)
	}
	r := mustLoad(t, cfg)
	startRun(t, r)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				r.Reload(context.Background())
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 || applies.Load() == 0 {
		t.Fatalf("%d applies, %d overlapping", applies.Load(), overlaps.Load())
	}
}

// TestStatus: the status describes the configuration in use, and follows
// a refresh that changes it.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	confPath, secretPath := filepath.Join(dir, "proxy-multi.conf"), filepath.Join(dir, "proxy-secret")
	writeFile(t, confPath, []byte(confA))
	writeFile(t, secretPath, secretA)
	r, _, _, err := Load(context.Background(), &Config{ProxyConfig: Source{Path: confPath}, ProxySecret: Source{Path: secretPath}})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	sum := md5.Sum([]byte(confA))
	if st.Source != confPath || st.Size != len(confA) || st.MD5 != hex.EncodeToString(sum[:]) || st.Clusters != 2 || st.LoadedAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	writeFile(t, confPath, []byte("proxy_for 4 127.0.0.1:1;\n"))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st2 := r.Status(); st2.Clusters != 1 || st2.MD5 == st.MD5 || st2.LoadedAt.Before(st.LoadedAt) {
		t.Fatalf("after a change: %+v", st2)
	}
}
