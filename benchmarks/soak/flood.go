package soak

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

// parallelN calls f(0..n-1) on at most workers goroutines and returns when
// every call has returned; once ctx ends no new call starts.
func parallelN(ctx context.Context, n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// newRand returns a fast generator with a random seed, for one goroutine.
func newRand() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// errorCounts counts errors by kind and keeps the first of each.
type errorCounts struct {
	mu    sync.Mutex
	count map[string]int64
	first map[string]string
}

func (e *errorCounts) add(kind string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count == nil {
		e.count, e.first = make(map[string]int64), make(map[string]string)
	}
	e.count[kind]++
	if _, ok := e.first[kind]; !ok {
		e.first[kind] = err.Error()
	}
}

func (e *errorCounts) total() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, c := range e.count {
		n += c
	}
	return n
}

// FloodResult is what a flood phase saw from the client side.
type FloodResult struct {
	Conns     int   `json:"conns"`     // connections attempted
	Completed int64 `json:"completed"` // connections that did everything they meant to
	BytesSent int64 `json:"bytes_sent"`
	// Errors by kind (dial, write, handshake, close) with the first of
	// each.
	Errors      int64             `json:"errors"`
	ErrorKinds  map[string]int64  `json:"error_kinds,omitempty"`
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	Seconds     float64           `json:"seconds"`
	PerSecond   float64           `json:"conns_per_second"`
}

func (r *FloodResult) finish(e *errorCounts, start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	if r.Seconds > 0 {
		r.PerSecond = float64(r.Completed) / r.Seconds
	}
	r.Errors = e.total()
	r.ErrorKinds, r.FirstErrors = e.count, e.first
}

// maxGarbage bounds the random bytes of one garbage connection: some stop
// short of the 64-byte header, most send a wrong header and more.
const maxGarbage = 2048

// garbageFlood opens n connections, concurrency at a time; each sends
// 1..maxGarbage random bytes and closes.
func garbageFlood(ctx context.Context, addr string, n, concurrency int) *FloodResult {
	res := &FloodResult{Conns: n}
	var errs errorCounts
	var done, sent atomic.Int64
	start := time.Now()
	parallelN(ctx, n, concurrency, func(i int) {
		// One generator per connection would cost more than the
		// connection; a pool keeps them per goroutine in practice.
		r := randPool.Get().(*rand.ChaCha8)
		defer randPool.Put(r)
		junk := make([]byte, 1+int(r.Uint64()%maxGarbage))
		r.Read(junk)
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() == nil {
				errs.add("dial", err)
			}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(junk); err != nil {
			errs.add("write", err)
			return
		}
		sent.Add(int64(len(junk)))
		done.Add(1)
	})
	res.Completed, res.BytesSent = done.Load(), sent.Load()
	res.finish(&errs, start)
	return res
}

var randPool = sync.Pool{New: func() any { return newRand() }}

// resetFlood makes n valid obfuscated2 handshakes with key, concurrency
// at a time, each followed at once by a reset (SO_LINGER 0 and close);
// every other one sends a few bytes after its header first, so that the
// proxy has something to relay when the reset comes.
func resetFlood(ctx context.Context, addr string, key [16]byte, n, concurrency int) *FloodResult {
	res := &FloodResult{Conns: n}
	var errs errorCounts
	var done, sent atomic.Int64
	tags := []uint32{fakedc.TagAbridged, fakedc.TagIntermediate, fakedc.TagPaddedIntermediate}
	start := time.Now()
	parallelN(ctx, n, concurrency, func(i int) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := tgclient.DialRaw(dctx, addr, key, tags[i%len(tags)], 2)
		if err != nil {
			if ctx.Err() == nil {
				errs.add("handshake", err)
			}
			return
		}
		bytes := 64
		if i%2 == 1 {
			// An intermediate frame header and 56 bytes: a packet a
			// middle-proxy mode proxy forwards (in the other framings
			// just bytes of an unfinished frame).
			var frame [60]byte
			binary.LittleEndian.PutUint32(frame[:4], 56)
			crand.Read(frame[4:])
			frame[4] |= 1 // a non-zero auth_key_id
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(frame[:]); err != nil {
				errs.add("write", err)
				c.Close()
				return
			}
			bytes += len(frame)
		}
		if err := c.Conn.(*net.TCPConn).SetLinger(0); err != nil {
			errs.add("linger", err)
		}
		if err := c.Close(); err != nil {
			errs.add("close", err)
			return
		}
		sent.Add(int64(bytes))
		done.Add(1)
	})
	res.Completed, res.BytesSent = done.Load(), sent.Load()
	res.finish(&errs, start)
	return res
}
