package faketls

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"io"
)

// helloBody is the record payload size of the ClientHello: 512 bytes, a
// 517-byte record like Chrome's before post-quantum key shares, which every
// proxy accepts — the 2019 official one takes only 512..767 (protocol.md
// §4.2).
const helloBody = 512

// maxDomain is tdlib's limit on the SNI host name.
const maxDomain = 182

// clientHello returns a Chrome-like ClientHello record for domain with its
// random zeroed, drawing the session id, the GREASE values and an X25519
// key share from rnd. Extensions follow tdlib's TlsInit: GREASE first and
// last, and a padding extension up to helloBody bytes.
func clientHello(rnd io.Reader, domain string) ([]byte, error) {
	if len(domain) == 0 {
		return nil, fmt.Errorf("faketls: domain of 0 bytes (want 1..%d)", maxDomain)
	}
	return buildHello(rnd, domain, helloBody)
}

// buildHello is clientHello with a record payload of size bytes, and no
// server_name extension when domain is empty.
func buildHello(rnd io.Reader, domain string, size int) ([]byte, error) {
	if len(domain) > maxDomain {
		return nil, fmt.Errorf("faketls: domain of %d bytes (want 1..%d)", len(domain), maxDomain)
	}
	if size < helloBody || size > MaxRecord {
		return nil, fmt.Errorf("faketls: ClientHello of %d bytes (want %d..%d)", size, helloBody, MaxRecord)
	}
	var r [33]byte // session id, then a GREASE seed
	if _, err := io.ReadFull(rnd, r[:]); err != nil {
		return nil, fmt.Errorf("faketls: %w", err)
	}
	share, err := ecdh.X25519().GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("faketls: %w", err)
	}
	// GREASE values are 0x?a?a (RFC 8701); the two must differ.
	grease1 := uint16(r[32]&0xf0|0x0a) * 0x0101
	grease2 := grease1 ^ 0x1010

	b := []byte{
		typeHandshake, 0x03, 0x01, 0, 0, // record header, length set below
		0x01, 0, 0, 0, // ClientHello, length set below
		0x03, 0x03, // legacy version TLS 1.2
	}
	b = append(b, make([]byte, 32)...) // random, signed later
	b = append(b, 32)
	b = append(b, r[:32]...) // session id

	b = appendUint16s(b, grease1, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, // cipher suites
		0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035)
	b = append(b, 1, 0) // compression methods: null

	keyShare := binary.BigEndian.AppendUint16(nil, grease1)
	keyShare = append(keyShare, 0, 1, 0, 0x00, 0x1d, 0, 32)
	keyShare = append(keyShare, share.PublicKey().Bytes()...)
	type ext struct {
		typ  uint16
		body []byte
	}
	exts := []ext{{grease1, nil}}
	if domain != "" {
		// server_name: one host_name.
		sni := append([]byte{0}, byte(len(domain)>>8), byte(len(domain)))
		sni = append(sni, domain...)
		exts = append(exts, ext{0x0000, appendList16(nil, func(b []byte) []byte { return append(b, sni...) })})
	}
	exts = append(exts, []ext{
		// extended_master_secret, renegotiation_info.
		{0x0017, nil},
		{0xff01, []byte{0}},
		// supported_groups, ec_point_formats (uncompressed), session_ticket.
		{0x000a, appendUint16s(nil, grease1, 0x001d, 0x0017, 0x0018)},
		{0x000b, []byte{1, 0}},
		{0x0023, nil},
		// ALPN: h2, http/1.1.
		{0x0010, appendList16(nil, func(b []byte) []byte { return append(b, "\x02h2\x08http/1.1"...) })},
		// status_request (OCSP), signature_algorithms, SCT.
		{0x0005, []byte{1, 0, 0, 0, 0}},
		{0x000d, appendUint16s(nil, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)},
		{0x0012, nil},
		// key_share: a one-byte GREASE entry, then X25519.
		{0x0033, appendList16(nil, func(b []byte) []byte { return append(b, keyShare...) })},
		// psk_key_exchange_modes (psk_dhe_ke); supported_versions: GREASE,
		// TLS 1.3, TLS 1.2; compress_certificate (brotli).
		{0x002d, []byte{1, 1}},
		{0x002b, []byte{6, byte(grease2 >> 8), byte(grease2), 3, 4, 3, 3}},
		{0x001b, []byte{2, 0, 2}},
		{grease2, []byte{0}},
	}...)
	b = appendList16(b, func(b []byte) []byte {
		for _, e := range exts {
			b = appendExt(b, e.typ, e.body)
		}
		// padding, whose own header takes 4 bytes; everything before it
		// stays under helloBody for any domain up to maxDomain.
		return appendExt(b, 0x0015, make([]byte, size+5-len(b)-4))
	})
	binary.BigEndian.PutUint16(b[3:5], uint16(len(b)-5))
	n := len(b) - 9
	b[6], b[7], b[8] = byte(n>>16), byte(n>>8), byte(n)
	return b, nil
}

// appendList16 appends what add appends, preceded by its length as a
// big-endian uint16.
func appendList16(b []byte, add func([]byte) []byte) []byte {
	start := len(b)
	b = add(append(b, 0, 0))
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start-2))
	return b
}

// appendUint16s appends vs as a list with a uint16 length.
func appendUint16s(b []byte, vs ...uint16) []byte {
	return appendList16(b, func(b []byte) []byte {
		for _, v := range vs {
			b = binary.BigEndian.AppendUint16(b, v)
		}
		return b
	})
}

func appendExt(b []byte, typ uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	return appendList16(b, func(b []byte) []byte { return append(b, body...) })
}
