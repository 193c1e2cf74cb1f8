package proxyconf

import (
	"bytes"
	"fmt"
)

// Length limits of proxy-secret (§6.1); Telegram's is 128 bytes.
const (
	MinSecretLen = 32
	MaxSecretLen = 256
)

// ParseSecret checks the contents of a proxy-secret file and returns a copy.
// The file is binary and used whole, so nothing is trimmed: a stray
// newline makes another secret.
func ParseSecret(data []byte) ([]byte, error) {
	if len(data) < MinSecretLen || len(data) > MaxSecretLen {
		return nil, fmt.Errorf("proxyconf: proxy secret of %d bytes, want %d to %d", len(data), MinSecretLen, MaxSecretLen)
	}
	return bytes.Clone(data), nil
}
