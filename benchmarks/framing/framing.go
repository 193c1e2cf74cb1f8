// Package framing reads and writes the frame headers of the three MTProto
// transports that travel inside obfuscated2 (protocol.md §3): abridged,
// intermediate and padded intermediate.
//
// Only headers are handled; callers read and write frame bodies themselves,
// so a body can go straight between the socket and the caller's buffer.
package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing is a transport framing. Its value is the protocol tag that
// announces it in the obfuscated2 header (protocol.md §2.1).
type Framing uint32

const (
	Abridged     Framing = 0xefefefef
	Intermediate Framing = 0xeeeeeeee
	// Padded is padded intermediate, the framing of dd and ee clients.
	Padded Framing = 0xdddddddd
)

// MaxLen is the largest frame body the official proxy accepts from a client
// (protocol.md §3.4); larger frames are refused in both directions.
const MaxLen = 1044480

// abridgedQuickAck and intermediateQuickAck flag a client's quick-ack
// request in the first header byte and in the length word.
const (
	abridgedQuickAck     = 0x80
	abridgedLong         = 0x7f
	intermediateQuickAck = 1 << 31
)

// Tag returns the protocol tag announcing f.
func (f Framing) Tag() uint32 { return uint32(f) }

func (f Framing) String() string {
	switch f {
	case Abridged:
		return "abridged"
	case Intermediate:
		return "intermediate"
	case Padded:
		return "padded"
	}
	return fmt.Sprintf("Framing(%#x)", uint32(f))
}

// MarshalText and UnmarshalText make framings readable in JSON.
func (f Framing) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

func (f *Framing) UnmarshalText(b []byte) error {
	var err error
	*f, err = Parse(string(b))
	return err
}

// FromTag returns the framing a protocol tag announces.
func FromTag(tag uint32) (Framing, error) {
	switch f := Framing(tag); f {
	case Abridged, Intermediate, Padded:
		return f, nil
	}
	return 0, fmt.Errorf("framing: unknown protocol tag %#x", tag)
}

// Parse returns the framing named by String.
func Parse(name string) (Framing, error) {
	for _, f := range []Framing{Abridged, Intermediate, Padded} {
		if f.String() == name {
			return f, nil
		}
	}
	return 0, fmt.Errorf("framing: unknown framing %q (want abridged, intermediate or padded)", name)
}

// check validates a body length for f.
func (f Framing) check(n int) error {
	if n <= 0 || n > MaxLen {
		return fmt.Errorf("framing: %v frame of %d bytes (want 1..%d)", f, n, MaxLen)
	}
	if f != Padded && n%4 != 0 {
		return fmt.Errorf("framing: %v frame of %d bytes is not a multiple of 4", f, n)
	}
	return nil
}

// AppendHeader appends the header of a frame whose body, padding included,
// is n bytes long. Abridged uses the short form whenever it fits, as the
// official proxy does.
func (f Framing) AppendHeader(dst []byte, n int) ([]byte, error) {
	if err := f.check(n); err != nil {
		return dst, err
	}
	switch f {
	case Abridged:
		words := n / 4
		if words < abridgedLong {
			return append(dst, byte(words)), nil
		}
		return append(dst, abridgedLong, byte(words), byte(words>>8), byte(words>>16)), nil
	case Intermediate, Padded:
		return binary.LittleEndian.AppendUint32(dst, uint32(n)), nil
	}
	return dst, fmt.Errorf("framing: unknown framing %v", f)
}

// HeaderLen returns the size of the header AppendHeader writes, and
// ReadHeader accepts, for a body of n bytes.
func (f Framing) HeaderLen(n int) int {
	if f == Abridged && n/4 < abridgedLong {
		return 1
	}
	return 4
}

// ReadHeader reads one frame header from r and returns the length of the
// body that follows (padding included) and whether the sender asked for a
// quick acknowledgement. Lengths the official proxy refuses are errors:
// zero, over MaxLen, not a multiple of 4 outside padded intermediate, and
// an abridged long header for a length that fits the short one.
func (f Framing) ReadHeader(r io.Reader) (n int, quickAck bool, err error) {
	var b [4]byte
	switch f {
	case Abridged:
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return 0, false, err
		}
		quickAck = b[0]&abridgedQuickAck != 0
		words := int(b[0] &^ abridgedQuickAck)
		if words == abridgedLong {
			if _, err := io.ReadFull(r, b[:3]); err != nil {
				return 0, false, noEOF(err)
			}
			b[3] = 0
			words = int(binary.LittleEndian.Uint32(b[:]))
			if words < abridgedLong {
				return 0, false, fmt.Errorf("framing: overlong abridged header for %d words", words)
			}
		}
		n = 4 * words
	case Intermediate, Padded:
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, false, err
		}
		v := binary.LittleEndian.Uint32(b[:])
		quickAck = v&intermediateQuickAck != 0
		v &^= intermediateQuickAck
		if v > MaxLen {
			return 0, false, fmt.Errorf("framing: %v frame of %d bytes (want 1..%d)", f, v, MaxLen)
		}
		n = int(v)
	default:
		return 0, false, fmt.Errorf("framing: unknown framing %v", f)
	}
	return n, quickAck, f.check(n)
}

// noEOF turns an EOF inside a header into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
