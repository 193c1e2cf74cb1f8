package rpc

import "fmt"

// NonceLen is the length of an RPC_NONCE message with the AES schema.
const NonceLen = 32

// SchemaAES is the crypto schema the proxy asks for and accepts: AES-256-CBC
// with keys from the nonces and the proxy secret. The others (none, AES
// with extra keys, AES with DH) are not used by the official proxy.
const SchemaAES = 1

// MaxClockSkew is how far, in seconds, the crypto_ts of a nonce answer may
// be from the request's.
const MaxClockSkew = 30

// Nonce is an RPC_NONCE message, the plaintext first frame of each
// direction (seq −2).
type Nonce struct {
	KeySelector [4]byte  // first 4 bytes of the proxy secret
	Schema      uint32   // SchemaAES
	Time        uint32   // crypto_ts: unix time of the sender
	Nonce       [16]byte // random
}

// KeySelector returns the key selector of a proxy secret, its first 4
// bytes: it tells the middle proxy which secret the keys come from.
// The secret must be at least 4 bytes long.
func KeySelector(secret []byte) [4]byte {
	return [4]byte(secret)
}

// AppendNonce appends the RPC_NONCE message n to dst.
func AppendNonce(dst []byte, n *Nonce) []byte {
	dst = le.AppendUint32(dst, uint32(TypeNonce))
	dst = append(dst, n.KeySelector[:]...)
	dst = le.AppendUint32(dst, n.Schema)
	dst = le.AppendUint32(dst, n.Time)
	return append(dst, n.Nonce[:]...)
}

// ParseNonce parses an RPC_NONCE message. Only the AES schema's 32-byte
// form is accepted; the others have extra fields the proxy does not use.
func ParseNonce(body []byte) (Nonce, error) {
	var n Nonce
	if err := checkBody(body, TypeNonce, NonceLen, false); err != nil {
		return n, err
	}
	n.KeySelector = [4]byte(body[4:])
	n.Schema = le.Uint32(body[8:])
	n.Time = le.Uint32(body[12:])
	n.Nonce = [16]byte(body[16:])
	return n, nil
}

// CheckNonceAnswer returns an error unless the middle proxy's nonce ans
// fits the proxy's request req as the official client requires: the same
// non-zero key selector, the AES schema and a crypto_ts within
// MaxClockSkew seconds of the request's. The official also fails the
// connection if any byte follows the answer's frame before the proxy has
// sent its handshake: check that FrameReader.Next returned no rest.
func CheckNonceAnswer(req, ans *Nonce) error {
	switch skew := int32(ans.Time - req.Time); {
	case ans.KeySelector != req.KeySelector || ans.KeySelector == [4]byte{}:
		return fmt.Errorf("%w: key selector %x, want %x", ErrRefused, ans.KeySelector, req.KeySelector)
	case ans.Schema != SchemaAES:
		return fmt.Errorf("%w: crypto schema %d", ErrRefused, ans.Schema)
	case skew > MaxClockSkew || skew < -MaxClockSkew:
		return fmt.Errorf("%w: clocks %d s apart", ErrRefused, skew)
	}
	return nil
}
