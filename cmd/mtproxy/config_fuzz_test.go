package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfig feeds arbitrary TOML to --config: a file is loaded or refused
// with an error naming it, never a panic.
func FuzzConfig(f *testing.F) {
	example, err := os.ReadFile("../../mtproxy.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("http-ports = [443, 8443]\n[users]\nalice = \"dd00112233445566778899aabbccddeeff\"\n")
	f.Add("domain = \"example.com\"\nmtproto-secret = \"ee00112233445566778899aabbccddeeff6578616d706c652e636f6d\"\n")
	f.Add("msg-buffers-size = \"2g\"\nverbosity = 3\nnat-info = [\"10.0.0.1:203.0.113.5\"]\n")
	f.Add("handshake-timeout = 5\n[users]\nx = 1\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "mtproxy.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := loadOptions("run", []string{"--config", path})
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if len(o.users) > maxSecrets || o.maxConnections < 0 || o.bufferBudget < 0 {
			t.Fatalf("accepted options out of range: %+v", o)
		}
	})
}
