package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/refresh"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// maxSecrets is the official proxy's limit on -S.
const maxSecrets = 16

// options is the parsed command line.
type options struct {
	ports          []int
	secrets        []secret.Secret
	slaves         int
	maxConnections int
	user           string
	address        string
	statsPort      string
	dcOverrides    []string
	preferIPv6     bool
	publicHost     string
	verbosity      int
	logFormat      string

	handshakeTimeout time.Duration
	idleTimeout      time.Duration
	dialTimeout      time.Duration

	domains      []string
	fronting     string
	allowClassic bool
	replaySize   int
	replayWindow time.Duration
	fastMode     bool

	// Middle-proxy mode.
	middle        bool
	proxyConfig   string // proxy-multi.conf, the positional argument
	proxySecret   string // --aes-pwd
	proxyTag      []byte
	configURL     string
	secretURL     string
	configRefresh time.Duration
	nat           map[netip.Addr]netip.Addr
}

// errUsage marks errors that deserve the usage text; all parse errors exit 2.
var errUsage = errors.New("usage")

// parseFlags reads args (without the program name). Official MTProxy flags
// keep their short and long names; the rest are ours.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{address: "0.0.0.0", logFormat: "console"}
	fs := flag.NewFlagSet("mtproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alias := func(v flag.Value, usage string, names ...string) {
		for _, n := range names {
			fs.Var(v, n, usage)
		}
	}
	alias(portList{&o.ports}, "comma-separated client `ports` (default 8443)", "H", "http-ports")
	alias(secretList{&o.secrets}, "client `secret`: 32 hex digits, or a dd…/ee… client form (repeatable, at most 16; one is generated when none is given)", "S", "mtproto-secret")
	alias(intValue{&o.slaves}, "number of reactors, 0 for one per core", "M", "slaves")
	alias(intValue{&o.maxConnections}, "maximum open client connections, 0 for no limit", "C", "max-special-connections")
	alias(stringValue{&o.user}, "switch to this `user` after binding the ports", "u", "user")
	alias(stringValue{&o.statsPort}, "statistics `port` (accepted for compatibility; not served yet)", "p", "port")
	fs.StringVar(&o.address, "address", o.address, "bind `address` for the client ports")
	fs.Var(stringList{&o.dcOverrides}, "dc", "override a DC address, `ID=HOST:PORT` (repeatable; negative IDs are media DCs)")
	fs.BoolVar(&o.fastMode, "fast-mode", true, "have each DC encipher for the client directly, so DC→client bytes need no AES here (the client stream's key then travels in clear to the DC); --fast-mode=false to turn off")
	fs.BoolVar(&o.preferIPv6, "prefer-ipv6", false, "connect to DCs over IPv6 where the table has an address")
	fs.StringVar(&o.publicHost, "public-host", "", "`host` printed in the tg:// links (default: the bind address, or this machine's first global IPv4)")
	fs.Var(verbosity{&o.verbosity}, "v", "more verbose logging (repeat, or -v=N)")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, "log format: console or json")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", 10*time.Second, "close clients that send no valid header within this time")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 5*time.Minute, "close connections that carry no data either way for this long")
	fs.DurationVar(&o.dialTimeout, "dc-connect-timeout", 10*time.Second, "give up connecting to a DC after this long")

	alias(stringList{&o.domains}, "fake-TLS `domain` (ee secrets): clients must look like TLS to this host; anything else is relayed to the real site (repeatable; the first is the default)", "D", "domain")
	fs.StringVar(&o.fronting, "fronting", "", "where non-clients are relayed in fake-TLS mode, `HOST:PORT` (default: the first -D domain, port 443)")
	fs.BoolVar(&o.allowClassic, "allow-classic", false, "with -D, also accept classic and dd clients")
	fs.IntVar(&o.replaySize, "replay-cache-size", faketls.DefaultReplaySize, "fake TLS: ClientHellos remembered against replay (about 60 bytes each)")
	fs.DurationVar(&o.replayWindow, "replay-window", faketls.DefaultReplayWindow, "fake TLS: how long a ClientHello is remembered; older timestamps are refused")

	fs.BoolVar(&o.middle, "middle-proxy", false, "middle-proxy mode with the files downloaded from Telegram (implied by --aes-pwd, -P or a proxy-multi.conf argument)")
	fs.StringVar(&o.proxySecret, "aes-pwd", "", "middle-proxy mode: the proxy-secret `file` (default: download it from --proxy-secret-url)")
	alias(hexValue{&o.proxyTag}, "middle-proxy mode: the proxy `tag` from @MTProxybot, 32 hex digits, to show clients a promoted channel", "P", "proxy-tag")
	fs.StringVar(&o.configURL, "proxy-config-url", refresh.DefaultConfigURL, "middle-proxy mode: where to download proxy-multi.conf when no file is given")
	fs.StringVar(&o.secretURL, "proxy-secret-url", refresh.DefaultSecretURL, "middle-proxy mode: where to download the proxy secret when --aes-pwd is not given")
	fs.DurationVar(&o.configRefresh, "config-refresh", refresh.DefaultInterval, "middle-proxy mode: how often to read or download both files again (0: never); a failure keeps the last good ones")
	fs.Var(natList{&o.nat}, "nat-info", "middle-proxy mode: `LOCAL:PUBLIC` IPv4 addresses of a host behind NAT, as the middle proxies see it (repeatable)")

	// Like the official's getopt, flags may follow the proxy-multi.conf
	// argument: parse again after each positional argument.
	var positional []string
	for rest := expandShortFlags(args); ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) > 1 {
		return nil, fmt.Errorf("%w: one proxy-multi.conf argument expected, got %q", errUsage, positional)
	}
	if len(positional) == 1 {
		o.proxyConfig = positional[0]
	}
	o.middle = o.middle || o.proxyConfig != "" || o.proxySecret != "" || o.proxyTag != nil
	if o.proxyTag != nil && len(o.proxyTag) != 16 {
		return nil, fmt.Errorf("%w: -P takes 32 hex digits, got %d bytes", errUsage, len(o.proxyTag))
	}
	if o.configRefresh < 0 {
		return nil, fmt.Errorf("%w: --config-refresh must not be negative", errUsage)
	}
	if len(o.ports) == 0 {
		o.ports = []int{8443}
	}
	if len(o.secrets) > maxSecrets {
		return nil, fmt.Errorf("%w: at most %d secrets, got %d", errUsage, maxSecrets, len(o.secrets))
	}
	if o.slaves < 0 || o.maxConnections < 0 {
		return nil, fmt.Errorf("%w: -M and -C take a number ≥ 0", errUsage)
	}
	if o.logFormat != "console" && o.logFormat != "json" {
		return nil, fmt.Errorf("%w: --log-format must be console or json, got %q", errUsage, o.logFormat)
	}
	if o.handshakeTimeout <= 0 || o.idleTimeout <= 0 || o.dialTimeout <= 0 {
		return nil, fmt.Errorf("%w: timeouts must be positive", errUsage)
	}
	for _, spec := range o.dcOverrides {
		if _, _, err := dc.ParseOverride(spec); err != nil {
			return nil, fmt.Errorf("%w: --dc %s: %v", errUsage, spec, err)
		}
	}
	for _, d := range o.domains {
		if err := secret.CheckDomain(d); err != nil {
			return nil, fmt.Errorf("%w: -D %s: %v", errUsage, d, err)
		}
	}
	if len(o.domains) > 0 && o.fronting == "" {
		o.fronting = net.JoinHostPort(o.domains[0], "443")
	}
	if o.fronting != "" {
		if _, _, err := net.SplitHostPort(o.fronting); err != nil {
			return nil, fmt.Errorf("%w: --fronting %s: %v", errUsage, o.fronting, err)
		}
	}
	if o.replaySize <= 0 || o.replayWindow <= 0 {
		return nil, fmt.Errorf("%w: --replay-cache-size and --replay-window must be positive", errUsage)
	}
	if o.statsPort != "" {
		if _, err := strconv.Atoi(o.statsPort); err != nil {
			return nil, fmt.Errorf("%w: -p must be a port number, got %q", errUsage, o.statsPort)
		}
	}
	return o, nil
}

// expandShortFlags turns "-vv" into "-v -v", as the official proxy accepts.
func expandShortFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if len(a) > 2 && a[0] == '-' && strings.Trim(a[1:], "v") == "" {
			for range a[1:] {
				out = append(out, "-v")
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

type portList struct{ ports *[]int }

func (p portList) String() string {
	if p.ports == nil {
		return ""
	}
	s := make([]string, len(*p.ports))
	for i, v := range *p.ports {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (p portList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port %q: want 1..65535", f)
		}
		*p.ports = append(*p.ports, n)
	}
	return nil
}

type secretList struct{ secrets *[]secret.Secret }

func (s secretList) String() string { return "" }

func (s secretList) Set(v string) error {
	sec, err := secret.Parse(v)
	if err != nil {
		return err
	}
	*s.secrets = append(*s.secrets, sec)
	return nil
}

type stringList struct{ list *[]string }

func (s stringList) String() string {
	if s.list == nil {
		return ""
	}
	return strings.Join(*s.list, " ")
}

func (s stringList) Set(v string) error { *s.list = append(*s.list, v); return nil }

type intValue struct{ v *int }

func (i intValue) String() string {
	if i.v == nil {
		return "0"
	}
	return strconv.Itoa(*i.v)
}

func (i intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("not a number: %q", v)
	}
	*i.v = n
	return nil
}

type stringValue struct{ v *string }

func (s stringValue) String() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

func (s stringValue) Set(v string) error { *s.v = v; return nil }

// verbosity counts -v flags; -v=N sets the level.
type verbosity struct{ level *int }

func (v verbosity) IsBoolFlag() bool { return true }

func (v verbosity) String() string {
	if v.level == nil {
		return "0"
	}
	return strconv.Itoa(*v.level)
}

func (v verbosity) Set(s string) error {
	if s == "true" {
		*v.level++
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("verbosity must be a number ≥ 0, got %q", s)
	}
	*v.level = n
	return nil
}

type hexValue struct{ v *[]byte }

func (h hexValue) String() string {
	if h.v == nil {
		return ""
	}
	return hex.EncodeToString(*h.v)
}

func (h hexValue) Set(s string) error {
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not hex: %q", s)
	}
	*h.v = b
	return nil
}

// natList collects the official's --nat-info LOCAL:PUBLIC pairs (IPv4).
type natList struct{ m *map[netip.Addr]netip.Addr }

func (n natList) String() string { return "" }

func (n natList) Set(s string) error {
	local, public, ok := strings.Cut(s, ":")
	l, err1 := netip.ParseAddr(local)
	p, err2 := netip.ParseAddr(public)
	if !ok || err1 != nil || err2 != nil || !l.Is4() || !p.Is4() {
		return fmt.Errorf("want LOCAL:PUBLIC IPv4 addresses, got %q", s)
	}
	if *n.m == nil {
		*n.m = map[netip.Addr]netip.Addr{}
	}
	(*n.m)[l] = p
	return nil
}
