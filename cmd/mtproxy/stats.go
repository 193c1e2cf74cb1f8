package main

import (
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/cipher"
	"github.com/mtproxy-go/mtproxy/stats/statsweb"
)

// defaultStatsPort is where --http-stats serves without -p (the port the
// official's documentation uses).
const defaultStatsPort = "8888"

// serveStats starts /stats and /metrics at the -p port (or defaultStatsPort
// with --http-stats alone) of --stats-address; nil when neither is given.
func (p *proxy) serveStats(o *options) (*statsweb.Server, error) {
	port := o.statsPort
	if port == "" {
		if !o.httpStats {
			return nil, nil
		}
		port = defaultStatsPort
	}
	h := statsweb.New(p.srv.Snapshot, p.statsInfo, p.log)
	opts := []statsweb.ListenOption{statsweb.ListenLogger(p.log)}
	if ip, err := netip.ParseAddr(o.statsAddress); err == nil && !ip.IsLoopback() {
		p.log.Warn("statistics listen beyond loopback: /metrics is reachable from the network; /stats still answers loopback only",
			zap.String("address", o.statsAddress))
		opts = append(opts, statsweb.AllowNonLoopback())
	}
	srv, err := statsweb.Listen(net.JoinHostPort(o.statsAddress, port), h, opts...)
	if err != nil {
		return nil, err
	}
	p.log.Info("statistics", zap.String("stats", "http://"+srv.Addr().String()+"/stats"),
		zap.String("metrics", "http://"+srv.Addr().String()+"/metrics"))
	return srv, nil
}

// statsInfo is what the statistics show besides the server's counters,
// read at each request so that reloads show.
func (p *proxy) statsInfo() statsweb.Info {
	o := p.opts.Load()
	info := statsweb.Info{
		Version:        version(),
		StartTime:      p.start,
		CipherTier:     cipher.ActiveTier(),
		Mode:           statsweb.ModeDirect,
		MaxConnections: o.maxConnections,
		Users:          o.keyNames(),
	}
	if p.ref != nil {
		st := p.ref.Status()
		info.Mode = statsweb.ModeMiddle
		info.ProxyTagSet = o.proxyTag != nil
		info.ConfigFile, info.ConfigLoadedAt, info.ConfigSize = st.Source, st.LoadedAt, st.Size
		info.ConfigMD5, info.ConfigClusters = st.MD5, st.Clusters
	}
	return info
}

// version names the build: module version and commit when known.
func version() string {
	v := "mtproxy-go"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v += " " + bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " commit " + s.Value[:12]
		}
	}
	return v
}

// processStart is when the proxy started, for uptime.
var processStart = time.Now()
