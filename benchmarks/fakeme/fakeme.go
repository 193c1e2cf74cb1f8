// Package fakeme is a fake Telegram middle proxy on loopback: the server side
// of the middle-proxy RPC protocol (protocol.md §6, §14), the peer an MTProxy
// in middle-proxy mode connects to. It is a tool for tests and load runs, with
// one goroutine per connection.
//
// Per connection it reads the proxy's RPC_NONCE (skipping 4-byte filler words
// around it, as mtprotoproxy sends them), checks the key selector against the
// proxy secret, answers with its own nonce and nothing after it (the official
// client refuses any byte after the answer), derives the AES-256-CBC keys from
// the connection's actual addresses, reads the RPC_HANDSHAKE and answers it:
// CRC-32C is echoed when offered, and the answer's peer PID is the client's
// sender PID. Then it serves RPC_PROXY_REQ per Config.Mode, answers RPC_PING
// with RPC_PONG and forgets a client id on RPC_CLOSE_CONN or RPC_CLOSE_EXT.
//
// Output frames are CBC-encrypted and padded with 04000000 words to a
// 16-byte multiple; their sequence numbers count from 0 after the handshake.
//
// In Forward mode each out_conn_id gets its own TCP connection to an MTProto
// server (Config.ForwardAddr, such as gotd's tgtest), opened on the id's
// first RPC_PROXY_REQ and spoken to in the intermediate transport
// (protocol.md §3.2): the tag 0xeeeeeeee, then every request's payload as one
// frame of a 4-byte little-endian length and the payload. Every frame the
// server sends back becomes an RPC_PROXY_ANS (flags 0) for that id; a server
// quick-ack word (a length with bit 31 set) becomes an RPC_SIMPLE_ACK with
// that token. When the server closes the connection the id gets an
// RPC_CLOSE_EXT and later requests for it are dropped, until the proxy
// sends RPC_CLOSE_CONN or RPC_CLOSE_EXT for it, which also closes a live
// server connection. A failed dial is answered with RPC_CLOSE_EXT as well.
// A request with FlagQuickAck is acknowledged on receipt with an
// RPC_SIMPLE_ACK carrying QuickAckToken(payload) (§6.8, §6.9, §3.2); the
// quick-ack bit itself is not passed to the server, which might not accept
// it (gotd's intermediate codec refuses such a length).
//
// In ReqResp mode each RPC_PROXY_REQ payload is one fakedc.Request, as the
// load generator (package load) sends them: it is checked byte for byte
// and answered with the reply fakedc's ReqResp mode would send, in one
// RPC_PROXY_ANS or, with Config.ReplyChunk, several. A reply's delay holds
// back only its own client; each client's replies keep request order.
package fakeme

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/internal/modes"
	"github.com/mtproxy-go/mtproxy/cipher/cbc"
	"github.com/mtproxy-go/mtproxy/cipher/mtkeys"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// Mode selects what the server does with each RPC_PROXY_REQ.
type Mode int

const (
	// Echo answers each RPC_PROXY_REQ with an RPC_PROXY_ANS carrying the
	// same payload to the same out_conn_id. It is the default.
	Echo Mode = iota
	// Sink only counts requests and bytes.
	Sink
	// Source answers the first request of each out_conn_id with
	// Config.SourceBytes bytes of fakedc.NewPattern(Config.Seed) in
	// RPC_PROXY_ANS frames of Config.SourceChunk payload bytes; later
	// requests are only counted. The stream is written by the connection's
	// goroutine, which reads nothing else meanwhile.
	Source
	// Forward hands each client's payloads to an MTProto server at
	// Config.ForwardAddr, one TCP connection per out_conn_id, so that a
	// real MTProto session runs through the proxy (see the package
	// comment). The connections are read by a goroutine each.
	Forward
	// ReqResp answers each request of the load generator (a
	// fakedc.Request in the payload) as fakedc's ReqResp mode does: after
	// ReplyDelay, ReplySize bytes of the request id and its pattern. A
	// payload that is not a valid request gets RPC_CLOSE_EXT for its id
	// and is counted in Stats.BadRequests.
	ReqResp
)

var modeNames = []string{Echo: "echo", Sink: "sink", Source: "source", Forward: "forward", ReqResp: "reqresp"}

// ParseMode returns the mode named by String.
func ParseMode(name string) (Mode, error) {
	m, err := modes.Parse("fakeme", modeNames, name)
	return Mode(m), err
}

func (m Mode) String() string { return modes.Name(modeNames, int(m)) }

// Config configures a Server.
type Config struct {
	// Secret is the proxy-secret file contents, shared with the proxy.
	Secret []byte
	Mode   Mode
	// Addr is the listening address, a loopback IP and a port; the default
	// is a random port of 127.0.0.1.
	Addr string
	// SourceBytes is how many pattern bytes Source sends per out_conn_id;
	// it is rounded down to a multiple of 4 (MTProto packets are words).
	SourceBytes int64
	// SourceChunk is the payload size of Source's RPC_PROXY_ANS frames,
	// a multiple of 4; 0 means 4096.
	SourceChunk int
	// Seed selects the pattern Source sends.
	Seed uint64
	// ForwardAddr is the MTProto server Forward connects to, host:port;
	// it must speak the intermediate transport (protocol.md §3.2).
	ForwardAddr string
	// ReplyChunk, if positive, splits ReqResp's replies into RPC_PROXY_ANS
	// frames of at most ReplyChunk payload bytes, a multiple of 4; the
	// client then gets each reply in several transport frames. Zero sends
	// each reply whole.
	ReplyChunk int
	// PID is the sender PID of the handshake answer; the zero value means
	// 127.0.0.1, the listening port, the process id and the start time.
	PID rpc.PID
	// CorruptAnswer, if positive, spoils the checksum of the server's
	// CorruptAnswer-th RPC_PROXY_ANS, counted from 1 over all connections,
	// to test a proxy's checks.
	CorruptAnswer int64
	// NoCRC32C makes the server answer a CRC-32C offer with flags 0, so
	// that both sides keep CRC-32.
	NoCRC32C bool
	// HandshakeTimeout bounds the nonce and handshake exchange, and
	// Forward's dials; 0 means 10 s.
	HandshakeTimeout time.Duration
	// Logf, if set, receives a line per refused or failed connection. It
	// may be called concurrently.
	Logf func(format string, args ...any)
}

// Stats are the server's counters.
type Stats struct {
	Conns            int64 // TCP connections accepted
	HandshakesOK     int64 // connections that completed the RPC handshake
	HandshakesFailed int64 // connections closed or refused before that
	CRC32C           int64 // handshakes that agreed on CRC-32C
	Requests         int64 // RPC_PROXY_REQ received
	BytesIn          int64 // payload bytes in RPC_PROXY_REQ
	Answers          int64 // RPC_PROXY_ANS sent
	BytesOut         int64 // payload bytes in RPC_PROXY_ANS
	Pings            int64 // RPC_PING answered
	Closes           int64 // RPC_CLOSE_CONN or RPC_CLOSE_EXT received
	Errors           int64 // connections closed for a protocol error after the handshake

	// Forward only.
	ForwardConns  int64 // connections opened to Config.ForwardAddr
	ForwardFailed int64 // dials to Config.ForwardAddr that failed
	CloseExts     int64 // RPC_CLOSE_EXT sent (also by ReqResp, for bad requests)
	QuickAcks     int64 // RPC_SIMPLE_ACK sent
	Dropped       int64 // RPC_PROXY_REQ not delivered to the MTProto server

	// ReqResp only.
	BadRequests int64 // RPC_PROXY_REQ whose payload was not a valid request
}

// Server is a running fake middle proxy.
type Server struct {
	cfg    Config
	secret []byte
	sel    [4]byte
	pid    rpc.PID
	ln     net.Listener
	ctx    context.Context // canceled by Close; bounds Forward's dials
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	tags   map[string]int64 // hex ad tag → requests
	flags  map[uint32]int64 // PROXY_REQ flags → requests

	wg sync.WaitGroup

	nconns, hsOK, hsFailed, crc32c, requests, bytesIn, answers, bytesOut, pings, closes, errs atomic.Int64

	fwdConns, fwdFailed, closeExts, quickAcks, dropped atomic.Int64

	badRequests atomic.Int64
}

// Start listens on Config.Addr and serves connections until Close.
func Start(cfg Config) (*Server, error) {
	secret, err := proxyconf.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.Mode < Echo || cfg.Mode > ReqResp {
		return nil, fmt.Errorf("fakeme: unknown mode %d", int(cfg.Mode))
	}
	if cfg.Mode == Forward && cfg.ForwardAddr == "" {
		return nil, errors.New("fakeme: forward mode needs a forward address")
	}
	if cfg.SourceChunk == 0 {
		cfg.SourceChunk = 4096
	}
	if cfg.SourceChunk < 4 || cfg.SourceChunk%4 != 0 || cfg.SourceChunk > rpc.MaxFrameLen/2 {
		return nil, fmt.Errorf("fakeme: source chunk %d is not a positive multiple of 4", cfg.SourceChunk)
	}
	if cfg.ReplyChunk < 0 || cfg.ReplyChunk%4 != 0 {
		return nil, fmt.Errorf("fakeme: reply chunk %d is not a multiple of 4", cfg.ReplyChunk)
	}
	cfg.SourceBytes &^= 3
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("fakeme: listening address %q is not a loopback IP and port", cfg.Addr)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		secret: secret,
		sel:    rpc.KeySelector(secret),
		pid:    cfg.PID,
		ln:     ln,
		conns:  make(map[*conn]struct{}),
		tags:   make(map[string]int64),
		flags:  make(map[uint32]int64),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.pid == (rpc.PID{}) {
		s.pid = rpc.PID{
			IP:   0x7f000001,
			Port: uint16(ln.Addr().(*net.TCPAddr).Port),
			PID:  uint16(os.Getpid()),
			Time: uint32(time.Now().Unix()),
		}
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Conns:            s.nconns.Load(),
		HandshakesOK:     s.hsOK.Load(),
		HandshakesFailed: s.hsFailed.Load(),
		CRC32C:           s.crc32c.Load(),
		Requests:         s.requests.Load(),
		BytesIn:          s.bytesIn.Load(),
		Answers:          s.answers.Load(),
		BytesOut:         s.bytesOut.Load(),
		Pings:            s.pings.Load(),
		Closes:           s.closes.Load(),
		Errors:           s.errs.Load(),
		ForwardConns:     s.fwdConns.Load(),
		ForwardFailed:    s.fwdFailed.Load(),
		CloseExts:        s.closeExts.Load(),
		QuickAcks:        s.quickAcks.Load(),
		Dropped:          s.dropped.Load(),
		BadRequests:      s.badRequests.Load(),
	}
}

// AdTags returns how many RPC_PROXY_REQ carried each ad tag, by the tag in
// lower-case hex; requests without a tag are not counted.
func (s *Server) AdTags() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.tags)
}

// Flags returns how many RPC_PROXY_REQ carried each flags value.
func (s *Server) Flags() map[uint32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.flags)
}

// Close stops listening, closes every connection (Forward's connections to
// the MTProto server too) and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		cn := &conn{s: s, nc: c, rbuf: make([]byte, 64<<10), ids: make(map[int64]struct{}), fwd: make(map[int64]*fwdConn)}
		s.conns[cn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.nconns.Add(1)
		go s.serve(cn)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		// Closing the connections to the MTProto server ends their
		// goroutines; closing the RPC connection first unblocks those
		// writing to it.
		c.abort()
		c.stopDelay()
		c.fwg.Wait()
	}()
	nc := c.nc
	nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if err := c.handshake(); err != nil {
		s.hsFailed.Add(1)
		if !s.isClosed() {
			s.logf("fakeme: %v: handshake failed: %v", nc.RemoteAddr(), err)
		}
		return
	}
	s.hsOK.Add(1)
	nc.SetDeadline(time.Time{})
	if err := c.loop(); err != nil && !errors.Is(err, io.EOF) && !s.isClosed() {
		s.errs.Add(1)
		s.logf("fakeme: %v: %v", nc.RemoteAddr(), err)
	}
}

const fillerWord = 4 // a length word of 4 is a filler (§6.3)

// conn is one RPC connection's state. Its goroutine reads the connection;
// output is shared with Forward's goroutines under wmu.
type conn struct {
	s  *Server
	nc net.Conn

	fr    rpc.FrameReader
	dec   *cbc.Decrypter
	rbuf  []byte // receive buffer
	plain []byte // plaintext not yet given to fr
	carry []byte // received ciphertext not yet decrypted (less than a block)
	// plainLen counts the plaintext bytes before the encrypted stream while
	// late fillers after the nonce may still arrive (skipFill).
	plainLen int
	skipFill bool

	wmu    sync.Mutex // guards enc, wbuf, wseq and writes to nc
	enc    *cbc.Encrypter
	wbuf   []byte
	wseq   int32
	crc32c bool // set by the handshake, before any other writer starts

	ids map[int64]struct{} // out_conn_ids seen and not closed

	// Forward's connections to the MTProto server, by out_conn_id.
	fmu     sync.Mutex
	fwd     map[int64]*fwdConn
	aborted bool // no more connections: the RPC connection is done
	fwg     sync.WaitGroup
	fbuf    []byte // scratch for the frames written to the MTProto server

	// ReqResp: the delayed replies, nil until the first one, and scratch
	// for the others; used by the connection's goroutine.
	delay *delayer
	rrbuf []byte
}

// next returns the next frame body from the peer.
func (c *conn) next() ([]byte, error) {
	for {
		body, rest, err := c.fr.Next(c.plain)
		c.plain = rest
		if err != nil {
			return nil, err
		}
		if body != nil {
			return body, nil
		}
		// About to block on a read: send what is buffered.
		if err := c.flush(); err != nil {
			return nil, err
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more bytes into c.plain, decrypting them once keys are set.
func (c *conn) fill() error {
	if c.dec == nil {
		n, err := c.nc.Read(c.rbuf)
		if n == 0 {
			return readErr(err)
		}
		c.plain = c.rbuf[:n]
		return nil
	}
	k := copy(c.rbuf, c.carry)
	c.carry = c.carry[:0]
	for k < cbc.BlockSize {
		n, err := c.nc.Read(c.rbuf[k:])
		if n == 0 {
			return readErr(err)
		}
		k += n
		// Fillers that an mtprotoproxy-style client sent after its
		// plaintext nonce, to pad it to a block, but which arrived
		// after the answer: the encrypted stream begins after them.
		for c.skipFill && k >= 4 {
			if binary.LittleEndian.Uint32(c.rbuf) != fillerWord {
				c.skipFill = false
				break
			}
			copy(c.rbuf, c.rbuf[4:k])
			k -= 4
			c.plainLen += 4
			c.skipFill = c.plainLen%cbc.BlockSize != 0
		}
	}
	whole := k &^ (cbc.BlockSize - 1)
	c.dec.CryptBlocks(c.rbuf[:whole], c.rbuf[:whole])
	c.carry = append(c.carry, c.rbuf[whole:k]...)
	c.plain = c.rbuf[:whole]
	return nil
}

func readErr(err error) error {
	if err == nil {
		return io.ErrUnexpectedEOF
	}
	return err
}

// handshake runs the nonce and handshake exchange.
func (c *conn) handshake() error {
	s := c.s
	// Count the plaintext bytes up to the end of the nonce frame, fillers
	// included, to know whether fillers may still follow it.
	var consumed int
	var body []byte
	for body == nil {
		if err := c.fill(); err != nil {
			return fmt.Errorf("reading nonce: %w", err)
		}
		in := len(c.plain)
		var err error
		body, c.plain, err = c.fr.Next(c.plain)
		if err != nil {
			return fmt.Errorf("nonce frame: %w", err)
		}
		consumed += in - len(c.plain)
	}
	req, err := rpc.ParseNonce(body)
	if err != nil {
		return err
	}
	if req.KeySelector != s.sel {
		return fmt.Errorf("key selector %x, want %x: wrong proxy secret", req.KeySelector, s.sel)
	}
	if req.Schema != rpc.SchemaAES {
		return fmt.Errorf("crypto schema %d, want %d", req.Schema, rpc.SchemaAES)
	}
	// Fillers after the nonce are still plaintext: the client cannot
	// encrypt before it has our nonce.
	for len(c.plain) >= 4 && binary.LittleEndian.Uint32(c.plain) == fillerWord {
		c.plain = c.plain[4:]
		consumed += 4
	}
	if len(c.plain) != 0 {
		return fmt.Errorf("%d unexpected bytes after the nonce", len(c.plain))
	}
	c.plainLen = consumed
	c.skipFill = consumed%cbc.BlockSize != 0

	ans := rpc.Nonce{KeySelector: s.sel, Schema: rpc.SchemaAES, Time: uint32(time.Now().Unix())}
	rand.Read(ans.Nonce[:])
	// No filler after the answer: the official client refuses any byte
	// after it (§14).
	out := rpc.AppendFrame(nil, rpc.SeqNonce, rpc.AppendNonce(nil, &ans), false)
	if _, err := c.nc.Write(out); err != nil {
		return err
	}

	local, err1 := netip.ParseAddrPort(c.nc.LocalAddr().String())
	remote, err2 := netip.ParseAddrPort(c.nc.RemoteAddr().String())
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	keys, err := mtkeys.Derive(&mtkeys.Params{
		ClientNonce: req.Nonce,
		ServerNonce: ans.Nonce,
		ClientTime:  req.Time,
		Client:      remote,
		Server:      local,
		Secret:      s.secret,
	})
	if err != nil {
		return err
	}
	c.dec = cbc.NewDecrypter(&keys.Client.Key, &keys.Client.IV)
	c.enc = cbc.NewEncrypter(&keys.Server.Key, &keys.Server.IV)

	if body, err = c.next(); err != nil {
		return fmt.Errorf("handshake frame (wrong proxy secret?): %w", err)
	}
	h, err := rpc.ParseHandshake(body)
	if err != nil {
		return err
	}
	flags := h.Flags & rpc.HandshakeCRC32C
	if s.cfg.NoCRC32C {
		flags = 0
	}
	c.wbuf = rpc.AppendFrame(c.wbuf[:0], rpc.SeqHandshake,
		rpc.AppendHandshake(nil, &rpc.Handshake{Flags: flags, Sender: s.pid, Peer: h.Sender}), false)
	if err := c.flush(); err != nil {
		return err
	}
	if flags != 0 {
		c.crc32c = true
		c.fr.UseCRC32C()
		s.crc32c.Add(1)
	}
	return nil
}

// abort closes the RPC connection and Forward's connections, and refuses
// new ones. It may be called more than once and by any goroutine.
func (c *conn) abort() {
	c.nc.Close()
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.aborted = true
	for _, fc := range c.fwd {
		fc.quiet.Store(true)
		if fc.nc != nil {
			fc.nc.Close()
		}
	}
}

// flush pads, encrypts and sends wbuf.
func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *conn) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	c.wbuf = rpc.Pad(c.wbuf)
	c.enc.CryptBlocks(c.wbuf, c.wbuf)
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// frame appends body as the next output frame, flushing when enough is
// buffered.
func (c *conn) frame(body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.appendFrame(body)
	return c.flushFull()
}

func (c *conn) appendFrame(body []byte) {
	c.wbuf = rpc.AppendFrame(c.wbuf, c.wseq, body, c.crc32c)
	c.wseq++
}

// flushFull flushes wbuf if enough is buffered.
func (c *conn) flushFull() error {
	if len(c.wbuf) >= 64<<10 {
		return c.flushLocked()
	}
	return nil
}

// answer appends an RPC_PROXY_ANS for id with payload.
func (c *conn) answer(id int64, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.appendAnswer(id, payload)
	return c.flushFull()
}

func (c *conn) appendAnswer(id int64, payload []byte) {
	start := len(c.wbuf)
	c.wbuf = rpc.StartFrame(c.wbuf)
	c.wbuf = rpc.AppendProxyAns(c.wbuf, 0, id)
	c.wbuf = append(c.wbuf, payload...)
	c.wbuf = rpc.FinishFrame(c.wbuf, start, c.wseq, c.crc32c)
	c.wseq++
	if c.s.answers.Add(1) == c.s.cfg.CorruptAnswer {
		c.wbuf[len(c.wbuf)-1] ^= 0xff // the checksum's last byte
	}
	c.s.bytesOut.Add(int64(len(payload)))
}

// loop serves frames after the handshake until the peer closes.
func (c *conn) loop() error {
	s := c.s
	var chunk []byte
	for {
		body, err := c.next()
		if err != nil {
			return err
		}
		switch rpc.TypeOf(body) {
		case rpc.TypeProxyReq:
			r, payload, err := rpc.ParseProxyReq(body)
			if err != nil {
				return err
			}
			s.requests.Add(1)
			s.bytesIn.Add(int64(len(payload)))
			s.mu.Lock()
			s.flags[r.Flags]++
			if len(r.AdTag) > 0 {
				s.tags[hex.EncodeToString(r.AdTag)]++
			}
			s.mu.Unlock()
			_, known := c.ids[r.ConnID]
			c.ids[r.ConnID] = struct{}{}
			switch s.cfg.Mode {
			case Echo:
				err = c.answer(r.ConnID, payload)
			case Source:
				if !known {
					if chunk == nil {
						chunk = make([]byte, s.cfg.SourceChunk)
					}
					err = c.source(r.ConnID, chunk)
				}
			case Forward:
				err = c.forward(&r, payload)
			case ReqResp:
				err = c.reqResp(&r, payload)
			}
			if err != nil {
				return err
			}
		case rpc.TypePing:
			id, err := rpc.ParsePing(body)
			if err != nil {
				return err
			}
			s.pings.Add(1)
			if err := c.frame(rpc.AppendPong(nil, id)); err != nil {
				return err
			}
		case rpc.TypeCloseConn, rpc.TypeCloseExt:
			var id int64
			if rpc.TypeOf(body) == rpc.TypeCloseConn {
				id, err = rpc.ParseCloseConn(body)
			} else {
				id, err = rpc.ParseCloseExt(body)
			}
			if err != nil {
				return err
			}
			s.closes.Add(1)
			delete(c.ids, id)
			c.closeForward(id)
		default:
			// Ignored, as the official ignores unknown messages.
		}
	}
}

// source sends SourceBytes pattern bytes to id.
func (c *conn) source(id int64, chunk []byte) error {
	p := fakedc.NewPattern(c.s.cfg.Seed)
	for off := int64(0); off < c.s.cfg.SourceBytes; {
		b := chunk[:min(int64(len(chunk)), c.s.cfg.SourceBytes-off)]
		p.ReadAt(b, off)
		if err := c.answer(id, b); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
