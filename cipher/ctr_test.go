package cipher

import (
	"encoding/hex"
	"testing"
)

// TestCTRCounterWrap is protocol.md §11.1's wrap vector: the counter runs
// over all 128 bits, so an IV of all ones wraps to zero.
func TestCTRCounterWrap(t *testing.T) {
	key, _ := hex.DecodeString("28ddb6447216c5f55106259f1c7ba64bfe69909197bc20253466cfa42715f29c")
	var iv [16]byte
	for i := range iv {
		iv[i] = 0xff
	}
	ks := make([]byte, 48)
	s := NewCTR((*[32]byte)(key), &iv)
	// Split the call so that a partial block carries over.
	s.XORKeyStream(ks[:7], ks[:7])
	s.XORKeyStream(ks[7:], ks[7:])
	want := "da29951fc379c6f2b2df5448c8fce15c731730fe0a46948152a4f3cce665df0a49dbf29633fd8cd2067c9272d9d758e2"
	if got := hex.EncodeToString(ks); got != want {
		t.Fatalf("keystream %s\nwant      %s", got, want)
	}
}
