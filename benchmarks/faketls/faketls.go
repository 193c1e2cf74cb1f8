// Package faketls is the client side of fake TLS (protocol.md §4), the
// disguise of ee secrets: a ClientHello whose random field is an HMAC of the
// secret, the proxy's reply checked the same way, then the obfuscated2
// stream carried in TLS application-data records.
package faketls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxRecord is the largest record payload tdlib accepts from a proxy; the
// client refuses larger ones and, unless told otherwise
// (SetWriteRecordSize), sends no larger ones itself.
const MaxRecord = 1 << 14

// Record types and the version every record after the ClientHello carries.
const (
	typeChangeCipherSpec = 0x14
	typeHandshake        = 0x16
	typeApplicationData  = 0x17
	versionMajor         = 0x03
	versionMinor         = 0x03
)

// randomOffset is where the 32-byte random sits in a ClientHello or
// ServerHello record (5-byte record header, 4-byte handshake header, 2-byte
// version).
const randomOffset = 11

// changeCipherSpec is the record a client sends before its first data.
var changeCipherSpec = []byte{typeChangeCipherSpec, versionMajor, versionMinor, 0, 1, 1}

// serverTail is what tdlib requires after the ServerHello record: the
// ChangeCipherSpec record and the header of one application-data record.
var serverTail = append(bytes.Clone(changeCipherSpec), typeApplicationData, versionMajor, versionMinor)

// Client does the fake-TLS handshake over c for secret key, naming domain
// in the SNI, and returns the record layer. ctx bounds the handshake.
func Client(ctx context.Context, c net.Conn, key [16]byte, domain string) (*Conn, error) {
	hello, err := clientHello(rand.Reader, domain)
	if err != nil {
		return nil, err
	}
	sign(hello, key, uint32(time.Now().Unix()))
	return ClientWithHello(ctx, c, key, hello)
}

// HelloOptions shapes a ClientHello made by NewHello.
type HelloOptions struct {
	// Domain is the SNI host name; empty means no server_name extension,
	// as recent Telegram iOS builds send.
	Domain string
	// Size is the record payload in bytes, from 512 (the default, what
	// Client sends) to MaxRecord; a padding extension fills it up.
	Size int
	// Time is the timestamp signed into the random; zero means now.
	Time time.Time
}

// NewHello returns a ClientHello record signed for key, shaped by opts.
// It is for tests that send the hello themselves (split over writes,
// twice, with a skewed clock) and finish with ClientWithHello.
func NewHello(key [16]byte, opts HelloOptions) ([]byte, error) {
	size := opts.Size
	if size == 0 {
		size = helloBody
	}
	hello, err := buildHello(rand.Reader, opts.Domain, size)
	if err != nil {
		return nil, err
	}
	ts := opts.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	sign(hello, key, uint32(ts.Unix()))
	return hello, nil
}

// ClientWithHello is Client with hello, a signed ClientHello record such as
// NewHello makes, sent in one write instead of a fresh one; the reply is
// checked against hello's random. ctx bounds the handshake.
func ClientWithHello(ctx context.Context, c net.Conn, key [16]byte, hello []byte) (*Conn, error) {
	if len(hello) < randomOffset+32 {
		return nil, fmt.Errorf("faketls: ClientHello of %d bytes", len(hello))
	}
	deadline, _ := ctx.Deadline() // zero, meaning none, without a deadline
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := c.Write(hello); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(c, 4096)
	if err := readServerHello(r, key, hello[randomOffset:randomOffset+32]); err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return &Conn{Conn: c, r: r}, nil
}

// sign writes into rec, a ClientHello record with a zero random, the
// client digest for key at unix time ts (protocol.md §4.3).
func sign(rec []byte, key [16]byte, ts uint32) {
	random := rec[randomOffset : randomOffset+32]
	clear(random)
	mac := hmac.New(sha256.New, key[:])
	mac.Write(rec)
	mac.Sum(random[:0])
	binary.LittleEndian.PutUint32(random[28:], binary.LittleEndian.Uint32(random[28:])^ts)
}

// readServerHello reads the proxy's reply the way tdlib does — one
// handshake record, then ChangeCipherSpec and one application-data record —
// and checks the server random: HMAC(key, client random ‖ reply with the
// server random zeroed) (protocol.md §4.5).
func readServerHello(r io.Reader, key [16]byte, clientRandom []byte) error {
	reply := make([]byte, 5, 512)
	if _, err := io.ReadFull(r, reply); err != nil {
		return fmt.Errorf("faketls: reading the ServerHello: %w", err)
	}
	if reply[0] != typeHandshake || reply[1] != versionMajor || reply[2] != versionMinor {
		return fmt.Errorf("faketls: reply starts with % x, not a TLS 1.2 handshake record", reply[:3])
	}
	n := int(binary.BigEndian.Uint16(reply[3:5]))
	if n < randomOffset+32-5 || n > MaxRecord {
		return fmt.Errorf("faketls: ServerHello record of %d bytes", n)
	}
	reply, err := readN(r, reply, n+len(serverTail)+2)
	if err != nil {
		return fmt.Errorf("faketls: reading the ServerHello: %w", err)
	}
	tail := reply[5+n:]
	if !bytes.Equal(tail[:len(serverTail)], serverTail) {
		return fmt.Errorf("faketls: ServerHello followed by % x, want % x", tail[:len(serverTail)], serverTail)
	}
	m := int(binary.BigEndian.Uint16(tail[len(serverTail):]))
	if m > MaxRecord {
		return fmt.Errorf("faketls: application-data record of %d bytes", m)
	}
	if reply, err = readN(r, reply, m); err != nil {
		return fmt.Errorf("faketls: reading the ServerHello: %w", err)
	}

	var got [32]byte
	copy(got[:], reply[randomOffset:])
	clear(reply[randomOffset : randomOffset+32])
	mac := hmac.New(sha256.New, key[:])
	mac.Write(clientRandom)
	mac.Write(reply)
	if !hmac.Equal(mac.Sum(nil), got[:]) {
		return errors.New("faketls: wrong server random: the proxy does not hold the secret")
	}
	return nil
}

// readN appends the next n bytes of r to b.
func readN(r io.Reader, b []byte, n int) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, n)...)
	_, err := io.ReadFull(r, b[start:])
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

// Conn is an established fake-TLS connection: Write sends application-data
// records and Read returns their payloads. A client's first record is
// preceded by ChangeCipherSpec, as tdlib sends it. Read and Write may run
// concurrently with each other, but not with themselves.
type Conn struct {
	net.Conn
	r      *bufio.Reader
	server bool
	left   int // payload bytes not yet read from the current record
	wbuf   []byte
	opened bool // a client's ChangeCipherSpec sent, or a server's received
	// wmax is the largest record payload Write sends; 0 means MaxRecord.
	wmax int
}

// SetWriteRecordSize makes Write send records of up to n payload bytes, 1
// to 65535, instead of MaxRecord: beyond MaxRecord as gotd's client does,
// which puts a whole message in one record, to check that a proxy takes
// that. A client's Read refuses such records, a server's takes them. Call
// it before Write.
func (c *Conn) SetWriteRecordSize(n int) error {
	if n < 1 || n > 1<<16-1 {
		return fmt.Errorf("faketls: record size %d (want 1..65535)", n)
	}
	c.wmax = n
	return nil
}

// Read returns record payload bytes. Any record but application data is an
// error, as in tdlib, except the client's first ChangeCipherSpec. On the
// client side a record over MaxRecord is an error too.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if c.server && !c.opened {
		ccs := make([]byte, len(changeCipherSpec))
		if _, err := io.ReadFull(c.r, ccs); err != nil {
			return 0, err
		}
		if !bytes.Equal(ccs, changeCipherSpec) {
			return 0, fmt.Errorf("faketls: client sent % x, not ChangeCipherSpec", ccs)
		}
		c.opened = true
	}
	for c.left == 0 {
		var h [5]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return 0, err
		}
		if h[0] != typeApplicationData || h[1] != versionMajor || h[2] != versionMinor {
			return 0, fmt.Errorf("faketls: record header % x, want application data", h[:3])
		}
		// A client refuses records over MaxRecord, as tdlib does; a server
		// takes any length, as the official proxy does (gotd's client
		// sends a whole message per record).
		if c.left = int(binary.BigEndian.Uint16(h[3:5])); !c.server && c.left > MaxRecord {
			return 0, fmt.Errorf("faketls: record of %d bytes (max %d)", c.left, MaxRecord)
		}
	}
	n, err := c.r.Read(b[:min(len(b), c.left)])
	c.left -= n
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Write sends b in records of at most MaxRecord bytes (see
// SetWriteRecordSize) with one write to the socket per call.
func (c *Conn) Write(b []byte) (int, error) {
	limit := MaxRecord
	if c.wmax > 0 {
		limit = c.wmax
	}
	c.wbuf = c.wbuf[:0]
	if !c.server && !c.opened {
		c.wbuf = append(c.wbuf, changeCipherSpec...)
		c.opened = true
	}
	for rest := b; len(rest) > 0; {
		chunk := rest[:min(len(rest), limit)]
		c.wbuf = append(c.wbuf, typeApplicationData, versionMajor, versionMinor, byte(len(chunk)>>8), byte(len(chunk)))
		c.wbuf = append(c.wbuf, chunk...)
		rest = rest[len(chunk):]
	}
	if _, err := c.Conn.Write(c.wbuf); err != nil {
		// Which records made it is unknown; the stream is broken anyway.
		return 0, err
	}
	return len(b), nil
}

// CloseWrite half-closes the underlying connection.
func (c *Conn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("faketls: connection cannot half-close")
	}
	return cw.CloseWrite()
}
