// Package cipher holds the symmetric ciphers on the proxy's data path.
//
// Every relayed byte is AES-256-CTR decrypted with one stream and encrypted
// with another, so this package runs the kernels that matter most for
// throughput. Which kernel runs is decided once per process by
// cipher/internal/tier.
package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"

	"github.com/mtproxy-go/mtproxy/cipher/internal/aes256"
	"github.com/mtproxy-go/mtproxy/cipher/internal/overlap"
	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

const blockSize = 16

// CTR is an AES-256-CTR stream whose 128-bit big-endian counter wraps
// around to zero, as obfuscated2 uses it. It implements
// crypto/cipher.Stream. A CTR is not safe for concurrent use.
type CTR struct {
	rk  aes256.Schedule
	ctr [2]uint64       // the next block's counter: low, high 64 bits
	ks  [blockSize]byte // keystream of the block before ctr
	off int             // bytes of ks already used; blockSize when none remain

	tier tier.Tier // whose kernels run the blocks (see xorBlocks)
	// std is the generic tier's stream, nil on the others. It keeps its
	// own counter and leaves the fields above unused.
	std stdcipher.Stream
}

// NewCTR returns an AES-256-CTR stream whose counter starts at iv, run by
// the process's active tier (see ActiveTier).
func NewCTR(key *[32]byte, iv *[16]byte) *CTR {
	return newCTR(tier.Active, key, iv)
}

// ActiveTier names the implementation NewCTR uses: generic, aesni,
// vaes256 or vaes512.
func ActiveTier() string {
	return tier.Active.String()
}

// TierError says why the MTPROXY_CIPHER override was refused (an unknown
// name, or a tier this CPU or build lacks), or nil. With a refused
// override the best tier runs; the binary refuses to start instead.
func TierError() error {
	return tier.ActiveErr
}

func newCTR(t tier.Tier, key *[32]byte, iv *[16]byte) *CTR {
	if !hasKernels(t) {
		block, err := aes.NewCipher(key[:])
		if err != nil {
			// Unreachable: a 32-byte key is always valid for AES-256.
			panic("cipher: " + err.Error())
		}
		return &CTR{tier: tier.Generic, std: stdcipher.NewCTR(block, iv[:])}
	}
	c := &CTR{
		ctr:  [2]uint64{binary.BigEndian.Uint64(iv[8:]), binary.BigEndian.Uint64(iv[:8])},
		off:  blockSize,
		tier: t,
	}
	aes256.Expand(&c.rk, key)
	return c
}

// XORKeyStream XORs each byte of src with the next keystream byte and
// writes the result to dst. dst and src must overlap entirely or not at
// all; dst must be at least as long as src.
func (c *CTR) XORKeyStream(dst, src []byte) {
	dst = checkBuffers(dst, src)
	if c.std != nil {
		c.std.XORKeyStream(dst, src)
		return
	}
	if c.off < blockSize {
		n := subtle.XORBytes(dst, src, c.ks[c.off:])
		c.off += n
		dst, src = dst[n:], src[n:]
	}
	whole := len(src) &^ (blockSize - 1)
	if whole < len(src) && len(src) <= shortLen {
		c.short(dst, src)
		return
	}
	if whole > 0 {
		c.blocks(dst[:whole], src[:whole])
	}
	if whole < len(src) {
		c.refill()
		c.off = subtle.XORBytes(dst[whole:], src[whole:], c.ks[:])
	}
}

// XORKeyStreams sets dst to src XORed with the next keystreams of both a
// and b, advancing both, as a.XORKeyStream then b.XORKeyStream would.
// When a and b run the same tier and stand at the same offset within a
// block, as the two streams of a relay direction always do, it reads and
// writes memory once instead of twice. dst and src must overlap entirely
// or not at all.
func XORKeyStreams(dst, src []byte, a, b *CTR) {
	dst = checkBuffers(dst, src)
	if a.std != nil || a.tier != b.tier || a.off != b.off || a == b {
		a.XORKeyStream(dst, src)
		b.XORKeyStream(dst, dst)
		return
	}
	if a.off < blockSize {
		n := min(len(src), blockSize-a.off)
		for i := range n {
			dst[i] = src[i] ^ a.ks[a.off+i] ^ b.ks[a.off+i]
		}
		a.off += n
		b.off += n
		dst, src = dst[n:], src[n:]
	}
	whole := len(src) &^ (blockSize - 1)
	if whole > 0 {
		blocks2(dst[:whole], src[:whole], a, b)
	}
	if whole < len(src) {
		a.refill()
		b.refill()
		for i := whole; i < len(src); i++ {
			dst[i] = src[i] ^ a.ks[i-whole] ^ b.ks[i-whole]
		}
		a.off = len(src) - whole
		b.off = a.off
	}
}

// shortLen is the longest message that short handles; beyond it, the
// second kernel call costs less than copying.
const shortLen = 128

// short XORs a message that ends in a partial block with one kernel call
// instead of two (the whole blocks, then a refill): it runs the kernel
// over a copy padded with zeros to a whole block, whose last block then
// holds the keystream to buffer beyond the end of the message.
func (c *CTR) short(dst, src []byte) {
	var buf [shortLen]byte
	end := (len(src) + blockSize - 1) &^ (blockSize - 1)
	copy(buf[:], src)
	c.blocks(buf[:end], buf[:end])
	copy(dst, buf[:len(src)])
	c.ks = [blockSize]byte(buf[end-blockSize : end])
	c.off = len(src) - (end - blockSize)
}

// refill replaces ks with the next block of keystream.
func (c *CTR) refill() {
	c.ks = [blockSize]byte{}
	c.blocks(c.ks[:], c.ks[:])
}

// blocks runs the kernel over whole blocks, splitting where the low 64
// bits of the counter wrap so that the kernel never carries into the high
// half.
func (c *CTR) blocks(dst, src []byte) {
	for n := uint64(len(src) / blockSize); n > 0; {
		m := min(n, untilWrap(c.ctr[0]))
		xorBlocks(c.tier, &c.rk, c.ctr[0], c.ctr[1], &dst[0], &src[0], int(m))
		c.advance(m)
		n -= m
		dst, src = dst[m*blockSize:], src[m*blockSize:]
	}
}

// blocks2 is blocks for XORKeyStreams: both keystreams in one pass.
func blocks2(dst, src []byte, a, b *CTR) {
	for n := uint64(len(src) / blockSize); n > 0; {
		m := min(n, untilWrap(a.ctr[0]), untilWrap(b.ctr[0]))
		xorBlocks2(a.tier, &a.rk, a.ctr[0], a.ctr[1], &b.rk, b.ctr[0], b.ctr[1], &dst[0], &src[0], int(m))
		a.advance(m)
		b.advance(m)
		n -= m
		dst, src = dst[m*blockSize:], src[m*blockSize:]
	}
}

// untilWrap returns how many blocks a kernel may run from a counter whose
// low half is lo before that half wraps to zero.
func untilWrap(lo uint64) uint64 {
	if lo == 0 {
		return 1 << 63 // more than any slice holds
	}
	return -lo // 2⁶⁴ - lo
}

func (c *CTR) advance(n uint64) {
	var carry uint64
	c.ctr[0], carry = bits.Add64(c.ctr[0], n, 0)
	c.ctr[1] += carry
}

// checkBuffers applies crypto/cipher.Stream's rules on dst and src and
// returns dst cut to the length of src.
func checkBuffers(dst, src []byte) []byte {
	if len(dst) < len(src) {
		panic("cipher: output smaller than input")
	}
	dst = dst[:len(src)]
	if overlap.Inexact(dst, src) {
		panic("cipher: invalid buffer overlap")
	}
	return dst
}
