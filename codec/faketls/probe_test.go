package faketls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/internal/testnet"
)

// selfSigned returns a certificate for example.com.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{"example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// recordingListener keeps what the server writes on each connection.
type recordingListener struct {
	net.Listener
	mu      sync.Mutex
	written []*bytes.Buffer
}

type recordingConn struct {
	net.Conn
	l   *recordingListener
	buf *bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := new(bytes.Buffer)
	l.written = append(l.written, buf)
	return &recordingConn{c, l, buf}, nil
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.buf.Write(p)
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// serveTLS runs a crypto/tls server for the test's duration.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, l *recordingListener) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = &recordingListener{Listener: ln}
	t.Cleanup(func() { ln.Close() })
	tl := tls.NewListener(l, cfg)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake() // fails once the probe hangs up
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), l
}

func TestProbeGoServer(t *testing.T) {
	addr, l := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS13})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shape, err := Probe(ctx, addr, "example.com", 5)
	if err != nil {
		t.Fatal(err)
	}
	// Go writes supported_versions before key_share, and its flight as one
	// record per message: the first is EncryptedExtensions.
	l.mu.Lock()
	out := l.written[0].Bytes()
	l.mu.Unlock()
	first := 0
	for i, off := 0, 0; i < 3 && off+5 <= len(out); i++ {
		n := int(binary.BigEndian.Uint16(out[off+3:]))
		if i == 2 && out[off] == 0x17 {
			first = n
		}
		off += 5 + n
	}
	t.Logf("shape %+v; the server's first writes: %d bytes", shape, len(out))
	if want := (Shape{SupportedVersionsFirst: true, AppDataLen: first}); shape != want || first == 0 {
		t.Fatalf("shape %+v, want %+v", shape, want)
	}
}

func TestProbeFailures(t *testing.T) {
	tls12, _ := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MaxVersion: tls.VersionTLS12})

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // holds every connection open without a word
		}
	}()

	http, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer http.Close()
	go func() {
		for {
			c, err := http.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()

	for _, tc := range []struct{ name, addr string }{
		{"TLS 1.2 only", tls12},
		{"silent", silent.Addr().String()},
		{"HTTP", http.Addr().String()},
		{"refused", testnet.RefusedAddr(t)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		shape, err := Probe(ctx, tc.addr, "example.com", 4)
		cancel()
		if err == nil {
			t.Errorf("%s: shape %+v, want an error", tc.name, shape)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tc.name, d)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

func TestShapeOf(t *testing.T) {
	samples := func(svFirst bool, lens ...int) []sample {
		var s []sample
		for _, n := range lens {
			s = append(s, sample{svFirst, n})
		}
		return s
	}
	for _, tc := range []struct {
		in   []sample
		want Shape
	}{
		{samples(false, 2000, 2000, 2000), Shape{AppDataLen: 2000}},
		{samples(true, 4000), Shape{SupportedVersionsFirst: true, AppDataLen: 4000}},
		{samples(false, 2000, 2003, 2001), Shape{AppDataLen: 2002, Jitter: 1}},
		{samples(false, 2000, 2004), Shape{AppDataLen: 2002, Jitter: 1}},
		{samples(false, 2000, 2001, 2010), Shape{AppDataLen: 2004, Jitter: 1}},
		{samples(false, 1, 2), Shape{AppDataLen: 1, Jitter: 1}},
	} {
		if got, err := shapeOf(tc.in); err != nil || got != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := shapeOf(append(samples(true, 10), samples(false, 10)...)); err == nil {
		t.Error("mixed extension orders accepted")
	}
}
