package cipher

import (
	stdcipher "crypto/cipher"
	"math/rand/v2"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// pair is two streams with their references, advanced by skipA and skipB
// bytes first so that they stand at those offsets.
type pair struct {
	a, b       *CTR
	refA, refB stdcipher.Stream
}

func newPair(rng *rand.Rand, ta, tb tier.Tier, ivA, ivB [16]byte, skipA, skipB int) pair {
	keyA, _ := randKeyIV(rng)
	keyB, _ := randKeyIV(rng)
	p := pair{newCTR(ta, &keyA, &ivA), newCTR(tb, &keyB, &ivB), stdCTR(&keyA, &ivA), stdCTR(&keyB, &ivB)}
	skip := func(s stdcipher.Stream, n int) {
		buf := make([]byte, n)
		s.XORKeyStream(buf, buf)
	}
	skip(p.a, skipA)
	skip(p.refA, skipA)
	skip(p.b, skipB)
	skip(p.refB, skipB)
	return p
}

// check runs XORKeyStreams on msg at the given offsets and compares it
// with two passes of the references.
func (p pair) check(t *testing.T, msg []byte, srcOff, dstOff int, inPlace bool, what string) {
	t.Helper()
	want := make([]byte, len(msg))
	p.refA.XORKeyStream(want, msg)
	p.refB.XORKeyStream(want, want)
	got := xorAt(t, fused{p.a, p.b}, msg, srcOff, dstOff, inPlace)
	checkEqual(t, got, want, "%s: length %d, offsets %d→%d, in place %v", what, len(msg), srcOff, dstOff, inPlace)
}

// fused adapts XORKeyStreams to the Stream interface for the helpers.
type fused struct{ a, b *CTR }

func (f fused) XORKeyStream(dst, src []byte) { XORKeyStreams(dst, src, f.a, f.b) }

func TestXORKeyStreamsLengths(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		lengths := make([]int, 0, 1025+8)
		for n := range 1025 {
			lengths = append(lengths, n)
		}
		for range 8 {
			lengths = append(lengths, rng.IntN(1<<20+1))
		}
		for i, n := range lengths {
			msg := make([]byte, n)
			fill(rng, msg)
			_, ivA := randKeyIV(rng)
			_, ivB := randKeyIV(rng)
			// Equal offsets (the fused path) and unequal ones (two passes).
			skipA := rng.IntN(100)
			skipB := skipA + 16*rng.IntN(3)
			if i%4 == 3 {
				skipB = rng.IntN(100)
			}
			p := newPair(rng, tr, tr, ivA, ivB, skipA, skipB)
			srcOff, dstOff := i%16, (i/16+i)%16
			p.check(t, msg, srcOff, dstOff, i%2 == 0, "")
		}
	})
}

func TestXORKeyStreamsSplits(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		_, ivA := randKeyIV(rng)
		_, ivB := randKeyIV(rng)
		msg := make([]byte, 300)
		fill(rng, msg)
		for cut := range len(msg) + 1 {
			p := newPair(rng, tr, tr, ivA, ivB, 0, 0)
			p.check(t, msg[:cut], 0, 0, false, "first part")
			p.check(t, msg[cut:], 0, 0, false, "second part")
		}
		msg = make([]byte, 5000)
		fill(rng, msg)
		for range 300 {
			p := newPair(rng, tr, tr, ivA, ivB, 0, 0)
			prev := 0
			for _, c := range append(randomCuts(rng, len(msg), 12), len(msg)) {
				p.check(t, msg[prev:c], 0, 0, true, "random split")
				prev = c
			}
		}
	})
}

// TestXORKeyStreamsCounterBoundaries puts the wrap of either counter, or
// both at different places, inside a kernel call.
func TestXORKeyStreamsCounterBoundaries(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		for _, full := range []bool{false, true} {
			for k := uint64(1); k <= 40; k++ {
				msg := make([]byte, 100*blockSize+rng.IntN(blockSize))
				fill(rng, msg)
				_, other := randKeyIV(rng)
				near := ivBelowWrap(rng, k, full)
				nearToo := ivBelowWrap(rng, 41-k, !full)
				skip := rng.IntN(blockSize)
				newPair(rng, tr, tr, near, other, skip, skip).check(t, msg, 0, 0, false, "a wraps")
				newPair(rng, tr, tr, other, near, skip, skip).check(t, msg, 0, 0, false, "b wraps")
				newPair(rng, tr, tr, near, nearToo, skip, skip).check(t, msg, 0, 0, false, "both wrap")
			}
		}
	})
}

// TestXORKeyStreamsMixed pairs streams of different tiers, which takes the
// two-pass path.
func TestXORKeyStreamsMixed(t *testing.T) {
	rng := newRand(t)
	for ta := tier.Generic; ta <= tier.Supported(); ta++ {
		for tb := tier.Generic; tb <= tier.Supported(); tb++ {
			_, ivA := randKeyIV(rng)
			_, ivB := randKeyIV(rng)
			msg := make([]byte, 1000)
			fill(rng, msg)
			newPair(rng, ta, tb, ivA, ivB, 3, 3).check(t, msg, 0, 0, false, ta.String()+"+"+tb.String())
		}
	}
}

// TestXORKeyStreamsSame passes one stream twice, which must advance it
// twice like two XORKeyStream calls.
func TestXORKeyStreamsSame(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		key, iv := randKeyIV(rng)
		msg := make([]byte, 100)
		fill(rng, msg)
		want := make([]byte, len(msg))
		ref := stdCTR(&key, &iv)
		ref.XORKeyStream(want, msg)
		ref.XORKeyStream(want, want)
		s := newCTR(tr, &key, &iv)
		got := make([]byte, len(msg))
		XORKeyStreams(got, msg, s, s)
		checkEqual(t, got, want, "a == b")
	})
}
