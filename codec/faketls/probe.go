package faketls

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// probeHelloLen is the size of the official proxy's probing ClientHello.
const probeHelloLen = 517

// defaultProbeTimeout bounds a Probe whose context has no deadline: the
// official proxy gives its probes 5 seconds.
const defaultProbeTimeout = 5 * time.Second

// helloRetryRandom is the random of a HelloRetryRequest (RFC 8446 §4.1.3).
var helloRetryRandom = [randomLen]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// sample is what one probe connection learns.
type sample struct {
	svFirst bool // supported_versions came before key_share
	appData int  // length of the first application-data record
}

// Probe learns the shape of the real site's TLS 1.3 reply (§4.8), so that
// the proxy's can look the same. It opens tries connections to addr in
// parallel, sends each a Chrome-like 517-byte ClientHello naming sni and
// reads the answer: a TLS 1.3 ServerHello with exactly the key_share and
// supported_versions extensions, the ChangeCipherSpec record, and the
// header of the first application-data record. From the lengths L of those
// records: all equal gives L exactly; a spread of at most 3 gives max − 1
// with ±1 jitter; anything else the rounded mean with ±1 jitter.
//
// Servers may send their encrypted flight as several records: Go's
// crypto/tls (and so Caddy) sends one per handshake message, the first
// holding only EncryptedExtensions, a few dozen bytes. The official proxy
// insists on a single record and falls back to the default shape for such
// sites; Probe takes the first record's length, because the reply must be
// one record anyway and only its length can be copied.
//
// Any failure, unexpected byte, disagreement between connections on the
// extension order, or ctx ending is an error (fall back to DefaultShape).
// Probe returns by the time ctx ends; without a deadline in ctx it allows
// 5 seconds, like the official.
func Probe(ctx context.Context, addr, sni string, tries int) (Shape, error) {
	if tries < 1 {
		return Shape{}, errors.New("faketls: probe needs at least one try")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultProbeTimeout)
		defer cancel()
	}
	// The first failure cancels the other tries and becomes the cause.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	samples := make([]sample, tries)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range samples {
		wg.Go(func() {
			s, err := probeOnce(ctx, addr, sni)
			if err != nil {
				cancel(err)
				failed.Store(true)
			}
			samples[i] = s
		})
	}
	wg.Wait()
	if failed.Load() {
		return Shape{}, fmt.Errorf("faketls: probing %s: %w", addr, context.Cause(ctx))
	}
	return shapeOf(samples)
}

// probeOnce does one probe connection.
func probeOnce(ctx context.Context, addr, sni string) (sample, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return sample{}, err
	}
	defer conn.Close()
	// I/O must not outlive ctx: its deadline bounds each call and its
	// cancellation interrupts a blocked one.
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	hello, err := appendChromeHello(nil, rand.Reader, sni, probeHelloLen)
	if err != nil {
		return sample{}, err
	}
	if _, err := conn.Write(hello); err != nil {
		return sample{}, err
	}
	var hdr [recordHeaderLen]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return sample{}, err
	}
	if hdr[0] != recordHandshake || hdr[1] != 0x03 || hdr[2] != 0x03 {
		return sample{}, fmt.Errorf("reply starts with % x, not a handshake record", hdr)
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return sample{}, err
	}
	svFirst, err := parseServerHello(msg, hello[randomEnd+1:randomEnd+33]) // our session id
	if err != nil {
		return sample{}, err
	}
	var tail [6 + recordHeaderLen]byte // ChangeCipherSpec, application-data header
	if _, err := io.ReadFull(conn, tail[:]); err != nil {
		return sample{}, err
	}
	if !bytes.Equal(tail[:9], []byte{recordChangeCipherSpec, 3, 3, 0, 1, 1, recordApplicationData, 3, 3}) {
		return sample{}, fmt.Errorf("ServerHello followed by % x, not ChangeCipherSpec and application data", tail)
	}
	n := int(binary.BigEndian.Uint16(tail[9:]))
	if n == 0 || n > maxCiphertext {
		return sample{}, fmt.Errorf("application-data record of %d bytes", n)
	}
	return sample{svFirst: svFirst, appData: n}, nil
}

// parseServerHello checks a ServerHello message the way the official proxy
// does and reports whether supported_versions came first.
func parseServerHello(msg []byte, sessionID []byte) (svFirst bool, err error) {
	c := cursor(msg)
	if t, _ := c.u8(); t != 0x02 {
		return false, errors.New("first handshake message is not a ServerHello")
	}
	if n, ok := c.u24(); !ok || n != len(c) {
		return false, errors.New("ServerHello length does not match its record")
	}
	if v, _ := c.u16(); v != 0x0303 {
		return false, errors.New("ServerHello legacy version is not TLS 1.2")
	}
	if random, ok := c.bytes(randomLen); !ok || bytes.Equal(random, helloRetryRandom[:]) {
		return false, errors.New("HelloRetryRequest or truncated ServerHello")
	}
	if sid, ok := c.vec8(); !ok || !bytes.Equal(sid, sessionID) {
		return false, errors.New("session id not echoed")
	}
	if suite, _ := c.u16(); suite < 0x1301 || suite > 0x1303 {
		return false, fmt.Errorf("cipher suite %#04x is not TLS 1.3", suite)
	}
	if comp, ok := c.u8(); !ok || comp != 0 {
		return false, errors.New("compression method is not null")
	}
	exts, ok := c.vec16()
	if !ok || !c.empty() {
		return false, errors.New("extensions length does not match")
	}
	var keyShare, versions bool
	for !exts.empty() {
		typ, _ := exts.u16()
		data, ok := exts.vec16()
		if !ok {
			return false, errors.New("truncated extension")
		}
		switch {
		case typ == extKeyShare && !keyShare && len(data) == 36 &&
			bytes.HasPrefix(data, []byte{0x00, 0x1d, 0x00, 0x20}):
			keyShare = true
		case typ == extSupportedVersions && !versions && bytes.Equal(data, []byte{0x03, 0x04}):
			svFirst = !keyShare
			versions = true
		default:
			return false, fmt.Errorf("unexpected or malformed extension %#04x", typ)
		}
	}
	if !keyShare || !versions {
		return false, errors.New("ServerHello lacks an X25519 key share or TLS 1.3")
	}
	return svFirst, nil
}

// shapeOf turns probe samples into a Shape as the official proxy does.
func shapeOf(samples []sample) (Shape, error) {
	s := Shape{SupportedVersionsFirst: samples[0].svFirst}
	lo, hi, sum := math.MaxInt, 0, 0
	for _, x := range samples {
		if x.svFirst != s.SupportedVersionsFirst {
			return Shape{}, errors.New("faketls: probes disagree on the ServerHello extension order")
		}
		lo, hi, sum = min(lo, x.appData), max(hi, x.appData), sum+x.appData
	}
	switch {
	case lo == hi:
		s.AppDataLen = lo
	case hi-lo <= 3:
		s.AppDataLen, s.Jitter = hi-1, 1
	default:
		s.AppDataLen, s.Jitter = (2*sum+len(samples))/(2*len(samples)), 1
	}
	return s, nil
}
