package framing_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/proto/codec"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
)

var all = []framing.Framing{framing.Abridged, framing.Intermediate, framing.Padded}

// gotdCodec is gotd's independent implementation of each framing.
func gotdCodec(f framing.Framing) codec.Codec {
	switch f {
	case framing.Abridged:
		return codec.Abridged{}
	case framing.Intermediate:
		return codec.Intermediate{}
	}
	return codec.PaddedIntermediate{}
}

// Sizes around the abridged short/long boundary (504 and 508 bytes) and
// near the largest frame, leaving room for gotd's padding. gotd reads a
// 4-byte body as a transport error code, so the smallest size is 8.
var sizes = []int{8, 12, 500, 504, 508, 512, 4096, 65536, framing.MaxLen - 4}

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// TestWriteReadByGotd frames bodies with AppendHeader and reads them back
// with gotd's codecs.
func TestWriteReadByGotd(t *testing.T) {
	for _, f := range all {
		for _, n := range sizes {
			want := body(n)
			wire, err := f.AppendHeader(nil, n)
			if err != nil {
				t.Fatalf("%v %d: %v", f, n, err)
			}
			wire = append(wire, want...)
			var got bin.Buffer
			if err := gotdCodec(f).Read(bytes.NewReader(wire), &got); err != nil {
				t.Fatalf("%v %d: gotd: %v", f, n, err)
			}
			if !bytes.Equal(got.Buf, want) {
				t.Fatalf("%v %d: gotd read a different body", f, n)
			}
		}
	}
}

// TestReadWrittenByGotd reads frames written by gotd's codecs with
// ReadHeader; gotd pads padded intermediate frames with 0..3 bytes.
func TestReadWrittenByGotd(t *testing.T) {
	for _, f := range all {
		for _, n := range sizes {
			want := body(n)
			var wire bytes.Buffer
			if err := gotdCodec(f).Write(&wire, &bin.Buffer{Buf: bytes.Clone(want)}); err != nil {
				t.Fatalf("%v %d: gotd: %v", f, n, err)
			}
			r := bytes.NewReader(wire.Bytes())
			m, quickAck, err := f.ReadHeader(r)
			if err != nil {
				t.Fatalf("%v %d: %v", f, n, err)
			}
			if quickAck {
				t.Errorf("%v %d: quick ack reported", f, n)
			}
			if m < n || m > n+3 || (f != framing.Padded && m != n) {
				t.Fatalf("%v %d: body length %d", f, n, m)
			}
			if h := f.HeaderLen(m); len(wire.Bytes()) != h+m {
				t.Fatalf("%v %d: HeaderLen %d for a %d-byte frame of %d", f, n, h, len(wire.Bytes()), m)
			}
			if r.Len() != m {
				t.Fatalf("%v %d: %d bytes follow the header, want %d", f, n, r.Len(), m)
			}
			got, _ := io.ReadAll(r)
			if !bytes.Equal(got[:n], want) {
				t.Fatalf("%v %d: different body", f, n)
			}
		}
	}
}

func TestQuickAck(t *testing.T) {
	tests := []struct {
		f    framing.Framing
		wire []byte
		n    int
	}{
		{framing.Abridged, []byte{0x80 | 2}, 8},
		{framing.Abridged, []byte{0xff, 0x80, 0, 0}, 512},
		{framing.Intermediate, binary.LittleEndian.AppendUint32(nil, 1<<31|16), 16},
		{framing.Padded, binary.LittleEndian.AppendUint32(nil, 1<<31|17), 17},
	}
	for _, tt := range tests {
		n, quickAck, err := tt.f.ReadHeader(bytes.NewReader(tt.wire))
		if err != nil || n != tt.n || !quickAck {
			t.Errorf("%v % x: %d, %v, %v; want %d with quick ack", tt.f, tt.wire, n, quickAck, err, tt.n)
		}
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name string
		f    framing.Framing
		wire []byte
	}{
		{"abridged zero", framing.Abridged, []byte{0}},
		{"abridged overlong", framing.Abridged, []byte{0x7f, 0x7e, 0, 0}},
		{"abridged too long", framing.Abridged, []byte{0x7f, 0, 0, 0x10}},
		{"abridged cut", framing.Abridged, []byte{0x7f, 1}},
		{"intermediate zero", framing.Intermediate, []byte{0, 0, 0, 0}},
		{"intermediate unaligned", framing.Intermediate, []byte{5, 0, 0, 0}},
		{"intermediate too long", framing.Intermediate, binary.LittleEndian.AppendUint32(nil, framing.MaxLen+4)},
		{"padded bit 30", framing.Padded, binary.LittleEndian.AppendUint32(nil, 1<<30|8)},
		{"padded cut", framing.Padded, []byte{8, 0}},
	}
	for _, tt := range tests {
		if n, _, err := tt.f.ReadHeader(bytes.NewReader(tt.wire)); err == nil {
			t.Errorf("%s: accepted, length %d", tt.name, n)
		}
	}
	for _, f := range all {
		if _, err := f.AppendHeader(nil, 0); err == nil {
			t.Errorf("%v: empty frame accepted", f)
		}
		if _, err := f.AppendHeader(nil, framing.MaxLen); err != nil {
			t.Errorf("%v: largest frame refused: %v", f, err)
		}
		if _, err := f.AppendHeader(nil, framing.MaxLen+4); err == nil {
			t.Errorf("%v: oversized frame accepted", f)
		}
	}
	if _, err := framing.Intermediate.AppendHeader(nil, 6); err == nil {
		t.Error("intermediate: unaligned frame accepted")
	}
	if _, err := framing.Padded.AppendHeader(nil, 6); err != nil {
		t.Errorf("padded: unaligned frame refused: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, f := range all {
		if g, err := framing.Parse(f.String()); err != nil || g != f {
			t.Errorf("Parse(%q) = %v, %v", f.String(), g, err)
		}
		if g, err := framing.FromTag(f.Tag()); err != nil || g != f {
			t.Errorf("FromTag(%#x) = %v, %v", f.Tag(), g, err)
		}
	}
	if _, err := framing.FromTag(0x01020304); err == nil {
		t.Error("unknown tag accepted")
	}
}
