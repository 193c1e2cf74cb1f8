package faketls

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
)

// Shape is what the proxy's reply copies from the real site's (§4.8): the
// order of the two ServerHello extensions and the size of the
// application-data record that stands in for the encrypted certificate
// flight.
type Shape struct {
	// SupportedVersionsFirst puts supported_versions before key_share.
	SupportedVersionsFirst bool
	// AppDataLen is the length of the application-data record.
	AppDataLen int
	// Jitter varies the length by up to this much either way per reply.
	Jitter int
}

// DefaultShape returns the shape the official proxy uses when it could not
// probe the site: key_share first, a length of 2500 plus a random 0..1119
// drawn once, and ±1 jitter.
func DefaultShape(rand io.Reader) (Shape, error) {
	extra, err := randIntn(rand, 1120)
	if err != nil {
		return Shape{}, err
	}
	return Shape{AppDataLen: 2500 + extra, Jitter: 1}, nil
}

// AppendServerHello appends to dst the proxy's reply to a verified hello
// (§4.5): exactly one ServerHello record, the ChangeCipherSpec record and
// one application-data record of random bytes, the form tdlib requires.
// The ServerHello echoes the client's session id and cipher suite, carries
// a fresh X25519 public key (a real one, never a post-quantum share) and,
// as its random, HMAC-SHA256(secret, client random ‖ reply with that random
// zeroed), which the client checks. secret is the one Verify matched.
//
// It returns ErrCipherSuite, before reading anything from rand, when the
// client's first suite is not TLS 1.3: the official proxy rejects such
// clients, so the caller should relay them to the real site. It reads
// 32 + AppDataLen (+ 4 with jitter) bytes from rand. It allocates a few
// small objects and spends most of its time, some tens of microseconds, on
// the X25519 key.
func AppendServerHello(dst []byte, h *Hello, secret [16]byte, shape Shape, rand io.Reader) ([]byte, error) {
	if h.CipherSuite < 0x1301 || h.CipherSuite > 0x1303 {
		return dst, ErrCipherSuite
	}
	var scalar [32]byte
	if _, err := io.ReadFull(rand, scalar[:]); err != nil {
		return dst, err
	}
	// Generated from our own random bytes: crypto/ecdh's GenerateKey
	// ignores the reader it is given since Go 1.26.
	key, err := ecdh.X25519().NewPrivateKey(scalar[:])
	if err != nil {
		return dst, err
	}
	n := shape.AppDataLen
	if shape.Jitter > 0 {
		j, err := randIntn(rand, 2*shape.Jitter+1)
		if err != nil {
			return dst, err
		}
		n += j - shape.Jitter
	}
	n = min(max(n, 1), maxCiphertext)
	start := len(dst)
	dst = appendReply(dst, h, shape.SupportedVersionsFirst, key.PublicKey().Bytes(), n)
	if _, err := io.ReadFull(rand, dst[len(dst)-n:]); err != nil {
		return dst[:start], err
	}
	signReply(dst[start:], secret, &h.Random)
	return dst, nil
}

// appendReply appends the three records of the reply with a zero random and
// an application-data body of n zero bytes, to be filled in.
func appendReply(dst []byte, h *Hello, svFirst bool, pub []byte, n int) []byte {
	sid := h.SessionID()
	const extLen = 40 + 6 // key_share + supported_versions
	msgLen := 2 + randomLen + 1 + len(sid) + 2 + 1 + 2 + extLen

	dst = append(dst, recordHandshake, 0x03, 0x03)
	dst = binary.BigEndian.AppendUint16(dst, uint16(4+msgLen))
	dst = append(dst, 0x02, 0, byte(msgLen>>8), byte(msgLen)) // ServerHello
	dst = append(dst, 0x03, 0x03)
	dst = append(dst, zeroRandom[:]...)
	dst = append(dst, byte(len(sid)))
	dst = append(dst, sid...)
	dst = binary.BigEndian.AppendUint16(dst, h.CipherSuite)
	dst = append(dst, 0) // compression
	dst = binary.BigEndian.AppendUint16(dst, uint16(extLen))
	if svFirst {
		dst = appendSupportedVersions(dst)
	}
	dst = binary.BigEndian.AppendUint16(dst, extKeyShare)
	dst = append(dst, 0, 36, 0x00, 0x1d, 0, 32) // X25519, 32-byte key
	dst = append(dst, pub...)
	if !svFirst {
		dst = appendSupportedVersions(dst)
	}

	dst = append(dst, recordChangeCipherSpec, 0x03, 0x03, 0, 1, 1)
	dst = append(dst, recordApplicationData, 0x03, 0x03, byte(n>>8), byte(n))
	return append(dst, make([]byte, n)...)
}

func appendSupportedVersions(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, extSupportedVersions)
	return append(dst, 0, 2, 0x03, 0x04) // TLS 1.3
}

// signReply writes the server random into reply, whose random is zero.
func signReply(reply []byte, secret [16]byte, clientRandom *[32]byte) {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(clientRandom[:])
	mac.Write(reply)
	copy(reply[randomOffset:randomEnd], mac.Sum(nil))
}

// randIntn returns a number in [0, n) read from r. The modulo bias, below
// n/2³², does not matter for sizes.
func randIntn(r io.Reader, n int) (int, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint32(b[:]) % uint32(n)), nil
}
