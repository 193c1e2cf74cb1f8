package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestQueueKeepsOrderAcrossChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][]int{{0}, {1}, {Size}, {Size + 1}, {Size - 1, 1, 1}, {3 * Size, 7, Size / 2}} {
		var q Queue
		var want []byte
		for _, n := range sizes {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			q.Append(p)
			want = append(want, p...)
		}
		if q.Len() != len(want) {
			t.Fatalf("sizes %v: Len %d, want %d", sizes, q.Len(), len(want))
		}
		var got []byte
		for _, b := range q.AppendBuffers(nil) {
			if len(b) > Size {
				t.Fatalf("view of %d bytes is larger than a chunk", len(b))
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("sizes %v: bytes differ", sizes)
		}
		q.Reset()
		if q.Len() != 0 || len(q.AppendBuffers(nil)) != 0 {
			t.Fatalf("sizes %v: queue not empty after Reset", sizes)
		}
	}
}

func TestQueueReuseDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	var q Queue
	p := make([]byte, 3*Size)
	q.Append(p)
	q.Reset()
	allocs := testing.AllocsPerRun(100, func() {
		q.Append(p)
		q.Reset()
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per append/reset cycle, want 0", allocs)
	}
}
