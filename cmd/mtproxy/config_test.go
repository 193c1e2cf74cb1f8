package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// writeConfig writes a config file into a fresh directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mtproxy.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const keyB = "0123456789abcdef0123456789abcdef"

func TestConfigFile(t *testing.T) {
	p := writeConfig(t, `
http-ports = [443, 8443]
address = "127.0.0.1"
slaves = 3
max_special_connections = 1000
handshake-timeout = "2s"
drain_timeout = "0s"
allow-classic = true
domain = "example.com"
dc = ["2=127.0.0.1:9999", "-2=[::1]:9998"]
verbosity = 2
log-file = "logs/mtproxy.log"
http-stats = true
port = 8888
ipv6 = false
proxy-tag = "0123456789abcdef0123456789abcdef"
aes-pwd = "/etc/mtproxy/proxy-secret"
proxy-multi-conf = "proxy-multi.conf"
mtproto-secret = "`+key+`"

[users]
alice = "dd`+key+`"
bob = "`+secret.Secret{Mode: secret.FakeTLS, Key: mustKey(t, keyB), Domain: "example.com"}.Base64()+`"
`)
	o, err := loadOptions("run", []string{"--config", p})
	if err == nil && (len(o.users) != 3 || o.users[0].name != "alice" || o.users[1].name != "bob" || o.users[2].name != "#1") {
		t.Fatalf("users %+v, want alice, bob, then the unnamed -S as #1", o.users)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"ports", len(o.ports) == 2 && o.ports[0] == 443 && o.ports[1] == 8443},
		{"address", o.address == "127.0.0.1"},
		{"slaves", o.slaves == 3},
		{"max connections (underscores)", o.maxConnections == 1000},
		{"handshake timeout", o.handshakeTimeout == 2*time.Second},
		{"drain timeout 0", o.drainTimeout == 0},
		{"fake TLS", o.allowClassic && len(o.domains) == 1 && o.fronting == "example.com:443"},
		{"dc", len(o.dcOverrides) == 2},
		{"verbosity", o.verbosity == 2},
		{"relative log file from the config's directory", o.logFile == filepath.Join(dir, "logs/mtproxy.log")},
		{"absolute path kept", o.proxySecret == "/etc/mtproxy/proxy-secret"},
		{"proxy-multi-conf", o.proxyConfig == filepath.Join(dir, "proxy-multi.conf") && o.middle},
		{"stats", o.httpStats && o.statsPort == "8888"},
		{"tag", len(o.proxyTag) == 16},
		{"users' keys", o.users[0].secret.Key == mustKey(t, key) && o.users[1].secret.Key == mustKey(t, keyB) &&
			o.users[1].secret.Mode == secret.FakeTLS},
	} {
		if !c.ok {
			t.Errorf("%s: options %+v", c.what, o)
		}
	}
	if names := o.keyNames(); names[mustKey(t, key)] != "alice" || names[mustKey(t, keyB)] != "bob" {
		t.Errorf("key names %v", names)
	}
	if keys := o.keys(); len(keys) != 2 {
		t.Errorf("keys %x: want the two distinct ones", keys)
	}
}

func mustKey(t *testing.T, hexKey string) [16]byte {
	t.Helper()
	s, err := secret.Parse(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return s.Key
}

// TestConfigOverrides: the command line beats the file, a list flag there
// replaces the file's list, and -S replaces the file's users too.
func TestConfigOverrides(t *testing.T) {
	p := writeConfig(t, `
http-ports = [443, 8443]
slaves = 3
handshake-timeout = "2s"
domain = ["a.example.com", "b.example.com"]
[users]
alice = "`+key+`"
`)
	o, err := loadOptions("run", []string{"-M", "5", "--config", p, "-H", "9443", "--domain", "c.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if o.slaves != 5 || len(o.ports) != 1 || o.ports[0] != 9443 || len(o.domains) != 1 || o.domains[0] != "c.example.com" {
		t.Errorf("command line did not override: slaves %d ports %v domains %v", o.slaves, o.ports, o.domains)
	}
	if o.handshakeTimeout != 2*time.Second || len(o.users) != 1 || o.users[0].name != "alice" {
		t.Errorf("file values lost: timeout %v users %+v", o.handshakeTimeout, o.users)
	}
	o, err = loadOptions("run", []string{"--config", p, "-S", keyB})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.users) != 1 || o.users[0].name != "#1" || o.users[0].secret.Key != mustKey(t, keyB) {
		t.Errorf("-S on the command line: users %+v, want only it", o.users)
	}
	// The short and long names of a flag are one setting.
	o, err = loadOptions("run", []string{"--config", p, "--slaves", "7"})
	if err != nil || o.slaves != 7 {
		t.Errorf("--slaves over the file: %v, %d", err, o.slaves)
	}
	// A positional proxy-multi.conf overrides the file's.
	p2 := writeConfig(t, `proxy-multi-conf = "/a.conf"`)
	o, err = loadOptions("run", []string{"--config", p2, "/b.conf"})
	if err != nil || o.proxyConfig != "/b.conf" {
		t.Errorf("positional over the file: %v, %q", err, o.proxyConfig)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string
	}{
		{"slaves = 2\n\nno-such-key = 1\n", `:3: unknown key "no-such-key"`},
		{"slaves = 2\n[server]\nport = 1\n", `:2: unknown key "server"`},
		{"S = \"" + key + "\"\n", "use the long name mtproto-secret"},
		{"Slaves = 2\n", `:1: unknown key "Slaves"`},
		{"config = \"x.toml\"\n", "cannot include another"},
		{"slaves = 1\nslaves = 2\n", ":2:"}, // TOML itself refuses duplicates
		{"slaves = 1\n\nslaves_ = 2\n", `unknown key "slaves_"`},
		{"http-ports = 1\nhttp_ports = 2\n", ":2: http_ports: sets http-ports again"},
		{"\nslaves = \"x\"\n", ":2: slaves: not a number"},
		{"\n\nhttp-ports = [0]\n", ":3: http-ports: bad port"},
		{"handshake-timeout = 10\n", ":1: handshake-timeout: want a duration string"},
		{"allow-classic = \"yes\"\n", ":1: allow-classic: want true or false"},
		{"address = [\"127.0.0.1\"]\n", "address: takes one value, not an array"},
		{"address = 1.5\n", "address: want a string, got a float"},
		{"[[user]]\nname = \"alice\"\n", "named users go in a [users] table"},
		{"[users]\nalice = \"" + key + "\"\n\nbob = \"nothex\"\n", ":4: users.bob: secret:"},
		{"[users]\nalice = 5\n", ":2: users.alice: want a secret string"},
		{"[users]\n\"bad name\" = \"" + key + "\"\n", `:2: users."bad name": user name`},
		{"users = 5\n", "want a table"},
		{"[users]\nalice = \"" + key + "\"\nbob = \"dd" + key + "\"\n", "users alice and bob have the same key"},
		{"slaves = \n", ":1:"}, // TOML syntax error
	} {
		p := writeConfig(t, tc.text)
		_, err := loadOptions("run", []string{"--config", p})
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want a usage error containing %q", tc.text, err, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), p+":") {
			t.Errorf("%q: err %v does not start with the file name", tc.text, err)
		}
	}
	if _, err := loadOptions("run", []string{"--config", filepath.Join(t.TempDir(), "missing.toml")}); err == nil ||
		!strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: %v", err)
	}
	// A wrong value in the file counts even when valid values precede it,
	// and the command line cannot hide a broken file.
	p := writeConfig(t, "slaves = 1\nbogus = 1\n")
	if _, err := loadOptions("run", []string{"--config", p, "-M", "2"}); err == nil {
		t.Error("unknown key accepted when the command line sets another key")
	}
}

// TestExampleConfig keeps mtproxy.example.toml loading, and mentioning
// every key the file may hold.
func TestExampleConfig(t *testing.T) {
	const path = "../../mtproxy.example.toml"
	o, err := loadOptions("run", []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.users) != 2 || o.users[0].name != "alice" || o.users[1].name != "bob" || len(o.ports) != 1 || o.ports[0] != 443 {
		t.Fatalf("example: users %+v ports %v", o.users, o.ports)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, _, idx := newFlagSet("run")
	for _, fi := range idx.order {
		if !fi.noFile && !strings.Contains(string(text), "\n# "+fi.canonical+" = ") &&
			!strings.Contains(string(text), "\n"+fi.canonical+" = ") {
			t.Errorf("example config does not show %s", fi.canonical)
		}
	}
	// Every commented-out setting loads when uncommented.
	var lines []string
	for _, l := range strings.Split(string(text), "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(l, "# "), " = "); ok && strings.HasPrefix(l, "# ") && idx.byName[k] != nil {
			l = strings.TrimPrefix(l, "# ")
		}
		lines = append(lines, l)
	}
	p := writeConfig(t, strings.Join(lines, "\n"))
	if _, err := loadOptions("run", []string{"--config", p}); err != nil {
		t.Fatalf("example with every setting uncommented: %v", err)
	}
}
