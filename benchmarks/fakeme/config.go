package fakeme

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// Names of the files WriteFiles writes.
const (
	SecretFile = "proxy-secret"
	ConfigFile = "proxy-multi.conf"
)

// NewSecret returns a fresh proxy secret of 128 random bytes, the size of
// Telegram's.
func NewSecret() []byte {
	s := make([]byte, 128)
	rand.Read(s)
	return s
}

// ConfigText returns a proxy-multi.conf (protocol.md §6.2) that sends every DC
// to the middle proxy at addr: DC 2 is there and is the default, which
// takes every other DC.
func ConfigText(addr string) string {
	return fmt.Sprintf("# every DC to the fake middle proxy\nproxy_for 2 %s;\ndefault 2;\n", addr)
}

// WriteFiles writes secret to dir/proxy-secret and ConfigText(addr) to
// dir/proxy-multi.conf, the two files a proxy in middle-proxy mode reads
// (--aes-pwd and the positional argument of the official command line),
// and returns their paths.
func WriteFiles(dir, addr string, secret []byte) (secretPath, configPath string, err error) {
	secretPath = filepath.Join(dir, SecretFile)
	configPath = filepath.Join(dir, ConfigFile)
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(configPath, []byte(ConfigText(addr)), 0o644); err != nil {
		return "", "", err
	}
	return secretPath, configPath, nil
}
