package faketls

import (
	"crypto/rand"
	"fmt"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			secrets := make([][16]byte, n)
			for i := range secrets {
				secrets[i][0] = byte(i + 1)
			}
			// Signed with the last secret: every one is tried.
			rec := signedHello(b, 1, "example.com", 1800, secrets[n-1], 1700000000)
			v := NewVerifier(secrets)
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				if i, _, err := v.Verify(rec); err != nil || i != n-1 {
					b.Fatal(i, err)
				}
			}
		})
	}
}

func BenchmarkParseHello(b *testing.B) {
	rec := signedHello(b, 1, "example.com", 1800, testSecret, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHello(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendServerHello(b *testing.B) {
	h, err := ParseHello(signedHello(b, 1, "example.com", 1800, testSecret, 1))
	if err != nil {
		b.Fatal(err)
	}
	shape := Shape{AppDataLen: 3000, Jitter: 1}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendServerHello(dst, &h, testSecret, shape, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

// recordStream is 64 application-data records of 16 KB.
func recordStream() []byte {
	payload := make([]byte, 64*MaxRecordPayload)
	iov, _ := AppendRecords(nil, nil, payload)
	var stream []byte
	for _, p := range iov {
		stream = append(stream, p...)
	}
	return stream
}

func BenchmarkRecordReader(b *testing.B) {
	stream := recordStream()
	b.Run("Next", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		var r RecordReader
		for b.Loop() {
			// Reads of 64 KB, as an event loop gets them.
			for off := 0; off < len(stream); off += 1 << 16 {
				buf := stream[off:min(off+1<<16, len(stream))]
				for len(buf) > 0 {
					var err error
					if _, buf, err = r.Next(buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
	b.Run("Strip", func(b *testing.B) {
		work := make([]byte, len(stream))
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		var r RecordReader
		for b.Loop() {
			b.StopTimer()
			copy(work, stream)
			b.StartTimer()
			for off := 0; off < len(work); off += 1 << 16 {
				if _, err := r.Strip(work[off:min(off+1<<16, len(work))]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkAppendRecords(b *testing.B) {
	payload := make([]byte, 1<<20)
	iov := make([][]byte, 0, 2*64)
	hdrs := make([]byte, 0, HeadersLen(len(payload)))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		AppendRecords(iov[:0], hdrs[:0], payload)
	}
}
