package soak

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

// trickler holds the slowloris connections. One goroutine (run) owns
// every connection: it registers each with an epoll instance of its own
// to see the proxy close it the moment it does, and walks a queue ordered
// by due time to send each its next byte.
type trickler struct {
	epfd  int
	every time.Duration

	byFD  map[int32]*tconn
	queue []*tconn // open connections by next write time; closed ones are skipped
	head  int

	open, held int
	res        *SlowlorisResult
	after      []time.Duration // connect to close, per connection the proxy closed
}

// tconn is one trickling connection.
type tconn struct {
	c      *net.TCPConn
	rc     syscall.RawConn
	fd     int32
	opened time.Time
	next   time.Time
	sent   int
	closed bool
	talked bool // the proxy sent something
}

// SlowlorisResult is what the slowloris phase saw from the client side.
type SlowlorisResult struct {
	Conns      int     `json:"conns"`        // connections attempted
	Opened     int     `json:"opened"`       // connections established
	Held       int     `json:"held"`         // most open at one time
	OpenSecs   float64 `json:"open_seconds"` // time to establish them all
	BytesSent  int64   `json:"bytes_sent"`   // trickled bytes, one at a time
	DialErrors int     `json:"dial_errors"`
	FirstError string  `json:"first_error,omitempty"`

	// How the proxy closed them: a FIN (EOF) or a reset; a failed write
	// means the close was seen by the write before epoll reported it.
	Closed      int `json:"closed"` // closed by the proxy, in total
	ClosedEOF   int `json:"closed_eof"`
	ClosedReset int `json:"closed_reset"`
	ClosedWrite int `json:"closed_on_write"`
	// NotClosed were still open at the phase's deadline and were closed
	// by the client.
	NotClosed int `json:"not_closed"`
	// DataFromProxy counts connections on which the proxy sent anything.
	DataFromProxy int `json:"data_from_proxy"`

	// Time from connect to the proxy's close, against the handshake
	// timeout: Early closed before it, Late after LateAfter.
	TimeoutSecs float64  `json:"timeout_seconds"`
	CloseAfter  Quantile `json:"close_after_seconds"`
	Early       int      `json:"early"`
	Late        int      `json:"late"`
	LateSecs    float64  `json:"late_after_seconds"`
}

// Quantile summarises a set of durations in seconds.
type Quantile struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func quantiles(ds []time.Duration) Quantile {
	if len(ds) == 0 {
		return Quantile{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return ds[int(q*float64(len(ds)-1))].Seconds() }
	return Quantile{Min: ds[0].Seconds(), P50: at(0.5), P99: at(0.99), Max: ds[len(ds)-1].Seconds()}
}

// lateAfter is when a trickling connection counts as closed late: the
// proxy checks its timeouts every quarter timeout (at most every second),
// so half a timeout and a second more is generous.
func lateAfter(timeout time.Duration) time.Duration {
	return timeout + timeout/2 + time.Second
}

// slowlorisGrace is how long after a connection is late the phase gives up
// waiting for the proxy to close the rest.
func slowlorisGrace(timeout time.Duration) time.Duration { return timeout / 2 }

// slowloris opens n connections to addr, concurrency at a time, and sends
// each one byte every `every` until the proxy closes it. Connections the
// proxy has not closed lateAfter(timeout) + slowlorisGrace(timeout) after
// the last one opened are closed here and counted as NotClosed.
func slowloris(ctx context.Context, addr string, n, concurrency int, every, timeout time.Duration) (*SlowlorisResult, error) {
	res := &SlowlorisResult{Conns: n, TimeoutSecs: timeout.Seconds(), LateSecs: lateAfter(timeout).Seconds()}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("soak: epoll: %w", err)
	}
	defer syscall.Close(epfd)
	t := &trickler{epfd: epfd, every: every, byFD: make(map[int32]*tconn, n), res: res}

	// Dialers hand their connections to the walker, which alone touches
	// them afterwards.
	opened := make(chan *tconn, concurrency)
	dialCtx, stopDial := context.WithCancel(ctx)
	defer func() {
		// On an early return, connections still on their way are closed.
		stopDial()
		for tc := range opened {
			tc.c.Close()
		}
	}()
	var dialErrs struct {
		sync.Mutex
		n     int
		first error
	}
	start := time.Now()
	go func() {
		defer close(opened)
		parallelN(dialCtx, n, concurrency, func(int) {
			d := net.Dialer{Timeout: 10 * time.Second}
			c, err := d.DialContext(dialCtx, "tcp", addr)
			if err != nil {
				if dialCtx.Err() == nil {
					dialErrs.Lock()
					dialErrs.n++
					if dialErrs.first == nil {
						dialErrs.first = err
					}
					dialErrs.Unlock()
				}
				return
			}
			tc := &tconn{c: c.(*net.TCPConn), opened: time.Now()}
			select {
			case opened <- tc:
			case <-dialCtx.Done():
				c.Close()
			}
		})
	}()

	events := make([]syscall.EpollEvent, 256)
	var deadline time.Time // set once every dial is done
	dialing := true
	for dialing || t.open > 0 {
		if err := ctx.Err(); err != nil {
			t.closeAll()
			return res, err
		}
		// New connections first, without waiting.
	drain:
		for dialing {
			select {
			case tc, ok := <-opened:
				if !ok {
					dialing = false
					res.OpenSecs = time.Since(start).Seconds()
					deadline = time.Now().Add(lateAfter(timeout) + slowlorisGrace(timeout))
					break drain
				}
				if err := t.add(tc); err != nil {
					tc.c.Close()
					t.closeAll()
					return res, err
				}
			default:
				break drain
			}
		}
		t.trickle(time.Now())
		wait := 20 // ms; short, so that new connections are taken up soon
		if !dialing {
			wait = 100
		}
		k, err := syscall.EpollWait(epfd, events, wait)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			t.closeAll()
			return res, fmt.Errorf("soak: epoll_wait: %w", err)
		}
		now := time.Now()
		for _, ev := range events[:max(k, 0)] {
			if tc := t.byFD[ev.Fd]; tc != nil && !tc.closed {
				t.check(tc, ev.Events, now)
			}
		}
		if !dialing && now.After(deadline) {
			res.NotClosed = t.open
			t.closeAll()
		}
	}
	res.DialErrors = dialErrs.n
	if dialErrs.first != nil {
		res.FirstError = dialErrs.first.Error()
	}
	res.Held = t.held
	res.CloseAfter = quantiles(t.after)
	return res, nil
}

// add takes a new connection: epoll watch, first byte, queue.
func (t *trickler) add(tc *tconn) error {
	rc, err := tc.c.SyscallConn()
	if err != nil {
		return err
	}
	tc.rc = rc
	var ctlErr error
	if err := rc.Control(func(fd uintptr) {
		tc.fd = int32(fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
		ctlErr = syscall.EpollCtl(t.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil {
		return err
	}
	if ctlErr != nil {
		return fmt.Errorf("soak: epoll_ctl: %w", ctlErr)
	}
	t.byFD[tc.fd] = tc
	t.res.Opened++
	t.open++
	t.held = max(t.held, t.open)
	tc.next = tc.opened
	t.queue = append(t.queue, tc)
	t.trickle(time.Now()) // its first byte now
	return nil
}

// trickle sends one byte to every open connection that is due, in due
// order, and requeues it `every` later.
func (t *trickler) trickle(now time.Time) {
	for t.head < len(t.queue) {
		tc := t.queue[t.head]
		if tc.closed {
			t.queue[t.head] = nil
			t.head++
			continue
		}
		if tc.next.After(now) {
			break
		}
		t.queue[t.head] = nil
		t.head++
		if t.write(tc, now) {
			tc.next = tc.next.Add(t.every)
			if tc.next.Before(now) {
				tc.next = now.Add(t.every) // fell behind: no burst
			}
			t.queue = append(t.queue, tc)
		}
	}
	// Keep the queue from growing without bound.
	if t.head > 4096 && t.head > len(t.queue)/2 {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
}

// write sends the next byte without blocking; false if the connection is
// gone.
func (t *trickler) write(tc *tconn, now time.Time) bool {
	b := []byte{byte(tc.sent)}
	var n int
	var werr error
	err := tc.rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true // never wait: a full buffer just skips this byte
	})
	switch {
	case err != nil:
		werr = err
	case n == 1:
		tc.sent++
		t.res.BytesSent++
		return true
	case errors.Is(werr, syscall.EAGAIN):
		return true
	}
	t.closedByProxy(tc, now, "write")
	return false
}

// check reads what epoll reported on tc without blocking.
func (t *trickler) check(tc *tconn, events uint32, now time.Time) {
	var buf [64]byte
	var n int
	var rerr error
	err := tc.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf[:])
		return true
	})
	switch {
	case err != nil:
		t.closedByProxy(tc, now, "reset")
	case n > 0:
		// The proxy must not answer a trickling client; drain and note it.
		if !tc.talked {
			tc.talked = true
			t.res.DataFromProxy++
		}
	case n == 0 && rerr == nil:
		t.closedByProxy(tc, now, "eof")
	case errors.Is(rerr, syscall.EAGAIN):
		if events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			t.closedByProxy(tc, now, "reset")
		}
	default:
		t.closedByProxy(tc, now, "reset")
	}
}

// closedByProxy records the proxy's close of tc and releases it.
func (t *trickler) closedByProxy(tc *tconn, now time.Time, how string) {
	switch how {
	case "eof":
		t.res.ClosedEOF++
	case "reset":
		t.res.ClosedReset++
	case "write":
		t.res.ClosedWrite++
	}
	t.res.Closed++
	after := now.Sub(tc.opened)
	t.after = append(t.after, after)
	if timeout := time.Duration(t.res.TimeoutSecs * float64(time.Second)); after < timeout {
		t.res.Early++
	} else if after > lateAfter(timeout) {
		t.res.Late++
	}
	t.release(tc)
}

func (t *trickler) release(tc *tconn) {
	if tc.closed {
		return
	}
	tc.closed = true
	t.open--
	ev := syscall.EpollEvent{}
	syscall.EpollCtl(t.epfd, syscall.EPOLL_CTL_DEL, int(tc.fd), &ev)
	delete(t.byFD, tc.fd)
	tc.c.Close()
}

// closeAll closes every connection still open.
func (t *trickler) closeAll() {
	for _, tc := range t.byFD {
		t.release(tc)
	}
}
