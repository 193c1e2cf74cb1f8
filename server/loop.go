package server

import (
	"context"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/stats"
)

// loop is the per-reactor state. Only its own event loop touches it, except
// tick, which only asks that loop to run a sweep.
type loop struct {
	srv  *Server
	el   gnet.EventLoop
	epfd int

	// handshakes holds sessions waiting for a header, oldest first;
	// active holds the others, least recently active first. Both are swept
	// from the front, so a sweep costs only what it closes.
	handshakes sessionList
	active     sessionList
	// now is refreshed by each sweep: a coarse clock for activity stamps.
	now time.Time

	// watched holds the sessions with a paused source or a draining conn.
	// gnet has no "outbound drained" callback, so one timer per loop polls
	// them every checkInterval while there are any: at most that much
	// delay before a resume, and no timer per connection.
	watched    []*session
	checkTimer *time.Timer
	checkArmed bool
	checkRun   gnet.Runnable
	sweepRun   gnet.Runnable

	stats stats.Counters

	// Scratch for one callback at a time: the iovec of a writev (gnet
	// copies what the socket does not take) and the TLS record headers it
	// points into.
	iov  [][]byte
	hdrs []byte
	// Fake TLS only: the loop's HMAC state for ClientHellos, room to
	// join a hello split over several records and room to build the
	// answer (gnet copies what the socket does not take at once).
	verifier *faketls.Verifier
	hello    []byte
	reply    []byte
	// keys is the secret set the verifier was made for.
	keys *secretSet
	// secretStats holds each secret's share; dcConns counts open backend
	// connections.
	secretStats map[[16]byte]*stats.Secret
	dcConns     int

	// mp is the middle-proxy state, nil in direct mode.
	mp *mpLoop

	index               int
	limitLog, budgetLog rateLog
}

// checkInterval bounds the delay between a peer draining and its source
// being read again. Kernel socket buffers (MBs on loopback with autotuning)
// keep the peer fed meanwhile; each tick costs a few ns per watched session.
const checkInterval = time.Millisecond

func newLoop(s *Server, el gnet.EventLoop, epfd, index int) *loop {
	l := &loop{
		srv: s, el: el, epfd: epfd, now: time.Now(), index: index,
		iov:  make([][]byte, 0, maxIovecs),
		hdrs: make([]byte, 0, faketls.HeadersLen(readBufferCap)),
	}
	l.secretSet()
	if s.cfg.Middle != nil {
		l.mp = newMPLoop(l, index)
	}
	l.checkRun = gnet.RunnableFunc(l.check)
	l.sweepRun = gnet.RunnableFunc(l.sweep)
	return l
}

// secretSet returns the current client keys, remaking the fake-TLS
// verifier when they were replaced.
func (l *loop) secretSet() *secretSet {
	cur := l.srv.secrets.Load()
	if cur != l.keys {
		l.keys = cur
		if l.srv.cfg.fakeTLS() {
			l.verifier = faketls.NewVerifier(cur.keys)
		}
	}
	return cur
}

// secretCounters returns the share of the secret key, made on first use.
func (l *loop) secretCounters(key [16]byte) *stats.Secret {
	sc := l.secretStats[key]
	if sc == nil {
		if l.secretStats == nil {
			l.secretStats = map[[16]byte]*stats.Secret{}
		}
		sc = &stats.Secret{}
		l.secretStats[key] = sc
	}
	return sc
}

// snapshot copies the loop's counters and reads its gauges; it runs on
// the loop.
func (l *loop) snapshot() stats.Snapshot {
	snap := stats.Snapshot{Counters: l.stats, DCConns: l.dcConns, PerSecret: make(map[[16]byte]stats.Secret, len(l.secretStats))}
	for k, v := range l.secretStats {
		snap.PerSecret[k] = *v
	}
	snap.QueuedBytes = l.queued()
	if l.mp != nil {
		for _, p := range l.mp.pools {
			for _, c := range p.conns {
				switch c.state {
				case mpReady:
					snap.MPReady++
				case mpDialing, mpHandshake:
					snap.MPStarting++
				}
			}
		}
	}
	return snap
}

// watch adds s to the flow-check list and makes sure the timer runs.
func (l *loop) watch(s *session) {
	if s.watchIdx < 0 {
		s.watchIdx = len(l.watched)
		l.watched = append(l.watched, s)
	}
	l.armCheck()
}

func (l *loop) armCheck() {
	if !l.checkArmed {
		l.checkArmed = true
		if l.checkTimer == nil {
			l.checkTimer = time.AfterFunc(checkInterval, l.fireCheck)
		} else {
			l.checkTimer.Reset(checkInterval)
		}
	}
}

// fireCheck runs on the timer's goroutine and only hands over to the loop.
func (l *loop) fireCheck() {
	l.el.Execute(context.Background(), l.checkRun) // fails only when shutting down
}

// check runs on the loop: it polls every watched session and keeps those
// that still wait.
func (l *loop) check(context.Context) error {
	l.checkArmed = false
	now := time.Now()
	for i := 0; i < len(l.watched); {
		s := l.watched[i]
		if s.check(now) {
			i++
			continue
		}
		last := len(l.watched) - 1
		if i != last {
			l.watched[i] = l.watched[last]
			l.watched[i].watchIdx = i
		}
		l.watched[last] = nil
		l.watched = l.watched[:last]
		s.watchIdx = -1
	}
	if len(l.watched) > 0 {
		l.armCheck()
	}
	return nil
}

// sweepInterval is how often timeouts are checked: often enough that a
// timeout fires at most a quarter late.
func (l *loop) sweepInterval() time.Duration {
	d := min(l.srv.cfg.HandshakeTimeout, l.srv.cfg.IdleTimeout) / 4
	return max(10*time.Millisecond, min(d, time.Second))
}

// tick asks the loop to sweep at every interval until the server stops.
func (l *loop) tick() {
	t := time.NewTicker(l.sweepInterval())
	defer t.Stop()
	for {
		select {
		case <-l.srv.done:
			return
		case <-t.C:
			if l.el.Execute(context.Background(), l.sweepRun) != nil {
				return // engine shutting down
			}
		}
	}
}

// sweep closes expired sessions; it runs on the loop.
func (l *loop) sweep(context.Context) error {
	l.now = time.Now()
	cfg := &l.srv.cfg
	for s := l.handshakes.head; s != nil && l.now.Sub(s.stamp) >= cfg.HandshakeTimeout; s = l.handshakes.head {
		l.handshakes.remove(s)
		l.stats.HandshakeTimeouts++
		if cfg.fakeTLS() && s.state == stateHandshake {
			// The official relays a client that stalls before its hello
			// is complete to the real site, as any other non-client.
			l.stats.FrontedTimeout++
			s.front("handshake timeout")
			continue
		}
		s.expire("handshake timeout")
	}
	for s := l.active.head; s != nil && l.now.Sub(s.stamp) >= cfg.IdleTimeout; s = l.active.head {
		l.active.remove(s)
		l.stats.IdleTimeouts++
		s.expire("idle timeout")
	}
	if l.mp != nil {
		l.mp.sweep(l.now)
	}
	if cfg.BufferBudget > 0 {
		l.enforceBudget()
	}
	return nil
}

// dialOwner is what a backend connection is dialled for: a session (its
// DC or the fronted site) or a middle-proxy connection. It becomes the new
// conn's context, and hears of a failure on the loop.
type dialOwner interface {
	dialFailed(addr string, err error)
}

// dialerFor picks the dialer for owner's kind of connection.
func (l *loop) dialerFor(owner dialOwner) *net.Dialer {
	if _, ok := owner.(*mpConn); ok {
		return &l.srv.mpDialer
	}
	return &l.srv.dialer
}

// dial connects to addr off the loop and registers the socket on this
// loop, so that it shares the reactor of the clients it serves. gnet's own
// EventLoop.Register would dial without a deadline; dialling here bounds
// it by DialTimeout and then hands the socket to the same loop with
// Enroll. The owner reaches the new conn's OnOpen through the context.
func (l *loop) dial(owner dialOwner, addr string) {
	go func() {
		conn, err := l.dialerFor(owner).Dial("tcp", addr)
		if err == nil {
			var res <-chan gnet.RegisteredResult
			res, err = l.el.Enroll(gnet.NewContext(context.Background(), owner), conn)
			if err != nil {
				conn.Close()
			} else {
				select {
				case r := <-res:
					err = r.Err
				case <-l.srv.done:
					return // the loop is gone and will not register it
				}
			}
		}
		if err != nil {
			l.el.Execute(context.Background(), dialFailure{owner: owner, addr: addr, err: err})
		}
	}()
}

// dialFailure reports a failed connection back on the loop.
type dialFailure struct {
	owner dialOwner
	addr  string
	err   error
}

func (f dialFailure) Run(context.Context) error {
	f.owner.dialFailed(f.addr, f.err)
	return nil
}

// sessionList is an intrusive doubly linked list of sessions.
type sessionList struct {
	head, tail *session
}

func (l *sessionList) pushBack(s *session) {
	s.list = l
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *sessionList) remove(s *session) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next, s.list = nil, nil, nil
}

func remoteField(key string, a net.Addr) zap.Field {
	if a == nil {
		return zap.Skip()
	}
	return zap.String(key, a.String())
}
