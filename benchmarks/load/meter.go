package load

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/histogram"
)

// Meter counts what a run does. Its fields may be read at any time, from
// any goroutine, for progress reports.
type Meter struct {
	Established atomic.Int64 // connections that completed a round trip
	Up, Down    atomic.Int64 // frame bytes, headers and padding included
	Requests    atomic.Int64 // replies received and checked
	// Latency holds request/response times in RequestResponse and
	// handshake times in Storm.
	Latency histogram.Histogram

	errors atomic.Int64
	mu     sync.Mutex
	first  error
}

// fail counts an error and keeps the first one.
func (m *Meter) fail(err error) {
	if m.errors.Add(1) == 1 {
		m.mu.Lock()
		m.first = err
		m.mu.Unlock()
	}
}

// Errors returns how many errors occurred and the first of them.
func (m *Meter) Errors() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errors.Load(), m.first
}

// Result is what a run measured.
type Result struct {
	Conns    int           // connections used
	Elapsed  time.Duration // from the first request to the last reply
	Up, Down int64         // frame bytes each way
	Requests int64
	Errors   int64
	Err      error // the first error
}

// UpRate and DownRate return bytes per second each way.
func (r Result) UpRate() float64   { return float64(r.Up) / r.Elapsed.Seconds() }
func (r Result) DownRate() float64 { return float64(r.Down) / r.Elapsed.Seconds() }

func (m *Meter) result(conns int, elapsed time.Duration) Result {
	n, err := m.Errors()
	return Result{
		Conns:    conns,
		Elapsed:  elapsed,
		Up:       m.Up.Load(),
		Down:     m.Down.Load(),
		Requests: m.Requests.Load(),
		Errors:   n,
		Err:      err,
	}
}

// Progress writes a line about m to w at every interval, from another
// goroutine, until stop is called or ctx ends: the label, the time since
// the start, and what changed since the last line.
func Progress(ctx context.Context, w io.Writer, label string, m *Meter, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(ctx, w, label, m, every)
	}()
	return func() {
		cancel()
		<-done
	}
}

func progress(ctx context.Context, w io.Writer, label string, m *Meter, every time.Duration) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	var up, down, reqs, conns int64
	last := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(last).Seconds()
			u, d, q, c := m.Up.Load(), m.Down.Load(), m.Requests.Load(), m.Established.Load()
			errs, _ := m.Errors()
			line := fmt.Sprintf("  %s %5.1fs:", label, now.Sub(start).Seconds())
			if c > 0 {
				line += fmt.Sprintf(" %d conns (%+.0f/s),", c, float64(c-conns)/dt)
			}
			if u > up || d > down {
				line += fmt.Sprintf(" up %s/s, down %s/s,", Bytes(float64(u-up)/dt), Bytes(float64(d-down)/dt))
			}
			if q > reqs {
				line += fmt.Sprintf(" %.0f req/s,", float64(q-reqs)/dt)
			}
			fmt.Fprintf(w, "%s %d errors\n", line, errs)
			up, down, reqs, conns, last = u, d, q, c, now
		}
	}
}

// Bytes formats a byte count with a binary unit.
func Bytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for ; n >= 1024 && i < len(units)-1; i++ {
		n /= 1024
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
