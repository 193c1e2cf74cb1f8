// Package doctor runs the checks behind `mtproxy doctor`: what an operator
// wants to know before or while going live. Can the proxy bind its ports?
// Are the file limits high enough for -C? Is the clock close enough for
// fake TLS and the middle proxies? Are the DCs or middle proxies reachable?
// Does the fronted site answer like a TLS 1.3 site with a valid
// certificate?
//
// Every check is bounded by Config.Timeout and the caller's context, and
// Run returns within about Timeout even when every network call hangs, so
// the report works offline too: it then says "unreachable" instead of
// hanging. Checks only connect (and for the clock, fronting and middle-proxy
// files, speak HTTP or TLS); none does the MTProto or RPC handshake.
package doctor

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/refresh"
)

// DefaultClockURL is where the clock check reads the time by default.
const DefaultClockURL = "https://core.telegram.org"

// DefaultTimeout bounds each check when Config.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// margin is how long Run waits past Timeout for checks to report before
// it gives up on them.
const margin = 500 * time.Millisecond

// Config says what to check: the proxy's own settings, as it would run.
type Config struct {
	Listen         []string                  // host:port the proxy would bind
	MaxConnections int                       // -C; 0 = no cap
	DCs            *dc.Table                 // direct mode; nil = dc.Default()
	PreferIPv6     bool                      // reach DCs over IPv6
	Middle         bool                      // middle-proxy mode (the DC check is skipped)
	Refresh        *refresh.Config           // middle mode: where proxy-multi.conf and proxy-secret come from; nil or an empty Source = Telegram's URL
	NAT            map[netip.Addr]netip.Addr // middle mode: --nat-info LOCAL→PUBLIC; a private local address without an entry is warned about
	FrontingAddr   string                    // fake TLS: the real site's host:port; "" = no fake TLS
	Domain         string                    // fake TLS: the SNI; "" = the host of FrontingAddr
	ClockURL       string                    // HTTP(S) URL whose Date header gives the time; "" = DefaultClockURL
	Timeout        time.Duration             // per check; 0 = DefaultTimeout
	RootCAs        *x509.CertPool            // roots for the fronting certificate and HTTPS; nil = the system's
	// Dialer opens every TCP connection of the checks, except the
	// fronting reply-shape probe, which is skipped when Dialer is set.
	// nil = a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// A Status is the outcome of one check.
type Status int

const (
	OK   Status = iota // all good
	Warn               // works, but worth fixing
	Fail               // the proxy will not work (well) like this
	Skip               // does not apply to this configuration
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	case Skip:
		return "SKIP"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// A Result is the outcome of one check. Detail is one line, or a summary
// line followed by one line per item (DC, middle proxy).
type Result struct {
	Name   string
	Status Status
	Detail string
	Took   time.Duration
}

// A check is one line of the report.
type check struct {
	name string
	// late is the status given when the check does not report within
	// Timeout plus margin (it ignored its context).
	late Status
	run  func(ctx context.Context) Result
}

// Run runs the checks concurrently, each bounded by cfg.Timeout and ctx,
// and returns their results in a fixed order: listen (one per address),
// file limits, clock, DC reachability, middle proxies, fronting. It
// returns within about cfg.Timeout (plus half a second) even if a check
// hangs; such a check is reported as not finished.
func Run(ctx context.Context, cfg Config) []Result {
	r := newRunner(cfg)
	checks := r.plan()
	type done struct {
		i int
		r Result
	}
	ch := make(chan done, len(checks)) // buffered: a late check never blocks
	for i, c := range checks {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
			defer cancel()
			start := time.Now()
			res := safeRun(cctx, c)
			res.Name = c.name
			if res.Status != Skip {
				res.Took = time.Since(start)
			}
			ch <- done{i, res}
		}()
	}

	out := make([]Result, len(checks))
	got := make([]bool, len(checks))
	deadline := time.NewTimer(r.cfg.Timeout + margin)
	defer deadline.Stop()
	ctxDone := ctx.Done()
	start := time.Now()
	for pending := len(checks); pending > 0; {
		select {
		case d := <-ch:
			out[d.i], got[d.i] = d.r, true
			pending--
		case <-ctxDone:
			// Checks see ctx too; give them the margin to say so.
			ctxDone = nil
			deadline.Reset(margin)
		case <-deadline.C:
			for i, c := range checks {
				if !got[i] {
					out[i] = Result{Name: c.name, Status: c.late, Took: time.Since(start),
						Detail: fmt.Sprintf("did not finish within %v", r.cfg.Timeout)}
				}
			}
			return out
		}
	}
	return out
}

// safeRun runs c, turning a panic into a failed result rather than a
// crashed doctor.
func safeRun(ctx context.Context, c check) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Status: Fail, Detail: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	return c.run(ctx)
}

// runner holds the configuration with its defaults filled in.
type runner struct {
	cfg    Config
	custom bool // cfg.Dialer was given
}

func newRunner(cfg Config) *runner {
	r := &runner{cfg: cfg, custom: cfg.Dialer != nil}
	if r.cfg.Timeout <= 0 {
		r.cfg.Timeout = DefaultTimeout
	}
	if r.cfg.ClockURL == "" {
		r.cfg.ClockURL = DefaultClockURL
	}
	if r.cfg.Dialer == nil {
		var d net.Dialer
		r.cfg.Dialer = d.DialContext
	}
	if r.cfg.DCs == nil {
		r.cfg.DCs = dc.Default()
	}
	return r
}

// plan lists the checks in report order.
func (r *runner) plan() []check {
	var cs []check
	if len(r.cfg.Listen) == 0 {
		cs = append(cs, check{name: "listen", late: Fail, run: func(context.Context) Result {
			return Result{Status: Skip, Detail: "no listen addresses given"}
		}})
	}
	for _, addr := range r.cfg.Listen {
		cs = append(cs, check{name: "listen " + addr, late: Fail, run: func(ctx context.Context) Result {
			return checkListen(ctx, addr)
		}})
	}
	return append(cs,
		check{name: "file limits", late: Warn, run: func(context.Context) Result {
			return checkFileLimits(r.cfg.MaxConnections, r.cfg.Middle)
		}},
		check{name: "clock", late: Warn, run: r.checkClock},
		check{name: "DC reachability", late: Fail, run: r.checkDCs},
		check{name: "middle proxies", late: Fail, run: r.checkMiddle},
		check{name: "fronting", late: Fail, run: r.checkFronting},
	)
}
