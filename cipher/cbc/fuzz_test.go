package cbc

import (
	"bytes"
	"testing"
)

// FuzzCBC compares every tier with crypto/cipher on arbitrary keys,
// messages and cut points, and checks that decryption inverts encryption.
func FuzzCBC(f *testing.F) {
	f.Add(make([]byte, 48), make([]byte, 16), uint16(0), uint8(0))
	f.Add(bytes.Repeat([]byte{0xa5}, 48), bytes.Repeat([]byte{7}, 1000), uint16(31), uint8(3))
	f.Fuzz(func(t *testing.T, keyIV, msg []byte, cut uint16, align uint8) {
		var key [32]byte
		var iv [16]byte
		copy(key[:], keyIV)
		copy(iv[:], keyIV[min(len(keyIV), 32):])
		msg = msg[:len(msg)&^(BlockSize-1)]
		// The message is split in two calls at a block boundary, and its
		// copy starts align bytes into a buffer.
		c := min(int(cut)*BlockSize, len(msg))
		off := int(align % BlockSize)

		stdEnc, _ := stdModes(&key, &iv)
		want := make([]byte, len(msg))
		stdEnc.CryptBlocks(want, msg)

		for _, tr := range supportedTiers() {
			buf := make([]byte, off+len(msg))[off:]
			enc := newTierEncrypter(tr, &key, &iv)
			enc.CryptBlocks(buf[:c], msg[:c])
			enc.CryptBlocks(buf[c:], msg[c:])
			if !bytes.Equal(buf, want) {
				t.Fatalf("%v: encryption differs from crypto/cipher", tr)
			}
			dec := newTierDecrypter(tr, &key, &iv)
			dec.CryptBlocks(buf[:c], buf[:c])
			dec.CryptBlocks(buf[c:], buf[c:])
			if !bytes.Equal(buf, msg) {
				t.Fatalf("%v: decrypt(encrypt(x)) != x", tr)
			}
		}
	})
}
