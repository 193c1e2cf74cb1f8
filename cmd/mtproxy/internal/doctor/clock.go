package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Clock skew thresholds. Middle proxies refuse an RPC nonce whose
// crypto_ts is more than 30 s off theirs (protocol.md §10); fake-TLS
// clients stamp their hellos with a time tdlib corrects against Telegram's,
// and the official and mtg allow them only 3 s ahead of the proxy (§4.4).
const (
	clockWarn = 2 * time.Second
	clockFail = 30 * time.Second
)

// httpClient returns a client that dials through the configured dialer,
// follows no redirect (one round trip is timed) and keeps no connection.
func (r *runner) httpClient(insecure bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			DialContext:       r.cfg.Dialer,
			TLSClientConfig:   &tls.Config{RootCAs: r.cfg.RootCAs, InsecureSkipVerify: insecure},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkClock compares the local clock with the Date header of ClockURL.
func (r *runner) checkClock(ctx context.Context) Result {
	u, err := url.Parse(r.cfg.ClockURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Result{Status: Warn, Detail: fmt.Sprintf("clock URL %q is not an http(s) URL; clock not checked", r.cfg.ClockURL)}
	}
	skew, note, err := r.skew(ctx, u.String(), false)
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		// A clock far off makes every certificate look expired or not yet
		// valid, which is exactly the case to report: the Date header is
		// only compared, never trusted for anything else, so read it
		// without verification.
		note = "; certificate not verified (" + certReason(cv.Err) + ")"
		skew, _, err = r.skew(ctx, u.String(), true)
	}
	if err != nil {
		return Result{Status: Warn, Detail: fmt.Sprintf("%s unreachable (%s); clock not checked (fake TLS and middle proxies need it right: keep NTP running)", u.Host, httpError(ctx, err, r.cfg.Timeout))}
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	abs := skew.Abs()
	detail := fmt.Sprintf("local clock %.1f s %s %s", abs.Seconds(), dir, u.Host) + note
	switch {
	case abs > clockFail:
		return Result{Status: Fail, Detail: detail + fmt.Sprintf(": over %v, middle proxies refuse the handshake and fake-TLS clients are refused; sync the clock (chrony, systemd-timesyncd)", clockFail)}
	case abs > clockWarn:
		return Result{Status: Warn, Detail: detail + fmt.Sprintf(": over %v, fake-TLS clients may be refused; enable NTP (chrony, systemd-timesyncd)", clockWarn)}
	}
	return Result{Status: OK, Detail: detail}
}

// skew returns local time minus the server's, from a HEAD request.
func (r *runner) skew(ctx context.Context, u string, insecure bool) (time.Duration, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, "", err
	}
	t0 := time.Now()
	resp, err := r.httpClient(insecure).Do(req)
	t1 := time.Now()
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	date := resp.Header.Get("Date")
	if date == "" {
		return 0, "", fmt.Errorf("no Date header in the answer (%s)", resp.Status)
	}
	srv, err := http.ParseTime(date)
	if err != nil {
		return 0, "", fmt.Errorf("bad Date header %q", date)
	}
	// The server stamped Date somewhere between sending and receiving,
	// and Date drops the fraction of its second: compare the middle of
	// the round trip with the middle of that second.
	local := t0.Add(t1.Sub(t0) / 2)
	skew := local.Sub(srv.Add(500 * time.Millisecond))
	note := ""
	if rtt := t1.Sub(t0); rtt > time.Second {
		note = fmt.Sprintf(" (±%.1f s: slow answer)", (rtt/2 + 500*time.Millisecond).Seconds())
	}
	return skew, note, nil
}

// httpError shortens an error from http.Client.Do.
func httpError(ctx context.Context, err error, timeout time.Duration) string {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err
	}
	return dialError(ctx, err, timeout)
}

// certReason says why a certificate did not verify.
func certReason(err error) string {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return "expired or not yet valid: " + inv.Detail
	}
	return err.Error()
}
