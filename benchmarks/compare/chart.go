package compare

import (
	"io"
	"math"
	"slices"

	"github.com/mtproxy-go/mtproxy/benchmarks/svgchart"
)

// metric is one chart: a value of the results of one scenario type.
type metric struct {
	title, unit, typ string
	value            func(Result) float64
}

var metrics = []metric{
	{"Throughput through the proxy, both ways", "MB/s", typeBulk, func(r Result) float64 { return r.UpMBps + r.DownMBps }},
	{"Proxy CPU per GB moved, both ways", "CPU seconds", typeBulk, func(r Result) float64 { return r.CPUSecondsPerGB }},
	{"Proxy memory per idle connection", "KiB", typeIdle, func(r Result) float64 { return r.RSSPerConnKiB }},
	{"Handshakes per second", "1/s", typeStorm, func(r Result) float64 { return r.HandshakesPerSecond }},
	{"Request/response latency p50", "ms", typeRR, latencyField(func(l *Latency) float64 { return l.P50 })},
	{"Request/response latency p99", "ms", typeRR, latencyField(func(l *Latency) float64 { return l.P99 })},
	{"Request/response latency p99.9", "ms", typeRR, latencyField(func(l *Latency) float64 { return l.P999 })},
}

// WriteSVG draws one bar chart per metric: a group per scenario and secret,
// a bar per proxy.
func (r *Report) WriteSVG(w io.Writer) error {
	var charts []svgchart.Chart
	for _, m := range metrics {
		c := svgchart.Chart{Title: m.title, Unit: m.unit}
		for _, res := range r.Results {
			if res.Type != m.typ {
				continue
			}
			group := res.Scenario + " " + res.Secret
			g := slices.Index(c.Groups, group)
			if g < 0 {
				g = len(c.Groups)
				c.Groups = append(c.Groups, group)
				row := make([]float64, len(r.Proxies))
				for i := range row {
					row[i] = math.NaN()
				}
				c.Values = append(c.Values, row)
			}
			if p := slices.Index(r.Proxies, res.Proxy); p >= 0 && res.Skipped == "" {
				c.Values[g][p] = m.value(res)
			}
		}
		c = dropEmpty(c)
		if len(c.Groups) > 0 {
			charts = append(charts, c)
		}
	}
	return svgchart.Write(w, "mtproxy-bench compare, "+r.Started.Format("2006-01-02 15:04"), r.Proxies, charts)
}

// dropEmpty removes the groups without a single bar, such as scenarios
// every proxy skipped.
func dropEmpty(c svgchart.Chart) svgchart.Chart {
	out := svgchart.Chart{Title: c.Title, Unit: c.Unit}
	for g, row := range c.Values {
		if slices.ContainsFunc(row, func(v float64) bool { return !math.IsNaN(v) }) {
			out.Groups = append(out.Groups, c.Groups[g])
			out.Values = append(out.Values, row)
		}
	}
	return out
}
