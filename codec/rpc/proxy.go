package rpc

import (
	"fmt"
	"net/netip"
)

// RPC_PROXY_REQ flags (§6.8). The official proxy sends FlagMagic,
// FlagExtMode2 and the client's transport (FlagAbridged or
// FlagIntermediate, the latter for padded clients too) with every packet,
// plus FlagNotEncrypted and FlagQuickAck per packet.
const (
	FlagNotEncrypted  = 0x00000002 // auth_key_id is 0: an auth key exchange packet
	FlagHTTPQueryInfo = 0x00000004 // extra block has HTTP headers (HTTP transport)
	FlagHasAdTag      = 0x00000008 // extra block has the proxy tag
	FlagMagic         = 0x00001000 // TCP client
	FlagExtMode2      = 0x00020000 // obfuscated2 client
	FlagPad           = 0x08000000 // padded client; never sent by the official
	FlagDropped       = 0x10000000 // an earlier packet of the client was dropped
	FlagIntermediate  = 0x20000000 // intermediate or padded intermediate client
	FlagAbridged      = 0x40000000 // abridged client
	FlagQuickAck      = 0x80000000 // the client asked for a quick ack of this packet
)

// tlProxyTag (TL_PROXY_TAG) starts the proxy tag in the extra block of
// RPC_PROXY_REQ; HTTP headers would follow it after TL_HTTP_QUERY_INFO.
const tlProxyTag = 0xdb1e26ae

// proxyReqLen is the length of an RPC_PROXY_REQ without extra block and
// payload.
const proxyReqLen = 56

// ProxyReq is the header of an RPC_PROXY_REQ message, which carries one
// client packet to the middle proxy; the packet follows the header.
type ProxyReq struct {
	Flags  uint32
	ConnID int64 // out_conn_id: names the client on this connection

	// Client is the client's address, Proxy the proxy's address and
	// listening port as the client sees them (behind NAT, the public
	// address).
	Client, Proxy netip.AddrPort

	// AdTag is the proxy tag from @MTProxybot (16 bytes), or nil.
	AdTag []byte
}

// AppendProxyReq appends the header of the RPC_PROXY_REQ r to dst; the
// client's packet must follow it. FlagHasAdTag is set if and only if
// r.AdTag is not empty, and FlagHTTPQueryInfo is cleared: the HTTP
// transport, the only user of that block, is disabled in the official.
// IPv4 addresses are written as IPv4-mapped IPv6.
func AppendProxyReq(dst []byte, r *ProxyReq) []byte {
	flags := r.Flags &^ (FlagHasAdTag | FlagHTTPQueryInfo)
	if len(r.AdTag) > 0 {
		flags |= FlagHasAdTag
	}
	dst = le.AppendUint32(dst, uint32(TypeProxyReq))
	dst = le.AppendUint32(dst, flags)
	dst = le.AppendUint64(dst, uint64(r.ConnID))
	dst = appendAddr(dst, r.Client)
	dst = appendAddr(dst, r.Proxy)
	if flags&FlagHasAdTag != 0 {
		dst = le.AppendUint32(dst, uint32(4+tlStringLen(len(r.AdTag))))
		dst = le.AppendUint32(dst, tlProxyTag)
		dst = appendTLString(dst, r.AdTag)
	}
	return dst
}

// ParseProxyReq parses an RPC_PROXY_REQ message into its header and the
// client's packet, both pointing into body. It is for tests that play the
// middle proxy.
func ParseProxyReq(body []byte) (r ProxyReq, payload []byte, err error) {
	if err := checkBody(body, TypeProxyReq, proxyReqLen, true); err != nil {
		return r, nil, err
	}
	r.Flags = le.Uint32(body[4:])
	r.ConnID = int64(le.Uint64(body[8:]))
	var ok1, ok2 bool
	r.Client, ok1 = parseAddr(body[16:])
	r.Proxy, ok2 = parseAddr(body[36:])
	payload = body[proxyReqLen:]
	if !ok1 || !ok2 {
		return r, nil, fmt.Errorf("%w: RPC_PROXY_REQ port out of range", ErrMalformed)
	}
	if r.Flags&(FlagHasAdTag|FlagHTTPQueryInfo) == 0 {
		return r, payload, nil
	}
	if len(payload) < 4 || int(le.Uint32(payload)) > len(payload)-4 {
		return r, nil, fmt.Errorf("%w: RPC_PROXY_REQ extra block overruns", ErrMalformed)
	}
	extra := payload[4 : 4+le.Uint32(payload)]
	payload = payload[4+len(extra):]
	if r.Flags&FlagHasAdTag != 0 {
		if len(extra) < 4 || le.Uint32(extra) != tlProxyTag {
			return r, nil, fmt.Errorf("%w: RPC_PROXY_REQ extra block lacks the tag", ErrMalformed)
		}
		if r.AdTag, ok1 = parseTLString(extra[4:]); !ok1 {
			return r, nil, fmt.Errorf("%w: RPC_PROXY_REQ tag overruns", ErrMalformed)
		}
	}
	return r, payload, nil
}

// appendAddr appends a 16-byte IPv6 address, IPv4 ones mapped, and a
// 4-byte port.
func appendAddr(dst []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16()
	dst = append(dst, ip[:]...)
	return le.AppendUint32(dst, uint32(a.Port()))
}

func parseAddr(b []byte) (netip.AddrPort, bool) {
	ip := netip.AddrFrom16([16]byte(b)).Unmap()
	port := le.Uint32(b[16:])
	return netip.AddrPortFrom(ip, uint16(port)), port <= 0xffff
}

// tlStringLen returns the bytes a TL string of n bytes takes: a length
// prefix of 1 byte (n < 254) or 4 (0xfe and 3 bytes), the bytes, and
// zeros up to a multiple of 4.
func tlStringLen(n int) int {
	if n < 254 {
		return (1 + n + 3) &^ 3
	}
	return (4 + n + 3) &^ 3
}

func appendTLString(dst, s []byte) []byte {
	end := len(dst) + tlStringLen(len(s))
	if len(s) < 254 {
		dst = append(dst, byte(len(s)))
	} else {
		dst = append(dst, 0xfe, byte(len(s)), byte(len(s)>>8), byte(len(s)>>16))
	}
	dst = append(dst, s...)
	for len(dst) < end {
		dst = append(dst, 0)
	}
	return dst
}

// parseTLString returns the string at the front of b.
func parseTLString(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] == 0xff {
		return nil, false
	}
	n, at := int(b[0]), 1
	if n == 0xfe {
		if len(b) < 4 {
			return nil, false
		}
		n, at = int(b[1])|int(b[2])<<8|int(b[3])<<16, 4
	}
	if n > len(b)-at {
		return nil, false
	}
	return b[at : at+n], true
}

// ProxyAnsHeaderLen is the length of an RPC_PROXY_ANS without payload.
const ProxyAnsHeaderLen = 16

// AppendProxyAns appends the header of an RPC_PROXY_ANS to dst; the data
// for the client must follow it. It is for tests that play the middle
// proxy.
func AppendProxyAns(dst []byte, flags uint32, connID int64) []byte {
	dst = le.AppendUint32(dst, uint32(TypeProxyAns))
	dst = le.AppendUint32(dst, flags)
	return le.AppendUint64(dst, uint64(connID))
}

// ParseProxyAns parses an RPC_PROXY_ANS message, data from the middle
// proxy for the client connID. payload points into body. The flags only
// matter to HTTP clients.
func ParseProxyAns(body []byte) (flags uint32, connID int64, payload []byte, err error) {
	if err := checkBody(body, TypeProxyAns, ProxyAnsHeaderLen, true); err != nil {
		return 0, 0, nil, err
	}
	return le.Uint32(body[4:]), int64(le.Uint64(body[8:])), body[ProxyAnsHeaderLen:], nil
}

// The MTProto constructors of the unencrypted auth key exchange messages
// that the official proxy forwards.
const (
	reqPQ             = 0x60469778
	reqPQMulti        = 0xbe7e8ef1
	reqDHParams       = 0xd712e4be
	setClientDHParams = 0xf5045f1f
)

// PacketFlags applies the official proxy's rules (§6.7) to a client packet,
// the MTProto message a transport frame carries: ok reports whether to
// forward it at all (others are dropped, the client staying connected),
// and flags is FlagNotEncrypted for the auth key exchange messages, which
// have a zero auth_key_id, and 0 for encrypted messages.
func PacketFlags(packet []byte) (flags uint32, ok bool) {
	n := len(packet)
	switch {
	case n < 28 || n%4 != 0:
		return 0, false
	case le.Uint64(packet) != 0: // auth_key_id
		// auth_key_id, msg_key, salt, session_id, msg_id, seq_no, length
		return 0, n >= 56
	}
	// auth_key_id, msg_id, length, constructor
	if length := int64(int32(le.Uint32(packet[16:]))); length < 20 || length > int64(n-20) {
		return 0, false
	}
	switch le.Uint32(packet[20:]) {
	case reqPQ, reqPQMulti, reqDHParams, setClientDHParams:
		return FlagNotEncrypted, true
	}
	return 0, false
}
