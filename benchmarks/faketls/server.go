package faketls

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// maxSkew is how far a ClientHello's timestamp may be from the server's
// clock.
const maxSkew = 2 * time.Minute

// Server does the proxy side of the handshake over c for secret key: it
// checks the ClientHello digest and timestamp (protocol.md §4.3) and
// answers as the official proxy does (§4.5). It keeps no replay cache. It
// exists to test clients and to put a fake-TLS front before a proxy that
// lacks one; ctx bounds the handshake.
func Server(ctx context.Context, c net.Conn, key [16]byte) (*Conn, error) {
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(c, 4096)
	hello := make([]byte, 5)
	if _, err := io.ReadFull(r, hello); err != nil {
		return nil, err
	}
	if hello[0] != typeHandshake || hello[1] != 0x03 {
		return nil, fmt.Errorf("faketls: client starts with % x, not a TLS handshake record", hello[:3])
	}
	n := int(binary.BigEndian.Uint16(hello[3:5]))
	if n < 76-5 || n > MaxRecord {
		return nil, fmt.Errorf("faketls: ClientHello record of %d bytes", n)
	}
	hello, err := readN(r, hello, n)
	if err != nil {
		return nil, err
	}
	var clientRandom [32]byte
	copy(clientRandom[:], hello[randomOffset:])
	clear(hello[randomOffset : randomOffset+32])
	mac := hmac.New(sha256.New, key[:])
	mac.Write(hello)
	d := mac.Sum(nil)
	if !hmac.Equal(d[:28], clientRandom[:28]) {
		return nil, errors.New("faketls: ClientHello not signed with the secret")
	}
	ts := time.Unix(int64(binary.LittleEndian.Uint32(d[28:])^binary.LittleEndian.Uint32(clientRandom[28:])), 0)
	if skew := time.Since(ts); skew > maxSkew || skew < -maxSkew {
		return nil, fmt.Errorf("faketls: ClientHello timestamp %v is %v off", ts, skew)
	}

	share, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	// The official proxy sends 2500..3619 random bytes when it knows no
	// better (§4.5).
	size, err := rand.Int(rand.Reader, big.NewInt(1120))
	if err != nil {
		return nil, err
	}
	cert := make([]byte, 2500+size.Int64())
	rand.Read(cert)
	reply := serverHello(key, clientRandom[:], hello[44:76], share.PublicKey().Bytes(), cert)
	if _, err := c.Write(reply); err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return &Conn{Conn: c, r: r, server: true}, nil
}

// serverHello returns the reply of protocol.md §4.5 with cipher suite
// 13 01, key_share first, pub as the key share and cert as the payload of
// the application-data record, signed for clientRandom.
func serverHello(key [16]byte, clientRandom, sessionID, pub, cert []byte) []byte {
	b := []byte{typeHandshake, versionMajor, versionMinor, 0, 0x7a, 0x02, 0, 0, 0x76, versionMajor, versionMinor}
	b = append(b, make([]byte, 32)...) // server random, set below
	b = append(b, byte(len(sessionID)))
	b = append(b, sessionID...)
	b = append(b, 0x13, 0x01, 0x00, 0x00, 0x2e) // cipher suite, compression, extensions length
	b = append(b, 0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20)
	b = append(b, pub...)
	b = append(b, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04)
	b = append(b, serverTail...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cert)))
	b = append(b, cert...)
	mac := hmac.New(sha256.New, key[:])
	mac.Write(clientRandom)
	mac.Write(b)
	mac.Sum(b[randomOffset:randomOffset])
	return b
}
