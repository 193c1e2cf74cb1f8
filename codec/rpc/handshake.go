package rpc

import "fmt"

// HandshakeLen is the length of an RPC_HANDSHAKE message.
const HandshakeLen = 32

// handshakeErrorLen is the length of an RPC_HANDSHAKE_ERROR message.
const handshakeErrorLen = 20

// HandshakeCRC32C is the RPC_HANDSHAKE flag (RPCF_USE_CRC32C) that offers,
// or in an answer accepts, CRC-32C checksums for every later frame.
const HandshakeCRC32C = 0x800

// PID is a process identifier as RPC handshakes carry it. Its contents are
// free-form: peers only compare them.
type PID struct {
	IP   uint32 // IPv4 address as an integer: 1.2.3.4 is 0x01020304
	Port uint16
	PID  uint16
	Time uint32 // process start, unix time
}

// Matches reports whether p fits pattern, whose zero fields match
// anything: the official client's check of the peer PID in an answer.
func (p PID) Matches(pattern PID) bool {
	return (pattern.IP == 0 || p.IP == pattern.IP) &&
		(pattern.Port == 0 || p.Port == pattern.Port) &&
		(pattern.PID == 0 || p.PID == pattern.PID) &&
		(pattern.Time == 0 || p.Time == pattern.Time)
}

func appendPID(dst []byte, p PID) []byte {
	dst = le.AppendUint32(dst, p.IP)
	dst = le.AppendUint16(dst, p.Port)
	dst = le.AppendUint16(dst, p.PID)
	return le.AppendUint32(dst, p.Time)
}

func parsePID(b []byte) PID {
	return PID{IP: le.Uint32(b), Port: le.Uint16(b[4:]), PID: le.Uint16(b[6:]), Time: le.Uint32(b[8:])}
}

// Handshake is an RPC_HANDSHAKE message, the first encrypted frame of each
// direction (seq −1).
type Handshake struct {
	Flags  uint32 // 0 or HandshakeCRC32C
	Sender PID    // who sends it
	Peer   PID    // whom the sender believes it talks to
}

// AppendHandshake appends the RPC_HANDSHAKE message h to dst.
func AppendHandshake(dst []byte, h *Handshake) []byte {
	dst = le.AppendUint32(dst, uint32(TypeHandshake))
	dst = le.AppendUint32(dst, h.Flags)
	dst = appendPID(dst, h.Sender)
	return appendPID(dst, h.Peer)
}

// ParseHandshake parses an RPC_HANDSHAKE message. An RPC_HANDSHAKE_ERROR
// is returned as a *HandshakeError.
func ParseHandshake(body []byte) (Handshake, error) {
	var h Handshake
	if TypeOf(body) == TypeHandshakeError {
		if err := checkBody(body, TypeHandshakeError, handshakeErrorLen, false); err != nil {
			return h, err
		}
		return h, &HandshakeError{Code: int32(le.Uint32(body[4:])), Sender: parsePID(body[8:])}
	}
	if err := checkBody(body, TypeHandshake, HandshakeLen, false); err != nil {
		return h, err
	}
	h.Flags = le.Uint32(body[4:])
	h.Sender = parsePID(body[8:])
	h.Peer = parsePID(body[20:])
	return h, nil
}

// CheckHandshakeAnswer returns an error unless the middle proxy's
// handshake ans fits the proxy's request req as the official client
// requires: ans.Peer must match req.Sender (zero fields matching anything)
// and ans.Flags must have no bits in the low byte, nor CRC-32C unless req
// offered it. It reports whether both sides now use CRC-32C. Like the
// official, it does not check ans.Sender, which middle proxies fill freely.
func CheckHandshakeAnswer(req, ans *Handshake) (crc32c bool, err error) {
	switch {
	case !req.Sender.Matches(ans.Peer):
		return false, fmt.Errorf("%w: answer is for %+v, we are %+v", ErrRefused, ans.Peer, req.Sender)
	case ans.Flags&0xff != 0:
		return false, fmt.Errorf("%w: flags %#x", ErrRefused, ans.Flags)
	case ans.Flags&HandshakeCRC32C != 0 && req.Flags&HandshakeCRC32C == 0:
		return false, fmt.Errorf("%w: CRC-32C not offered", ErrRefused)
	}
	return ans.Flags&HandshakeCRC32C != 0, nil
}

// HandshakeError is an RPC_HANDSHAKE_ERROR message: the peer refused the
// handshake.
type HandshakeError struct {
	Code   int32 // negative; the official uses its internal error numbers
	Sender PID
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("%v: RPC_HANDSHAKE_ERROR %d", ErrRefused, e.Code)
}

// Unwrap returns ErrRefused, which every handshake failure matches.
func (e *HandshakeError) Unwrap() error { return ErrRefused }

// AppendHandshakeError appends the RPC_HANDSHAKE_ERROR message e to dst;
// the official sends one before closing on a bad handshake answer.
func AppendHandshakeError(dst []byte, e *HandshakeError) []byte {
	dst = le.AppendUint32(dst, uint32(TypeHandshakeError))
	dst = le.AppendUint32(dst, uint32(e.Code))
	return appendPID(dst, e.Sender)
}
