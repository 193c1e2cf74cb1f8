package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/histogram"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

// maxEcho is the largest echo of a short session; sizes are uniform in
// 1..maxEcho (direct mode) or in the multiples of 4 from minMiddle to
// maxEcho (middle-proxy mode).
const maxEcho = 4000

// minMiddle is the smallest packet a proxy in middle-proxy mode forwards
// (protocol.md §6.7): 56 bytes, a multiple of 4, with a non-zero first 8.
const minMiddle = 56

// sessionTimeout bounds one short session.
const sessionTimeout = 10 * time.Second

// ShortResult is what the short-connection soak saw.
type ShortResult struct {
	Planned int   `json:"planned"` // sessions asked for
	Started int64 `json:"started"`
	OK      int64 `json:"ok"` // sessions whose echo came back whole and equal
	// Errors are failed sessions other than mismatches: handshake
	// (dial and header), write, read (reset, EOF or timeout before the
	// whole echo), by kind with the first of each.
	Errors      int64             `json:"errors"`
	ErrorKinds  map[string]int64  `json:"error_kinds,omitempty"`
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	// Mismatches are echoes that came back whole but different.
	Mismatches    int64  `json:"mismatches"`
	FirstMismatch string `json:"first_mismatch,omitempty"`
	// BytesSent are payload bytes written by sessions; BytesVerified
	// those that came back equal; BytesLost the difference.
	BytesSent     int64 `json:"bytes_sent"`
	BytesVerified int64 `json:"bytes_verified"`
	BytesLost     int64 `json:"bytes_lost"`

	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"sessions_per_second"`
	// StoppedBy says why fewer than Planned sessions ran: "max-duration"
	// or "interrupted"; empty when all ran.
	StoppedBy string `json:"stopped_by,omitempty"`
	// SessionMS is the time of a whole session (connect, handshake, echo,
	// close) in milliseconds.
	SessionMS Quantile `json:"session_ms"`
}

// shortSessions runs n short sessions against the proxy at addr,
// concurrency at a time, for at most maxDuration: each connects, sends a
// header for key, one random payload, reads the echo and checks it, and
// closes. middle frames the payload as a packet for a proxy in
// middle-proxy mode. progress, if set, is called every progressEvery.
func shortSessions(ctx context.Context, addr string, key [16]byte, n, concurrency int, maxDuration time.Duration,
	middle bool, progressEvery time.Duration, progress func(started, ok, failed int64, elapsed time.Duration)) *ShortResult {
	res := &ShortResult{Planned: n}
	var errs errorCounts
	var started, ok, mismatches, sent, verified atomic.Int64
	var firstMismatch atomic.Pointer[string]
	var lat histogram.Histogram
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, maxDuration)
	defer cancel()

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if progress == nil {
			return
		}
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				progress(started.Load(), ok.Load(), errs.total()+mismatches.Load(), time.Since(start))
			}
		}
	}()

	framings := []framing.Framing{framing.Abridged, framing.Intermediate, framing.Padded}
	parallelN(runCtx, n, concurrency, func(i int) {
		started.Add(1)
		s := sessionPool.Get().(*session)
		defer sessionPool.Put(s)
		t0 := time.Now()
		size, err := s.run(ctx, addr, key, framings[i%len(framings)], middle)
		if size > 0 {
			sent.Add(int64(size))
		}
		var mm *mismatchError
		switch {
		case errors.As(err, &mm):
			if mismatches.Add(1) == 1 {
				msg := fmt.Sprintf("session %d: %v", i, err)
				firstMismatch.Store(&msg)
			}
		case err != nil:
			var ke kindError
			if errors.As(err, &ke) {
				errs.add(ke.kind, fmt.Errorf("session %d: %w", i, ke.err))
			} else {
				errs.add("other", err)
			}
		default:
			ok.Add(1)
			verified.Add(int64(size))
			lat.Record(time.Since(t0))
		}
	})
	close(stopProgress)
	<-progressDone

	res.Started, res.OK, res.Mismatches = started.Load(), ok.Load(), mismatches.Load()
	if p := firstMismatch.Load(); p != nil {
		res.FirstMismatch = *p
	}
	res.BytesSent, res.BytesVerified = sent.Load(), verified.Load()
	res.BytesLost = res.BytesSent - res.BytesVerified
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.PerSecond = float64(res.OK+res.Mismatches+errs.total()) / res.Seconds
	}
	res.Errors = errs.total()
	res.ErrorKinds, res.FirstErrors = errs.count, errs.first
	switch {
	case res.Started >= int64(n):
	case ctx.Err() != nil:
		res.StoppedBy = "interrupted"
	default:
		res.StoppedBy = "max-duration"
	}
	ms := func(q float64) float64 { return float64(lat.Quantile(q)) / float64(time.Millisecond) }
	if lat.Count() > 0 {
		res.SessionMS = Quantile{Min: float64(lat.Min()) / 1e6, P50: ms(0.5), P99: ms(0.99), Max: float64(lat.Max()) / 1e6}
	}
	return res
}

// kindError is a session error and the step it happened in.
type kindError struct {
	kind string
	err  error
}

func (e kindError) Error() string { return e.kind + ": " + e.err.Error() }
func (e kindError) Unwrap() error { return e.err }

// mismatchError is an echo that came back whole but different.
type mismatchError struct {
	size, at int
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("echo of %d bytes differs from byte %d", e.size, e.at)
}

// session holds one worker's buffers and random source.
type session struct {
	rnd  interface{ Uint64() uint64 }
	fill func([]byte)
	out  []byte
	in   []byte
	br   *bufio.Reader
}

var sessionPool = sync.Pool{New: func() any {
	r := newRand()
	return &session{rnd: r, fill: func(b []byte) { r.Read(b) },
		out: make([]byte, 4+maxEcho), in: make([]byte, maxEcho+3), br: bufio.NewReaderSize(nil, 4096)}
}}

// run makes one session and returns the payload size it sent (0 if it
// sent nothing).
func (s *session) run(ctx context.Context, addr string, key [16]byte, f framing.Framing, middle bool) (int, error) {
	dctx, cancel := context.WithTimeout(ctx, sessionTimeout)
	defer cancel()
	c, err := tgclient.DialRaw(dctx, addr, key, f.Tag(), 2)
	if err != nil {
		return 0, kindError{"handshake", err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(sessionTimeout))

	var size int
	var msg, payload []byte
	if middle {
		size = minMiddle + 4*int(s.rnd.Uint64()%uint64((maxEcho-minMiddle)/4+1))
		hdr, err := f.AppendHeader(s.out[:0], size)
		if err != nil {
			return 0, kindError{"frame", err}
		}
		msg = s.out[:len(hdr)+size]
		payload = msg[len(hdr):]
		s.fill(payload)
		payload[0] |= 1 // a non-zero auth_key_id
	} else {
		size = 1 + int(s.rnd.Uint64()%maxEcho)
		msg = s.out[:size]
		payload = msg
		s.fill(payload)
	}
	if _, err := c.Write(msg); err != nil {
		return 0, kindError{"write", err}
	}
	got := s.in[:size]
	if middle {
		s.br.Reset(c)
		if err := readPieces(s.br, f, s.in, size); err != nil {
			return size, err
		}
	} else if _, err := io.ReadFull(c, got); err != nil {
		return size, kindError{"read", noEOF(err)}
	}
	if !bytes.Equal(got, payload) {
		at := 0
		for at < size && got[at] == payload[at] {
			at++
		}
		return size, &mismatchError{size: size, at: at}
	}
	return size, nil
}

// readPieces reads the echo of a size-byte packet from a proxy in
// middle-proxy mode into buf: one frame or several, each a multiple of 4
// bytes, with 0..3 bytes of padding in padded intermediate.
func readPieces(r io.Reader, f framing.Framing, buf []byte, size int) error {
	maxPad := 0
	if f == framing.Padded {
		maxPad = 3
	}
	for got := 0; got < size; {
		n, quickAck, err := f.ReadHeader(r)
		if err != nil {
			return kindError{"read", noEOF(err)}
		}
		data := n &^ 3
		if quickAck || n-data > maxPad || data == 0 || data > size-got {
			return kindError{"frame", fmt.Errorf("a %v frame of %d bytes (quick ack %v) after %d of %d", f, n, quickAck, got, size)}
		}
		if _, err := io.ReadFull(r, buf[got:got+n]); err != nil {
			return kindError{"read", noEOF(err)}
		}
		got += data
	}
	return nil
}

// noEOF names an EOF where an echo was due.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("closed before the whole echo came back: %w", err)
	}
	return err
}
