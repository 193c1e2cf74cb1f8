// Package mproxy is the proxy's side of one middle-proxy RPC connection
// (protocol.md §6.3–6.10, §14) as a sans-I/O state machine: it only
// transforms bytes, so an event loop can run it inline on the connection's
// loop. It never blocks, starts no goroutines and touches no socket.
//
// The caller owns the TCP connection:
//
//	c := mproxy.New(cfg)
//	out := c.Start(nil)            // write out (the RPC_NONCE frame)
//	for each read chunk in {
//		out, err = c.Feed(in, out[:0]) // write out; on err close
//	}
//	// once Handler.Ready has run:
//	out, err = c.AppendProxyReq(out[:0], &req, packet) // write out
//
// Every byte slice Feed, Start and the Append methods return ends on a
// 16-byte block boundary of the CBC stream, so the caller may write each
// one as soon as it gets it, but must write them in the order they were
// produced.
package mproxy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/mtproxy-go/mtproxy/cipher/cbc"
	"github.com/mtproxy-go/mtproxy/cipher/mtkeys"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

var (
	// ErrWrongSecret reports a handshake that failed in a way a proxy
	// secret other than the middle proxy's explains: a different key
	// selector in the nonce answer, or a handshake answer that does not
	// decrypt. (Addresses the middle proxy sees differently, behind NAT,
	// give the second symptom too.)
	ErrWrongSecret = errors.New("mproxy: wrong proxy secret")
	// ErrHandshake reports any other failure of the nonce or handshake
	// exchange.
	ErrHandshake = errors.New("mproxy: handshake failed")
	// ErrProtocol reports a malformed or out-of-sequence frame from the
	// middle proxy after the handshake.
	ErrProtocol = errors.New("mproxy: protocol error")
	// ErrNotReady reports a request before the handshake completed, or on
	// a failed connection.
	ErrNotReady = errors.New("mproxy: connection not ready")
	// ErrPacket reports a client packet whose length is not a multiple
	// of 4.
	ErrPacket = errors.New("mproxy: packet length not a multiple of 4")
)

// Handler receives what the middle proxy sends once the connection is
// ready. Its methods run inside Feed; the byte slices they get are valid
// only during the call. They must not call the Conn's methods (the frames
// they would append would be out of order with Feed's output): queue the
// work and do it after Feed returns.
type Handler interface {
	// Ready reports that the handshake completed: requests may be sent.
	Ready()
	// ProxyAns is data from the middle proxy for the client id, the
	// payload msg[rpc.ProxyAnsHeaderLen:] of the RPC_PROXY_ANS msg. The
	// message header before the payload and the frame's 4-byte checksum
	// after it (msg[len(msg):len(msg)+4], within cap) are spent: the
	// handler may overwrite them, to frame the payload in place. flags
	// only matter to HTTP clients.
	ProxyAns(id int64, flags uint32, msg []byte)
	// SimpleAck is a quick-ack token for the client id.
	SimpleAck(id int64, token uint32)
	// CloseExt is the middle proxy's order to close the client id.
	CloseExt(id int64)
}

// Config configures a Conn.
type Config struct {
	// Secret is the proxy-secret file contents (see proxyconf.ParseSecret).
	Secret []byte
	// Local and Remote are the TCP connection's addresses as the middle
	// proxy sees them: the keys depend on them (§6.5). Behind NAT, Local
	// must be the public address.
	Local, Remote netip.AddrPort
	// PID is the sender PID of the proxy's handshake.
	PID rpc.PID
	// Peer is the peer PID the handshake names; the zero value means the
	// middle proxy's IPv4 address and port, as the official sends.
	Peer rpc.PID
	// OfferCRC32C offers CRC-32C checksums in the handshake; the middle
	// proxy decides.
	OfferCRC32C bool
	// Now is the clock for crypto_ts; nil means time.Now.
	Now func() time.Time
	// Rand supplies the nonce; nil means crypto/rand.
	Rand io.Reader
	// Handler receives the middle proxy's messages; it must not be nil.
	Handler Handler
}

type state uint8

const (
	stateNew       state = iota // Start not called
	stateNonce                  // waiting for the nonce answer
	stateHandshake              // waiting for the handshake answer
	stateReady                  // exchanging messages
	stateFailed
)

// Conn is the proxy's side of one middle-proxy RPC connection. It is not
// safe for concurrent use.
type Conn struct {
	cfg   Config
	state state
	err   error

	nonce rpc.Nonce     // our RPC_NONCE
	hs    rpc.Handshake // our RPC_HANDSHAKE

	r      rpc.FrameReader
	enc    *cbc.Encrypter
	dec    *cbc.Decrypter
	outSeq int32
	crc32c bool

	pend  [cbc.BlockSize]byte // ciphertext of an incomplete block
	npend int
	plain []byte // decrypted input, reused
}

// New returns a connection in its initial state; call Start next.
func New(cfg Config) *Conn {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Conn{cfg: cfg}
}

// Start appends to dst the plaintext RPC_NONCE frame, the first bytes to
// send. It must be called once, before Feed.
func (c *Conn) Start(dst []byte) []byte {
	if c.state != stateNew {
		c.fail(fmt.Errorf("%w: Start called twice", ErrHandshake))
		return dst
	}
	if len(c.cfg.Secret) < 4 {
		c.fail(fmt.Errorf("%w: proxy secret of %d bytes", ErrWrongSecret, len(c.cfg.Secret)))
		return dst
	}
	c.nonce = rpc.Nonce{
		KeySelector: rpc.KeySelector(c.cfg.Secret),
		Schema:      rpc.SchemaAES,
		Time:        uint32(c.cfg.Now().Unix()),
	}
	if _, err := io.ReadFull(c.cfg.Rand, c.nonce.Nonce[:]); err != nil {
		c.fail(fmt.Errorf("%w: nonce: %w", ErrHandshake, err))
		return dst
	}
	c.state = stateNonce
	start := len(dst)
	dst = rpc.AppendNonce(rpc.StartFrame(dst), &c.nonce)
	return rpc.FinishFrame(dst, start, rpc.SeqNonce, false)
}

// Ready reports whether the handshake has completed and the connection
// has not failed.
func (c *Conn) Ready() bool { return c.state == stateReady }

// Err returns the error that failed the connection, or nil.
func (c *Conn) Err() error { return c.err }

// CRC32C reports whether the handshake agreed on CRC-32C.
func (c *Conn) CRC32C() bool { return c.crc32c }

// EOF returns the error to report when the middle proxy closed the
// connection: an earlier error if there was one, and otherwise one that
// says how far the exchange got. A middle proxy closes without an answer
// when the key selector or the keys do not match.
func (c *Conn) EOF() error {
	if c.err != nil {
		return c.err
	}
	switch c.state {
	case stateNew, stateNonce:
		c.fail(fmt.Errorf("%w, most likely: the middle proxy closed the connection during the nonce exchange (it refuses an unknown key selector)", ErrWrongSecret))
	case stateHandshake:
		c.fail(fmt.Errorf("%w, most likely: the middle proxy closed the connection before answering the handshake (it cannot decrypt it if secrets or addresses differ)", ErrWrongSecret))
	default:
		c.fail(fmt.Errorf("mproxy: middle proxy closed the connection: %w", io.EOF))
	}
	return c.err
}

func (c *Conn) fail(err error) error {
	if c.err == nil {
		c.err = err
		c.state = stateFailed
	}
	return c.err
}

// Feed consumes bytes received from the middle proxy, in any chunking,
// and appends to dst what must be sent in reply: the encrypted
// RPC_HANDSHAKE after the nonce answer, RPC_PONG for RPC_PING. Messages
// for clients go to the Handler. An error is final: close the connection.
func (c *Conn) Feed(in, dst []byte) ([]byte, error) {
	switch c.state {
	case stateFailed:
		return dst, c.err
	case stateNew:
		return dst, c.fail(fmt.Errorf("%w: Feed before Start", ErrHandshake))
	case stateNonce:
		return c.feedNonce(in, dst)
	}
	start := len(dst)
	buf := c.decrypt(in)
	for {
		body, rest, err := c.r.Next(buf)
		if err != nil {
			if c.state == stateHandshake {
				err = fmt.Errorf("%w (or the middle proxy sees other addresses, NAT): handshake answer does not decrypt: %w", ErrWrongSecret, err)
			} else {
				err = fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return dst[:start], c.fail(err)
		}
		if body == nil {
			return dst, nil
		}
		buf = rest
		if c.state == stateHandshake {
			err = c.handshakeAnswer(body)
		} else {
			dst, err = c.dispatch(body, dst)
		}
		if err != nil {
			return dst[:start], c.fail(err)
		}
	}
}

func (c *Conn) feedNonce(in, dst []byte) ([]byte, error) {
	body, rest, err := c.r.Next(in)
	if err != nil {
		return dst, c.fail(fmt.Errorf("%w: nonce answer: %w", ErrHandshake, err))
	}
	if body == nil {
		return dst, nil
	}
	if len(rest) != 0 {
		return dst, c.fail(fmt.Errorf("%w: %d bytes after the nonce answer", ErrHandshake, len(rest)))
	}
	ans, err := rpc.ParseNonce(body)
	if err != nil {
		return dst, c.fail(fmt.Errorf("%w: nonce answer: %w", ErrHandshake, err))
	}
	if ans.KeySelector != c.nonce.KeySelector {
		return dst, c.fail(fmt.Errorf("%w: middle proxy's key selector is %x, ours %x", ErrWrongSecret, ans.KeySelector, c.nonce.KeySelector))
	}
	if err := rpc.CheckNonceAnswer(&c.nonce, &ans); err != nil {
		return dst, c.fail(fmt.Errorf("%w: nonce answer: %w", ErrHandshake, err))
	}
	keys, err := mtkeys.Derive(&mtkeys.Params{
		ClientNonce: c.nonce.Nonce,
		ServerNonce: ans.Nonce,
		ClientTime:  c.nonce.Time,
		Client:      c.cfg.Local,
		Server:      c.cfg.Remote,
		Secret:      c.cfg.Secret,
	})
	if err != nil {
		return dst, c.fail(fmt.Errorf("%w: %w", ErrHandshake, err))
	}
	c.enc = cbc.NewEncrypter(&keys.Client.Key, &keys.Client.IV)
	c.dec = cbc.NewDecrypter(&keys.Server.Key, &keys.Server.IV)

	c.hs = rpc.Handshake{Sender: c.cfg.PID, Peer: c.cfg.Peer}
	if c.hs.Peer == (rpc.PID{}) {
		if a := c.cfg.Remote.Addr().Unmap(); a.Is4() {
			b := a.As4()
			c.hs.Peer.IP = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
		c.hs.Peer.Port = c.cfg.Remote.Port()
	}
	if c.cfg.OfferCRC32C {
		c.hs.Flags = rpc.HandshakeCRC32C
	}
	start := len(dst)
	dst = rpc.AppendHandshake(rpc.StartFrame(dst), &c.hs)
	dst = rpc.FinishFrame(dst, start, rpc.SeqHandshake, false)
	c.state = stateHandshake
	return c.seal(dst, start), nil
}

func (c *Conn) handshakeAnswer(body []byte) error {
	ans, err := rpc.ParseHandshake(body)
	if err != nil {
		var he *rpc.HandshakeError
		if errors.As(err, &he) {
			return fmt.Errorf("%w: middle proxy refused the handshake with code %d", ErrHandshake, he.Code)
		}
		return fmt.Errorf("%w: handshake answer: %w", ErrHandshake, err)
	}
	crc32c, err := rpc.CheckHandshakeAnswer(&c.hs, &ans)
	if err != nil {
		return fmt.Errorf("%w: handshake answer: %w", ErrHandshake, err)
	}
	if crc32c {
		c.crc32c = true
		c.r.UseCRC32C()
	}
	c.state = stateReady
	c.cfg.Handler.Ready()
	return nil
}

func (c *Conn) dispatch(body, dst []byte) ([]byte, error) {
	h := c.cfg.Handler
	switch rpc.TypeOf(body) {
	case rpc.TypeProxyAns:
		flags, id, _, err := rpc.ParseProxyAns(body)
		if err != nil {
			return dst, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		h.ProxyAns(id, flags, body)
	case rpc.TypeSimpleAck:
		id, token, err := rpc.ParseSimpleAck(body)
		if err != nil {
			return dst, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		h.SimpleAck(id, token)
	case rpc.TypeCloseExt:
		id, err := rpc.ParseCloseExt(body)
		if err != nil {
			return dst, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		h.CloseExt(id)
	case rpc.TypePing:
		id, err := rpc.ParsePing(body)
		if err != nil {
			return dst, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		start := len(dst)
		dst = rpc.AppendPong(rpc.StartFrame(dst), id)
		dst = c.finish(dst, start)
	}
	// RPC_PONG and unknown types are ignored (§6.9).
	return dst, nil
}

// AppendProxyReq appends to dst one encrypted RPC_PROXY_REQ carrying the
// client packet, whose length must be a multiple of 4. It fails only
// before the handshake completed, after a failure, or for a bad packet;
// dst is then returned unchanged.
func (c *Conn) AppendProxyReq(dst []byte, req *rpc.ProxyReq, packet []byte) ([]byte, error) {
	if c.state != stateReady {
		return dst, c.notReady()
	}
	if len(packet)%4 != 0 {
		return dst, ErrPacket
	}
	start := len(dst)
	dst = rpc.AppendProxyReq(rpc.StartFrame(dst), req)
	dst = append(dst, packet...)
	return c.finish(dst, start), nil
}

// AppendCloseConn appends to dst an encrypted RPC_CLOSE_CONN, which tells
// the middle proxy that the client id is gone or unknown.
func (c *Conn) AppendCloseConn(dst []byte, id int64) ([]byte, error) {
	if c.state != stateReady {
		return dst, c.notReady()
	}
	start := len(dst)
	dst = rpc.AppendCloseConn(rpc.StartFrame(dst), id)
	return c.finish(dst, start), nil
}

func (c *Conn) notReady() error {
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, c.err)
	}
	return ErrNotReady
}

// finish completes the frame begun at dst[start:] with the next sequence
// number, pads and encrypts it.
func (c *Conn) finish(dst []byte, start int) []byte {
	dst = rpc.FinishFrame(dst, start, c.outSeq, c.crc32c)
	c.outSeq++
	return c.seal(dst, start)
}

// seal pads dst[start:] with filler words to whole blocks and encrypts it
// in place.
func (c *Conn) seal(dst []byte, start int) []byte {
	for (len(dst)-start)%cbc.BlockSize != 0 {
		dst = append(dst, 4, 0, 0, 0)
	}
	c.enc.CryptBlocks(dst[start:], dst[start:])
	return dst
}

// decrypt decrypts the whole blocks of the stream that in completes into
// c.plain, keeping the bytes of an incomplete block for the next call.
func (c *Conn) decrypt(in []byte) []byte {
	n := (c.npend + len(in)) &^ (cbc.BlockSize - 1)
	if cap(c.plain) < n {
		c.plain = make([]byte, n)
	}
	plain := c.plain[:n]
	off := 0
	if c.npend > 0 {
		k := copy(c.pend[c.npend:], in)
		c.npend += k
		in = in[k:]
		if c.npend < cbc.BlockSize {
			return nil
		}
		c.dec.CryptBlocks(plain[:cbc.BlockSize], c.pend[:])
		off, c.npend = cbc.BlockSize, 0
	}
	if m := len(in) &^ (cbc.BlockSize - 1); m > 0 {
		c.dec.CryptBlocks(plain[off:off+m], in[:m])
		off += m
		in = in[m:]
	}
	c.npend = copy(c.pend[:], in)
	return plain[:off]
}
