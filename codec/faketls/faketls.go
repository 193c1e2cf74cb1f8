// Package faketls implements the wire format of MTProxy's fake TLS, the
// disguise used by ee secrets (protocol.md §4): a ClientHello whose random
// field is an HMAC of the secret and a timestamp, the proxy's ServerHello
// signed the same way, then the obfuscated2 stream carried in TLS
// application-data records.
//
// Everything that runs per connection works on byte slices the caller owns
// and never blocks, so it fits a non-blocking event loop. A server
// handshake, once the first bytes of a connection arrive, is:
//
//	n, err := faketls.HelloLength(buf)    // err: not fake TLS, front it
//	if n > len(buf) { wait for more }     // buffer until n bytes are in
//	rec, err := faketls.Reassemble(scratch[:0], buf[:n])
//	h, err := faketls.ParseHello(rec)
//	secret, ts, err := verifier.Verify(rec)   // one Verifier per loop
//	err = cache.CheckTime(ts, now)
//	err = cache.Add(h.Random, now)
//	out, err = faketls.AppendServerHello(out, &h, secrets[secret], shape, rand.Reader)
//
// after which a RecordReader strips the client's records and AppendRecords
// frames the proxy's output. Any error before the reply is sent means the
// connection is not a valid client and should be relayed, with every byte
// received so far, to the real site (§4.7).
package faketls

import "errors"

// TLS record types and header layout.
const (
	recordChangeCipherSpec = 0x14
	recordHandshake        = 0x16
	recordApplicationData  = 0x17

	recordHeaderLen = 5
)

// The random of a ClientHello or ServerHello record sits after the 5-byte
// record header, the 4-byte handshake header and the 2-byte legacy version.
const (
	randomOffset = 11
	randomLen    = 32
	randomEnd    = randomOffset + randomLen
)

// Size limits.
const (
	// MinHelloLen is the smallest ClientHello message, in bytes including
	// its 4-byte handshake header, that HelloLength accepts: the size at
	// which the official proxy starts (record length high byte ≥ 2).
	MinHelloLen = 512

	// MaxHelloLen is the largest ClientHello message HelloLength accepts:
	// the TLS plaintext record limit, 2¹⁴. Modern hellos with a
	// post-quantum key share are about 1.8 KB.
	MaxHelloLen = 1 << 14

	// MaxRecordPayload is the largest payload AppendRecords puts in one
	// record: tdlib fails the connection on anything longer.
	MaxRecordPayload = 1 << 14

	// MaxClientRecord is the largest application-data record a
	// RecordReader accepts: any length the 16-bit field can carry, as the
	// official proxy does. tdlib sends at most 2878 bytes per record, but
	// other clients (gotd) put a whole message in one record, beyond the
	// 2¹⁴ + 256 a real TLS peer would respect.
	MaxClientRecord = 1<<16 - 1
)

// Errors. Each names one outcome so that a server can count them; those
// returned while parsing carry details and match with errors.Is.
var (
	// ErrNotHello means the connection does not start with a ClientHello
	// in the shape fake-TLS clients send (for example a plain obfuscated2
	// client, an HTTP request or a hello of an unsupported size).
	ErrNotHello = errors.New("faketls: not a TLS ClientHello")

	// ErrBadHello means a record framed as a ClientHello is malformed.
	ErrBadHello = errors.New("faketls: malformed ClientHello")

	// ErrDigest means the ClientHello's random is the digest of none of
	// the secrets: a probe, a real browser or a client with another secret.
	ErrDigest = errors.New("faketls: ClientHello digest matches no secret")

	// ErrClockSkew means the timestamp in the digest is outside the
	// accepted window (see ReplayCache.CheckTime).
	ErrClockSkew = errors.New("faketls: ClientHello timestamp outside the accepted window")

	// ErrReplay means a ClientHello with the same random was accepted
	// before.
	ErrReplay = errors.New("faketls: ClientHello random seen before")

	// ErrCipherSuite means the client's first non-GREASE cipher suite is
	// not one of the three TLS 1.3 suites, which the official proxy
	// requires.
	ErrCipherSuite = errors.New("faketls: first cipher suite is not TLS 1.3")

	// ErrBadRecord means the client sent a record other than application
	// data or the one-byte ChangeCipherSpec after the handshake.
	ErrBadRecord = errors.New("faketls: unexpected TLS record")
)

// malformed is a detailed ErrBadHello that costs no allocation to return,
// so garbage from the network does not make the event loop allocate.
type malformed string

func (m malformed) Error() string { return ErrBadHello.Error() + ": " + string(m) }

func (malformed) Is(target error) bool { return target == ErrBadHello }

// maxCiphertext is the longest record a TLS 1.3 peer may send: 2¹⁴ bytes
// of plaintext plus 256 of expansion. It bounds what we send and probe.
const maxCiphertext = 1<<14 + 256
