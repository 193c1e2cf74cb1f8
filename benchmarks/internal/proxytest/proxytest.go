// Package proxytest builds this repository's proxy for the tests of the
// benchmark packages, which run it as a separate process, never in-process.
package proxytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles cmd/mtproxy into dir and returns the binary's path.
func Build(dir string) (string, error) {
	// go test puts its own go command first in PATH.
	bin := filepath.Join(dir, "mtproxy")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mtproxy-go/mtproxy/cmd/mtproxy").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("proxytest: go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Template is the command template (see package proxyproc) that runs the
// proxy at bin with every DC at the fake DC.
func Template(bin string) string {
	return bin + " -H {port} --address 127.0.0.1 -S {secret} -M {workers}" +
		" --dc 1={dc_addr} --dc 2={dc_addr} --dc 3={dc_addr} --dc 4={dc_addr} --dc 5={dc_addr}"
}

// Tag is the ad tag of MiddleTemplate.
const Tag = "0123456789abcdeffedcba9876543210"

// MiddleTemplate is the command template that runs the proxy at bin in
// middle-proxy mode, with the ad tag Tag, on the files of
// fakeme.WriteFiles ({proxy_secret} and {proxy_multi_conf}).
func MiddleTemplate(bin string) string {
	return bin + " -H {port} --address 127.0.0.1 -S {secret} -M {workers} -P " + Tag +
		" --aes-pwd {proxy_secret} {proxy_multi_conf}"
}

// Main is a TestMain for packages whose tests only need the binary: it
// builds the proxy into a temporary directory, stores its path in bin, runs
// the tests and exits.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "proxytest")
	if err == nil {
		*bin, err = Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
