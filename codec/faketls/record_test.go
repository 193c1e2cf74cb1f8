package faketls

import (
	"bytes"
	"errors"
	"testing"
)

// clientStream frames payload as a client would: the ChangeCipherSpec,
// then records of the given sizes (cycled), with another ChangeCipherSpec
// after the second record.
func clientStream(payload []byte, sizes ...int) []byte {
	out := []byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01}
	for i := 0; len(payload) > 0 || i == 0; i++ {
		n := min(sizes[i%len(sizes)], len(payload))
		out = append(out, 0x17, 0x03, 0x03, byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
		if i == 1 {
			out = append(out, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01)
		}
	}
	return out
}

func TestRecordReaderChunking(t *testing.T) {
	payload := make([]byte, 40000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	stream := clientStream(payload, 2878, 0, MaxClientRecord, 1, 5)
	for _, chunk := range []int{1, 2, 3, 4, 5, 6, 7, 1000, 16389, len(stream)} {
		var r RecordReader
		var got []byte
		for rest := stream; len(rest) > 0; {
			in := rest[:min(chunk, len(rest))]
			rest = rest[len(in):]
			for len(in) > 0 {
				p, tail, err := r.Next(in)
				if err != nil {
					t.Fatalf("chunks of %d: %v", chunk, err)
				}
				if len(tail) >= len(in) {
					t.Fatalf("chunks of %d: no progress", chunk)
				}
				got = append(got, p...)
				in = tail
			}
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("chunks of %d: payload differs", chunk)
		}

		// Strip gives the same bytes, compacted in place.
		var s RecordReader
		got = got[:0]
		work := bytes.Clone(stream)
		for off := 0; off < len(work); off += chunk {
			part := work[off:min(off+chunk, len(work))]
			n, err := s.Strip(part)
			if err != nil {
				t.Fatalf("Strip, chunks of %d: %v", chunk, err)
			}
			got = append(got, part[:n]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("Strip, chunks of %d: payload differs", chunk)
		}
	}
}

func TestRecordReaderRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		before int // payload bytes yielded before the error
	}{
		{"alert", []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00}, 0},
		{"handshake", []byte{0x16, 0x03, 0x03, 0x00, 0x01, 0x00}, 0},
		{"TLS 1.0 version", []byte{0x17, 0x03, 0x01, 0x00, 0x01, 0x00}, 0},
		{"long ChangeCipherSpec", []byte{0x14, 0x03, 0x03, 0x00, 0x02, 0x01, 0x01}, 0},
		{"ChangeCipherSpec payload 2", []byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x02}, 0},
		{"garbage after data", []byte{0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb, 0xef, 0xef, 0xef, 0xef, 0xef}, 2},
	} {
		var r RecordReader
		var got []byte
		var err error
		for in := tc.stream; len(in) > 0 && err == nil; {
			var p []byte
			p, in, err = r.Next(in)
			got = append(got, p...)
		}
		if !errors.Is(err, ErrBadRecord) || len(got) != tc.before {
			t.Errorf("%s: %d bytes then %v; want %d then ErrBadRecord", tc.name, len(got), err, tc.before)
			continue
		}
		if _, _, again := r.Next([]byte{0x17, 0x03, 0x03, 0x00, 0x00}); again != err {
			t.Errorf("%s: error not sticky: %v", tc.name, again)
		}
		buf := bytes.Clone(tc.stream)
		var s RecordReader
		if n, err := s.Strip(buf); !errors.Is(err, ErrBadRecord) || n != tc.before {
			t.Errorf("%s: Strip = %d, %v", tc.name, n, err)
		}
	}
}

func TestAppendRecords(t *testing.T) {
	for _, n := range []int{0, 1, MaxRecordPayload - 1, MaxRecordPayload, MaxRecordPayload + 1, 40000} {
		payload := bytes.Repeat([]byte{0x5a}, n)
		records := (n + MaxRecordPayload - 1) / MaxRecordPayload
		if HeadersLen(n) != 5*records {
			t.Fatalf("HeadersLen(%d) = %d, want %d", n, HeadersLen(n), 5*records)
		}
		iov := make([][]byte, 0, 2*records)
		hdrs := make([]byte, 0, HeadersLen(n))
		allocs := testing.AllocsPerRun(10, func() { AppendRecords(iov[:0], hdrs[:0], payload) })
		if allocs != 0 {
			t.Errorf("%d bytes: %v allocations", n, allocs)
		}
		iov, _ = AppendRecords(iov, hdrs, payload)
		if len(iov) != 2*records {
			t.Fatalf("%d bytes: %d iov entries", n, len(iov))
		}
		// The client's view: the records read back to the payload, and the
		// payload was not copied.
		wire := append([]byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01}, bytes.Join(iov, nil)...)
		var r RecordReader
		if k, err := r.Strip(wire); err != nil || !bytes.Equal(wire[:k], payload) {
			t.Fatalf("%d bytes: read back %d, %v", n, k, err)
		}
		for i := 1; i < len(iov); i += 2 {
			if len(iov[i]) > MaxRecordPayload || &iov[i][0] != &payload[(i/2)*MaxRecordPayload] {
				t.Fatalf("%d bytes: part %d is not a slice of the payload", n, i/2)
			}
		}
	}
}
