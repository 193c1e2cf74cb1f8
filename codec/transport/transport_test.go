package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/proto/codec"

	"github.com/mtproxy-go/mtproxy/codec/obfuscated2"
)

var kinds = []Kind{Abridged, Intermediate, Padded}

// gotdCodec is the independent client-side implementation of kind.
func gotdCodec(k Kind) codec.Codec {
	switch k {
	case Abridged:
		return codec.Abridged{}
	case Intermediate:
		return codec.Intermediate{}
	case Padded:
		return codec.PaddedIntermediate{}
	}
	panic("bad kind")
}

type got struct {
	payload []byte
	quick   bool
	length  int
}

// feed runs stream through a fresh Reader in the given chunks and returns
// the packets (copied), the error and the bytes still buffered.
func feed(t testing.TB, k Kind, chunks [][]byte) ([]got, error, int) {
	t.Helper()
	r := Reader{Kind: k}
	var out []got
	for _, c := range chunks {
		for {
			pkt, rest, err := r.Next(c)
			if err != nil {
				return out, err, r.Buffered()
			}
			if pkt.OK() {
				out = append(out, got{bytes.Clone(pkt.Payload), pkt.QuickAck, pkt.Length})
			} else if rest != nil {
				t.Fatalf("no packet but rest of %d bytes", len(rest))
			}
			if len(rest) == 0 {
				break
			}
			c = rest
		}
	}
	return out, nil, r.Buffered()
}

// chunkings splits stream in the ways every test uses: whole, one byte at a
// time, and random splits.
func chunkings(stream []byte, seed uint64) map[string][][]byte {
	m := map[string][][]byte{"whole": {stream}}
	one := make([][]byte, len(stream))
	for i := range stream {
		one[i] = stream[i : i+1]
	}
	m["bytewise"] = one
	for s := range 4 {
		m[fmt.Sprintf("random%d", s)] = randomSplit(stream, rand.New(rand.NewPCG(seed, uint64(s))))
	}
	return m
}

func randomSplit(stream []byte, rng *rand.Rand) [][]byte {
	var out [][]byte
	for len(stream) > 0 {
		var n int
		switch rng.IntN(3) {
		case 0:
			n = 1 + rng.IntN(8)
		case 1:
			n = 1 + rng.IntN(200)
		default:
			n = 1 + rng.IntN(40000)
		}
		n = min(n, len(stream))
		out = append(out, stream[:n])
		stream = stream[n:]
	}
	return out
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var testSizes = []int{8, 12, 40, 500, 504, 508, 512, 1000, 16384, 70000, MaxLen - 4, MaxLen}

// TestGotdEncodeReaderDecode: packets written by gotd's client codecs are
// parsed by Reader under every chunking.
func TestGotdEncodeReaderDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			var stream bytes.Buffer
			var want [][]byte
			for _, n := range testSizes {
				p := randBytes(rng, n)
				want = append(want, p)
				if err := gotdCodec(k).Write(&stream, &bin.Buffer{Buf: bytes.Clone(p)}); err != nil {
					t.Fatal(err)
				}
			}
			for name, chunks := range chunkings(stream.Bytes(), 7) {
				pkts, err, buffered := feed(t, k, chunks)
				if err != nil || buffered != 0 {
					t.Fatalf("%s: err %v, %d bytes buffered", name, err, buffered)
				}
				if len(pkts) != len(want) {
					t.Fatalf("%s: %d packets, want %d", name, len(pkts), len(want))
				}
				for i, p := range pkts {
					if !bytes.Equal(p.payload, want[i]) || p.quick {
						t.Fatalf("%s: packet %d (%d bytes) differs", name, i, len(want[i]))
					}
					if k != Padded && p.length != len(want[i]) {
						t.Fatalf("%s: packet %d length %d", name, i, p.length)
					}
					if k == Padded && (p.length < len(want[i]) || p.length > len(want[i])+3) {
						t.Fatalf("%s: padded packet %d length %d for %d", name, i, p.length, len(want[i]))
					}
				}
			}
		})
	}
}

// TestAppendHeaderGotdDecode: packets framed with AppendHeader are read back
// by gotd's client codecs.
func TestAppendHeaderGotdDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			var stream []byte
			var want [][]byte
			for i, n := range testSizes {
				p := randBytes(rng, n)
				pad := 0
				if k == Padded {
					pad = i % 4
				}
				want = append(want, p)
				stream = AppendHeader(stream, k, n, pad)
				stream = append(stream, p...)
				stream = append(stream, randBytes(rng, pad)...)
			}
			r := bytes.NewReader(stream)
			for i, p := range want {
				var b bin.Buffer
				if err := gotdCodec(k).Read(r, &b); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(b.Buf, p) {
					t.Fatalf("packet %d (%d bytes): gotd read %d bytes, differs", i, len(p), len(b.Buf))
				}
			}
			if r.Len() != 0 {
				t.Fatalf("%d bytes left", r.Len())
			}
		})
	}
}

func TestAbridgedHeaderVectors(t *testing.T) {
	// protocol.md §11.4.
	for _, tc := range []struct {
		n   int
		hex string
	}{{40, "0a"}, {1000, "7ffa0000"}, {4, "01"}, {504, "7e"}, {508, "7f7f0000"}, {MaxLen, "7f00fc03"}} {
		if got := hex.EncodeToString(AppendHeader(nil, Abridged, tc.n, 0)); got != tc.hex {
			t.Errorf("abridged header for %d = %s, want %s", tc.n, got, tc.hex)
		}
		h, _ := hex.DecodeString(tc.hex)
		pkts, err, _ := feed(t, Abridged, [][]byte{h, make([]byte, tc.n)})
		if err != nil || len(pkts) != 1 || len(pkts[0].payload) != tc.n {
			t.Errorf("reading %s: %d packets, %v", tc.hex, len(pkts), err)
		}
	}
	if got := hex.EncodeToString(AppendHeader([]byte{1}, Intermediate, 1000, 0)); got != "01e8030000" {
		t.Errorf("intermediate header = %s", got)
	}
	if got := hex.EncodeToString(AppendHeader(nil, Padded, 1000, 3)); got != "eb030000" {
		t.Errorf("padded header = %s", got)
	}
}

func TestQuickAckRequest(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, 1000)
	for _, tc := range []struct {
		k     Kind
		hdr   string
		quick bool
		n     int
	}{
		{Abridged, "0a", false, 40},
		{Abridged, "8a", true, 40},
		{Abridged, "fe", true, 504},
		{Abridged, "7ffa0000", false, 1000},
		{Abridged, "fffa0000", true, 1000},
		{Intermediate, "28000000", false, 40},
		{Intermediate, "28000080", true, 40},
		{Padded, "2b000080", true, 40},
		{Padded, "2b000000", false, 40},
	} {
		h, _ := hex.DecodeString(tc.hdr)
		stream := append(h, payload[:tc.n+int(h[0]&3)*boolInt(tc.k == Padded)]...)
		for name, chunks := range chunkings(stream, 9) {
			pkts, err, _ := feed(t, tc.k, chunks)
			if err != nil || len(pkts) != 1 {
				t.Fatalf("%v %s %s: %d packets, %v", tc.k, tc.hdr, name, len(pkts), err)
			}
			if pkts[0].quick != tc.quick || len(pkts[0].payload) != tc.n {
				t.Fatalf("%v %s %s: quick %v len %d", tc.k, tc.hdr, name, pkts[0].quick, len(pkts[0].payload))
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAppendQuickAck(t *testing.T) {
	for _, tc := range []struct {
		k     Kind
		token uint32
		hex   string
	}{
		{Abridged, 0x8abcdef0, "8abcdef0"},
		{Intermediate, 0x8abcdef0, "f0debc8a"},
		{Padded, 0x8abcdef0, "f0debc8a"},
		// Bit 31 is always set.
		{Abridged, 0x0abcdef0, "8abcdef0"},
		{Intermediate, 0x0abcdef0, "f0debc8a"},
		{Padded, 0x00000001, "01000080"},
	} {
		if got := hex.EncodeToString(AppendQuickAck([]byte{}, tc.k, tc.token)); got != tc.hex {
			t.Errorf("%v %#x: %s, want %s", tc.k, tc.token, got, tc.hex)
		}
	}
	if got := AppendQuickAck([]byte{9}, Intermediate, 0); !bytes.Equal(got, []byte{9, 0, 0, 0, 0x80}) {
		t.Errorf("append keeps dst: %x", got)
	}
}

func TestRejections(t *testing.T) {
	for _, tc := range []struct {
		k   Kind
		hdr string
		err error
	}{
		{Abridged, "00", ErrZeroLength},
		{Abridged, "80", ErrZeroLength},
		{Abridged, "7f000000", ErrOverlong},
		{Abridged, "7f7e0000", ErrOverlong},
		{Abridged, "ff010000", ErrOverlong},
		{Abridged, "7f01fc03", ErrTooLong}, // 0x3fc01 words = MaxLen+4
		{Abridged, "7fffffff", ErrTooLong},
		{Intermediate, "00000000", ErrZeroLength},
		{Intermediate, "00000080", ErrZeroLength},
		{Intermediate, "28000040", ErrReservedBits},
		{Intermediate, "280000c0", ErrReservedBits},
		{Padded, "00000040", ErrReservedBits},
		{Intermediate, "04f00f00", ErrTooLong},
		{Padded, "01f00f00", ErrTooLong},
		{Intermediate, "2a000000", ErrUnaligned},
		{Intermediate, "01000080", ErrUnaligned},
		{Intermediate, "ffffff3f", ErrTooLong},
	} {
		h, _ := hex.DecodeString(tc.hdr)
		stream := append(h, make([]byte, 64)...)
		for name, chunks := range chunkings(stream, 11) {
			_, err, _ := feed(t, tc.k, chunks)
			if err != tc.err {
				t.Errorf("%v %s %s: %v, want %v", tc.k, tc.hdr, name, err, tc.err)
			}
		}
		// Sticky, even after a valid packet was delivered first.
		r := Reader{Kind: tc.k}
		valid := AppendHeader(nil, tc.k, 8, 0)
		valid = append(valid, make([]byte, 8)...)
		pkt, rest, err := r.Next(append(valid, h...))
		if err != nil || !pkt.OK() || len(rest) != len(h) {
			t.Fatalf("valid prefix: ok=%v %v rest %d", pkt.OK(), err, len(rest))
		}
		for range 3 {
			if pkt, rest, err = r.Next(rest); err != tc.err || pkt.OK() || rest != nil {
				t.Fatalf("%v %s: not sticky: %v", tc.k, tc.hdr, err)
			}
			rest = valid
		}
		if r.Err() != tc.err {
			t.Fatal("Err()")
		}
	}
	// Largest accepted values.
	for _, tc := range []struct {
		k   Kind
		hdr string
	}{{Abridged, "7f00fc03"}, {Intermediate, "00f00f80"}, {Padded, "00f00f00"}, {Padded, "01000000"}, {Abridged, "7f7f0000"}} {
		h, _ := hex.DecodeString(tc.hdr)
		r := Reader{Kind: tc.k}
		if _, _, err := r.Next(h); err != nil {
			t.Errorf("%v %s rejected: %v", tc.k, tc.hdr, err)
		}
	}
	var r Reader
	if _, _, err := r.Next([]byte{1, 0, 0, 0}); err != ErrKind {
		t.Errorf("zero Kind: %v", err)
	}
}

func TestPaddedTruncation(t *testing.T) {
	body := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	for n := 1; n <= len(body); n++ {
		stream := AppendHeader(nil, Padded, n, 0)
		stream = append(stream, body[:n]...)
		for name, chunks := range chunkings(stream, uint64(n)) {
			pkts, err, _ := feed(t, Padded, chunks)
			if err != nil || len(pkts) != 1 {
				t.Fatalf("len %d %s: %d packets, %v", n, name, len(pkts), err)
			}
			if !bytes.Equal(pkts[0].payload, body[:n&^3]) || pkts[0].length != n {
				t.Fatalf("len %d %s: payload %x length %d", n, name, pkts[0].payload, pkts[0].length)
			}
		}
	}
	// A 3-byte padded packet is a packet with an empty payload.
	r := Reader{Kind: Padded}
	pkt, rest, err := r.Next([]byte{3, 0, 0, 0, 9, 9, 9, 0xff})
	if err != nil || !pkt.OK() || len(pkt.Payload) != 0 || len(rest) != 1 {
		t.Fatalf("%+v %x %v", pkt, rest, err)
	}
}

func TestZeroCopy(t *testing.T) {
	for _, k := range kinds {
		payload := bytes.Repeat([]byte{7}, 600)
		stream := AppendHeader(nil, k, len(payload), 0)
		hl := len(stream)
		stream = append(stream, payload...)
		stream = append(stream, stream...)

		r := Reader{Kind: k}
		pkt, rest, err := r.Next(stream)
		if err != nil || &pkt.Payload[0] != &stream[hl] {
			t.Fatalf("%v: whole packet not aliased", k)
		}
		// Header split across calls, body whole: still aliased.
		if pkt, rest, err = r.Next(rest[:1]); pkt.OK() || rest != nil || err != nil {
			t.Fatal("partial header")
		}
		tail := stream[len(stream)/2+1:]
		if pkt, rest, err = r.Next(tail); err != nil || &pkt.Payload[0] != &tail[hl-1] || len(rest) != 0 {
			t.Fatalf("%v: body after split header not aliased", k)
		}
		if r.buf != nil {
			t.Fatalf("%v: assembly buffer allocated without need", k)
		}
	}
}

func TestAssemblyBufferBounded(t *testing.T) {
	r := Reader{Kind: Intermediate}
	stream := AppendHeader(nil, Intermediate, MaxLen, 0)
	stream = append(stream, make([]byte, MaxLen)...)
	for len(stream) > 0 {
		n := min(len(stream), 1000)
		pkt, rest, err := r.Next(stream[:n])
		if err != nil || len(rest) != 0 || (pkt.OK() != (len(stream) == n)) {
			t.Fatal(err)
		}
		stream = stream[n:]
	}
	if cap(r.buf) > MaxLen {
		t.Fatalf("assembly buffer grew to %d", cap(r.buf))
	}
	// A small packet announced but not sent costs at most minAssembly.
	r2 := Reader{Kind: Intermediate}
	r2.Next([]byte{0, 0xf0, 0x0f, 0, 1})
	if cap(r2.buf) > minAssembly {
		t.Fatalf("partial MaxLen packet reserved %d bytes", cap(r2.buf))
	}
}

func TestReset(t *testing.T) {
	r := Reader{Kind: Intermediate}
	r.Next([]byte{0, 0, 0, 0})
	if r.Err() == nil {
		t.Fatal("expected error")
	}
	r.Reset()
	pkt, _, err := r.Next([]byte{4, 0, 0, 0, 1, 2, 3, 4})
	if err != nil || !pkt.OK() || r.Kind != Intermediate {
		t.Fatal(err)
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, k := range kinds {
		for _, n := range []int{64, 16384} {
			var stream []byte
			for range 8 {
				stream = AppendHeader(stream, k, n, 0)
				stream = append(stream, make([]byte, n)...)
			}
			r := Reader{Kind: k}
			run := func(chunk int) {
				for b := stream; len(b) > 0; {
					c := b[:min(chunk, len(b))]
					b = b[len(c):]
					for len(c) > 0 {
						var err error
						if _, c, err = r.Next(c); err != nil {
							panic(err)
						}
					}
				}
			}
			for _, chunk := range []int{len(stream), 1460, 3} {
				run(chunk) // warm up the assembly buffer
				if a := testing.AllocsPerRun(20, func() { run(chunk) }); a != 0 {
					t.Errorf("%v n=%d chunk=%d: %v allocs", k, n, chunk, a)
				}
			}
		}
	}
	dst := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() {
		d := AppendHeader(dst[:0], Padded, 100, 3)
		d = AppendHeader(d, Abridged, 1000, 0)
		_ = AppendQuickAck(d, Abridged, 5)
		LooksLikeMTProto(dst[:0])
	}); a != 0 {
		t.Errorf("writers: %v allocs", a)
	}
}

func TestKind(t *testing.T) {
	for _, k := range kinds {
		got, ok := KindOf(k.Tag())
		if !ok || got != k || !k.Valid() {
			t.Errorf("%v round trip", k)
		}
	}
	if k, _ := KindOf(obfuscated2.TagPadded); k != Padded {
		t.Error("padded tag")
	}
	if _, ok := KindOf(0x12345678); ok {
		t.Error("bad tag accepted")
	}
	if Kind(0).Valid() || Kind(4).Valid() || Kind(0).Tag() != 0 {
		t.Error("invalid kinds")
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	for _, tc := range []struct {
		k      Kind
		n, pad int
	}{
		{Abridged, 6, 0}, {Intermediate, 6, 0}, {Abridged, 8, 1}, {Intermediate, 8, 2},
		{Padded, -1, 0}, {Padded, 4, -1}, {Kind(0), 4, 0}, {Padded, 1 << 30, 0},
		{Abridged, 1 << 30, 0}, {Abridged, 1 << 26, 0}, {Padded, 1<<30 - 4, 4},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v n=%d pad=%d: no panic", tc.k, tc.n, tc.pad)
				}
			}()
			AppendHeader(nil, tc.k, tc.n, tc.pad)
		}()
	}
}

// unencrypted builds an auth_key_id = 0 packet of n bytes.
func unencrypted(n int, msgLen int32, ctor uint32) []byte {
	p := make([]byte, n)
	for i := 8; i < 16 && i < n; i++ {
		p[i] = 0x11 // msg_id
	}
	if n >= 24 {
		p[16], p[17], p[18], p[19] = byte(msgLen), byte(msgLen>>8), byte(msgLen>>16), byte(msgLen>>24)
		p[20], p[21], p[22], p[23] = byte(ctor), byte(ctor>>8), byte(ctor>>16), byte(ctor>>24)
	}
	return p
}

func encrypted(n int) []byte {
	p := make([]byte, n)
	p[7] = 1 // non-zero auth_key_id
	return p
}

func TestLooksLikeMTProto(t *testing.T) {
	for i, tc := range []struct {
		p                  []byte
		forward, encrypted bool
	}{
		{nil, false, false},
		{encrypted(24), false, false},
		{encrypted(28), false, false},
		{encrypted(52), false, false},
		{encrypted(56), true, true},
		{encrypted(57), false, false},
		{encrypted(58), false, false},
		{encrypted(60), true, true},
		{encrypted(1000), true, true},
		{unencrypted(24, 20, 0x60469778), false, false}, // too short
		{unencrypted(40, 20, 0x60469778), true, false},  // req_pq, msg len = n-20
		{unencrypted(40, 19, 0x60469778), false, false}, // msg len < 20
		{unencrypted(40, 21, 0x60469778), false, false}, // msg len > n-20
		{unencrypted(40, -1, 0x60469778), false, false}, // negative
		{unencrypted(41, 20, 0x60469778), false, false}, // unaligned
		{unencrypted(52, 20, 0xbe7e8ef1), true, false},  // req_pq_multi, len < n-20
		{unencrypted(340, 320, 0xd712e4be), true, false},
		{unencrypted(376, 356, 0xf5045f1f), true, false},
		{unencrypted(40, 20, 0x12345678), false, false}, // other constructor
		{unencrypted(28, 8, 0x60469778), false, false},
		{unencrypted(28, 20, 0x60469778), false, false}, // 20 > 28-20
	} {
		fw, enc := LooksLikeMTProto(tc.p)
		if fw != tc.forward || (fw && enc != tc.encrypted) {
			t.Errorf("case %d (%d bytes): got %v,%v want %v,%v", i, len(tc.p), fw, enc, tc.forward, tc.encrypted)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(uint8(0), uint64(1), []byte{0x0a, 1, 2, 3})
	f.Add(uint8(1), uint64(2), []byte{0x28, 0, 0, 0x80, 5})
	f.Add(uint8(2), uint64(3), []byte{0x2b, 0, 0, 0, 9, 9})
	f.Add(uint8(0), uint64(4), []byte{0x7f, 0x7f, 0, 0, 0xff, 1, 0, 0})
	f.Fuzz(func(t *testing.T, kb uint8, seed uint64, data []byte) {
		k := kinds[int(kb)%len(kinds)]
		rng := rand.New(rand.NewPCG(seed, seed>>7))

		// 1. Arbitrary bytes: no panic, and the outcome does not depend on
		// chunking.
		want, wantErr, wantBuf := feed(t, k, [][]byte{data})
		for _, p := range want {
			if p.length <= 0 || p.length > MaxLen || len(p.payload) > p.length ||
				(k != Padded && (p.length%4 != 0 || len(p.payload) != p.length)) ||
				(k == Padded && len(p.payload) != p.length&^3) {
				t.Fatalf("bad packet length %d payload %d", p.length, len(p.payload))
			}
		}
		check := func(stream []byte, want []got, wantErr error, wantBuf int) {
			t.Helper()
			for _, chunks := range [][][]byte{randomSplit(stream, rng), bytewise(stream)} {
				pkts, err, buf := feed(t, k, chunks)
				if !errors.Is(err, wantErr) || buf != wantBuf || len(pkts) != len(want) {
					t.Fatalf("rechunked: %d pkts err %v buf %d; want %d pkts err %v buf %d",
						len(pkts), err, buf, len(want), wantErr, wantBuf)
				}
				for i := range pkts {
					if !bytes.Equal(pkts[i].payload, want[i].payload) || pkts[i].quick != want[i].quick ||
						pkts[i].length != want[i].length {
						t.Fatalf("packet %d differs after rechunking", i)
					}
				}
			}
		}
		check(data, want, wantErr, wantBuf)

		// 2. A valid stream built from data: every packet round-trips.
		var stream []byte
		var built []got
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(rest[0])*5+1)
			p := rest[:n]
			rest = rest[n:]
			pad, quick := 0, n%3 == 0
			if k != Padded {
				p = p[:len(p)&^3]
				if len(p) == 0 {
					continue
				}
			} else {
				pad = int(seed>>uint(n%60)) & 3
			}
			h := len(stream)
			stream = AppendHeader(stream, k, len(p), pad)
			if quick {
				if k == Abridged {
					stream[h] |= 0x80
				} else {
					stream[h+3] |= 0x80
				}
			}
			stream = append(stream, p...)
			stream = append(stream, make([]byte, pad)...)
			full := append(bytes.Clone(p), make([]byte, pad)...)
			built = append(built, got{full[:(len(p)+pad)&^3], quick, len(p) + pad})
		}
		got, err, buf := feed(t, k, [][]byte{stream})
		if err != nil || buf != 0 || len(got) != len(built) {
			t.Fatalf("valid stream: %d pkts, err %v, buf %d; want %d", len(got), err, buf, len(built))
		}
		check(stream, built, nil, 0)
	})
}

func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func BenchmarkReader(b *testing.B) {
	for _, k := range kinds {
		for _, n := range []int{64, 16 << 10} {
			var stream []byte
			for len(stream) < 1<<20 {
				stream = AppendHeader(stream, k, n, 0)
				stream = append(stream, make([]byte, n)...)
			}
			for _, chunk := range []int{len(stream), 16 << 10, 1460} {
				name := fmt.Sprintf("%v/%dB/chunk=%d", k, n, chunk)
				if chunk == len(stream) {
					name = fmt.Sprintf("%v/%dB/whole", k, n)
				}
				b.Run(name, func(b *testing.B) {
					r := Reader{Kind: k}
					b.SetBytes(int64(len(stream)))
					b.ReportAllocs()
					pkts := 0
					for b.Loop() {
						for s := stream; len(s) > 0; {
							c := s[:min(chunk, len(s))]
							s = s[len(c):]
							for len(c) > 0 {
								pkt, rest, err := r.Next(c)
								if err != nil {
									b.Fatal(err)
								}
								if pkt.OK() {
									pkts++
								}
								c = rest
							}
						}
					}
					_ = pkts
				})
			}
		}
	}
}
