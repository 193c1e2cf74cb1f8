package faketls

import (
	"bytes"
	"encoding/binary"
)

// helloPrefix starts every ClientHello record a fake-TLS client sends:
// type handshake, record version TLS 1.0 (as in every real initial hello).
var helloPrefix = [3]byte{recordHandshake, 0x03, 0x01}

// maxFragments bounds how many handshake records one ClientHello may be
// split over. Real clients send one; DPI-evasion tools that split the hello
// at the SNI make two or three. mtg accepts ten.
const maxFragments = 10

// HelloLength looks at the first bytes received on a connection and reports
// how many bytes the ClientHello occupies, so that the caller knows how much
// to buffer before calling Reassemble and ParseHello.
//
// While n > len(buf) the bytes seen so far are a plausible beginning and
// the caller must wait for more and call again: n is a lower bound that
// grows as headers arrive (with fewer than 5 bytes it is 5; for a hello in
// one record it is exact as soon as the 5-byte header is in). Once
// n ≤ len(buf), buf[:n] is the complete hello; any bytes after it are
// not part of it (fake-TLS clients send nothing more before the reply).
//
// The hello may be one handshake record or, as DPI-evasion tools produce,
// up to 10 consecutive handshake records that together carry one
// ClientHello message of MinHelloLen to MaxHelloLen bytes. Anything else,
// detected as early as the bytes allow, is ErrNotHello.
func HelloLength(buf []byte) (n int, err error) {
	var hs [4]byte // handshake header, which may straddle records
	seen := 0      // handshake bytes in the records before off
	off := 0
	for range maxFragments {
		rest := buf[min(off, len(buf)):]
		// Judge even a partial record header by the bytes it has.
		if !bytes.HasPrefix(helloPrefix[:], rest[:min(len(rest), len(helloPrefix))]) {
			return 0, ErrNotHello
		}
		if len(rest) < recordHeaderLen {
			return off + recordHeaderLen, nil
		}
		size := int(binary.BigEndian.Uint16(rest[3:]))
		if size == 0 || size > MaxHelloLen { // no fragment outgrows the message
			return 0, ErrNotHello
		}
		body := rest[recordHeaderLen:]
		body = body[:min(len(body), size)]
		if seen < len(hs) {
			copy(hs[seen:], body)
			if seen+len(body) > 0 && hs[0] != 0x01 { // ClientHello
				return 0, ErrNotHello
			}
		}
		end := off + recordHeaderLen + size
		if seen+len(body) >= len(hs) {
			total := len(hs) + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
			switch {
			case total < MinHelloLen || total > MaxHelloLen || seen+size > total:
				return 0, ErrNotHello
			case seen+size == total:
				return end, nil
			}
		} else if len(body) < size {
			return end, nil // the handshake header is not all in yet
		}
		seen += size
		off = end
	}
	return 0, ErrNotHello
}

// Reassemble returns the hello delimited by HelloLength as a single
// record, the form the client signed and ParseHello reads. A hello that
// already is one record (the usual case) is returned as is, without
// copying; a fragmented one is joined behind one header and appended to
// dst, which then needs up to 5 + MaxHelloLen bytes of capacity to avoid an
// allocation. hello itself is never modified, so it can still be relayed
// to the real site.
func Reassemble(dst, hello []byte) ([]byte, error) {
	if len(hello) < recordHeaderLen {
		return nil, malformed("truncated record header")
	}
	if recordHeaderLen+int(binary.BigEndian.Uint16(hello[3:])) == len(hello) {
		return hello, nil
	}
	start := len(dst)
	dst = append(dst, helloPrefix[:]...)
	dst = append(dst, 0, 0)
	for c := cursor(hello); !c.empty(); {
		hdr, ok := c.bytes(3)
		if !ok || !bytes.Equal(hdr, helloPrefix[:]) {
			return nil, malformed("fragment is not a handshake record")
		}
		body, ok := c.vec16()
		if !ok {
			return nil, malformed("truncated fragment")
		}
		dst = append(dst, body...)
	}
	rec := dst[start:]
	if len(rec)-recordHeaderLen > MaxHelloLen {
		return nil, malformed("reassembled hello too long")
	}
	binary.BigEndian.PutUint16(rec[3:], uint16(len(rec)-recordHeaderLen))
	return rec, nil
}

// Hello is what the proxy needs from a ClientHello.
type Hello struct {
	// Random is the client random: the digest (§4.3), whose first 16
	// bytes also key the replay cache.
	Random [32]byte

	// CipherSuite is the first cipher suite that is not a GREASE value.
	CipherSuite uint16

	// ServerName is the SNI host name, nil when the client sent none
	// (recent Telegram iOS builds). It aliases the record passed to
	// ParseHello and is valid only as long as that is.
	ServerName []byte

	sessionID    [32]byte
	sessionIDLen uint8
}

// SessionID returns the client's legacy session id (0 to 32 bytes), which
// the ServerHello echoes.
func (h *Hello) SessionID() []byte { return h.sessionID[:h.sessionIDLen] }

// ParseHello parses a complete ClientHello record, as returned by
// Reassemble. It checks the structure only, with bounds checks on every
// field; size policy is HelloLength's. A missing SNI is not an error.
// Errors match ErrBadHello.
func ParseHello(rec []byte) (Hello, error) {
	var h Hello
	c := cursor(rec)
	hdr, _ := c.bytes(3)
	if !bytes.Equal(hdr, helloPrefix[:]) {
		return h, malformed("not a handshake record")
	}
	body, ok := c.vec16()
	if !ok || !c.empty() {
		return h, malformed("record length does not match")
	}
	if t, _ := body.u8(); t != 0x01 {
		return h, malformed("not a ClientHello message")
	}
	if n, ok := body.u24(); !ok || n != len(body) {
		return h, malformed("handshake length does not match the record")
	}
	if v, _ := body.u16(); v != 0x0303 {
		return h, malformed("legacy version is not TLS 1.2")
	}
	random, ok := body.bytes(randomLen)
	if !ok {
		return h, malformed("truncated random")
	}
	copy(h.Random[:], random)
	sid, ok := body.vec8()
	if !ok || len(sid) > len(h.sessionID) {
		return h, malformed("bad session id")
	}
	h.sessionIDLen = uint8(copy(h.sessionID[:], sid))
	suites, ok := body.vec16()
	if !ok || len(suites) == 0 || len(suites)%2 != 0 {
		return h, malformed("bad cipher suite list")
	}
	for {
		s, ok := suites.u16()
		if !ok {
			return h, malformed("only GREASE cipher suites")
		}
		if !isGREASE(s) {
			h.CipherSuite = s
			break
		}
	}
	if methods, ok := body.vec8(); !ok || len(methods) == 0 {
		return h, malformed("bad compression methods")
	}
	if body.empty() {
		return h, nil // TLS 1.2 lets a hello end without extensions
	}
	exts, ok := body.vec16()
	if !ok || !body.empty() {
		return h, malformed("extensions length does not match")
	}
	for !exts.empty() {
		typ, _ := exts.u16()
		data, ok := exts.vec16()
		if !ok {
			return h, malformed("truncated extension")
		}
		if typ != extServerName {
			continue
		}
		if h.ServerName != nil {
			return h, malformed("duplicate server_name extension")
		}
		if h.ServerName, ok = parseServerName(data); !ok {
			return h, malformed("bad server_name extension")
		}
	}
	return h, nil
}

// parseServerName reads a server_name extension that, like the official
// proxy demands, holds exactly one non-empty host_name without NUL bytes.
func parseServerName(data cursor) ([]byte, bool) {
	list, ok := data.vec16()
	if !ok || !data.empty() {
		return nil, false
	}
	if t, _ := list.u8(); t != 0 { // host_name
		return nil, false
	}
	name, ok := list.vec16()
	if !ok || !list.empty() || len(name) == 0 || bytes.IndexByte(name, 0) >= 0 {
		return nil, false
	}
	return name, true
}

// Extension types.
const (
	extServerName        = 0x0000
	extStatusRequest     = 0x0005
	extSupportedGroups   = 0x000a
	extECPointFormats    = 0x000b
	extSignatureAlgs     = 0x000d
	extALPN              = 0x0010
	extSCT               = 0x0012
	extPadding           = 0x0015
	extExtendedMaster    = 0x0017
	extCompressCert      = 0x001b
	extSessionTicket     = 0x0023
	extSupportedVersions = 0x002b
	extPSKModes          = 0x002d
	extKeyShare          = 0x0033
	extRenegotiationInfo = 0xff01
)

// isGREASE reports whether v is one of the values RFC 8701 reserves so
// that peers learn to ignore unknown values. The official proxy's test,
// low nibble 0xA in both bytes, is used: it covers all sixteen.
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a }
