package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mtproxy-go/mtproxy/codec/faketls"
)

// probeTries is the number of connections of the reply-shape probe; the
// proxy itself uses 20 at start.
const probeTries = 3

// minAppDataLen mirrors cmd/mtproxy: a first application-data record
// shorter than this is not copied, the proxy uses a default shape.
const minAppDataLen = 512

// checkFronting does a TLS handshake with the fronted site, as a prober
// relayed there would, and then learns its reply shape as the proxy does
// at start.
func (r *runner) checkFronting(ctx context.Context) Result {
	addr := r.cfg.FrontingAddr
	if addr == "" {
		return Result{Status: Skip, Detail: "no fake TLS (-D not given)"}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("fronting address %q: want HOST:PORT", addr)}
	}
	sni := r.cfg.Domain
	if sni == "" {
		sni = host
	}
	if self := r.frontsItself(ctx, addr); self != "" {
		return Result{Status: Fail, Detail: self}
	}

	conn, err := r.cfg.Dialer(ctx, "tcp", addr)
	if err != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("%s unreachable (%s): probers and wrong clients relayed there would meet a dead site", addr, dialError(ctx, err, r.cfg.Timeout))}
	}
	defer conn.Close()
	// The certificate is verified here, as crypto/tls would with
	// InsecureSkipVerify false, but its failure is recorded rather than
	// ending the handshake, so that the version is still learned.
	var certErr error
	tc := tls.Client(conn, &tls.Config{
		ServerName:         sni,
		MinVersion:         tls.VersionTLS10,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			certErr = verifyCert(cs.PeerCertificates, sni, r.cfg.RootCAs)
			return nil
		},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("TLS handshake with %s (SNI %s) failed: %s", addr, sni, httpError(ctx, err, r.cfg.Timeout))}
	}
	cs := tc.ConnectionState()
	tc.Close()

	st := OK
	detail := fmt.Sprintf("%s (SNI %s): %s", addr, sni, tls.VersionName(cs.Version))
	if cs.Version != tls.VersionTLS13 {
		st = Warn
		detail += ", not TLS 1.3: the proxy's fake-TLS answer (TLS 1.3) will not match the site's; front a TLS 1.3 site"
	}
	if certErr != nil {
		st = Warn
		detail += "; certificate not valid for " + sni + ": " + certErr.Error()
	} else {
		detail += fmt.Sprintf(", certificate valid until %s", cs.PeerCertificates[0].NotAfter.UTC().Format(time.DateOnly))
	}
	if cs.Version != tls.VersionTLS13 {
		return Result{Status: st, Detail: detail}
	}
	if r.custom {
		// Probe dials on its own; a custom dialer is there to keep every
		// connection of the doctor on it.
		return Result{Status: st, Detail: detail + "; reply shape not probed (custom dialer)"}
	}
	shape, err := faketls.Probe(ctx, addr, sni, probeTries)
	switch {
	case err != nil:
		st = Warn
		detail += "; reply shape not learned, the proxy will answer with a default one: " + err.Error()
	case shape.AppDataLen < minAppDataLen:
		detail += fmt.Sprintf("; first encrypted record of %d bytes (several records, as Go and Caddy send), so the proxy uses a default reply length", shape.AppDataLen)
	default:
		order := "key_share first"
		if shape.SupportedVersionsFirst {
			order = "supported_versions first"
		}
		detail += fmt.Sprintf("; reply shape: %s, first encrypted record %d±%d bytes", order, shape.AppDataLen, shape.Jitter)
	}
	return Result{Status: st, Detail: detail}
}

// verifyCert verifies a chain for name as crypto/tls does.
func verifyCert(chain []*x509.Certificate, name string, roots *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(opts)
	return err
}

// frontsItself reports, as a sentence, when addr is this very proxy: the
// same port as a listen address, on an address of this host. That happens
// when the domain's DNS points at the proxy and --fronting is not given;
// every relayed connection would loop back into the proxy.
func (r *runner) frontsItself(ctx context.Context, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	var listenHosts []string
	for _, l := range r.cfg.Listen {
		if lh, lp, err := net.SplitHostPort(l); err == nil && lp == port {
			listenHosts = append(listenHosts, lh)
		}
	}
	if len(listenHosts) == 0 {
		return ""
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = append(ips, ip.Unmap())
	} else if !r.custom {
		// Only with the default dialer: a custom one may resolve
		// differently, or not at all.
		found, _ := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		for _, ip := range found {
			ips = append(ips, ip.Unmap())
		}
	}
	local := localAddrs()
	for _, ip := range ips {
		for _, lh := range listenHosts {
			lip, err := netip.ParseAddr(lh)
			wildcard := lh == "" || err == nil && lip.IsUnspecified()
			if wildcard && (ip.IsLoopback() || local[ip]) || err == nil && lip.Unmap() == ip {
				return fmt.Sprintf("%s is this proxy (%s is an address it listens on): every relayed connection would loop back into it; give --fronting the real site's address", addr, ip)
			}
		}
	}
	return ""
}

// localAddrs returns the addresses of this host's interfaces.
func localAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr().Unmap()] = true
		}
	}
	return m
}
