package proxyconf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// telegramConf has the shape of getProxyConfig's output (§6.2).
const telegramConf = `# force_probability 10 10
default 2;
proxy_for 1 149.154.175.50:8888;
proxy_for -1 149.154.175.50:8888;
proxy_for 2 149.154.161.144:8888;
proxy_for -2 149.154.161.144:8888;
proxy_for 3 149.154.175.100:8888;
proxy_for -3 149.154.175.100:8888;
proxy_for 4 91.108.4.195:8888;
proxy_for 4 91.108.4.209:8888;
proxy_for 4 91.108.4.133:8888;
proxy_for -4 149.154.165.109:8888;
proxy_for 5 91.108.56.100:8888;
proxy_for -5 91.108.56.183:8888;
proxy_for 203 91.105.192.110:443;
`

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("proxy-multi.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseTelegram(t *testing.T) {
	c := mustParse(t, telegramConf)
	var ids []int
	for _, cl := range c.Clusters() {
		ids = append(ids, cl.ID)
	}
	if want := []int{1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 203}; !slices.Equal(ids, want) {
		t.Errorf("clusters %v, want %v", ids, want)
	}
	if got, want := c.Targets(4), []string{"91.108.4.195:8888", "91.108.4.209:8888", "91.108.4.133:8888"}; !slices.Equal(got, want) {
		t.Errorf("Targets(4) = %q, want %q", got, want)
	}
	if got := c.Targets(-5); !slices.Equal(got, []string{"91.108.56.183:8888"}) {
		t.Errorf("Targets(-5) = %q", got)
	}
	if got := c.Targets(7); got != nil {
		t.Errorf("Targets(7) = %q", got)
	}
	if c.Default() != 2 || c.MinConnections() != 4 || c.MaxConnections() != 8 {
		t.Errorf("default %d, connections %d..%d", c.Default(), c.MinConnections(), c.MaxConnections())
	}
	for dc, want := range map[int]int{1: 1, -1: -1, 203: 203, 7: 2, -7: 2, 10002: 2} {
		if cl, ok := c.Lookup(dc); !ok || cl.ID != want {
			t.Errorf("Lookup(%d) = %d, %v, want %d", dc, cl.ID, ok, want)
		}
	}
}

func TestParseIPv6(t *testing.T) {
	c := mustParse(t, "default 2;\nproxy_for 1 [2001:b28:f23d:f001::d]:8888;\n"+
		"proxy_for 2 [2001:067c:04e8:f002:0:0:0:d]:80;\nproxy_for 2 [::ffff:1.2.3.4]:1;\n")
	if got := c.Targets(1); !slices.Equal(got, []string{"[2001:b28:f23d:f001::d]:8888"}) {
		t.Errorf("Targets(1) = %q", got)
	}
	if got := c.Targets(2); !slices.Equal(got, []string{"[2001:67c:4e8:f002::d]:80", "[::ffff:1.2.3.4]:1"}) {
		t.Errorf("Targets(2) = %q (want canonical form)", got)
	}
}

// TestParseSeparators checks where the grammar allows what.
func TestParseSeparators(t *testing.T) {
	c := mustParse(t, "\r\n\t # comment ; proxy_for 9 9.9.9.9:9;\n"+
		"proxy_for\t-3\t  a-b_c.example # comment\n  :\t2 # comment\n ;"+ // ':' and ';' may follow line ends
		"proxy 1.1.1.1:1;proxy1.1.1.2:1;"+ // keywords are prefixes
		"default-3;max_connections 1000;min_connections 1000;timeout 10;")
	want := &Config{
		clusters: []Cluster{
			{ID: -3, Targets: []string{"a-b_c.example:2"}},
			{ID: 0, Targets: []string{"1.1.1.1:1", "1.1.1.2:1"}},
		},
		index:    map[int]int{-3: 0, 0: 1},
		def:      -3,
		minConns: 1000,
		maxConns: 1000,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestParseDefault(t *testing.T) {
	c := mustParse(t, "proxy 1.1.1.1:1;\nproxy_for 2 2.2.2.2:2;")
	if cl, ok := c.Lookup(5); !ok || cl.ID != 0 {
		t.Errorf("without default: Lookup(5) = %+v, %v; want cluster 0, as the official", cl, ok)
	}
	c = mustParse(t, "proxy_for 2 2.2.2.2:2;")
	if cl, ok := c.Lookup(5); ok {
		t.Errorf("no default cluster: Lookup(5) = %+v", cl)
	}
	c = mustParse(t, "default 7; proxy_for 2 2.2.2.2:2;")
	if cl, ok := c.Lookup(5); ok || c.Default() != 7 {
		t.Errorf("default without cluster: Lookup(5) = %+v, %v", cl, ok)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"missing ';'", "default 2;\nproxy_for 1 1.1.1.1:1\nproxy_for 2 2.2.2.2:2;\n", 2, "expected ';'"},
		{"missing ';' at end", "proxy_for 1 1.1.1.1:1;\ndefault 2 # comment\n\n", 2, "expected ';'"},
		{"extra word", "proxy_for 1 1.1.1.1:1;\n\ndefault 2 3;", 3, "expected ';'"},
		{"missing port", "proxy_for 1 1.1.1.1;", 1, "expected ':'"},
		{"port 0", "proxy_for 1 1.1.1.1:0;", 1, "expected port number"},
		{"port sign", "proxy_for 1 1.1.1.1:+80;", 1, "expected port number"},
		{"port too big", "#\n#\nproxy_for 1 1.1.1.1:65536;", 3, "port 65536 out of range"},
		{"port on next line", "proxy_for 1 1.1.1.1:\n80;", 1, "expected port number"},
		{"intermixed", "proxy_for 1 1.1.1.1:1;\nproxy_for 2 2.2.2.2:2;\nproxy_for 1 1.1.1.2:1;\n", 3, "lines for DC 1 are not consecutive"},
		{"intermixed 0", "proxy 1.1.1.1:1;\nproxy_for 2 2.2.2.2:2;\n\nproxy_for 0 1.1.1.2:1;\n", 4, "lines for DC 0 are not consecutive"},
		{"DC too big", "proxy_for 32768 1.1.1.1:1;", 1, "expected DC number in -32768..32767"},
		{"DC too small", "\nproxy_for -32769 1.1.1.1:1;", 2, "expected DC number in -32768..32767"},
		{"DC huge", "proxy_for 99999999999999999999999 1.1.1.1:1;", 1, "expected DC number in -32768..32767"},
		{"DC missing", "proxy_for 1.1.1.1:1;", 1, "expected space or tab after DC"},
		{"DC on next line", "proxy_for\n1 1.1.1.1:1;", 1, "expected DC number in -32768..32767"},
		{"bare minus", "default -;", 1, "expected DC number in -32768..32767"},
		{"newline after DC", "proxy_for 1\n1.1.1.1:1;", 1, "expected space or tab after DC"},
		{"host on next line", "proxy_for 1 \n1.1.1.1:1;", 1, "expected host"},
		{"host missing", "proxy :1;", 1, "expected host"},
		{"host too long", "proxy " + strings.Repeat("a", 64) + ":1;", 1, "host longer than 63 bytes"},
		{"bad IPv4", "proxy_for 1 1.1.1.256:1;", 1, "invalid IPv4 address 1.1.1.256"},
		{"bare IPv6", "proxy_for 1 2001:db8::1:1;", 1, "invalid IPv4 address 2001"},
		{"bad IPv6", "proxy_for 1 [2001:db8::g]:1;", 1, "invalid IPv6 address [2001:db8::g]"},
		{"IPv4 in brackets", "proxy_for 1 [1.2.3.4]:1;", 1, "invalid IPv6 address [1.2.3.4]"},
		{"unclosed bracket", "proxy_for 1 [::1:1;", 1, "expected ']' after [::1:1"},
		{"lone bracket", "proxy_for 1 [", 1, "expected ']' after ["},
		{"unknown", "proxy_for 1 1.1.1.1:1;\n  proxi 1.1.1.1:1;", 2, `unknown statement "proxi"`},
		{"empty statement", "proxy_for 1 1.1.1.1:1;\n;", 2, `unknown statement ";"`},
		{"NUL", "proxy_for 1 1.1.1.1:1;\x00", 1, `unknown statement "\x00"`},
		{"min above max", "min_connections 9;", 1, "min_connections 9 out of range 1..8 (max_connections)"},
		{"min 0", "min_connections 0;", 1, "min_connections 0 out of range 1..8 (max_connections)"},
		{"min missing", "min_connections;", 1, "expected number"},
		{"max below min", "max_connections 3;", 1, "max_connections 3 out of range 4 (min_connections)..1000"},
		{"max too big", "max_connections 1001;", 1, "max_connections 1001 out of range 4 (min_connections)..1000"},
		{"timeout", "timeout 9;", 1, "timeout 9 out of range 10..30000"},
		{"empty", "", 0, "no proxy_for or proxy statement"},
		{"no proxies", "# nothing\ndefault 2;\n", 0, "no proxy_for or proxy statement"},
	} {
		_, err := Parse("proxy-multi.conf", []byte(tc.text))
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != tc.line || se.Msg != tc.msg {
			t.Errorf("%s: %v, want line %d: %s", tc.name, err, tc.line, tc.msg)
		}
	}
}

func TestSyntaxErrorString(t *testing.T) {
	_, err := Parse("proxy-multi.conf", []byte("# x\n\n\n\n\n\n\n\n\n\n\nproxy_for 1 1.1.1.1:1\n"))
	if got := err.Error(); got != "proxy-multi.conf:12: expected ';'" {
		t.Errorf("error %q", got)
	}
	_, err = Parse("f", nil)
	if got := err.Error(); got != "f: no proxy_for or proxy statement" {
		t.Errorf("error %q", got)
	}
}

func TestParseLimits(t *testing.T) {
	var b strings.Builder
	for i := range MaxClusters {
		fmt.Fprintf(&b, "proxy_for %d 1.1.%d.%d:1;\n", i, i/256, i%256)
	}
	if _, err := Parse("f", []byte(b.String())); err != nil {
		t.Errorf("%d clusters: %v", MaxClusters, err)
	}
	b.WriteString("proxy_for 5000 1.1.1.1:1;\n")
	want := fmt.Sprintf("f:%d: more than %d clusters", MaxClusters+1, MaxClusters)
	if _, err := Parse("f", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("%d clusters: %v, want %s", MaxClusters+1, err, want)
	}

	b.Reset()
	for i := range MaxTargets {
		fmt.Fprintf(&b, "proxy_for %d 1.1.%d.%d:1;\n", i/8, i/256, i%256)
	}
	if _, err := Parse("f", []byte(b.String())); err != nil {
		t.Errorf("%d targets: %v", MaxTargets, err)
	}
	b.WriteString("proxy_for 511 1.1.1.1:1;\n")
	want = fmt.Sprintf("f:%d: more than %d targets", MaxTargets+1, MaxTargets)
	if _, err := Parse("f", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("%d targets: %v, want %s", MaxTargets+1, err, want)
	}

	big := []byte(telegramConf + strings.Repeat("#", MaxFileSize-len(telegramConf)))
	if _, err := Parse("f", big); err != nil {
		t.Errorf("file of %d bytes: %v", len(big), err)
	}
	want = fmt.Sprintf("f: file of %d bytes, the limit is %d", MaxFileSize+1, MaxFileSize)
	if _, err := Parse("f", append(big, '\n')); err == nil || err.Error() != want {
		t.Errorf("file of %d bytes: %v", len(big)+1, err)
	}
}

func TestString(t *testing.T) {
	for _, text := range []string{
		telegramConf,
		"min_connections 1; max_connections 2; proxy 1.1.1.1:1;",
		"max_connections 20; min_connections 10; proxy_for 1 [::1]:1;",
		"min_connections 2; proxy_for 1 h:1; proxy_for -1 h:1;",
	} {
		c := mustParse(t, text)
		s := c.String()
		again := mustParse(t, s)
		if !reflect.DeepEqual(c, again) {
			t.Errorf("%q printed as %q parses to %+v", text, s, again)
		}
	}
	want := "default 2;\nproxy_for 1 149.154.175.50:8888;\n"
	if got := mustParse(t, "# x\ndefault 2; proxy_for 1 149.154.175.50:8888;").String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
