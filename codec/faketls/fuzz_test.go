package faketls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func FuzzParseHello(f *testing.F) {
	f.Add(unhex(f, vectorHello))
	f.Add(signedHello(f, 1, "example.com", 517, testSecret, 1))
	f.Add(signedHello(f, 2, "", 1800, testSecret, 1))
	f.Add(fragment(signedHello(f, 3, "example.com", 700, testSecret, 1), 3))
	f.Add(helloWith(make([]byte, 7), []uint16{0x1301}, nil))
	other := [16]byte{0xee}
	v := NewVerifier([][16]byte{other, testSecret})
	f.Fuzz(func(t *testing.T, data []byte) {
		// HelloLength only ever says what the prefix allows.
		n, err := HelloLength(data)
		if err == nil && n <= len(data) {
			if m, err := HelloLength(data[:n]); m != n || err != nil {
				t.Fatalf("HelloLength of its own hello: %d, %v; want %d", m, err, n)
			}
			if _, err := Reassemble(nil, data[:n]); err != nil {
				t.Fatalf("Reassemble refuses what HelloLength delimited: %v", err)
			}
		}

		h, err := ParseHello(data)
		if err != nil {
			if !errors.Is(err, ErrBadHello) {
				t.Fatalf("error %v does not match ErrBadHello", err)
			}
			return
		}
		// An accepted hello, signed by a client, verifies to the secret and
		// timestamp used, and parses to the same fields.
		signed := bytes.Clone(data)
		sign(signed, testSecret, 0x12345678)
		idx, ts, err := v.Verify(signed)
		if err != nil || idx != 1 || ts != 0x12345678 {
			t.Fatalf("signed hello verifies as %d, %#x, %v", idx, ts, err)
		}
		h2, err := ParseHello(signed)
		if err != nil || h2.CipherSuite != h.CipherSuite || !bytes.Equal(h2.SessionID(), h.SessionID()) ||
			!bytes.Equal(h2.ServerName, h.ServerName) || !bytes.Equal(h2.Random[:], signed[11:43]) {
			t.Fatalf("signed hello parses differently: %v", err)
		}
		if _, _, err := NewVerifier([][16]byte{other}).Verify(signed); err != ErrDigest {
			t.Fatalf("another secret: %v", err)
		}
		reply, err := AppendServerHello(nil, &h2, testSecret, Shape{AppDataLen: 20}, detRand(0))
		if tls13 := h.CipherSuite >= 0x1301 && h.CipherSuite <= 0x1303; tls13 != (err == nil) {
			t.Fatalf("suite %#04x: %v", h.CipherSuite, err)
		}
		if err == nil && len(reply) != 138+len(h.SessionID())-32+20 {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}

func FuzzRecordReader(f *testing.F) {
	f.Add([]byte("payload"), uint64(0))
	f.Add(bytes.Repeat([]byte{0x17, 0x03, 0x03, 0x00, 0x01}, 5), uint64(1))
	f.Add(clientStream(make([]byte, 100), 7), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rnd := rand.New(rand.NewPCG(seed, 0))
		sizes := []int{rnd.IntN(MaxClientRecord + 1), rnd.IntN(50), 1 + rnd.IntN(3000)}

		// data as payload: framed like a client, fed in random chunks, it
		// comes back unchanged through both Next and Strip.
		stream := clientStream(data, sizes...)
		if got, err := readChunked(stream, rnd); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("framed payload: %v, equal %v", err, bytes.Equal(got, data))
		}
		if got, err := stripChunked(stream, rnd); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Strip of framed payload: %v, equal %v", err, bytes.Equal(got, data))
		}

		// data as a stream: whatever the chunking, the same payload comes
		// out before the same error.
		got1, err1 := readChunked(data, rnd)
		got2, err2 := stripChunked(data, rnd)
		if !bytes.Equal(got1, got2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("chunkings disagree: %d bytes, %v / %d bytes, %v", len(got1), err1, len(got2), err2)
		}
		if err1 != nil && !errors.Is(err1, ErrBadRecord) {
			t.Fatalf("error %v does not match ErrBadRecord", err1)
		}
	})
}

// readChunked feeds stream to a RecordReader's Next in random chunks.
func readChunked(stream []byte, rnd *rand.Rand) ([]byte, error) {
	var r RecordReader
	var out []byte
	for len(stream) > 0 {
		in := stream[:1+rnd.IntN(len(stream))]
		stream = stream[len(in):]
		for len(in) > 0 {
			p, rest, err := r.Next(in)
			if err != nil {
				return out, err
			}
			if len(rest) >= len(in) {
				panic("Next made no progress")
			}
			out = append(out, p...)
			in = rest
		}
	}
	return out, nil
}

// stripChunked feeds a copy of stream to a RecordReader's Strip in random
// chunks.
func stripChunked(stream []byte, rnd *rand.Rand) ([]byte, error) {
	var r RecordReader
	var out []byte
	stream = bytes.Clone(stream)
	for len(stream) > 0 {
		in := stream[:1+rnd.IntN(len(stream))]
		stream = stream[len(in):]
		n, err := r.Strip(in)
		out = append(out, in[:n]...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
