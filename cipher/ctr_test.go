package cipher

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// TestCTRCounterWrap is protocol.md §11.1's wrap vector: the counter runs
// over all 128 bits, so an IV of all ones wraps to zero.
func TestCTRCounterWrap(t *testing.T) {
	key, _ := hex.DecodeString("28ddb6447216c5f55106259f1c7ba64bfe69909197bc20253466cfa42715f29c")
	var iv [16]byte
	for i := range iv {
		iv[i] = 0xff
	}
	want := "da29951fc379c6f2b2df5448c8fce15c731730fe0a46948152a4f3cce665df0a49dbf29633fd8cd2067c9272d9d758e2"
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		ks := make([]byte, 48)
		s := newCTR(tr, (*[32]byte)(key), &iv)
		// Split the call so that a partial block carries over.
		s.XORKeyStream(ks[:7], ks[:7])
		s.XORKeyStream(ks[7:], ks[7:])
		if got := hex.EncodeToString(ks); got != want {
			t.Fatalf("keystream %s\nwant      %s", got, want)
		}
	})
}

// forEachTier runs f as a subtest for every tier this CPU and build run.
func forEachTier(t *testing.T, f func(*testing.T, tier.Tier)) {
	for tr := tier.Generic; tr <= tier.Supported(); tr++ {
		t.Run(tr.String(), func(t *testing.T) { f(t, tr) })
	}
}

// stdCTR is the reference every tier is compared with.
func stdCTR(key *[32]byte, iv *[16]byte) stdcipher.Stream {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	return stdcipher.NewCTR(block, iv[:])
}

// newRand returns a generator seeded by the test's name, so that a
// failure reproduces.
func newRand(t testing.TB) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return rand.New(rand.NewPCG(h.Sum64(), 0))
}

func randKeyIV(rng *rand.Rand) (key [32]byte, iv [16]byte) {
	fill(rng, key[:])
	fill(rng, iv[:])
	return key, iv
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// ivBelowWrap returns a random IV whose low 64 bits (or all 128 bits if
// full) are k below wrapping to zero.
func ivBelowWrap(rng *rand.Rand, k uint64, full bool) (iv [16]byte) {
	fill(rng, iv[:8])
	if full {
		for i := range 8 {
			iv[i] = 0xff
		}
	}
	lo := -k
	for i := range 8 {
		iv[15-i] = byte(lo >> (8 * i))
	}
	return iv
}

// xorAt runs s.XORKeyStream over msg copied to offset srcOff of a larger
// buffer, writing at dstOff of another one or, if inPlace, in place. It
// fails t if anything around the output changes.
func xorAt(t *testing.T, s stdcipher.Stream, msg []byte, srcOff, dstOff int, inPlace bool) []byte {
	t.Helper()
	srcBuf := canaryBuffer(srcOff + len(msg) + 2*blockSize)
	src := srcBuf[blockSize+srcOff:][:len(msg)]
	copy(src, msg)
	dstBuf, dst := srcBuf, src
	if !inPlace {
		dstBuf = canaryBuffer(dstOff + len(msg) + 2*blockSize)
		dst = dstBuf[blockSize+dstOff:][:len(msg)]
	}
	s.XORKeyStream(dst, src)
	out := bytes.Clone(dst)
	// Put the pattern back where the output went; nothing else may differ.
	want := canaryBuffer(len(dstBuf))
	copy(dst, want[len(dstBuf)-cap(dst):])
	if !bytes.Equal(dstBuf, want) {
		t.Fatalf("length %d: bytes around the output changed", len(msg))
	}
	return out
}

// canaryBuffer returns n bytes of a fixed pattern.
func canaryBuffer(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 0xa5)
	}
	return b
}

func checkEqual(t *testing.T, got, want []byte, format string, args ...any) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: first difference at byte %d of %d", fmt.Sprintf(format, args...), i, len(want))
	}
}

func TestCTRLengths(t *testing.T) {
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
			key, iv := randKeyIV(rng)
			msg := make([]byte, n)
			fill(rng, msg)
			want := make([]byte, n)
			stdCTR(&key, &iv).XORKeyStream(want, msg)
			// Walk every source and destination alignment.
			srcOff, dstOff := i%16, (i/16+i)%16
			got := xorAt(t, newCTR(tr, &key, &iv), msg, srcOff, dstOff, false)
			checkEqual(t, got, want, "length %d, offsets %d→%d", n, srcOff, dstOff)
			got = xorAt(t, newCTR(tr, &key, &iv), msg, srcOff, 0, true)
			checkEqual(t, got, want, "length %d in place at offset %d", n, srcOff)
		}
	})
}

// splitXOR feeds msg to s in consecutive calls ending at the cuts.
func splitXOR(s stdcipher.Stream, msg []byte, cuts []int) []byte {
	out := make([]byte, len(msg))
	prev := 0
	for _, c := range append(cuts, len(msg)) {
		s.XORKeyStream(out[prev:c], msg[prev:c])
		prev = c
	}
	return out
}

// randomCuts returns up to k sorted cut points within [0, n].
func randomCuts(rng *rand.Rand, n, k int) []int {
	cuts := make([]int, rng.IntN(k+1))
	for i := range cuts {
		cuts[i] = rng.IntN(n + 1)
	}
	for i := 1; i < len(cuts); i++ {
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	return cuts
}

func TestCTRSplits(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		key, iv := randKeyIV(rng)
		msg := make([]byte, 300)
		fill(rng, msg)
		want := make([]byte, len(msg))
		stdCTR(&key, &iv).XORKeyStream(want, msg)
		for cut := range len(msg) + 1 {
			got := splitXOR(newCTR(tr, &key, &iv), msg, []int{cut})
			checkEqual(t, got, want, "split at %d", cut)
		}

		msg = make([]byte, 5000)
		fill(rng, msg)
		want = make([]byte, len(msg))
		stdCTR(&key, &iv).XORKeyStream(want, msg)
		for range 300 {
			cuts := randomCuts(rng, len(msg), 12)
			got := splitXOR(newCTR(tr, &key, &iv), msg, cuts)
			checkEqual(t, got, want, "splits %v", cuts)
		}
	})
}

// TestCTRCounterBoundaries starts the counter a few blocks below the wrap
// of its low 64 bits and of all 128 bits, so that the wrap falls inside
// what one kernel call would otherwise process (up to 32 blocks), with and
// without a partial block before it.
func TestCTRCounterBoundaries(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		for _, full := range []bool{false, true} {
			for k := uint64(1); k <= 40; k++ {
				key, _ := randKeyIV(rng)
				iv := ivBelowWrap(rng, k, full)
				n := 100*blockSize + rng.IntN(blockSize)
				msg := make([]byte, n)
				fill(rng, msg)
				want := make([]byte, n)
				stdCTR(&key, &iv).XORKeyStream(want, msg)
				got := xorAt(t, newCTR(tr, &key, &iv), msg, int(k%16), 0, false)
				checkEqual(t, got, want, "full=%v, %d blocks below the wrap", full, k)
				cuts := []int{rng.IntN(blockSize), int(k) * blockSize, int(k)*blockSize + 1 + rng.IntN(3*blockSize)}
				got = splitXOR(newCTR(tr, &key, &iv), msg, cuts)
				checkEqual(t, got, want, "full=%v, %d blocks below the wrap, splits %v", full, k, cuts)
			}
		}
	})
}

func TestCTRPanics(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		var key [32]byte
		var iv [16]byte
		buf := make([]byte, 64)
		for name, f := range map[string]func(s *CTR){
			"short dst": func(s *CTR) { s.XORKeyStream(buf[:31], buf[32:]) },
			"overlap":   func(s *CTR) { s.XORKeyStream(buf[1:33], buf[:32]) },
			"fused short dst": func(s *CTR) {
				XORKeyStreams(buf[:31], buf[32:], s, newCTR(tr, &key, &iv))
			},
			"fused overlap": func(s *CTR) {
				XORKeyStreams(buf[16:48], buf[:32], s, newCTR(tr, &key, &iv))
			},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f(newCTR(tr, &key, &iv))
			}()
		}
	})
}

func TestAllocs(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		var key [32]byte
		var iv [16]byte
		a, b := newCTR(tr, &key, &iv), newCTR(tr, &key, &iv)
		for _, n := range []int{100, 1000} { // with and without the short path
			buf := make([]byte, n)
			if allocs := testing.AllocsPerRun(100, func() { a.XORKeyStream(buf, buf) }); allocs != 0 {
				t.Errorf("XORKeyStream of %d bytes: %v allocations", n, allocs)
			}
			b.XORKeyStream(buf, buf) // to the same offset as a again
			if allocs := testing.AllocsPerRun(100, func() { XORKeyStreams(buf, buf, a, b) }); allocs != 0 {
				t.Errorf("XORKeyStreams of %d bytes: %v allocations", n, allocs)
			}
		}
	})
}

func TestActiveTier(t *testing.T) {
	if got, want := ActiveTier(), tier.Active.String(); got != want {
		t.Errorf("ActiveTier() = %q, want %q", got, want)
	}
}

// TestNewCTRAllocatesOnce: four streams are made per connection, so a new
// stream costs one object (the generic tier's wrapper excepted).
func TestNewCTRAllocatesOnce(t *testing.T) {
	if !hasKernels(tier.Active) {
		t.Skip("the generic tier wraps crypto/cipher")
	}
	var key [32]byte
	var iv [16]byte
	if n := testing.AllocsPerRun(100, func() { NewCTR(&key, &iv) }); n != 1 {
		t.Fatalf("NewCTR made %v allocations, want 1", n)
	}
}
