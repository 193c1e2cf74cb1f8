package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/internal/hostinfo"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
)

// Report is the outcome of Run.
type Report struct {
	Started     time.Time     `json:"started"`
	Seconds     float64       `json:"seconds"`
	Passed      bool          `json:"passed"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Host        Host          `json:"host"`
	Settings    Settings      `json:"settings"`
	Modes       []*ModeReport `json:"modes"`
}

// Host describes the machine.
type Host = hostinfo.Host

// host describes this machine with this process's file limit.
func host() Host {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return hostinfo.Read(lim.Cur)
}

// Settings is the Config a report was made with, for people.
type Settings struct {
	Proxy            string   `json:"proxy"`
	Modes            []string `json:"modes"`
	Phases           []string `json:"phases"`
	Conns            int      `json:"conns"`
	Short            int      `json:"short"`
	Concurrency      int      `json:"concurrency"`
	FloodConcurrency int      `json:"flood_concurrency"`
	MaxDuration      string   `json:"max_duration"`
	HandshakeTimeout string   `json:"handshake_timeout"`
	Trickle          string   `json:"trickle"`
	Workers          int      `json:"workers"`
	Settle           string   `json:"settle"`
	RSSSlackMiB      float64  `json:"rss_slack_mib"`
	RSSWait          string   `json:"rss_wait"`
}

func settingsOf(c *Config) Settings {
	return Settings{
		Proxy: c.Proxy, Modes: c.Modes, Phases: c.Phases, Conns: c.Conns, Short: c.Short,
		Concurrency: c.Concurrency, FloodConcurrency: c.FloodConcurrency,
		MaxDuration: c.MaxDuration.String(), HandshakeTimeout: c.HandshakeTimeout.String(),
		Trickle: c.Trickle.String(), Workers: c.Workers, Settle: c.Settle.String(), RSSSlackMiB: mib(c.RSSSlack), RSSWait: c.RSSWait.String(),
	}
}

// ModeReport is one proxy process and its phases.
type ModeReport struct {
	Mode    string   `json:"mode"`
	Passed  bool     `json:"passed"`
	Command []string `json:"command"`
	PID     int      `json:"pid"`
	Log     string   `json:"log"`
	NoFile  uint64   `json:"proxy_nofile"` // the proxy's soft open-file limit
	// Failures outside the phases: start, warm-up, shutdown.
	Failures          []string    `json:"failures,omitempty"`
	Baseline          Resources   `json:"baseline"`
	BaselineClientFDs int         `json:"baseline_client_fds"`
	Phases            []*Phase    `json:"phases"`
	Shutdown          string      `json:"shutdown"`
	ShutdownLog       LogFindings `json:"shutdown_log"`
	// The fake backend's counters at the end.
	FakeDC *fakedc.Stats `json:"fake_dc,omitempty"`
	FakeME *fakeme.Stats `json:"fake_middle_proxy,omitempty"`
}

// Resources are a process's descriptors and resident memory.
type Resources struct {
	FDs    int     `json:"fds"`
	RSSMiB float64 `json:"rss_mib"`
}

func resources(u Usage) Resources { return Resources{FDs: u.FDs, RSSMiB: mib(u.RSS)} }

// Phase is one phase's outcome.
type Phase struct {
	Name     string   `json:"name"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
	Seconds  float64  `json:"seconds"` // the client side's run, without settling
	// ProxyExited is set when the proxy was gone at the end of the phase;
	// the figures after it are then missing.
	ProxyExited bool `json:"proxy_exited,omitempty"`

	// The proxy before the phase, at its peak (sampled every 250 ms until
	// its descriptors are back) and after settling. SettleSeconds is how
	// long its descriptors took to come back to the baseline after the
	// phase, RSSSettleSeconds how long its RSS then took to come within
	// the slack.
	Proxy struct {
		Before Resources `json:"before"`
		Peak   Resources `json:"peak"`
		After  Resources `json:"after"`
	} `json:"proxy"`
	RSSAboveBaselineMiB float64 `json:"rss_above_baseline_mib"`
	SettleSeconds       float64 `json:"settle_seconds"`
	RSSSettleSeconds    float64 `json:"rss_settle_seconds"`
	RSSSettled          bool    `json:"rss_settled"`
	// This process's descriptors (clients and fake backend).
	ClientFDs struct {
		Before int `json:"before"`
		After  int `json:"after"`
	} `json:"client_fds"`

	ProxyCPUSeconds  float64 `json:"proxy_cpu_seconds"`
	ProxyCPUPer1000  float64 `json:"proxy_cpu_seconds_per_1000_conns"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"` // this process: clients and fake backend
	ClientCPUPer1000 float64 `json:"client_cpu_seconds_per_1000_conns"`

	DCConns      int64 `json:"dc_conns,omitempty"`      // direct: connections the fake DC accepted
	MERequests   int64 `json:"me_requests,omitempty"`   // middle: RPC_PROXY_REQ at the fake middle proxy
	MEHandshakes int64 `json:"me_handshakes,omitempty"` // middle: new RPC connections

	Slowloris *SlowlorisResult `json:"slowloris,omitempty"`
	Flood     *FloodResult     `json:"flood,omitempty"`
	Short     *ShortResult     `json:"short,omitempty"`
	Log       LogFindings      `json:"log"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// WriteText writes the report for people: a block per mode and phase.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "Soak of %s: %s in %s\n", s.Proxy, verdict(r.Passed), time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(&b, "host: %d CPUs, %s, Linux %s, %s, open-file limit %d, load %s\n",
		r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion, r.Host.NoFile, r.Host.LoadAvg)
	fmt.Fprintf(&b, "sizes: %d flood connections (%d opening at once), %d short sessions (%d at once, at most %s), handshake timeout %s, a byte every %s\n",
		s.Conns, s.FloodConcurrency, s.Short, s.Concurrency, s.MaxDuration, s.HandshakeTimeout, s.Trickle)
	fmt.Fprintf(&b, "bounds after each phase: fds back to the baseline within %s, then RSS within %.0f MiB of it within %s\n",
		s.Settle, s.RSSSlackMiB, s.RSSWait)
	if r.Interrupted {
		b.WriteString("INTERRUPTED\n")
	}
	for _, m := range r.Modes {
		fmt.Fprintf(&b, "\n== %s mode: %s (pid %d, open-file limit %d)\n", m.Mode, verdict(m.Passed), m.PID, m.NoFile)
		fmt.Fprintf(&b, "   %s\n", strings.Join(m.Command, " "))
		fmt.Fprintf(&b, "   baseline after warm-up: %d fds, %.1f MiB RSS; this process %d fds\n",
			m.Baseline.FDs, m.Baseline.RSSMiB, m.BaselineClientFDs)
		for _, ph := range m.Phases {
			writePhase(&b, ph, m.Baseline.FDs)
		}
		fmt.Fprintf(&b, "\n   shutdown: %s", m.Shutdown)
		if m.FakeDC != nil {
			fmt.Fprintf(&b, "; fake DC: %d connections, %d refused handshakes, %d bytes echoed",
				m.FakeDC.Accepted, m.FakeDC.Rejected, m.FakeDC.BytesSent)
		}
		if m.FakeME != nil {
			fmt.Fprintf(&b, "; fake middle proxy: %d RPC connections, %d requests, %d answers, %d errors",
				m.FakeME.HandshakesOK, m.FakeME.Requests, m.FakeME.Answers, m.FakeME.Errors)
		}
		b.WriteString("\n")
		for _, f := range m.Failures {
			fmt.Fprintf(&b, "   FAIL: %s\n", f)
		}
		fmt.Fprintf(&b, "   proxy log: %s\n", m.Log)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePhase(b *strings.Builder, ph *Phase, baseFDs int) {
	fmt.Fprintf(b, "\n-- %-9s %s  %.1fs\n", ph.Name, verdict(ph.Passed), ph.Seconds)
	ind := "   "
	if s := ph.Slowloris; s != nil {
		fmt.Fprintf(b, "%s%d connections opened of %d in %.1fs, %d held at once, %d bytes trickled, %d dial errors\n",
			ind, s.Opened, s.Conns, s.OpenSecs, s.Held, s.BytesSent, s.DialErrors)
		fmt.Fprintf(b, "%sclosed by the proxy: %d (%d FIN, %d RST, %d seen on a write); %d not closed; %d with data from the proxy\n",
			ind, s.Closed, s.ClosedEOF, s.ClosedReset, s.ClosedWrite, s.NotClosed, s.DataFromProxy)
		if s.Closed > 0 {
			t := s.TimeoutSecs
			fmt.Fprintf(b, "%sconnect to close: min %.2fs, p50 %.2fs, p99 %.2fs, max %.2fs = %.2f–%.2f× the %gs handshake timeout; %d early, %d late (> %.1fs)\n",
				ind, s.CloseAfter.Min, s.CloseAfter.P50, s.CloseAfter.P99, s.CloseAfter.Max,
				s.CloseAfter.Min/t, s.CloseAfter.Max/t, t, s.Early, s.Late, s.LateSecs)
		}
	}
	if f := ph.Flood; f != nil {
		fmt.Fprintf(b, "%s%d of %d connections completed in %.1fs (%.0f/s), %d bytes sent, %d errors",
			ind, f.Completed, f.Conns, f.Seconds, f.PerSecond, f.BytesSent, f.Errors)
		if f.Errors > 0 {
			fmt.Fprintf(b, " %v", f.FirstErrors)
		}
		b.WriteString("\n")
	}
	if s := ph.Short; s != nil {
		fmt.Fprintf(b, "%s%d of %d sessions ran in %.1fs: %.0f sessions/s; %d ok, %d errors, %d mismatches",
			ind, s.Started, s.Planned, s.Seconds, s.PerSecond, s.OK, s.Errors, s.Mismatches)
		if s.StoppedBy != "" {
			fmt.Fprintf(b, " (stopped by %s)", s.StoppedBy)
		}
		b.WriteString("\n")
		fmt.Fprintf(b, "%sbytes: %d sent, %d verified, %d lost; session time p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			ind, s.BytesSent, s.BytesVerified, s.BytesLost, s.SessionMS.P50, s.SessionMS.P99, s.SessionMS.Max)
		if s.Errors > 0 {
			fmt.Fprintf(b, "%serrors: %v %v\n", ind, s.ErrorKinds, s.FirstErrors)
		}
	}
	switch {
	case ph.DCConns > 0:
		fmt.Fprintf(b, "%sfake DC: %d connections from the proxy\n", ind, ph.DCConns)
	case ph.MERequests > 0 || ph.MEHandshakes > 0:
		fmt.Fprintf(b, "%sfake middle proxy: %d requests, %d new RPC connections\n", ind, ph.MERequests, ph.MEHandshakes)
	}
	p := ph.Proxy
	switch {
	case ph.ProxyExited:
		fmt.Fprintf(b, "%sproxy fds %d → peak %d, RSS %.1f → peak %.1f MiB; then the proxy exited\n",
			ind, p.Before.FDs, p.Peak.FDs, p.Before.RSSMiB, p.Peak.RSSMiB)
	default:
		back := fmt.Sprintf("baseline again %.1fs after the phase", ph.SettleSeconds)
		if p.After.FDs != baseFDs {
			back = fmt.Sprintf("NOT back to the baseline of %d", baseFDs)
		}
		fmt.Fprintf(b, "%sproxy fds %d → peak %d → %d (%s)\n", ind, p.Before.FDs, p.Peak.FDs, p.After.FDs, back)
		settled := fmt.Sprintf("within the slack %.1fs after the fds", ph.RSSSettleSeconds)
		if !ph.RSSSettled {
			settled = "NOT within the slack"
		}
		fmt.Fprintf(b, "%sproxy RSS %.1f → peak %.1f → %.1f MiB (%+.1f MiB vs baseline, %s)\n",
			ind, p.Before.RSSMiB, p.Peak.RSSMiB, p.After.RSSMiB, ph.RSSAboveBaselineMiB, settled)
		fmt.Fprintf(b, "%sproxy CPU %.2fs (%.3fs per 1000 connections); this process %.2fs (%.3fs per 1000), fds %d → %d\n",
			ind, ph.ProxyCPUSeconds, ph.ProxyCPUPer1000, ph.ClientCPUSeconds, ph.ClientCPUPer1000, ph.ClientFDs.Before, ph.ClientFDs.After)
	}
	fmt.Fprintf(b, "%sproxy log: %d lines, %d warnings or errors, %d panics or fatal errors\n", ind, ph.Log.Lines, ph.Log.Warnings, ph.Log.Problems)
	for _, f := range ph.Failures {
		fmt.Fprintf(b, "%sFAIL: %s\n", ind, f)
	}
}
