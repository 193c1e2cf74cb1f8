// Package soak floods and soaks the proxy binary, run as a process of its
// own, and watches that process from outside: its descriptors
// (/proc/PID/fd), resident memory and CPU time (/proc/PID/status and
// stat), and its log. Each mode (direct, against a fake DC in echo mode;
// middle-proxy, against a fake middle proxy in echo mode) starts one proxy
// and runs the phases in turn on it:
//
//   - slowloris: Config.Conns connections that send one byte every
//     Config.Trickle, held until the proxy closes them at its handshake
//     timeout. One goroutine owns them all: it sends the bytes in due
//     order and sees the closes through an epoll instance of its own.
//   - garbage: Config.Conns connections that send 1..2048 random bytes
//     and close.
//   - reset: Config.Conns valid obfuscated2 handshakes, each followed at
//     once by a reset (half of them after a 60-byte frame).
//   - short: Config.Short sessions, each a handshake and one echo of a
//     random payload (1..4000 bytes; in middle-proxy mode a packet of 56..4000)
//     checked byte for byte, Config.Concurrency at a time, for at most
//     Config.MaxDuration.
//
// Before the first phase the proxy is warmed up (a few echo sessions) and
// its baseline taken; after every phase the proxy must come back to it: the
// same number of descriptors exactly within Config.Settle, and resident
// memory within Config.RSSSlack of the baseline within Config.RSSWait. A
// phase fails on any client error, an echo that differs, a trickling
// connection the proxy does not close (or closes before its timeout),
// descriptors or memory not coming back, "panic" or "fatal" in the proxy's
// log, or the proxy exiting.
package soak

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/proxytest"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

// Modes and phases, in the order they run.
const (
	Direct = "direct"
	Middle = "middle"

	Slowloris = "slowloris"
	Garbage   = "garbage"
	Reset     = "reset"
	Short     = "short"
)

// AllModes and AllPhases list every mode and phase in running order.
var (
	AllModes  = []string{Direct, Middle}
	AllPhases = []string{Slowloris, Garbage, Reset, Short}
)

// Config sizes a soak run.
type Config struct {
	// Proxy is the proxy binary; it is run with DirectTemplate and
	// MiddleTemplate unless those are given.
	Proxy string
	// DirectTemplate and MiddleTemplate are command templates (package
	// proxyproc) for the proxy in each mode, with the placeholders {port},
	// {secret}, {workers} and {handshake_timeout}, and {dc_addr} (direct)
	// or {proxy_secret} and {proxy_multi_conf} (middle). Empty means
	// proxytest's templates for Proxy with --handshake-timeout.
	DirectTemplate, MiddleTemplate string

	Modes  []string // default: Direct
	Phases []string // default: AllPhases

	Conns            int           // slowloris, garbage and reset connections; default 10000
	Short            int           // short sessions; default 1000000
	Concurrency      int           // short sessions in flight; default 64
	FloodConcurrency int           // flood connections being opened at once; default 64
	MaxDuration      time.Duration // bound on each short phase; default 15m
	HandshakeTimeout time.Duration // given to the proxy; default 10s, the proxy's own default
	Trickle          time.Duration // slowloris: one byte per connection this often; default 2s
	Workers          int           // the proxy's reactors (-M); 0: one per core

	// Settle bounds the wait for the proxy's descriptors to return to
	// the baseline after each phase; 0 means the handshake timeout plus
	// 30s.
	Settle time.Duration
	// RSSSlack is how far above its baseline the proxy's resident memory
	// may stay after a phase; 0 means DefaultRSSSlack. RSSWait bounds the
	// wait for it to come back within that, after the descriptors; 0
	// means DefaultRSSWait.
	RSSSlack int64
	RSSWait  time.Duration

	// LogDir receives the proxy's output, soak-MODE.log; empty means a
	// temporary directory removed afterwards.
	LogDir string
	// Progress receives a line per phase step and, every ProgressEvery
	// (default 10s), the progress of long phases; nil discards them.
	Progress      io.Writer
	ProgressEvery time.Duration

	// steady is how long the proxy's descriptors must hold still after
	// the warm-up before they are the baseline; 0 means a second.
	steady time.Duration
}

// DefaultRSSSlack is the default Config.RSSSlack. Go returns freed memory
// to the system gradually, so right after a flood of thousands of
// connections the proxy may hold some megabytes more than before; a leak
// of even 1 KiB per connection over a million sessions is far more.
const DefaultRSSSlack = 64 << 20

// DefaultRSSWait is the default Config.RSSWait: an idle Go process runs a
// garbage collection at the latest every two minutes, and only then gives
// the memory of a flood back to the system.
const DefaultRSSWait = 150 * time.Second

// fdMargin is the descriptors kept aside beyond one per flood connection:
// listeners, the fake backends, sessions in flight, the runtime.
const fdMargin = 256

func (c *Config) setDefaults() {
	if len(c.Modes) == 0 {
		c.Modes = []string{Direct}
	}
	if len(c.Phases) == 0 {
		c.Phases = AllPhases
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Conns, 10000)
	def(&c.Short, 1000000)
	def(&c.Concurrency, 64)
	def(&c.FloodConcurrency, 64)
	defD(&c.MaxDuration, 15*time.Minute)
	defD(&c.HandshakeTimeout, 10*time.Second)
	defD(&c.Trickle, 2*time.Second)
	defD(&c.Settle, c.HandshakeTimeout+30*time.Second)
	defD(&c.RSSWait, DefaultRSSWait)
	defD(&c.ProgressEvery, 10*time.Second)
	defD(&c.steady, time.Second)
	if c.RSSSlack == 0 {
		c.RSSSlack = DefaultRSSSlack
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.DirectTemplate == "" && c.Proxy != "" {
		c.DirectTemplate = proxytest.Template(c.Proxy) + " --handshake-timeout {handshake_timeout}"
	}
	if c.MiddleTemplate == "" && c.Proxy != "" {
		c.MiddleTemplate = proxytest.MiddleTemplate(c.Proxy) + " --handshake-timeout {handshake_timeout}"
	}
}

// Check validates c after defaults: sizes, names, and whether this
// process may open enough files for Conns connections.
func (c *Config) Check() error {
	if c.Conns < 0 || c.Short < 0 || c.Concurrency < 0 || c.FloodConcurrency < 0 || c.Workers < 0 {
		return errors.New("soak: negative size")
	}
	if c.MaxDuration < 0 || c.HandshakeTimeout < 0 || c.Trickle < 0 || c.Settle < 0 || c.RSSSlack < 0 || c.RSSWait < 0 {
		return errors.New("soak: negative duration or slack")
	}
	for _, m := range c.Modes {
		if !slices.Contains(AllModes, m) {
			return fmt.Errorf("soak: unknown mode %q (want %s)", m, strings.Join(AllModes, ", "))
		}
	}
	for _, p := range c.Phases {
		if !slices.Contains(AllPhases, p) {
			return fmt.Errorf("soak: unknown phase %q (want %s)", p, strings.Join(AllPhases, ", "))
		}
	}
	if c.DirectTemplate == "" || c.MiddleTemplate == "" {
		return errors.New("soak: no proxy binary")
	}
	return c.checkFileLimit()
}

// fdsNeeded is the descriptors this process needs: every slowloris
// connection at once, plus the margin.
func (c *Config) fdsNeeded() uint64 {
	return uint64(c.Conns) + 2*uint64(max(c.Concurrency, c.FloodConcurrency)) + fdMargin
}

// checkFileLimit raises this process's open-file limit to the hard limit
// (Go raises its own soft limit at start, to hard-1, but not for the
// processes it starts; an explicit raise is inherited by the proxy) and
// fails if that is not enough for Conns.
func (c *Config) checkFileLimit() error {
	limit, err := proxyproc.RaiseNoFile()
	if err != nil {
		var lim syscall.Rlimit
		if gerr := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); gerr != nil {
			return fmt.Errorf("soak: reading RLIMIT_NOFILE: %w", gerr)
		}
		limit = lim.Cur
	}
	if need := c.fdsNeeded(); limit < need {
		return fmt.Errorf("soak: %d connections need about %d open files in this process "+
			"(one per connection, %d for sessions in flight and %d spare), but RLIMIT_NOFILE is %d: "+
			"lower -conns to %d or raise the hard limit (ulimit -Hn; LimitNOFILE= under systemd)",
			c.Conns, need, 2*max(c.Concurrency, c.FloodConcurrency), fdMargin, limit,
			max(0, int(limit)-int(need-uint64(c.Conns))))
	}
	return nil
}

// Run runs every mode and phase of cfg. It returns an error only for a
// config it refuses (see Config.Check); anything that goes wrong later,
// from a proxy that does not start to a failed phase, is in the report,
// whose Passed is then false.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	logDir := cfg.LogDir
	if logDir == "" {
		d, err := os.MkdirTemp("", "soak")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		logDir = d
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), Host: host(), Settings: settingsOf(&cfg), Passed: true}
	for _, mode := range cfg.Modes {
		if ctx.Err() != nil {
			break
		}
		m := &modeRun{cfg: &cfg, ctx: ctx, rep: &ModeReport{Mode: mode}, logPath: filepath.Join(logDir, "soak-"+mode+".log")}
		rep.Modes = append(rep.Modes, m.rep)
		err := m.run()
		if err != nil {
			m.rep.Failures = append(m.rep.Failures, err.Error())
		}
		m.rep.Passed = len(m.rep.Failures) == 0
		for _, ph := range m.rep.Phases {
			m.rep.Passed = m.rep.Passed && ph.Passed
		}
		rep.Passed = rep.Passed && m.rep.Passed
	}
	if ctx.Err() != nil {
		rep.Interrupted = true
		rep.Passed = false
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

// modeRun is one proxy and its phases.
type modeRun struct {
	cfg     *Config
	ctx     context.Context
	rep     *ModeReport
	logPath string
	log     *logScan

	proc     *proxyproc.Process
	pid      int
	addr     string
	key      [16]byte
	dc       *fakedc.Server
	me       *fakeme.Server
	meSecret []byte
	base     Usage
	baseOwn  int
	kinds    map[string]int // the proxy's fds by kind at the baseline
}

func (m *modeRun) progressf(format string, args ...any) {
	fmt.Fprintf(m.cfg.Progress, "[%s] %s\n", m.rep.Mode, fmt.Sprintf(format, args...))
}

// run starts the backend and the proxy, runs the phases and stops both.
func (m *modeRun) run() (err error) {
	if err := m.startBackend(); err != nil {
		return err
	}
	defer m.stopBackend()
	err = m.startProxy()
	if m.proc != nil { // started, if not fit for the run
		defer func() {
			if serr := m.stopProxy(); serr != nil && err == nil {
				m.rep.Failures = append(m.rep.Failures, serr.Error())
			}
		}()
	}
	if err != nil {
		return err
	}
	if err := m.warmUp(); err != nil {
		return err
	}
	for _, name := range m.cfg.Phases {
		if m.ctx.Err() != nil {
			return nil
		}
		ph := m.phase(name)
		m.rep.Phases = append(m.rep.Phases, ph)
		if exited, _ := m.proc.Exited(); exited {
			return nil // the phase says so; nothing left to run against
		}
	}
	return nil
}

func (m *modeRun) startBackend() error {
	switch m.rep.Mode {
	case Direct:
		dc, err := fakedc.Start(fakedc.Config{Mode: fakedc.Echo})
		if err != nil {
			return err
		}
		m.dc = dc
	case Middle:
		m.meSecret = fakeme.NewSecret()
		me, err := fakeme.Start(fakeme.Config{Secret: m.meSecret, Mode: fakeme.Echo})
		if err != nil {
			return err
		}
		m.me = me
	}
	return nil
}

func (m *modeRun) stopBackend() {
	if m.dc != nil {
		st := m.dc.Stats()
		m.rep.FakeDC = &st
		m.dc.Close()
	}
	if m.me != nil {
		st := m.me.Stats()
		m.rep.FakeME = &st
		m.me.Close()
		if st.Errors > 0 {
			m.rep.Failures = append(m.rep.Failures, fmt.Sprintf("the fake middle proxy closed %d RPC connections for protocol errors", st.Errors))
		}
	}
}

func (m *modeRun) startProxy() error {
	crand.Read(m.key[:])
	port, err := proxyproc.FreePort()
	if err != nil {
		return err
	}
	m.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	vars := map[string]string{
		"port": strconv.Itoa(port), "secret": hex.EncodeToString(m.key[:]),
		"workers": strconv.Itoa(m.cfg.Workers), "handshake_timeout": m.cfg.HandshakeTimeout.String(),
	}
	template := m.cfg.DirectTemplate
	if m.me != nil {
		dir, err := os.MkdirTemp("", "soak-middle")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir) // read at start; no refresh in a soak
		secret, conf, err := fakeme.WriteFiles(dir, m.me.Addr(), m.meSecret)
		if err != nil {
			return err
		}
		vars["proxy_secret"], vars["proxy_multi_conf"] = secret, conf
		template = m.cfg.MiddleTemplate
	} else {
		vars["dc_addr"] = m.dc.Addr()
	}
	argv, err := proxyproc.Expand(template, vars)
	if err != nil {
		return err
	}
	m.rep.Command = argv
	m.rep.Log = m.logPath
	lf, err := os.Create(m.logPath)
	if err != nil {
		return err
	}
	defer lf.Close() // the proxy has its own copy
	m.log = &logScan{path: m.logPath}
	m.progressf("starting %s", strings.Join(argv, " "))
	p, err := proxyproc.Start(argv, lf, m.addr, 20*time.Second)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, m.logPath)
	}
	m.proc, m.pid = p, p.PID()
	m.rep.PID = m.pid
	limit, err := noFileLimit(m.pid)
	if err != nil {
		return err
	}
	m.rep.NoFile = limit
	if need := uint64(m.cfg.Conns) + fdMargin; limit < need {
		return fmt.Errorf("the proxy's open-file limit is %d, below the %d that %d connections need: "+
			"lower -conns or raise the hard limit (ulimit -Hn)", limit, need, m.cfg.Conns)
	}
	return nil
}

// stopProxy stops the proxy with SIGTERM and checks that it exited
// cleanly, with nothing alarming in the rest of its log.
func (m *modeRun) stopProxy() error {
	exitedBefore, _ := m.proc.Exited()
	stopErr := m.proc.Stop(15 * time.Second)
	_, exitErr := m.proc.Exited()
	lf, err := m.log.scan()
	m.log.flush(&lf)
	m.rep.ShutdownLog = lf
	switch {
	case exitedBefore:
		m.rep.Shutdown = "the proxy had exited during the run"
		return nil // reported by the phase that saw it
	case err != nil:
		return fmt.Errorf("reading the proxy log: %w", err)
	case stopErr != nil:
		m.rep.Shutdown = stopErr.Error()
		return fmt.Errorf("shutdown: %v", stopErr)
	case exitErr != nil:
		m.rep.Shutdown = "exited: " + exitErr.Error()
		return fmt.Errorf("shutdown: the proxy exited with %v after SIGTERM", exitErr)
	case lf.Problems > 0:
		m.rep.Shutdown = "log: " + strings.Join(lf.Quoted, " | ")
		return fmt.Errorf("shutdown: %d log lines mention a panic or a fatal error: %s", lf.Problems, strings.Join(lf.Quoted, " | "))
	}
	m.rep.Shutdown = "clean"
	return nil
}

// warmUp runs a few echo sessions at once, enough for every reactor to
// have served one (and in middle-proxy mode to have opened its RPC
// connections), waits for the proxy to settle and takes the baseline.
func (m *modeRun) warmUp() error {
	n := 16 * max(m.cfg.Workers, runtime.NumCPU())
	res := shortSessions(m.ctx, m.addr, m.key, n, n/2, time.Minute, m.rep.Mode == Middle, time.Hour, nil)
	if res.OK != int64(n) {
		return fmt.Errorf("warm-up: %d of %d echo sessions through the proxy worked; first errors %v %s (log: %s)",
			res.OK, n, res.FirstErrors, res.FirstMismatch, m.logPath)
	}
	// Steady: the same fd counts for Config.steady.
	const every = 50 * time.Millisecond
	var last Usage
	lastOwn, same, reads := -1, 0, int(m.cfg.steady/every)
	bound := max(m.cfg.Settle, 10*time.Second)
	deadline := time.Now().Add(bound)
	for same < reads {
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: the proxy's descriptors did not settle in %v (now %d)", bound, last.FDs)
		}
		if !sleepCtx(m.ctx, every) {
			return m.ctx.Err()
		}
		u, err := usageOf(m.pid)
		if err != nil {
			return fmt.Errorf("warm-up: the proxy: %w", err)
		}
		own, err := countFDs(os.Getpid())
		if err != nil {
			return err
		}
		if u.FDs == last.FDs && own == lastOwn {
			same++
		} else {
			same = 0
		}
		last, lastOwn = u, own
	}
	m.base, m.baseOwn = last, lastOwn
	m.kinds = fdKinds(m.pid)
	m.rep.Baseline = resources(last)
	m.rep.BaselineClientFDs = lastOwn
	lf, err := m.log.scan()
	if err != nil {
		return err
	}
	if lf.Problems > 0 {
		return fmt.Errorf("warm-up: %d log lines mention a panic or a fatal error: %s", lf.Problems, strings.Join(lf.Quoted, " | "))
	}
	m.progressf("baseline: %d fds, %.1f MiB RSS (this process: %d fds)", last.FDs, mib(last.RSS), lastOwn)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cpuSelf is the user and system time of this process.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// phase runs one phase and checks the proxy afterwards.
func (m *modeRun) phase(name string) *Phase {
	ph := &Phase{Name: name}
	fail := func(format string, args ...any) { ph.Failures = append(ph.Failures, fmt.Sprintf(format, args...)) }
	defer func() { ph.Passed = len(ph.Failures) == 0 }()

	before, err := usageOf(m.pid)
	if err != nil {
		fail("the proxy is gone before the phase: %v", m.exitReason(err))
		return ph
	}
	ownBefore, _ := countFDs(os.Getpid())
	ph.Proxy.Before, ph.ClientFDs.Before = resources(before), ownBefore
	var dcBefore fakedc.Stats
	var meBefore fakeme.Stats
	if m.dc != nil {
		dcBefore = m.dc.Stats()
	}
	if m.me != nil {
		meBefore = m.me.Stats()
	}
	m.progressf("%s: start", name)

	// The peaks and the CPU time cover the phase and the proxy's work
	// after it, until its descriptors are back at the baseline.
	sampler := samplePeaks(m.pid, 100*time.Millisecond)
	cpu0 := cpuSelf()
	start := time.Now()
	conns := m.runPhase(ph, name)
	ph.Seconds = time.Since(start).Seconds()
	m.checkPhase(ph, fail)
	m.progressf("%s: done in %.1fs; waiting for the proxy to return to its baseline", name, ph.Seconds)
	alive, back := m.settleFDs(ph, fail)
	ph.ClientCPUSeconds = (cpuSelf() - cpu0).Seconds()
	peakFDs, peakRSS, serr := sampler.Stop()
	after, err := usageOf(m.pid)
	ph.Proxy.Peak = Resources{FDs: max(peakFDs, before.FDs, after.FDs), RSSMiB: mib(max(peakRSS, before.RSS, after.RSS))}
	if serr != nil || err != nil {
		ph.ProxyExited = true
		if alive { // else settleFDs said so
			fail("the proxy exited: %v", m.exitReason(errors.Join(serr, err)))
		}
		m.scanLog(ph)
		return ph
	}
	ph.ProxyCPUSeconds = (after.CPU - before.CPU).Seconds()
	if conns > 0 {
		ph.ProxyCPUPer1000 = ph.ProxyCPUSeconds / float64(conns) * 1000
		ph.ClientCPUPer1000 = ph.ClientCPUSeconds / float64(conns) * 1000
	}
	if m.dc != nil {
		st := m.dc.Stats()
		ph.DCConns = st.Accepted - dcBefore.Accepted
	}
	if m.me != nil {
		st := m.me.Stats()
		ph.MERequests = st.Requests - meBefore.Requests
		ph.MEHandshakes = st.HandshakesOK - meBefore.HandshakesOK
		if d := st.Errors - meBefore.Errors; d > 0 {
			fail("the fake middle proxy closed %d RPC connections for protocol errors", d)
		}
	}
	if back {
		m.settleRSS(ph, fail)
	} else {
		ph.Proxy.After = resources(after)
		ph.RSSAboveBaselineMiB = mib(after.RSS - m.base.RSS)
	}
	m.scanLog(ph)
	if exited, _ := m.proc.Exited(); exited {
		ph.ProxyExited = true
		fail("the proxy exited: %v", m.exitReason(nil))
	}
	return ph
}

func (m *modeRun) exitReason(err error) string {
	// The exit status comes a moment after /proc goes.
	for range 20 {
		if exited, exitErr := m.proc.Exited(); exited {
			if exitErr == nil {
				return "exit status 0"
			}
			return exitErr.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err.Error()
}

func (m *modeRun) scanLog(ph *Phase) {
	lf, err := m.log.scan()
	if err != nil {
		ph.Failures = append(ph.Failures, fmt.Sprintf("reading the proxy log: %v", err))
	}
	if exited, _ := m.proc.Exited(); exited {
		m.log.flush(&lf)
	}
	ph.Log = lf
	if lf.Problems > 0 {
		ph.Failures = append(ph.Failures, fmt.Sprintf("%d proxy log lines mention a panic or a fatal error: %s",
			lf.Problems, strings.Join(lf.Quoted, " | ")))
	}
}

// runPhase runs the client side of a phase and returns the number of
// connections it made.
func (m *modeRun) runPhase(ph *Phase, name string) int {
	c := m.cfg
	switch name {
	case Slowloris:
		res, err := slowloris(m.ctx, m.addr, c.Conns, c.FloodConcurrency, c.Trickle, c.HandshakeTimeout)
		if err != nil {
			ph.Failures = append(ph.Failures, err.Error())
		}
		ph.Slowloris = res
		if res != nil {
			return res.Opened
		}
	case Garbage:
		ph.Flood = garbageFlood(m.ctx, m.addr, c.Conns, c.FloodConcurrency)
		return int(ph.Flood.Completed)
	case Reset:
		ph.Flood = resetFlood(m.ctx, m.addr, m.key, c.Conns, c.FloodConcurrency)
		return int(ph.Flood.Completed)
	case Short:
		ph.Short = shortSessions(m.ctx, m.addr, m.key, c.Short, c.Concurrency, c.MaxDuration, m.rep.Mode == Middle,
			c.ProgressEvery, func(started, ok, failed int64, elapsed time.Duration) {
				m.progressf("short: %d of %d sessions in %.0fs, %.0f/s, %d failed", started, c.Short,
					elapsed.Seconds(), float64(ok+failed)/elapsed.Seconds(), failed)
			})
		return int(ph.Short.OK + ph.Short.Errors + ph.Short.Mismatches)
	}
	return 0
}

// checkPhase applies the client-side pass criteria of each phase.
func (m *modeRun) checkPhase(ph *Phase, fail func(string, ...any)) {
	if m.ctx.Err() != nil {
		fail("interrupted")
	}
	if s := ph.Slowloris; s != nil {
		if s.DialErrors > 0 {
			fail("%d of %d slowloris connections failed to open, first: %s", s.DialErrors, s.Conns, s.FirstError)
		}
		if s.NotClosed > 0 {
			fail("%d slowloris connections were still open %.1fs after the last one opened (handshake timeout %.1fs)",
				s.NotClosed, s.LateSecs+s.TimeoutSecs/2, s.TimeoutSecs)
		}
		if s.Early > 0 {
			fail("%d slowloris connections were closed before the handshake timeout (first after %.2fs)", s.Early, s.CloseAfter.Min)
		}
		if s.Late > 0 {
			fail("%d slowloris connections were closed later than %.1fs after connecting (latest %.2fs)", s.Late, s.LateSecs, s.CloseAfter.Max)
		}
		if s.DataFromProxy > 0 {
			fail("the proxy sent data on %d slowloris connections", s.DataFromProxy)
		}
		if s.Closed != s.Opened-s.NotClosed && m.ctx.Err() == nil {
			fail("%d slowloris connections opened, %d closed by the proxy", s.Opened, s.Closed)
		}
	}
	if f := ph.Flood; f != nil {
		if f.Errors > 0 {
			fail("%d of %d connections failed: %v", f.Errors, f.Conns, f.FirstErrors)
		}
		if f.Completed != int64(f.Conns) && f.Errors == 0 && m.ctx.Err() == nil {
			fail("%d of %d connections completed", f.Completed, f.Conns)
		}
	}
	if s := ph.Short; s != nil {
		if s.Errors > 0 {
			fail("%d of %d sessions failed: %v", s.Errors, s.Started, s.FirstErrors)
		}
		if s.Mismatches > 0 {
			fail("%d echoes differ, first: %s", s.Mismatches, s.FirstMismatch)
		}
		if s.BytesLost != 0 {
			fail("%d bytes lost (%d sent, %d verified)", s.BytesLost, s.BytesSent, s.BytesVerified)
		}
		if s.OK == 0 && s.Planned > 0 {
			fail("no session completed")
		}
	}
}

// settleFDs waits, at most Config.Settle, for the proxy's descriptors to
// be exactly at the baseline, and this process's too (every connection to
// the fake backend closed). It reports whether the proxy is still there
// and whether the descriptors came back.
func (m *modeRun) settleFDs(ph *Phase, fail func(string, ...any)) (alive, back bool) {
	start := time.Now()
	deadline := start.Add(m.cfg.Settle)
	var fds, own int
	for {
		var err error
		if fds, err = countFDs(m.pid); err != nil {
			fail("the proxy exited: %v", m.exitReason(err))
			return false, false
		}
		own, _ = countFDs(os.Getpid())
		if fds == m.base.FDs && own == m.baseOwn {
			ph.SettleSeconds = time.Since(start).Seconds()
			return true, true
		}
		if time.Now().After(deadline) || !sleepCtx(m.ctx, 50*time.Millisecond) {
			break
		}
	}
	ph.Proxy.After.FDs, ph.ClientFDs.After = fds, own
	if fds != m.base.FDs {
		fail("the proxy holds %d descriptors %v after the phase, %d at the baseline (%s)",
			fds, m.cfg.Settle, m.base.FDs, kindsDiff(m.kinds, fdKinds(m.pid)))
	}
	if own != m.baseOwn {
		fail("this process holds %d descriptors %v after the phase, %d at the baseline: connections to the fake backend left open",
			own, m.cfg.Settle, m.baseOwn)
	}
	return true, false
}

// settleRSS waits, at most Config.RSSWait, for the proxy's resident memory
// to be within Config.RSSSlack of the baseline. An idle Go process
// collects its garbage at the latest two minutes after its last
// collection, and only then gives the memory back, so right after a flood
// it may take that long.
func (m *modeRun) settleRSS(ph *Phase, fail func(string, ...any)) {
	start := time.Now()
	deadline := start.Add(m.cfg.RSSWait)
	var u Usage
	for {
		var err error
		if u, err = usageOf(m.pid); err != nil {
			fail("the proxy exited: %v", m.exitReason(err))
			return
		}
		if u.RSS <= m.base.RSS+m.cfg.RSSSlack {
			ph.RSSSettleSeconds = time.Since(start).Seconds()
			ph.RSSSettled = true
			break
		}
		if time.Now().After(deadline) || !sleepCtx(m.ctx, 250*time.Millisecond) {
			fail("the proxy's RSS is %.1f MiB %v after the phase, %.1f MiB above the baseline (bound %.0f MiB)",
				mib(u.RSS), m.cfg.RSSWait, mib(u.RSS-m.base.RSS), mib(m.cfg.RSSSlack))
			break
		}
	}
	ph.Proxy.After = resources(u)
	ph.ClientFDs.After, _ = countFDs(os.Getpid())
	ph.RSSAboveBaselineMiB = mib(u.RSS - m.base.RSS)
	if u.FDs != m.base.FDs {
		fail("the proxy's descriptors went from %d (the baseline) to %d while its memory settled", m.base.FDs, u.FDs)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
