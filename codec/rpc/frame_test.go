package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestChecksumCheckValues(t *testing.T) {
	in := []byte("123456789")
	if got := checksum(in, false); got != 0xcbf43926 {
		t.Errorf("CRC-32 = %#08x, want 0xcbf43926", got)
	}
	if got := checksum(in, true); got != 0xe3069283 {
		t.Errorf("CRC-32C = %#08x, want 0xe3069283", got)
	}
}

func TestStartFinishFrame(t *testing.T) {
	body := AppendPing(nil, 42)
	want := AppendFrame([]byte("xy"), 7, body, true)
	got := []byte("xy")
	start := len(got)
	got = StartFrame(got)
	got = append(got, body[:4]...)
	got = append(got, body[4:]...)
	got = FinishFrame(got, start, 7, true)
	if !bytes.Equal(got, want) {
		t.Errorf("in place %x, AppendFrame %x", got, want)
	}
}

func TestFinishFramePanics(t *testing.T) {
	for _, n := range []int{0, 3, 5} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%d-byte body: no panic", n)
				}
			}()
			AppendFrame(nil, 0, make([]byte, n), false)
		}()
	}
}

func TestPad(t *testing.T) {
	for n := 0; n < 64; n += 4 {
		buf := Pad(make([]byte, n))
		if len(buf)%BlockSize != 0 || len(buf)-n > 12 {
			t.Errorf("Pad(%d bytes) = %d bytes", n, len(buf))
		}
		for i := n; i < len(buf); i += 4 {
			if !bytes.Equal(buf[i:i+4], []byte{4, 0, 0, 0}) {
				t.Errorf("Pad(%d bytes): filler %x", n, buf[i:i+4])
			}
		}
	}
}

// stream is a test stream: frames with bodies of varied sizes, fillers
// between some of them, CRC-32C from frame crcFrom on.
type stream struct {
	data   []byte
	bodies [][]byte
}

func makeStream(t testing.TB, n, crcFrom int) stream {
	t.Helper()
	var s stream
	for i := range n {
		body := make([]byte, 4+4*(i*7%11))
		copy(body, fmt.Sprint(i))
		s.bodies = append(s.bodies, body)
		s.data = AppendFrame(s.data, int32(i)+SeqNonce, body, i >= crcFrom)
		for range i % 3 {
			s.data = append(s.data, 4, 0, 0, 0)
		}
	}
	return s
}

// read feeds chunks to a reader that switches to CRC-32C after crcFrom
// frames and returns the bodies.
func read(chunks [][]byte, crcFrom int) ([][]byte, error) {
	var r FrameReader
	var got [][]byte
	for _, c := range chunks {
		for {
			if len(got) == crcFrom {
				r.UseCRC32C()
			}
			body, rest, err := r.Next(c)
			if err != nil {
				return got, err
			}
			if body == nil {
				if len(rest) != 0 {
					return got, errors.New("nil body with bytes left")
				}
				break
			}
			got = append(got, bytes.Clone(body))
			c = rest
		}
	}
	return got, nil
}

func checkBodies(t *testing.T, what string, got, want [][]byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d bodies, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: body %d = %x, want %x", what, i, got[i], want[i])
		}
	}
}

// TestReaderChunking feeds a stream in chunks of every fixed size and
// split at every pair of positions.
func TestReaderChunking(t *testing.T) {
	const crcFrom = 2
	s := makeStream(t, 7, crcFrom)
	n := len(s.data)
	for size := 1; size <= n; size++ {
		var chunks [][]byte
		for i := 0; i < n; i += size {
			chunks = append(chunks, s.data[i:min(i+size, n)])
		}
		got, err := read(chunks, crcFrom)
		checkBodies(t, fmt.Sprintf("chunks of %d", size), got, s.bodies, err)
	}
	for i := 0; i <= n; i++ {
		for j := i; j <= n; j++ {
			got, err := read([][]byte{s.data[:i], s.data[i:j], s.data[j:]}, crcFrom)
			checkBodies(t, fmt.Sprintf("split at %d, %d", i, j), got, s.bodies, err)
		}
	}
}

// TestReaderZeroCopy checks that whole frames come back as sub-slices of
// the input and split ones from the reader's buffer, reused.
func TestReaderZeroCopy(t *testing.T) {
	s := makeStream(t, 4, 99)
	var r FrameReader
	in := s.data
	for range s.bodies {
		body, rest, err := r.Next(in)
		if err != nil {
			t.Fatal(err)
		}
		if &body[len(body)-1] != &in[len(in)-len(rest)-5] {
			t.Fatal("whole frame was copied")
		}
		in = rest
	}

	frame := AppendFrame(nil, 4+SeqNonce, make([]byte, 64), false)
	if body, _, _ := r.Next(frame[:10]); body != nil {
		t.Fatal("body from a partial frame")
	}
	body, _, err := r.Next(frame[10:])
	if err != nil {
		t.Fatal(err)
	}
	buf := &body[0]
	if &body[0] == &frame[8] {
		t.Fatal("split frame not gathered")
	}
	frame = AppendFrame(nil, 5+SeqNonce, make([]byte, 64), false)
	r.Next(frame[:10])
	if body, _, _ := r.Next(frame[10:]); &body[0] != buf {
		t.Error("gathering buffer not reused")
	}
}

func TestReaderErrors(t *testing.T) {
	good := AppendFrame(nil, SeqNonce, AppendPing(nil, 1), false)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	crc32c := AppendFrame(nil, SeqNonce, AppendPing(nil, 1), true)
	lenWord := func(n int32) []byte { return le.AppendUint32(nil, uint32(n)) }
	for _, tc := range []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"checksum", badCRC, 0, ErrChecksum},
		{"CRC-32C before the handshake", crc32c, 0, ErrChecksum},
		{"sequence", AppendFrame(nil, 0, AppendPing(nil, 1), false), 0, ErrSequence},
		{"sequence after filler", append(lenWord(4), AppendFrame(nil, SeqHandshake, AppendPing(nil, 1), false)...), 0, ErrSequence},
		{"length 0", lenWord(0), 0, ErrFrameLength},
		{"length 8", lenWord(8), 0, ErrFrameLength},
		{"length 12", lenWord(12), 0, ErrFrameLength},
		{"length 18", lenWord(18), 0, ErrFrameLength},
		{"negative length", lenWord(-16), 0, ErrFrameLength},
		{"too long", lenWord(MaxFrameLen + 4), 0, ErrFrameLength},
		{"longer than MaxLen", good, len(good) - 4, ErrFrameLength},
	} {
		for _, split := range []int{len(tc.in), 1} {
			r := FrameReader{MaxLen: tc.max}
			_, rest, err := r.Next(tc.in[:split])
			if err == nil {
				_, _, err = r.Next(append(rest, tc.in[split:]...))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("%s (split at %d): %v, want %v", tc.name, split, err, tc.want)
				continue
			}
			if _, _, again := r.Next(good); again != err {
				t.Errorf("%s: error not sticky: %v", tc.name, again)
			}
		}
	}
	r := FrameReader{MaxLen: len(good)}
	if _, _, err := r.Next(good); err != nil {
		t.Errorf("frame of exactly MaxLen: %v", err)
	}
}

// TestReaderSequence checks the numbering through the first frames.
func TestReaderSequence(t *testing.T) {
	var data []byte
	for seq := SeqNonce; seq < 3; seq++ {
		data = AppendFrame(data, seq, AppendPing(nil, int64(seq)), false)
	}
	var r FrameReader
	for seq := SeqNonce; seq < 3; seq++ {
		body, rest, err := r.Next(data)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := ParsePing(body); id != int64(seq) {
			t.Errorf("frame %d carries %d", seq, id)
		}
		data = rest
	}
}

func TestAllocations(t *testing.T) {
	s := makeStream(t, 8, 99)
	buf := make([]byte, 0, 4096)
	req := ProxyReq{Flags: FlagAbridged, AdTag: make([]byte, 16)}
	payload := make([]byte, 256)
	n := testing.AllocsPerRun(100, func() {
		var r FrameReader
		for in := s.data; len(in) > 0; {
			_, rest, err := r.Next(in)
			if err != nil {
				t.Fatal(err)
			}
			in = rest
		}
		out := StartFrame(buf[:0])
		out = AppendProxyReq(out, &req)
		out = append(out, payload...)
		out = FinishFrame(out, 0, 5, true)
		Pad(out)
	})
	if n != 0 {
		t.Errorf("%v allocations per stream, want 0", n)
	}
}
