package server

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/obfuscated2"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
	"github.com/mtproxy-go/mtproxy/codec/transport"
)

// mpClient is a session's side of middle-proxy mode: the client's packets
// travel as RPC_PROXY_REQ on an RPC connection it shares with other
// clients, under an id from the loop's ext_connection shard.
type mpClient struct {
	id     uint64
	kind   transport.Kind
	reader transport.Reader
	flags  uint32 // RPC_PROXY_REQ flags of every packet
	req    rpc.ProxyReq
	pool   *mpPool
	conn   *mpConn // nil until bound, and once unbound
	idx    int     // place in conn.clients

	waiting bool // queued in pool.waiting
	since   time.Time
}

// startMiddle takes a valid client header in middle-proxy mode: the client
// gets an id and an RPC connection to the middle proxies of its DC, or
// waits for one. False means the session cannot go on.
func (s *session) startMiddle(hello obfuscated2.Client) bool {
	l := s.loop
	c := s.client.conn
	cfg := l.srv.cfg.Middle
	kind, _ := transport.KindOf(hello.Tag) // ParseClient accepts only the three tags
	cl, ok := l.mp.settings.conf.Lookup(int(hello.DC))
	if !ok {
		l.stats.MPUnknownCluster++
		s.logger().Info("no middle proxy serves the client's DC and the config has no default; closing client",
			zap.Int16("dc", hello.DC), remoteField("client", c.RemoteAddr()))
		return false
	}
	id, err := l.mp.ids.Add(s)
	if err != nil {
		s.logger().Warn("closing client", zap.Error(err), remoteField("client", c.RemoteAddr()))
		return false
	}
	flags := uint32(rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagIntermediate)
	if kind == transport.Abridged {
		flags = rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagAbridged
	}
	proxy := addrPort(c.LocalAddr())
	s.mp = &mpClient{
		id: id, kind: kind, flags: flags, idx: -1,
		req: rpc.ProxyReq{
			ConnID: int64(id),
			Client: addrPort(c.RemoteAddr()),
			Proxy:  netip.AddrPortFrom(nat(cfg.NAT, proxy.Addr()), proxy.Port()),
			AdTag:  *l.srv.adTag.Load(),
		},
	}
	s.mp.reader.Kind = kind
	s.dcIndex = hello.DC
	s.client.decrypt, s.client.encrypt = hello.Decrypt, hello.Encrypt()
	s.handshakeOK(hello.Secret)
	s.logger().Debug("client handshake ok", remoteField("client", c.RemoteAddr()), zap.Bool("fake_tls", s.tls),
		zap.Stringer("transport", hello.Tag), zap.Int16("dc", hello.DC), zap.Int("secret", hello.Secret),
		zap.Int("cluster", cl.ID))
	s.state = stateRelay
	s.leaveHandshake()
	s.mp.pool = l.mp.pool(cl)
	if mc := s.mp.pool.pick(); mc != nil {
		s.bind(mc)
	} else {
		s.mp.pool.wait(s)
	}
	return true
}

// bind attaches the client to a ready RPC connection for the rest of its
// life (the middle proxy knows the id on that connection only) and sends
// what it said while it waited.
func (s *session) bind(c *mpConn) {
	s.mp.conn = c
	s.mp.idx = len(c.clients)
	c.clients = append(c.clients, s)
	if s.pending.Len() > 0 {
		for _, p := range s.pending.AppendBuffers(s.loop.iov[:0]) {
			s.toMiddle(p)
		}
		s.pending.Reset()
		s.flushMiddle()
	}
	if s.client.paused {
		s.loop.watch(s) // check resumes it once the connection's backlog allows
	}
}

// leaveMiddle forgets the client's id and RPC connection; tell sends the
// middle proxy RPC_CLOSE_CONN. It may run more than once.
func (s *session) leaveMiddle(tell bool) {
	mc := s.mp
	switch {
	case mc.conn != nil:
		mc.conn.unbind(s, tell)
		mc.conn = nil
	case mc.waiting:
		mc.pool.unwait(s)
	}
	s.loop.mp.ids.Remove(mc.id)
}

// toMiddle takes deciphered client bytes: each complete packet that is
// MTProto becomes an RPC_PROXY_REQ frame in the loop's output buffer, for
// flushMiddle to write. Before the client is bound they are kept as they
// are.
func (s *session) toMiddle(b []byte) {
	l := s.loop
	mc := s.mp
	if mc.conn == nil {
		s.pending.Append(b)
		if s.pending.Len() > l.srv.cfg.HighWatermark {
			s.pause(&s.client) // bind's flush resumes it
		}
		return
	}
	for len(b) > 0 {
		pkt, rest, err := mc.reader.Next(b)
		if err != nil {
			// Frames already made are part of the connection's
			// stream: they go out before the client is closed.
			s.flushMiddle()
			s.logger().Debug("closing client after a bad packet", zap.Error(err), remoteField("client", s.client.conn.RemoteAddr()))
			s.closeBoth()
			return
		}
		b = rest
		if !pkt.OK() {
			break
		}
		forward, encrypted := transport.LooksLikeMTProto(pkt.Payload)
		if !forward {
			l.stats.MPDropped++ // the official drops these and keeps the client (§6.7)
			continue
		}
		mc.req.Flags = mc.flags
		if !encrypted {
			mc.req.Flags |= rpc.FlagNotEncrypted
		}
		if pkt.QuickAck {
			mc.req.Flags |= rpc.FlagQuickAck
		}
		l.mp.out, _ = mc.conn.rpc.AppendProxyReq(l.mp.out, &mc.req, pkt.Payload) // bound means ready; lengths are checked
		l.stats.MPRequests++
	}
}

// flushMiddle writes the frames toMiddle made and applies flow control:
// a client whose RPC connection lags stops being read.
func (s *session) flushMiddle() {
	m := s.loop.mp
	c := s.mp.conn
	if len(m.out) == 0 || c == nil {
		return
	}
	out := m.out
	m.out = out[:0]
	c.conn.Write(out) // on error gnet closes it, and its clients with it
	if c.conn == nil || s.client.conn == nil {
		return
	}
	s.regulate()
}

// regulate pauses or resumes reading the client by what its input waits
// on (middleBacklog).
func (s *session) regulate() {
	cfg := &s.loop.srv.cfg
	queued, _ := s.middleBacklog()
	switch {
	case queued > cfg.HighWatermark:
		s.pause(&s.client)
	case s.client.paused && queued <= cfg.LowWatermark:
		s.resume(&s.client)
	case s.client.paused:
		s.setPaused(&s.client) // a read slipped through; keep it paused
	}
}

// answer sends the client the payload of an RPC_PROXY_ANS, framed for its
// transport in place: the header goes into the spent message header before
// the payload, padding into the spent checksum after it.
func (s *session) answer(msg []byte) {
	l := s.loop
	payload := msg[rpc.ProxyAnsHeaderLen:]
	n := len(payload)
	if s.mp.kind != transport.Padded && n%4 != 0 {
		l.stats.MPBadAnswer++
		s.logger().Debug("dropping an answer that is not whole words", zap.Int("len", n), remoteField("client", s.client.conn.RemoteAddr()))
		return
	}
	pad := 0
	if s.mp.kind == transport.Padded {
		pad = rand.IntN(4) // as the official, 0–3 bytes
	}
	h := transport.AppendHeader(l.mp.small[:0], s.mp.kind, n, pad)
	start := rpc.ProxyAnsHeaderLen - len(h)
	copy(msg[start:], h)
	l.stats.MPAnswers++
	s.toClient(msg[start : len(msg)+pad])
}

// quickAck sends the client the token of an RPC_SIMPLE_ACK.
func (s *session) quickAck(token uint32) {
	s.loop.stats.MPQuickAcks++
	s.toClient(transport.AppendQuickAck(s.loop.mp.small[:0], s.mp.kind, token))
}

// toClient enciphers b in place and writes it to the client. The middle
// proxy cannot be held back for one client without holding back all that
// share its connection, so a client whose queue passes the bound is
// closed instead.
func (s *session) toClient(b []byte) {
	l := s.loop
	c := s.client.conn
	s.sc.BytesOut += uint64(len(b))
	s.client.encrypt.XORKeyStream(b, b)
	queuedBefore := c.OutboundBuffered()
	if s.tls {
		iov, hdrs := faketls.AppendRecords(l.iov[:0], l.hdrs[:0], b)
		l.hdrs = hdrs[:0]
		c.Writev(iov)
	} else {
		c.Write(b)
	}
	if s.client.conn == nil {
		return // the write failed and gnet closed it
	}
	s.touch()
	queued := c.OutboundBuffered()
	if s.client.paused && queuedBefore == 0 && queued > 0 {
		s.setPaused(&s.client) // gnet re-armed reading when the backlog started
	}
	if queued > l.srv.cfg.HighWatermark && !s.client.paused {
		// Answers pile up: stop reading the client's requests, which ends
		// the answers it asked for (pushed updates still come).
		s.pause(&s.client)
	}
	if limit := l.srv.cfg.Middle.ClientQueueLimit; queued > limit {
		l.stats.MPOverflow++
		s.logger().Info("client reads slower than its answers arrive; closing it so that the clients sharing its middle-proxy connection are not held up",
			zap.Int("queued", queued), zap.Int("limit", limit), remoteField("client", c.RemoteAddr()))
		s.leaveMiddle(true) // answers still on their way are refused from now on
		s.closeBoth()
	}
}

// closeByMP closes the client on the middle proxy's RPC_CLOSE_EXT, after
// delivering what it was already sent (the official drops it, §14).
func (s *session) closeByMP() {
	s.leaveMiddle(false)
	s.state = stateClosing
	if s.list != nil {
		s.list.remove(s)
	}
	c := s.client.conn
	if c.OutboundBuffered() == 0 {
		c.Close()
		return
	}
	s.client.draining = true
	s.closeBy = time.Now().Add(s.loop.srv.cfg.CloseTimeout)
	s.loop.watch(s)
}

// middleBacklog is what a middle-proxy client's input waits on: the
// larger of its RPC connection's backlog (its requests would add to it)
// and its own (answers to its requests would); ok is false while the
// client is not bound.
func (s *session) middleBacklog() (n int, ok bool) {
	c := s.mp.conn
	if c == nil || c.conn == nil || s.client.conn == nil {
		return 0, false
	}
	return max(c.conn.OutboundBuffered(), s.client.conn.OutboundBuffered()), true
}
