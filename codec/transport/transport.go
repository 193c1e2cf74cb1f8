// Package transport is the server-side codec for the three MTProto client
// framings that travel inside obfuscated2 (protocol.md §3): abridged,
// intermediate and padded intermediate.
//
// It is written for an event loop: Reader.Next consumes whatever decrypted
// bytes arrived and yields complete packets without blocking, and the
// Append* writers build proxy→client headers into a caller-owned buffer so
// that payloads never need to be copied.
//
// Middle-proxy mode (protocol.md §3.5) uses it as follows: every packet from
// Reader.Next whose payload passes LooksLikeMTProto becomes one
// RPC_PROXY_REQ; every RPC_PROXY_ANS payload is sent back behind AppendHeader
// and every RPC_SIMPLE_ACK becomes AppendQuickAck.
package transport

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mtproxy-go/mtproxy/codec/obfuscated2"
)

// Kind is a client transport framing.
type Kind uint8

// The three framings (protocol.md §3.1–3.3). The zero Kind is invalid.
const (
	Abridged     Kind = iota + 1 // tag 0xefefefef, §3.1
	Intermediate                 // tag 0xeeeeeeee, §3.2
	Padded                       // padded intermediate, tag 0xdddddddd, §3.3
)

// KindOf maps the obfuscated2 protocol tag to its framing; ok is false for
// any other tag.
func KindOf(tag obfuscated2.Tag) (k Kind, ok bool) {
	switch tag {
	case obfuscated2.TagAbridged:
		return Abridged, true
	case obfuscated2.TagIntermediate:
		return Intermediate, true
	case obfuscated2.TagPadded:
		return Padded, true
	}
	return 0, false
}

// Tag returns the obfuscated2 protocol tag announcing k (zero if k is invalid).
func (k Kind) Tag() obfuscated2.Tag {
	switch k {
	case Abridged:
		return obfuscated2.TagAbridged
	case Intermediate:
		return obfuscated2.TagIntermediate
	case Padded:
		return obfuscated2.TagPadded
	}
	return 0
}

// Valid reports whether k is one of the three framings.
func (k Kind) Valid() bool { return k >= Abridged && k <= Padded }

func (k Kind) String() string {
	switch k {
	case Abridged:
		return "abridged"
	case Intermediate:
		return "intermediate"
	case Padded:
		return "padded"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MaxLen is the largest packet length (header value, padding included) the
// official proxy accepts from a client: 262144·4 − 4096 (protocol.md §3.4).
const MaxLen = 1044480

// MaxHeaderLen is the longest header AppendHeader writes.
const MaxHeaderLen = 4

// Reader errors. They are sticky: once Next returned one, every later call
// returns the same value. All of them mean the connection must be failed
// (protocol.md §3.4).
var (
	ErrKind         = errors.New("transport: invalid framing kind")
	ErrZeroLength   = errors.New("transport: zero packet length")
	ErrReservedBits = errors.New("transport: packet length has bit 30 or 31 set")
	ErrTooLong      = errors.New("transport: packet longer than 1044480 bytes")
	ErrUnaligned    = errors.New("transport: packet length not a multiple of 4")
	ErrOverlong     = errors.New("transport: overlong abridged length encoding")
)

const (
	abridgedQuickAck = 0x80
	abridgedLong     = 0x7f
	quickAckBit      = 1 << 31
	reservedBit      = 1 << 30
	minAssembly      = 4096
)

// Packet is one client packet.
type Packet struct {
	// Payload is the packet with its header removed; for padded intermediate
	// it is truncated to Length&^3 as the official proxy does (§3.3), so up
	// to 12 bytes of client padding can remain and it may even be empty.
	//
	// Payload aliases either the slice passed to Next (when the packet lay
	// wholly inside it) or the Reader's own buffer (when it spanned calls);
	// it is valid only until the next call to Next and until the caller
	// reuses its input buffer. Copy it to keep it.
	Payload []byte
	// QuickAck is set when the client asked for a quick ack of this packet
	// (bit 0x80 of the abridged header byte, bit 31 of the length word).
	QuickAck bool
	// Length is the body length declared by the header (padding included).
	// It is zero when Next returned no packet.
	Length int
}

// OK reports whether p is a packet, as opposed to Next's "need more bytes".
func (p Packet) OK() bool { return p.Length > 0 }

// Reader splits a stream of decrypted client bytes into packets. Set Kind
// before the first call; the zero value is otherwise ready. A Reader is not
// safe for concurrent use.
type Reader struct {
	Kind Kind

	err    error
	hdr    [MaxHeaderLen]byte
	hdrN   int  // header bytes buffered in hdr
	inBody bool // header parsed, body in progress
	quick  bool
	length int    // declared body length of the packet in progress
	got    int    // body bytes buffered in buf
	buf    []byte // assembly buffer for packets that span calls; reused
}

// Next consumes bytes from b, which may be chunked arbitrarily. When a
// packet is complete it returns it (pkt.OK() is true) together with the
// bytes of b after it, which the caller passes to Next again. Otherwise it
// has buffered all of b and returns a zero Packet and nil rest.
//
// A typical event-loop use:
//
//	for len(b) > 0 {
//		pkt, b, err = r.Next(b)
//		if err != nil { close }
//		if pkt.OK() { handle(pkt) }
//	}
//
// A packet lying wholly inside b is returned as a sub-slice of b, with no
// copy, even if its header arrived earlier. A body that spans calls is
// assembled in a buffer owned by the Reader, grown on demand (never beyond
// the packet length, hence never beyond MaxLen) and reused afterwards.
func (r *Reader) Next(b []byte) (pkt Packet, rest []byte, err error) {
	if r.err != nil {
		return Packet{}, nil, r.err
	}
	if !r.inBody {
		var done bool
		b, done = r.readHeader(b)
		if r.err != nil {
			return Packet{}, nil, r.err
		}
		if !done {
			return Packet{}, nil, nil
		}
	}
	if n := r.length; r.got == 0 && len(b) >= n {
		return r.finish(b[:n]), b[n:], nil
	}
	k := min(r.length-r.got, len(b))
	r.grow(r.got + k)
	r.buf = append(r.buf[:r.got], b[:k]...)
	r.got += k
	if r.got < r.length {
		return Packet{}, nil, nil
	}
	rest = b[k:]
	return r.finish(r.buf[:r.length]), rest, nil
}

// Err returns the sticky error, if any.
func (r *Reader) Err() error { return r.err }

// Buffered returns how many bytes of an incomplete packet (header or body)
// the Reader holds.
func (r *Reader) Buffered() int { return r.hdrN + r.got }

// Reset forgets any partial packet and the sticky error; Kind and the
// assembly buffer are kept.
func (r *Reader) Reset() {
	buf := r.buf[:0]
	*r = Reader{Kind: r.Kind, buf: buf}
}

func (r *Reader) finish(body []byte) Packet {
	p := Packet{Payload: body, QuickAck: r.quick, Length: r.length}
	if r.Kind == Padded {
		p.Payload = body[:r.length&^3]
	}
	r.inBody = false
	r.got = 0
	r.quick = false
	r.length = 0
	return p
}

// grow makes cap(r.buf) ≥ need, doubling from minAssembly but never past
// the length of the packet being assembled.
func (r *Reader) grow(need int) {
	if cap(r.buf) >= need {
		return
	}
	c := max(2*cap(r.buf), need, minAssembly)
	c = min(c, max(r.length, minAssembly))
	nb := make([]byte, r.got, c)
	copy(nb, r.buf[:r.got])
	r.buf = nb
}

// headerLen is the header size given its first byte.
func headerLen(k Kind, first byte) int {
	if k == Abridged && first&abridgedLong != abridgedLong {
		return 1
	}
	return 4
}

// readHeader consumes header bytes from b. done reports that a header was
// parsed (r.inBody set) or r.err was set.
func (r *Reader) readHeader(b []byte) (rest []byte, done bool) {
	if !r.Kind.Valid() {
		r.err = ErrKind
		return nil, true
	}
	if r.hdrN == 0 && len(b) > 0 {
		if n := headerLen(r.Kind, b[0]); len(b) >= n {
			r.parseHeader(b[:n])
			return b[n:], true
		}
	}
	for len(b) > 0 {
		r.hdr[r.hdrN] = b[0]
		r.hdrN++
		b = b[1:]
		if n := headerLen(r.Kind, r.hdr[0]); r.hdrN == n {
			r.hdrN = 0
			r.parseHeader(r.hdr[:n])
			return b, true
		}
	}
	return nil, false
}

// parseHeader applies the checks of protocol.md §3.1–3.4 to a whole header.
func (r *Reader) parseHeader(h []byte) {
	var length uint32
	var quick bool
	if r.Kind == Abridged {
		quick = h[0]&abridgedQuickAck != 0
		words := uint32(h[0] &^ abridgedQuickAck)
		if words == abridgedLong {
			words = uint32(h[1]) | uint32(h[2])<<8 | uint32(h[3])<<16
			if words < abridgedLong {
				r.err = ErrOverlong
				return
			}
		}
		length = words * 4 // < 2^26: bits 30–31 cannot be set
	} else {
		length = binary.LittleEndian.Uint32(h)
		quick = length&quickAckBit != 0
		length &^= quickAckBit
		if length&reservedBit != 0 {
			r.err = ErrReservedBits
			return
		}
	}
	switch {
	case length == 0:
		r.err = ErrZeroLength
	case length > MaxLen:
		r.err = ErrTooLong
	case r.Kind != Padded && length%4 != 0:
		r.err = ErrUnaligned
	default:
		r.inBody = true
		r.quick = quick
		r.length = int(length)
	}
}

// MTProto constructors an unencrypted client packet may carry (§6.7).
const (
	ctorReqPQ              = 0x60469778
	ctorReqPQMulti         = 0xbe7e8ef1
	ctorReqDHParams        = 0xd712e4be
	ctorSetClientDHParams  = 0xf5045f1f
	minForwardLen          = 28
	minEncryptedForwardLen = 56
)

// LooksLikeMTProto is the official proxy's check deciding whether a client
// packet (a Packet.Payload, padding already truncated) is forwarded to the
// middle proxy, exactly as listed in protocol.md §6.7:
//
//   - the length must be ≥ 28 and a multiple of 4;
//   - a non-zero auth_key_id (bytes 0..8) needs length ≥ 56 and the packet
//     is forwarded as encrypted;
//   - with auth_key_id = 0 the int32 message length at offset 16 must lie in
//     [20, len−20] and the constructor at offset 20 must be req_pq,
//     req_pq_multi, req_DH_params or set_client_DH_params; the packet is
//     forwarded as unencrypted (RPC_PROXY_REQ flag 0x2, §6.8).
//
// Anything else returns forward = false: the official drops such packets
// silently and keeps the connection open (§3.4, §6.7). encrypted is
// meaningful only when forward is true.
func LooksLikeMTProto(p []byte) (forward bool, encrypted bool) {
	n := len(p)
	if n < minForwardLen || n%4 != 0 {
		return false, false
	}
	if binary.LittleEndian.Uint64(p) != 0 {
		return n >= minEncryptedForwardLen, n >= minEncryptedForwardLen
	}
	msgLen := int64(int32(binary.LittleEndian.Uint32(p[16:])))
	if msgLen < 20 || msgLen > int64(n)-20 {
		return false, false
	}
	switch binary.LittleEndian.Uint32(p[20:]) {
	case ctorReqPQ, ctorReqPQMulti, ctorReqDHParams, ctorSetClientDHParams:
		return true, false
	}
	return false, false
}

// AppendHeader appends the header of a proxy→client packet of n payload
// bytes followed by padding bytes of padding, and returns the extended
// slice. The caller appends (or writes separately, e.g. as a second iovec)
// the payload and then the padding itself, so the payload is never copied
// here. Formats (protocol.md §3.1–3.3):
//
//   - Abridged: n/4 in one byte when n ≤ 504, else 0x7f and n/4 as 3 bytes
//     LE; n must be a multiple of 4 below 2^26 and padding must be 0.
//   - Intermediate: n as 4 bytes LE; n must be a multiple of 4 and padding 0.
//   - Padded: n+padding as 4 bytes LE (the official adds 0–3 random bytes,
//     §3.3); n is not required to be aligned.
//
// The length word must not reach bit 30 (a client would take bit 31 for a
// quick ack). AppendHeader panics on arguments violating these rules: they
// are programming errors, since the caller chooses n and padding.
func AppendHeader(dst []byte, kind Kind, n int, padding int) []byte {
	if n < 0 || padding < 0 {
		panic("transport: negative length")
	}
	switch kind {
	case Abridged, Intermediate:
		if padding != 0 {
			panic("transport: padding on an unpadded framing")
		}
		if n%4 != 0 {
			panic("transport: payload length not a multiple of 4")
		}
	case Padded:
	default:
		panic("transport: invalid framing kind")
	}
	total := n + padding
	if total >= reservedBit {
		panic("transport: packet too long")
	}
	if kind == Abridged {
		words := total / 4
		if words >= 1<<24 {
			panic("transport: packet too long for abridged")
		}
		if words < abridgedLong {
			return append(dst, byte(words))
		}
		return append(dst, abridgedLong, byte(words), byte(words>>8), byte(words>>16))
	}
	return binary.LittleEndian.AppendUint32(dst, uint32(total))
}

// AppendQuickAck appends the quick-ack token of an RPC_SIMPLE_ACK (§6.9) as
// sent to a client of the given kind, with no length header (§3.1–3.3):
//
//   - Abridged: the 4 token bytes in reversed order (token as big-endian).
//   - Intermediate and Padded: the token as 4 bytes LE. For padded clients
//     this is always the raw form, as §12 recommends, never the official's
//     alternative of two framed packets.
//
// Bit 31 of the token is set (the middle proxy sets it already, §3.2); it
// is what tells the client that these 4 bytes are a quick ack rather than a
// packet header — in the abridged form it lands in the first byte as 0x80.
// AppendQuickAck panics on an invalid kind.
func AppendQuickAck(dst []byte, kind Kind, token uint32) []byte {
	token |= quickAckBit
	switch kind {
	case Abridged:
		return binary.BigEndian.AppendUint32(dst, token)
	case Intermediate, Padded:
		return binary.LittleEndian.AppendUint32(dst, token)
	}
	panic("transport: invalid framing kind")
}
