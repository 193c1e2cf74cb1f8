package statsweb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// http.Server limits of Listen. The write timeout is the handler's source
// timeout plus writeSlack.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	writeSlack        = 10 * time.Second
	maxHeaderBytes    = 8 << 10
)

// ListenOption configures Listen.
type ListenOption func(*listenConfig)

type listenConfig struct {
	allowNonLoopback bool
	log              *zap.Logger
}

// AllowNonLoopback lets Listen bind an address that is not loopback (a
// public or private interface, or all of them). Statistics then reach
// whoever can reach the port; /stats still answers loopback clients only,
// /metrics answers everyone.
func AllowNonLoopback() ListenOption {
	return func(c *listenConfig) { c.allowNonLoopback = true }
}

// ListenLogger gives the server's own errors (bad requests, failed
// accepts) to l.
func ListenLogger(l *zap.Logger) ListenOption {
	return func(c *listenConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// Server is an HTTP server of statistics started by Listen.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve has returned
}

// Listen binds addr ("host:port"; the host a loopback IP or "localhost"
// unless AllowNonLoopback) and serves h on it until Close or Shutdown.
func Listen(addr string, h http.Handler, opts ...ListenOption) (*Server, error) {
	cfg := listenConfig{log: zap.NewNop()}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.allowNonLoopback {
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("statsweb: %w", err)
	}
	if !cfg.allowNonLoopback {
		// "localhost" could resolve to anything.
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
			ln.Close()
			return nil, fmt.Errorf("statsweb: refusing to serve statistics on %s: %s resolved to %s, not a loopback address", addr, addr, ln.Addr())
		}
	}
	timeout := DefaultTimeout
	if hh, ok := h.(*Handler); ok {
		timeout = hh.timeout
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      timeout + writeSlack,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          zap.NewStdLog(cfg.log.With(zap.String("component", "statsweb"))),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.log.Error("statistics server stopped", zap.String("addr", ln.Addr().String()), zap.Error(err))
		}
	}()
	return s, nil
}

// checkLoopback refuses an address whose host is not a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("statsweb: statistics address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	what := host
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Unmap().IsLoopback() {
			return nil
		}
		if ip.IsUnspecified() {
			what = host + " (every interface)"
		}
	} else if host == "" {
		what = "an empty host (every interface)"
	}
	return fmt.Errorf("statsweb: refusing to serve statistics on %q: %s is not a loopback address, so anyone who reaches the port would read them; "+
		"use 127.0.0.1 or [::1], or allow a non-loopback address explicitly", addr, what)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close closes the listener and every connection at once and waits for
// the server to stop.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// Shutdown stops accepting, waits for the requests in progress until ctx
// is done (then closes them), and waits for the server to stop.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}
