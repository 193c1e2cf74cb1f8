package compare

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/internal/hostinfo"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/histogram"
)

// Result is one scenario run with one secret kind against one proxy.
// Throughput counts frame bytes (headers and padding included) each way
// through the proxy; MB and GB are 10^6 and 10^9 bytes, MiB and KiB binary.
type Result struct {
	Scenario string  `json:"scenario"`
	Type     string  `json:"type"`
	Secret   string  `json:"secret"`
	Proxy    string  `json:"proxy"`
	Skipped  string  `json:"skipped,omitempty"`
	Errors   int64   `json:"errors"`
	Error    string  `json:"error,omitempty"` // the first one
	Conns    int     `json:"conns"`
	Seconds  float64 `json:"seconds"`

	// Proxy process tree, over the measured interval.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`

	// bulk
	BytesUp         int64   `json:"bytes_up,omitempty"`
	BytesDown       int64   `json:"bytes_down,omitempty"`
	UpMBps          float64 `json:"up_mbps,omitempty"`
	DownMBps        float64 `json:"down_mbps,omitempty"`
	CPUSecondsPerGB float64 `json:"cpu_seconds_per_gb,omitempty"`
	MBPerCPUSecond  float64 `json:"mb_per_cpu_second,omitempty"`

	// idle
	RSSBeforeMiB  float64 `json:"rss_before_mib,omitempty"`
	RSSIdleMiB    float64 `json:"rss_idle_mib,omitempty"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`

	// storm
	HandshakesPerSecond   float64 `json:"handshakes_per_second,omitempty"`
	CPUMicrosPerHandshake float64 `json:"cpu_us_per_handshake,omitempty"`

	// rr, and handshake times in storm
	Requests          int64    `json:"requests,omitempty"`
	RequestsPerSecond float64  `json:"requests_per_second,omitempty"`
	Latency           *Latency `json:"latency_ms,omitempty"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func latencyOf(h *histogram.Histogram) *Latency {
	if h.Count() == 0 {
		return nil
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &Latency{
		P50:  ms(h.Quantile(0.5)),
		P90:  ms(h.Quantile(0.9)),
		P99:  ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)),
		Max:  ms(h.Max()),
	}
}

// Host describes the machine.
type Host = hostinfo.Host

// Report is the outcome of Run.
type Report struct {
	Started time.Time `json:"started"`
	Host    Host      `json:"host"`
	Plan    Plan      `json:"plan"`
	Proxies []string  `json:"proxies"`
	Notes   []string  `json:"notes,omitempty"`
	Results []Result  `json:"results"`
	// MiddleProxy has the fake middle proxy's counters at the end of the
	// run, if a proxy ran in middle-proxy mode.
	MiddleProxy *fakeme.Stats `json:"fake_middle_proxy,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// column is one column of a Markdown table.
type column struct {
	title string
	value func(Result) float64
	ratio bool // followed by the ratio to the first proxy
}

// tables lists the columns of each scenario type.
var tables = []struct {
	typ, title string
	columns    []column
}{
	{typeBulk, "Bulk throughput", []column{
		{"conns", func(r Result) float64 { return float64(r.Conns) }, false},
		{"up MB/s", func(r Result) float64 { return r.UpMBps }, false},
		{"down MB/s", func(r Result) float64 { return r.DownMBps }, false},
		{"proxy CPU s", func(r Result) float64 { return r.CPUSeconds }, false},
		{"CPU s/GB", func(r Result) float64 { return r.CPUSecondsPerGB }, true},
		{"MB/CPU-s", func(r Result) float64 { return r.MBPerCPUSecond }, false},
		{"peak RSS MiB", func(r Result) float64 { return r.PeakRSSMiB }, false},
	}},
	{typeIdle, "Idle connections", []column{
		{"conns", func(r Result) float64 { return float64(r.Conns) }, false},
		{"RSS before MiB", func(r Result) float64 { return r.RSSBeforeMiB }, false},
		{"RSS idle MiB", func(r Result) float64 { return r.RSSIdleMiB }, false},
		{"KiB/conn", func(r Result) float64 { return r.RSSPerConnKiB }, true},
	}},
	{typeStorm, "Connection storm", []column{
		{"handshakes", func(r Result) float64 { return float64(r.Conns) }, false},
		{"handshakes/s", func(r Result) float64 { return r.HandshakesPerSecond }, true},
		{"CPU µs/handshake", func(r Result) float64 { return r.CPUMicrosPerHandshake }, false},
		{"p50 ms", latencyField(func(l *Latency) float64 { return l.P50 }), false},
		{"p99 ms", latencyField(func(l *Latency) float64 { return l.P99 }), false},
	}},
	{typeRR, "Request/response latency", []column{
		{"conns", func(r Result) float64 { return float64(r.Conns) }, false},
		{"req/s", func(r Result) float64 { return r.RequestsPerSecond }, false},
		{"p50 ms", latencyField(func(l *Latency) float64 { return l.P50 }), false},
		{"p90 ms", latencyField(func(l *Latency) float64 { return l.P90 }), false},
		{"p99 ms", latencyField(func(l *Latency) float64 { return l.P99 }), true},
		{"p99.9 ms", latencyField(func(l *Latency) float64 { return l.P999 }), false},
		{"proxy CPU s", func(r Result) float64 { return r.CPUSeconds }, false},
	}},
}

func latencyField(f func(*Latency) float64) func(Result) float64 {
	return func(r Result) float64 {
		if r.Latency == nil {
			return math.NaN()
		}
		return f(r.Latency)
	}
}

// WriteMarkdown writes one table per scenario type, with the ratio of each
// proxy to the first one on the headline metric when there are several.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "mtproxy-bench compare, %s: %d × %s, Linux %s, %s, load average %s at the start\n",
		r.Started.Format("2006-01-02 15:04"), r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion, r.Host.LoadAvg)
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "\n- %s", n)
	}
	fmt.Fprintln(bw)
	var failures []string
	for _, t := range tables {
		var rows []Result
		for _, res := range r.Results {
			if res.Type == t.typ {
				rows = append(rows, res)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n### %s\n\n| scenario | secret | proxy |", t.title)
		sep := "|---|---|---|"
		for _, c := range t.columns {
			fmt.Fprintf(bw, " %s |", c.title)
			sep += "---:|"
			if c.ratio && len(r.Proxies) > 1 {
				fmt.Fprintf(bw, " × %s |", r.Proxies[0])
				sep += "---:|"
			}
		}
		fmt.Fprintf(bw, " errors |\n%s---:|\n", sep)
		for _, res := range rows {
			fmt.Fprintf(bw, "| %s | %s | %s |", res.Scenario, res.Secret, res.Proxy)
			if res.Skipped != "" {
				fmt.Fprintf(bw, " skipped: %s |\n", res.Skipped)
				continue
			}
			base := r.baseline(res)
			for _, c := range t.columns {
				fmt.Fprintf(bw, " %s |", number(c.value(res)))
				if c.ratio && len(r.Proxies) > 1 {
					ratio := math.NaN()
					if base != nil {
						ratio = c.value(res) / c.value(*base)
					}
					fmt.Fprintf(bw, " %s |", number(ratio))
				}
			}
			fmt.Fprintf(bw, " %d |\n", res.Errors)
			if res.Error != "" {
				failures = append(failures, fmt.Sprintf("%s %s %s: %d errors, first: %s", res.Scenario, res.Secret, res.Proxy, res.Errors, res.Error))
			}
		}
	}
	if len(failures) > 0 {
		fmt.Fprintln(bw, "\nErrors:")
		for _, f := range failures {
			fmt.Fprintf(bw, "- %s\n", f)
		}
	}
	return bw.Flush()
}

// baseline returns the first proxy's result for the same scenario and
// secret, or nil if it has none.
func (r *Report) baseline(res Result) *Result {
	for i, b := range r.Results {
		if b.Proxy == r.Proxies[0] && b.Scenario == res.Scenario && b.Secret == res.Secret && b.Skipped == "" {
			return &r.Results[i]
		}
	}
	return nil
}

// number formats a table cell: whole numbers as they are, others with
// three significant digits, "—" for none.
func number(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case a == math.Trunc(a) && a < 1e15:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
