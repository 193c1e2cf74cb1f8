package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// Example from protocol.md §1.2.
const (
	exampleKeyHex = "00112233445566778899aabbccddeeff"
	exampleDomain = "example.com"
	exampleEEHex  = "ee00112233445566778899aabbccddeeff6578616d706c652e636f6d"
)

func exampleKey(t testing.TB) [16]byte {
	t.Helper()
	var k [16]byte
	if _, err := hex.Decode(k[:], []byte(exampleKeyHex)); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParse(t *testing.T) {
	key := exampleKey(t)
	classic := Secret{Key: key}
	dd := Secret{Key: key, Mode: Secure}
	ee := Secret{Key: key, Mode: FakeTLS, Domain: exampleDomain}

	// Bytes whose standard base64 has '+' and '/' and needs padding.
	odd := Secret{Key: [16]byte{0xfb, 0xff, 0xbf, 0xfe}, Mode: FakeTLS, Domain: "a.bc"}
	oddBin, _ := hex.DecodeString(odd.Hex())

	tests := []struct {
		name string
		in   string
		want Secret
	}{
		{"classic hex", exampleKeyHex, classic},
		{"classic upper hex", strings.ToUpper(exampleKeyHex), classic},
		{"dd hex", "dd" + exampleKeyHex, dd},
		{"dd upper hex", "DD" + strings.ToUpper(exampleKeyHex), dd},
		{"ee hex", exampleEEHex, ee},
		{"ee upper hex", strings.ToUpper(exampleEEHex), ee},
		{"ee base64url", "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ", ee},
		{"ee base64url padded", "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ==", ee},
		{"ee std base64 padded", base64.StdEncoding.EncodeToString(oddBin), odd},
		{"ee std base64 unpadded", base64.RawStdEncoding.EncodeToString(oddBin), odd},
		{"ee base64url with -_", base64.RawURLEncoding.EncodeToString(oddBin), odd},
		{"dd base64url", "3QARIjNEVWZ3iJmqu8zd7v8", dd},
		{"classic base64url", "ABEiM0RVZneImaq7zN3u_w", classic},
		{"upper-case domain kept", "ee" + exampleKeyHex + hex.EncodeToString([]byte("Example.COM")),
			Secret{Key: key, Mode: FakeTLS, Domain: "Example.COM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	hexDomain := func(d string) string { return "ee" + exampleKeyHex + hex.EncodeToString([]byte(d)) }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "secret: empty"},
		{"short hex", exampleKeyHex[:30], "secret: want 32 hex digits (optionally prefixed by dd or ee+domain), got 30 characters"},
		{"odd hex", exampleKeyHex + "0", "got 33 characters"},
		{"odd dd hex", "dd" + exampleKeyHex + "0", "got 35 characters"},
		{"17 bytes without dd", "ab" + exampleKeyHex, "17-byte secret starts with ab"},
		{"long without ee", "ab" + exampleKeyHex + "6161", "19-byte secret starts with ab"},
		{"long dd", "dd" + exampleKeyHex + "6161", "dd secret is 19 bytes, want 17"},
		{"ee without domain", "ee" + exampleKeyHex, "ee secret has no domain"},
		{"domain too long", hexDomain(strings.Repeat("a.", 91) + "a"), "fake-TLS domain is 183 bytes, want at most 182"},
		{"domain with space", hexDomain("exa mple.com"), `invalid character " " at offset 3`},
		{"domain with NUL", hexDomain("example.com\x00"), `invalid character "\x00" at offset 11`},
		{"domain with underscore", hexDomain("a_b.com"), `invalid character "_"`},
		{"domain with high byte", hexDomain("ex\xffample.com"), `invalid character "\xff"`},
		{"domain empty label", hexDomain("example..com"), "empty label"},
		{"domain trailing dot", hexDomain("example.com."), "empty label"},
		{"domain long label", hexDomain(strings.Repeat("a", 64) + ".com"), "label longer than 63"},
		{"short base64", "ABEiM0RVZneImaq7zN3u", "base64 form decodes to 15 bytes, want at least 16"},
		{"bad character", exampleKeyHex[:10] + "!" + exampleKeyHex[11:], `invalid character "!" at offset 10`},
		{"space", " " + exampleKeyHex, `invalid character " " at offset 0`},
		{"newline", "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxl\nLmNvbQ", `invalid character "\n" at offset 32`},
		{"mixed alphabets", "7gARIjNEVWZ3iJmqu8zd7v9le+FtcGxl_mNvbQ", "38 characters are neither hex nor base64"},
		{"bad padding", "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ=", "neither hex nor base64"},
		{"too much padding", "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ===", "neither hex nor base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error containing %q", tt.in, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDomainLimit(t *testing.T) {
	d := strings.Repeat("abcdefgh.", 20) + "ab" // 182 bytes
	if len(d) != maxDomainLen {
		t.Fatalf("test domain is %d bytes", len(d))
	}
	s := Secret{Mode: FakeTLS, Domain: d}
	if got, err := Parse(s.Hex()); err != nil || got != s {
		t.Errorf("Parse(182-byte domain) = %+v, %v", got, err)
	}
}

func TestEncode(t *testing.T) {
	key := exampleKey(t)
	tests := []struct {
		s        Secret
		hex, b64 string
	}{
		{Secret{Key: key}, exampleKeyHex, "ABEiM0RVZneImaq7zN3u_w"},
		{Secret{Key: key, Mode: Secure}, "dd" + exampleKeyHex, "3QARIjNEVWZ3iJmqu8zd7v8"},
		{Secret{Key: key, Mode: FakeTLS, Domain: exampleDomain}, exampleEEHex, "7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ"},
		// A stray domain outside FakeTLS does not leak into the encoding.
		{Secret{Key: key, Mode: Secure, Domain: exampleDomain}, "dd" + exampleKeyHex, "3QARIjNEVWZ3iJmqu8zd7v8"},
		// Base64 made only of hex digits would be read as hex.
		{Secret{Key: [16]byte{0xd3, 0x4d, 0x34, 0xd3, 0x4d, 0x34, 0xd3, 0x4d, 0x34, 0xd3, 0x4d, 0x34, 0xd3, 0x4d, 0x34, 0xd0}},
			"d34d34d34d34d34d34d34d34d34d34d0", "000000000000000000000A=="},
	}
	for _, tt := range tests {
		if got := tt.s.Hex(); got != tt.hex {
			t.Errorf("%+v.Hex() = %q, want %q", tt.s, got, tt.hex)
		}
		if got := tt.s.Base64(); got != tt.b64 {
			t.Errorf("%+v.Base64() = %q, want %q", tt.s, got, tt.b64)
		}
	}
}

// randomSecret returns a valid secret of a random mode; domains use every
// host-name character and vary in length up to the limit.
func randomSecret(r *rand.Rand) Secret {
	var s Secret
	for i := range s.Key {
		s.Key[i] = byte(r.Uint32())
	}
	s.Mode = Mode(r.IntN(3))
	if s.Mode == FakeTLS {
		s.Domain = randomDomain(r)
	}
	return s
}

func randomDomain(r *rand.Rand) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
	n := 1 + r.IntN(maxDomainLen)
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	// Dots at random places that leave no label empty or over 63 bytes.
	last := -1
	for i := 1; i < n-1; i++ {
		if i-last > maxLabelLen || r.IntN(8) == 0 && b[i-1] != '.' {
			b[i] = '.'
			last = i
		}
	}
	return string(b)
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		s := randomSecret(r)
		if err := s.check(); err != nil {
			t.Fatalf("randomSecret made an invalid secret %+v: %v", s, err)
		}
		bin, _ := hex.DecodeString(s.Hex())
		forms := []string{
			s.Hex(),
			strings.ToUpper(s.Hex()),
			s.Base64(),
			base64.URLEncoding.EncodeToString(bin),
			base64.StdEncoding.EncodeToString(bin),
			base64.RawStdEncoding.EncodeToString(bin),
		}
		for _, f := range forms {
			got, err := Parse(f)
			if err != nil || got != s {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", f, got, err, s)
			}
		}
	}
}

// check is a test helper: the secret must survive its own encodings.
func (s Secret) check() error {
	if s.Mode == FakeTLS {
		return CheckDomain(s.Domain)
	}
	if s.Mode > FakeTLS || s.Domain != "" {
		return errors.New("bad mode or stray domain")
	}
	return nil
}

func TestBase64Prefix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		s := randomSecret(r)
		b := s.Base64()
		switch s.Mode {
		case FakeTLS:
			if b[0] != '7' {
				t.Fatalf("ee secret %s has base64 %s, want it to start with 7", s.Hex(), b)
			}
		case Secure:
			if b[0] != '3' {
				t.Fatalf("dd secret %s has base64 %s, want it to start with 3", s.Hex(), b)
			}
		}
	}
}

func TestWithMode(t *testing.T) {
	s := Secret{Key: exampleKey(t)}
	ee := s.WithMode(FakeTLS, exampleDomain)
	if ee.Hex() != exampleEEHex {
		t.Errorf("WithMode(FakeTLS).Hex() = %q, want %q", ee.Hex(), exampleEEHex)
	}
	dd := ee.WithMode(Secure, exampleDomain)
	if want := (Secret{Key: s.Key, Mode: Secure}); dd != want {
		t.Errorf("WithMode(Secure) = %+v, want %+v", dd, want)
	}
	if back := dd.WithMode(Classic, ""); back != s {
		t.Errorf("WithMode(Classic) = %+v, want %+v", back, s)
	}
	if s != (Secret{Key: exampleKey(t)}) {
		t.Error("WithMode changed its receiver")
	}
}

func TestGenerate(t *testing.T) {
	src := bytes.Repeat([]byte{0xab}, 16)
	s, err := Generate(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Secret{Key: [16]byte(src)}); s != want {
		t.Errorf("Generate = %+v, want %+v", s, want)
	}
	if _, err := Generate(bytes.NewReader(src[:15])); err == nil {
		t.Error("Generate with 15 random bytes succeeded")
	}
	if _, err := Generate(iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Generate with failing reader: err = %v", err)
	}
	a, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(nil)
	if a == b || a.Mode != Classic {
		t.Errorf("Generate(nil) gave %+v and %+v", a, b)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Classic: "classic", Secure: "secure", FakeTLS: "faketls", 7: "Mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}
