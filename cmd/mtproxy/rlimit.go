package main

import (
	"golang.org/x/sys/unix"
)

// fdMargin is the descriptors kept aside for listeners, DC or middle-proxy
// connections being dialled, the log file and the like.
const fdMargin = 256

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the limit in force afterwards and whether it changed. (Go's
// runtime already raises it at start on Linux; this makes it explicit and
// reports the value.)
func raiseFileLimit() (limit uint64, raised bool, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, false, err
	}
	if r.Cur >= r.Max {
		return r.Cur, false, nil
	}
	r.Cur = r.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, false, err
	}
	return r.Cur, true, nil
}

// fdsNeeded estimates the descriptors maxConns clients take: two each (the
// client and its DC connection) plus fdMargin.
func fdsNeeded(maxConns int) uint64 {
	return 2*uint64(maxConns) + fdMargin
}

// clientsFor is how many clients a limit of fds descriptors serves.
func clientsFor(fds uint64) uint64 {
	if fds <= fdMargin {
		return 0
	}
	return (fds - fdMargin) / 2
}
