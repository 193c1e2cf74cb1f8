//go:build !unix

package doctor

import "errors"

// nofile reports that this system has no RLIMIT_NOFILE.
func nofile() (soft, hard uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
