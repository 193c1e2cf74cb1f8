// Package secret parses and formats MTProxy secrets and the proxy links
// that hand them to clients.
package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	keyLen        = 16
	prefixSecure  = 0xdd
	prefixFakeTLS = 0xee
	maxDomainLen  = 182 // tdlib's MAX_DOMAIN_LENGTH
	maxLabelLen   = 63
)

// A Secret is a proxy key together with the mode a client should use it in.
type Secret struct {
	Key    [keyLen]byte
	Mode   Mode
	Domain string // TLS server name the client sends; only for FakeTLS
}

// errShort lets Parse word the length error for the encoding it decoded.
var errShort = errors.New("secret: too short")

// Parse decodes a secret in any form a client accepts: hex (either case),
// URL-safe base64 or standard base64, tried in that order like tdlib does,
// so a string that is valid hex is always taken as hex. The decoded bytes
// must be a 16-byte key, 0xdd and a key, or 0xee, a key and a domain.
func Parse(s string) (Secret, error) {
	if s == "" {
		return Secret{}, errors.New("secret: empty")
	}
	if b, err := hex.DecodeString(s); err == nil {
		sec, err := fromBinary(b)
		if err == errShort {
			return Secret{}, errHexLength(s)
		}
		return sec, err
	}
	b, ok := decodeBase64(s)
	if !ok {
		if isHex(s) {
			return Secret{}, errHexLength(s)
		}
		return Secret{}, errNotText(s)
	}
	sec, err := fromBinary(b)
	switch {
	case err == nil:
		return sec, nil
	case isHex(s):
		// An odd number of hex digits is far more likely a typo
		// than base64 that happens to use only hex digits.
		return Secret{}, errHexLength(s)
	case err == errShort:
		return Secret{}, fmt.Errorf("secret: base64 form decodes to %d bytes, want at least %d", len(b), keyLen)
	}
	return Secret{}, err
}

// decodeBase64 accepts both alphabets, with or without padding.
func decodeBase64(s string) ([]byte, bool) {
	// Go's decoders skip newlines, which would make a secret with a
	// line break valid here but not as hex.
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	t := strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	if t != s && len(s)%4 != 0 {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			return b, true
		}
	}
	return nil, false
}

func fromBinary(b []byte) (Secret, error) {
	var s Secret
	switch {
	case len(b) < keyLen:
		return Secret{}, errShort
	case len(b) == keyLen:
		s.Mode = Classic
		copy(s.Key[:], b)
		return s, nil
	case b[0] == prefixSecure && len(b) == keyLen+1:
		s.Mode = Secure
	case b[0] == prefixFakeTLS && len(b) == keyLen+1:
		return Secret{}, errors.New("secret: ee secret has no domain")
	case b[0] == prefixFakeTLS:
		s.Mode = FakeTLS
		s.Domain = string(b[1+keyLen:])
		if err := CheckDomain(s.Domain); err != nil {
			return Secret{}, err
		}
	case b[0] == prefixSecure:
		return Secret{}, fmt.Errorf("secret: dd secret is %d bytes, want %d", len(b), 1+keyLen)
	default:
		return Secret{}, fmt.Errorf("secret: %d-byte secret starts with %02x, want dd (17 bytes) or ee (18 or more bytes)", len(b), b[0])
	}
	copy(s.Key[:], b[1:])
	return s, nil
}

// CheckDomain reports whether domain can go into an ee secret. The client
// sends it as the TLS server name, so it must be a plain host name of at
// most 182 bytes, the longest tdlib accepts.
func CheckDomain(domain string) error {
	if domain == "" {
		return errors.New("secret: empty fake-TLS domain")
	}
	if len(domain) > maxDomainLen {
		return fmt.Errorf("secret: fake-TLS domain is %d bytes, want at most %d", len(domain), maxDomainLen)
	}
	for i := 0; i < len(domain); i++ {
		if c := domain[i]; !isHostChar(c) {
			return fmt.Errorf("secret: fake-TLS domain has invalid character %q at offset %d", []byte{c}, i)
		}
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" {
			return fmt.Errorf("secret: fake-TLS domain %q has an empty label", domain)
		}
		if len(label) > maxLabelLen {
			return fmt.Errorf("secret: fake-TLS domain %q has a label longer than %d bytes", domain, maxLabelLen)
		}
	}
	return nil
}

func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func errHexLength(s string) error {
	return fmt.Errorf("secret: want 32 hex digits (optionally prefixed by dd or ee+domain), got %d characters", len(s))
}

// errNotText names the first character no encoding allows; the secret
// itself stays out of the message, which may end up in logs.
func errNotText(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isBase64Char(c) {
			return fmt.Errorf("secret: invalid character %q at offset %d", []byte{c}, i)
		}
	}
	return fmt.Errorf("secret: %d characters are neither hex nor base64", len(s))
}

func isBase64Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '+' || c == '/' || c == '='
}

// Generate returns a Classic secret with a key read from r, or from
// crypto/rand if r is nil.
func Generate(r io.Reader) (Secret, error) {
	if r == nil {
		r = rand.Reader
	}
	var s Secret
	if _, err := io.ReadFull(r, s.Key[:]); err != nil {
		return Secret{}, fmt.Errorf("secret: generating key: %w", err)
	}
	return s, nil
}

// WithMode returns s with another mode. The domain is kept only for
// FakeTLS, and is not checked: see CheckDomain.
func (s Secret) WithMode(m Mode, domain string) Secret {
	s.Mode = m
	s.Domain = ""
	if m == FakeTLS {
		s.Domain = domain
	}
	return s
}

// Hex returns the hex form a client expects for s.Mode: 32 digits, "dd"
// and 32 digits, or "ee", 32 digits and the hex of the domain.
func (s Secret) Hex() string {
	return hex.EncodeToString(s.binary())
}

// Base64 returns the same bytes as Hex in URL-safe base64 without padding,
// the form tdlib shares ee secrets in.
func (s Secret) Base64() string {
	b := base64.RawURLEncoding.EncodeToString(s.binary())
	// Once in about 10^10 keys a classic secret's 22 characters are all hex
	// digits and parsers would read them as hex; padding keeps it base64.
	if isHex(b) {
		b += "=="
	}
	return b
}

// binary returns the client's binary form; an unknown Mode encodes as
// Classic.
func (s Secret) binary() []byte {
	b := make([]byte, 0, 1+keyLen+len(s.Domain))
	switch s.Mode {
	case Secure:
		b = append(b, prefixSecure)
	case FakeTLS:
		b = append(b, prefixFakeTLS)
	}
	b = append(b, s.Key[:]...)
	if s.Mode == FakeTLS {
		b = append(b, s.Domain...)
	}
	return b
}
