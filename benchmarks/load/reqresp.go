package load

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// RRConfig configures RequestResponse.
type RRConfig struct {
	ReqSize, ReplySize int // payload bytes
	// Delay is how long the fake DC waits before each reply.
	Delay time.Duration
	// Rate is requests per second on each connection; zero means back to
	// back.
	Rate float64
	// Duration bounds the run; Requests, if positive, bounds the requests
	// of each connection.
	Duration time.Duration
	Requests int
}

// RequestResponse has every connection send one request at a time and
// records each latency in m.Latency. With a Rate, requests go out on a
// fixed schedule and latency counts from the scheduled time, so a stall
// shows in full rather than delaying the requests that would have seen it
// (coordinated omission). Connections start at random phases of the
// schedule. A connection that fails is closed and counted in m.
func RequestResponse(ctx context.Context, conns []*Conn, cfg RRConfig, m *Meter) Result {
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetDeadline(end.Add(drainTimeout))
			next := start
			if interval > 0 {
				next = start.Add(rand.N(interval))
			}
			for i := 0; cfg.Requests <= 0 || i < cfg.Requests; i++ {
				if interval > 0 {
					if !next.Before(end) || !sleepUntil(ctx, next) {
						break
					}
				} else if next = time.Now(); !next.Before(end) || ctx.Err() != nil {
					break
				}
				up, down, err := c.RoundTrip(cfg.ReqSize, cfg.ReplySize, cfg.Delay)
				m.Up.Add(int64(up))
				m.Down.Add(int64(down))
				if err != nil {
					m.fail(err)
					c.Close()
					return
				}
				m.Latency.Record(time.Since(next))
				m.Requests.Add(1)
				next = next.Add(interval)
			}
			c.SetDeadline(time.Time{})
		})
	}
	wg.Wait()
	return m.result(len(conns), time.Since(start))
}
