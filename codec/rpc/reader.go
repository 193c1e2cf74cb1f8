package rpc

import (
	"errors"
	"fmt"
	"slices"
)

var (
	// ErrFrameLength reports a length word that is not a frame length.
	ErrFrameLength = errors.New("rpc: bad frame length")
	// ErrChecksum reports a frame whose checksum does not match.
	ErrChecksum = errors.New("rpc: frame checksum mismatch")
	// ErrSequence reports a frame out of sequence.
	ErrSequence = errors.New("rpc: frame out of sequence")
)

// FrameReader takes one direction of an RPC connection apart into the
// bodies of its frames. It skips filler words, checks each frame's length,
// checksum and sequence number (−2, −1, 0, 1, …) and fails for good on the
// first error, as the peer's stream can no longer be trusted.
//
// A frame that lies whole in the input is returned without copying; one
// that arrives in pieces is gathered, with one copy, into a buffer the
// reader keeps for the next such frame. The zero value is ready to use
// and expects the nonce frame first. It is not safe for concurrent use.
type FrameReader struct {
	// MaxLen is the longest frame accepted, header and checksum
	// included; 0 means MaxFrameLen.
	MaxLen int

	part   []byte // an incomplete frame, or a finished one returned last
	want   int    // length of the frame in part, once its length word is in
	held   bool   // part holds the frame returned by the last call
	frames int32  // frames accepted so far
	crc32c bool
	err    error
}

// UseCRC32C switches the reader to CRC-32C for all frames not returned
// yet: call it after the handshake answer if that agreed on CRC-32C.
func (r *FrameReader) UseCRC32C() { r.crc32c = true }

// Next consumes bytes from the front of buf, plaintext just received, up to
// the end of the next frame, and returns that frame's body (type first,
// checksum stripped) and the bytes after it. A nil body means that all of
// buf was consumed without completing a frame. Call it until then:
//
//	for {
//		body, buf, err = r.Next(buf)
//		if err != nil { ... }
//		if body == nil { break }
//		handle(body)
//	}
//
// body is valid until the next call. It is a sub-slice of buf unless the
// frame began in an earlier call.
func (r *FrameReader) Next(buf []byte) (body, rest []byte, err error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.held {
		r.part, r.held = r.part[:0], false
	}
	for {
		if len(r.part) == 0 && len(buf) >= 4 {
			n, err := r.frameLen(buf)
			if err != nil {
				return r.fail(err)
			}
			if n == fillerLen {
				buf = buf[fillerLen:]
				continue
			}
			if len(buf) >= n {
				if body, err = r.accept(buf[:n]); err != nil {
					return r.fail(err)
				}
				return body, buf[n:], nil
			}
		}

		// The frame, or its length word, is not all in buf: gather it.
		if len(r.part) < 4 {
			k := min(4-len(r.part), len(buf))
			r.part = append(r.part, buf[:k]...)
			buf = buf[k:]
			if len(r.part) < 4 {
				return nil, nil, nil
			}
			n, err := r.frameLen(r.part)
			if err != nil {
				return r.fail(err)
			}
			if n == fillerLen {
				r.part = r.part[:0]
				continue
			}
			r.want = n
			r.part = slices.Grow(r.part, n-len(r.part))
		}
		k := min(r.want-len(r.part), len(buf))
		r.part = append(r.part, buf[:k]...)
		buf = buf[k:]
		if len(r.part) < r.want {
			return nil, nil, nil
		}
		r.held = true
		if body, err = r.accept(r.part); err != nil {
			return r.fail(err)
		}
		return body, buf, nil
	}
}

// frameLen returns the length in the word at b, which is a frame length
// or fillerLen, or an error. The rules are the official client's.
func (r *FrameReader) frameLen(b []byte) (int, error) {
	n := int32(le.Uint32(b))
	limit := r.MaxLen
	if limit <= 0 {
		limit = MaxFrameLen
	}
	if n == fillerLen {
		return fillerLen, nil
	}
	if n < MinFrameLen || n%4 != 0 || int64(n) > int64(limit) {
		return 0, fmt.Errorf("%w: %d", ErrFrameLength, n)
	}
	return int(n), nil
}

// accept checks a whole frame and returns its body.
func (r *FrameReader) accept(frame []byte) ([]byte, error) {
	n := len(frame)
	if got, want := checksum(frame[:n-4], r.crc32c), le.Uint32(frame[n-4:]); got != want {
		return nil, fmt.Errorf("%w: computed %#08x, frame has %#08x", ErrChecksum, got, want)
	}
	seq, want := int32(le.Uint32(frame[4:])), r.frames+SeqNonce
	if seq != want {
		return nil, fmt.Errorf("%w: %d, want %d", ErrSequence, seq, want)
	}
	r.frames++
	return frame[8 : n-4], nil
}

func (r *FrameReader) fail(err error) ([]byte, []byte, error) {
	r.err = err
	return nil, nil, err
}
