package load

import (
	"encoding/base64"
	"testing"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
)

func TestParseSecret(t *testing.T) {
	key := [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	ee := Secret{Kind: EE, Key: key, Domain: "example.com"}
	tests := []struct {
		in   string
		want Secret
	}{
		{"00112233445566778899aabbccddeeff", Secret{Kind: Classic, Key: key}},
		{"dd00112233445566778899aabbccddeeff", Secret{Kind: DD, Key: key}},
		{"ee00112233445566778899aabbccddeeff6578616d706c652e636f6d", ee},
		{base64.RawURLEncoding.EncodeToString(append(append([]byte{0xee}, key[:]...), "example.com"...)), ee},
		{base64.StdEncoding.EncodeToString(append([]byte{0xdd}, key[:]...)), Secret{Kind: DD, Key: key}},
	}
	for _, tt := range tests {
		got, err := ParseSecret(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSecret(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, s := range []string{tests[0].want.String(), tests[1].want.String(), ee.String()} {
		if got, err := ParseSecret(s); err != nil || got.String() != s {
			t.Errorf("round trip of %q: %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "0011", "ab00112233445566778899aabbccddeeff", "dd00112233445566778899aabbccddeeff00", "!!"} {
		if got, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestCheck(t *testing.T) {
	good := Target{Addr: "127.0.0.1:1", Secret: Secret{Kind: Classic}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	if err := (Target{Addr: "[::1]:1", Secret: Secret{Kind: EE, Domain: "a"}}).Check(); err != nil {
		t.Error(err)
	}
	bad := map[string]Target{
		"remote":        {Addr: "192.0.2.1:443", Secret: Secret{Kind: Classic}},
		"name":          {Addr: "localhost:443", Secret: Secret{Kind: Classic}},
		"no kind":       {Addr: "127.0.0.1:1"},
		"ee, no domain": {Addr: "127.0.0.1:1", Secret: Secret{Kind: EE}},
		"dd abridged":   {Addr: "127.0.0.1:1", Secret: Secret{Kind: DD}, Framing: framing.Abridged},
		"bad framing":   {Addr: "127.0.0.1:1", Secret: Secret{Kind: Classic}, Framing: 7},
	}
	for name, tg := range bad {
		if err := tg.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
