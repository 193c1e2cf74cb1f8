package secret

import (
	"net/url"
	"strconv"
)

// Links returns the tg:// and https://t.me/ links that add the proxy to a
// client. The secret is given in hex, which every client version accepts.
// host is an IP literal or DNS name; an IPv6 literal goes without brackets.
func Links(host string, port int, s Secret) (tg, tme string) {
	q := "server=" + url.QueryEscape(host) +
		"&port=" + strconv.Itoa(port) +
		"&secret=" + url.QueryEscape(s.Hex())
	return "tg://proxy?" + q, "https://t.me/proxy?" + q
}
