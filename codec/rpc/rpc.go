// Package rpc encodes and decodes the RPC protocol spoken between the proxy
// and Telegram's middle proxies (protocol.md §6.3–6.9): the frames and the
// messages they carry.
//
// It works on plaintext only. After the RPC_NONCE exchange the byte stream
// is AES-256-CBC encrypted (keys from cipher/mtkeys): a writer appends
// frames, calls Pad and encrypts the result; a reader decrypts whole blocks
// and hands the plaintext to a FrameReader.
//
// Everything here works on byte slices for a non-blocking event loop: the
// Append functions add to a caller's buffer and do not allocate when it has
// room, the Parse functions return sub-slices of their input.
package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// le is the byte order of every RPC field.
var le = binary.LittleEndian

// Type is the first word of every message, naming its kind.
type Type uint32

// The message types of protocol.md §6 and §13.
const (
	TypeNonce          Type = 0x7acb87aa // RPC_NONCE
	TypeHandshake      Type = 0x7682eef5 // RPC_HANDSHAKE
	TypeHandshakeError Type = 0x6a27beda // RPC_HANDSHAKE_ERROR
	TypeProxyReq       Type = 0x36cef1ee // RPC_PROXY_REQ
	TypeProxyAns       Type = 0x4403da0d // RPC_PROXY_ANS (not 0x3fa2773e, see §6.9)
	TypeSimpleAck      Type = 0x3bac409b // RPC_SIMPLE_ACK
	TypeCloseExt       Type = 0x5eb634a2 // RPC_CLOSE_EXT
	TypeCloseConn      Type = 0x1fcf425d // RPC_CLOSE_CONN
	TypePing           Type = 0x5730a2df // RPC_PING
	TypePong           Type = 0x8430eaa7 // RPC_PONG
)

// TypeOf returns the type of a message, or 0 if it is shorter than a word.
func TypeOf(body []byte) Type {
	if len(body) < 4 {
		return 0
	}
	return Type(binary.LittleEndian.Uint32(body))
}

// String returns the protocol's name for t, or its value in hex.
func (t Type) String() string {
	switch t {
	case TypeNonce:
		return "RPC_NONCE"
	case TypeHandshake:
		return "RPC_HANDSHAKE"
	case TypeHandshakeError:
		return "RPC_HANDSHAKE_ERROR"
	case TypeProxyReq:
		return "RPC_PROXY_REQ"
	case TypeProxyAns:
		return "RPC_PROXY_ANS"
	case TypeSimpleAck:
		return "RPC_SIMPLE_ACK"
	case TypeCloseExt:
		return "RPC_CLOSE_EXT"
	case TypeCloseConn:
		return "RPC_CLOSE_CONN"
	case TypePing:
		return "RPC_PING"
	case TypePong:
		return "RPC_PONG"
	}
	return fmt.Sprintf("%#08x", uint32(t))
}

var (
	// ErrMalformed reports a message of the wrong type or size.
	ErrMalformed = errors.New("rpc: malformed message")
	// ErrRefused reports a nonce or handshake answer that does not fit
	// the request.
	ErrRefused = errors.New("rpc: handshake refused")
)

// checkBody returns an error unless body is a message of type t that is n
// bytes long, or at least n bytes long if min is set.
func checkBody(body []byte, t Type, n int, min bool) error {
	if got := TypeOf(body); got != t {
		return fmt.Errorf("%w: %v, want %v", ErrMalformed, got, t)
	}
	if len(body) < n || !min && len(body) != n {
		return fmt.Errorf("%w: %v of %d bytes", ErrMalformed, t, len(body))
	}
	return nil
}
