// Package cbc implements AES-256 in CBC mode for the middle-proxy RPC
// channel, which encrypts every byte it carries.
//
// Encryption is serial: each block's input includes the previous
// ciphertext, so the fastest kernel is one block at a time with the round
// keys in registers. Decryption has no such chain (plaintext i needs only
// ciphertexts i and i-1), so its kernels keep many blocks in flight.
//
// The kernels are chosen once, at start, from tier.Active: the CPU, the
// MTPROXY_CIPHER override and the noasm build tag.
package cbc

import (
	"crypto/cipher"

	"github.com/mtproxy-go/mtproxy/cipher/internal/overlap"
	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// BlockSize is the AES block size in bytes.
const BlockSize = 16

// cryptFunc runs CBC in one direction over whole blocks with a fixed key:
// len(dst) == len(src), a multiple of BlockSize, and dst either is src or
// does not overlap it. It chains from *iv and leaves the last ciphertext
// block there, so that the next call continues the stream.
type cryptFunc func(iv *[BlockSize]byte, dst, src []byte)

// A kernels value is one tier's implementation: constructors that bind a
// key to that tier's encryption and decryption code.
type kernels struct {
	encrypter, decrypter func(key *[32]byte) cryptFunc
}

// active is the implementation for tier.Active, picked once at start so that
// CryptBlocks does not branch on the CPU.
var active = byTier[tier.Active]

// Encrypter is an AES-256-CBC encrypter. Successive CryptBlocks calls
// continue one stream: the chaining value carries over.
type Encrypter struct {
	iv    [BlockSize]byte
	crypt cryptFunc
}

// Decrypter is an AES-256-CBC decrypter. Successive CryptBlocks calls
// continue one stream: the chaining value carries over.
type Decrypter struct {
	iv    [BlockSize]byte
	crypt cryptFunc
}

var (
	_ cipher.BlockMode = (*Encrypter)(nil)
	_ cipher.BlockMode = (*Decrypter)(nil)
)

// NewEncrypter returns an encrypter for key whose first block is chained
// to iv.
func NewEncrypter(key *[32]byte, iv *[BlockSize]byte) *Encrypter {
	return &Encrypter{iv: *iv, crypt: active.encrypter(key)}
}

// NewDecrypter returns a decrypter for key whose first block is chained
// to iv.
func NewDecrypter(key *[32]byte, iv *[BlockSize]byte) *Decrypter {
	return &Decrypter{iv: *iv, crypt: active.decrypter(key)}
}

// BlockSize returns BlockSize.
func (e *Encrypter) BlockSize() int { return BlockSize }

// BlockSize returns BlockSize.
func (d *Decrypter) BlockSize() int { return BlockSize }

// CryptBlocks encrypts src into dst. len(src) must be a multiple of
// BlockSize and dst at least as long; dst may be src but must not overlap
// it otherwise.
func (e *Encrypter) CryptBlocks(dst, src []byte) {
	e.crypt(&e.iv, checkBuffers(dst, src), src)
}

// CryptBlocks decrypts src into dst under the same rules as
// Encrypter.CryptBlocks.
func (d *Decrypter) CryptBlocks(dst, src []byte) {
	d.crypt(&d.iv, checkBuffers(dst, src), src)
}

// checkBuffers panics on the misuse that crypto/cipher's CBC panics on and
// returns dst cut to the length of src. The kernels rely on it: an inexact
// overlap would let them overwrite ciphertext they have yet to read.
func checkBuffers(dst, src []byte) []byte {
	if len(src)%BlockSize != 0 {
		panic("cbc: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("cbc: output smaller than input")
	}
	dst = dst[:len(src)]
	if overlap.Inexact(dst, src) {
		panic("cbc: invalid buffer overlap")
	}
	return dst
}
