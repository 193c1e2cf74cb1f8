//go:build unix

package doctor

import "syscall"

// nofile returns the RLIMIT_NOFILE limits of this process.
func nofile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
