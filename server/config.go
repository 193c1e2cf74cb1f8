package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/backend/dc"
	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// Config is what a Server needs to run. Zero durations and sizes take the
// defaults below.
type Config struct {
	// Listen holds the client listening addresses, host:port each.
	Listen []string
	// Secrets are the 16-byte client keys; none means secretless mode.
	Secrets [][16]byte
	// DCs maps DC indexes to addresses.
	DCs *dc.Table
	// PreferIPv6 picks a DC's IPv6 address when it has one.
	PreferIPv6 bool
	// Loops is the number of reactors; 0 means one per core.
	Loops int
	// MaxConnections caps open client connections; 0 means no cap.
	// Connections over the cap are accepted and closed at once.
	MaxConnections int
	// MaxConnectionsPerIP caps open client connections from one source
	// address; 0 means no cap. Connections over it are closed at once.
	MaxConnectionsPerIP int
	// BufferBudget bounds the bytes all connections together may hold
	// queued (outbound buffers, pre-connection queues). Flow control
	// bounds each connection's share; above the budget the least recently
	// active clients holding buffers are closed until the total is back
	// under three quarters of it. 0 means DefaultBufferBudget; negative
	// means no budget.
	BufferBudget int64

	// HandshakeTimeout bounds the time from accept to a valid header. A
	// client that sent a header matching no secret is held (and its bytes
	// swallowed, as the official proxy does) until then.
	HandshakeTimeout time.Duration
	// DialTimeout bounds connecting to a DC.
	DialTimeout time.Duration
	// IdleTimeout closes a pair that carried no byte either way for so long.
	IdleTimeout time.Duration
	// CloseTimeout bounds how long a conn whose peer has gone may take to
	// deliver what is still queued for it.
	CloseTimeout time.Duration

	// HighWatermark and LowWatermark bound the bytes queued towards one
	// conn: above the high mark its source stops being read, below the low
	// mark reading resumes.
	HighWatermark, LowWatermark int

	// FastMode has each DC encipher its output with the client's own
	// stream, so DC→client bytes pass with no AES work and each pair keeps
	// two streams instead of four (obfuscated2.NewBackendFast).
	FastMode bool

	// Domains turns fake TLS on (ee secrets, the official -D): clients must
	// open with a ClientHello signed with a secret and naming one of these
	// hosts (or none), and anything else is relayed to FrontingAddr so that
	// a prober meets the real site.
	Domains []string
	// FrontingAddr is the real site, host:port; required with Domains.
	FrontingAddr string
	// AllowClassic also accepts plain obfuscated2 clients in fake-TLS mode
	// (the official refuses them); a failed header is fronted all the same.
	AllowClassic bool
	// Replay remembers accepted ClientHellos; a default-sized cache is made
	// when nil.
	Replay *faketls.ReplayCache
	// Shape is the ServerHello's shape, learned from the real site
	// (faketls.Probe); faketls.DefaultShape when zero.
	Shape faketls.Shape

	// Middle turns middle-proxy mode on (protocol.md §6): clients are
	// multiplexed over RPC connections to Telegram's middle proxies
	// instead of each getting its own DC connection. DCs, PreferIPv6 and
	// FastMode then do not apply.
	Middle *MiddleConfig

	// AfterBind runs once the listeners are bound, before any client is
	// served (e.g. to drop privileges). An error stops the server.
	AfterBind func() error

	Logger *zap.Logger
}

// Defaults, chosen for a public proxy.
const (
	DefaultHandshakeTimeout = 10 * time.Second // the official's and mtg's
	DefaultDialTimeout      = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute // clients ping well within this
	DefaultCloseTimeout     = 30 * time.Second
	// One read is up to 256 KiB (readBufferCap); 512 KiB of backlog keeps
	// a fast pair busy between two resume checks while a slow one costs at
	// most about a megabyte.
	DefaultHighWatermark = 512 << 10
	DefaultLowWatermark  = 128 << 10
	// DefaultBufferBudget is four times the official's 256 MiB buffer
	// cap: direct-mode pairs each hold up to about a megabyte while their
	// reader lags, and a busy proxy has hundreds of them.
	DefaultBufferBudget = 1 << 30
)

func (c *Config) setDefaults() error {
	if len(c.Listen) == 0 {
		return errors.New("server: no listening address")
	}
	for _, a := range c.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("server: listen address %q: %w", a, err)
		}
	}
	if c.Loops < 0 || c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 {
		return errors.New("server: negative loop count or connection cap")
	}
	if c.BufferBudget == 0 {
		c.BufferBudget = DefaultBufferBudget
	}
	if c.DCs == nil {
		c.DCs = dc.Default()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.HandshakeTimeout, DefaultHandshakeTimeout},
		{&c.DialTimeout, DefaultDialTimeout},
		{&c.IdleTimeout, DefaultIdleTimeout},
		{&c.CloseTimeout, DefaultCloseTimeout},
	} {
		if *d.v < 0 {
			return errors.New("server: negative timeout")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.HighWatermark == 0 {
		c.HighWatermark = DefaultHighWatermark
	}
	if c.LowWatermark == 0 {
		c.LowWatermark = min(DefaultLowWatermark, c.HighWatermark/2)
	}
	if c.LowWatermark < 0 || c.LowWatermark >= c.HighWatermark {
		return fmt.Errorf("server: low watermark %d must be below high watermark %d", c.LowWatermark, c.HighWatermark)
	}
	if c.Middle != nil {
		if err := c.Middle.setDefaults(); err != nil {
			return err
		}
	}
	return c.setTLSDefaults()
}

// MiddleConfig configures middle-proxy mode. Server.SetMiddleProxy
// replaces ProxyConfig and Secret while the server runs.
type MiddleConfig struct {
	// ProxyConfig lists the middle proxies of each DC (proxy-multi.conf).
	ProxyConfig *proxyconf.Config
	// Secret is the proxy secret shared with the middle proxies.
	Secret []byte
	// AdTag is the 16-byte proxy tag from @MTProxybot (the official -P),
	// sent with every request so that clients see the promoted channel;
	// nil sends none.
	AdTag []byte
	// NAT maps a local address to the public one the middle proxies and
	// clients see (the official --nat-info): both the RPC keys and the
	// proxy address in each request use it.
	NAT map[netip.Addr]netip.Addr
	// ConnsPerTarget is how many RPC connections each reactor keeps to
	// each middle proxy; 0 spreads the config's min_connections over the
	// reactors (at least one each).
	ConnsPerTarget int
	// HandshakeTimeout bounds connecting to a middle proxy and its nonce
	// and handshake exchange.
	HandshakeTimeout time.Duration
	// ReconnectDelay is the first delay before reconnecting to a middle
	// proxy after a failure; it grows 1.5 times per failure in a row up to
	// MaxReconnectDelay.
	ReconnectDelay, MaxReconnectDelay time.Duration
	// ClientQueueLimit bounds the bytes queued towards one client. The
	// middle proxy's answers cannot be held back for one client without
	// holding back every client sharing its connection, so a client whose
	// queue passes the bound is closed instead (stats MPOverflow).
	ClientQueueLimit int
}

// Middle-proxy defaults: the official's timeouts and back-off (protocol.md
// §10), and half its 32 MiB per-connection buffer bound.
const (
	DefaultMPHandshakeTimeout  = 3 * time.Second
	DefaultMPReconnectDelay    = time.Second
	DefaultMPMaxReconnectDelay = 20 * time.Second
	DefaultMPClientQueueLimit  = 16 << 20
)

func (m *MiddleConfig) setDefaults() error {
	if m.ProxyConfig == nil || len(m.ProxyConfig.Clusters()) == 0 {
		return errors.New("server: middle-proxy mode needs a proxy config with at least one middle proxy")
	}
	if _, err := proxyconf.ParseSecret(m.Secret); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if m.AdTag != nil && len(m.AdTag) != 16 {
		return fmt.Errorf("server: proxy tag of %d bytes, want 16", len(m.AdTag))
	}
	if m.ConnsPerTarget < 0 || m.HandshakeTimeout < 0 || m.ReconnectDelay < 0 || m.MaxReconnectDelay < 0 || m.ClientQueueLimit < 0 {
		return errors.New("server: negative middle-proxy setting")
	}
	if m.HandshakeTimeout == 0 {
		m.HandshakeTimeout = DefaultMPHandshakeTimeout
	}
	if m.ReconnectDelay == 0 {
		m.ReconnectDelay = DefaultMPReconnectDelay
	}
	if m.MaxReconnectDelay == 0 {
		m.MaxReconnectDelay = max(DefaultMPMaxReconnectDelay, m.ReconnectDelay)
	}
	if m.ClientQueueLimit == 0 {
		m.ClientQueueLimit = DefaultMPClientQueueLimit
	}
	return nil
}

func (c *Config) fakeTLS() bool { return len(c.Domains) > 0 }

func (c *Config) setTLSDefaults() error {
	if !c.fakeTLS() {
		return nil
	}
	if len(c.Secrets) == 0 {
		return errors.New("server: fake TLS (domains) needs at least one secret")
	}
	for _, d := range c.Domains {
		if err := secret.CheckDomain(d); err != nil {
			return fmt.Errorf("server: domain %q: %w", d, err)
		}
	}
	if _, _, err := net.SplitHostPort(c.FrontingAddr); err != nil {
		return fmt.Errorf("server: fronting address %q: %w", c.FrontingAddr, err)
	}
	if c.Replay == nil {
		c.Replay = faketls.NewReplayCache(faketls.ReplayConfig{}, time.Now())
	}
	if c.Shape.AppDataLen == 0 {
		shape, err := faketls.DefaultShape(rand.Reader)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		c.Shape = shape
	}
	return nil
}

// knownDomain reports whether sni is one of the fake-TLS domains. Host
// names compare case-insensitively.
func (c *Config) knownDomain(sni []byte) bool {
	for _, d := range c.Domains {
		if strings.EqualFold(d, string(sni)) {
			return true
		}
	}
	return false
}
