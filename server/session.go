package server

import (
	"crypto/rand"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/cipher"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/obfuscated2"
	"github.com/mtproxy-go/mtproxy/server/chunk"
	"github.com/mtproxy-go/mtproxy/server/flowctl"
	"github.com/mtproxy-go/mtproxy/stats"
)

type state uint8

const (
	stateHandshake state = iota // waiting for the client's 64-byte header, or its ClientHello in fake-TLS mode
	stateTLSHeader              // fake TLS answered; waiting for the 64-byte header inside records
	stateSwallow                // header matched no secret: discard input until the handshake timeout
	stateDialing                // header valid, DC connection on its way
	stateRelay                  // both sockets up
	stateClosing                // one side gone, the other delivering what is queued for it
)

// endpoint is one socket of a session. Its gnet.Conn context points here.
type endpoint struct {
	s    *session
	conn gnet.Conn // nil before the DC connects and after OnClose
	// decrypt turns bytes read from conn into plaintext; encrypt turns
	// plaintext into bytes for conn. Both are nil where bytes pass as they
	// are: on a fronted pair, and from the DC in fast mode.
	decrypt, encrypt *cipher.CTR
	// paused: epoll does not report conn readable (flowctl).
	paused bool
	// draining: the peer is gone; conn closes once its outbound is empty.
	draining bool
	// read counts bytes received from conn, for the close log.
	read int64
}

// session is one client and its DC connection. Everything in it runs on
// the client's event loop.
type session struct {
	loop       *loop
	client, dc endpoint
	state      state

	dcIndex int16
	// dcHeader is the proxy's header for the DC. In fake-TLS mode it first
	// collects the client's header, which may arrive split over records.
	dcHeader [obfuscated2.HeaderLen]byte
	headerN  int

	// Fake TLS: the client's side is framed in TLS records; secret is the
	// one whose HMAC the ClientHello carried.
	tls     bool
	secret  int
	records faketls.RecordReader
	// fronting: the backend is the real site and bytes pass untouched.
	fronting bool
	// pending holds client bytes, already encrypted for the DC, until the
	// DC connection is up.
	pending chunk.Queue

	// Membership of the loop's timeout lists; stamp is the accept time on
	// the handshake list and the last activity on the active list.
	list       *sessionList
	prev, next *session
	stamp      time.Time

	// watchIdx is the session's place in its loop's flow-check list, -1
	// when it is not there (see loop.check).
	watchIdx int
	// closeBy bounds how long a draining conn may take.
	closeBy time.Time

	// mp is the middle-proxy side, nil in direct mode.
	mp *mpClient

	// keys is the secret set the client's handshake was checked against,
	// sc its secret's share of the stats (nil until the handshake).
	keys *secretSet
	sc   *stats.Secret
	// ip is the client's address when connections per IP are capped.
	ip netip.Addr
}

func (s *session) peer(ep *endpoint) *endpoint {
	if ep == &s.client {
		return &s.dc
	}
	return &s.client
}

func (s *session) logger() *zap.Logger { return s.loop.srv.log }

// traffic handles readable data on ep.
func (s *session) traffic(ep *endpoint) gnet.Action {
	switch s.state {
	case stateHandshake:
		if s.loop.srv.cfg.fakeTLS() {
			return s.tlsHello()
		}
		return s.obfs2Header()
	case stateTLSHeader:
		return s.tlsHeader()
	case stateDialing, stateRelay:
		s.forward(ep, s.peer(ep))
	default: // swallowing a bad client, or closing: input has nowhere to go
		ep.conn.Discard(-1)
	}
	return gnet.None
}

// obfs2Header parses a plain client's header once all 64 bytes are in.
func (s *session) obfs2Header() gnet.Action {
	c := s.client.conn
	if c.InboundBuffered() < obfuscated2.HeaderLen {
		return gnet.None // gnet keeps the partial header
	}
	h, _ := c.Peek(obfuscated2.HeaderLen)
	s.keys = s.loop.secretSet()
	hello, err := obfuscated2.ParseClient((*[obfuscated2.HeaderLen]byte)(h), s.keys.keys)
	if err != nil {
		s.loop.stats.HandshakesBad++
		if s.loop.srv.cfg.fakeTLS() {
			return s.front("header matches no secret")
		}
		// Answering or closing at once would tell a prober that this is
		// a proxy; the official proxy swallows everything instead.
		s.state = stateSwallow
		s.logger().Debug("client header matches no secret; swallowing its input until the handshake timeout",
			remoteField("client", c.RemoteAddr()))
		c.Discard(-1)
		return gnet.None
	}
	c.Discard(obfuscated2.HeaderLen)
	if !s.startRelay(hello) {
		return gnet.Close
	}
	s.forward(&s.client, &s.dc) // bytes that came with the header
	return gnet.None
}

// startRelay takes a valid client header: it derives the DC's streams and
// starts dialling. False means the session cannot go on.
func (s *session) startRelay(hello obfuscated2.Client) bool {
	if s.loop.mp != nil {
		return s.startMiddle(hello)
	}
	c := s.client.conn
	cfg := &s.loop.srv.cfg
	addr, known := cfg.DCs.Lookup(hello.DC, cfg.PreferIPv6)
	if !known {
		s.loop.stats.UnknownDC++
		s.logger().Info("client asked for an unknown DC; using the default DC",
			zap.Int16("dc", hello.DC), zap.String("addr", addr), remoteField("client", c.RemoteAddr()))
	}
	var backend obfuscated2.Backend
	var err error
	if cfg.FastMode {
		backend, err = obfuscated2.NewBackendFast(rand.Reader, hello.Tag, hello.DC, &hello.SendKey, &hello.SendIV)
	} else {
		backend, err = obfuscated2.NewBackend(rand.Reader, hello.Tag, hello.DC)
		s.client.encrypt = hello.Encrypt()
	}
	if err != nil {
		s.logger().Error("cannot open a DC connection", zap.Error(err))
		return false
	}
	s.dcIndex = hello.DC
	s.client.decrypt = hello.Decrypt
	s.dc.decrypt, s.dc.encrypt = backend.Decrypt, backend.Encrypt
	s.dcHeader = backend.Header
	s.handshakeOK(hello.Secret)
	s.logger().Debug("client handshake ok", remoteField("client", c.RemoteAddr()), zap.Bool("fake_tls", s.tls),
		zap.Stringer("transport", hello.Tag), zap.Int16("dc", hello.DC), zap.Int("secret", hello.Secret), zap.String("dc_addr", addr))
	s.dialBackend(addr)
	return true
}

// handshakeOK counts a client whose header matched the secret of index i
// (-1 when secretless).
func (s *session) handshakeOK(i int) {
	s.loop.stats.HandshakesOK++
	s.sc = s.loop.secretCounters(s.keys.key(i))
	s.sc.Handshakes++
	s.sc.Active++
}

// dialBackend leaves the handshake: the session is timed for idleness from
// now on while the backend, a DC or the fronted site, is dialled.
func (s *session) dialBackend(addr string) {
	s.state = stateDialing
	s.leaveHandshake()
	s.loop.dial(s, addr)
}

// leaveHandshake moves the session to the loop's active list.
func (s *session) leaveHandshake() {
	if s.list != nil {
		s.list.remove(s)
	}
	s.stamp = s.loop.now
	s.loop.active.pushBack(s)
}

// maxIovecs bounds one writev of TLS record payloads; a read holding more
// records (tiny ones) is compacted in place instead (a memmove).
const maxIovecs = 64

// forward moves what from has read to its peer: deciphered with from's
// stream and enciphered with to's in one pass, in place in gnet's read
// buffer, with TLS record framing removed or added on the client's side.
func (s *session) forward(from, to *endpoint) {
	buf, _ := from.conn.Next(-1)
	if len(buf) == 0 {
		return
	}
	s.counted(from, len(buf))
	if from == &s.client && s.tls {
		s.forwardRecords(nil, buf)
		return
	}
	if s.mp != nil {
		s.client.decrypt.XORKeyStream(buf, buf)
		s.toMiddle(buf)
		s.flushMiddle()
		return
	}
	// No streams: fronting, or the DC→client way in fast mode.
	if from.decrypt != nil {
		// Both streams advance by the same lengths from block-aligned
		// starts, which is what the fused kernel needs.
		cipher.XORKeyStreams(buf, buf, from.decrypt, to.encrypt)
	}
	iov := append(s.loop.iov[:0], buf)
	if to == &s.client && s.tls {
		iov, _ = faketls.AppendRecords(iov[:0], s.loop.hdrs[:0], buf)
	}
	s.send(from, to, iov)
}

// forwardRecords relays a TLS client's bytes: first is payload already
// taken out of its record, buf the framed bytes after it. Payloads are
// deciphered in place and written with one writev, without a copy unless
// there are too many pieces.
func (s *session) forwardRecords(first, buf []byte) {
	iov := s.loop.iov[:0]
	if len(first) > 0 {
		iov = append(iov, first)
	}
	for len(buf) > 0 {
		p, rest, err := s.records.Next(buf)
		if err != nil {
			s.loop.stats.TLSBadHeader++
			s.logger().Debug("closing fake-TLS client", zap.Error(err), remoteField("client", s.client.conn.RemoteAddr()))
			s.closeBoth()
			return
		}
		if len(p) > 0 {
			if len(iov) == cap(iov) {
				iov = compact(iov)
			}
			iov = append(iov, p)
		}
		buf = rest
	}
	if s.mp != nil {
		for _, p := range iov {
			s.client.decrypt.XORKeyStream(p, p)
			s.toMiddle(p)
		}
		s.flushMiddle()
		return
	}
	for _, p := range iov {
		cipher.XORKeyStreams(p, p, s.client.decrypt, s.dc.encrypt)
	}
	s.send(&s.client, &s.dc, iov)
}

// compact joins the pieces of iov, which lie in order in one buffer with
// gaps (record headers) between them, into its first piece.
func compact(iov [][]byte) [][]byte {
	joined := iov[0]
	for _, p := range iov[1:] {
		joined = append(joined, p...) // within the buffer: only moves bytes down
	}
	return append(iov[:0], joined)
}

// send writes iov to `to` (or queues it while the backend is dialled) and
// applies flow control to `from`.
func (s *session) send(from, to *endpoint, iov [][]byte) {
	high, low := s.loop.srv.cfg.HighWatermark, s.loop.srv.cfg.LowWatermark
	if s.state == stateDialing {
		for _, p := range iov {
			s.pending.Append(p)
		}
		if s.pending.Len() > high {
			s.pause(from) // dcOpened resumes it
		}
		return
	}

	queuedBefore := to.conn.OutboundBuffered()
	to.conn.Writev(iov) // on error gnet closes `to` at once and we hear of it in closed
	if to.conn == nil {
		return
	}
	queued := to.conn.OutboundBuffered()
	// gnet arms EPOLLIN again when a write starts a backlog: undo that.
	if to.paused && queuedBefore == 0 && queued > 0 {
		s.setPaused(to)
	}
	switch {
	case queued > high:
		s.pause(from)
	case from.paused && queued <= low:
		s.resume(from)
	case from.paused:
		s.setPaused(from) // a read slipped through; keep it paused
	}
}

// counted accounts for n bytes read from ep, for the counters, the close
// log and the idle timeout.
func (s *session) counted(ep *endpoint, n int) {
	ep.read += int64(n)
	if ep == &s.client {
		s.loop.stats.ClientBytes += uint64(n)
		if s.sc != nil { // nil for a fronted connection
			s.sc.BytesIn += uint64(n)
		}
	} else {
		s.loop.stats.DCBytes += uint64(n)
		if s.sc != nil {
			s.sc.BytesOut += uint64(n)
		}
	}
	s.touch()
}

// touch marks the session active for the idle timeout. Stamps use the
// loop's coarse clock, so a busy session moves in the list at most once
// per sweep.
func (s *session) touch() {
	if s.list == &s.loop.active && s.stamp != s.loop.now {
		s.stamp = s.loop.now
		s.loop.active.remove(s)
		s.loop.active.pushBack(s)
	}
}

// pause stops reading ep until its peer's backlog drains.
func (s *session) pause(ep *endpoint) {
	if !ep.paused {
		ep.paused = true
		s.loop.stats.Pauses++
		// While dialing, dcOpened resumes it; afterwards the loop's flow
		// check does.
		if s.state == stateRelay {
			s.loop.watch(s)
		}
	}
	s.setPaused(ep)
}

func (s *session) setPaused(ep *endpoint) {
	if err := flowctl.Pause(s.loop.epfd, ep.conn); err != nil {
		s.fail(err)
	}
}

func (s *session) resume(ep *endpoint) {
	ep.paused = false
	if err := flowctl.Resume(s.loop.epfd, ep.conn); err != nil {
		s.fail(err)
	}
}

// fail tears the session down after an error we cannot relay through.
func (s *session) fail(err error) {
	s.logger().Error("closing session", zap.Error(err))
	s.closeBoth()
}

func (s *session) closeBoth() {
	for _, ep := range []*endpoint{&s.client, &s.dc} {
		if ep.conn != nil {
			ep.conn.Close()
		}
	}
}

// check resumes sources whose peer drained below the low watermark and
// closes draining conns that are done. It runs on the loop's flow-check
// tick and reports whether the session still needs checking.
func (s *session) check(now time.Time) bool {
	again := false
	for _, ep := range []*endpoint{&s.client, &s.dc} {
		switch {
		case ep.conn == nil:
		case ep.draining:
			if ep.conn.OutboundBuffered() == 0 || now.After(s.closeBy) {
				ep.draining = false
				ep.conn.Close()
			} else {
				again = true
			}
		case ep.paused && s.state == stateRelay:
			backlog, ok := s.backlog(ep)
			switch {
			case !ok: // an unbound middle-proxy client: bind resumes it
			case backlog <= s.loop.srv.cfg.LowWatermark:
				s.resume(ep)
			default:
				again = true
			}
		}
	}
	return again
}

// backlog returns the bytes queued on the way of what ep reads: at its
// peer, or at a middle-proxy client's RPC connection.
func (s *session) backlog(ep *endpoint) (int, bool) {
	if s.mp != nil {
		return s.middleBacklog()
	}
	return s.peer(ep).conn.OutboundBuffered(), true
}

// dcOpened runs when the DC socket is registered on this loop.
func (s *session) dcOpened(c gnet.Conn) ([]byte, gnet.Action) {
	if s.state != stateDialing {
		return nil, gnet.Close // the client left meanwhile
	}
	s.dc.conn = c
	c.SetContext(&s.dc)
	s.state = stateRelay
	s.loop.stats.DCConnected++
	s.loop.dcConns++
	iov := s.loop.iov[:0]
	if !s.fronting {
		iov = append(iov, s.dcHeader[:])
	}
	iov = s.pending.AppendBuffers(iov)
	c.Writev(iov)
	s.pending.Reset()
	if s.dc.conn == nil {
		return nil, gnet.None // the write failed and gnet closed it
	}
	if s.client.paused {
		s.loop.watch(s)
	}
	return nil, gnet.None
}

func (s *session) dialFailed(addr string, err error) {
	if s.state != stateDialing {
		return
	}
	s.loop.stats.DCFailed++
	if s.fronting {
		s.logger().Warn("cannot connect to the fronted site; closing client",
			zap.String("addr", addr), zap.Error(err), remoteField("client", s.client.conn.RemoteAddr()))
		s.closeBoth()
		return
	}
	s.logger().Warn("cannot connect to DC; closing client",
		zap.Int16("dc", s.dcIndex), zap.String("addr", addr), zap.Error(err), remoteField("client", s.client.conn.RemoteAddr()))
	s.closeBoth()
}

// expire closes a session that a timeout removed from the loop's lists.
func (s *session) expire(reason string) {
	s.logger().Debug("closing session", zap.String("reason", reason), remoteField("client", s.client.conn.RemoteAddr()))
	s.closeBoth()
}

// closed runs when gnet has closed ep's socket.
func (s *session) closed(ep *endpoint, err error) {
	isClient := ep == &s.client
	remote := ep.conn.RemoteAddr()
	ep.conn, ep.paused, ep.draining = nil, false, false
	if isClient {
		s.loop.srv.clients.Add(-1)
		if s.mp != nil {
			s.leaveMiddle(true)
		}
		if s.sc != nil {
			s.sc.Active--
		}
		if s.ip.IsValid() {
			s.loop.srv.perIP.remove(s.ip)
		}
	} else {
		s.loop.dcConns--
	}
	if s.state != stateClosing {
		s.state = stateClosing
		if s.list != nil {
			s.list.remove(s)
		}
		s.pending.Reset()
		side := "dc"
		if isClient {
			side = "client"
		}
		s.logger().Debug("session ending", zap.String("closed_by", side), remoteField("addr", remote), zap.Error(err),
			zap.Int64("client_bytes", s.client.read), zap.Int64("dc_bytes", s.dc.read))
	}
	peer := s.peer(ep)
	if peer.conn == nil || peer.draining {
		return
	}
	if peer.conn.OutboundBuffered() == 0 {
		peer.conn.Close()
		return
	}
	// Deliver what the peer still has queued, then close it.
	s.logger().Debug("delivering queued bytes before closing", remoteField("addr", peer.conn.RemoteAddr()),
		zap.Int("queued", peer.conn.OutboundBuffered()))
	peer.draining = true
	s.closeBy = time.Now().Add(s.loop.srv.cfg.CloseTimeout)
	s.loop.watch(s)
}
