package doctor

import (
	"errors"
	"fmt"
)

// fdMargin is the descriptors counted beyond the clients' own: listeners,
// middle-proxy connections, DNS, log files and the like.
const fdMargin = 256

// minClients is the fewest clients a limit must allow when -C sets no cap
// before the check warns.
const minClients = 1000

// unlimited is the threshold above which a limit is shown as unlimited
// (RLIM_INFINITY is the largest uint64).
const unlimited = 1 << 62

// checkFileLimits compares RLIMIT_NOFILE with what maxConns clients need.
func checkFileLimits(maxConns int, middle bool) Result {
	soft, hard, err := nofile()
	if errors.Is(err, errors.ErrUnsupported) {
		return Result{Status: Skip, Detail: "no RLIMIT_NOFILE on this system"}
	}
	if err != nil {
		return Result{Status: Warn, Detail: "cannot read RLIMIT_NOFILE: " + err.Error()}
	}
	return fileLimits(soft, hard, maxConns, middle)
}

// fileLimits judges the limits. The hard limit is the one that counts: Go
// raises the soft limit to it when the proxy starts.
func fileLimits(soft, hard uint64, maxConns int, middle bool) Result {
	// A direct-mode client holds its socket and its DC's; a middle-mode
	// one only its own, as the middle-proxy connections are shared.
	per, mode := uint64(2), "direct mode"
	if middle {
		per, mode = 1, "middle-proxy mode"
	}
	limits := fmt.Sprintf("soft %s, hard %s", fmtLimit(soft), fmtLimit(hard))
	raise := "raise the hard limit (ulimit -Hn in the starting shell, LimitNOFILE= in a systemd unit, nofile in limits.conf)"
	if maxConns > 0 {
		need := uint64(maxConns)*per + fdMargin
		if hard < need {
			return Result{Status: Warn, Detail: fmt.Sprintf("%s: -C %d needs about %d descriptors (%d per client in %s, plus %d); %s, or lower -C to %d",
				limits, maxConns, need, per, mode, fdMargin, raise, fitClients(hard, per))}
		}
		return Result{Status: OK, Detail: fmt.Sprintf("%s: enough for -C %d (about %d needed, %d per client)", limits, maxConns, need, per)}
	}
	if hard >= unlimited {
		return Result{Status: OK, Detail: limits + "; no -C cap"}
	}
	fit := fitClients(hard, per)
	if fit < minClients {
		return Result{Status: Warn, Detail: fmt.Sprintf("%s: room for only about %d clients (%s each in %s) and no -C cap; %s, and set -C so that excess clients are refused cleanly",
			limits, fit, plural(int(per), "descriptor"), mode, raise)}
	}
	return Result{Status: OK, Detail: fmt.Sprintf("%s: room for about %d clients (%s each); no -C cap: consider -C %d so that excess clients are refused cleanly",
		limits, fit, plural(int(per), "descriptor"), fit)}
}

// fitClients returns how many clients fit in a limit.
func fitClients(limit, per uint64) uint64 {
	if limit <= fdMargin {
		return 0
	}
	return (limit - fdMargin) / per
}

func fmtLimit(n uint64) string {
	if n >= unlimited {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
