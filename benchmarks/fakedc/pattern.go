package fakedc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The pattern is the splitmix64 sequence: 8-byte word i is a pure function of
// (seed, i), so any offset can be produced or checked without replaying the
// stream from the start.
const golden = 0x9e3779b97f4a7c15

func word(seed uint64, i int64) uint64 {
	z := seed + uint64(i+1)*golden
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fill writes the pattern bytes for offsets [off, off+len(b)) into b.
func fill(seed uint64, off int64, b []byte) {
	var w [8]byte
	for len(b) > 0 {
		i, skip := off/8, int(off%8)
		if skip == 0 && len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, word(seed, i))
			b = b[8:]
			off += 8
			continue
		}
		binary.LittleEndian.PutUint64(w[:], word(seed, i))
		n := copy(b, w[skip:])
		b = b[n:]
		off += int64(n)
	}
}

// Pattern is an endless deterministic pseudo-random byte stream selected by a
// seed. Source connections send it; receivers check it with a Verifier.
type Pattern struct {
	seed uint64
	off  int64
}

// NewPattern returns the stream for seed, positioned at offset 0.
func NewPattern(seed uint64) *Pattern {
	return &Pattern{seed: seed}
}

// Read fills b with the next len(b) bytes of the stream. It never fails.
func (p *Pattern) Read(b []byte) (int, error) {
	fill(p.seed, p.off, b)
	p.off += int64(len(b))
	return len(b), nil
}

// ReadAt fills b with the stream bytes starting at off, independently of the
// position used by Read.
func (p *Pattern) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("fakedc: negative pattern offset")
	}
	fill(p.seed, off, b)
	return len(b), nil
}

// mismatch returns the index of the first byte of b that differs from the
// pattern for seed at offset off, or -1 if all of b matches.
func mismatch(seed uint64, off int64, b []byte) int {
	var exp [4096]byte
	for n := 0; n < len(b); {
		chunk := b[n:min(len(b), n+len(exp))]
		want := exp[:len(chunk)]
		fill(seed, off+int64(n), want)
		if !bytes.Equal(chunk, want) {
			i := 0
			for chunk[i] == want[i] {
				i++
			}
			return n + i
		}
		n += len(chunk)
	}
	return -1
}

// Verifier is an io.Writer that checks everything written to it against the
// pattern for a seed, starting at offset 0.
type Verifier struct {
	seed uint64
	off  int64
	err  error
}

// NewVerifier returns a Verifier for the stream of seed.
func NewVerifier(seed uint64) *Verifier {
	return &Verifier{seed: seed}
}

// Write consumes b. At the first byte that differs from the pattern it
// returns the number of matching bytes and an error naming the offset; the
// error is sticky.
func (v *Verifier) Write(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if i := mismatch(v.seed, v.off, b); i >= 0 {
		v.off += int64(i)
		var want [1]byte
		fill(v.seed, v.off, want[:])
		v.err = fmt.Errorf("fakedc: pattern mismatch at offset %d: got %#02x, want %#02x", v.off, b[i], want[0])
		return i, v.err
	}
	v.off += int64(len(b))
	return len(b), nil
}

// Verified reports how many bytes matched the pattern so far.
func (v *Verifier) Verified() int64 {
	return v.off
}
