package secret

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gotd/td/mtproxy"
)

// gotd's parser works on the binary form, so the text forms are decoded
// with the standard library before it sees them.
var gotdTypes = map[Mode]mtproxy.SecretType{
	Classic: mtproxy.Simple,
	Secure:  mtproxy.Secured,
	FakeTLS: mtproxy.TLS,
}

var gotdTags = map[Mode]byte{Secure: prefixSecure, FakeTLS: prefixFakeTLS}

// TestAgainstGotd checks that what we encode, gotd's independent parser
// reads back as the same key, type and domain.
func TestAgainstGotd(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		s := randomSecret(r)
		fromHex, err := hex.DecodeString(s.Hex())
		if err != nil {
			t.Fatal(err)
		}
		fromB64, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s.Base64(), "="))
		if err != nil {
			t.Fatal(err)
		}
		for _, bin := range [][]byte{fromHex, fromB64} {
			g, err := mtproxy.ParseSecret(bin)
			if err != nil {
				t.Fatalf("gotd rejects %s (%v): %v", s.Hex(), s.Mode, err)
			}
			if string(g.Secret) != string(s.Key[:]) || g.Type != gotdTypes[s.Mode] ||
				g.Tag != gotdTags[s.Mode] || g.CloakHost != s.Domain {
				t.Fatalf("gotd reads %s as key %x type %d tag %02x host %q; we wrote %+v",
					s.Hex(), g.Secret, g.Type, g.Tag, g.CloakHost, s)
			}
		}
	}
}

// TestGotdAgainstUs checks the other direction on arbitrary bytes: ours is
// stricter (it checks the domain), but whatever we accept gotd must accept
// with the same meaning.
func TestGotdAgainstUs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	prefixes := []byte{0x00, prefixSecure, prefixFakeTLS, 0xef}
	for range 20000 {
		b := make([]byte, 14+r.IntN(10))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = prefixes[r.IntN(len(prefixes))]
		if len(b) > 17 && r.IntN(2) == 0 {
			copy(b[17:], randomDomain(r))
		}
		s, err := Parse(hex.EncodeToString(b))
		if err != nil {
			continue
		}
		g, err := mtproxy.ParseSecret(b)
		if err != nil {
			t.Fatalf("we accept %x as %+v, gotd rejects it: %v", b, s, err)
		}
		if string(g.Secret) != string(s.Key[:]) || g.Type != gotdTypes[s.Mode] || g.CloakHost != s.Domain {
			t.Fatalf("%x: we read %+v, gotd reads key %x type %d host %q", b, s, g.Secret, g.Type, g.CloakHost)
		}
	}
}
