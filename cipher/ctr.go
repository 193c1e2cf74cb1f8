// Package cipher holds the symmetric ciphers on the proxy's data path.
//
// Every relayed byte passes through AES-256-CTR once per direction, so this
// package is the seam where faster kernels plug in: callers only see
// crypto/cipher.Stream.
package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
)

// NewCTR returns an AES-256-CTR stream whose 128-bit big-endian counter
// starts at iv, as obfuscated2 uses it.
func NewCTR(key *[32]byte, iv *[16]byte) stdcipher.Stream {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		// Unreachable: a 32-byte key is always valid for AES-256.
		panic("cipher: " + err.Error())
	}
	return stdcipher.NewCTR(block, iv[:])
}
