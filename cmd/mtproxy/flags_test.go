package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

const key = "00112233445566778899aabbccddeeff"

func TestParseFlagsOfficialNames(t *testing.T) {
	o, err := loadOptions("run", []string{
		"-H", "443,8443", "-S", key, "--mtproto-secret", "dd" + key,
		"-S", "ee" + key + "6578616d706c652e636f6d",
		"-M", "3", "-C", "1000", "-u", "nobody", "--address", "127.0.0.1", "-p", "8888",
		"--dc", "2=127.0.0.1:9999", "--dc=-2=[::1]:9998", "-vv", "--log-format", "json",
		"--idle-timeout", "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.ports) != 2 || o.ports[0] != 443 || o.ports[1] != 8443 {
		t.Errorf("ports %v", o.ports)
	}
	if len(o.secrets) != 3 || o.secrets[1].Mode != secret.Secure || o.secrets[2].Mode != secret.FakeTLS {
		t.Fatalf("secrets %+v", o.secrets)
	}
	for _, s := range o.secrets {
		if s.WithMode(secret.Classic, "").Hex() != key {
			t.Errorf("secret %s: key %x, want %s", s.Hex(), s.Key, key)
		}
	}
	if o.slaves != 3 || o.maxConnections != 1000 || o.user != "nobody" || o.address != "127.0.0.1" ||
		o.statsPort != "8888" || len(o.dcOverrides) != 2 || o.verbosity != 2 || o.logFormat != "json" ||
		o.idleTimeout != time.Minute {
		t.Errorf("options %+v", o)
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := loadOptions("run", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.ports) != 1 || o.ports[0] != 8443 || o.address != "0.0.0.0" || len(o.secrets) != 0 || !o.fastMode {
		t.Fatalf("defaults %+v", o)
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-S", "0011"}, "32 hex digits"},
		{[]string{"-S", strings.Repeat("zz", 16)}, "secret"},
		{[]string{"-H", "0"}, "bad port"},
		{[]string{"-H", "80,x"}, "bad port"},
		{[]string{"-M", "-1"}, "≥ 0"},
		{[]string{"--log-format", "xml"}, "console or json"},
		{[]string{"--dc", "2=nowhere"}, "--dc"},
		{[]string{"--dc", "x=127.0.0.1:1"}, "--dc"},
		{[]string{"-p", "stats"}, "port number"},
		{[]string{"--idle-timeout", "0s"}, "positive"},
		{[]string{"a.conf", "b.conf"}, "one proxy-multi.conf"},
		{[]string{"-P", "0011"}, "32 hex digits"},
		{[]string{"-P", "xyz"}, "not hex"},
		{[]string{"--nat-info", "10.0.0.1"}, "LOCAL:PUBLIC"},
		{[]string{"--nat-info", "10.0.0.1:::1"}, "LOCAL:PUBLIC"},
		{[]string{"--config-refresh", "-1s"}, "negative"},
		{[]string{"--no-such-flag"}, "not defined"},
		{strings.Fields(strings.Repeat("-S "+key+" ", 17)), "at most 16"},
	} {
		_, err := loadOptions("run", tc.args)
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestRunExitsTwoOnBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-S", "nothex"}, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "mtproxy: ") {
		t.Fatalf("no error message: %q", stderr.String())
	}
	if code := run([]string{"-h"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("-h: exit %d, want 2", code)
	}
}

func TestExpandShortFlags(t *testing.T) {
	got := strings.Join(expandShortFlags([]string{"-vvv", "-v", "-S", "x", "-vx"}), " ")
	if want := "-v -v -v -v -S x -vx"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestServerConfig(t *testing.T) {
	o, err := loadOptions("run", []string{"-H", "1443", "-S", key, "--address", "127.0.0.1", "--dc", "2=127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := serverConfig(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != 1 || cfg.Listen[0] != "127.0.0.1:1443" || len(cfg.Secrets) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	if addr, known := cfg.DCs.Lookup(2, false); !known || addr != "127.0.0.1:9" {
		t.Fatalf("DC 2 → %s %v, want the override", addr, known)
	}
	if publicHost(o) != "127.0.0.1" {
		t.Fatalf("public host %q, want the bind address", publicHost(o))
	}
}

// TestBadCipherOverrideRefusesStart runs the binary itself, since the
// override is read once at process start.
func TestBadCipherOverrideRefusesStart(t *testing.T) {
	if os.Getenv("MTPROXY_TEST_CHILD") == "1" {
		os.Exit(run([]string{"-H", "1"}, os.Stdout, os.Stderr))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBadCipherOverrideRefusesStart$")
	cmd.Env = append(os.Environ(), "MTPROXY_TEST_CHILD=1", "MTPROXY_CIPHER=fastest")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "MTPROXY_CIPHER") {
		t.Fatalf("no clear error in:\n%s", out)
	}
}

func TestFakeTLSFlags(t *testing.T) {
	o, err := loadOptions("run", []string{"-S", key, "-D", "example.com", "--domain", "cdn.example.org", "--allow-classic"})
	if err != nil {
		t.Fatal(err)
	}
	if o.fronting != "example.com:443" || len(o.domains) != 2 || !o.allowClassic {
		t.Fatalf("options %+v: want fronting to the first domain on 443", o)
	}
	cfg, err := serverConfig(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Domains) != 2 || cfg.FrontingAddr != "example.com:443" || cfg.Replay == nil || !cfg.AllowClassic {
		t.Fatalf("server config %+v", cfg)
	}
	o, err = loadOptions("run", []string{"-D", "example.com", "--fronting", "127.0.0.1:8443"})
	if err != nil || o.fronting != "127.0.0.1:8443" {
		t.Fatalf("--fronting: %v, %+v", err, o)
	}
	for _, bad := range [][]string{
		{"-D", "bad_domain!"},
		{"-D", "example.com", "--fronting", "nohostport"},
		{"-D", "example.com", "--replay-cache-size", "0"},
	} {
		if _, err := loadOptions("run", bad); err == nil || !errors.Is(err, errUsage) {
			t.Errorf("%q: err %v, want a usage error", bad, err)
		}
	}
}

// TestMiddleProxyFlags: the official's command line, flags after the
// proxy-multi.conf argument included, turns middle-proxy mode on.
func TestMiddleProxyFlags(t *testing.T) {
	tag := "0123456789abcdef0123456789abcdef"
	o, err := loadOptions("run", []string{"-u", "nobody", "-H", "443", "-S", key, "--aes-pwd", "proxy-secret", "proxy-multi.conf",
		"-M", "2", "-P", tag, "--nat-info", "10.0.0.5:203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.middle || o.proxyConfig != "proxy-multi.conf" || o.proxySecret != "proxy-secret" || o.slaves != 2 ||
		hex.EncodeToString(o.proxyTag) != tag || len(o.nat) != 1 {
		t.Fatalf("options %+v", o)
	}
	if pub := o.nat[netip.MustParseAddr("10.0.0.5")]; pub != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("nat %v", o.nat)
	}
	for _, args := range [][]string{{"--middle-proxy"}, {"-P", tag}, {"--aes-pwd", "s"}, {"x.conf"}} {
		if o, err := loadOptions("run", args); err != nil || !o.middle {
			t.Errorf("%q: middle %v, err %v", args, o != nil && o.middle, err)
		}
	}
	if o, _ := loadOptions("run", nil); o.middle {
		t.Error("middle-proxy mode without asking")
	}
}

// TestMiddleProxyConfigErrors: files that cannot be used refuse the start
// with the file and line named.
func TestMiddleProxyConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("secret", strings.Repeat("s", 64))
	badConf := write("bad.conf", "proxy_for 2 127.0.0.1:1;\nproxy_for x 127.0.0.1:2;\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "1", "--aes-pwd", secretFile, badConf}, "bad.conf:2"},
		{[]string{"-H", "1", "--aes-pwd", filepath.Join(dir, "missing"), badConf}, "missing"},
		{[]string{"-H", "1", "--aes-pwd", write("short", "x"), write("ok.conf", "proxy_for 2 127.0.0.1:1;")}, "proxy secret of 1 bytes"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, io.Discard, &stderr); code != 1 {
			t.Errorf("%q: exit %d, want 1", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "middle-proxy configuration") {
			t.Errorf("%q: log lacks %q:\n%s", tc.args, tc.want, stderr.String())
		}
	}
}

func TestNewFlags(t *testing.T) {
	o, err := loadOptions("run", []string{"--http-stats", "-p", "8888", "--drain-timeout", "0s", "-l", "/var/log/m.log", "-6",
		"--proxy-multi-conf", "/etc/p.conf", "--verbosity=3"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.httpStats || o.statsPort != "8888" || o.drainTimeout != 0 || o.logFile != "/var/log/m.log" || !o.ipv6 ||
		o.proxyConfig != "/etc/p.conf" || !o.middle || o.verbosity != 3 {
		t.Fatalf("options %+v", o)
	}
	for _, args := range [][]string{{"--log", "x"}, {"--log-file", "x"}, {"-l", "x"}} {
		if o, err := loadOptions("run", args); err != nil || o.logFile != "x" {
			t.Errorf("%q: %v", args, err)
		}
	}
	if o, _ := loadOptions("run", nil); o.drainTimeout != defaultDrainTimeout || o.httpStats || o.ipv6 {
		t.Errorf("defaults %+v", o)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--drain-timeout", "-1s"}, "must not be negative"},
		{[]string{"--address", "example.com"}, "IPv4 or IPv6 address"},
		{[]string{"--proxy-multi-conf", "a.conf", "b.conf"}, "one proxy-multi.conf"},
		{[]string{"--drain-timeout", "x"}, "want a duration"},
		{[]string{"--http-stats=maybe"}, "want true or false"},
	} {
		if _, err := loadOptions("run", tc.args); err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	// Subcommand flags belong to their subcommand.
	if _, err := loadOptions("run", []string{"--qr"}); err == nil {
		t.Error("--qr accepted by run")
	}
	if o, err := loadOptions("link", []string{"--qr"}); err != nil || !o.qr {
		t.Errorf("link --qr: %v", err)
	}
	if _, err := loadOptions("link", []string{"x.conf"}); err == nil {
		t.Error("link takes a positional argument")
	}
	if o, err := loadOptions("doctor", []string{"--timeout", "2s"}); err != nil || o.doctorTimeout != 2*time.Second {
		t.Errorf("doctor --timeout: %v", err)
	}
}

func TestRunUsageErrorMessage(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-H", "0"}, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if got := stderr.String(); !strings.HasPrefix(got, `mtproxy: invalid value "0" for flag -H: bad port`) || strings.Contains(got, "Usage") {
		t.Fatalf("stderr %q: want one clear line, no usage dump", got)
	}
}

func TestDoctorConfig(t *testing.T) {
	o, err := loadOptions("doctor", []string{"-H", "443", "--address", "127.0.0.1", "-C", "5000", "--dc", "2=127.0.0.1:9",
		"-D", "example.com", "--fronting", "127.0.0.1:8443", "--timeout", "3s", "--prefer-ipv6"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := doctorConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Listen, []string{"127.0.0.1:443"}) || cfg.MaxConnections != 5000 || cfg.Timeout != 3*time.Second ||
		cfg.FrontingAddr != "127.0.0.1:8443" || cfg.Domain != "example.com" || cfg.Middle || cfg.Refresh != nil || !cfg.PreferIPv6 {
		t.Fatalf("doctor config %+v", cfg)
	}
	if addr, _ := cfg.DCs.Lookup(2, false); addr != "127.0.0.1:9" {
		t.Errorf("DC 2 at %s", addr)
	}
	o, _ = loadOptions("doctor", []string{"--aes-pwd", "/s", "--nat-info", "10.0.0.1:203.0.113.1"})
	cfg, _ = doctorConfig(o)
	if !cfg.Middle || cfg.Refresh == nil || cfg.Refresh.ProxySecret.Path != "/s" || cfg.Refresh.ProxyConfig.URL == "" || len(cfg.NAT) != 1 {
		t.Fatalf("middle doctor config %+v", cfg)
	}
}

func TestLimitFlags(t *testing.T) {
	o, err := loadOptions("run", []string{"--max-connections-per-ip", "8", "--msg-buffers-size", "256m"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := serverConfig(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnectionsPerIP != 8 || cfg.BufferBudget != 256<<20 {
		t.Fatalf("per IP %d, budget %d", cfg.MaxConnectionsPerIP, cfg.BufferBudget)
	}
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "2k": 2048, "1G": 1 << 30} {
		var n int64
		if err := (sizeValue{&n}).Set(in); err != nil || n != want {
			t.Errorf("%q: %d %v, want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1", "1t", "99999999999g"} {
		var n int64
		if err := (sizeValue{&n}).Set(bad); err == nil {
			t.Errorf("%q accepted as %d", bad, n)
		}
	}
	if o, _ := loadOptions("run", []string{"--msg-buffers-size", "0"}); o != nil {
		if cfg, _ := serverConfig(o, zap.NewNop()); cfg.BufferBudget >= 0 {
			t.Errorf("budget 0 gives %d, want none (negative)", cfg.BufferBudget)
		}
	}
}
