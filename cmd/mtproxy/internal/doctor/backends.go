package doctor

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mtproxy-go/mtproxy/backend/refresh"
)

// checkDCs connects to DCs 1 to 5 (direct mode).
func (r *runner) checkDCs(ctx context.Context) Result {
	if r.cfg.Middle {
		return Result{Status: Skip, Detail: "middle-proxy mode: the middle proxies reach the DCs"}
	}
	family := "IPv4"
	if r.cfg.PreferIPv6 {
		family = "IPv6"
	}
	ps := make([]probe, 5)
	for i := range ps {
		id := i + 1
		addr, _ := r.cfg.DCs.Lookup(int16(id), r.cfg.PreferIPv6)
		ps[i] = probe{addr: addr, label: fmt.Sprintf("DC %d", id)}
	}
	r.dialAll(ctx, ps)
	st, summary, lines := summarize("DCs", ps)
	summary += " (" + family + " preferred)"
	if st == Fail {
		summary += "; check the firewall and routing"
		if r.cfg.PreferIPv6 {
			summary += ", or drop --prefer-ipv6 if this host has no IPv6"
		}
	}
	return Result{Status: st, Detail: summary + lines}
}

// checkMiddle loads the middle-proxy files and connects to every middle
// proxy in them (middle-proxy mode).
func (r *runner) checkMiddle(ctx context.Context) Result {
	if !r.cfg.Middle {
		return Result{Status: Skip, Detail: "direct mode"}
	}
	var rc refresh.Config
	if r.cfg.Refresh != nil {
		rc = *r.cfg.Refresh
	}
	if rc.ProxyConfig == (refresh.Source{}) {
		rc.ProxyConfig.URL = refresh.DefaultConfigURL
	}
	if rc.ProxySecret == (refresh.Source{}) {
		rc.ProxySecret.URL = refresh.DefaultSecretURL
	}
	// Load once, quietly, and apply nothing.
	rc.Interval, rc.Apply, rc.Logger = 0, nil, nil
	if rc.Client == nil {
		rc.Client = r.httpClient(false)
		rc.Client.CheckRedirect = nil
	}
	_, conf, secret, err := refresh.Load(ctx, &rc)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "refresh: ")
		msg = strings.Replace(msg, context.DeadlineExceeded.Error(), fmt.Sprintf("no answer within %v", r.cfg.Timeout), 1)
		return Result{Status: Fail, Detail: msg + "; the proxy would refuse to start"}
	}

	// One probe per middle proxy, labelled with the DCs it serves.
	var ps []probe
	index := map[string]int{}
	for _, cl := range conf.Clusters() {
		for _, t := range cl.Targets {
			i, ok := index[t]
			if !ok {
				i = len(ps)
				index[t] = i
				ps = append(ps, probe{addr: t, label: "DC"})
			}
			ps[i].label += fmt.Sprintf(" %d", cl.ID)
		}
	}
	r.dialAll(ctx, ps)
	st, summary, lines := summarize("middle proxies", ps)
	if hint := natHint(ps, r.cfg.NAT); hint != "" {
		st = max(st, Warn)
		summary += "; " + hint
	}
	files := fmt.Sprintf("\nproxy-multi.conf  %s: %s", rc.ProxyConfig, plural(len(conf.Clusters()), "DC"))
	if conf.Default() != 0 {
		files += fmt.Sprintf(", default DC %d", conf.Default())
	}
	files += fmt.Sprintf("\nproxy-secret      %s: %d bytes, key selector %s", rc.ProxySecret, len(secret), hex.EncodeToString(secret[:4]))
	return Result{Status: st, Detail: summary + files + lines}
}

// natHint warns when the middle proxies were reached from a private IPv4
// address that --nat-info does not map: they see another address than the
// one the proxy puts in the handshake keys, and refuse it.
func natHint(ps []probe, nat map[netip.Addr]netip.Addr) string {
	for _, p := range ps {
		if p.local == nil {
			continue
		}
		ip, ok := addrOf(p.local)
		if !ok || !ip.Is4() || !ip.IsPrivate() && !cgnat.Contains(ip) {
			continue
		}
		if _, mapped := nat[ip]; mapped {
			continue
		}
		return fmt.Sprintf("local address %s is private: behind NAT the middle proxies refuse the handshake unless --nat-info %s:PUBLIC-IP is given", ip, ip)
	}
	return ""
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")
