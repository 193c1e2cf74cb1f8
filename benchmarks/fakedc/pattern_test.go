package fakedc

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestPatternReadMatchesReadAt(t *testing.T) {
	const total = 1000
	want := make([]byte, total)
	NewPattern(7).ReadAt(want, 0)

	// Odd chunk sizes cross word boundaries at every alignment.
	p := NewPattern(7)
	var got []byte
	for size := 1; len(got) < total; size++ {
		chunk := make([]byte, min(size, total-len(got)))
		p.Read(chunk)
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sequential reads differ from ReadAt")
	}

	mid := make([]byte, 13)
	NewPattern(7).ReadAt(mid, 501)
	if !bytes.Equal(mid, want[501:514]) {
		t.Fatal("ReadAt at an unaligned offset differs")
	}

	other := make([]byte, total)
	NewPattern(8).ReadAt(other, 0)
	if bytes.Equal(other, want) {
		t.Fatal("different seeds gave the same stream")
	}
	if _, err := NewPattern(7).ReadAt(mid, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
}

func TestVerifier(t *testing.T) {
	data := make([]byte, 10000)
	NewPattern(3).Read(data)

	v := NewVerifier(3)
	for off := 0; off < len(data); off += 777 {
		if _, err := v.Write(data[off:min(len(data), off+777)]); err != nil {
			t.Fatal(err)
		}
	}
	if v.Verified() != int64(len(data)) {
		t.Fatalf("verified %d bytes, want %d", v.Verified(), len(data))
	}

	data[5000] ^= 1
	v = NewVerifier(3)
	n, err := io.Copy(v, bytes.NewReader(data))
	if err == nil || !strings.Contains(err.Error(), "offset 5000") {
		t.Fatalf("corruption at 5000 reported as %v", err)
	}
	if n != 5000 || v.Verified() != 5000 {
		t.Fatalf("copied %d, verified %d; want 5000", n, v.Verified())
	}
	if _, err := v.Write(data[:1]); err == nil {
		t.Fatal("error is not sticky")
	}
}
