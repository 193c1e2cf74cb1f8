// Package fakedc is a fake Telegram data centre on loopback: the peer an
// MTProxy in direct mode connects to.
//
// The obfuscated2 handshake (without a secret, protocol.md §5.2) is done by
// gotd's server-side implementation, so it is independent of the proxy under
// test. Echo, Sink and Source work on the decrypted byte stream whatever its
// framing; ReqResp parses the announced framing and answers each frame;
// MTProto serves real MTProto with gotd's tgtest server.
package fakedc

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/exchange"
	"github.com/gotd/td/mtproxy/obfuscated2"
	"github.com/gotd/td/tgtest"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/modes"
)

// Mode selects what the server does with a connection after the handshake.
type Mode int

const (
	// Echo sends every decrypted byte back, re-encrypted. It is the default.
	Echo Mode = iota
	// Sink reads and counts everything until the peer closes.
	Sink
	// Source sends Config.SourceBytes bytes of NewPattern(Config.Seed), then
	// keeps the connection open, discarding input, until the peer closes.
	Source
	// MTProto runs gotd's tgtest server on the connection, with the transport
	// codec of the announced tag. Each connection gets a server of its own,
	// so an auth key is known only on the connection that created it.
	// Besides what tgtest answers itself (ping, get_future_salts, ...) it
	// handles:
	//   - help.getConfig: an empty config with this_dc = Config.DC;
	//   - help.getNearestDc: this DC;
	//   - upload.saveFilePart: true if Bytes equal NewPattern(FileID) at
	//     offset FilePart*len(Bytes), else error FILE_PART_CORRUPT;
	//   - upload.getFile with an inputDocumentFileLocation: Limit (at most
	//     1 MiB) bytes of NewPattern(ID) from Offset.
	// Other methods get INPUT_METHOD_INVALID.
	MTProto
	// ReqResp reads frames in the framing the client announced and answers
	// each one as its Request header asks (see Request). A frame that breaks
	// the rules closes the connection and is reported to Config.OnError.
	ReqResp
)

var modeNames = []string{Echo: "echo", Sink: "sink", Source: "source", MTProto: "mtproto", ReqResp: "reqresp"}

// ParseMode returns the mode named by String.
func ParseMode(name string) (Mode, error) {
	m, err := modes.Parse("fakedc", modeNames, name)
	return Mode(m), err
}

func (m Mode) String() string { return modes.Name(modeNames, int(m)) }

// Protocol tags a client announces in its obfuscated2 header (protocol.md §2.1).
const (
	TagAbridged           = uint32(framing.Abridged)
	TagIntermediate       = uint32(framing.Intermediate)
	TagPaddedIntermediate = uint32(framing.Padded)
)

// maxInfos bounds the headers Conns reports.
const maxInfos = 1 << 16

// handshakeTimeout bounds how long a peer may take to send its 64-byte header.
const handshakeTimeout = 10 * time.Second

// Config configures a Server.
type Config struct {
	Mode Mode
	// Addr is the listening address, a loopback IP and a port; the default
	// is a random port of 127.0.0.1.
	Addr string
	// SourceBytes is how many pattern bytes each Source connection sends.
	SourceBytes int64
	// Seed selects the pattern sent in Source mode.
	Seed uint64
	// DC is the DC id of the MTProto server; the client must use the same id
	// in its key exchange. Defaults to 2.
	DC int
	// Key is the MTProto server's RSA-2048 key. When nil a fresh key is
	// generated, which takes from tens of milliseconds to seconds.
	Key *rsa.PrivateKey
	// OnError, if set, is called with each frame a ReqResp connection is
	// closed for. It may be called concurrently.
	OnError func(error)
	// Plain takes connections without obfuscated2: each starts with the
	// 4-byte protocol tag of its transport in clear, as a middle proxy's
	// connections to a DC do (fakeme's forward mode).
	Plain bool
}

// ConnInfo is what a connection announced in its obfuscated2 header.
type ConnInfo struct {
	Tag uint32 // protocol tag
	DC  int16  // DC index; negative for media DCs
	// Err is why the header was refused (unknown tag, or a prefix a real DC
	// would take for an unobfuscated transport, protocol.md §2.2); nil if
	// the connection was served.
	Err error
}

func (c ConnInfo) String() string {
	s := fmt.Sprintf("tag %#x dc %d", c.Tag, c.DC)
	if c.Err != nil {
		s += " refused: " + c.Err.Error()
	}
	return s
}

// Stats is a snapshot of the server counters.
type Stats struct {
	Accepted      int64 // TCP connections accepted
	Rejected      int64 // connections closed because the handshake failed
	BytesReceived int64 // decrypted bytes received after the 64-byte header
	BytesSent     int64 // bytes sent, counted before encryption
	BadRequests   int64 // ReqResp frames refused
}

// Server is a running fake DC. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context // canceled by Close; parent of per-connection MTProto servers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	key     exchange.PrivateKey // MTProto mode only
	handler tgtest.Handler      // MTProto mode only

	accepted, rejected, received, sent, bad atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // open TCP connections, closed by Close
	infos  []ConnInfo
}

// Start starts a server on cfg.Addr.
func Start(cfg Config) (*Server, error) {
	if cfg.Mode < Echo || cfg.Mode > ReqResp {
		return nil, fmt.Errorf("fakedc: unknown mode %v", cfg.Mode)
	}
	if cfg.SourceBytes < 0 {
		return nil, errors.New("fakedc: negative SourceBytes")
	}
	if cfg.DC == 0 {
		cfg.DC = 2
	}
	s := &Server{cfg: cfg, conns: make(map[net.Conn]struct{})}
	if cfg.Mode == MTProto {
		if err := s.initMTProto(); err != nil {
			return nil, err
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("fakedc: %w", err)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listening address as host:port.
func (s *Server) Addr() string {
	return s.ln.Addr().String()
}

// PublicKey returns the key an MTProto client must trust; it is zero unless
// the mode is MTProto.
func (s *Server) PublicKey() exchange.PublicKey {
	if s.key.RSA == nil {
		return exchange.PublicKey{}
	}
	return s.key.Public()
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted:      s.accepted.Load(),
		Rejected:      s.rejected.Load(),
		BytesReceived: s.received.Load(),
		BytesSent:     s.sent.Load(),
		BadRequests:   s.bad.Load(),
	}
}

// Conns returns the headers of the connections that sent a complete one,
// in the order they arrived: the first 65536 of them, so that a long
// benchmark run does not grow without bound.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ConnInfo(nil), s.infos...)
}

// Close stops the listener, closes all connections and waits until every
// goroutine of the server has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.cancel()
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed by Close; any other accept error is fatal as well
		}
		s.accepted.Add(1)
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// track registers c for Close; it reports false once the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) serve(raw net.Conn) {
	defer s.wg.Done()
	c, tag, err := s.handshake(raw)
	if err != nil {
		s.rejected.Add(1)
		s.untrack(raw)
		raw.Close()
		return
	}
	defer c.Close()
	switch s.cfg.Mode {
	case Echo:
		io.Copy(c, c)
	case Sink:
		io.Copy(io.Discard, c)
	case Source:
		s.source(c)
	case MTProto:
		s.serveMTProto(c, tag)
	case ReqResp:
		s.serveReqResp(c, tag)
	}
}

// handshake reads the obfuscated2 header and returns the decrypting
// connection and the announced protocol tag.
func (s *Server) handshake(raw net.Conn) (*conn, uint32, error) {
	if err := raw.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, 0, err
	}
	if s.cfg.Plain {
		return s.plainHandshake(raw)
	}
	// Read the header ourselves to check it, then replay it to gotd.
	var hdr [64]byte
	if _, err := io.ReadFull(raw, hdr[:]); err != nil {
		return nil, 0, err
	}
	rw, md, err := obfuscated2.Accept(struct {
		io.Reader
		io.Writer
	}{io.MultiReader(bytes.NewReader(hdr[:]), raw), raw}, nil)
	if err != nil {
		return nil, 0, err
	}
	info := ConnInfo{
		Tag: binary.LittleEndian.Uint32(md.Protocol[:]),
		DC:  int16(md.DC),
	}
	info.Err = checkHeader(&hdr, info.Tag)
	if err := s.admit(raw, info); err != nil {
		return nil, 0, err
	}
	return &conn{Conn: raw, rw: rw, srv: s}, info.Tag, nil
}

// admit records a connection's header and, if it is good, lifts the
// handshake deadline.
func (s *Server) admit(raw net.Conn, info ConnInfo) error {
	s.mu.Lock()
	if len(s.infos) < maxInfos {
		s.infos = append(s.infos, info)
	}
	s.mu.Unlock()
	if info.Err != nil {
		return info.Err
	}
	return raw.SetDeadline(time.Time{})
}

// checkHeader refuses what a real DC would not take as an obfuscated2
// header: a start that looks like an unobfuscated transport, HTTP or TLS
// (protocol.md §2.2), or an unknown protocol tag.
func checkHeader(hdr *[64]byte, tag uint32) error {
	switch binary.LittleEndian.Uint32(hdr[0:4]) {
	case 0x44414548, 0x54534f50, 0x20544547, 0x4954504f, 0x02010316, 0xdddddddd, 0xeeeeeeee:
		return fmt.Errorf("fakedc: header starts with forbidden bytes % x", hdr[0:4])
	}
	if hdr[0] == 0xef {
		return errors.New("fakedc: header starts with 0xef (unobfuscated abridged)")
	}
	if binary.LittleEndian.Uint32(hdr[4:8]) == 0 {
		return errors.New("fakedc: header bytes 4..7 are zero (unobfuscated full)")
	}
	switch tag {
	case TagAbridged, TagIntermediate, TagPaddedIntermediate:
		return nil
	}
	return fmt.Errorf("fakedc: unknown protocol tag %#x", tag)
}

// checkLoopback refuses a listening address off the loopback interface:
// the fake DC is a test peer, never a service.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("fakedc: %w", err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("fakedc: %s is not a loopback address", addr)
	}
	return nil
}

func (s *Server) source(c *conn) {
	// Drain input concurrently so a peer that writes while we push cannot
	// deadlock us; its EOF is also our signal to finish.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, c)
	}()
	if _, err := io.CopyN(c, NewPattern(s.cfg.Seed), s.cfg.SourceBytes); err != nil {
		c.Close() // the peer is gone; unblock the drain
	}
	<-drained
}

// conn is an accepted connection after the handshake: reads and writes go
// through gotd's obfuscated2 stream and are counted, while deadlines and
// addresses are the TCP connection's.
// plainHandshake reads the protocol tag of a connection without
// obfuscation.
func (s *Server) plainHandshake(raw net.Conn) (*conn, uint32, error) {
	var tag [4]byte
	if _, err := io.ReadFull(raw, tag[:]); err != nil {
		return nil, 0, err
	}
	info := ConnInfo{Tag: binary.LittleEndian.Uint32(tag[:])}
	_, info.Err = framing.FromTag(info.Tag)
	if err := s.admit(raw, info); err != nil {
		return nil, 0, err
	}
	return &conn{Conn: raw, rw: raw, srv: s}, info.Tag, nil
}

type conn struct {
	net.Conn
	rw      io.ReadWriter
	srv     *Server
	onClose func() // set before the conn is shared; may be nil
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.rw.Read(b)
	c.srv.received.Add(int64(n))
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.rw.Write(b)
	c.srv.sent.Add(int64(n))
	return n, err
}

func (c *conn) Close() error {
	c.srv.untrack(c.Conn)
	err := c.Conn.Close()
	if c.onClose != nil {
		c.onClose()
	}
	return err
}
