package tgclient_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscated2"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/faketls"
)

// testRelay is a minimal direct-mode MTProxy, for these tests only, standing
// in for the real proxy: gotd's obfuscated2 server side with the secret
// towards clients, gotd's client side without a secret towards the DC
// (protocol.md §5.2), same tag and DC index, and a copy loop each way.
type testRelay struct {
	ln     net.Listener
	dcAddr string
	key    [16]byte
	tls    bool // clients come in fake TLS (benchmarks/faketls's server side)
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func startRelay(t *testing.T, dcAddr string, key [16]byte) *testRelay {
	return startRelayTLS(t, dcAddr, key, false)
}

// startRelayTLS starts a relay whose clients use fake TLS if tls is set.
func startRelayTLS(t *testing.T, dcAddr string, key [16]byte, tls bool) *testRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{ln: ln, dcAddr: dcAddr, key: key, tls: tls, conns: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !r.track(c) {
				return
			}
			r.wg.Add(1)
			go r.serve(c)
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *testRelay) addr() string { return r.ln.Addr().String() }

// track registers c to be closed by close, or closes it if that already ran.
func (r *testRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *testRelay) close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}

func (r *testRelay) serve(client net.Conn) {
	defer r.wg.Done()
	defer client.Close()
	var inner io.ReadWriter = client
	if r.tls {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tc, err := faketls.Server(ctx, client, r.key)
		cancel()
		if err != nil {
			return
		}
		inner = tc
	}
	client.SetDeadline(time.Now().Add(5 * time.Second))
	crw, md, err := obfuscated2.Accept(inner, r.key[:])
	if err != nil {
		return
	}
	switch binary.LittleEndian.Uint32(md.Protocol[:]) {
	case fakedc.TagAbridged, fakedc.TagIntermediate, fakedc.TagPaddedIntermediate:
	default:
		return // wrong secret or tag
	}
	client.SetDeadline(time.Time{})

	dc, err := net.DialTimeout("tcp", r.dcAddr, 5*time.Second)
	if err != nil || !r.track(dc) {
		return
	}
	defer dc.Close()
	drw := obfuscated2.NewObfuscated2(rand.Reader, dc)
	if err := drw.Handshake(md.Protocol, int(int16(md.DC)), mtproxy.Secret{}); err != nil {
		return
	}

	// Forward half-closes so both ends see EOF where they would without us.
	up := make(chan struct{})
	go func() {
		defer close(up)
		io.Copy(drw, crw)
		dc.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(crw, drw)
	client.(*net.TCPConn).CloseWrite()
	<-up
}
