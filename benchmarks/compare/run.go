package compare

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/internal/hostinfo"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
	"github.com/mtproxy-go/mtproxy/benchmarks/procstat"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

const (
	// sampleEvery is the interval of resident-memory samples.
	sampleEvery = 200 * time.Millisecond
	// progressEvery is the interval of progress lines.
	progressEvery = time.Second
	// fdReserve is what the bench process keeps for itself besides the
	// two descriptors of each idle connection (its end and the fake DC's).
	fdReserve = 256
)

// Options are the settings of a run that are not part of the matrix.
type Options struct {
	// DCAddr is where the fake DC listens; proxies given by address must
	// have all their DCs there. Zero means a random port of 127.0.0.1.
	DCAddr string
	// MEAddr is where the fake middle proxy listens, if a proxy has
	// Middle; proxies given by address must have every DC there. Zero
	// means a random port of 127.0.0.1.
	MEAddr string
	// MESecret is the proxy secret of the fake middle proxy, 32..256
	// bytes; nil means a fresh one. Started proxies find it in
	// {proxy_secret}; proxies given by address must have it.
	MESecret []byte
	// LogDir receives the output of started proxies, a file per scenario.
	LogDir string
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

// Run runs every scenario of plan with every secret kind against every
// proxy, one run at a time on one fake DC, and returns the report. Started
// proxies are started afresh for each run. Run stops early when ctx ends,
// returning what it measured so far.
func Run(ctx context.Context, plan Plan, proxies []Proxy, opts Options) (*Report, error) {
	plan = plan.withDefaults()
	if len(proxies) == 0 {
		return nil, errors.New("compare: no proxies")
	}
	names := make(map[string]bool)
	rep := &Report{Started: time.Now(), Plan: plan}
	for _, p := range proxies {
		if err := p.check(); err != nil {
			return nil, err
		}
		if names[p.Name] {
			return nil, fmt.Errorf("compare: two proxies named %s", p.Name)
		}
		names[p.Name] = true
		rep.Proxies = append(rep.Proxies, p.Name)
	}
	nofile, err := proxyproc.RaiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("compare: raising the open-file limit: %w", err)
	}
	rep.Host = hostinfo.Read(nofile)
	if nofile < uint64(2*plan.Idle+fdReserve) {
		asked := plan.Idle
		plan.Idle = max(int(nofile)-fdReserve, 0) / 2
		rep.Plan.Idle = plan.Idle
		rep.Notes = append(rep.Notes, fmt.Sprintf("idle scenario: %d connections instead of %d, to fit RLIMIT_NOFILE %d (two descriptors per connection here and in the proxy)", plan.Idle, asked, nofile))
	}
	r := &runner{plan: plan, opts: opts, out: &syncWriter{w: opts.Out}}
	if _, err := rand.Read(r.key[:]); err != nil {
		return nil, err
	}
	dc, err := fakedc.Start(fakedc.Config{Mode: fakedc.ReqResp, Addr: opts.DCAddr, OnError: func(err error) {
		r.printf("  fake DC: %v\n", err)
	}})
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	r.dcAddr = dc.Addr()
	r.printf("fake DC on %s", r.dcAddr)
	if slices.ContainsFunc(proxies, func(p Proxy) bool { return p.Middle }) {
		r.meSecret = opts.MESecret
		if r.meSecret == nil {
			r.meSecret = fakeme.NewSecret()
		}
		me, err := fakeme.Start(fakeme.Config{Secret: r.meSecret, Mode: fakeme.ReqResp, Addr: opts.MEAddr, Logf: func(format string, args ...any) {
			r.printf("  "+format+"\n", args...)
		}})
		if err != nil {
			return nil, err
		}
		defer me.Close()
		defer func() {
			st := me.Stats()
			rep.MiddleProxy = &st
		}()
		r.me, r.meAddr = me, me.Addr()
		r.printf(", fake middle proxy on %s", r.meAddr)
	}
	r.printf("; %d scenarios × %d secret kinds × %d proxies\n", len(plan.scenarios()), len(plan.Kinds), len(proxies))

	for _, sc := range plan.scenarios() {
		for _, kind := range plan.Kinds {
			for _, p := range proxies {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				res := r.run(ctx, sc, kind, p)
				rep.Results = append(rep.Results, res)
				r.printf("   %s\n", summary(res))
			}
		}
	}
	return rep, nil
}

type runner struct {
	plan Plan
	opts Options
	out  *syncWriter
	key  [16]byte
	backends
	me *fakeme.Server // nil without a Middle proxy
}

func (r *runner) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

// run runs one scenario with one secret kind against one proxy.
func (r *runner) run(ctx context.Context, sc scenario, kind load.Kind, p Proxy) Result {
	res := Result{Scenario: sc.name, Type: sc.typ, Secret: kind.String(), Proxy: p.Name}
	if !p.serves(kind) {
		res.Skipped = fmt.Sprintf("no %v secrets", kind)
		return res
	}
	r.printf("== %s, %v secret, %s\n", sc.name, kind, p.Name)
	logPath := filepath.Join(r.opts.LogDir, fileName(fmt.Sprintf("%s-%s-%v.log", p.Name, sc.name, kind)))
	in, err := p.start(r.key, &r.backends, r.plan.Workers, logPath)
	if err != nil {
		res.addError(1, err)
		return res
	}
	secret := in.secret
	secret.Kind = kind
	t := load.Target{Addr: in.addr, Secret: secret, Middle: p.Middle}
	if kind == load.Classic {
		t.Framing = r.plan.Framing
	}
	var meBefore fakeme.Stats
	if p.Middle {
		meBefore = r.me.Stats()
	}
	m := measure{runner: r, res: &res, pid: in.pid, target: t}
	switch sc.typ {
	case typeBulk:
		m.bulk(ctx, sc.conns)
	case typeIdle:
		m.idle(ctx, sc.conns)
	case typeStorm:
		m.storm(ctx, sc.conns)
	case typeRR:
		m.requestResponse(ctx, sc.conns)
	}
	if p.Middle {
		// What the fake middle proxy refused is the proxy's fault too,
		// even if no client noticed.
		st := r.me.Stats()
		if n := st.BadRequests - meBefore.BadRequests; n > 0 {
			res.addError(n, fmt.Errorf("the fake middle proxy got %d bad requests", n))
		}
		if n := st.Errors + st.HandshakesFailed - meBefore.Errors - meBefore.HandshakesFailed; n > 0 {
			res.addError(n, fmt.Errorf("the fake middle proxy failed %d RPC connections", n))
		}
	}
	if err := in.stop(); err != nil {
		res.addError(1, err)
	}
	return res
}

func (res *Result) addError(n int64, err error) {
	res.Errors += n
	if res.Error == "" && err != nil {
		res.Error = err.Error()
	}
}

// measure runs the load of one scenario and measures the proxy.
type measure struct {
	*runner
	res    *Result
	pid    int
	target load.Target
}

// watch prints progress about lm until the returned function is called.
func (m *measure) watch(ctx context.Context, label string, lm *load.Meter) (stop func()) {
	return load.Progress(ctx, m.out, label, lm, progressEvery)
}

// open opens n connections with progress, and reports whether all were
// established; the errors go into the result.
func (m *measure) open(ctx context.Context, n int) ([]*load.Conn, bool) {
	var lm load.Meter
	stop := m.watch(ctx, "opening", &lm)
	conns := load.Open(ctx, m.target, 0, load.OpenConfig{Conns: n, Concurrency: m.plan.OpenConcurrency, Rate: m.plan.OpenRate}, &lm)
	stop()
	m.res.Conns = len(conns)
	m.res.addError(lm.Errors())
	if len(conns) < n {
		m.res.addError(0, fmt.Errorf("established %d of %d connections", len(conns), n))
		return conns, false
	}
	return conns, true
}

// usage reads the proxy's usage; a proxy that is gone is an error.
func (m *measure) usage() (procstat.Usage, bool) {
	u, err := procstat.Tree(m.pid)
	if err != nil {
		m.res.addError(1, fmt.Errorf("reading the proxy's usage: %w", err))
		return u, false
	}
	return u, true
}

// span measures the proxy's CPU time and peak memory while f runs.
func (m *measure) span(f func()) bool {
	before, ok := m.usage()
	if !ok {
		return false
	}
	s := procstat.Sample(m.pid, sampleEvery)
	f()
	peak, err := s.Stop()
	if err != nil {
		m.res.addError(1, fmt.Errorf("sampling the proxy: %w", err))
		return false
	}
	after, ok := m.usage()
	if !ok {
		return false
	}
	m.res.CPUSeconds = (after.CPU - before.CPU).Seconds()
	m.res.PeakRSSMiB = mib(max(peak, after.RSS))
	return true
}

func (m *measure) bulk(ctx context.Context, n int) {
	conns, ok := m.open(ctx, n)
	defer load.CloseAll(conns)
	if !ok {
		return
	}
	var lm load.Meter
	var lr load.Result
	if !m.span(func() {
		stop := m.watch(ctx, m.res.Scenario, &lm)
		defer stop()
		lr = load.Bulk(ctx, conns, load.BulkConfig{UpSize: m.plan.BulkUp, DownSize: m.plan.BulkDown, Duration: m.plan.Duration}, &lm)
	}) {
		return
	}
	m.res.addError(lr.Errors, lr.Err)
	m.res.Seconds = lr.Elapsed.Seconds()
	m.res.BytesUp, m.res.BytesDown = lr.Up, lr.Down
	m.res.UpMBps, m.res.DownMBps = lr.UpRate()/1e6, lr.DownRate()/1e6
	total := float64(lr.Up + lr.Down)
	if total > 0 {
		m.res.CPUSecondsPerGB = m.res.CPUSeconds / (total / 1e9)
	}
	if m.res.CPUSeconds > 0 {
		m.res.MBPerCPUSecond = total / 1e6 / m.res.CPUSeconds
	}
}

func (m *measure) idle(ctx context.Context, n int) {
	before, ok := m.usage()
	if !ok {
		return
	}
	start := time.Now()
	var conns []*load.Conn
	if !m.span(func() {
		conns, ok = m.open(ctx, n)
		m.res.Seconds = time.Since(start).Seconds()
		select {
		case <-ctx.Done():
		case <-time.After(m.plan.Settle):
		}
	}) || !ok {
		load.CloseAll(conns)
		return
	}
	during, ok := m.usage()
	// Every connection must still work end to end.
	var lm load.Meter
	load.Ping(ctx, conns, m.plan.OpenConcurrency, &lm)
	load.CloseAll(conns)
	m.res.addError(lm.Errors())
	if !ok {
		return
	}
	m.res.RSSBeforeMiB = mib(before.RSS)
	m.res.RSSIdleMiB = mib(during.RSS)
	m.res.RSSPerConnKiB = float64(during.RSS-before.RSS) / float64(len(conns)) / 1024
}

func (m *measure) storm(ctx context.Context, concurrency int) {
	var lm load.Meter
	var lr load.Result
	if !m.span(func() {
		stop := m.watch(ctx, m.res.Scenario, &lm)
		defer stop()
		lr = load.Storm(ctx, m.target, 0, load.StormConfig{Concurrency: concurrency, Duration: m.plan.Duration}, &lm)
	}) {
		return
	}
	m.res.addError(lr.Errors, lr.Err)
	m.res.Conns = lr.Conns
	m.res.Seconds = lr.Elapsed.Seconds()
	m.res.HandshakesPerSecond = float64(lr.Conns) / lr.Elapsed.Seconds()
	if lr.Conns > 0 {
		m.res.CPUMicrosPerHandshake = m.res.CPUSeconds * 1e6 / float64(lr.Conns)
	}
	m.res.Latency = latencyOf(&lm.Latency)
}

func (m *measure) requestResponse(ctx context.Context, n int) {
	conns, ok := m.open(ctx, n)
	defer load.CloseAll(conns)
	if !ok {
		return
	}
	var lm load.Meter
	var lr load.Result
	if !m.span(func() {
		stop := m.watch(ctx, m.res.Scenario, &lm)
		defer stop()
		lr = load.RequestResponse(ctx, conns, load.RRConfig{
			ReqSize: m.plan.RRReq, ReplySize: m.plan.RRReply, Delay: m.plan.RRDelay,
			Rate: m.plan.RRRate, Duration: m.plan.Duration,
		}, &lm)
	}) {
		return
	}
	m.res.addError(lr.Errors, lr.Err)
	m.res.Seconds = lr.Elapsed.Seconds()
	m.res.Requests = lr.Requests
	m.res.RequestsPerSecond = float64(lr.Requests) / lr.Elapsed.Seconds()
	m.res.Latency = latencyOf(&lm.Latency)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// fileName replaces the characters of name that are awkward in a file
// name, such as the blank in "mtproxy-go middle", with '_'.
func fileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// summary is the one-line outcome of a run.
func summary(r Result) string {
	s := fmt.Sprintf("%s %s %s: ", r.Scenario, r.Secret, r.Proxy)
	switch {
	case r.Skipped != "":
		return s + "skipped, " + r.Skipped
	case r.Type == typeBulk:
		s += fmt.Sprintf("%.0f MB/s up, %.0f MB/s down, %.3f CPU s/GB", r.UpMBps, r.DownMBps, r.CPUSecondsPerGB)
	case r.Type == typeIdle:
		s += fmt.Sprintf("%d connections, %.1f KiB each", r.Conns, r.RSSPerConnKiB)
	case r.Type == typeStorm:
		s += fmt.Sprintf("%.0f handshakes/s, %.0f CPU µs each", r.HandshakesPerSecond, r.CPUMicrosPerHandshake)
	case r.Type == typeRR && r.Latency != nil:
		s += fmt.Sprintf("%.0f req/s, p50 %.3f ms, p99 %.3f ms", r.RequestsPerSecond, r.Latency.P50, r.Latency.P99)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf("; %d errors, first: %s", r.Errors, r.Error)
	}
	return s
}

// syncWriter serialises writes from progress goroutines and the fake DC.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	if s.w == nil {
		return len(b), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
