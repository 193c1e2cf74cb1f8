// Package statsweb serves the proxy's statistics over HTTP for operators:
//
//   - GET /stats: the official MTProxy's text format, one "key\tvalue\n"
//     line per statistic (protocol.md §8), answered only to a loopback
//     client as the official does. The keys and their order are in
//     statsTable (text.go), which also lists the official keys left out;
//     per-user lines follow them.
//   - GET /metrics: the Prometheus exposition format from a private
//     registry: the proxy's counters and gauges (mtproxy_*), the Go
//     runtime's (go_*) and the process's (process_*).
//
// Every request takes one stats.Snapshot from the source, bounded by a
// timeout (DefaultTimeout). A client secret never appears in the output:
// per-user series are labelled with the name the caller gives the secret,
// or with a short hash of it (UserLabel).
//
// Listen binds a loopback address for the handler (a public one only when
// asked explicitly) and serves it with bounded http.Server timeouts.
package statsweb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/stats"
)

// DefaultTimeout bounds each request's call of the source.
const DefaultTimeout = 5 * time.Second

// Source returns the proxy's statistics at one moment; it should give up
// when ctx is done. (*server.Server).Snapshot is one.
type Source func(ctx context.Context) (stats.Snapshot, error)

// Info holds the facts about the running proxy that are not counters. The
// caller's info function is called once per request, so a field may change
// (a reloaded configuration, a new secret name) between requests.
type Info struct {
	Version    string    // build version, printed as is
	StartTime  time.Time // when the proxy started; zero leaves out start_time and uptime
	CipherTier string    // AES kernel in use (cipher tier name)
	Mode       string    // "direct" or "middle"

	ProxyTagSet    bool // middle-proxy mode with an ad tag (-P)
	MaxConnections int  // cap on open client connections (-C); 0: none

	// Middle-proxy configuration (proxy-multi.conf); zero values are left
	// out of /stats (direct mode has none).
	ConfigFile     string    // path or URL the configuration came from
	ConfigLoadedAt time.Time // when the configuration in use was loaded
	ConfigSize     int       // its size in bytes
	ConfigMD5      string    // MD5 of it, 32 hex digits
	ConfigClusters int       // DC clusters it declares

	// Users names client secrets for the per-user statistics: 16-byte key
	// → user name. A secret with no (usable) name is labelled by a short
	// hash instead (UserLabel). The map is only read.
	Users map[[16]byte]string
}

// Mode values of Info.Mode.
const (
	ModeDirect = "direct"
	ModeMiddle = "middle"
)

// Option configures New.
type Option func(*Handler)

// WithTimeout bounds each request's call of the source to d (default
// DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// Handler serves /stats and /metrics; every other path is 404.
type Handler struct {
	source  Source
	info    func() Info
	log     *zap.Logger
	timeout time.Duration

	registry *prometheus.Registry
	metrics  http.Handler
}

// New returns the handler for the source. info (nil: none) supplies the
// non-counter facts; logger (nil: none) gets the failed requests.
func New(source Source, info func() Info, logger *zap.Logger, opts ...Option) *Handler {
	if info == nil {
		info = func() Info { return Info{} }
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	h := &Handler{source: source, info: info, log: logger, timeout: DefaultTimeout}
	for _, o := range opts {
		o(h)
	}
	h.registry = prometheus.NewRegistry()
	h.registry.MustRegister(
		newCollector(h),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h.metrics = promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{h.log},
		ErrorHandling:       promhttp.HTTPErrorOnError,
		Registry:            h.registry, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
	})
	return h
}

// ServeHTTP routes /stats and /metrics.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		h.serveStats(w, r)
	case "/metrics":
		h.serveMetrics(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.metrics.ServeHTTP(w, r)
}

// snapshot calls the source bounded by ctx and the handler's timeout. It
// returns at the deadline even if the source does not; the source's
// goroutine then ends whenever the source returns.
func (h *Handler) snapshot(ctx context.Context) (stats.Snapshot, error) {
	if h.source == nil {
		return stats.Snapshot{}, errors.New("no statistics source")
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	type result struct {
		snap stats.Snapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		snap, err := h.source(ctx)
		done <- result{snap, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return stats.Snapshot{}, fmt.Errorf("taking a statistics snapshot: %w", res.err)
		}
		return res.snap, nil
	case <-ctx.Done():
		return stats.Snapshot{}, fmt.Errorf("taking a statistics snapshot: %w", context.Cause(ctx))
	}
}

// isLoopback reports whether an http.Request.RemoteAddr is a loopback
// address (127.0.0.0/8, ::1, or 127.x mapped into IPv6).
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// promLogger passes promhttp's errors to zap.
type promLogger struct{ l *zap.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("statistics: /metrics failed", zap.String("error", strings.TrimSpace(fmt.Sprintln(v...))))
}
