package secret

import "strconv"

// Mode is the client-side hint carried by a secret's text form. The proxy
// never sees it on the wire: only the 16-byte key takes part in the
// handshake, so one key can be shared in every mode.
type Mode uint8

const (
	// Classic is a bare 16-byte key: obfuscated2 with any framing.
	Classic Mode = iota
	// Secure is the "dd" form: the client uses padded intermediate framing.
	Secure
	// FakeTLS is the "ee" form: the client wraps obfuscated2 in a
	// TLS-looking session whose server name is the secret's domain.
	FakeTLS
)

func (m Mode) String() string {
	switch m {
	case Classic:
		return "classic"
	case Secure:
		return "secure"
	case FakeTLS:
		return "faketls"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}
