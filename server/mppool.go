package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/backend/extconn"
	"github.com/mtproxy-go/mtproxy/backend/mproxy"
	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// mpSettings is one version of the middle-proxy configuration. Loops pick
// up a new one at their next sweep; RPC connections keep the secret they
// were opened with.
type mpSettings struct {
	conf   *proxyconf.Config
	secret []byte
}

// SetMiddleProxy replaces the middle-proxy configuration of a server in
// middle-proxy mode without dropping anyone: clients stay on the RPC
// connections they use, connections to middle proxies that left the
// config close once their last client has gone, and new connections use
// the new secret. A config without middle proxies or a bad secret is
// refused and the old one kept.
func (s *Server) SetMiddleProxy(conf *proxyconf.Config, secret []byte) error {
	if s.cfg.Middle == nil {
		return errors.New("server: not in middle-proxy mode")
	}
	m := MiddleConfig{ProxyConfig: conf, Secret: secret}
	if err := m.setDefaults(); err != nil {
		return err
	}
	s.mpSettings.Store(&mpSettings{conf: conf, secret: secret})
	return nil
}

// mpLoop is a loop's middle-proxy state: its shard of the ext_connection
// table and its pools of RPC connections, one pool per cluster.
type mpLoop struct {
	l        *loop
	ids      *extconn.Table[*session]
	pools    map[int]*mpPool
	settings *mpSettings
	// out collects the RPC frames of one callback; closeIDs the ids to
	// answer with RPC_CLOSE_CONN once Feed has returned.
	out      []byte
	closeIDs []int64
	// small holds a transport header or quick ack being built.
	small [8]byte
}

// maxLiveIDs is the official's bound on live ext connections (§10), per
// loop here.
const maxLiveIDs = 1 << 21

func newMPLoop(l *loop, index int) *mpLoop {
	return &mpLoop{
		l:        l,
		ids:      extconn.New[*session](index, maxLiveIDs),
		pools:    map[int]*mpPool{},
		settings: l.srv.mpSettings.Load(),
	}
}

// pool returns the pool serving the cluster, starting its connections on
// first use.
func (m *mpLoop) pool(cl proxyconf.Cluster) *mpPool {
	if p, ok := m.pools[cl.ID]; ok {
		return p
	}
	p := &mpPool{m: m, dc: cl.ID}
	m.pools[cl.ID] = p
	p.setTargets(cl.Targets)
	return p
}

// update applies a new configuration version to every pool.
func (m *mpLoop) update() {
	cur := m.l.srv.mpSettings.Load()
	if cur == m.settings {
		return
	}
	m.settings = cur
	for _, p := range m.pools {
		p.setTargets(cur.conf.Targets(p.dc))
	}
	m.l.srv.log.Info("middle-proxy config applied", zap.Int("loop", m.ids.Loop()),
		zap.Int("clusters", len(cur.conf.Clusters())))
}

// sweep closes RPC connections whose handshake is late and clients that
// waited too long for a connection.
func (m *mpLoop) sweep(now time.Time) {
	m.update()
	for _, p := range m.pools {
		for _, c := range p.conns {
			if c.state == mpHandshake && now.After(c.deadline) {
				c.fail(errors.New("middle-proxy handshake timed out"))
			}
		}
		wait := m.l.srv.cfg.DialTimeout
		for s := p.front(); s != nil && now.Sub(s.mp.since) >= wait; s = p.front() {
			p.unwait(s)
			m.l.stats.MPNoConn++
			s.logger().Info("no middle-proxy connection ready in time; closing client",
				zap.Int("dc", p.dc), zap.Duration("waited", wait), remoteField("client", s.client.conn.RemoteAddr()))
			s.closeBoth()
		}
	}
}

// mpPool is one loop's RPC connections to the middle proxies of one
// cluster, and the clients waiting for one of them to be ready.
type mpPool struct {
	m     *mpLoop
	dc    int
	conns []*mpConn
	rr    int // round-robin position
	// waiting holds the clients waiting for a ready connection, oldest
	// first; those that left meanwhile stay until they reach the front.
	waiting []*session
}

// setTargets makes the pool keep connections to exactly these middle
// proxies: missing ones are opened, those of removed targets retire.
func (p *mpPool) setTargets(targets []string) {
	per := p.m.l.srv.cfg.Middle.ConnsPerTarget
	if per == 0 {
		n := p.m.l.srv.numLoops
		per = max(1, (p.m.settings.conf.MinConnections()+n-1)/n)
	}
	for _, c := range p.conns {
		if !slices.Contains(targets, c.target) && !c.retiring {
			c.retire()
		}
	}
	p.conns = slices.DeleteFunc(p.conns, func(c *mpConn) bool { return c.state == mpGone })
	for _, t := range targets {
		have := 0
		for _, c := range p.conns {
			if c.target == t && !c.retiring {
				have++
			}
		}
		for ; have < per; have++ {
			c := &mpConn{pool: p, target: t}
			p.conns = append(p.conns, c)
			c.connect()
		}
	}
}

// pick returns a ready connection for a new client, round robin, or nil.
func (p *mpPool) pick() *mpConn {
	for i := range p.conns {
		c := p.conns[(p.rr+i)%len(p.conns)]
		if c.state == mpReady && !c.retiring {
			p.rr = (p.rr + i + 1) % len(p.conns)
			return c
		}
	}
	return nil
}

// serveWaiting binds the waiting clients to ready connections.
func (p *mpPool) serveWaiting() {
	for s := p.front(); s != nil; s = p.front() {
		c := p.pick()
		if c == nil {
			return
		}
		p.unwait(s)
		s.bind(c)
	}
}

func (p *mpPool) wait(s *session) {
	s.mp.since, s.mp.waiting = p.m.l.now, true
	p.waiting = append(p.waiting, s)
	p.hurry()
}

// minRetryGap bounds how often a waiting client may bring a reconnect
// forward.
const minRetryGap = 200 * time.Millisecond

// hurry reconnects now the connections that wait out a back-off, when no
// connection is on its way: a client is waiting, and the middle proxy may
// be back already. The back-off still spaces attempts while no client
// comes.
func (p *mpPool) hurry() {
	for _, c := range p.conns {
		if c.state == mpDialing || c.state == mpHandshake {
			return
		}
	}
	now := time.Now()
	for _, c := range p.conns {
		if c.state == mpIdle && !c.retiring && now.Sub(c.attempt) >= minRetryGap {
			c.connect()
		}
	}
}

// unwait takes s off the queue; it is dropped from the slice when it
// reaches the front.
func (p *mpPool) unwait(s *session) { s.mp.waiting = false }

// front returns the oldest waiting client, or nil.
func (p *mpPool) front() *session {
	for len(p.waiting) > 0 {
		if s := p.waiting[0]; s.mp.waiting {
			return s
		}
		p.waiting[0] = nil
		p.waiting = p.waiting[1:]
	}
	p.waiting = nil // let append start a fresh array
	return nil
}

type mpState uint8

const (
	mpIdle      mpState = iota // waiting to reconnect
	mpDialing                  // TCP connect on its way
	mpHandshake                // nonce and handshake exchange
	mpReady                    // serving clients
	mpGone                     // retired and closed: dropped from the pool
)

// mpConn is one RPC connection to a middle proxy, on the loop of the
// clients it serves. It reconnects with back-off until it retires.
type mpConn struct {
	pool     *mpPool
	target   string
	conn     gnet.Conn // nil unless connected
	rpc      *mproxy.Conn
	state    mpState
	retiring bool // its target left the config: closes with its last client
	deadline time.Time
	failures int       // failed attempts in a row, for the back-off
	attempt  time.Time // start of the last connection attempt
	err      error     // why the connection is being closed
	clients  []*session
	// ready is set by the Handler during Feed; the waiting clients are
	// bound after Feed returns, as frames for them may not be appended
	// meanwhile.
	ready bool
	// feeding is set during Feed: a client that leaves then (its socket
	// failed, or it overflowed) has its RPC_CLOSE_CONN queued for after
	// Feed, so that it follows Feed's own output in the CBC stream.
	feeding bool
}

func (c *mpConn) loop() *loop      { return c.pool.m.l }
func (c *mpConn) log() *zap.Logger { return c.loop().srv.log }
func (c *mpConn) connect() {
	c.state, c.attempt = mpDialing, time.Now()
	c.loop().dial(c, c.target)
}
func (c *mpConn) Run(context.Context) error {
	if c.state == mpIdle && !c.retiring {
		c.connect()
	}
	return nil
}

func (c *mpConn) dialFailed(addr string, err error) {
	c.loop().stats.MPFailed++
	c.log().Warn("cannot connect to middle proxy", zap.String("addr", addr), zap.Error(err))
	c.retry()
}

// retry schedules the next attempt: 1–1.1 s after the first failure,
// growing ×1.5 (+0–0.2 s) up to the maximum (the official's back-off,
// which we also apply after failed handshakes, protocol.md §14).
func (c *mpConn) retry() {
	c.state = mpIdle
	if c.retiring {
		c.gone()
		return
	}
	cfg := c.loop().srv.cfg.Middle
	d := float64(cfg.ReconnectDelay) * (1 + 0.1*rand.Float64())
	for range min(c.failures, 16) {
		d = d*1.5 + 0.2*float64(cfg.ReconnectDelay)*rand.Float64()
	}
	c.failures++
	delay := min(time.Duration(d), cfg.MaxReconnectDelay)
	time.AfterFunc(delay, func() {
		c.loop().el.Execute(context.Background(), c) // fails only when shutting down
	})
}

// opened runs when the TCP connection is registered on the loop: it starts
// the nonce exchange.
func (c *mpConn) opened(gc gnet.Conn) ([]byte, gnet.Action) {
	if c.state != mpDialing || c.retiring {
		c.gone()
		return nil, gnet.Close
	}
	l := c.loop()
	cfg := l.srv.cfg.Middle
	local, remote := addrPort(gc.LocalAddr()), addrPort(gc.RemoteAddr())
	local = netip.AddrPortFrom(nat(cfg.NAT, local.Addr()), local.Port())
	c.conn, c.err = gc, nil
	gc.SetContext(c)
	c.rpc = mproxy.New(mproxy.Config{
		Secret:      l.mp.settings.secret,
		Local:       local,
		Remote:      remote,
		PID:         processPID(local),
		OfferCRC32C: true,
		Handler:     c,
	})
	c.state = mpHandshake
	c.deadline = time.Now().Add(cfg.HandshakeTimeout)
	return c.rpc.Start(nil), gnet.None
}

// traffic feeds what the middle proxy sent to the RPC state machine, which
// hands answers to the clients through the Handler methods below.
func (c *mpConn) traffic() gnet.Action {
	l := c.loop()
	m := l.mp
	buf, _ := c.conn.Next(-1)
	l.stats.DCBytes += uint64(len(buf))
	c.feeding = true
	out, err := c.rpc.Feed(buf, m.out[:0])
	c.feeding = false
	for _, id := range m.closeIDs {
		out, _ = c.rpc.AppendCloseConn(out, id)
	}
	m.closeIDs = m.closeIDs[:0]
	if len(out) > 0 {
		c.conn.Write(out)
	}
	m.out = out[:0]
	if err != nil {
		c.err = err
		return gnet.Close
	}
	if c.ready {
		c.ready = false
		c.pool.serveWaiting()
	}
	return gnet.None
}

// fail closes the connection for err.
func (c *mpConn) fail(err error) {
	if c.conn != nil {
		c.err = err
		c.conn.Close()
	}
}

// closed runs when gnet has closed the connection: its clients cannot be
// moved (the middle proxy knows them on this connection only), so they are
// closed and reconnect.
func (c *mpConn) closed(err error) {
	l := c.loop()
	if c.err == nil {
		// The exchange's stage tells more than the socket's error: a
		// middle proxy closes without a word on a wrong secret.
		c.err = c.rpc.EOF()
		if err != nil {
			c.err = fmt.Errorf("%w (%v)", c.err, err)
		}
	}
	c.conn = nil
	switch {
	case c.retiring:
		c.log().Info("middle-proxy connection retired", zap.String("addr", c.target), zap.Error(c.err))
	case l.srv.stopping.Load():
		c.log().Debug("middle-proxy connection closed: stopping", zap.String("addr", c.target))
	case c.state == mpReady:
		l.stats.MPLost++
		c.failures = 0
		c.log().Warn("middle-proxy connection lost", zap.String("addr", c.target),
			zap.Int("clients", len(c.clients)), zap.Error(c.err))
	default:
		l.stats.MPFailed++
		c.log().Warn("middle-proxy handshake failed", zap.String("addr", c.target), zap.Error(c.err))
	}
	clients := c.clients
	c.clients = nil
	for _, s := range clients {
		s.mp.conn = nil
		l.mp.ids.Remove(s.mp.id)
		l.stats.MPClientsLost++
		s.closeBoth()
	}
	c.retry()
}

// retire stops giving the connection new clients; it closes once its last
// client has gone.
func (c *mpConn) retire() {
	c.retiring = true
	if len(c.clients) > 0 {
		return
	}
	switch c.state {
	case mpIdle:
		c.gone() // its reconnect timer finds it retired
	case mpHandshake, mpReady:
		c.fail(errors.New("middle proxy left the config"))
	}
}

func (c *mpConn) gone() { c.state = mpGone }

// unbind forgets a client that is leaving; tell sends the middle proxy
// RPC_CLOSE_CONN.
func (c *mpConn) unbind(s *session, tell bool) {
	i := s.mp.idx
	last := len(c.clients) - 1
	c.clients[i] = c.clients[last]
	c.clients[i].mp.idx = i
	c.clients[last] = nil
	c.clients = c.clients[:last]
	s.mp.idx = -1
	switch {
	case !tell || c.conn == nil:
	case c.feeding:
		c.pool.m.closeIDs = append(c.pool.m.closeIDs, int64(s.mp.id))
	default:
		if out, err := c.rpc.AppendCloseConn(c.pool.m.out[:0], int64(s.mp.id)); err == nil {
			c.conn.Write(out)
		}
	}
	if c.retiring && len(c.clients) == 0 {
		c.retire()
	}
}

// The mproxy.Handler methods run inside Feed.

func (c *mpConn) Ready() {
	l := c.loop()
	c.state, c.ready, c.failures = mpReady, true, 0
	l.stats.MPConnected++
	c.log().Debug("middle-proxy connection ready", zap.String("addr", c.target), zap.Bool("crc32c", c.rpc.CRC32C()))
}

// client returns the client that id names on this connection, or queues
// an RPC_CLOSE_CONN for an id that is gone.
func (c *mpConn) client(id int64) *session {
	m := c.pool.m
	s, ok := m.ids.Get(uint64(id))
	if !ok || s.mp.conn != c {
		m.l.stats.MPUnknownID++
		m.closeIDs = append(m.closeIDs, id)
		return nil
	}
	return s
}

func (c *mpConn) ProxyAns(id int64, _ uint32, msg []byte) {
	if s := c.client(id); s != nil {
		s.answer(msg)
	}
}

func (c *mpConn) SimpleAck(id int64, token uint32) {
	if s := c.client(id); s != nil {
		s.quickAck(token)
	}
}

func (c *mpConn) CloseExt(id int64) {
	m := c.pool.m
	if s, ok := m.ids.Get(uint64(id)); ok && s.mp.conn == c {
		m.l.stats.MPCloseExt++
		s.closeByMP()
	}
}

// addrPort converts a TCP address from gnet.
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// nat maps a local address to the public one, if configured.
func nat(table map[netip.Addr]netip.Addr, a netip.Addr) netip.Addr {
	if pub, ok := table[a]; ok {
		return pub
	}
	return a
}

var processStart = time.Now()

// processPID is the sender PID of our handshakes: the address the middle
// proxy sees, the process id and start time, as the official sends.
func processPID(local netip.AddrPort) rpc.PID {
	var ip uint32
	if a := local.Addr(); a.Is4() {
		b := a.As4()
		ip = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return rpc.PID{IP: ip, Port: local.Port(), PID: uint16(os.Getpid()), Time: uint32(processStart.Unix())}
}
