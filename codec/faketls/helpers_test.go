package faketls

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// testSecret is the secret of protocol.md §11.
var testSecret = [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// sign is the client side of §4.3, written out on its own: it replaces the
// random of the single-record hello rec by the digest for secret and ts.
func sign(rec []byte, secret [16]byte, ts uint32) {
	clear(rec[11:43])
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(rec)
	d := mac.Sum(nil)
	binary.LittleEndian.PutUint32(d[28:], binary.LittleEndian.Uint32(d[28:])^ts)
	copy(rec[11:43], d)
}

// detRand is a deterministic io.Reader for tests.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// signedHello returns a Chrome-like hello record of size bytes for sni,
// signed with secret at ts.
func signedHello(t testing.TB, seed uint64, sni string, size int, secret [16]byte, ts uint32) []byte {
	t.Helper()
	rec, err := appendChromeHello(nil, detRand(seed), sni, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != size {
		t.Fatalf("hello of %d bytes, want %d", len(rec), size)
	}
	sign(rec, secret, ts)
	return rec
}

// unhex decodes hex with white space in it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
