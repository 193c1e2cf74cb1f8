package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
)

// drainTimeout bounds how long the replies still due at the end of a run
// may take.
const drainTimeout = 10 * time.Second

// BulkConfig configures Bulk.
type BulkConfig struct {
	// UpSize and DownSize are the payload sizes of each request and of its
	// reply, so their ratio sets how much more goes one way.
	UpSize, DownSize int
	// Window is how many requests each connection may have unanswered;
	// zero means 8.
	Window int
	// Duration bounds the time requests are sent for.
	Duration time.Duration
	// Bytes, if positive, stops sending once that many request payload
	// bytes are on their way, across all connections.
	Bytes int64
}

// Bulk streams requests and replies on every connection at once, each
// connection with a writer and a reader, until cfg.Duration or cfg.Bytes
// is reached, then waits for the replies still due. The result counts
// everything from the first request to the last reply. A connection that
// fails is closed and counted in m; the others go on.
func Bulk(ctx context.Context, conns []*Conn, cfg BulkConfig, m *Meter) Result {
	window := cfg.Window
	if window <= 0 {
		window = 8
	}
	var budget atomic.Int64
	budget.Store(cfg.Bytes)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, c := range conns {
		c.SetDeadline(end.Add(drainTimeout))
		inflight := make(chan fakedc.Request, window)
		// The first side to fail closes the connection; the error that
		// causes on the other side is not counted again.
		var dead atomic.Bool
		fail := func(err error) {
			if dead.CompareAndSwap(false, true) {
				m.fail(err)
				c.Close()
			}
		}
		wg.Go(func() {
			defer close(inflight)
			for ctx.Err() == nil && time.Now().Before(end) && !dead.Load() {
				if cfg.Bytes > 0 && budget.Add(-int64(cfg.UpSize)) < 0 {
					return
				}
				q, n, err := c.Send(cfg.UpSize, cfg.DownSize, 0)
				m.Up.Add(int64(n))
				if err != nil {
					fail(err)
					return
				}
				inflight <- q
			}
		})
		wg.Go(func() {
			for q := range inflight {
				if dead.Load() {
					continue // drain, so the writer is never stuck
				}
				n, err := c.Recv(q)
				m.Down.Add(int64(n))
				if err != nil {
					fail(err)
					continue
				}
				m.Requests.Add(1)
			}
			if !dead.Load() {
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	return m.result(len(conns), time.Since(start))
}
