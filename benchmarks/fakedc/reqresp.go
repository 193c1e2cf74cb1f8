package fakedc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
)

// Limits of a Request.
const (
	// RequestHeaderLen is the size of the header that starts every request
	// body; it is also the smallest request.
	RequestHeaderLen = 20
	// MaxPadding is the most padding a padded intermediate frame may carry
	// after its payload (tdlib pads with 0..15 bytes).
	MaxPadding = 15
	// MinReply and MaxReply bound Request.ReplySize. MaxReply leaves room
	// for the 0..3 padding bytes added in padded intermediate.
	MinReply = 8
	MaxReply = framing.MaxLen - 4
	// MaxReplyDelay bounds Request.ReplyDelay.
	MaxReplyDelay = 10 * time.Second
)

// Request is what a client asks of a ReqResp server in each frame. On the
// wire a request payload is, little-endian:
//
//	[0:8]   ID, also the pattern seed of the rest of the payload
//	[8:12]  payload length in bytes, this header included
//	[12:16] ReplySize in bytes
//	[16:20] ReplyDelay in microseconds
//	[20:]   NewPattern(ID) from offset 20 to the end of the payload
//
// In padded intermediate up to MaxPadding bytes of padding may follow the
// payload in the frame body; they are not checked, and neither is the
// padding of replies, since padding is random in real clients and a proxy
// that re-frames may pad on its own.
//
// The server checks every payload byte, waits ReplyDelay, then sends one
// frame whose payload is ID followed by NewPattern(ID) from offset 8,
// ReplySize bytes in all; in padded intermediate 0..3 bytes of padding
// follow, as the official proxy pads. Replies go out in request order, so
// the delays of pipelined requests add up.
type Request struct {
	ID         uint64
	ReplySize  int
	ReplyDelay time.Duration
}

func (q Request) check() error {
	if q.ReplySize < MinReply || q.ReplySize > MaxReply || q.ReplySize%4 != 0 {
		return fmt.Errorf("fakedc: reply size %d (want a multiple of 4 in %d..%d)", q.ReplySize, MinReply, MaxReply)
	}
	if q.ReplyDelay < 0 || q.ReplyDelay > MaxReplyDelay {
		return fmt.Errorf("fakedc: reply delay %v (want 0..%v)", q.ReplyDelay, MaxReplyDelay)
	}
	return nil
}

// AppendRequest appends a request payload of n bytes (at least
// RequestHeaderLen) for q to dst.
func AppendRequest(dst []byte, q Request, n int) ([]byte, error) {
	if err := q.check(); err != nil {
		return dst, err
	}
	if n < RequestHeaderLen || n > framing.MaxLen {
		return dst, fmt.Errorf("fakedc: request of %d bytes (want %d..%d)", n, RequestHeaderLen, framing.MaxLen)
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, q.ID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(q.ReplySize))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(q.ReplyDelay/time.Microsecond))
	dst = append(dst, make([]byte, n-RequestHeaderLen)...)
	fill(q.ID, RequestHeaderLen, dst[start+RequestHeaderLen:])
	return dst, nil
}

// ParseRequest checks a request frame body received in framing f and
// returns its header.
func ParseRequest(body []byte, f framing.Framing) (Request, error) {
	if len(body) < RequestHeaderLen {
		return Request{}, fmt.Errorf("fakedc: request of %d bytes (want at least %d)", len(body), RequestHeaderLen)
	}
	q := Request{
		ID:         binary.LittleEndian.Uint64(body[0:8]),
		ReplySize:  int(binary.LittleEndian.Uint32(body[12:16])),
		ReplyDelay: time.Duration(binary.LittleEndian.Uint32(body[16:20])) * time.Microsecond,
	}
	n := int(binary.LittleEndian.Uint32(body[8:12]))
	if n < RequestHeaderLen || n > len(body) || len(body)-n > maxPadding(f) {
		return q, fmt.Errorf("fakedc: request %#x: payload of %d bytes in a %v frame of %d", q.ID, n, f, len(body))
	}
	if err := q.check(); err != nil {
		return q, err
	}
	if i := mismatch(q.ID, RequestHeaderLen, body[RequestHeaderLen:n]); i >= 0 {
		return q, fmt.Errorf("fakedc: request %#x: pattern mismatch at byte %d of %d", q.ID, RequestHeaderLen+i, n)
	}
	return q, nil
}

// maxPadding is how many bytes may follow a payload in framing f.
func maxPadding(f framing.Framing) int {
	if f == framing.Padded {
		return MaxPadding
	}
	return 0
}

// appendReply appends the reply body for id: size bytes plus pad bytes of
// padding.
func appendReply(dst []byte, id uint64, size, pad int) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, id)
	dst = append(dst, make([]byte, size+pad-8)...)
	fill(id, 8, dst[start+8:])
	return dst
}

// CheckReply checks a reply frame body received in framing f for request
// id, which asked for size bytes.
func CheckReply(body []byte, id uint64, size int, f framing.Framing) error {
	if maxPad := maxPadding(f); len(body) < size || len(body) > size+maxPad {
		return fmt.Errorf("fakedc: reply to %#x: %d bytes, want %d (+%d padding)", id, len(body), size, maxPad)
	}
	if got := binary.LittleEndian.Uint64(body[0:8]); got != id {
		return fmt.Errorf("fakedc: reply to %#x carries id %#x", id, got)
	}
	if i := mismatch(id, 8, body[8:size]); i >= 0 {
		return fmt.Errorf("fakedc: reply to %#x: pattern mismatch at byte %d of %d", id, 8+i, size)
	}
	return nil
}

// serveReqResp answers requests until the peer closes or breaks the rules.
func (s *Server) serveReqResp(c *conn, tag uint32) {
	f, err := framing.FromTag(tag)
	if err != nil {
		s.badRequest(err) // unreachable: the handshake checked the tag
		return
	}
	// The buffers start small and grow with the frames, so an idle
	// connection costs little.
	r := bufio.NewReaderSize(c, 512)
	var in, out []byte
	for {
		n, _, err := f.ReadHeader(r)
		if err == nil {
			in = grow(in, n)
			_, err = io.ReadFull(r, in)
		}
		if err != nil {
			// A peer that goes away, even mid-frame, broke no rule.
			var ne net.Error
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) {
				s.badRequest(err)
			}
			return
		}
		q, err := ParseRequest(in, f)
		if err != nil {
			s.badRequest(err)
			return
		}
		if q.ReplyDelay > 0 {
			t := time.NewTimer(q.ReplyDelay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
		}
		pad := 0
		if f == framing.Padded {
			pad = rand.N(4)
		}
		out, err = f.AppendHeader(out[:0], q.ReplySize+pad)
		if err != nil {
			s.badRequest(err) // unreachable: ParseRequest bounds the size
			return
		}
		out = appendReply(out, q.ID, q.ReplySize, pad)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// grow returns b resized to n bytes, reallocated only when too small.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func (s *Server) badRequest(err error) {
	s.bad.Add(1)
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}
