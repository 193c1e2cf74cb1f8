package rpc

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/cbc"
)

// unhex decodes hex written with spaces and line breaks, as protocol.md
// prints it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

// vectorSecret is the proxy secret of protocol.md §11.3.
func vectorSecret() []byte {
	s := make([]byte, 128)
	for i := range s {
		s[i] = byte(7*i + 1)
	}
	return s
}

// TestVectorNonceFrame checks the RPC_NONCE frame of §11.3.
func TestVectorNonceFrame(t *testing.T) {
	n := Nonce{
		KeySelector: KeySelector(vectorSecret()),
		Schema:      SchemaAES,
		Time:        0x65000000,
		Nonce:       [16]byte(bytes.Repeat([]byte{0xbb}, 16)),
	}
	frame := AppendFrame(nil, SeqNonce, AppendNonce(nil, &n), false)
	checkBytes(t, "RPC_NONCE frame", frame, unhex(t, `2c000000 feffffff aa87cb7a 01080f16 01000000 00000065
		bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 92794583`))
	if len(frame) != 44 {
		t.Errorf("frame is %d bytes, want 44", len(frame))
	}

	var r FrameReader
	body, rest, err := r.Next(frame)
	if err != nil || len(rest) != 0 {
		t.Fatalf("Next = %x, %x, %v", body, rest, err)
	}
	got, err := ParseNonce(body)
	if err != nil || got != n {
		t.Errorf("ParseNonce = %+v, %v, want %+v", got, err, n)
	}
}

// TestVectorHandshakeFrame checks the RPC_HANDSHAKE frame of §11.3, plain
// and encrypted with the §11.3 CLIENT key after padding.
func TestVectorHandshakeFrame(t *testing.T) {
	pid := parsePID(unhex(t, "0500710b c8000000 00006500"))
	h := Handshake{Sender: pid, Peer: pid}
	plain := AppendFrame(nil, SeqHandshake, AppendHandshake(nil, &h), false)
	checkBytes(t, "plain RPC_HANDSHAKE frame", plain, unhex(t, `2c000000ffffffff f5ee8276 00000000
		0500710bc800000000006500 0500710bc800000000006500 351b5556`))

	padded := Pad(plain)
	checkBytes(t, "padding", padded[len(padded)-4:], []byte{4, 0, 0, 0})
	key := [32]byte(unhex(t, "58be48e7cb972542ae1d8b6b27bc45e89dcbe0d97a90b115b0ca7ee82510a1f1"))
	iv := [16]byte(unhex(t, "1cda4ede2a84fea7b1c2b22841084adf"))
	cipher := make([]byte, len(padded))
	cbc.NewEncrypter(&key, &iv).CryptBlocks(cipher, padded)
	checkBytes(t, "encrypted RPC_HANDSHAKE", cipher, unhex(t, `0a07c50dedc0aff66ea8fa731ec7cdf7d79dc6cebf79520f6e97534c42cc3cb3
		4ff34e4fb08fe18373b90936a76e71b7`))

	// The reader, fed the decrypted stream after the nonce frame, yields
	// the handshake and skips the filler.
	var r FrameReader
	r.frames = 1 // the nonce frame is in
	decrypted := make([]byte, len(cipher))
	cbc.NewDecrypter(&key, &iv).CryptBlocks(decrypted, cipher)
	body, rest, err := r.Next(decrypted)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseHandshake(body); err != nil || got != h {
		t.Errorf("ParseHandshake = %+v, %v, want %+v", got, err, h)
	}
	if body, rest, err = r.Next(rest); body != nil || len(rest) != 0 || err != nil {
		t.Errorf("after the handshake: %x, %x, %v", body, rest, err)
	}
}

const vectorConnID = 0x400007

// TestVectorProxyReq checks the RPC_PROXY_REQ header of §11.4.
func TestVectorProxyReq(t *testing.T) {
	req := ProxyReq{
		Flags:  FlagAbridged | FlagExtMode2 | FlagMagic | FlagNotEncrypted,
		ConnID: vectorConnID,
		Client: netip.MustParseAddrPort("198.51.100.7:51000"),
		Proxy:  netip.MustParseAddrPort("203.0.113.5:443"),
		AdTag:  unhex(t, "0123456789abcdeffedcba9876543210"),
	}
	want := unhex(t, `eef1ce36 0a100240 0700400000000000
		00000000000000000000ffffc6336407 38c70000
		00000000000000000000ffffcb007105 bb010000
		18000000 ae261edb 10 0123456789abcdeffedcba9876543210 000000`)
	got := AppendProxyReq(nil, &req)
	checkBytes(t, "RPC_PROXY_REQ header", got, want)
	if len(got) != 84 {
		t.Errorf("header is %d bytes, want 84", len(got))
	}

	payload := []byte("0123456789abcdef0123456789ab") // 28 bytes
	parsed, p, err := ParseProxyReq(append(got, payload...))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Flags != 0x4002100a || parsed.ConnID != req.ConnID || parsed.Client != req.Client ||
		parsed.Proxy != req.Proxy || !bytes.Equal(parsed.AdTag, req.AdTag) || !bytes.Equal(p, payload) {
		t.Errorf("ParseProxyReq = %+v, %q", parsed, p)
	}
}

// TestVectorBodies checks the other messages of §11.4.
func TestVectorBodies(t *testing.T) {
	const pingID = 0x1122334455667788
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"RPC_PROXY_ANS", AppendProxyAns(nil, 0, vectorConnID), unhex(t, "0dda0344 00000000 0700400000000000")},
		{"RPC_SIMPLE_ACK", AppendSimpleAck(nil, vectorConnID, 0x8abcdef0), unhex(t, "9b40ac3b 0700400000000000 f0debc8a")},
		{"RPC_CLOSE_EXT", AppendCloseExt(nil, vectorConnID), unhex(t, "a234b65e 0700400000000000")},
		{"RPC_CLOSE_CONN", AppendCloseConn(nil, vectorConnID), unhex(t, "5d42cf1f 0700400000000000")},
		{"RPC_PING", AppendPing(nil, pingID), unhex(t, "dfa23057 8877665544332211")},
		{"RPC_PONG", AppendPong(nil, pingID), unhex(t, "a7ea3084 8877665544332211")},
	} {
		checkBytes(t, tc.name, tc.got, tc.want)
		if s := TypeOf(tc.want).String(); s != tc.name {
			t.Errorf("TypeOf(%s) = %s", tc.name, s)
		}
	}

	body := unhex(t, "0dda0344 10000000 0700400000000000 deadbeef")
	if flags, id, payload, err := ParseProxyAns(body); err != nil || flags != 0x10 || id != vectorConnID || !bytes.Equal(payload, body[16:]) {
		t.Errorf("ParseProxyAns = %#x, %#x, %x, %v", flags, id, payload, err)
	}
	if id, token, err := ParseSimpleAck(unhex(t, "9b40ac3b 0700400000000000 f0debc8a")); err != nil || id != vectorConnID || token != 0x8abcdef0 {
		t.Errorf("ParseSimpleAck = %#x, %#x, %v", id, token, err)
	}
	for _, tc := range []struct {
		parse func([]byte) (int64, error)
		body  string
		want  int64
	}{
		{ParseCloseExt, "a234b65e 0700400000000000", vectorConnID},
		{ParseCloseConn, "5d42cf1f 0700400000000000", vectorConnID},
		{ParsePing, "dfa23057 8877665544332211", pingID},
		{ParsePong, "a7ea3084 8877665544332211", pingID},
	} {
		if id, err := tc.parse(unhex(t, tc.body)); err != nil || id != tc.want {
			t.Errorf("parse %s = %#x, %v", tc.body, id, err)
		}
	}
}
