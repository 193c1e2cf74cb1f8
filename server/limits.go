package server

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ipCounts counts open client connections per source address, for the
// per-IP cap. Only accept and close touch it, never the relay, so a few
// mutex-guarded shards are enough to keep the loops off each other.
type ipCounts struct {
	seed   maphash.Seed
	shards [16]struct {
		mu sync.Mutex
		m  map[netip.Addr]int32
	}
}

func newIPCounts() *ipCounts {
	c := &ipCounts{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[netip.Addr]int32{}
	}
	return c
}

func (c *ipCounts) shard(a netip.Addr) *struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
} {
	b := a.As16()
	return &c.shards[maphash.Bytes(c.seed, b[:])%uint64(len(c.shards))]
}

// add counts a connection from a and reports whether it stays within
// limit; a refused one is not counted.
func (c *ipCounts) add(a netip.Addr, limit int) bool {
	sh := c.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if int(sh.m[a]) >= limit {
		return false
	}
	sh.m[a]++
	return true
}

func (c *ipCounts) remove(a netip.Addr) {
	sh := c.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[a] <= 1 {
		delete(sh.m, a)
	} else {
		sh.m[a]--
	}
}

// rateLog logs a repeated warning at most once per interval, with the
// number of occurrences since the last line: a flood must not become a
// log flood.
type rateLog struct {
	last       time.Time
	suppressed int
}

func (r *rateLog) warn(log *zap.Logger, now time.Time, msg string, fields ...zap.Field) {
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		return
	}
	if r.suppressed > 0 {
		fields = append(fields, zap.Int("more_since_last_line", r.suppressed))
	}
	r.last, r.suppressed = now, 0
	log.Warn(msg, fields...)
}

// queued returns the bytes waiting on the loop's behalf: outbound buffers
// of its conns and pre-connection queues.
func (l *loop) queued() int64 {
	var n int64
	for _, list := range []*sessionList{&l.handshakes, &l.active} {
		for s := list.head; s != nil; s = s.next {
			n += s.queued()
		}
	}
	if l.mp != nil {
		for _, p := range l.mp.pools {
			for _, c := range p.conns {
				if c.conn != nil {
					n += int64(c.conn.OutboundBuffered())
				}
			}
		}
	}
	return n
}

func (s *session) queued() int64 {
	n := int64(s.pending.Len())
	for _, ep := range []*endpoint{&s.client, &s.dc} {
		if ep.conn != nil {
			n += int64(ep.conn.OutboundBuffered())
		}
	}
	return n
}

// enforceBudget runs at each sweep: it publishes the loop's queued bytes
// and, when all loops together hold more than the budget, closes this
// loop's least recently active sessions that hold queued bytes until its
// share is back under three quarters of the budget (as the official
// closes its oldest clients under buffer pressure). Per-conn backlogs
// are already bounded by flow control; the budget bounds their sum.
func (l *loop) enforceBudget() {
	srv := l.srv
	budget := srv.cfg.BufferBudget
	own := l.queued()
	srv.loopQueued[l.index].Store(own)
	var total int64
	for i := range srv.loopQueued {
		total += srv.loopQueued[i].Load()
	}
	if total <= budget {
		return
	}
	target := own - (total - budget*3/4)
	closed := 0
	for s := l.active.head; s != nil && own > target; {
		next := s.next
		if q := s.queued(); q > 0 {
			own -= q
			closed++
			l.active.remove(s)
			l.stats.BudgetClosed++
			s.expire("buffer budget exceeded")
		}
		s = next
	}
	srv.loopQueued[l.index].Store(own)
	if closed > 0 {
		l.budgetLog.warn(srv.log, l.now, "buffer budget exceeded; closed the least recently active clients holding buffers",
			zap.Int64("budget", budget), zap.Int64("queued", total), zap.Int("closed", closed))
	}
}
