package rpc

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzFrameReader feeds the reader arbitrary bytes, which must not make it
// panic, and a stream of frames built by AppendFrame from the same bytes,
// with fillers and a switch to CRC-32C, which it must take apart into the
// original bodies however the stream is cut.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{}, uint64(0), uint8(0))
	f.Add(makeStream(f, 5, 2).data, uint64(1), uint8(2))
	f.Add(bytes.Repeat([]byte{4, 0, 0, 0}, 9), uint64(7), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, crcFrom uint8) {
		rng := rand.New(rand.NewPCG(seed, seed>>32))

		// Arbitrary input in random chunks.
		var r FrameReader
	feed:
		for in := data; len(in) > 0; {
			k := rng.IntN(len(in)) + 1
			chunk := in[:k]
			in = in[k:]
			for {
				body, rest, err := r.Next(chunk)
				if err != nil {
					break feed
				}
				if body == nil {
					break
				}
				if len(body) < 4 || len(body)%4 != 0 {
					t.Fatalf("body of %d bytes", len(body))
				}
				chunk = rest
			}
		}

		// Frames made of data: body i is the next 4..64 bytes, in words.
		var stream []byte
		var bodies [][]byte
		for i, rest := 0, data; len(rest) > 0; i++ {
			n := min(len(rest), 4*(1+rng.IntN(16)))
			body := make([]byte, (n+3)&^3)
			copy(body, rest[:n])
			rest = rest[n:]
			bodies = append(bodies, body)
			stream = AppendFrame(stream, int32(i)+SeqNonce, body, i >= int(crcFrom))
			for range rng.IntN(4) {
				stream = append(stream, 4, 0, 0, 0)
			}
		}
		var chunks [][]byte
		for in := stream; len(in) > 0; {
			k := rng.IntN(len(in)) + 1
			chunks = append(chunks, in[:k])
			in = in[k:]
		}
		got, err := read(chunks, int(crcFrom))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(bodies) {
			t.Fatalf("%d bodies, want %d", len(got), len(bodies))
		}
		for i := range got {
			if !bytes.Equal(got[i], bodies[i]) {
				t.Fatalf("body %d = %x, want %x", i, got[i], bodies[i])
			}
		}
	})
}
