// Package histogram is a log-bucketed latency histogram in the style of
// HdrHistogram: each power of two is split into 32 linear buckets, so a
// quantile is known within 1/32 (about 3%) of its value, from 1 ns to the
// largest time.Duration, in a fixed 15 KiB. Recording is lock-free.
package histogram

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits = 5
	sub     = 1 << subBits
	// Values below 2*sub have exact buckets; each later power of two adds
	// sub buckets, up to 2^63.
	buckets = (64 - subBits) * sub
)

// Histogram records durations. The zero value is ready to use; it must not
// be copied after first use.
type Histogram struct {
	counts   [buckets]atomic.Uint64
	n        atomic.Uint64
	sum      atomic.Int64  // nanoseconds; 292 years before it overflows
	minPlus1 atomic.Uint64 // the minimum plus one; zero before the first Record
	max      atomic.Int64
}

// index returns the bucket of v ≥ 0.
func index(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return (shift+1)<<subBits + int(v>>shift) - sub
}

// lowest returns the smallest value of bucket i; bucket i holds
// [lowest(i), lowest(i+1)).
func lowest(i int) uint64 {
	if i < 2*sub {
		return uint64(i)
	}
	shift := i>>subBits - 1
	return uint64(i&(sub-1)+sub) << shift
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[index(uint64(d))].Add(1)
	for m := h.minPlus1.Load(); (m == 0 || uint64(d)+1 < m) && !h.minPlus1.CompareAndSwap(m, uint64(d)+1); m = h.minPlus1.Load() {
	}
	for m := h.max.Load(); int64(d) > m && !h.max.CompareAndSwap(m, int64(d)); m = h.max.Load() {
	}
	h.sum.Add(int64(d))
	h.n.Add(1)
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Min, Max and Mean return exact statistics; zero when empty.
func (h *Histogram) Min() time.Duration {
	if m := h.minPlus1.Load(); m > 0 {
		return time.Duration(m - 1)
	}
	return 0
}
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value below which a fraction q (0..1) of the
// recorded durations fall: the middle of the bucket holding that rank,
// clamped to Min and Max. It is zero when empty. Concurrent Records may or
// may not be seen.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(min(max(q, 0), 1) * float64(n)))
	if rank >= n {
		return h.Max()
	}
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= rank {
			var hi uint64 = math.MaxInt64
			if i+1 < buckets {
				hi = lowest(i+1) - 1
			}
			mid := lowest(i) + (hi-lowest(i))/2
			return min(max(time.Duration(mid), h.Min()), h.Max())
		}
	}
	return h.Max()
}
