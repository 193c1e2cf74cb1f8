package cipher

import (
	"bytes"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// FuzzCTR compares every tier with crypto/cipher for a fuzzer-chosen
// key, IV, message and split points, one stream and the fused pair (whose
// second stream uses the key and IV reversed).
func FuzzCTR(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 16), []byte("hello"), uint16(0), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 16), make([]byte, 1000), uint16(7), uint16(520))
	f.Add([]byte("k"), append(bytes.Repeat([]byte{0}, 8), bytes.Repeat([]byte{0xff}, 8)...), make([]byte, 4096), uint16(100), uint16(33))
	f.Fuzz(func(t *testing.T, keyIn, ivIn, msg []byte, cut1, cut2 uint16) {
		var key, keyB [32]byte
		var iv, ivB [16]byte
		copy(key[:], keyIn)
		copy(iv[:], ivIn)
		for i := range key {
			keyB[i] = key[len(key)-1-i]
		}
		for i := range iv {
			ivB[i] = iv[len(iv)-1-i]
		}
		cuts := []int{int(cut1) % (len(msg) + 1), int(cut2) % (len(msg) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}

		want := make([]byte, len(msg))
		stdCTR(&key, &iv).XORKeyStream(want, msg)
		wantPair := make([]byte, len(msg))
		stdCTR(&keyB, &ivB).XORKeyStream(wantPair, want)

		for tr := tier.Generic; tr <= tier.Supported(); tr++ {
			got := splitXOR(newCTR(tr, &key, &iv), msg, cuts)
			checkEqual(t, got, want, "%s, splits %v", tr, cuts)
			pair := fused{newCTR(tr, &key, &iv), newCTR(tr, &keyB, &ivB)}
			got = splitXOR(pair, msg, cuts)
			checkEqual(t, got, wantPair, "%s fused, splits %v", tr, cuts)
		}
	})
}
