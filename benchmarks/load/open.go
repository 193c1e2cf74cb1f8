package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// OpenConfig says how connections are opened.
type OpenConfig struct {
	Conns int
	// Concurrency bounds dials in flight; zero means 64.
	Concurrency int
	// Rate bounds new connections per second; zero means no bound.
	Rate float64
}

// Open dials cfg.Conns connections to t, numbered from first, and returns
// those that were established; failures are counted in m. It stops early
// when ctx ends.
func Open(ctx context.Context, t Target, first uint32, cfg OpenConfig, m *Meter) []*Conn {
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = 64
	}
	conns := make([]*Conn, cfg.Conns)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Conns {
		if cfg.Rate > 0 && !sleepUntil(ctx, start.Add(time.Duration(float64(i)/cfg.Rate*float64(time.Second)))) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := t.Dial(ctx, first+uint32(i))
			if err != nil {
				m.fail(err)
				return
			}
			m.Established.Add(1)
			conns[i] = c
		})
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open
}

// Ping does one round trip on every connection, concurrency at a time,
// and reports how many failed; failures are counted in m.
func Ping(ctx context.Context, conns []*Conn, concurrency int, m *Meter) int {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var failed atomic.Int64
	forEach(conns, concurrency, func(c *Conn) {
		c.SetDeadline(deadline)
		up, down, err := c.RoundTrip(pingSize, pingSize, 0)
		m.Up.Add(int64(up))
		m.Down.Add(int64(down))
		if err != nil {
			failed.Add(1)
			m.fail(err)
			return
		}
		m.Requests.Add(1)
		c.SetDeadline(time.Time{})
	})
	return int(failed.Load())
}

// CloseAll closes every connection.
func CloseAll(conns []*Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// forEach calls f for every connection, at most concurrency at a time
// (zero means 64), and waits for all.
func forEach(conns []*Conn, concurrency int, f func(*Conn)) {
	if concurrency <= 0 {
		concurrency = 64
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(c)
		})
	}
	wg.Wait()
}

// sleepUntil waits for t or for ctx to end, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
