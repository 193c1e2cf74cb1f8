package main

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/backend/refresh"
	"github.com/mtproxy-go/mtproxy/server"
)

// stopTimeout bounds closing every connection once the drain is over.
const stopTimeout = 10 * time.Second

// proxy is a running proxy and what its signals act on.
type proxy struct {
	args    []string // the command line, read again with the config file on SIGHUP
	log     *zap.Logger
	level   zap.AtomicLevel
	logFile *logFile // nil when logging to stderr
	srv     *server.Server
	ref     *refresh.Refresher // middle-proxy mode only
	start   time.Time

	// opts are the settings in force: those of the start, with what
	// reloads changed. Read it with Load; only the signal loop stores.
	opts atomic.Pointer[options]

	done     chan struct{} // closed when Serve has returned
	serveErr error         // Serve's result, once done is closed
}

// run serves until a signal stops the proxy or the server fails, and
// returns the exit status.
func (p *proxy) run(sig <-chan os.Signal) int {
	p.done = make(chan struct{})
	go func() {
		p.serveErr = p.srv.Serve()
		close(p.done)
	}()
	select {
	case <-p.done:
		p.log.Error("cannot start", zap.Error(p.serveErr))
		return 1
	case <-p.srv.Ready():
	}
	for _, a := range p.srv.Addrs() {
		p.log.Info("listening", zap.Stringer("addr", a))
	}
	o := p.opts.Load()
	logLinks(p.log, o, nil)
	statsSrv, err := p.serveStats(o)
	if err != nil {
		p.log.Error("cannot serve statistics", zap.Error(err))
		p.stop()
		return 1
	}
	if statsSrv != nil {
		defer statsSrv.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if p.ref != nil {
		go p.ref.Run(ctx)
	}

	for {
		select {
		case <-p.done:
			if p.serveErr != nil {
				p.log.Error("proxy stopped", zap.Error(p.serveErr))
				return 1
			}
			return 0
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				p.reload(ctx)
			case syscall.SIGUSR1:
				p.reopenLog()
			default:
				return p.shutdown(s, sig)
			}
		}
	}
}

// shutdown drains after the first SIGTERM or SIGINT: no new clients, the
// open ones kept until they leave or --drain-timeout passes. A second
// SIGTERM or SIGINT closes them at once.
func (p *proxy) shutdown(first os.Signal, sig <-chan os.Signal) int {
	drain := p.opts.Load().drainTimeout
	if drain == 0 {
		p.log.Info("stopping", zap.Stringer("signal", first), zap.Int("clients", p.srv.Clients()))
		return p.stop()
	}
	p.log.Info("stopping: draining clients (a second signal closes them at once)", zap.Stringer("signal", first),
		zap.Int("clients", p.srv.Clients()), zap.Duration("drain_timeout", drain))
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- p.srv.Shutdown(ctx) }()
	for {
		select {
		case err := <-drained:
			if err != nil {
				p.log.Warn("drain", zap.Error(err))
				return p.stop()
			}
			return p.wait()
		case <-p.done:
			return p.wait()
		case s := <-sig:
			switch s {
			case syscall.SIGUSR1:
				p.reopenLog()
			case syscall.SIGHUP:
				p.log.Info("SIGHUP ignored while draining")
			default:
				p.log.Info("second signal: closing the remaining clients", zap.Stringer("signal", s),
					zap.Int("clients", p.srv.Clients()))
				cancel()
			}
		}
	}
}

// stop closes every connection and waits for the server to exit.
func (p *proxy) stop() int {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		p.log.Error("stop", zap.Error(err))
		return 1
	}
	return p.wait()
}

// wait waits for Serve to return after a stop.
func (p *proxy) wait() int {
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.log.Error("the server did not stop in time")
		return 1
	}
	if p.serveErr != nil {
		p.log.Error("proxy stopped", zap.Error(p.serveErr))
		return 1
	}
	p.log.Info("stopped")
	return 0
}

// reopenLog reopens --log-file, after logrotate moved it away.
func (p *proxy) reopenLog() {
	if p.logFile == nil {
		p.log.Info("SIGUSR1: logging to stderr; no --log-file to reopen")
		return
	}
	if err := p.logFile.Reopen(); err != nil {
		p.log.Error("SIGUSR1: cannot reopen the log file; still writing to the old one", zap.Error(err))
		return
	}
	p.log.Info("SIGUSR1: log file reopened", zap.String("path", p.logFile.path))
}

// reload re-reads the config file (if any) and applies what can change
// while running: the users and their secrets, the proxy tag, -v, the
// public host of the links and the drain timeout. Other changes are
// logged as needing a restart and the running values kept. A config that
// does not load changes nothing. The middle-proxy files are then re-read,
// in the background, as the periodic refresh does.
func (p *proxy) reload(ctx context.Context) {
	old := p.opts.Load()
	if old.configPath == "" {
		p.log.Info("SIGHUP: no --config file to re-read")
	} else {
		n, err := loadOptions("run", p.args)
		if err != nil {
			p.log.Error("SIGHUP: the configuration does not load; keeping the running one", zap.Error(err))
			return
		}
		if !p.apply(old, n) {
			return
		}
	}
	if p.ref != nil {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			p.ref.Reload(ctx) // logs what happened
		}()
	}
}

// apply makes the running proxy follow n where it can; false if it
// changed nothing because n was refused.
func (p *proxy) apply(old, n *options) bool {
	next := *old
	if len(n.users) == 0 {
		p.log.Warn("SIGHUP: the configuration has no secrets; keeping the running ones")
	} else {
		if err := p.srv.SetSecrets(n.keys()); err != nil {
			p.log.Error("SIGHUP: the new secrets are refused; keeping the running configuration", zap.Error(err))
			return false
		}
		next.secrets, next.fileUsers, next.users = n.secrets, n.fileUsers, n.users
	}
	if old.middle && n.middle && !bytes.Equal(old.proxyTag, n.proxyTag) {
		if err := p.srv.SetAdTag(n.proxyTag); err != nil {
			p.log.Error("SIGHUP: the new proxy tag is refused; keeping the running one", zap.Error(err))
		} else {
			next.proxyTag = n.proxyTag
			p.log.Info("SIGHUP: proxy tag changed", zap.Bool("set", n.proxyTag != nil))
		}
	}
	for _, name := range restartOnlyChanges(old, n) {
		p.log.Warn("SIGHUP: this setting changed but needs a restart; keeping the running value", zap.String("setting", name))
	}
	next.publicHost, next.verbosity, next.drainTimeout = n.publicHost, n.verbosity, n.drainTimeout
	p.level.SetLevel(logLevel(&next))
	p.opts.Store(&next)

	added, removed, changed := diffUsers(old.users, next.users)
	p.log.Info("SIGHUP: configuration reloaded", zap.Int("users", len(next.users)),
		zap.Strings("added", added), zap.Strings("removed", removed), zap.Strings("changed", changed))
	fresh := map[string]bool{}
	for _, name := range append(added, changed...) {
		fresh[name] = true
	}
	if next.publicHost != old.publicHost {
		fresh = nil // every link changed
	}
	if fresh == nil || len(fresh) > 0 {
		logLinks(p.log, &next, fresh)
	}
	return true
}

// restartOnlyChanges names the settings that differ between a and b and
// cannot change while the proxy runs.
func restartOnlyChanges(a, b *options) []string {
	var changed []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"http-ports", a.ports, b.ports},
		{"address", a.address, b.address},
		{"ipv6", a.ipv6, b.ipv6},
		{"slaves", a.slaves, b.slaves},
		{"max-special-connections", a.maxConnections, b.maxConnections},
		{"max-connections-per-ip", a.maxPerIP, b.maxPerIP},
		{"msg-buffers-size", a.bufferBudget, b.bufferBudget},
		{"user", a.user, b.user},
		{"port", a.statsPort, b.statsPort},
		{"http-stats", a.httpStats, b.httpStats},
		{"stats-address", a.statsAddress, b.statsAddress},
		{"dc", a.dcOverrides, b.dcOverrides},
		{"prefer-ipv6", a.preferIPv6, b.preferIPv6},
		{"fast-mode", a.fastMode, b.fastMode},
		{"log-format", a.logFormat, b.logFormat},
		{"log-file", a.logFile, b.logFile},
		{"handshake-timeout", a.handshakeTimeout, b.handshakeTimeout},
		{"idle-timeout", a.idleTimeout, b.idleTimeout},
		{"dc-connect-timeout", a.dialTimeout, b.dialTimeout},
		{"domain", a.domains, b.domains},
		{"fronting", a.fronting, b.fronting},
		{"allow-classic", a.allowClassic, b.allowClassic},
		{"replay-cache-size", a.replaySize, b.replaySize},
		{"replay-window", a.replayWindow, b.replayWindow},
		{"middle-proxy", a.middle, b.middle},
		{"proxy-multi-conf", a.proxyConfig, b.proxyConfig},
		{"aes-pwd", a.proxySecret, b.proxySecret},
		{"proxy-config-url", a.configURL, b.configURL},
		{"proxy-secret-url", a.secretURL, b.secretURL},
		{"config-refresh", a.configRefresh, b.configRefresh},
		{"nat-info", a.nat, b.nat},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			changed = append(changed, s.name)
		}
	}
	return changed
}

// diffUsers compares two user lists by name.
func diffUsers(old, cur []namedSecret) (added, removed, changed []string) {
	before := map[string]namedSecret{}
	for _, u := range old {
		before[u.name] = u
	}
	after := map[string]bool{}
	for _, u := range cur {
		after[u.name] = true
		prev, ok := before[u.name]
		switch {
		case !ok:
			added = append(added, u.name)
		case prev.secret.Key != u.secret.Key:
			changed = append(changed, u.name)
		}
	}
	for _, u := range old {
		if !after[u.name] {
			removed = append(removed, u.name)
		}
	}
	return added, removed, changed
}
