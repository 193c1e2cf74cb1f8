//go:build amd64 && !noasm

package cipher

import (
	"github.com/mtproxy-go/mtproxy/cipher/internal/aes256"
	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// hasKernels reports whether tier t runs assembly kernels rather than the
// standard library.
func hasKernels(t tier.Tier) bool {
	return t != tier.Generic
}

// xorBlocks XORs the keystream of n whole blocks, starting at the counter
// whose 64-bit halves are lo and hi, into src and writes dst, with tier
// t's kernel. It never carries out of lo, which the caller ensures by
// splitting, and does not advance the counter.
//
// The counter is passed by value, not as a pointer to CTR.ctr: a kernel
// would load it with one 16-byte read, which the CPU cannot forward from
// the two 8-byte stores that just updated it, and that stall cost a third
// of the time of a 64-byte call. The kernels are called directly, not
// through function values, so that escape analysis sees go:noescape.
func xorBlocks(t tier.Tier, rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int) {
	switch t {
	case tier.VAES512:
		xorVAES512(rk, lo, hi, dst, src, n)
	case tier.VAES256:
		xorVAES256(rk, lo, hi, dst, src, n)
	case tier.AESNI:
		xorAESNI(rk, lo, hi, dst, src, n)
	default:
		panic("cipher: no kernel for tier " + t.String())
	}
}

// xorBlocks2 is xorBlocks for two streams a and b: it writes src XORed
// with both keystreams to dst.
func xorBlocks2(t tier.Tier, rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int) {
	switch t {
	case tier.VAES512:
		xor2VAES512(rka, loa, hia, rkb, lob, hib, dst, src, n)
	case tier.VAES256:
		xor2VAES256(rka, loa, hia, rkb, lob, hib, dst, src, n)
	case tier.AESNI:
		xor2AESNI(rka, loa, hia, rkb, lob, hib, dst, src, n)
	default:
		panic("cipher: no kernel for tier " + t.String())
	}
}

// The kernels, one file of assembly per tier.

//go:noescape
func xorAESNI(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)

//go:noescape
func xor2AESNI(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)

//go:noescape
func xorVAES256(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)

//go:noescape
func xor2VAES256(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)

//go:noescape
func xorVAES512(rk *aes256.Schedule, lo, hi uint64, dst, src *byte, n int)

//go:noescape
func xor2VAES512(rka *aes256.Schedule, loa, hia uint64, rkb *aes256.Schedule, lob, hib uint64, dst, src *byte, n int)
