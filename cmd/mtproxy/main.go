// Command mtproxy runs a Telegram MTProto proxy.
//
// With no arguments it listens on 0.0.0.0:8443 in direct mode against
// Telegram's DCs with a freshly generated secret, and prints the links
// clients use. See README.md for the flags.
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
	"github.com/mtproxy-go/mtproxy/cipher"
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
	srv, err := server.New(cfg)
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
	if o.user != "" {
		user := o.user
		cfg.AfterBind = func() error { return dropPrivileges(user) }
	}
	if o.statsPort != "" {
		log.Warn("the statistics port (-p) is not served yet; ignoring it", zap.String("port", o.statsPort))
	}
	return cfg, nil
}

// printLinks logs the links for every secret and port. The server tells
// classic and dd clients apart by their header, so both forms work.
func printLinks(log *zap.Logger, o *options) {
	host := publicHost(o)
	for _, s := range o.secrets {
		if s.Mode == secret.FakeTLS {
			log.Warn("fake TLS (ee secrets, -D) is not supported yet; the key of this secret serves classic and dd clients",
				zap.String("secret", s.Hex()))
		}
		for _, p := range o.ports {
			for _, m := range []secret.Mode{secret.Secure, secret.Classic} {
				tg, tme := secret.Links(host, p, s.WithMode(m, ""))
				log.Info("client link", zap.Stringer("mode", m), zap.String("tg", tg), zap.String("https", tme))
			}
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
