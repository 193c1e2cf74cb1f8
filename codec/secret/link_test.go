package secret

import (
	"net/url"
	"testing"
)

func TestLinks(t *testing.T) {
	key := exampleKey(t)
	tests := []struct {
		host    string
		port    int
		s       Secret
		wantTG  string
		wantTMe string
	}{
		{
			"proxy.example.org", 443, Secret{Key: key, Mode: FakeTLS, Domain: exampleDomain},
			"tg://proxy?server=proxy.example.org&port=443&secret=" + exampleEEHex,
			"https://t.me/proxy?server=proxy.example.org&port=443&secret=" + exampleEEHex,
		},
		{
			"203.0.113.7", 8443, Secret{Key: key, Mode: Secure},
			"tg://proxy?server=203.0.113.7&port=8443&secret=dd" + exampleKeyHex,
			"https://t.me/proxy?server=203.0.113.7&port=8443&secret=dd" + exampleKeyHex,
		},
		{
			"2001:db8::1", 443, Secret{Key: key},
			"tg://proxy?server=2001%3Adb8%3A%3A1&port=443&secret=" + exampleKeyHex,
			"https://t.me/proxy?server=2001%3Adb8%3A%3A1&port=443&secret=" + exampleKeyHex,
		},
		{
			"we&ird=host", 1, Secret{Key: key},
			"tg://proxy?server=we%26ird%3Dhost&port=1&secret=" + exampleKeyHex,
			"https://t.me/proxy?server=we%26ird%3Dhost&port=1&secret=" + exampleKeyHex,
		},
	}
	for _, tt := range tests {
		tg, tme := Links(tt.host, tt.port, tt.s)
		if tg != tt.wantTG {
			t.Errorf("tg link = %q, want %q", tg, tt.wantTG)
		}
		if tme != tt.wantTMe {
			t.Errorf("t.me link = %q, want %q", tme, tt.wantTMe)
		}
		// Whatever a URL parser makes of the link must give back the inputs.
		for _, link := range []string{tg, tme} {
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("server") != tt.host {
				t.Errorf("%s: server = %q, want %q", link, q.Get("server"), tt.host)
			}
			if s, err := Parse(q.Get("secret")); err != nil || s != tt.s {
				t.Errorf("%s: secret parses to %+v, %v", link, s, err)
			}
		}
	}
}
