package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every bucket starts where the previous one ends, and index inverts
	// lowest at both ends of each bucket.
	for i := 1; i < buckets; i++ {
		lo := lowest(i)
		if lo <= lowest(i-1) {
			t.Fatalf("bucket %d starts at %d, not after bucket %d at %d", i, lo, i-1, lowest(i-1))
		}
		if index(lo) != i || index(lo-1) != i-1 {
			t.Fatalf("bucket %d: index(%d) = %d, index(%d) = %d", i, lo, index(lo), lo-1, index(lo-1))
		}
	}
	if got := index(math.MaxInt64); got != buckets-1 {
		t.Fatalf("index(MaxInt64) = %d, want the last bucket %d", got, buckets-1)
	}
	// Relative width stays within 1/32.
	for i := 2 * sub; i < buckets-1; i++ {
		if w := float64(lowest(i+1)-lowest(i)) / float64(lowest(i)); w > 1.0/sub {
			t.Fatalf("bucket %d is %.3f of its value wide", i, w)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			var mine []time.Duration
			for range 25000 {
				mu.Lock()
				d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
				mu.Unlock()
				h.Record(d)
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	if h.Count() != uint64(len(all)) {
		t.Fatalf("count %d, want %d", h.Count(), len(all))
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		want := all[max(int(math.Ceil(q*float64(len(all))))-1, 0)]
		got := h.Quantile(q)
		if diff := math.Abs(float64(got-want)) / float64(want); diff > 1.0/sub {
			t.Errorf("q%.3f = %v, want %v within 1/32", q, got, want)
		}
	}
	if h.Min() != all[0] || h.Max() != all[len(all)-1] {
		t.Errorf("min %v max %v, want %v %v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	if mean := sum / time.Duration(len(all)); h.Mean() != mean {
		t.Errorf("mean %v, want %v", h.Mean(), mean)
	}
}

func TestExtremes(t *testing.T) {
	var h Histogram
	h.Record(-5)
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Quantile(1) != math.MaxInt64 || h.Quantile(0) != 0 {
		t.Fatalf("min %v max %v q0 %v q1 %v", h.Min(), h.Max(), h.Quantile(0), h.Quantile(1))
	}
}
