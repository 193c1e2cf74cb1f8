package server

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/server/flowctl"
)

// handler receives gnet's events; it is kept apart from Server so that
// gnet's callbacks are not part of the public API.
type handler struct {
	gnet.BuiltinEventEngine
	srv *Server
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	s := h.srv
	s.eng = eng
	addrs, err := s.boundAddrs(eng)
	if err == nil && s.cfg.AfterBind != nil {
		err = s.cfg.AfterBind()
	}
	if err != nil {
		s.bootErr = err
		return gnet.Shutdown
	}
	s.addrs = addrs
	close(s.ready)
	return gnet.None
}

func (h *handler) OnShutdown(gnet.Engine) {
	close(h.srv.done)
}

// A conn's context tells what it is: a client or DC (*endpoint), a DC
// being registered (*session), or a middle-proxy connection (*mpConn).

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch owner := c.Context().(type) {
	case *session:
		return owner.dcOpened(c)
	case *mpConn:
		return owner.opened(c)
	}
	return nil, h.srv.accept(c)
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch owner := c.Context().(type) {
	case *endpoint:
		return owner.s.traffic(owner)
	case *mpConn:
		return owner.traffic()
	}
	return gnet.Close
}

func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	switch owner := c.Context().(type) {
	case *endpoint:
		owner.s.closed(owner, err)
	case *mpConn:
		if owner.conn == c {
			owner.closed(err)
		}
	}
	return gnet.None
}

// accept takes a new client connection.
func (s *Server) accept(c gnet.Conn) gnet.Action {
	l, err := s.loopOf(c)
	if err != nil {
		s.log.Error("cannot serve client", zap.Error(err))
		return gnet.Close
	}
	l.stats.Accepted++
	if s.draining.Load() {
		l.stats.Refused++
		return gnet.Close
	}
	now := time.Now()
	if n := s.clients.Add(1); s.cfg.MaxConnections > 0 && n > int64(s.cfg.MaxConnections) {
		s.clients.Add(-1)
		l.stats.OverLimit++
		l.limitLog.warn(s.log, now, "connection limit reached, closing new client",
			zap.Int("limit", s.cfg.MaxConnections), remoteField("client", c.RemoteAddr()))
		return gnet.Close
	}
	var ip netip.Addr
	if s.perIP != nil {
		ip = addrPort(c.RemoteAddr()).Addr()
		if !s.perIP.add(ip, s.cfg.MaxConnectionsPerIP) {
			s.clients.Add(-1)
			l.stats.OverIPLimit++
			l.limitLog.warn(s.log, now, "per-IP connection limit reached, closing new client",
				zap.Int("limit", s.cfg.MaxConnectionsPerIP), remoteField("client", c.RemoteAddr()))
			return gnet.Close
		}
	}
	sess := &session{loop: l, watchIdx: -1, ip: ip}
	sess.client = endpoint{s: sess, conn: c}
	sess.dc.s = sess
	sess.stamp = now
	l.handshakes.pushBack(sess)
	c.SetContext(&sess.client)
	return gnet.None
}

// loopOf returns the state of c's event loop, creating it on first use.
func (s *Server) loopOf(c gnet.Conn) (*loop, error) {
	el := c.EventLoop()
	if l, ok := s.loops.Load(el); ok {
		return l.(*loop), nil
	}
	epfd, err := flowctl.EpollFD(c)
	if err != nil {
		return nil, err
	}
	idx := int(s.loopIndex.Add(1) - 1)
	if idx >= s.numLoops {
		return nil, fmt.Errorf("server: event loop %d of %d", idx+1, s.numLoops)
	}
	l := newLoop(s, el, epfd, idx)
	s.loops.Store(el, l)
	go l.tick()
	return l, nil
}
