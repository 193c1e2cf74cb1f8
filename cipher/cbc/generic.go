package cbc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// The generic tier drives crypto/aes one block at a time. It is the
// portable fallback (arm64, noasm builds) and the reference the assembly
// kernels are tested against besides crypto/cipher itself.

func genericEncrypter(key *[32]byte) cryptFunc {
	b := newBlock(key)
	return func(iv *[BlockSize]byte, dst, src []byte) {
		chain := iv[:]
		for i := 0; i < len(src); i += BlockSize {
			out := dst[i : i+BlockSize]
			subtle.XORBytes(out, src[i:i+BlockSize], chain)
			b.Encrypt(out, out)
			chain = out
		}
		copy(iv[:], chain)
	}
}

func genericDecrypter(key *[32]byte) cryptFunc {
	b := newBlock(key)
	return func(iv *[BlockSize]byte, dst, src []byte) {
		// Walk backwards so that, when dst is src, each ciphertext block is
		// still intact when the block after it needs it as its chain.
		n := len(src)
		if n == 0 {
			return
		}
		var next [BlockSize]byte
		copy(next[:], src[n-BlockSize:])
		for i := n - BlockSize; i >= 0; i -= BlockSize {
			out := dst[i : i+BlockSize]
			b.Decrypt(out, src[i:i+BlockSize])
			if i == 0 {
				subtle.XORBytes(out, out, iv[:])
			} else {
				subtle.XORBytes(out, out, src[i-BlockSize:i])
			}
		}
		*iv = next
	}
}

func newBlock(key *[32]byte) cipher.Block {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		// Unreachable: a 32-byte key is always valid.
		panic("cbc: " + err.Error())
	}
	return b
}
