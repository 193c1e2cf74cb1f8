package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"

	qrcode "github.com/skip2/go-qrcode"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// A clientLink is one way to hand a user's secret to a client: one mode,
// one port, one text encoding.
type clientLink struct {
	user     string
	secret   secret.Secret // with the mode (and domain) of this link
	port     int
	encoding string // "hex" or "base64"
	text     string // the secret as it appears in the link
	tg, tme  string
}

// clientLinks lists every link the proxy serves (protocol.md §1): for each
// user, ee with each -D domain in fake-TLS mode, dd and classic otherwise
// or alongside with --allow-classic; for each port; each with the secret
// in hex and in URL-safe base64. The mode, domain and port vary slowest to
// fastest after the user; hex comes before base64.
func clientLinks(o *options, host string) []clientLink {
	var links []clientLink
	for _, u := range o.users {
		var modes []secret.Secret
		for _, d := range o.domains {
			modes = append(modes, u.secret.WithMode(secret.FakeTLS, d))
		}
		if len(o.domains) == 0 || o.allowClassic {
			modes = append(modes, u.secret.WithMode(secret.Secure, ""), u.secret.WithMode(secret.Classic, ""))
		}
		for _, s := range modes {
			for _, p := range o.ports {
				for _, enc := range []string{"hex", "base64"} {
					text := s.Hex()
					if enc == "base64" {
						text = s.Base64()
					}
					tg, tme := proxyLinks(host, p, text)
					links = append(links, clientLink{user: u.name, secret: s, port: p, encoding: enc, text: text, tg: tg, tme: tme})
				}
			}
		}
	}
	return links
}

// proxyLinks is secret.Links for a secret in any text form.
func proxyLinks(host string, port int, text string) (tg, tme string) {
	q := "server=" + url.QueryEscape(host) + "&port=" + strconv.Itoa(port) + "&secret=" + url.QueryEscape(text)
	return "tg://proxy?" + q, "https://t.me/proxy?" + q
}

// modeName describes a link's mode for people.
func modeName(s secret.Secret) string {
	switch s.Mode {
	case secret.FakeTLS:
		return "fake TLS (ee) as " + s.Domain
	case secret.Secure:
		return "padded (dd)"
	}
	return "classic"
}

// logLinks logs every link, as `mtproxy link` prints them, and warns about
// secrets whose form the proxy will not serve as given.
func logLinks(log *zap.Logger, o *options, users map[string]bool) {
	for _, u := range o.users {
		if users != nil && !users[u.name] {
			continue
		}
		if u.secret.Mode == secret.FakeTLS && len(o.domains) == 0 {
			log.Warn("an ee secret needs -D DOMAIN to serve fake TLS; without it its key serves classic and dd clients",
				zap.String("user", u.name))
		}
	}
	for _, l := range clientLinks(o, publicHost(o)) {
		if users != nil && !users[l.user] {
			continue
		}
		log.Info("client link", zap.String("user", l.user), zap.Stringer("mode", l.secret.Mode),
			zap.String("encoding", l.encoding), zap.String("tg", l.tg), zap.String("https", l.tme))
	}
}

// printLinks writes the links for people: a heading per user, mode and
// port, then the links with the secret in hex and in base64, and with qr a
// QR code of the https link with the hex secret.
func printLinks(w io.Writer, o *options, host string, qr bool) error {
	var last *clientLink
	for _, l := range clientLinks(o, host) {
		if last == nil || last.user != l.user || last.secret != l.secret || last.port != l.port {
			if last != nil {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "# %s: %s, port %d\n", l.user, modeName(l.secret), l.port)
			if qr {
				code, err := qrText(l.tme)
				if err != nil {
					return err
				}
				fmt.Fprint(w, code)
			}
		}
		fmt.Fprintf(w, "%s\n%s\n", l.tg, l.tme)
		last = &l
	}
	return nil
}

// qrText draws a QR code of text in half-block characters, two rows of
// modules per line, light modules as blocks: it reads on a dark terminal,
// and on a light one as an inverted code, which phone cameras also read.
func qrText(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("QR code: %w", err)
	}
	return q.ToSmallString(false), nil
}

// publicHost is the host the links name: --public-host, else the bind
// address unless it is a wildcard, else this machine's first global IPv4,
// else 127.0.0.1.
func publicHost(o *options) string {
	if o.publicHost != "" {
		return o.publicHost
	}
	if ip := net.ParseIP(o.address); ip != nil && !ip.IsUnspecified() {
		return o.address
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
