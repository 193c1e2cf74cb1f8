package tgclient

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// writeChunk bounds the scratch buffer RawConn encrypts into.
const writeChunk = 64 << 10

// RawConn is the client side of an obfuscated2 connection with a secret
// (protocol.md §2): Read decrypts and Write encrypts, nothing is framed.
// Read and Write may run concurrently with each other, but Write must not
// run concurrently with Write, nor Read with Read.
type RawConn struct {
	net.Conn
	enc, dec cipher.Stream
	scratch  []byte
}

// DialRaw connects to the MTProxy at proxyAddr and sends an obfuscated2
// header for secret key announcing tag and dc. Neither is checked, so tests
// can also send what a proxy must refuse. ctx bounds the dial and the
// header write.
func DialRaw(ctx context.Context, proxyAddr string, key [16]byte, tag uint32, dc int16) (*RawConn, error) {
	return dialRaw(ctx, proxyAddr, key[:], tag, dc)
}

// DialRawSecretless is DialRaw for a proxy running without secrets, which
// uses the header's key material as is (protocol.md §2.3) — exactly what a
// DC expects, so the same client can also talk to a DC directly.
func DialRawSecretless(ctx context.Context, addr string, tag uint32, dc int16) (*RawConn, error) {
	return dialRaw(ctx, addr, nil, tag, dc)
}

// NewRawConn is DialRaw over c, an established connection that may already
// carry another layer such as fake TLS. ctx bounds the header write. On
// error c is left open.
func NewRawConn(ctx context.Context, c net.Conn, key [16]byte, tag uint32, dc int16) (*RawConn, error) {
	return newRawConn(ctx, c, key[:], tag, dc)
}

func dialRaw(ctx context.Context, proxyAddr string, key []byte, tag uint32, dc int16) (*RawConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	rc, err := newRawConn(ctx, c, key, tag, dc)
	if err != nil {
		c.Close()
		return nil, err
	}
	return rc, nil
}

func newRawConn(ctx context.Context, c net.Conn, key []byte, tag uint32, dc int16) (*RawConn, error) {
	rnd, err := randomHeader()
	if err != nil {
		return nil, err
	}
	hdr, enc, dec, err := clientHeader(rnd, key, tag, dc)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline() // zero, meaning none, without a deadline
	if err := writeHeader(c, hdr[:], deadline); err != nil {
		return nil, err
	}
	return &RawConn{Conn: c, enc: enc, dec: dec}, nil
}

func writeHeader(c net.Conn, hdr []byte, deadline time.Time) error {
	if err := c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.Write(hdr); err != nil {
		return err
	}
	return c.SetWriteDeadline(time.Time{})
}

// Read reads and decrypts proxy output.
func (c *RawConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.dec.XORKeyStream(b[:n], b[:n])
	return n, err
}

// Write encrypts b and sends it. After a short write the stream is out of
// step with the proxy and the connection must be dropped.
func (c *RawConn) Write(b []byte) (int, error) {
	// Grown on demand: thousands of idle connections that wrote one small
	// frame each must not hold 64 KiB apiece.
	if want := min(len(b), writeChunk); cap(c.scratch) < want {
		c.scratch = make([]byte, want)
	}
	n := 0
	for n < len(b) {
		chunk := b[n:min(len(b), n+writeChunk)]
		out := c.scratch[:len(chunk)]
		c.enc.XORKeyStream(out, chunk)
		m, err := c.Conn.Write(out)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// CloseWrite shuts down the sending side so the proxy sees EOF, while
// replies can still be read.
func (c *RawConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("tgclient: connection cannot half-close")
	}
	return cw.CloseWrite()
}

// randomHeader returns 64 random bytes a DC would not mistake for an
// unobfuscated transport, HTTP or TLS (protocol.md §2.2). Tag and DC are
// overwritten later, so only bytes 0..7 matter here.
func randomHeader() ([64]byte, error) {
	var b [64]byte
	// One draw in ~250 is refused, so 64 failures in a row mean a broken
	// random source.
	for range 64 {
		rand.Read(b[:])
		first := binary.LittleEndian.Uint32(b[0:4])
		switch {
		case b[0] == 0xef,
			first == 0x44414548, first == 0x54534f50, first == 0x20544547, first == 0x4954504f,
			first == 0x02010316, first == 0xdddddddd, first == 0xeeeeeeee,
			binary.LittleEndian.Uint32(b[4:8]) == 0:
			continue
		}
		return b, nil
	}
	return b, errors.New("tgclient: no usable random header")
}

// clientHeader turns the random bytes rnd into the 64-byte header sent on the
// wire and returns the client's streams, the encrypting one already past the
// header (protocol.md §2.1, §2.3).
func clientHeader(rnd [64]byte, key []byte, tag uint32, dc int16) (hdr [64]byte, enc, dec cipher.Stream, err error) {
	init := rnd
	binary.LittleEndian.PutUint32(init[56:60], tag)
	binary.LittleEndian.PutUint16(init[60:62], uint16(dc))

	rev := slices.Clone(init[8:56])
	slices.Reverse(rev)
	if enc, err = newStream(init[8:40], key, init[40:56]); err != nil {
		return hdr, nil, nil, err
	}
	if dec, err = newStream(rev[0:32], key, rev[32:48]); err != nil {
		return hdr, nil, nil, err
	}

	var ct [64]byte
	enc.XORKeyStream(ct[:], init[:])
	copy(hdr[:56], init[:56])
	copy(hdr[56:], ct[56:])
	return hdr, enc, dec, nil
}

// newStream returns AES-256-CTR keyed with SHA256(prekey ‖ secret), or with
// prekey itself when there is no secret.
func newStream(prekey, secret []byte, iv []byte) (cipher.Stream, error) {
	key := prekey
	if secret != nil {
		h := sha256.New()
		h.Write(prekey)
		h.Write(secret)
		key = h.Sum(nil)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("tgclient: %w", err)
	}
	return cipher.NewCTR(block, iv), nil
}
