package aes256

import (
	"encoding/hex"
	"testing"
)

// FIPS-197 Appendix A.3: the AES-256 key expansion example.
func TestExpandFIPS197(t *testing.T) {
	key, _ := hex.DecodeString("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
	s := new(Schedule)
	Expand(s, (*[32]byte)(key))
	for r, want := range map[int]string{
		0:  "603deb1015ca71be2b73aef0857d7781",
		1:  "1f352c073b6108d72d9810a30914dff4",
		2:  "9ba354118e6925afa51a8b5f2067fcde",
		14: "fe4890d1e6188d0b046df344706c631e",
	} {
		if got := hex.EncodeToString(s[r][:]); got != want {
			t.Errorf("round key %d = %s, want %s", r, got, want)
		}
	}
}

func TestInverseUndoesMixColumns(t *testing.T) {
	key := [32]byte{1, 2, 3}
	s := new(Schedule)
	Expand(s, &key)
	d := s.Inverse()
	if d[0] != s[Rounds] || d[Rounds] != s[0] {
		t.Fatal("outer keys not swapped")
	}
	for r := 1; r < Rounds; r++ {
		if mixColumns(d[r]) != s[Rounds-r] {
			t.Fatalf("round %d: InvMixColumns not undone by MixColumns", r)
		}
	}
}

func mixColumns(k [16]byte) (out [16]byte) {
	for c := 0; c < 16; c += 4 {
		a0, a1, a2, a3 := k[c], k[c+1], k[c+2], k[c+3]
		out[c] = mul(a0, 2) ^ mul(a1, 3) ^ a2 ^ a3
		out[c+1] = a0 ^ mul(a1, 2) ^ mul(a2, 3) ^ a3
		out[c+2] = a0 ^ a1 ^ mul(a2, 2) ^ mul(a3, 3)
		out[c+3] = mul(a0, 3) ^ a1 ^ a2 ^ mul(a3, 2)
	}
	return out
}
