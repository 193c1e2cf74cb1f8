package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// StormConfig configures Storm.
type StormConfig struct {
	// Concurrency is how many connections are being set up at once; zero
	// means 64.
	Concurrency int
	Duration    time.Duration
	// Handshakes, if positive, bounds the connections made.
	Handshakes int64
}

// Storm opens connections to t as fast as Concurrency allows, each
// established end to end by one round trip and closed at once, until
// cfg.Duration or cfg.Handshakes. The result's Conns and m.Established
// count the handshakes, m.Latency holds their times; connections are
// numbered from first.
func Storm(ctx context.Context, t Target, first uint32, cfg StormConfig, m *Meter) Result {
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = 64
	}
	var next atomic.Int64
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				n := next.Add(1)
				if cfg.Handshakes > 0 && n > cfg.Handshakes {
					return
				}
				t0 := time.Now()
				c, err := t.Dial(ctx, first+uint32(n))
				if err != nil {
					m.fail(err)
					continue
				}
				m.Latency.Record(time.Since(t0))
				m.Established.Add(1)
				c.Close()
			}
		})
	}
	wg.Wait()
	return m.result(int(m.Established.Load()), time.Since(start))
}
