package rpc

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestParseRejects(t *testing.T) {
	nonce := AppendNonce(nil, &Nonce{Schema: SchemaAES})
	hs := AppendHandshake(nil, &Handshake{})
	ack := AppendSimpleAck(nil, 1, 2)
	ping := AppendPing(nil, 1)
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		body  []byte
	}{
		{"empty nonce", func(b []byte) error { _, err := ParseNonce(b); return err }, nil},
		{"long nonce", func(b []byte) error { _, err := ParseNonce(b); return err }, append(nonce, 0, 0, 0, 0)},
		{"short handshake", func(b []byte) error { _, err := ParseHandshake(b); return err }, hs[:28]},
		{"nonce as handshake", func(b []byte) error { _, err := ParseHandshake(b); return err }, nonce},
		{"short handshake error", func(b []byte) error { _, err := ParseHandshake(b); return err }, le.AppendUint32(nil, uint32(TypeHandshakeError))},
		{"short proxy req", func(b []byte) error { _, _, err := ParseProxyReq(b); return err }, AppendProxyReq(nil, &ProxyReq{})[:52]},
		{"short proxy ans", func(b []byte) error { _, _, _, err := ParseProxyAns(b); return err }, AppendProxyAns(nil, 0, 1)[:12]},
		{"long simple ack", func(b []byte) error { _, _, err := ParseSimpleAck(b); return err }, append(ack, 0, 0, 0, 0)},
		{"ping as pong", func(b []byte) error { _, err := ParsePong(b); return err }, ping},
		{"long ping", func(b []byte) error { _, err := ParsePing(b); return err }, append(ping, 0, 0, 0, 0)},
		{"short close ext", func(b []byte) error { _, err := ParseCloseExt(b); return err }, AppendCloseExt(nil, 1)[:8]},
		{"close ext as close conn", func(b []byte) error { _, err := ParseCloseConn(b); return err }, AppendCloseExt(nil, 1)},
	} {
		if err := tc.parse(tc.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestCheckNonceAnswer(t *testing.T) {
	req := Nonce{KeySelector: [4]byte{1, 2, 3, 4}, Schema: SchemaAES, Time: 1000}
	for _, tc := range []struct {
		name string
		edit func(*Nonce)
		ok   bool
	}{
		{"same", func(*Nonce) {}, true},
		{"30 s ahead", func(n *Nonce) { n.Time += 30 }, true},
		{"30 s behind", func(n *Nonce) { n.Time -= 30 }, true},
		{"31 s ahead", func(n *Nonce) { n.Time += 31 }, false},
		{"31 s behind", func(n *Nonce) { n.Time -= 31 }, false},
		{"other key", func(n *Nonce) { n.KeySelector[0]++ }, false},
		{"no encryption", func(n *Nonce) { n.Schema = 0 }, false},
		{"DH", func(n *Nonce) { n.Schema = 3 }, false},
	} {
		ans := req
		tc.edit(&ans)
		if err := CheckNonceAnswer(&req, &ans); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	zero := Nonce{Schema: SchemaAES}
	if err := CheckNonceAnswer(&zero, &zero); err == nil {
		t.Error("zero key selector accepted")
	}
	wrap := Nonce{KeySelector: req.KeySelector, Schema: SchemaAES, Time: 0xfffffff0}
	late := wrap
	late.Time += 24 // across the 32-bit wrap
	if err := CheckNonceAnswer(&wrap, &late); err != nil {
		t.Errorf("across the wrap: %v", err)
	}
}

func TestCheckHandshakeAnswer(t *testing.T) {
	us := PID{IP: 0x7f000002, Port: 8888, PID: 77, Time: 1700000000}
	for _, tc := range []struct {
		name    string
		offer   uint32
		ans     Handshake
		ok, crc bool
	}{
		{"echo", 0, Handshake{Peer: us}, true, false},
		{"wildcards", 0, Handshake{Peer: PID{Port: us.Port}}, true, false},
		{"all zero", 0, Handshake{}, true, false},
		{"other pid", 0, Handshake{Peer: PID{PID: 78}}, false, false},
		{"other ip", 0, Handshake{Peer: PID{IP: 1}}, false, false},
		{"low flag bits", 0, Handshake{Flags: 1, Peer: us}, false, false},
		{"CRC-32C agreed", HandshakeCRC32C, Handshake{Flags: HandshakeCRC32C, Peer: us}, true, true},
		{"CRC-32C declined", HandshakeCRC32C, Handshake{Peer: us}, true, false},
		{"CRC-32C not offered", 0, Handshake{Flags: HandshakeCRC32C, Peer: us}, false, false},
	} {
		req := Handshake{Flags: tc.offer, Sender: us}
		crc, err := CheckHandshakeAnswer(&req, &tc.ans)
		if (err == nil) != tc.ok || crc != tc.crc || err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, %v", tc.name, crc, err)
		}
	}
}

func TestHandshakeError(t *testing.T) {
	sent := HandshakeError{Code: -4, Sender: PID{IP: 1, Port: 2, PID: 3, Time: 4}}
	_, err := ParseHandshake(AppendHandshakeError(nil, &sent))
	var got *HandshakeError
	if !errors.As(err, &got) || *got != sent || !errors.Is(err, ErrRefused) {
		t.Errorf("ParseHandshake = %v, want %+v", err, sent)
	}
}

func TestProxyReqRoundTrip(t *testing.T) {
	for _, req := range []ProxyReq{
		{Flags: FlagIntermediate | FlagQuickAck, ConnID: -1,
			Client: netip.MustParseAddrPort("[2001:db8::1]:65535"),
			Proxy:  netip.MustParseAddrPort("[2001:db8::2]:443")},
		{Flags: FlagHasAdTag | FlagHTTPQueryInfo, // both cleared without a tag
			Client: netip.MustParseAddrPort("1.2.3.4:5"),
			Proxy:  netip.MustParseAddrPort("5.6.7.8:9")},
		{AdTag: bytes.Repeat([]byte{7}, 253),
			Client: netip.MustParseAddrPort("1.2.3.4:5"), Proxy: netip.MustParseAddrPort("5.6.7.8:9")},
		{AdTag: bytes.Repeat([]byte{7}, 300),
			Client: netip.MustParseAddrPort("1.2.3.4:5"), Proxy: netip.MustParseAddrPort("5.6.7.8:9")},
	} {
		hdr := AppendProxyReq(nil, &req)
		if len(hdr)%4 != 0 {
			t.Errorf("header of %d bytes", len(hdr))
		}
		payload := []byte("payload.")
		got, p, err := ParseProxyReq(append(hdr, payload...))
		want := req
		want.Flags &^= FlagHasAdTag | FlagHTTPQueryInfo
		if len(req.AdTag) > 0 {
			want.Flags |= FlagHasAdTag
		}
		if err != nil || got.Flags != want.Flags || got.ConnID != want.ConnID || got.Client != want.Client ||
			got.Proxy != want.Proxy || !bytes.Equal(got.AdTag, want.AdTag) || !bytes.Equal(p, payload) {
			t.Errorf("round trip of %+v: %+v, %q, %v", req, got, p, err)
		}
	}
}

func TestParseProxyReqBadExtra(t *testing.T) {
	base := AppendProxyReq(nil, &ProxyReq{AdTag: make([]byte, 16)})
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"extra overruns", func(b []byte) []byte { le.PutUint32(b[56:], 28); return b }},
		{"no extra size", func(b []byte) []byte { return b[:56] }},
		{"no tag constructor", func(b []byte) []byte { le.PutUint32(b[60:], 0); return b }},
		{"tag overruns", func(b []byte) []byte { b[64] = 30; return b }},
		{"bad port", func(b []byte) []byte { le.PutUint32(b[32:], 65536); return b }},
	} {
		if _, _, err := ParseProxyReq(tc.edit(bytes.Clone(base))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestTypeString(t *testing.T) {
	if s := Type(0x12345678).String(); s != "0x12345678" {
		t.Errorf("unknown type = %s", s)
	}
	if s := TypeOf([]byte{1, 2}).String(); s != "0x00000000" {
		t.Errorf("short body = %s", s)
	}
}

func TestPacketFlags(t *testing.T) {
	plain := func(n int, length int32, constructor uint32) []byte {
		p := make([]byte, n)
		le.PutUint32(p[16:], uint32(length))
		le.PutUint32(p[20:], constructor)
		return p
	}
	encrypted := func(n int) []byte {
		p := make([]byte, n)
		p[7] = 1
		return p
	}
	for _, tc := range []struct {
		name  string
		p     []byte
		flags uint32
		ok    bool
	}{
		{"req_pq_multi", plain(40, 20, reqPQMulti), FlagNotEncrypted, true},
		{"req_pq", plain(40, 20, reqPQ), FlagNotEncrypted, true},
		{"req_DH_params", plain(340, 320, reqDHParams), FlagNotEncrypted, true},
		{"set_client_DH_params", plain(396, 376, setClientDHParams), FlagNotEncrypted, true},
		{"other constructor", plain(40, 20, 0x12345678), 0, false},
		{"length too short", plain(40, 19, reqPQMulti), 0, false},
		{"length too long", plain(40, 21, reqPQMulti), 0, false},
		{"negative length", plain(40, -1, reqPQMulti), 0, false},
		{"too short", plain(24, 4, reqPQMulti)[:24], 0, false},
		{"not in words", plain(42, 20, reqPQMulti), 0, false},
		{"encrypted", encrypted(56), 0, true},
		{"encrypted too short", encrypted(52), 0, false},
	} {
		if flags, ok := PacketFlags(tc.p); flags != tc.flags || ok != tc.ok {
			t.Errorf("%s: %#x, %v; want %#x, %v", tc.name, flags, ok, tc.flags, tc.ok)
		}
	}
}
