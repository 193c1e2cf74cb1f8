// Package modes names the modes of the fake servers (fake DC, fake middle
// proxy) for their command-line flags.
package modes

import (
	"fmt"
	"strings"
)

// Parse returns the index of name in names; pkg prefixes the error.
func Parse(pkg string, names []string, name string) (int, error) {
	for i, n := range names {
		if n == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s: unknown mode %q (want one of %s)", pkg, name, strings.Join(names, ", "))
}

// Name returns names[i], or Mode(i) for an index out of range.
func Name(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("Mode(%d)", i)
}
