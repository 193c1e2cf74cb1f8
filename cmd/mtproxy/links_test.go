package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// The protocol.md §1.2 example: key 00112233445566778899aabbccddeeff with
// the domain example.com.
const eeExample = "ee00112233445566778899aabbccddeeff6578616d706c652e636f6d"

func linkSecrets(t *testing.T, out string) (hexes, b64s []string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "tg://proxy?") {
			continue
		}
		q, err := url.ParseQuery(strings.TrimPrefix(line, "tg://proxy?"))
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("server") != "203.0.113.5" || q.Get("port") != "443" {
			t.Errorf("link %s: wrong server or port", line)
		}
		s := q.Get("secret")
		if _, err := hex.DecodeString(s); err == nil {
			hexes = append(hexes, s)
		} else {
			b64s = append(b64s, s)
		}
		// Every link has its t.me twin with the same query.
		if !strings.Contains(out, "https://t.me/proxy?"+strings.TrimPrefix(line, "tg://proxy?")+"\n") {
			t.Errorf("no https twin of %s", line)
		}
	}
	return hexes, b64s
}

func b64(t *testing.T, hexText string) string {
	b, err := hex.DecodeString(hexText)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestLinkForms: the link subcommand prints protocol.md §1's forms: classic
// and dd without -D, ee with each domain (its hex ending in the domain's
// hex) with -D, both with --allow-classic, each in hex and base64url.
func TestLinkForms(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hex  []string
	}{
		{"classic and dd", nil, []string{"dd" + key, key}},
		{"fake TLS only", []string{"-D", "example.com"}, []string{eeExample}},
		{"fake TLS with classic", []string{"-D", "example.com", "-D", "cdn.example.org", "--allow-classic"},
			[]string{eeExample, "ee" + key + hex.EncodeToString([]byte("cdn.example.org")), "dd" + key, key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"link", "-S", key, "-H", "443", "--public-host", "203.0.113.5"}, tc.args...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			hexes, b64s := linkSecrets(t, stdout.String())
			if !slices.Equal(hexes, tc.hex) {
				t.Errorf("hex secrets %q, want %q", hexes, tc.hex)
			}
			var want []string
			for _, h := range tc.hex {
				want = append(want, b64(t, h))
			}
			if !slices.Equal(b64s, want) {
				t.Errorf("base64 secrets %q, want %q", b64s, want)
			}
			for _, s := range b64s {
				switch {
				case strings.HasPrefix(s, "3"), strings.HasPrefix(s, "7"), len(s) == 22: // dd, ee, classic (§1.2)
				default:
					t.Errorf("base64 secret %q: want a dd (3…), ee (7…) or 22-character classic form", s)
				}
				if p, err := secret.Parse(s); err != nil || p.Key != mustKey(t, key) {
					t.Errorf("base64 secret %q parses to %v, %v", s, p, err)
				}
			}
			if strings.Count(stdout.String(), "# #1: ") != len(tc.hex) {
				t.Errorf("want one heading per mode naming the user:\n%s", stdout.String())
			}
		})
	}
}

// TestLinksLoggedAtStart: the start-up log carries the same links as the
// link subcommand, with the user's name.
func TestLinksLoggedAtStart(t *testing.T) {
	p := writeConfig(t, "public-host = \"203.0.113.5\"\nhttp-ports = 443\n[users]\nalice = \""+key+"\"\nbob = \""+keyB+"\"\n")
	o, err := loadOptions("run", []string{"--config", p})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	logLinks(zap.New(core), o, nil)
	var stdout bytes.Buffer
	if code := run([]string{"link", "--config", p}, &stdout, io.Discard); code != 0 {
		t.Fatal("link failed")
	}
	entries := logs.FilterMessage("client link").All()
	if len(entries) != 8 { // 2 users × (dd, classic) × (hex, base64)
		t.Fatalf("%d links logged, want 8", len(entries))
	}
	users := map[string]int{}
	for _, e := range entries {
		m := e.ContextMap()
		users[m["user"].(string)]++
		if !strings.Contains(stdout.String(), m["tg"].(string)+"\n"+m["https"].(string)+"\n") {
			t.Errorf("logged link %s not printed by link", m["tg"])
		}
	}
	if users["alice"] != 4 || users["bob"] != 4 {
		t.Errorf("links per user %v", users)
	}
	// Only the chosen users, after a reload.
	logs.TakeAll()
	logLinks(zap.New(core), o, map[string]bool{"bob": true})
	for _, e := range logs.FilterMessage("client link").All() {
		if e.ContextMap()["user"] != "bob" {
			t.Errorf("link of %v logged", e.ContextMap()["user"])
		}
	}
}

// TestLinkQR: --qr draws, under each heading, a QR code of the t.me link
// with the hex secret; decoding the half blocks gives the code of that URL.
func TestLinkQR(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"link", "--qr", "-S", key, "-D", "example.com", "-H", "443", "--public-host", "203.0.113.5"}, &stdout, io.Discard); code != 0 {
		t.Fatal("link failed")
	}
	var rows []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l != "" && strings.Trim(l, " █▀▄") == "" {
			rows = append(rows, l)
		}
	}
	want, err := qrcode.New("https://t.me/proxy?server=203.0.113.5&port=443&secret="+eeExample, qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	bits := want.Bitmap()
	if len(rows) != (len(bits)+1)/2 {
		t.Fatalf("%d QR rows, want %d for %d modules", len(rows), (len(bits)+1)/2, len(bits))
	}
	// Light modules are drawn: █ both, ▀ top, ▄ bottom; bits are true for dark.
	for y, row := range rows {
		for x, r := range []rune(row) {
			top := r == '█' || r == '▀'
			bottom := r == '█' || r == '▄'
			if top == bits[2*y][x] || 2*y+1 < len(bits) && bottom == bits[2*y+1][x] {
				t.Fatalf("module at %d,%d differs", x, 2*y)
			}
		}
	}
}

func TestLinkNeedsSecrets(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"link"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "no secrets") {
		t.Fatalf("exit %d, %s", code, stderr.String())
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[[16]byte]bool{}
	for _, tc := range []struct {
		args   []string
		mode   secret.Mode
		domain string
	}{
		{nil, secret.Secure, ""},
		{nil, secret.Secure, ""},
		{[]string{"--tls", "www.example.com"}, secret.FakeTLS, "www.example.com"},
	} {
		var stdout bytes.Buffer
		if code := run(append([]string{"generate-secret"}, tc.args...), &stdout, io.Discard); code != 0 {
			t.Fatalf("%q: exit %d", tc.args, code)
		}
		out := stdout.String()
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("%q: output %q, want one line", tc.args, out)
		}
		s, err := secret.Parse(strings.TrimSpace(out))
		if err != nil || s.Mode != tc.mode || s.Domain != tc.domain {
			t.Fatalf("%q: %q parses to %+v, %v", tc.args, out, s, err)
		}
		if seen[s.Key] || s.Key == [16]byte{} {
			t.Fatalf("key %x repeated", s.Key)
		}
		seen[s.Key] = true
		// The proxy takes it as is.
		if o, err := loadOptions("run", []string{"-S", strings.TrimSpace(out)}); err != nil || o.users[0].secret.Key != s.Key {
			t.Fatalf("-S %s: %v", out, err)
		}
	}
	for _, bad := range [][]string{{"--tls", "bad_domain"}, {"--tls"}, {"extra"}, {"--nope"}} {
		var stderr bytes.Buffer
		if code := run(append([]string{"generate-secret"}, bad...), io.Discard, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, %q", bad, code, stderr.String())
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"help"}, &stdout, io.Discard); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, want := range []string{"mtproxy link", "generate-secret", "doctor", "-H, --http-ports ports", "--drain-timeout duration",
		"-l, --log, --log-file file", "-6, --ipv6\n", "--config file", "SIGHUP"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	stdout.Reset()
	if run([]string{"help", "link"}, &stdout, io.Discard) != 0 || !strings.Contains(stdout.String(), "--qr") {
		t.Error("help link does not show --qr")
	}
	stdout.Reset()
	if run([]string{"help", "generate-secret"}, &stdout, io.Discard) != 0 || !strings.Contains(stdout.String(), "-tls domain") ||
		strings.Contains(stdout.String(), "http-ports") {
		t.Errorf("help generate-secret:\n%s", stdout.String())
	}
	if run([]string{"help", "nope"}, io.Discard, io.Discard) != 2 {
		t.Error("help for an unknown command succeeded")
	}
	// -h is the official's: the usage on stderr and status 2.
	var stderr bytes.Buffer
	if run([]string{"-h"}, io.Discard, &stderr) != 2 || !strings.Contains(stderr.String(), "--http-ports") {
		t.Error("-h")
	}
}
