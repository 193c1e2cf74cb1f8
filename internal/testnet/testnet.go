// Package testnet holds loopback helpers for tests.
package testnet

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusedAddr returns a loopback TCP address where connections are
// refused. The port is held by a socket bound but never listening until
// the test ends: the usual listen-then-close leaves the port free for a
// parallel test's listener, which then answers (or stays silent) where
// a refusal was expected.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
