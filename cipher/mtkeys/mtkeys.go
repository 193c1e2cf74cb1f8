// Package mtkeys derives the AES-256-CBC keys of a middle-proxy RPC
// connection from the RPC_NONCE exchange (protocol.md §6.5, §14).
//
// Both ends compute the same two keys from public values and the shared
// proxy secret: "CLIENT" for the stream from the proxy (the RPC client) to
// the middle proxy and "SERVER" for the other direction. The proxy
// encrypts with Client and decrypts with Server; a middle proxy does the
// opposite.
package mtkeys

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Key is the key and initial chaining value of one direction's CBC stream.
type Key struct {
	Key [32]byte
	IV  [16]byte
}

// Keys holds the keys of both directions of a connection.
type Keys struct {
	Client Key // proxy → middle proxy
	Server Key // middle proxy → proxy
}

// Params are the inputs of the derivation. Client is the proxy, Server the
// middle proxy.
type Params struct {
	ClientNonce [16]byte // from the proxy's RPC_NONCE
	ServerNonce [16]byte // from the middle proxy's RPC_NONCE
	ClientTime  uint32   // crypto_ts of the proxy's RPC_NONCE

	// Client and Server are the two ends of the TCP connection as the
	// middle proxy sees them: behind NAT, Client must be the proxy's public
	// address, or the middle proxy derives other keys. Both must be IPv4 or
	// both IPv6; IPv4-mapped IPv6 addresses count as IPv4, since that is
	// how a dual-stack socket reports an IPv4 connection.
	Client, Server netip.AddrPort

	Secret []byte // the whole proxy-secret file
}

// ErrAddress reports end points the derivation cannot use.
var ErrAddress = errors.New("mtkeys: unusable address")

// Derive computes the keys of both directions.
func Derive(p *Params) (Keys, error) {
	clt, srv := p.Client.Addr().Unmap(), p.Server.Addr().Unmap()
	if !clt.IsValid() || !srv.IsValid() || clt.Is4() != srv.Is4() {
		return Keys{}, fmt.Errorf("%w: %v and %v are not one family", ErrAddress, p.Client, p.Server)
	}
	// The official tells the layouts apart by a zero IPv4 field, so
	// 0.0.0.0 would select the IPv6 one.
	if clt.Is4() && (clt.IsUnspecified() || srv.IsUnspecified()) {
		return Keys{}, fmt.Errorf("%w: %v to %v", ErrAddress, p.Client, p.Server)
	}

	// s = nonce_srv ‖ nonce_clt ‖ clt_ts ‖ srv_ip4 ‖ clt_port ‖ role ‖
	//     clt_ip4 ‖ srv_port ‖ secret ‖ nonce_srv ‖ [clt_ip6 ‖ srv_ip6] ‖ nonce_clt
	s := make([]byte, 0, 86+len(p.Secret)+32)
	s = append(s, p.ServerNonce[:]...)
	s = append(s, p.ClientNonce[:]...)
	s = binary.LittleEndian.AppendUint32(s, p.ClientTime)
	s = appendIPv4(s, srv)
	s = binary.LittleEndian.AppendUint16(s, p.Client.Port())
	role := len(s)
	s = append(s, "CLIENT"...)
	s = appendIPv4(s, clt)
	s = binary.LittleEndian.AppendUint16(s, p.Server.Port())
	s = append(s, p.Secret...)
	s = append(s, p.ServerNonce[:]...)
	if clt.Is6() {
		c6, s6 := clt.As16(), srv.As16()
		s = append(s, c6[:]...)
		s = append(s, s6[:]...)
	}
	s = append(s, p.ClientNonce[:]...)

	var k Keys
	k.Client = derive(s)
	copy(s[role:], "SERVER")
	k.Server = derive(s)
	clear(s) // it holds the secret
	return k, nil
}

// appendIPv4 appends a as the official stores it: a host-order uint32
// written little-endian, i.e. the address bytes reversed. IPv6
// connections have zero there.
func appendIPv4(s []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return append(s, 0, 0, 0, 0)
	}
	b := a.As4()
	return append(s, b[3], b[2], b[1], b[0])
}

// derive computes key = MD5(s[1:])[:12] ‖ SHA1(s), iv = MD5(s[2:]).
func derive(s []byte) Key {
	var k Key
	m := md5.Sum(s[1:])
	copy(k.Key[:12], m[:12])
	h := sha1.Sum(s)
	copy(k.Key[12:], h[:])
	k.IV = md5.Sum(s[2:])
	return k
}
