// Package refresh keeps the middle-proxy configuration current: the
// proxy-multi.conf that lists the middle proxies of each DC and the
// proxy-secret shared with them (protocol.md §6.1), each read from a file
// or downloaded from Telegram.
//
// Load reads both once, at start; an error there refuses the start, since
// there is nothing to fall back on. After that, Refresher.Run reads them
// again every Config.Interval and Refresher.Reload on demand. The policy
// after start is to keep the last good configuration: a download that
// fails, is too large or does not parse is logged and dropped, and the
// proxy keeps routing with what it has. An empty configuration is never
// applied, as it would wipe the routing. Only a change, byte for byte,
// of either file reaches Config.Apply.
//
// The others: the official MTProxy downloads nothing and cannot reload
// (its README advises re-downloading about daily, which means a restart);
// mtprotoproxy re-downloads both files every 24 h and mtg v2 the
// configuration every hour.
package refresh

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
)

// Telegram's official addresses of the two files.
const (
	DefaultConfigURL = "https://core.telegram.org/getProxyConfig"
	DefaultSecretURL = "https://core.telegram.org/getProxySecret"
)

// DefaultInterval is how often to refresh. Telegram changes the files
// rarely and a missed change costs little (stale middle proxies still
// work for a while), so four times a day is plenty; it sits between mtg
// (hourly) and mtprotoproxy (daily).
const DefaultInterval = 6 * time.Hour

// DefaultTimeout bounds one download when Config.Client is nil.
const DefaultTimeout = 30 * time.Second

// A Source says where one file comes from: a local path or an HTTP(S) URL.
// Exactly one must be set.
type Source struct {
	Path string
	URL  string
}

// String returns the path or URL, for logs and errors.
func (s Source) String() string {
	if s.URL != "" {
		return s.URL
	}
	return s.Path
}

func (s Source) check() error {
	switch {
	case s.Path != "" && s.URL != "":
		return errors.New("both a path and a URL given")
	case s.Path == "" && s.URL == "":
		return errors.New("no path or URL given")
	case s.URL != "":
		u, err := url.Parse(s.URL)
		if err != nil {
			return err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("URL %s: want http or https", s.URL)
		}
	}
	return nil
}

// Config configures Load and the Refresher it returns.
type Config struct {
	ProxyConfig Source        // proxy-multi.conf
	ProxySecret Source        // proxy-secret
	Interval    time.Duration // between refreshes; 0 = never refresh after Load
	Client      *http.Client  // nil = one with DefaultTimeout
	Logger      *zap.Logger   // nil = zap.NewNop()

	// Apply receives a configuration that changed after Load (Load itself
	// returns the first). It is called from the goroutine running Run or
	// Reload, one call at a time, in order; it must not call Reload, which
	// would deadlock. The part that did not change is passed as it was
	// last time. Neither argument may be modified. nil = changes are only
	// logged.
	Apply func(conf *proxyconf.Config, secret []byte)
}

// A Refresher holds the last good configuration and refreshes it.
type Refresher struct {
	cfg Config // defaults filled in

	mu         sync.Mutex // serialises refreshes, so Apply sees them in order
	confData   []byte     // last good files, raw, to detect changes
	secretData []byte
	conf       *proxyconf.Config
	secret     []byte
	// status describes conf; read without mu, which a download holds.
	status atomic.Pointer[Status]
}

// Status describes the proxy-multi.conf in use, for the statistics.
type Status struct {
	Source   string    // its path or URL
	LoadedAt time.Time // when this version was taken
	Size     int       // bytes
	MD5      string    // hex, as the official's config_md5
	Clusters int
}

// Status returns the state of the configuration in use. It does not wait
// for a refresh under way.
func (r *Refresher) Status() Status { return *r.status.Load() }

// Load reads both files once and returns them parsed, with a Refresher
// that keeps them current. An error names the file that failed and where
// it came from; a syntax error in proxy-multi.conf wraps the
// *proxyconf.SyntaxError with its line number.
func Load(ctx context.Context, cfg *Config) (*Refresher, *proxyconf.Config, []byte, error) {
	c := *cfg
	if err := c.ProxyConfig.check(); err != nil {
		return nil, nil, nil, fmt.Errorf("refresh: proxy config: %w", err)
	}
	if err := c.ProxySecret.check(); err != nil {
		return nil, nil, nil, fmt.Errorf("refresh: proxy secret: %w", err)
	}
	if c.Interval < 0 {
		return nil, nil, nil, fmt.Errorf("refresh: negative interval %v", c.Interval)
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	r := &Refresher{cfg: c}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.refresh(ctx); err != nil {
		return nil, nil, nil, err
	}
	r.log("middle-proxy configuration loaded", nil)
	return r, r.conf, r.secret, nil
}

// Run refreshes every Interval until ctx is done. With an Interval of 0 it
// returns at once.
func (r *Refresher) Run(ctx context.Context) {
	if r.cfg.Interval == 0 {
		return
	}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Reload logs the error; the last good stays.
			_ = r.Reload(ctx)
		}
	}
}

// Reload refreshes now, as Run does on each tick, and also returns the
// error it logs. It is safe to call at any time, from any goroutine.
func (r *Refresher) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed, err := r.refresh(ctx)
	switch {
	case err != nil:
		r.cfg.Logger.Warn("middle-proxy configuration refresh failed; keeping the last good one", zap.Error(err))
		return err
	case len(changed) == 0:
		r.cfg.Logger.Debug("middle-proxy configuration unchanged")
		return nil
	}
	r.log("middle-proxy configuration changed", changed)
	if r.cfg.Apply != nil {
		r.cfg.Apply(r.conf, r.secret)
	}
	return nil
}

// refresh reads both files and, if both are good, makes them the last
// good ones. It returns which changed. Either file failing keeps both
// old ones: the two are one configuration. Callers hold r.mu.
func (r *Refresher) refresh(ctx context.Context) (changed []string, err error) {
	confData, err := r.fetch(ctx, r.cfg.ProxyConfig, proxyconf.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("refresh: proxy config: %w", err)
	}
	secretData, err := r.fetch(ctx, r.cfg.ProxySecret, proxyconf.MaxSecretLen)
	if err != nil {
		return nil, fmt.Errorf("refresh: proxy secret: %w", err)
	}

	conf, secret := r.conf, r.secret
	if r.conf == nil || !bytes.Equal(confData, r.confData) {
		conf, err = proxyconf.Parse(r.cfg.ProxyConfig.String(), confData)
		if err != nil {
			return nil, fmt.Errorf("refresh: proxy config: %w", err)
		}
		// Parse refuses this already; checked again because wiping the
		// routing is the one failure this package exists to prevent.
		if len(conf.Clusters()) == 0 {
			return nil, fmt.Errorf("refresh: proxy config: %s: no clusters", r.cfg.ProxyConfig)
		}
		changed = append(changed, "proxy config")
	}
	if r.secret == nil || !bytes.Equal(secretData, r.secretData) {
		secret, err = proxyconf.ParseSecret(secretData)
		if err != nil {
			return nil, fmt.Errorf("refresh: proxy secret: %s: %w", r.cfg.ProxySecret, err)
		}
		changed = append(changed, "proxy secret")
	}
	if r.conf != conf {
		sum := md5.Sum(confData)
		r.status.Store(&Status{
			Source:   r.cfg.ProxyConfig.String(),
			LoadedAt: time.Now(),
			Size:     len(confData),
			MD5:      hex.EncodeToString(sum[:]),
			Clusters: len(conf.Clusters()),
		})
	}
	r.confData, r.secretData, r.conf, r.secret = confData, secretData, conf, secret
	return changed, nil
}

// fetch reads the file src, refusing one of more than limit bytes. Only
// limit+1 bytes are read, so a runaway server cannot exhaust memory.
func (r *Refresher) fetch(ctx context.Context, src Source, limit int) ([]byte, error) {
	var body io.ReadCloser
	if src.Path != "" {
		f, err := os.Open(src.Path)
		if err != nil {
			return nil, err // names the path
		}
		body = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.URL, err)
		}
		resp, err := r.cfg.Client.Do(req)
		if err != nil {
			// A *url.Error repeats the URL with quotes; name it once.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("%s: %w", src.URL, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("%s: HTTP status %s", src.URL, resp.Status)
		}
		body = resp.Body
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", src, limit)
	}
	return data, nil
}

// log logs msg at Info with a summary of the current configuration.
func (r *Refresher) log(msg string, changed []string) {
	targets := 0
	for _, cl := range r.conf.Clusters() {
		targets += len(cl.Targets)
	}
	fields := []zap.Field{
		zap.Int("clusters", len(r.conf.Clusters())),
		zap.Int("targets", targets),
		zap.Int("default_dc", r.conf.Default()),
		// The first 4 bytes of the secret name it to the middle proxies
		// (RPC_NONCE), so they tell which secret is in use.
		zap.String("key_selector", hex.EncodeToString(r.secret[:4])),
		zap.Stringer("config_source", r.cfg.ProxyConfig),
		zap.Stringer("secret_source", r.cfg.ProxySecret),
	}
	if changed != nil {
		fields = append(fields, zap.Strings("changed", changed))
	}
	r.cfg.Logger.Info(msg, fields...)
}
