package faketls

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// zeroRandom stands in for the random while hashing, so that the record
// need not be copied to be zeroed.
var zeroRandom [randomLen]byte

// Verifier checks ClientHello digests (§4.3) against a fixed list of
// secrets. It keeps one keyed HMAC per secret, whose key schedule is
// computed once, so a check allocates nothing and costs one HMAC over the
// record per secret tried (about 1 µs per secret for a 1.8 KB hello with
// SHA-NI). It is not safe for concurrent use: give each event loop its own.
type Verifier struct {
	macs []hash.Hash
	sum  [sha256.Size]byte
}

// NewVerifier returns a Verifier for secrets, tried in order.
func NewVerifier(secrets [][16]byte) *Verifier {
	v := &Verifier{macs: make([]hash.Hash, len(secrets))}
	for i := range secrets {
		v.macs[i] = hmac.New(sha256.New, secrets[i][:])
		// The first Reset saves the keyed state that later ones restore.
		v.macs[i].Reset()
	}
	return v
}

// Verify finds the secret whose digest the random of rec, a single-record
// ClientHello, carries: HMAC-SHA256 of the record with the random zeroed,
// compared in constant time on 28 bytes. It returns that secret's index
// and the client's timestamp (the digest's last 4 bytes XOR the random's,
// little-endian, in Unix seconds), or ErrDigest. rec is not modified.
func (v *Verifier) Verify(rec []byte) (secret int, ts uint32, err error) {
	if len(rec) < randomEnd {
		return -1, 0, malformed("truncated random")
	}
	random := rec[randomOffset:randomEnd]
	for i, mac := range v.macs {
		mac.Reset()
		mac.Write(rec[:randomOffset])
		mac.Write(zeroRandom[:])
		mac.Write(rec[randomEnd:])
		d := mac.Sum(v.sum[:0])
		if subtle.ConstantTimeCompare(d[:28], random[:28]) == 1 {
			ts = binary.LittleEndian.Uint32(d[28:]) ^ binary.LittleEndian.Uint32(random[28:])
			return i, ts, nil
		}
	}
	return -1, 0, ErrDigest
}
