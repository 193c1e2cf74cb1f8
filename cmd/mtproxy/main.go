// Command mtproxy runs a Telegram MTProto proxy.
//
// With no arguments it listens on 0.0.0.0:8443 in direct mode against
// Telegram's DCs with a freshly generated secret, and prints the links
// clients use. With --aes-pwd, -P or a proxy-multi.conf argument it runs in
// middle-proxy mode. Settings come from flags and, with --config, a TOML
// file (see config.go). Subcommands: run (the default), link,
// generate-secret, doctor and help; see usage.
//
// Signals: SIGTERM or SIGINT drains (no new clients; open ones are waited
// for up to --drain-timeout) and exits 0, a second one closes at once;
// SIGHUP re-reads the config file and the middle-proxy files and applies
// what can change without a restart; SIGUSR1 reopens --log-file.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/backend/refresh"
	"github.com/mtproxy-go/mtproxy/cipher"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/secret"
	"github.com/mtproxy-go/mtproxy/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command returns the subcommand called name, given as the first argument.
func command(name string) func(args []string, stdout, stderr io.Writer) int {
	switch name {
	case "run":
		return func(args []string, _, stderr io.Writer) int { return runProxy(args, stderr) }
	case "link":
		return runLink
	case "generate-secret":
		return runGenerateSecret
	case "doctor":
		return runDoctor
	case "healthcheck":
		return runHealthcheck
	case "help":
		return runHelp
	}
	return nil
}

// run is main without the process exit, for tests: 0 after a clean stop,
// 1 when the proxy cannot run, 2 for a bad command line or config file.
// Without a known subcommand first, args are run's.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd := command(args[0]); cmd != nil {
			return cmd(args[1:], stdout, stderr)
		}
	}
	return runProxy(args, stderr)
}

// optionsFor loads the options of subcommand cmd; on error it prints why
// and returns the exit status.
func optionsFor(cmd string, args []string, stderr io.Writer) (*options, int) {
	o, err := loadOptions(cmd, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stderr, cmd)
		return nil, 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtproxy: %v\nRun 'mtproxy help' for the flags.\n", err)
		return nil, 2
	}
	return o, 0
}

// runProxy is the run subcommand: the proxy itself.
func runProxy(args []string, stderr io.Writer) int {
	// Signals are caught from the start: SIGHUP or SIGUSR1 must not kill
	// a proxy that is still starting.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sig)

	o, code := optionsFor("run", args, stderr)
	if o == nil {
		return code
	}
	p := &proxy{args: args, level: zap.NewAtomicLevelAt(logLevel(o)), start: processStart}
	out := zapcore.AddSync(stderr)
	if o.logFile != "" {
		lf, err := openLogFile(o.logFile)
		if err != nil {
			fmt.Fprintf(stderr, "mtproxy: %v\n", err)
			return 1
		}
		defer lf.Close()
		p.logFile, out = lf, lf
	}
	log := newLogger(o.logFormat, p.level, out)
	defer log.Sync()
	p.log = log
	if err := cipher.TierError(); err != nil {
		log.Error("bad cipher override", zap.Error(err))
		return 2
	}
	log.Info("AES-CTR kernels", zap.String("tier", cipher.ActiveTier()))
	checkFileLimit(log, o)

	if len(o.users) == 0 {
		s, err := secret.Generate(rand.Reader)
		if err != nil {
			log.Error("cannot generate a secret", zap.Error(err))
			return 1
		}
		s = s.WithMode(secret.Secure, "")
		log.Info("no secret given (-S or [users]); generated one for this run", zap.String("secret", s.Hex()))
		o.secrets = append(o.secrets, s)
		o.users = append(o.users, namedSecret{name: "#1", secret: s})
	}
	cfg, err := serverConfig(o, log)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	if cfg.FrontingAddr != "" {
		cfg.Shape = learnShape(log, cfg.FrontingAddr, o.domains[0])
	}
	if o.middle {
		p.ref, cfg.Middle, err = middleConfig(o, log, func(conf *proxyconf.Config, secret []byte) {
			if err := p.srv.SetMiddleProxy(conf, secret); err != nil {
				log.Warn("refreshed middle-proxy configuration refused; keeping the running one", zap.Error(err))
			}
		})
		if err != nil {
			log.Error("cannot load the middle-proxy configuration", zap.Error(err))
			return 1
		}
	}
	p.srv, err = server.New(cfg)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	p.opts.Store(o)
	return p.run(sig)
}

// middleConfig loads the middle-proxy files, from disk or Telegram, and
// returns the refresher that keeps them current through apply.
func middleConfig(o *options, log *zap.Logger, apply func(*proxyconf.Config, []byte)) (*refresh.Refresher, *server.MiddleConfig, error) {
	if len(o.dcOverrides) > 0 || o.preferIPv6 {
		log.Warn("--dc and --prefer-ipv6 apply to direct mode only; middle proxies reach the DCs themselves")
	}
	rc := refreshConfig(o)
	rc.Logger, rc.Apply = log, apply
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, conf, sec, err := refresh.Load(ctx, rc)
	if err != nil {
		return nil, nil, err
	}
	if o.proxyTag == nil {
		log.Info("middle-proxy mode without a proxy tag (-P): clients see no promoted channel")
	}
	return ref, &server.MiddleConfig{ProxyConfig: conf, Secret: sec, AdTag: o.proxyTag, NAT: o.nat}, nil
}

// refreshConfig says where the middle-proxy files come from.
func refreshConfig(o *options) *refresh.Config {
	rc := &refresh.Config{
		ProxyConfig: refresh.Source{Path: o.proxyConfig},
		ProxySecret: refresh.Source{Path: o.proxySecret},
		Interval:    o.configRefresh,
	}
	if o.proxyConfig == "" {
		rc.ProxyConfig.URL = o.configURL
	}
	if o.proxySecret == "" {
		rc.ProxySecret.URL = o.secretURL
	}
	return rc
}

func logLevel(o *options) zapcore.Level {
	if o.verbosity > 0 {
		return zapcore.DebugLevel
	}
	return zapcore.InfoLevel
}

func newLogger(format string, level zap.AtomicLevel, w zapcore.WriteSyncer) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		encCfg.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, w, level))
}

// checkFileLimit raises the open-file limit to the hard limit, logs it, and
// warns when -C needs more descriptors than that.
func checkFileLimit(log *zap.Logger, o *options) {
	limit, raised, err := raiseFileLimit()
	if err != nil {
		log.Warn("cannot read or raise the open-file limit (RLIMIT_NOFILE)", zap.Error(err))
		return
	}
	log.Info("open-file limit", zap.Uint64("nofile", limit), zap.Bool("raised", raised))
	if msg, bad := fileLimitAdvice(limit, o.maxConnections); bad {
		log.Warn(msg, zap.Uint64("nofile", limit), zap.Int("max_connections", o.maxConnections),
			zap.Uint64("needed", fdsNeeded(o.maxConnections)))
	} else if msg != "" {
		log.Info(msg, zap.Uint64("clients", clientsFor(limit)))
	}
}

// fileLimitAdvice words what the open-file limit means for -C; bad means
// the limit is too low for it.
func fileLimitAdvice(limit uint64, maxConns int) (msg string, bad bool) {
	if maxConns == 0 {
		return "no connection cap (-C); the open-file limit bounds the clients", false
	}
	if fdsNeeded(maxConns) > limit {
		return "the open-file limit is too low for -C (about 2 descriptors per client): " +
			"new connections fail once the descriptors run out; raise the hard limit (LimitNOFILE= in systemd, ulimit -Hn) or lower -C", true
	}
	return "", false
}

// dcTable is Telegram's DC table with the --dc overrides.
func dcTable(o *options) (*dc.Table, error) {
	table := dc.Default()
	for _, spec := range o.dcOverrides {
		id, addr, err := dc.ParseOverride(spec)
		if err == nil {
			err = table.Override(id, addr)
		}
		if err != nil {
			return nil, fmt.Errorf("--dc %s: %w", spec, err)
		}
	}
	return table, nil
}

// bindV6Only reports the kernel's net.ipv6.bindv6only: whether a socket
// bound to [::] takes IPv6 only, leaving IPv4 to a socket of its own.
func bindV6Only() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// listenHosts returns the hosts the client ports are bound on: --address,
// and with -6 also [::]. The server's sockets on [::] take IPv4 as well
// (dual stack) unless the kernel's bindv6only is set, and two sockets on
// the same port cannot both take IPv4: so with the default wildcard
// address, -6 binds [::] alone (serving both) or, with bindv6only, 0.0.0.0
// and [::]; with a specific IPv4 address it needs bindv6only.
func listenHosts(o *options, v6only bool) ([]string, error) {
	addr, err := netip.ParseAddr(o.address)
	if err != nil {
		return nil, fmt.Errorf("--address %q: %w", o.address, err)
	}
	switch {
	case !o.ipv6 || addr.Is6() && !addr.Is4In6():
		return []string{o.address}, nil
	case v6only:
		return []string{o.address, "::"}, nil
	case addr.IsUnspecified():
		return []string{"::"}, nil
	}
	return nil, fmt.Errorf("-6 with --address %s: [::] would take the IPv4 side of the same ports too "+
		"(net.ipv6.bindv6only is 0); use --address :: (both protocols, every address) or give an IPv6 --address", o.address)
}

// listenAddrs returns every host:port the proxy binds.
func listenAddrs(o *options) ([]string, error) {
	hosts, err := listenHosts(o, bindV6Only())
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, h := range hosts {
		for _, p := range o.ports {
			addrs = append(addrs, net.JoinHostPort(h, strconv.Itoa(p)))
		}
	}
	return addrs, nil
}

func serverConfig(o *options, log *zap.Logger) (server.Config, error) {
	table, err := dcTable(o)
	if err != nil {
		return server.Config{}, err
	}
	cfg := server.Config{
		DCs:                 table,
		PreferIPv6:          o.preferIPv6,
		FastMode:            o.fastMode,
		Loops:               o.slaves,
		MaxConnections:      o.maxConnections,
		MaxConnectionsPerIP: o.maxPerIP,
		BufferBudget:        o.bufferBudget,
		HandshakeTimeout:    o.handshakeTimeout,
		IdleTimeout:         o.idleTimeout,
		DialTimeout:         o.dialTimeout,
		Secrets:             o.keys(),
		Logger:              log,
	}
	if o.bufferBudget == 0 {
		cfg.BufferBudget = -1 // 0 on the command line: no budget
	}
	if cfg.Listen, err = listenAddrs(o); err != nil {
		return server.Config{}, err
	}
	if len(o.domains) > 0 {
		cfg.Domains = o.domains
		cfg.FrontingAddr = o.fronting
		cfg.AllowClassic = o.allowClassic
		cfg.Replay = faketls.NewReplayCache(faketls.ReplayConfig{Size: o.replaySize, Window: o.replayWindow}, time.Now())
	}
	if o.user != "" {
		user := o.user
		cfg.AfterBind = func() error { return dropPrivileges(user) }
	}
	return cfg, nil
}

// minAppDataLen is the smallest first application-data record taken from
// a probe as the ServerHello's "certificate": a site whose first record is
// smaller (Go's and Caddy's servers send a 27-byte one first) would give a
// reply no real certificate-carrying site sends.
const minAppDataLen = 512

// learnShape asks the real site how its TLS answer looks, so that ours
// resembles it (protocol.md §4.8); offline or odd, a default shape.
func learnShape(log *zap.Logger, addr, domain string) faketls.Shape {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shape, err := faketls.Probe(ctx, addr, domain, 20)
	if err == nil && shape.AppDataLen < minAppDataLen {
		err = fmt.Errorf("first application-data record of %d bytes is too small to pass for a certificate", shape.AppDataLen)
	}
	if err != nil {
		def, derr := faketls.DefaultShape(rand.Reader)
		if derr != nil {
			log.Error("cannot make a TLS reply shape", zap.Error(derr))
		}
		log.Warn("cannot learn the fronted site's TLS answer; using a default shape", zap.String("site", addr), zap.Error(err),
			zap.Int("app_data_len", def.AppDataLen))
		return def
	}
	log.Info("learned the fronted site's TLS answer", zap.String("site", addr), zap.Int("app_data_len", shape.AppDataLen),
		zap.Bool("supported_versions_first", shape.SupportedVersionsFirst))
	return shape
}
