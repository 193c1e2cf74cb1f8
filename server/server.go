// Package server is the proxy's data plane: gnet reactors that accept
// Telegram clients, check their obfuscated2 header (or fake-TLS hello),
// and either connect each to its DC and relay both ways (direct mode) or
// carry its packets over RPC connections to Telegram's middle proxies
// (middle-proxy mode, middle.go and mppool.go).
//
// # Threads
//
// A DC socket is registered on the event loop of the client it serves
// (loop.dial), so one loop owns both sockets of a pair: relaying takes no
// lock and never hands bytes to another thread. Likewise each loop keeps
// its own RPC connections to the middle proxies and its own shard of the
// ext_connection table, for its own clients. Per-loop state (timeouts, the
// epoll descriptor used for flow control, counters) lives in a loop value
// that only that loop touches; what is shared is read-mostly (the secret
// set and middle-proxy settings behind atomic pointers, replaced on
// reload), an atomic client count, each loop's queued-byte total for the
// buffer budget, and the per-IP counts behind sharded mutexes at accept
// and close.
//
// # Where bytes are copied
//
//   - kernel → gnet's per-loop read buffer (the read syscall);
//   - deciphered and re-enciphered in place in that buffer, in one fused
//     pass over both AES-CTR streams (cipher.XORKeyStreams), no copy;
//   - buffer → kernel (the write syscall), straight from the read buffer
//     when the peer's socket takes it all;
//   - what the peer's socket does not take is copied once into gnet's
//     outbound buffer, because the read buffer is reused by the next read;
//     flow control (package flowctl) bounds that backlog;
//   - bytes a client sends before its DC connection is up are copied once
//     into pooled chunks (package chunk) for the same reason, and written
//     to the DC with one writev when it connects.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/mtproxy-go/mtproxy/stats"
)

// readBufferCap is the size of each loop's read buffer: one read per
// readable event. 256 KiB moves ~12% more bytes per CPU-second than gnet's
// 64 KiB default in the bulk benchmark (fewer syscalls and wake-ups per
// byte); 1 MiB gains nothing more. It is per loop, not per connection.
const readBufferCap = 256 << 10

// Server is a direct-mode MTProxy.
type Server struct {
	cfg Config
	log *zap.Logger

	eng     gnet.Engine
	addrs   []net.Addr
	bootErr error
	ready   chan struct{}
	done    chan struct{}

	loops     sync.Map // gnet.EventLoop → *loop
	numLoops  int
	loopIndex atomic.Int32 // the next loop's index
	clients   atomic.Int64
	// dialer reaches DCs and fronted sites: no TCP keep-alive, as the idle
	// timeout already ends a dead pair and the option costs syscalls on
	// every new client. mpDialer reaches middle proxies, long-lived
	// connections whose death keep-alive must find, with the official's
	// settings (protocol.md §6.10).
	dialer, mpDialer net.Dialer

	mpSettings atomic.Pointer[mpSettings] // middle-proxy mode only
	adTag      atomic.Pointer[[]byte]     // middle-proxy mode only

	// secrets are the client keys new clients are checked against; loops
	// pick up a replaced set at their next handshake.
	secrets  atomic.Pointer[secretSet]
	draining atomic.Bool
	stopping atomic.Bool

	perIP      *ipCounts      // nil without a per-IP cap
	loopQueued []atomic.Int64 // each loop's queued bytes at its last sweep
}

// secretSet is one version of the client keys.
type secretSet struct{ keys [][16]byte }

// key returns the key of index i, or the zero key for secretless
// clients (i < 0).
func (ss *secretSet) key(i int) [16]byte {
	if i < 0 || i >= len(ss.keys) {
		return [16]byte{}
	}
	return ss.keys[i]
}

// SetSecrets replaces the client keys for new connections; clients already
// connected keep going. A server started without secrets (secretless)
// cannot be given some, nor the other way round, and fake TLS needs one.
func (s *Server) SetSecrets(keys [][16]byte) error {
	if (len(keys) == 0) != (len(s.secrets.Load().keys) == 0) {
		return errors.New("server: cannot switch between secretless and secret mode while running")
	}
	s.secrets.Store(&secretSet{keys: slices.Clone(keys)})
	return nil
}

// SetAdTag replaces the proxy tag of middle-proxy mode for new clients; nil
// sends none.
func (s *Server) SetAdTag(tag []byte) error {
	if s.cfg.Middle == nil {
		return errors.New("server: a proxy tag needs middle-proxy mode")
	}
	if tag != nil && len(tag) != 16 {
		return fmt.Errorf("server: proxy tag of %d bytes, want 16", len(tag))
	}
	tag = slices.Clone(tag)
	s.adTag.Store(&tag)
	return nil
}

// New checks cfg and returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: -1},
		mpDialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 40 * time.Second, Interval: 40 * time.Second, Count: 5}},
		numLoops: cfg.Loops,
	}
	if s.numLoops == 0 {
		s.numLoops = runtime.NumCPU()
	}
	if m := cfg.Middle; m != nil {
		s.mpSettings.Store(&mpSettings{conf: m.ProxyConfig, secret: m.Secret})
		s.adTag.Store(&m.AdTag)
	}
	s.secrets.Store(&secretSet{keys: cfg.Secrets})
	s.loopQueued = make([]atomic.Int64, s.numLoops)
	if cfg.MaxConnectionsPerIP > 0 {
		s.perIP = newIPCounts()
	}
	return s, nil
}

// Serve binds the listeners and runs the reactors until Stop or a fatal
// error.
func (s *Server) Serve() error {
	protoAddrs := make([]string, len(s.cfg.Listen))
	for i, a := range s.cfg.Listen {
		protoAddrs[i] = "tcp://" + a
	}
	err := gnet.Rotate(&handler{srv: s}, protoAddrs,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.numLoops),
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithReuseAddr(true),
		gnet.WithReadBufferCap(readBufferCap),
		// gnet warns of events for connections closed earlier in the same
		// epoll batch, routine under floods; its failures reach us as
		// errors anyway.
		gnet.WithLogger(s.log.Named("gnet").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)).Sugar()),
	)
	if s.bootErr != nil {
		return s.bootErr
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// Ready is closed once the listeners are bound and the reactors run.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound listening addresses (ports resolved), once Ready.
func (s *Server) Addrs() []net.Addr { return s.addrs }

// Clients returns the number of open client connections.
func (s *Server) Clients() int { return int(s.clients.Load()) }

// Stop closes the listeners and every connection, and waits for the
// reactors to exit. Later calls only wait.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.ready:
	default: // a done ctx must not win over a server that is ready
		select {
		case <-s.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !s.stopping.CompareAndSwap(false, true) {
		select { // stopped already, or on its way
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.eng.Stop(ctx)
}

// boundAddrs asks the kernel which addresses the listeners got, so that a
// port 0 in the configuration can be reported.
func (s *Server) boundAddrs(eng gnet.Engine) ([]net.Addr, error) {
	addrs := make([]net.Addr, 0, len(s.cfg.Listen))
	for _, a := range s.cfg.Listen {
		fd, err := eng.DupListener("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("server: listener %s: %w", a, err)
		}
		sa, err := unix.Getsockname(fd)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("server: listener %s: %w", a, err)
		}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			addrs = append(addrs, &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port})
		case *unix.SockaddrInet6:
			addrs = append(addrs, &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port})
		default:
			return nil, errors.New("server: listener " + a + " is not TCP")
		}
	}
	return addrs, nil
}

// Stats sums every reactor's counters.
func (s *Server) Stats(ctx context.Context) (stats.Counters, error) {
	snap, err := s.Snapshot(ctx)
	return snap.Counters, err
}

// Snapshot reads every reactor's counters and gauges and sums them. Each
// reactor copies its own on its own thread, so the relay never pays for an
// observer; gauges cost a walk over the reactor's connections.
func (s *Server) Snapshot(ctx context.Context) (stats.Snapshot, error) {
	var loops []*loop
	s.loops.Range(func(_, l any) bool {
		loops = append(loops, l.(*loop))
		return true
	})
	parts := make(chan stats.Snapshot, len(loops))
	for _, l := range loops {
		err := l.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			parts <- l.snapshot()
			return nil
		}))
		if err != nil {
			return stats.Snapshot{}, fmt.Errorf("server: stats: %w", err)
		}
	}
	sum := stats.Snapshot{Loops: s.numLoops, PerSecret: map[[16]byte]stats.Secret{}}
	for range loops {
		select {
		case p := <-parts:
			sum.Counters.Add(&p.Counters)
			sum.DCConns += p.DCConns
			sum.MPReady += p.MPReady
			sum.MPStarting += p.MPStarting
			sum.QueuedBytes += p.QueuedBytes
			for k, v := range p.PerSecret {
				t := sum.PerSecret[k]
				t.Add(&v)
				sum.PerSecret[k] = t
			}
		case <-ctx.Done():
			return stats.Snapshot{}, ctx.Err()
		}
	}
	// Read after the loops, so that a client they saw leave is not
	// counted here.
	sum.Clients = s.Clients()
	return sum, nil
}

// Shutdown stops taking clients (new connections are closed at once), waits
// until the open ones have gone or ctx is done, then stops the server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for s.Clients() > 0 {
		select {
		case <-ctx.Done():
			s.log.Info("drain timeout; closing the remaining clients", zap.Int("clients", s.Clients()))
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return s.Stop(stopCtx)
		case <-t.C:
		}
	}
	return s.Stop(ctx)
}
