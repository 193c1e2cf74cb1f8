//go:build amd64 && !noasm

package cbc

import (
	"github.com/mtproxy-go/mtproxy/cipher/internal/aes256"
	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// byTier holds every tier's kernels; tests run each one the CPU supports.
// Encryption cannot use more than one block at a time, so every assembly
// tier shares the AES-NI encrypter.
var byTier = [...]kernels{
	tier.Generic: {genericEncrypter, genericDecrypter},
	tier.AESNI:   {aesniEncrypter, asmDecrypter(decryptAESNI)},
	tier.VAES256: {aesniEncrypter, asmDecrypter(decryptVAES256)},
	tier.VAES512: {aesniEncrypter, asmDecrypter(decryptVAES512)},
}

func aesniEncrypter(key *[32]byte) cryptFunc {
	ks := new(aes256.Schedule)
	aes256.Expand(ks, key)
	return func(iv *[BlockSize]byte, dst, src []byte) {
		encryptAESNI(ks, iv, dst, src)
	}
}

// asmDecrypter binds a decryption kernel to the inverse schedule of a key.
func asmDecrypter(kernel func(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte)) func(key *[32]byte) cryptFunc {
	return func(key *[32]byte) cryptFunc {
		enc := new(aes256.Schedule)
		aes256.Expand(enc, key)
		ks := enc.Inverse()
		return func(iv *[BlockSize]byte, dst, src []byte) {
			kernel(ks, iv, dst, src)
		}
	}
}

// decryptVAES256 runs the ymm kernel, which takes pairs of blocks. An odd
// count leaves AES-NI the last block, and with it up to six more: one AES-NI
// pass costs the same for one block as for seven, and each block it takes
// shortens the ymm kernel's work.
func decryptVAES256(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte) {
	n := len(src)
	if n/BlockSize%2 == 1 {
		n -= min(n, 7*BlockSize)
	}
	decryptYMM(ks, iv, dst[:n], src[:n])
	decryptAESNI(ks, iv, dst[n:], src[n:])
}

// The kernels below take len(dst) == len(src); the decrypters' ks is the
// inverse schedule. decryptYMM needs an even number of blocks.

//go:noescape
func encryptAESNI(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte)

//go:noescape
func decryptAESNI(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte)

//go:noescape
func decryptYMM(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte)

//go:noescape
func decryptVAES512(ks *aes256.Schedule, iv *[BlockSize]byte, dst, src []byte)
