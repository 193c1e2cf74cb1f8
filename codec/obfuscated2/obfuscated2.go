// Package obfuscated2 implements the 64-byte init packet that opens every
// MTProxy connection: parsing the client's (keyed with a proxy secret) and
// generating the proxy's own towards a Telegram DC (no secret).
//
// Layout of the packet (protocol.md §2.1): bytes 0..55 travel in the clear,
// 8..40 are key material and 40..56 the counter IV; bytes 56..63 are
// encrypted and hold the protocol tag and the signed DC index.
package obfuscated2

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mtproxy-go/mtproxy/cipher"
)

// HeaderLen is the size of the init packet.
const HeaderLen = 64

// Tag is the protocol tag at offset 56: it names the transport framing.
type Tag uint32

// The three transports a client may announce.
const (
	TagAbridged     Tag = 0xefefefef
	TagIntermediate Tag = 0xeeeeeeee
	TagPadded       Tag = 0xdddddddd
)

// Valid reports whether t is one of the three transports.
func (t Tag) Valid() bool {
	return t == TagAbridged || t == TagIntermediate || t == TagPadded
}

func (t Tag) String() string {
	switch t {
	case TagAbridged:
		return "abridged"
	case TagIntermediate:
		return "intermediate"
	case TagPadded:
		return "padded"
	}
	return fmt.Sprintf("tag(%#08x)", uint32(t))
}

// ErrNoSecret means the header decrypts to a valid tag under none of the
// configured secrets: a wrong secret, a probe or garbage.
var ErrNoSecret = errors.New("obfuscated2: header matches no secret")

// Client is what the proxy learns from a client's init packet.
type Client struct {
	Tag Tag
	// DC is the signed DC index: negative for media DCs.
	DC int16
	// Secret is the index of the matching secret, -1 when running secretless.
	Secret int
	// Decrypt deciphers client bytes; it already stands past the header.
	Decrypt *cipher.CTR
	// SendKey and SendIV key the stream towards the client, which starts
	// at position 0: see Encrypt, and NewBackendFast, which hands them to
	// the DC instead.
	SendKey [32]byte
	SendIV  [16]byte
}

// Encrypt returns the stream that enciphers bytes for the client.
func (c *Client) Encrypt() *cipher.CTR {
	return cipher.NewCTR(&c.SendKey, &c.SendIV)
}

// ParseClient tries each secret in order on the init packet h and returns
// the first whose decryption yields a valid tag. With no secrets the key
// material is used raw, as the official proxy does when started without -S.
func ParseClient(h *[HeaderLen]byte, secrets [][16]byte) (Client, error) {
	if len(secrets) == 0 {
		return parseWith(h, nil, -1)
	}
	for i := range secrets {
		if c, err := parseWith(h, secrets[i][:], i); err == nil {
			return c, nil
		}
	}
	return Client{}, ErrNoSecret
}

func parseWith(h *[HeaderLen]byte, secret []byte, index int) (Client, error) {
	recvKey, recvIV, sendKey, sendIV := deriveKeys(h, secret)
	dec := cipher.NewCTR(&recvKey, &recvIV)
	var plain [HeaderLen]byte
	dec.XORKeyStream(plain[:], h[:])
	tag := Tag(binary.LittleEndian.Uint32(plain[56:]))
	if !tag.Valid() {
		return Client{}, ErrNoSecret
	}
	return Client{
		Tag:     tag,
		DC:      int16(binary.LittleEndian.Uint16(plain[60:])),
		Secret:  index,
		Decrypt: dec,
		SendKey: sendKey,
		SendIV:  sendIV,
	}, nil
}

// deriveKeys computes both directions' keys from the packet as the receiver
// sees it (protocol.md §2.3). With a secret each key is SHA-256 of the key
// material followed by the secret; without one the material is the key.
// The sender's side is the mirror image: its send keys are recv* here.
func deriveKeys(h *[HeaderLen]byte, secret []byte) (recvKey [32]byte, recvIV [16]byte, sendKey [32]byte, sendIV [16]byte) {
	var rev [48]byte
	for i := range rev {
		rev[i] = h[55-i]
	}
	recvKey = keyFrom(h[8:40], secret)
	copy(recvIV[:], h[40:56])
	sendKey = keyFrom(rev[:32], secret)
	copy(sendIV[:], rev[32:])
	return
}

func keyFrom(material, secret []byte) (key [32]byte) {
	if secret == nil {
		copy(key[:], material)
		return key
	}
	hash := sha256.New()
	hash.Write(material)
	hash.Write(secret)
	hash.Sum(key[:0])
	return key
}

// Backend is the proxy's own init packet towards a DC and its two streams.
type Backend struct {
	// Header goes to the DC first, as is.
	Header [HeaderLen]byte
	// Encrypt enciphers bytes for the DC; it already stands past the header.
	Encrypt *cipher.CTR
	// Decrypt deciphers the DC's bytes, from stream position 0.
	Decrypt *cipher.CTR
}

// NewBackend generates an init packet announcing tag and dc to a DC, without
// a secret (protocol.md §5.2). Random bytes come from rand; candidates that
// a DC could mistake for another protocol are drawn again.
func NewBackend(rand io.Reader, tag Tag, dc int16) (Backend, error) {
	return newBackend(rand, tag, dc, nil)
}

// NewBackendFast is NewBackend for "fast mode" (mtprotoproxy's, protocol.md
// §5.2): the key material in the packet is chosen so that the DC enciphers
// its output with exactly the client's stream (key, iv from position 0).
// The proxy then forwards DC bytes to the client untouched, with no AES
// work, and Backend.Decrypt is nil. The cost: the client stream's key
// travels in the clear to the DC, on a link that already tells an observer
// the proxy talks to Telegram.
func NewBackendFast(rand io.Reader, tag Tag, dc int16, key *[32]byte, iv *[16]byte) (Backend, error) {
	var material [48]byte
	copy(material[:32], key[:])
	copy(material[32:], iv[:])
	return newBackend(rand, tag, dc, &material)
}

func newBackend(rand io.Reader, tag Tag, dc int16, decMaterial *[48]byte) (Backend, error) {
	var b Backend
	h := &b.Header
	for {
		if _, err := io.ReadFull(rand, h[:]); err != nil {
			return Backend{}, fmt.Errorf("obfuscated2: random header: %w", err)
		}
		if !forbidden(h) {
			break
		}
	}
	if decMaterial != nil {
		// The DC reads its send key and IV from the packet reversed.
		for i, c := range decMaterial {
			h[55-i] = c
		}
	}
	binary.LittleEndian.PutUint32(h[56:], uint32(tag))
	binary.LittleEndian.PutUint16(h[60:], uint16(dc))

	// We are the sender here: our send keys are what the DC derives as its
	// receive keys, and the other way round.
	encKey, encIV, decKey, decIV := deriveKeys(h, nil)
	b.Encrypt = cipher.NewCTR(&encKey, &encIV)
	if decMaterial == nil {
		b.Decrypt = cipher.NewCTR(&decKey, &decIV)
	}

	var enc [HeaderLen]byte
	b.Encrypt.XORKeyStream(enc[:], h[:])
	copy(h[56:], enc[56:])
	return b, nil
}

// forbidden reports whether the first bytes of h look like an unobfuscated
// transport or a plain-text protocol that a DC sniffs (protocol.md §2.2).
func forbidden(h *[HeaderLen]byte) bool {
	if h[0] == 0xef {
		return true
	}
	switch binary.LittleEndian.Uint32(h[0:]) {
	case 0x44414548, // "HEAD"
		0x54534f50, // "POST"
		0x20544547, // "GET "
		0x4954504f, // "OPTI"
		0x02010316, // TLS ClientHello
		uint32(TagPadded), uint32(TagIntermediate):
		return true
	}
	return binary.LittleEndian.Uint32(h[4:]) == 0
}
