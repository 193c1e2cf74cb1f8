// Command mtproxy runs a Telegram MTProto proxy.
//
// With no arguments it listens on 0.0.0.0:8443 in direct mode against
// Telegram's DCs with a freshly generated secret, and prints the links
// clients use. With --aes-pwd, -P or a proxy-multi.conf argument it runs in
// middle-proxy mode. See README.md for the flags.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
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
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the process exit, for tests: 0 after a clean stop,
// 1 when the proxy cannot run, 2 for a bad command line.
func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtproxy: %v\nRun 'mtproxy -h' for the flags.\n", errors.Unwrap(err))
		return 2
	}
	log := newLogger(o, stderr)
	defer log.Sync()
	if err := cipher.TierError(); err != nil {
		log.Error("bad cipher override", zap.Error(err))
		return 2
	}
	log.Info("AES-CTR kernels", zap.String("tier", cipher.ActiveTier()))

	if len(o.secrets) == 0 {
		s, err := secret.Generate(rand.Reader)
		if err != nil {
			log.Error("cannot generate a secret", zap.Error(err))
			return 1
		}
		s = s.WithMode(secret.Secure, "")
		log.Info("no secret given (-S); generated one for this run", zap.String("secret", s.Hex()))
		o.secrets = append(o.secrets, s)
	}
	cfg, err := serverConfig(o, log)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	if cfg.FrontingAddr != "" {
		cfg.Shape = learnShape(log, cfg.FrontingAddr, o.domains[0])
	}
	var srv *server.Server
	var ref *refresh.Refresher
	if o.middle {
		ref, cfg.Middle, err = middleConfig(o, log, func(conf *proxyconf.Config, secret []byte) {
			if err := srv.SetMiddleProxy(conf, secret); err != nil {
				log.Warn("refreshed middle-proxy configuration refused; keeping the running one", zap.Error(err))
			}
		})
		if err != nil {
			log.Error("cannot load the middle-proxy configuration", zap.Error(err))
			return 1
		}
	}
	srv, err = server.New(cfg)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		log.Error("cannot start", zap.Error(err))
		return 1
	case <-srv.Ready():
	}
	for _, a := range srv.Addrs() {
		log.Info("listening", zap.Stringer("addr", a))
	}
	printLinks(log, o)
	if ref != nil {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go ref.Run(ctx)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err := <-served:
		if err != nil {
			log.Error("proxy stopped", zap.Error(err))
			return 1
		}
		return 0
	case s := <-sig:
		log.Info("stopping", zap.Stringer("signal", s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		log.Error("stop", zap.Error(err))
		return 1
	}
	<-served
	return 0
}

// middleConfig loads the middle-proxy files, from disk or Telegram, and
// returns the refresher that keeps them current through apply.
func middleConfig(o *options, log *zap.Logger, apply func(*proxyconf.Config, []byte)) (*refresh.Refresher, *server.MiddleConfig, error) {
	if len(o.dcOverrides) > 0 || o.preferIPv6 {
		log.Warn("--dc and --prefer-ipv6 apply to direct mode only; middle proxies reach the DCs themselves")
	}
	rc := &refresh.Config{
		ProxyConfig: refresh.Source{Path: o.proxyConfig},
		ProxySecret: refresh.Source{Path: o.proxySecret},
		Interval:    o.configRefresh,
		Logger:      log,
		Apply:       apply,
	}
	if o.proxyConfig == "" {
		rc.ProxyConfig.URL = o.configURL
	}
	if o.proxySecret == "" {
		rc.ProxySecret.URL = o.secretURL
	}
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

func newLogger(o *options, w io.Writer) *zap.Logger {
	level := zapcore.InfoLevel
	if o.verbosity > 0 {
		level = zapcore.DebugLevel
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if o.logFormat == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

func serverConfig(o *options, log *zap.Logger) (server.Config, error) {
	table := dc.Default()
	for _, spec := range o.dcOverrides {
		id, addr, err := dc.ParseOverride(spec)
		if err == nil {
			err = table.Override(id, addr)
		}
		if err != nil {
			return server.Config{}, fmt.Errorf("--dc %s: %w", spec, err)
		}
	}
	cfg := server.Config{
		DCs:              table,
		PreferIPv6:       o.preferIPv6,
		FastMode:         o.fastMode,
		Loops:            o.slaves,
		MaxConnections:   o.maxConnections,
		HandshakeTimeout: o.handshakeTimeout,
		IdleTimeout:      o.idleTimeout,
		DialTimeout:      o.dialTimeout,
		Logger:           log,
	}
	for _, p := range o.ports {
		cfg.Listen = append(cfg.Listen, net.JoinHostPort(o.address, strconv.Itoa(p)))
	}
	for _, s := range o.secrets {
		cfg.Secrets = append(cfg.Secrets, s.Key)
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
	if o.statsPort != "" {
		log.Warn("the statistics port (-p) is not served yet; ignoring it", zap.String("port", o.statsPort))
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

// printLinks logs the links for every secret, port and mode the server
// serves: ee (one per domain) in fake-TLS mode, dd and classic otherwise
// or alongside with --allow-classic.
func printLinks(log *zap.Logger, o *options) {
	host := publicHost(o)
	var modes []secret.Secret
	for _, s := range o.secrets {
		if s.Mode == secret.FakeTLS && len(o.domains) == 0 {
			log.Warn("an ee secret needs -D DOMAIN to serve fake TLS; without it its key serves classic and dd clients",
				zap.String("secret", s.Hex()))
		}
		for _, d := range o.domains {
			modes = append(modes, s.WithMode(secret.FakeTLS, d))
		}
		if len(o.domains) == 0 || o.allowClassic {
			modes = append(modes, s.WithMode(secret.Secure, ""), s.WithMode(secret.Classic, ""))
		}
	}
	for _, s := range modes {
		for _, p := range o.ports {
			tg, tme := secret.Links(host, p, s)
			log.Info("client link", zap.Stringer("mode", s.Mode), zap.String("tg", tg), zap.String("https", tme))
		}
	}
}

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
