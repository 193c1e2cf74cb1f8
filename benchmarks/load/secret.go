package load

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Kind is the form of a client secret (protocol.md §1.1).
type Kind int

const (
	// Classic is a bare 16-byte key: obfuscated2 with any framing.
	Classic Kind = iota + 1
	// DD is the "secure" form: obfuscated2 with padded intermediate.
	DD
	// EE is fake TLS: padded intermediate inside TLS records.
	EE
)

var kindNames = map[Kind]string{Classic: "classic", DD: "dd", EE: "ee"}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText and UnmarshalText make kinds readable in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k *Kind) UnmarshalText(b []byte) error {
	var err error
	*k, err = ParseKind(string(b))
	return err
}

// ParseKind returns the kind named by String.
func ParseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return k, nil
		}
	}
	return 0, fmt.Errorf("load: unknown secret kind %q (want classic, dd or ee)", name)
}

// Secret is a client's secret: the proxy's 16-byte key and the form that
// tells the client how to connect.
type Secret struct {
	Kind   Kind
	Key    [16]byte
	Domain string // the SNI of an ee secret
}

// ParseSecret reads a secret as a client link carries it: hex, or base64
// (URL-safe or standard, padded or not) as tdlib accepts (protocol.md §1.2).
func ParseSecret(s string) (Secret, error) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
			if raw, err = enc.DecodeString(strings.TrimRight(s, "=")); err == nil {
				break
			}
		}
	}
	if err != nil {
		return Secret{}, fmt.Errorf("load: secret is neither hex nor base64")
	}
	var sec Secret
	switch {
	case len(raw) == 16:
		sec.Kind = Classic
	case len(raw) == 17 && raw[0] == 0xdd:
		sec.Kind = DD
	case len(raw) > 17 && raw[0] == 0xee:
		sec.Kind, sec.Domain = EE, string(raw[17:])
	default:
		return Secret{}, fmt.Errorf("load: a secret is 16 bytes, dd and 16 bytes, or ee, 16 bytes and a domain; got %d bytes", len(raw))
	}
	off := 0
	if sec.Kind != Classic {
		off = 1 // the dd or ee prefix
	}
	copy(sec.Key[:], raw[off:off+16])
	return sec, nil
}

// String returns the hex form a client link carries.
func (s Secret) String() string {
	key := hex.EncodeToString(s.Key[:])
	switch s.Kind {
	case DD:
		return "dd" + key
	case EE:
		return "ee" + key + hex.EncodeToString([]byte(s.Domain))
	}
	return key
}
