// Package overlap checks the buffer rules crypto/cipher imposes: output and
// input may be the same memory (in place) or disjoint, never shifted, since
// a kernel would overwrite input it has yet to read.
package overlap

import "unsafe"

// Inexact reports whether x and y share memory but do not start at the
// same address.
func Inexact(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	px, py := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}
