package faketls

import (
	"crypto/ecdh"
	"encoding/binary"
	"io"
)

// builder appends TLS structures, patching length prefixes once their
// contents are written.
type builder struct{ b []byte }

func (w *builder) u8(v byte)     { w.b = append(w.b, v) }
func (w *builder) u16(v uint16)  { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *builder) raw(p ...byte) { w.b = append(w.b, p...) }
func (w *builder) u16s(vs ...uint16) {
	for _, v := range vs {
		w.u16(v)
	}
}

// vec writes what fill appends behind a big-endian length of width bytes.
func (w *builder) vec(width int, fill func()) {
	at := len(w.b)
	w.b = append(w.b, make([]byte, width)...)
	fill()
	n := len(w.b) - at - width
	for i := width - 1; i >= 0; i-- {
		w.b[at+i] = byte(n)
		n >>= 8
	}
}

// ext writes an extension whose body fill appends.
func (w *builder) ext(typ uint16, fill func()) {
	w.u16(typ)
	w.vec(2, fill)
}

// appendChromeHello appends a ClientHello record like Chrome's (before it
// added a post-quantum key share): GREASE values, TLS 1.3 and 1.2 suites,
// an X25519 key share, an SNI naming sni (none if empty) and a padding
// extension that brings the record to size bytes when it is shorter. All
// randomness (random, session id, key, GREASE) comes from rand.
func appendChromeHello(dst []byte, rand io.Reader, sni string, size int) ([]byte, error) {
	var rnd [randomLen + 32 + 32 + 4]byte // random, session id, key, GREASE
	if _, err := io.ReadFull(rand, rnd[:]); err != nil {
		return dst, err
	}
	key, err := ecdh.X25519().NewPrivateKey(rnd[64:96])
	if err != nil {
		return dst, err
	}
	var grease [4]uint16
	for i := range grease {
		grease[i] = 0x0a0a | uint16(rnd[96+i]&0xf0)<<8 | uint16(rnd[96+i]&0xf0)
	}
	if grease[3] == grease[1] { // two extensions of one type: a server refuses
		grease[3] ^= 0x1010
	}

	start := len(dst)
	w := builder{dst}
	w.raw(helloPrefix[:]...)
	w.vec(2, func() {
		w.u8(0x01) // ClientHello
		w.vec(3, func() {
			w.u16(0x0303)
			w.raw(rnd[:randomLen]...)
			w.vec(1, func() { w.raw(rnd[32:64]...) })
			w.vec(2, func() {
				w.u16s(grease[0], 0x1301, 0x1302, 0x1303,
					0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
					0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035)
			})
			w.raw(1, 0) // null compression only
			w.vec(2, func() {
				w.ext(grease[1], func() {})
				if sni != "" {
					w.ext(extServerName, func() {
						w.vec(2, func() {
							w.u8(0) // host_name
							w.vec(2, func() { w.raw([]byte(sni)...) })
						})
					})
				}
				w.ext(extExtendedMaster, func() {})
				w.ext(extRenegotiationInfo, func() { w.u8(0) })
				w.ext(extSupportedGroups, func() {
					w.vec(2, func() { w.u16s(grease[2], 0x001d, 0x0017, 0x0018) })
				})
				w.ext(extECPointFormats, func() { w.raw(1, 0) })
				w.ext(extSessionTicket, func() {})
				w.ext(extALPN, func() {
					w.vec(2, func() {
						w.vec(1, func() { w.raw([]byte("h2")...) })
						w.vec(1, func() { w.raw([]byte("http/1.1")...) })
					})
				})
				w.ext(extStatusRequest, func() { w.raw(1, 0, 0, 0, 0) })
				w.ext(extSignatureAlgs, func() {
					w.vec(2, func() {
						w.u16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
					})
				})
				w.ext(extSCT, func() {})
				w.ext(extKeyShare, func() {
					w.vec(2, func() {
						w.u16(grease[2])
						w.vec(2, func() { w.u8(0) })
						w.u16(0x001d)
						w.vec(2, func() { w.raw(key.PublicKey().Bytes()...) })
					})
				})
				w.ext(extPSKModes, func() { w.vec(1, func() { w.u8(1) }) }) // psk_dhe_ke
				w.ext(extSupportedVersions, func() {
					w.vec(1, func() { w.u16s(grease[2], 0x0304, 0x0303) })
				})
				w.ext(extCompressCert, func() { w.vec(1, func() { w.u16(0x0002) }) }) // brotli
				w.ext(grease[3], func() { w.u8(0) })
				if pad := size - (len(w.b) - start) - 4; pad >= 0 {
					w.ext(extPadding, func() { w.raw(make([]byte, pad)...) })
				}
			})
		})
	})
	return w.b, nil
}
