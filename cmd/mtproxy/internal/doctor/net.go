package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// checkListen binds addr and closes the listener at once.
func checkListen(ctx context.Context, addr string) Result {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return Result{Status: Fail, Detail: listenError(addr, err)}
	}
	bound := ln.Addr().String()
	ln.Close()
	return Result{Status: OK, Detail: "can be bound (" + bound + "; released at once)"}
}

// listenError explains why addr cannot be bound.
func listenError(addr string, err error) string {
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "address already in use: another process listens there (an mtproxy already running?); see ss -ltnp"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		if port > 0 && port < 1024 {
			return "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE"
		}
		return "permission denied: " + innerError(err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not available: the host is not an address of this machine"
	case errors.Is(err, context.DeadlineExceeded):
		return "resolving the host timed out"
	}
	return innerError(err)
}

// innerError drops the "listen tcp ADDR:" or "dial tcp ADDR:" prefix a
// *net.OpError adds, since the report names the address already.
func innerError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err.Error()
		}
		return op.Err.Error()
	}
	return err.Error()
}

// dialError explains a failed connection in a few words.
func dialError(ctx context.Context, err error, timeout time.Duration) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable (no route; for IPv6: does this host have IPv6?)"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %v", timeout)
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return "cancelled"
	case errors.As(err, &dns):
		return "DNS: " + dns.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer within %v", timeout)
	}
	return innerError(err)
}

// probe is one TCP connection attempt.
type probe struct {
	addr  string
	label string // what addr is, e.g. "DC 2"
	took  time.Duration
	local net.Addr // of the connection, if it was made
	err   string   // "" = connected
}

// dialAll connects to every address at once, each bounded by ctx, and
// closes each connection as soon as it is made.
func (r *runner) dialAll(ctx context.Context, ps []probe) {
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() {
			p := &ps[i]
			start := time.Now()
			conn, err := r.cfg.Dialer(ctx, "tcp", p.addr)
			p.took = time.Since(start)
			if err != nil {
				p.err = dialError(ctx, err, r.cfg.Timeout)
				return
			}
			p.local = conn.LocalAddr()
			conn.Close()
		})
	}
	wg.Wait()
}

// summarize judges probes: all reachable OK, some Warn, none Fail. It
// returns a summary and one line per probe, each line starting with "\n".
func summarize(what string, ps []probe) (st Status, summary, lines string) {
	ok := 0
	var lat []time.Duration
	for _, p := range ps {
		if p.err == "" {
			ok++
			lat = append(lat, p.took)
		}
	}
	st = OK
	switch {
	case ok == 0:
		st = Fail
	case ok < len(ps):
		st = Warn
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d %s reachable", ok, len(ps), what)
	if len(lat) > 0 {
		slices.Sort(lat)
		fmt.Fprintf(&b, ", median connect %s", fmtDur(lat[len(lat)/2]))
	}
	summary = b.String()
	b.Reset()
	lw, aw := 0, 0
	for _, p := range ps {
		lw, aw = max(lw, len(p.label)), max(aw, len(p.addr))
	}
	for _, p := range ps {
		res := fmtDur(p.took)
		if p.err != "" {
			res = "unreachable: " + p.err
		}
		fmt.Fprintf(&b, "\n%-*s  %-*s  %s", lw, p.label, aw, p.addr, res)
	}
	return st, summary, b.String()
}

// fmtDur formats a latency or duration for the report.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// addrOf returns the IP of a net.Addr, if it has one.
func addrOf(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap(), err == nil
}
