package proxyconf

import (
	"bytes"
	"testing"
)

func TestParseSecret(t *testing.T) {
	for n := range MaxSecretLen + 2 {
		in := bytes.Repeat([]byte{'\n'}, n)
		got, err := ParseSecret(in)
		if ok := n >= MinSecretLen && n <= MaxSecretLen; ok != (err == nil) {
			t.Errorf("%d bytes: %v", n, err)
			continue
		}
		if err == nil && (!bytes.Equal(got, in) || &got[0] == &in[0]) {
			t.Errorf("%d bytes: not an untrimmed copy", n)
		}
	}
}
