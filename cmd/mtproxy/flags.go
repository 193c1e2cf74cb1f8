package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/refresh"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/secret"
	"github.com/mtproxy-go/mtproxy/server"
)

// maxSecrets is the official proxy's limit on -S; it also bounds the
// users of a config file, since every handshake is tried against each key.
const maxSecrets = 16

// defaultDrainTimeout is how long SIGTERM waits for open clients.
const defaultDrainTimeout = 30 * time.Second

// options is the parsed command line and config file.
type options struct {
	ports          []int
	secrets        []secret.Secret // -S, in order
	slaves         int
	maxConnections int
	maxPerIP       int
	bufferBudget   int64
	user           string
	address        string
	ipv6           bool
	statsPort      string
	statsAddress   string
	httpStats      bool
	dcOverrides    []string
	preferIPv6     bool
	publicHost     string
	verbosity      int
	logFormat      string
	logFile        string
	configPath     string // --config; "" = none
	drainTimeout   time.Duration

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
	proxyConfig   string // proxy-multi.conf: the positional argument or --proxy-multi-conf
	proxySecret   string // --aes-pwd
	proxyTag      []byte
	configURL     string
	secretURL     string
	configRefresh time.Duration
	nat           map[netip.Addr]netip.Addr

	// fileUsers are the [users] of the config file, in file order.
	fileUsers []namedSecret
	// users is every client secret with its name: fileUsers, then the -S
	// secrets named "#1", "#2"... Set by finish.
	users []namedSecret

	// Subcommand flags.
	qr            bool          // link --qr
	doctorTimeout time.Duration // doctor --timeout
}

// A namedSecret is a user's client secret. Names appear in logs and links.
type namedSecret struct {
	name   string
	secret secret.Secret
}

// keys returns the distinct client keys, in order.
func (o *options) keys() [][16]byte {
	var keys [][16]byte
	seen := map[[16]byte]bool{}
	for _, u := range o.users {
		if !seen[u.secret.Key] {
			seen[u.secret.Key] = true
			keys = append(keys, u.secret.Key)
		}
	}
	return keys
}

// keyNames maps each client key to its user's name (the first one given
// for a key several -S forms share), for statistics.
func (o *options) keyNames() map[[16]byte]string {
	names := make(map[[16]byte]string, len(o.users))
	for _, u := range o.users {
		if _, ok := names[u.secret.Key]; !ok {
			names[u.secret.Key] = u.name
		}
	}
	return names
}

// errUsage marks a bad command line or config file; all exit with status 2.
var errUsage = errors.New("usage")

// usageError is an error that errors.Is errUsage, with its own message.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Kinds of flag value, for the config file's type checks.
type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindBool
	kindDuration
	kindList // repeatable; an array in the config file
)

// flagInfo describes one setting, under its canonical (long) name.
type flagInfo struct {
	canonical string
	names     []string // every name on the command line, short ones included
	kind      flagKind
	path      bool // a file path: relative ones in the config file are taken from its directory
	noFile    bool // command line only
}

// flagIndex maps every flag name to its setting.
type flagIndex struct {
	byName map[string]*flagInfo
	order  []*flagInfo
}

// canonical returns the canonical name of a flag name.
func (x *flagIndex) canonical(name string) string {
	if fi := x.byName[name]; fi != nil {
		return fi.canonical
	}
	return name
}

// newFlagSet defines every flag of command cmd ("run", "link", "doctor")
// over a fresh options with the defaults. The official MTProxy's flags
// keep their short and long names; the rest are ours. The last name of
// each flag is its canonical name, the key in the config file.
func newFlagSet(cmd string) (*options, *flag.FlagSet, *flagIndex) {
	o := &options{
		address:          "0.0.0.0",
		logFormat:        "console",
		fastMode:         true,
		statsAddress:     "127.0.0.1",
		bufferBudget:     server.DefaultBufferBudget,
		handshakeTimeout: 10 * time.Second,
		idleTimeout:      5 * time.Minute,
		dialTimeout:      10 * time.Second,
		drainTimeout:     defaultDrainTimeout,
		replaySize:       faketls.DefaultReplaySize,
		replayWindow:     faketls.DefaultReplayWindow,
		configURL:        refresh.DefaultConfigURL,
		secretURL:        refresh.DefaultSecretURL,
		configRefresh:    refresh.DefaultInterval,
	}
	fs := flag.NewFlagSet("mtproxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints errors and usage itself
	fs.Usage = func() {}
	idx := &flagIndex{byName: map[string]*flagInfo{}}
	def := func(v flag.Value, usage string, names ...string) *flagInfo {
		fi := &flagInfo{canonical: names[len(names)-1], names: names, kind: kindString}
		switch v.(type) {
		case portList, secretList, stringList, natList:
			fi.kind = kindList
		case boolValue, verbosity:
			fi.kind = kindBool
		case intValue:
			fi.kind = kindInt
		case durationValue:
			fi.kind = kindDuration
		}
		for _, n := range names {
			fs.Var(v, n, usage)
			idx.byName[n] = fi
		}
		idx.order = append(idx.order, fi)
		return fi
	}
	str := func(p *string) stringValue { return stringValue{p} }
	dur := func(p *time.Duration) durationValue { return durationValue{p} }

	def(str(&o.configPath), "read settings from this TOML `file`; flags given here override it", "config").noFile = true
	def(portList{&o.ports}, "comma-separated client `ports` (default 8443)", "H", "http-ports")
	def(secretList{&o.secrets}, "client `secret`: 32 hex digits, or a dd…/ee… client form, hex or base64 (repeatable, at most 16; one is generated when none is given)", "S", "mtproto-secret")
	def(str(&o.address), "bind `address` for the client ports, IPv4 or IPv6", "address")
	def(boolValue{&o.ipv6}, "also listen on IPv6 ([::]) on the same ports", "6", "ipv6")
	def(intValue{&o.slaves}, "number of reactors, 0 for one per core", "M", "slaves")
	def(intValue{&o.maxConnections}, "maximum open client connections, 0 for no limit", "C", "max-special-connections")
	def(intValue{&o.maxPerIP}, "maximum open client connections from one IP address, 0 for no limit", "max-connections-per-ip")
	def(sizeValue{&o.bufferBudget}, "bound on the bytes all connections together hold queued, with k, m or g (0: none); above it the least recently active clients holding buffers are closed", "msg-buffers-size")
	def(str(&o.user), "switch to this `user` after binding the ports", "u", "user")
	def(str(&o.statsPort), "serve statistics (/stats, /metrics) on 127.0.0.1 at this `port`", "p", "port")
	def(boolValue{&o.httpStats}, "serve statistics on 127.0.0.1 at the -p port, 8888 without -p (the official's flag)", "http-stats")
	def(str(&o.statsAddress), "IP `address` the statistics listen on; another than loopback (e.g. in a container) exposes /metrics, while /stats keeps answering loopback only", "stats-address")
	def(stringList{&o.dcOverrides}, "override a DC address, `ID=HOST:PORT` (repeatable; negative IDs are media DCs)", "dc")
	def(boolValue{&o.fastMode}, "have each DC encipher for the client directly, so DC→client bytes need no AES here (the client stream's key then travels in clear to the DC); --fast-mode=false to turn off", "fast-mode")
	def(boolValue{&o.preferIPv6}, "connect to DCs over IPv6 where the table has an address", "prefer-ipv6")
	def(str(&o.publicHost), "`host` printed in the tg:// links (default: the bind address, or this machine's first global IPv4)", "public-host")
	def(verbosity{&o.verbosity}, "more verbose logging (repeat, or -v=N)", "v", "verbosity")
	def(str(&o.logFormat), "log `format`: console or json", "log-format")
	def(str(&o.logFile), "write logs to this `file` (appended; reopened on SIGUSR1) instead of stderr", "l", "log", "log-file").path = true
	def(dur(&o.handshakeTimeout), "close clients that send no valid header within this time", "handshake-timeout")
	def(dur(&o.idleTimeout), "close connections that carry no data either way for this long", "idle-timeout")
	def(dur(&o.dialTimeout), "give up connecting to a DC after this long", "dc-connect-timeout")
	def(dur(&o.drainTimeout), "on SIGTERM or SIGINT, wait this long for open clients before closing them (0: close at once)", "drain-timeout")

	def(stringList{&o.domains}, "fake-TLS `domain` (ee secrets): clients must look like TLS to this host; anything else is relayed to the real site (repeatable; the first is the default)", "D", "domain")
	def(str(&o.fronting), "where non-clients are relayed in fake-TLS mode, `HOST:PORT` (default: the first -D domain, port 443)", "fronting")
	def(boolValue{&o.allowClassic}, "with -D, also accept classic and dd clients", "allow-classic")
	def(intValue{&o.replaySize}, "fake TLS: ClientHellos remembered against replay (about 60 bytes each)", "replay-cache-size")
	def(dur(&o.replayWindow), "fake TLS: how long a ClientHello is remembered; older timestamps are refused", "replay-window")

	def(boolValue{&o.middle}, "middle-proxy mode with the files downloaded from Telegram (implied by --aes-pwd, -P or a proxy-multi.conf)", "middle-proxy")
	def(str(&o.proxyConfig), "middle-proxy mode: the proxy-multi.conf `file` (the official's positional argument)", "proxy-multi-conf").path = true
	def(str(&o.proxySecret), "middle-proxy mode: the proxy-secret `file` (default: download it from --proxy-secret-url)", "aes-pwd").path = true
	def(hexValue{&o.proxyTag}, "middle-proxy mode: the proxy `tag` from @MTProxybot, 32 hex digits, to show clients a promoted channel", "P", "proxy-tag")
	def(str(&o.configURL), "middle-proxy mode: the `URL` to download proxy-multi.conf from when no file is given", "proxy-config-url")
	def(str(&o.secretURL), "middle-proxy mode: the `URL` to download the proxy secret from when --aes-pwd is not given", "proxy-secret-url")
	def(dur(&o.configRefresh), "middle-proxy mode: how often to read or download both files again (0: never); a failure keeps the last good ones", "config-refresh")
	def(natList{&o.nat}, "middle-proxy mode: `LOCAL:PUBLIC` IPv4 addresses of a host behind NAT, as the middle proxies see it (repeatable)", "nat-info")

	switch cmd {
	case "link":
		def(boolValue{&o.qr}, "also draw each link as a QR code", "qr").noFile = true
	case "doctor":
		o.doctorTimeout = 5 * time.Second
		def(dur(&o.doctorTimeout), "bound on each check", "timeout").noFile = true
	}
	return o, fs, idx
}

// parseArgs parses args into fs and returns the positional arguments. Like
// the official's getopt, flags may follow the proxy-multi.conf argument:
// parse again after each positional argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for rest := expandShortFlags(args); ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// loadOptions reads the command line of subcommand cmd and, with --config,
// the config file: the defaults, then the file, then every flag given on
// the command line on top (a list flag given there, such as -S, replaces
// the file's list; -S also replaces the file's users).
func loadOptions(cmd string, args []string) (*options, error) {
	// First the command line alone: where the file is, and what it sets.
	o, fs, idx := newFlagSet(cmd)
	positional, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[idx.canonical(f.Name)] = true })
	if o.configPath != "" {
		path := o.configPath
		o, fs, idx = newFlagSet(cmd)
		if err := applyConfigFile(o, fs, idx, path, onCommandLine); err != nil {
			return nil, usageError{err}
		}
		if positional, err = parseArgs(fs, args); err != nil {
			return nil, err
		}
	}
	if len(positional) > 1 || len(positional) == 1 && onCommandLine["proxy-multi-conf"] {
		return nil, usagef("one proxy-multi.conf expected, got %q", append(positional, o.proxyConfig))
	}
	if len(positional) == 1 {
		if cmd != "run" {
			return nil, usagef("unexpected argument %q", positional[0])
		}
		o.proxyConfig = positional[0] // overrides the file's proxy-multi-conf
	}
	if onCommandLine["mtproto-secret"] {
		o.fileUsers = nil
	}
	return o, o.finish()
}

// userName is what a user may be called: it ends up in logs and in
// statistics labels.
var userName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// finish checks the options and fills in what follows from them.
func (o *options) finish() error {
	o.middle = o.middle || o.proxyConfig != "" || o.proxySecret != "" || o.proxyTag != nil
	if o.proxyTag != nil && len(o.proxyTag) != 16 {
		return usagef("-P takes 32 hex digits, got %d bytes", len(o.proxyTag))
	}
	if o.configRefresh < 0 {
		return usagef("--config-refresh must not be negative")
	}
	if o.drainTimeout < 0 {
		return usagef("--drain-timeout must not be negative")
	}
	if len(o.ports) == 0 {
		o.ports = []int{8443}
	}
	o.users = append([]namedSecret(nil), o.fileUsers...)
	for i, s := range o.secrets {
		o.users = append(o.users, namedSecret{name: "#" + strconv.Itoa(i+1), secret: s})
	}
	if len(o.users) > maxSecrets {
		return usagef("at most %d secrets, got %d", maxSecrets, len(o.users))
	}
	if o.slaves < 0 || o.maxConnections < 0 || o.maxPerIP < 0 || o.bufferBudget < 0 {
		return usagef("-M, -C, --max-connections-per-ip and --msg-buffers-size take a number ≥ 0")
	}
	if o.logFormat != "console" && o.logFormat != "json" {
		return usagef("--log-format must be console or json, got %q", o.logFormat)
	}
	if o.handshakeTimeout <= 0 || o.idleTimeout <= 0 || o.dialTimeout <= 0 {
		return usagef("timeouts must be positive")
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(o.address, "["), "]")
	if ip, err := netip.ParseAddr(addr); err != nil || ip.Zone() != "" {
		return usagef("--address takes an IPv4 or IPv6 address, got %q", o.address)
	}
	o.address = addr
	if ip, err := netip.ParseAddr(o.statsAddress); err != nil || ip.Zone() != "" {
		return usagef("--stats-address takes an IPv4 or IPv6 address, got %q", o.statsAddress)
	}
	for _, spec := range o.dcOverrides {
		if _, _, err := dc.ParseOverride(spec); err != nil {
			return usagef("--dc %s: %v", spec, err)
		}
	}
	for _, d := range o.domains {
		if err := secret.CheckDomain(d); err != nil {
			return usagef("-D %s: %v", d, err)
		}
	}
	if len(o.domains) > 0 && o.fronting == "" {
		o.fronting = net.JoinHostPort(o.domains[0], "443")
	}
	if o.fronting != "" {
		if _, _, err := net.SplitHostPort(o.fronting); err != nil {
			return usagef("--fronting %s: %v", o.fronting, err)
		}
	}
	if o.replaySize <= 0 || o.replayWindow <= 0 {
		return usagef("--replay-cache-size and --replay-window must be positive")
	}
	if o.statsPort != "" {
		if _, err := strconv.Atoi(o.statsPort); err != nil {
			return usagef("-p must be a port number, got %q", o.statsPort)
		}
	}
	if o.doctorTimeout < 0 {
		return usagef("--timeout must not be negative")
	}
	return nil
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

type boolValue struct{ v *bool }

func (b boolValue) IsBoolFlag() bool { return true }

func (b boolValue) String() string {
	if b.v == nil {
		return "false"
	}
	return strconv.FormatBool(*b.v)
}

func (b boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	*b.v = v
	return nil
}

type durationValue struct{ v *time.Duration }

func (d durationValue) String() string {
	if d.v == nil {
		return "0s"
	}
	return d.v.String()
}

func (d durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 5m, got %q", s)
	}
	*d.v = v
	return nil
}

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
	switch s {
	case "true":
		*v.level++
		return nil
	case "false":
		*v.level = 0
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

// sizeValue is a byte count with an optional k, m or g suffix (powers of
// 1024), as the official's --msg-buffers-size.
type sizeValue struct{ v *int64 }

func (s sizeValue) String() string {
	if s.v == nil {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"g", 30}, {"m", 20}, {"k", 10}} {
		if n := *s.v; n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(*s.v, 10)
}

func (s sizeValue) Set(v string) error {
	shift := 0
	switch strings.ToLower(v[len(v)-min(len(v), 1):]) {
	case "k":
		shift = 10
	case "m":
		shift = 20
	case "g":
		shift = 30
	}
	num := v
	if shift > 0 {
		num = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > 1<<(62-shift) {
		return fmt.Errorf("not a size (bytes, or a number with k, m or g): %q", v)
	}
	*s.v = n << shift
	return nil
}
