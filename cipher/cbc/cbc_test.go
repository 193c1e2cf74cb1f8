package cbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// supportedTiers lists the tiers this CPU and build can run; each has an
// entry in byTier.
func supportedTiers() []tier.Tier {
	var ts []tier.Tier
	for t := tier.Generic; t <= tier.Supported(); t++ {
		ts = append(ts, t)
	}
	return ts
}

func newTierEncrypter(t tier.Tier, key *[32]byte, iv *[16]byte) *Encrypter {
	return &Encrypter{iv: *iv, crypt: byTier[t].encrypter(key)}
}

func newTierDecrypter(t tier.Tier, key *[32]byte, iv *[16]byte) *Decrypter {
	return &Decrypter{iv: *iv, crypt: byTier[t].decrypter(key)}
}

// stdModes returns crypto/cipher's CBC pair, the reference.
func stdModes(key *[32]byte, iv *[16]byte) (enc, dec cipher.BlockMode) {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	return cipher.NewCBCEncrypter(b, iv[:]), cipher.NewCBCDecrypter(b, iv[:])
}

func randKeyIV(r *rand.Rand) (key [32]byte, iv [16]byte) {
	fill(r, key[:])
	fill(r, iv[:])
	return key, iv
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// check runs one message through tier tr in both directions, out of place
// at the given byte misalignments and in place, and compares with
// crypto/cipher. It also checks that nothing past len(src) in dst is
// written.
func check(t *testing.T, r *rand.Rand, tr tier.Tier, n, srcOff, dstOff int) {
	t.Helper()
	key, iv := randKeyIV(r)
	plain := make([]byte, n)
	fill(r, plain)
	stdEnc, _ := stdModes(&key, &iv)
	want := make([]byte, n)
	stdEnc.CryptBlocks(want, plain)

	const guard = 48
	src := make([]byte, srcOff+n)[srcOff:]
	dstBuf := make([]byte, dstOff+n+guard)
	dst := dstBuf[dstOff:]
	for i := range dstBuf {
		dstBuf[i] = 0xa5
	}
	intact := func() bool {
		for _, b := range dstBuf[:dstOff] {
			if b != 0xa5 {
				return false
			}
		}
		for _, b := range dst[n:] {
			if b != 0xa5 {
				return false
			}
		}
		return true
	}

	copy(src, plain)
	newTierEncrypter(tr, &key, &iv).CryptBlocks(dst, src)
	if !bytes.Equal(dst[:n], want) || !bytes.Equal(src, plain) || !intact() {
		t.Fatalf("%v encrypt %d bytes (offsets %d, %d): wrong output or wrote outside dst", tr, n, srcOff, dstOff)
	}
	copy(src, want)
	newTierDecrypter(tr, &key, &iv).CryptBlocks(dst, src)
	if !bytes.Equal(dst[:n], plain) || !bytes.Equal(src, want) || !intact() {
		t.Fatalf("%v decrypt %d bytes (offsets %d, %d): wrong output or wrote outside dst", tr, n, srcOff, dstOff)
	}

	copy(src, plain)
	newTierEncrypter(tr, &key, &iv).CryptBlocks(src, src)
	if !bytes.Equal(src, want) {
		t.Fatalf("%v encrypt %d bytes in place (offset %d): wrong output", tr, n, srcOff)
	}
	newTierDecrypter(tr, &key, &iv).CryptBlocks(src, src)
	if !bytes.Equal(src, plain) {
		t.Fatalf("%v decrypt %d bytes in place (offset %d): wrong output", tr, n, srcOff)
	}
}

func TestMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tr := range supportedTiers() {
		t.Run(tr.String(), func(t *testing.T) {
			for blocks := 0; blocks <= 64; blocks++ {
				check(t, r, tr, blocks*BlockSize, 0, 0)
				check(t, r, tr, blocks*BlockSize, 1+r.IntN(15), 1+r.IntN(15))
			}
			for range 20 {
				n := r.IntN(1<<20/BlockSize+1) * BlockSize
				check(t, r, tr, n, r.IntN(16), r.IntN(16))
			}
		})
	}
}

// TestStreamSplits checks that the chaining value carries across calls:
// a message cut at every block boundary, then a second message, must
// match one uninterrupted stream.
func TestStreamSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const blocks = 75 // more than two zmm passes, with a remainder
	for _, tr := range supportedTiers() {
		t.Run(tr.String(), func(t *testing.T) {
			key, iv := randKeyIV(r)
			plain := make([]byte, 2*blocks*BlockSize)
			fill(r, plain)
			stdEnc, _ := stdModes(&key, &iv)
			want := make([]byte, len(plain))
			stdEnc.CryptBlocks(want, plain)

			got := make([]byte, len(plain))
			half := blocks * BlockSize
			for cut := 0; cut <= half; cut += BlockSize {
				clear(got)
				enc := newTierEncrypter(tr, &key, &iv)
				enc.CryptBlocks(got[:cut], plain[:cut])
				enc.CryptBlocks(got[cut:half], plain[cut:half])
				enc.CryptBlocks(got[half:], plain[half:])
				if !bytes.Equal(got, want) {
					t.Fatalf("encrypt cut at block %d: mismatch", cut/BlockSize)
				}

				copy(got, want)
				dec := newTierDecrypter(tr, &key, &iv)
				dec.CryptBlocks(got[:cut], got[:cut])
				dec.CryptBlocks(got[cut:half], got[cut:half])
				dec.CryptBlocks(got[half:], got[half:])
				if !bytes.Equal(got, plain) {
					t.Fatalf("decrypt cut at block %d: mismatch", cut/BlockSize)
				}
			}
		})
	}
}

// TestRPCHandshakeVector is protocol.md §11.3: the padded RPC_HANDSHAKE
// frame encrypted with the CLIENT key and iv.
func TestRPCHandshakeVector(t *testing.T) {
	key := [32]byte(unhex("58be48e7cb972542ae1d8b6b27bc45e89dcbe0d97a90b115b0ca7ee82510a1f1"))
	iv := [16]byte(unhex("1cda4ede2a84fea7b1c2b22841084adf"))
	plain := unhex("2c000000ffffffff f5ee8276 00000000" +
		"0500710bc800000000006500 0500710bc800000000006500 351b5556" +
		"04000000")
	want := unhex("0a07c50dedc0aff66ea8fa731ec7cdf7d79dc6cebf79520f6e97534c42cc3cb3" +
		"4ff34e4fb08fe18373b90936a76e71b7")
	for _, tr := range supportedTiers() {
		got := make([]byte, len(plain))
		newTierEncrypter(tr, &key, &iv).CryptBlocks(got, plain)
		if !bytes.Equal(got, want) {
			t.Errorf("%v: encrypt = %x, want %x", tr, got, want)
		}
		newTierDecrypter(tr, &key, &iv).CryptBlocks(got, got)
		if !bytes.Equal(got, plain) {
			t.Errorf("%v: decrypt = %x, want %x", tr, got, plain)
		}
	}
	// And through the exported constructors, whatever tier is active.
	got := make([]byte, len(plain))
	NewEncrypter(&key, &iv).CryptBlocks(got, plain)
	if !bytes.Equal(got, want) {
		t.Errorf("NewEncrypter: %x, want %x", got, want)
	}
	NewDecrypter(&key, &iv).CryptBlocks(got, got)
	if !bytes.Equal(got, plain) {
		t.Errorf("NewDecrypter: %x, want %x", got, plain)
	}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
	if err != nil {
		panic(err)
	}
	return b
}

func TestZeroAllocs(t *testing.T) {
	var key [32]byte
	var iv [16]byte
	buf := make([]byte, 4096+3*BlockSize)
	for _, tr := range supportedTiers() {
		for _, m := range []cipher.BlockMode{newTierEncrypter(tr, &key, &iv), newTierDecrypter(tr, &key, &iv)} {
			if n := testing.AllocsPerRun(100, func() { m.CryptBlocks(buf, buf) }); n != 0 {
				t.Errorf("%v %T: %v allocations per call", tr, m, n)
			}
		}
	}
}

func TestMisusePanics(t *testing.T) {
	var key [32]byte
	var iv [16]byte
	buf := make([]byte, 64)
	for name, call := range map[string]func(cipher.BlockMode){
		"partial block": func(m cipher.BlockMode) { m.CryptBlocks(buf, buf[:17]) },
		"short dst":     func(m cipher.BlockMode) { m.CryptBlocks(buf[:16], buf[:32]) },
		"overlap":       func(m cipher.BlockMode) { m.CryptBlocks(buf[16:], buf[:32]) },
	} {
		for _, m := range []cipher.BlockMode{NewEncrypter(&key, &iv), NewDecrypter(&key, &iv)} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s, %T: no panic", name, m)
					}
				}()
				call(m)
			}()
		}
	}
}

func TestBlockSize(t *testing.T) {
	var key [32]byte
	var iv [16]byte
	if NewEncrypter(&key, &iv).BlockSize() != 16 || NewDecrypter(&key, &iv).BlockSize() != 16 {
		t.Error("BlockSize != 16")
	}
}

func BenchmarkEncrypt(b *testing.B) { benchmark(b, true) }
func BenchmarkDecrypt(b *testing.B) { benchmark(b, false) }

// benchmark compares crypto/cipher ("std") with each tier, in place.
func benchmark(b *testing.B, encrypt bool) {
	var key [32]byte
	var iv [16]byte
	type mode struct {
		name string
		m    cipher.BlockMode
	}
	stdEnc, stdDec := stdModes(&key, &iv)
	modes := []mode{{"std", stdDec}}
	if encrypt {
		modes[0].m = stdEnc
	}
	for _, tr := range supportedTiers() {
		m := cipher.BlockMode(newTierDecrypter(tr, &key, &iv))
		if encrypt {
			m = newTierEncrypter(tr, &key, &iv)
		}
		modes = append(modes, mode{tr.String(), m})
	}
	for _, size := range []int{1 << 10, 16 << 10, 64 << 10} {
		buf := make([]byte, size)
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/%dK", mode.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					mode.m.CryptBlocks(buf, buf)
				}
			})
		}
	}
}
