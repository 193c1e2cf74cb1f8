package fakeme

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// intermediateTag opens an intermediate-transport connection (§3.2).
var intermediateTag = [4]byte{0xee, 0xee, 0xee, 0xee}

// quickAckBit marks a quick-ack token, both in an intermediate length word
// and in the tokens the middle proxy passes on (§3.2).
const quickAckBit = 1 << 31

// maxForwardFrame bounds the frames taken from the MTProto server: the
// payload of an RPC_PROXY_ANS in a frame of at most rpc.MaxFrameLen bytes.
const maxForwardFrame = rpc.MaxFrameLen - 12 - rpc.ProxyAnsHeaderLen

// QuickAckToken is the token Forward sends in RPC_SIMPLE_ACK for a request
// with FlagQuickAck: the first 4 bytes of SHA-256(packet) read little-endian,
// with bit 31 set. MTProto takes the real token from a SHA-256 too, but of
// part of the auth key and the decrypted message, which Telegram's middle
// proxies (part of the DC) can compute and this one cannot: a client sees
// the ack arrive but matches it to no message. Any token is valid on the
// wire; the official proxy passes it on unchecked (§3, §6.9).
func QuickAckToken(packet []byte) uint32 {
	sum := sha256.Sum256(packet)
	return binary.LittleEndian.Uint32(sum[:]) | quickAckBit
}

// fwdConn is Forward's connection to the MTProto server for one
// out_conn_id. The RPC connection's goroutine writes to nc; the connection's
// own goroutine (relay) reads it.
type fwdConn struct {
	id      int64
	nc      net.Conn // nil if the dial failed
	started bool     // the tag was sent; used by the writer only
	// quiet: the proxy closed the id or the RPC connection is ending, so
	// the end of nc is not reported with RPC_CLOSE_EXT.
	quiet atomic.Bool
	// dead: nc is closed or never was; requests for the id are dropped
	// until the proxy closes the id.
	dead atomic.Bool
}

// forward sends payload, the client's packet of request r, to the MTProto
// server connection of r.ConnID, opening it first if there is none.
func (c *conn) forward(r *rpc.ProxyReq, payload []byte) error {
	s := c.s
	c.fmu.Lock()
	fc := c.fwd[r.ConnID]
	c.fmu.Unlock()
	if fc == nil {
		var err error
		if fc, err = c.open(r.ConnID); err != nil {
			return err
		}
	}
	if fc.dead.Load() {
		s.dropped.Add(1)
		return nil
	}
	if r.Flags&rpc.FlagQuickAck != 0 {
		// Acknowledged on receipt, so the ack precedes any answer: both
		// go through wbuf in order.
		c.wmu.Lock()
		c.appendFrame(rpc.AppendSimpleAck(nil, r.ConnID, QuickAckToken(payload)))
		err := c.flushFull()
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		s.quickAcks.Add(1)
	}
	b := c.fbuf[:0]
	if !fc.started {
		b = append(b, intermediateTag[:]...)
		fc.started = true
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	c.fbuf = b
	if _, err := fc.nc.Write(b); err != nil {
		// The relay goroutine's read fails too and reports the end
		// with RPC_CLOSE_EXT.
		fc.dead.Store(true)
		fc.nc.Close()
		s.dropped.Add(1)
	}
	return nil
}

// open dials the MTProto server for id and starts its relay goroutine. A
// failed dial is reported to the proxy with RPC_CLOSE_EXT; the returned
// fwdConn is then dead. The error is the RPC connection's.
func (c *conn) open(id int64) (*fwdConn, error) {
	s := c.s
	fc := &fwdConn{id: id}
	d := net.Dialer{Timeout: s.cfg.HandshakeTimeout}
	nc, err := d.DialContext(s.ctx, "tcp", s.cfg.ForwardAddr)
	c.fmu.Lock()
	if err == nil && c.aborted {
		nc.Close()
		err = net.ErrClosed
	}
	c.fwd[id] = fc
	if err == nil {
		fc.nc = nc
		c.fwg.Add(1)
	}
	c.fmu.Unlock()
	if err != nil {
		fc.dead.Store(true)
		s.fwdFailed.Add(1)
		if !s.isClosed() {
			s.logf("fakeme: %v: out_conn_id %#x: %v", c.nc.RemoteAddr(), id, err)
		}
		return fc, c.closeExt(id)
	}
	s.fwdConns.Add(1)
	go c.relay(fc)
	return fc, nil
}

// closeForward closes the MTProto server connection of id, if any, at the
// proxy's request: the id is forgotten and no RPC_CLOSE_EXT follows.
func (c *conn) closeForward(id int64) {
	c.fmu.Lock()
	fc := c.fwd[id]
	delete(c.fwd, id)
	c.fmu.Unlock()
	if fc == nil {
		return
	}
	fc.quiet.Store(true)
	fc.dead.Store(true)
	if fc.nc != nil {
		fc.nc.Close()
	}
}

// closeExt sends RPC_CLOSE_EXT for id.
func (c *conn) closeExt(id int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.appendFrame(rpc.AppendCloseExt(nil, id))
	c.s.closeExts.Add(1)
	return c.flushLocked()
}

// relay passes the MTProto server's frames for fc to the proxy until the
// connection ends, then reports the end with RPC_CLOSE_EXT unless fc is
// quiet.
func (c *conn) relay(fc *fwdConn) {
	defer c.fwg.Done()
	err := c.relayFrames(fc)
	fc.dead.Store(true)
	fc.nc.Close()
	var we rpcWriteError
	if fc.quiet.Load() || errors.As(err, &we) {
		// The RPC connection failed: its goroutine sees that too.
		return
	}
	if err != nil && !errors.Is(err, io.EOF) && !c.s.isClosed() {
		c.s.logf("fakeme: %v: out_conn_id %#x: MTProto server: %v", c.nc.RemoteAddr(), fc.id, err)
	}
	// An error here is the RPC connection's, which its goroutine sees.
	c.closeExt(fc.id)
}

func (c *conn) relayFrames(fc *fwdConn) error {
	br := bufio.NewReaderSize(fc.nc, 64<<10)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		var body []byte
		if n&quickAckBit != 0 {
			// The server's quick ack: the token, bit 31 included.
			body = rpc.AppendSimpleAck(nil, fc.id, n)
		} else {
			// MTProto packets are words (§3.2), and so are RPC
			// frame bodies.
			if n == 0 || n%4 != 0 || n > maxForwardFrame {
				return fmt.Errorf("frame length %d", n)
			}
			if cap(buf) < int(n) {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				return err
			}
		}
		if fc.quiet.Load() {
			return nil
		}
		c.wmu.Lock()
		if body != nil {
			c.appendFrame(body)
			c.s.quickAcks.Add(1)
		} else {
			c.appendAnswer(fc.id, buf)
		}
		// Send now unless the next frame is already here.
		var err error
		if frameBuffered(br) {
			err = c.flushFull()
		} else {
			err = c.flushLocked()
		}
		c.wmu.Unlock()
		if err != nil {
			return rpcWriteError{err}
		}
	}
}

// rpcWriteError is a failed write to the RPC connection.
type rpcWriteError struct{ error }

func (e rpcWriteError) Unwrap() error { return e.error }

// frameBuffered reports whether br holds a whole intermediate frame (or
// quick-ack word), so that reading it will not block.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < 4 {
		return false
	}
	h, _ := br.Peek(4)
	n := binary.LittleEndian.Uint32(h)
	return n&quickAckBit != 0 || uint64(br.Buffered()) >= 4+uint64(n)
}
