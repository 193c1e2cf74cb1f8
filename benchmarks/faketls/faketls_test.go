package faketls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscator"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testKey = [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// TestClientDigestVector checks protocol.md §11.2.
func TestClientDigestVector(t *testing.T) {
	hello := unhex(t, `
		160301006e0100006a0303000000000000000000000000000000000000000000
		000000000000000000000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
		b4b5b6b7b8b9babbbcbdbebf00060a0a130113020100001b00000010000e0000
		0b6578616d706c652e636f6d002b0003020304`)
	sign(hello, testKey, 1700000000)
	want := unhex(t, "8def4abec0726088114fea7bd879913f61eae414209d13ddef00f9fff8216b82")
	if got := hello[randomOffset : randomOffset+32]; !bytes.Equal(got, want) {
		t.Fatalf("client random %x, want %x", got, want)
	}
}

// vectorReply is the server reply of protocol.md §11.2 with its random.
func vectorReply(t *testing.T) (reply, clientRandom []byte) {
	reply = unhex(t, `
		160303007a020000760303f027fafb05efcaeeb9376478d0900f583dfbd6ece0
		81eb4ee39ed651f7c5e1d720a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
		b4b5b6b7b8b9babbbcbdbebf130100002e00330024001d002009000000000000
		00000000000000000000000000000000000000000000000000002b0002030414
		0303000101170303001042424242424242424242424242424242`)
	clientRandom = unhex(t, "8def4abec0726088114fea7bd879913f61eae414209d13ddef00f9fff8216b82")
	return reply, clientRandom
}

// TestServerHelloVector checks the reply of protocol.md §11.2 and that a
// change anywhere in it is caught.
func TestServerHelloVector(t *testing.T) {
	reply, clientRandom := vectorReply(t)
	if len(reply) != 154 {
		t.Fatalf("vector reply of %d bytes, want 154", len(reply))
	}
	if err := readServerHello(bytes.NewReader(reply), testKey, clientRandom); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{20, 100, len(reply) - 1} {
		bad := bytes.Clone(reply)
		bad[i] ^= 1
		if err := readServerHello(bytes.NewReader(bad), testKey, clientRandom); err == nil {
			t.Errorf("byte %d changed: accepted", i)
		}
	}
	if err := readServerHello(bytes.NewReader(reply[:100]), testKey, clientRandom); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut reply: %v, want unexpected EOF", err)
	}

	sessionID := reply[44:76]
	pub := append([]byte{9}, make([]byte, 31)...)
	if got := serverHello(testKey, clientRandom, sessionID, pub, bytes.Repeat([]byte{0x42}, 16)); !bytes.Equal(got, reply) {
		t.Errorf("serverHello\n%x, want\n%x", got, reply)
	}
}

// TestClientHelloIsTLS hands our ClientHello to Go's TLS server, which
// must parse it, see the SNI and TLS 1.3, and answer with a ServerHello.
func TestClientHelloIsTLS(t *testing.T) {
	cert := selfSigned(t)
	for _, domain := range []string{"example.com", strings.Repeat("a", maxDomain)} {
		hello, err := clientHello(rand.Reader, domain)
		if err != nil {
			t.Fatal(err)
		}
		if len(hello) != helloBody+5 {
			t.Errorf("%d-byte domain: hello of %d bytes, want %d", len(domain), len(hello), helloBody+5)
		}
		sign(hello, testKey, uint32(time.Now().Unix()))

		client, server := net.Pipe()
		seen := make(chan *tls.ClientHelloInfo, 1)
		go func() {
			defer server.Close()
			tls.Server(server, &tls.Config{
				Certificates: []tls.Certificate{cert},
				GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					seen <- h
					return nil, nil
				},
			}).Handshake()
		}()
		go client.Write(hello)
		var h [5]byte
		client.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, h[:]); err != nil {
			t.Fatal(err)
		}
		client.Close()
		if h[0] != typeHandshake {
			t.Fatalf("Go's TLS server answered record type %#x, want a handshake", h[0])
		}
		info := <-seen
		if info.ServerName != domain {
			t.Errorf("SNI %q, want %q", info.ServerName, domain)
		}
		if !slices.Contains(info.SupportedVersions, tls.VersionTLS13) {
			t.Errorf("supported versions %x lack TLS 1.3", info.SupportedVersions)
		}
	}
	if _, err := clientHello(rand.Reader, strings.Repeat("a", maxDomain+1)); err == nil {
		t.Error("domain over the limit accepted")
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startEcho serves one connection with Server for key and echoes what it
// reads; the handshake's error or nil arrives on the channel.
func startEcho(t *testing.T, key [16]byte) (string, <-chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errc := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer raw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Server(ctx, raw, key)
		errc <- err
		if err == nil {
			raw.SetDeadline(time.Now().Add(5 * time.Second))
			io.Copy(c, c)
		}
	}()
	return ln.Addr().String(), errc
}

func dialClient(t *testing.T, addr string, key [16]byte) (*Conn, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Client(ctx, raw, key, "example.com")
}

// TestClientServer sends data both ways in records of every size.
func TestClientServer(t *testing.T) {
	addr, errc := startEcho(t, testKey)
	c, err := dialClient(t, addr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	want := make([]byte, 3*MaxRecord+100)
	rand.Read(want)
	go func() {
		for _, chunk := range [][]byte{want[:1], want[1:64], want[64:]} {
			if _, err := c.Write(chunk); err != nil {
				t.Error(err)
			}
		}
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes, different from the %d sent", len(got), len(want))
	}
}

func TestWrongSecret(t *testing.T) {
	other := testKey
	other[0] ^= 1
	addr, errc := startEcho(t, other)
	if _, err := dialClient(t, addr, testKey); err == nil {
		t.Error("handshake with the wrong secret succeeded")
	}
	if err := <-errc; err == nil {
		t.Error("the server accepted a hello signed with another secret")
	}
}

func TestStaleTimestamp(t *testing.T) {
	hello, err := clientHello(rand.Reader, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	sign(hello, testKey, uint32(time.Now().Add(-time.Hour).Unix()))
	client, server := net.Pipe()
	defer client.Close()
	go client.Write(hello)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Server(ctx, server, testKey); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Errorf("hour-old hello: %v, want a timestamp error", err)
	}
}

// TestGotdClient checks Server, and with it our digest and reply code,
// against gotd's independent fake-TLS client.
func TestGotdClient(t *testing.T) {
	addr, errc := startEcho(t, testKey)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	secret, err := mtproxy.ParseSecret(append(append([]byte{0xee}, testKey[:]...), "example.com"...))
	if err != nil {
		t.Fatal(err)
	}
	c := obfuscator.FakeTLS(rand.Reader, raw)
	if err := c.Handshake([4]byte{0xdd, 0xdd, 0xdd, 0xdd}, 2, secret); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The echo comes back through gotd's obfuscated2 decryption, so only its
	// length can be checked: the 64-byte header, then the data.
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 64+1000)); err != nil {
		t.Fatal(err)
	}
}

// TestReadRecordLimit: a client reads a record of MaxRecord bytes and
// refuses a longer one, as tdlib does; a server takes any length, as the
// official proxy does.
func TestReadRecordLimit(t *testing.T) {
	for _, n := range []int{MaxRecord, MaxRecord + 1, 1<<16 - 1} {
		for _, server := range []bool{false, true} {
			local, peer := net.Pipe()
			var in []byte
			if server {
				in = bytes.Clone(changeCipherSpec)
			}
			in = append(in, typeApplicationData, versionMajor, versionMinor, byte(n>>8), byte(n))
			in = append(in, make([]byte, n)...)
			go func() {
				peer.Write(in)
				peer.Close()
			}()
			c := &Conn{Conn: local, r: bufio.NewReader(local), server: server}
			got, err := io.ReadAll(c)
			local.Close()
			if server || n <= MaxRecord {
				if err != nil || len(got) != n {
					t.Errorf("server %v, %d-byte record: read %d bytes, %v", server, n, len(got), err)
				}
			} else if err == nil || len(got) != 0 {
				t.Errorf("client, %d-byte record: read %d bytes, %v; want an error and nothing", n, len(got), err)
			}
		}
	}
}

// TestSetWriteRecordSize: records grow to the size asked for.
func TestSetWriteRecordSize(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := &Conn{Conn: client, r: bufio.NewReader(client)}
	if err := c.SetWriteRecordSize(1 << 16); err == nil {
		t.Fatal("record size 65536 accepted")
	}
	if err := c.SetWriteRecordSize(60000); err != nil {
		t.Fatal(err)
	}
	go c.Write(make([]byte, 70000))
	server.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(changeCipherSpec)+5+60000+5+10000)
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(changeCipherSpec)], changeCipherSpec) {
		t.Fatalf("starts with % x", got[:len(changeCipherSpec)])
	}
	recs := got[len(changeCipherSpec):]
	if n := binary.BigEndian.Uint16(recs[3:5]); recs[0] != typeApplicationData || n != 60000 {
		t.Fatalf("first record % x", recs[:5])
	}
	if n := binary.BigEndian.Uint16(recs[60005+3:]); n != 10000 {
		t.Fatalf("second record of %d bytes, want 10000", n)
	}
}

// TestNewHello: hellos of other sizes, without SNI or with another time
// are well-formed TLS, signed for the key, and complete a handshake.
func TestNewHello(t *testing.T) {
	cert := selfSigned(t)
	for _, opts := range []HelloOptions{
		{Domain: "example.com"},
		{Domain: "example.com", Size: 4000},
		{Size: MaxRecord},
		{Domain: strings.Repeat("a", maxDomain), Size: 600},
	} {
		hello, err := NewHello(testKey, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := max(opts.Size, helloBody)
		if len(hello) != want+5 || int(binary.BigEndian.Uint16(hello[3:5])) != want {
			t.Errorf("%+v: hello of %d bytes, want %d", opts, len(hello), want+5)
		}

		// Go's TLS server parses it and sees the SNI, or none.
		client, server := net.Pipe()
		seen := make(chan *tls.ClientHelloInfo, 1)
		go func() {
			defer server.Close()
			tls.Server(server, &tls.Config{
				Certificates: []tls.Certificate{cert},
				GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					seen <- h
					return nil, nil
				},
			}).Handshake()
		}()
		go client.Write(hello)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		var h [5]byte
		if _, err := io.ReadFull(client, h[:]); err != nil || h[0] != typeHandshake {
			t.Fatalf("%+v: Go's TLS server answered % x, %v", opts, h, err)
		}
		client.Close()
		if info := <-seen; info.ServerName != opts.Domain {
			t.Errorf("%+v: SNI %q", opts, info.ServerName)
		}

		// Our server takes it.
		addr, errc := startEcho(t, testKey)
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := ClientWithHello(ctx, raw, testKey, hello)
		cancel()
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("ping"))
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Errorf("%+v: echo %q, %v", opts, got, err)
		}
		raw.Close()
	}

	for _, opts := range []HelloOptions{{Size: helloBody - 1}, {Size: MaxRecord + 1}, {Domain: strings.Repeat("a", maxDomain+1)}} {
		if _, err := NewHello(testKey, opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}

	// The time signed in is the one asked for: an hour-old hello fails.
	hello, err := NewHello(testKey, HelloOptions{Domain: "example.com", Time: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	defer client.Close()
	go client.Write(hello)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Server(ctx, server, testKey); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Errorf("hour-old hello: %v, want a timestamp error", err)
	}
}
