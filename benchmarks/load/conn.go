package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/faketls"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

// pingSize is the payload of the round trip that confirms a new connection,
// each way: MinMiddleSize, so that the same ping serves both modes.
const pingSize = MinMiddleSize

// MinMiddleSize is the smallest request a proxy in middle-proxy mode
// forwards: the official's rule (protocol.md §6.7) passes a packet with a
// non-zero auth_key_id (its first 8 bytes) only if it has at least 56
// bytes, a multiple of 4. Request ids, the first 8 bytes of every request,
// are never zero.
const MinMiddleSize = 56

// Target is an MTProxy whose DCs lead to a fakedc server in ReqResp mode,
// or, in middle-proxy mode, whose middle proxies are fakeme servers in
// ReqResp mode.
type Target struct {
	Addr   string // host:port of the proxy; the host must be a loopback IP
	Secret Secret
	// Framing is what classic clients use; dd and ee clients always use
	// padded intermediate. Zero means intermediate.
	Framing framing.Framing
	DC      int16         // announced DC; zero means 2
	Timeout time.Duration // bound on a dial and its first round trip; zero means 10s
	// Middle is set for a proxy in middle-proxy mode. Requests must then
	// look like encrypted MTProto packets to be forwarded: Send refuses
	// payloads shorter than MinMiddleSize or not a multiple of 4. A reply
	// may arrive in several frames (a middle proxy may split it into
	// several answers, fakeme.Config.ReplyChunk), each a multiple of 4
	// bytes with 0..3 bytes of padding for padded clients.
	Middle bool
}

// Check validates t; Dial does too, but a run checks once up front.
func (t Target) Check() error {
	host, _, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("load: %s is not a loopback address; load runs on loopback only", t.Addr)
	}
	if _, ok := kindNames[t.Secret.Kind]; !ok {
		return fmt.Errorf("load: secret of unknown kind %v", t.Secret.Kind)
	}
	if t.Secret.Kind == EE && t.Secret.Domain == "" {
		return errors.New("load: an ee secret needs a domain")
	}
	if t.Framing != 0 {
		if _, err := framing.FromTag(t.Framing.Tag()); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if t.Secret.Kind != Classic && t.Framing != framing.Padded {
			return fmt.Errorf("load: %v secrets use padded intermediate, not %v", t.Secret.Kind, t.Framing)
		}
	}
	return nil
}

func (t Target) framing() framing.Framing {
	switch {
	case t.Secret.Kind != Classic:
		return framing.Padded
	case t.Framing == 0:
		return framing.Intermediate
	}
	return t.Framing
}

// Dial connects to the proxy, does the handshakes its secret calls for and
// one round trip to the fake DC, so the connection is established end to
// end. n numbers the connection; request IDs carry it, so replies that
// reach the wrong connection are caught.
func (t Target) Dial(ctx context.Context, n uint32) (*Conn, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	dc := t.DC
	if dc == 0 {
		dc = 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	c, err := t.handshake(ctx, tcp, dc, n)
	if err != nil {
		tcp.Close()
		return nil, err
	}
	return c, nil
}

func (t Target) handshake(ctx context.Context, tcp net.Conn, dc int16, n uint32) (*Conn, error) {
	inner := tcp
	if t.Secret.Kind == EE {
		tc, err := faketls.Client(ctx, tcp, t.Secret.Key, t.Secret.Domain)
		if err != nil {
			return nil, err
		}
		inner = tc
	}
	f := t.framing()
	raw, err := tgclient.NewRawConn(ctx, inner, t.Secret.Key, f.Tag(), dc)
	if err != nil {
		return nil, err
	}
	c := &Conn{raw: raw, r: bufio.NewReaderSize(raw, 4096), f: f, id: uint64(n) << 32, middle: t.Middle}
	deadline, _ := ctx.Deadline()
	c.raw.SetDeadline(deadline)
	if _, _, err := c.RoundTrip(pingSize, pingSize, 0); err != nil {
		return nil, fmt.Errorf("load: first round trip: %w", err)
	}
	return c, c.raw.SetDeadline(time.Time{})
}

// Conn is a connection through the proxy to the fake DC that sends
// fakedc requests and checks the replies. Send and Recv may run
// concurrently with each other, but not with themselves.
type Conn struct {
	raw *tgclient.RawConn
	r   *bufio.Reader
	f   framing.Framing
	id  uint64 // connection number << 32; the low half counts requests
	// middle: requests must pass a middle-proxy mode proxy, and replies
	// may come in pieces (Target.Middle).
	middle bool
	wbuf   []byte
	rbuf   []byte
}

// Send writes one request with a payload of size bytes that asks for a
// reply of reply bytes, and returns it with the number of frame bytes
// written. Padded intermediate gets 0..15 bytes of random padding, as tdlib
// sends.
func (c *Conn) Send(size, reply int, delay time.Duration) (fakedc.Request, int, error) {
	if c.middle && (size < MinMiddleSize || size%4 != 0) {
		return fakedc.Request{}, 0, fmt.Errorf("load: a request of %d bytes would not pass a proxy in middle-proxy mode (want a multiple of 4, at least %d)", size, MinMiddleSize)
	}
	c.id++
	q := fakedc.Request{ID: c.id, ReplySize: reply, ReplyDelay: delay}
	pad := 0
	if c.f == framing.Padded {
		pad = rand.N(fakedc.MaxPadding + 1)
	}
	b, err := c.f.AppendHeader(c.wbuf[:0], size+pad)
	if err == nil {
		b, err = fakedc.AppendRequest(b, q, size)
	}
	if err != nil {
		return q, 0, err
	}
	for range pad {
		b = append(b, byte(rand.Uint32()))
	}
	c.wbuf = b
	n, err := c.raw.Write(b)
	return q, n, err
}

// Recv reads the reply to q, checks every payload byte, and returns the
// number of frame bytes read.
func (c *Conn) Recv(q fakedc.Request) (int, error) {
	if c.middle {
		return c.recvPieces(q)
	}
	n, quickAck, err := c.f.ReadHeader(c.r)
	if err != nil {
		return 0, noEOF(err)
	}
	if quickAck {
		return 0, fmt.Errorf("load: reply to %#x: quick-ack bit set", q.ID)
	}
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	body := c.rbuf[:n]
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, noEOF(err)
	}
	return c.f.HeaderLen(n) + n, fakedc.CheckReply(body, q.ID, q.ReplySize, c.f)
}

// recvPieces is Recv for middle-proxy mode: the reply may come in several
// frames, each a multiple of 4 bytes, with 0..3 bytes of padding in padded
// intermediate (which the proxy adds to every frame it sends, as the
// official does).
func (c *Conn) recvPieces(q fakedc.Request) (int, error) {
	maxPad := 0
	if c.f == framing.Padded {
		maxPad = 3
	}
	if cap(c.rbuf) < q.ReplySize+maxPad {
		c.rbuf = make([]byte, q.ReplySize+maxPad)
	}
	frames, got := 0, 0
	for got < q.ReplySize {
		n, quickAck, err := c.f.ReadHeader(c.r)
		if err != nil {
			return frames, noEOF(err)
		}
		if quickAck {
			return frames, fmt.Errorf("load: reply to %#x: quick-ack bit set", q.ID)
		}
		data := n &^ 3
		if n-data > maxPad || data == 0 || data > q.ReplySize-got {
			return frames, fmt.Errorf("load: reply to %#x: a frame of %d bytes after %d of %d (%v)", q.ID, n, got, q.ReplySize, c.f)
		}
		if _, err := io.ReadFull(c.r, c.rbuf[got:got+n]); err != nil {
			return frames, noEOF(err)
		}
		frames += c.f.HeaderLen(n) + n
		got += data
	}
	return frames, fakedc.CheckReply(c.rbuf[:got], q.ID, q.ReplySize, framing.Intermediate)
}

// RoundTrip sends one request and reads its reply; it returns the frame
// bytes each way.
func (c *Conn) RoundTrip(size, reply int, delay time.Duration) (up, down int, err error) {
	q, up, err := c.Send(size, reply, delay)
	if err != nil {
		return up, 0, err
	}
	down, err = c.Recv(q)
	return up, down, err
}

// SetDeadline bounds the reads and writes of c.
func (c *Conn) SetDeadline(t time.Time) error { return c.raw.SetDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.raw.Close() }

// noEOF reports a connection that ends where a reply is due as an error
// that says so.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("load: connection closed while a reply was due: %w", err)
	}
	return err
}
