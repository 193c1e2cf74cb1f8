package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	ftls "github.com/mtproxy-go/mtproxy/benchmarks/faketls"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/internal/testnet"
	"github.com/mtproxy-go/mtproxy/server"
	"github.com/mtproxy-go/mtproxy/stats"
)

// tlsDomain is the fake-TLS domain the proxies under test serve.
const tlsDomain = "example.com"

// siteGreeting is what the stand-in for the real site sends first on every
// connection, so that a client can tell it was fronted.
const siteGreeting = "real site here\n"

// site stands in for the real site behind a fake-TLS proxy: it greets each
// connection, echoes what it receives and records it.
type site struct {
	addr string
	mu   sync.Mutex
	recv [][]byte // per connection, in accept order
}

func startSite(t testing.TB) *site {
	t.Helper()
	s := &site{}
	s.addr = listenOnce(t, func(c net.Conn) {
		s.mu.Lock()
		i := len(s.recv)
		s.recv = append(s.recv, []byte{})
		s.mu.Unlock()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		if _, err := c.Write([]byte(siteGreeting)); err != nil {
			return
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.mu.Lock()
				s.recv[i] = append(s.recv[i], buf[:n]...)
				s.mu.Unlock()
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return s
}

// conns returns a copy of what each connection has sent so far.
func (s *site) conns() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.recv))
	for i, b := range s.recv {
		out[i] = bytes.Clone(b)
	}
	return out
}

// startTLSProxy runs a fake-TLS proxy for tlsDomain towards dcAddr, fronting
// for frontAddr. cfg may preset anything startProxy allows, and Domains.
func startTLSProxy(t testing.TB, dcAddr, frontAddr string, cfg server.Config) *proxy {
	t.Helper()
	if cfg.Domains == nil {
		cfg.Domains = []string{tlsDomain}
	}
	cfg.FrontingAddr = frontAddr
	return startProxy(t, dcAddr, cfg)
}

// expectFronted reads from c what the site sends to a fronted client: its
// greeting, then the echo of sent, which proves that the site received
// exactly sent first.
func expectFronted(t testing.TB, c net.Conn, sent []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(siteGreeting)+len(sent))
	n, err := io.ReadFull(c, got)
	if err != nil {
		t.Fatalf("expected the real site's answer, got %d bytes (% x...), %v", n, got[:min(n, 16)], err)
	}
	if string(got[:len(siteGreeting)]) != siteGreeting {
		t.Fatalf("expected the real site's greeting, got % x", got[:min(n, 16)])
	}
	if !bytes.Equal(got[len(siteGreeting):], sent) {
		t.Fatalf("the real site received other bytes than the %d the client sent", len(sent))
	}
	c.SetReadDeadline(time.Time{})
}

// checkCounters compares the named counters with their wanted values.
func checkCounters(t testing.TB, st stats.Counters, want map[string]uint64) {
	t.Helper()
	v := reflect.ValueOf(st)
	for name, w := range want {
		f := v.FieldByName(name)
		if !f.IsValid() {
			t.Fatalf("no counter %s", name)
		}
		if got := f.Uint(); got != w {
			t.Errorf("%s = %d, want %d (counters %+v)", name, got, w, st)
		}
	}
}

// tcpDial connects to addr and closes the connection with the test.
func tcpDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newHello makes a ClientHello signed with testKey.
func newHello(t testing.TB, opts ftls.HelloOptions) []byte {
	t.Helper()
	h, err := ftls.NewHello(testKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tlsClient does the fake-TLS handshake for testKey with hello over c (a
// fresh hello for tlsDomain when nil), then the obfuscated2 header for
// padded intermediate and DC 2 inside the records.
func tlsClient(t testing.TB, c net.Conn, hello []byte) (*tgclient.RawConn, *ftls.Conn) {
	t.Helper()
	if hello == nil {
		hello = newHello(t, ftls.HelloOptions{Domain: tlsDomain})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, err := ftls.ClientWithHello(ctx, c, testKey, hello)
	if err != nil {
		t.Fatalf("fake-TLS handshake: %v", err)
	}
	rc, err := tgclient.NewRawConn(ctx, tc, testKey, fakedc.TagPaddedIntermediate, 2)
	if err != nil {
		t.Fatal(err)
	}
	return rc, tc
}

// echoes sends msg on c and expects it back.
func echoes(t testing.TB, c io.ReadWriter, msg []byte) {
	t.Helper()
	if d, ok := c.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Now().Add(5 * time.Second))
		defer d.SetDeadline(time.Time{})
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

// TestFakeTLSGotdClient runs a client no one here wrote, gotd's fake-TLS
// MTProxy transport (a ~1.75 KB uTLS Chrome ClientHello, a whole message
// per TLS record), through the proxy to an MTProto server: auth key
// exchange, then RPCs that upload and download verified parts larger than
// a TLS record, on one and two reactors.
func TestFakeTLSGotdClient(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.MTProto})
	s := startSite(t)
	proxies := map[int]*proxy{}
	for _, loops := range []int{1, 2} {
		proxies[loops] = startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: loops})
	}
	t.Run("clients", func(t *testing.T) {
		for loops, p := range proxies {
			t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := tgclient.Run(ctx, tgclient.Config{
					ProxyAddr: p.addr,
					Secret:    tgclient.Secret{Key: testKey, Domain: tlsDomain},
					Transport: tgclient.PaddedIntermediate,
					PublicKey: d.PublicKey(),
					// Parts over 16 KiB, so the proxy splits its output into
					// several records, within gotd's one-record limit.
					Workload: tgclient.Workload{Parts: 3, PartSize: 40 << 10, Seed: uint64(loops)},
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	for loops, p := range proxies {
		st := p.stats(t)
		if st.TLSValid == 0 || st.HandshakesOK != st.TLSValid {
			t.Errorf("loops %d: %d hellos accepted, %d handshakes: want as many, at least one", loops, st.TLSValid, st.HandshakesOK)
		}
		checkCounters(t, st, map[string]uint64{
			"Fronted": 0, "TLSBadHello": 0, "TLSBadDigest": 0, "TLSUnknownSNI": 0,
			"TLSClockSkew": 0, "TLSReplay": 0, "TLSBadHeader": 0, "HandshakesBad": 0,
		})
	}
	for _, ci := range d.Conns() {
		if ci.Err != nil || ci.Tag != fakedc.TagPaddedIntermediate || ci.DC != 2 {
			t.Errorf("fake DC saw %v, want padded intermediate to DC 2", ci)
		}
	}
	if n := len(s.conns()); n != 0 {
		t.Errorf("%d connections fronted", n)
	}
}

// recordWatch checks the record framing of what the proxy sends to a
// fake-TLS client: the three records of the reply, then application-data
// records of 1 to 16384 bytes only.
type recordWatch struct {
	net.Conn
	mu      sync.Mutex
	hdr     []byte
	left    int
	records int
	full    int // application-data records of exactly 16384 bytes
	maxData int
	err     error
}

func (w *recordWatch) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	w.mu.Lock()
	w.scan(b[:n])
	w.mu.Unlock()
	return n, err
}

func (w *recordWatch) scan(p []byte) {
	for len(p) > 0 && w.err == nil {
		if w.left > 0 {
			k := min(w.left, len(p))
			w.left -= k
			p = p[k:]
			continue
		}
		k := min(5-len(w.hdr), len(p))
		w.hdr = append(w.hdr, p[:k]...)
		p = p[k:]
		if len(w.hdr) < 5 {
			return
		}
		typ, n := w.hdr[0], int(binary.BigEndian.Uint16(w.hdr[3:]))
		want := byte(0x17)
		switch w.records {
		case 0:
			want = 0x16
		case 1:
			want = 0x14
		}
		switch {
		case typ != want || w.hdr[1] != 3 || w.hdr[2] != 3:
			w.err = fmt.Errorf("record %d: header % x, want type %#x", w.records, w.hdr, want)
		case w.records > 2 && (n == 0 || n > ftls.MaxRecord):
			w.err = fmt.Errorf("record %d: %d bytes of application data", w.records, n)
		}
		if w.records > 2 {
			w.maxData = max(w.maxData, n)
			if n == ftls.MaxRecord {
				w.full++
			}
		}
		w.records++
		w.left = n
		w.hdr = w.hdr[:0]
	}
}

// TestFakeTLSBulk pushes a few MiB each way through fake TLS to an echoing
// DC with the project's own client, every byte checked, on three clients at
// once: records of up to 16 KiB, of 65535 bytes (as gotd sends) and of 3
// bytes (many records per read). The proxy's records must all be
// application data of at most 16384 bytes, and it must have split its
// output.
func TestFakeTLSBulk(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	// Fast mode: DC bytes reach the record framing without AES.
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 2, FastMode: true})
	cases := []struct {
		name   string
		record int // client record size; 0 for the default
		size   int64
	}{
		{"16KiB-records", 0, 4 << 20},
		{"65535-byte-records", 1<<16 - 1, 4 << 20},
		{"3-byte-records", 3, 192 << 10},
	}
	var total int64
	watches := make([]*recordWatch, len(cases))
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(cases))
	for i, tc := range cases {
		total += tc.size
		w := &recordWatch{Conn: tcpDial(t, p.addr)}
		watches[i] = w
		rc, tlsConn := tlsClient(t, w, nil)
		if tc.record > 0 {
			if err := tlsConn.SetWriteRecordSize(tc.record); err != nil {
				t.Fatal(err)
			}
		}
		rc.SetDeadline(time.Now().Add(30 * time.Second))
		seed := uint64(40 + i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Writes of 1 byte to 100 KiB, so that messages both smaller and
			// larger than a record go through.
			rnd := mrand.New(mrand.NewPCG(seed, 1))
			src := fakedc.NewPattern(seed)
			buf := make([]byte, 100<<10)
			for left := tc.size; left > 0; {
				n := min(left, 1+rnd.Int64N(int64(len(buf))))
				src.Read(buf[:n])
				if _, err := rc.Write(buf[:n]); err != nil {
					errs <- fmt.Errorf("%s: write: %w", tc.name, err)
					return
				}
				left -= n
			}
		}()
		go func() {
			defer wg.Done()
			v := fakedc.NewVerifier(seed)
			if _, err := io.CopyN(v, rc, tc.size); err != nil {
				errs <- fmt.Errorf("%s: after %d bytes: %w", tc.name, v.Verified(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for i, w := range watches {
		w.mu.Lock()
		t.Logf("%s: %d records from the proxy, %d of 16384 bytes, largest %d", cases[i].name, w.records, w.full, w.maxData)
		if w.err != nil {
			t.Errorf("%s: %v", cases[i].name, w.err)
		}
		if cases[i].size > 1<<20 && w.full == 0 {
			t.Errorf("%s: no record of 16384 bytes: the proxy never split its output", cases[i].name)
		}
		w.mu.Unlock()
	}
	st := p.stats(t)
	checkCounters(t, st, map[string]uint64{
		"TLSValid": 3, "HandshakesOK": 3, "Fronted": 0, "TLSBadHeader": 0, "DCBytes": uint64(total),
	})
	if n := len(s.conns()); n != 0 {
		t.Errorf("%d connections fronted", n)
	}
}

// TestFakeTLSFrontingRealTLS: a real TLS client (Go's crypto/tls) that
// connects to the proxy meets the real site: its handshake completes with
// the site's certificate and an HTTP request gets the site's answer.
func TestFakeTLSFrontingRealTLS(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "the real site: %s %s", r.Host, r.URL.Path)
	}))
	defer web.Close()
	p := startTLSProxy(t, d.Addr(), web.Listener.Addr().String(), server.Config{Loops: 1})

	roots := x509.NewCertPool()
	roots.AddCert(web.Certificate())
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(dialer, "tcp", p.addr, &tls.Config{ServerName: tlsDomain, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake through the proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if certs := c.ConnectionState().PeerCertificates; len(certs) == 0 || !certs[0].Equal(web.Certificate()) {
		t.Fatal("the peer's certificate is not the real site's")
	}
	fmt.Fprintf(c, "GET /probe HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tlsDomain)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := "the real site: example.com /probe"; resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	c.Close()
	waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })

	st := p.stats(t)
	// Go's hello names the domain but carries no digest; depending on its
	// shape the proxy may find it malformed first.
	t.Logf("fronted: bad digest %d, bad hello %d", st.TLSBadDigest, st.TLSBadHello)
	checkCounters(t, st, map[string]uint64{
		"Fronted": 1, "TLSValid": 0, "HandshakesOK": 0, "FrontedTimeout": 0, "TLSUnknownSNI": 0,
		"TLSBadDigest": 1 - st.TLSBadHello,
	})
}

// TestFakeTLSFrontingEdges: a fronted client is closed when the real site
// cannot be reached, and gets all of a large answer when the site sends it
// and closes at once.
func TestFakeTLSFrontingEdges(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	probe := []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")

	t.Run("site down", func(t *testing.T) {
		p := startTLSProxy(t, d.Addr(), testnet.RefusedAddr(t), server.Config{Loops: 1})
		c := tcpDial(t, p.addr)
		c.Write(probe)
		expectClosed(t, c, 5*time.Second)
		waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
		checkCounters(t, p.stats(t), map[string]uint64{"Fronted": 1, "TLSBadHello": 1, "DCFailed": 1, "DCConnected": 0})
		if p.logs.FilterMessageSnippet("cannot connect to the fronted site").Len() != 1 {
			t.Error("no log line for the unreachable site")
		}
	})
	t.Run("site answers and closes", func(t *testing.T) {
		const size = 8 << 20 // more than the socket buffers hold
		addr := listenOnce(t, func(c net.Conn) {
			io.ReadFull(c, make([]byte, len(probe)))
			io.Copy(c, io.LimitReader(fakedc.NewPattern(3), size))
		})
		p := startTLSProxy(t, d.Addr(), addr, server.Config{Loops: 1})
		c := tcpDial(t, p.addr)
		c.Write(probe)
		time.Sleep(100 * time.Millisecond) // the site is gone before we read
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		v := fakedc.NewVerifier(3)
		if _, err := io.Copy(v, c); err != nil || v.Verified() != size {
			t.Fatalf("got %d of %d bytes, %v", v.Verified(), size, err)
		}
		waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
		checkCounters(t, p.stats(t), map[string]uint64{"Fronted": 1, "DCBytes": size})
	})
}

// TestFakeTLSReplay: the same ClientHello a second time, on another reactor
// while the first connection is still open, is fronted with exactly its
// bytes and whatever follows.
func TestFakeTLSReplay(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 2})

	hello := newHello(t, ftls.HelloOptions{Domain: tlsDomain})
	first, _ := tlsClient(t, tcpDial(t, p.addr), hello)
	echoes(t, first, []byte("the genuine client"))

	again := tcpDial(t, p.addr)
	sent := append(bytes.Clone(hello), "and then some"...)
	if _, err := again.Write(sent); err != nil {
		t.Fatal(err)
	}
	expectFronted(t, again, sent)
	if got := s.conns(); len(got) != 1 || !bytes.Equal(got[0], sent) {
		t.Fatalf("the real site got %d connections, want one with the replayed bytes", len(got))
	}
	echoes(t, first, []byte("still served"))
	checkCounters(t, p.stats(t), map[string]uint64{
		"TLSValid": 1, "TLSReplay": 1, "Fronted": 1, "HandshakesOK": 1, "TLSBadDigest": 0,
	})
}

// TestFakeTLSClockSkew: hellos an hour old (beyond the 10-minute start-up
// grace) or 10 minutes ahead are fronted; 5 minutes old or 1 minute ahead
// are served.
func TestFakeTLSClockSkew(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	cache := faketls.NewReplayCache(faketls.ReplayConfig{StartupGrace: 10 * time.Minute}, time.Now())
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, Replay: cache})
	for _, tc := range []struct {
		off     time.Duration
		fronted bool
	}{
		{-time.Hour, true},
		{10 * time.Minute, true},
		{-5 * time.Minute, false},
		{time.Minute, false},
	} {
		hello := newHello(t, ftls.HelloOptions{Domain: tlsDomain, Time: time.Now().Add(tc.off)})
		c := tcpDial(t, p.addr)
		if tc.fronted {
			if _, err := c.Write(hello); err != nil {
				t.Fatal(err)
			}
			expectFronted(t, c, hello)
		} else {
			rc, _ := tlsClient(t, c, hello)
			echoes(t, rc, []byte("on time"))
		}
		c.Close()
	}
	checkCounters(t, p.stats(t), map[string]uint64{
		"TLSClockSkew": 2, "Fronted": 2, "TLSValid": 2, "HandshakesOK": 2,
	})
	if n := len(s.conns()); n != 2 {
		t.Errorf("the real site got %d connections, want 2", n)
	}
	if n := cache.Len(); n != 2 {
		t.Errorf("replay cache holds %d randoms, want the 2 accepted", n)
	}
}

// trickleConn sends its first write in pieces, pausing between them, so
// that the proxy receives it over several reads.
type trickleConn struct {
	net.Conn
	piece int
	pause time.Duration
	done  bool
}

func (c *trickleConn) Write(b []byte) (int, error) {
	if c.done {
		return c.Conn.Write(b)
	}
	c.done = true
	n := 0
	for n < len(b) {
		m, err := c.Conn.Write(b[n:min(len(b), n+c.piece)])
		n += m
		if err != nil {
			return n, err
		}
		if n < len(b) {
			time.Sleep(c.pause)
		}
	}
	return n, nil
}

// fragment splits a one-record ClientHello into handshake records with
// bodies of the given sizes and a last one with the rest, as DPI-evasion
// tools do. The digest stays that of the one-record form.
func fragment(rec []byte, sizes ...int) []byte {
	body := rec[5:]
	var out []byte
	for _, n := range append(sizes, len(body)) {
		n = min(n, len(body))
		out = append(out, 0x16, 0x03, 0x01, byte(n>>8), byte(n))
		out = append(out, body[:n]...)
		body = body[n:]
		if len(body) == 0 {
			break
		}
	}
	return out
}

// TestFakeTLSHelloShapes: hellos that are long and trickled in, split into
// several records, without SNI or with the domain in other case are
// served; a hello for another domain is fronted.
func TestFakeTLSHelloShapes(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, Domains: []string{"first.example", tlsDomain}})

	t.Run("4KB hello over several reads", func(t *testing.T) {
		hello := newHello(t, ftls.HelloOptions{Domain: tlsDomain, Size: 4000})
		c := &trickleConn{Conn: tcpDial(t, p.addr), piece: 450, pause: 15 * time.Millisecond}
		rc, _ := tlsClient(t, c, hello)
		echoes(t, rc, bytes.Repeat([]byte("long hello "), 3000))
	})
	t.Run("hello in three records", func(t *testing.T) {
		hello := newHello(t, ftls.HelloOptions{Domain: tlsDomain, Size: 1800})
		// The client signs and checks the one-record form; the wire carries
		// it in three records, the first ending inside the random.
		c := &helloSwap{Conn: tcpDial(t, p.addr), want: hello, send: fragment(hello, 7, 300)}
		rc, _ := tlsClient(t, c, hello)
		echoes(t, rc, []byte("fragmented hello"))
	})
	t.Run("no SNI", func(t *testing.T) {
		rc, _ := tlsClient(t, tcpDial(t, p.addr), newHello(t, ftls.HelloOptions{}))
		echoes(t, rc, []byte("no server name"))
	})
	t.Run("SNI in upper case", func(t *testing.T) {
		rc, _ := tlsClient(t, tcpDial(t, p.addr), newHello(t, ftls.HelloOptions{Domain: "EXAMPLE.COM"}))
		echoes(t, rc, []byte("host names ignore case"))
	})
	t.Run("the other domain, 16 KiB hello", func(t *testing.T) {
		hello := newHello(t, ftls.HelloOptions{Domain: "first.example", Size: ftls.MaxRecord})
		rc, _ := tlsClient(t, tcpDial(t, p.addr), hello)
		echoes(t, rc, []byte("largest hello"))
	})
	t.Run("first records sent with the hello", func(t *testing.T) {
		// The obfuscated2 header and a first message, enciphered into a
		// buffer, go out in records in the same write as the hello, before
		// the reply.
		const msg = "sent before the ServerHello"
		tcp := tcpDial(t, p.addr)
		inner := &laterConn{Conn: tcp}
		rc, err := tgclient.NewRawConn(context.Background(), inner, testKey, fakedc.TagPaddedIntermediate, 2)
		if err != nil {
			t.Fatal(err)
		}
		rc.Write([]byte(msg))
		early := inner.take()
		hello := newHello(t, ftls.HelloOptions{Domain: tlsDomain})
		send := append(bytes.Clone(hello), 0x14, 0x03, 0x03, 0x00, 0x01, 0x01)
		send = append(send, 0x17, 0x03, 0x03, byte(len(early)>>8), byte(len(early)))
		send = append(send, early...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := ftls.ClientWithHello(ctx, &helloSwap{Conn: tcp, want: hello, send: send}, testKey, hello)
		if err != nil {
			t.Fatal(err)
		}
		inner.use(tc)
		rc.SetDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(rc, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
		echoes(t, rc, []byte("and after it"))
	})
	checkCounters(t, p.stats(t), map[string]uint64{"TLSValid": 6, "HandshakesOK": 6, "Fronted": 0})

	t.Run("unknown SNI", func(t *testing.T) {
		hello := newHello(t, ftls.HelloOptions{Domain: "other.example.org"})
		c := tcpDial(t, p.addr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		expectFronted(t, c, hello)
	})
	checkCounters(t, p.stats(t), map[string]uint64{"TLSValid": 6, "TLSUnknownSNI": 1, "Fronted": 1})
}

// laterConn collects what is written to it until use gives it the
// connection to go on with; reads wait for that too.
type laterConn struct {
	net.Conn // for deadlines
	mu       sync.Mutex
	buf      []byte
	rw       io.ReadWriter
}

func (c *laterConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rw != nil {
		return c.rw.Write(b)
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *laterConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	rw := c.rw
	c.mu.Unlock()
	if rw == nil {
		return 0, errors.New("laterConn: not connected yet")
	}
	return rw.Read(b)
}

func (c *laterConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.buf = nil
	return b
}

func (c *laterConn) use(rw io.ReadWriter) {
	c.mu.Lock()
	c.rw = rw
	c.mu.Unlock()
}

// helloSwap sends send in place of its first write, which must be want.
type helloSwap struct {
	net.Conn
	want, send []byte
	done       bool
}

func (c *helloSwap) Write(b []byte) (int, error) {
	if c.done {
		return c.Conn.Write(b)
	}
	c.done = true
	if !bytes.Equal(b, c.want) {
		return 0, errors.New("helloSwap: first write is not the hello")
	}
	if _, err := c.Conn.Write(c.send); err != nil {
		return 0, err
	}
	return len(b), nil
}

// recConn records what is written to it.
type recConn struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *recConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out)
}

// TestFakeTLSClassicClients: with fake TLS on, a plain obfuscated2 client
// is fronted unless AllowClassic is set; then it is served, and one with a
// wrong secret is still fronted.
func TestFakeTLSClassicClients(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	classic := func(t *testing.T, addr string, key [16]byte) (*tgclient.RawConn, *recConn) {
		rec := &recConn{Conn: tcpDial(t, addr)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rc, err := tgclient.NewRawConn(ctx, rec, key, fakedc.TagPaddedIntermediate, 2)
		if err != nil {
			t.Fatal(err)
		}
		return rc, rec
	}

	t.Run("refused", func(t *testing.T) {
		p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1})
		rc, rec := classic(t, p.addr, testKey)
		rc.Write([]byte("a classic client"))
		expectFronted(t, rec.Conn, rec.written())
		checkCounters(t, p.stats(t), map[string]uint64{"Fronted": 1, "TLSBadHello": 1, "HandshakesOK": 0})
	})
	t.Run("allowed", func(t *testing.T) {
		p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, AllowClassic: true})
		rc, _ := classic(t, p.addr, testKey)
		echoes(t, rc, []byte("a classic client, allowed"))
		// A fake-TLS client still works.
		tc, _ := tlsClient(t, tcpDial(t, p.addr), nil)
		echoes(t, tc, []byte("and a fake-TLS one"))
		// A classic header with a wrong secret is fronted, not swallowed.
		bad, rec := classic(t, p.addr, [16]byte{0xba, 0xd})
		bad.Write([]byte("wrong secret"))
		expectFronted(t, rec.Conn, rec.written())
		checkCounters(t, p.stats(t), map[string]uint64{
			"HandshakesOK": 2, "TLSValid": 1, "HandshakesBad": 1, "Fronted": 1, "TLSBadHello": 0,
		})
	})
}

// TestFakeTLSHandshakeTimeout: a client that stalls before its hello is
// complete (or sends nothing) is fronted at the handshake timeout with the
// bytes it sent; one that stalls after a valid hello is closed.
func TestFakeTLSHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})

	t.Run("half a hello", func(t *testing.T) {
		s := startSite(t)
		p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, HandshakeTimeout: timeout})
		half := newHello(t, ftls.HelloOptions{Domain: tlsDomain})[:258]
		start := time.Now()
		c := tcpDial(t, p.addr)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
		expectFronted(t, c, half)
		if e := time.Since(start); e < timeout-50*time.Millisecond {
			t.Fatalf("fronted after %v, before the %v handshake timeout", e, timeout)
		}
		checkCounters(t, p.stats(t), map[string]uint64{
			"Fronted": 1, "FrontedTimeout": 1, "HandshakeTimeouts": 1, "TLSBadHello": 0,
		})
		if got := s.conns(); len(got) != 1 || !bytes.Equal(got[0], half) {
			t.Fatal("the real site did not get exactly the half hello")
		}
	})
	t.Run("silent", func(t *testing.T) {
		s := startSite(t)
		p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, HandshakeTimeout: timeout})
		c := tcpDial(t, p.addr)
		expectFronted(t, c, nil)
		echoes(t, c, []byte("anyone there?")) // the real site, now
		checkCounters(t, p.stats(t), map[string]uint64{"Fronted": 1, "FrontedTimeout": 1})
	})
	t.Run("valid hello, then nothing", func(t *testing.T) {
		s := startSite(t)
		p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1, HandshakeTimeout: timeout})
		c := tcpDial(t, p.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := ftls.Client(ctx, c, testKey, tlsDomain); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		expectClosed(t, c, 5*time.Second)
		if e := time.Since(start); e < timeout-100*time.Millisecond {
			t.Fatalf("closed after %v", e)
		}
		checkCounters(t, p.stats(t), map[string]uint64{
			"TLSValid": 1, "Fronted": 0, "FrontedTimeout": 0, "HandshakeTimeouts": 1,
		})
		if n := len(s.conns()); n != 0 {
			t.Fatalf("%d connections fronted", n)
		}
	})
}

// TestFakeTLSBadRecords: after a valid hello the proxy has answered as a
// proxy, so what goes wrong then closes the connection instead of fronting
// it: records other than application data (before or after the header), an
// inner obfuscated2 header for another transport than padded intermediate,
// or for another secret than the one that signed the hello.
func TestFakeTLSBadRecords(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 1})
	alert := []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}
	handshake := func(t *testing.T) (net.Conn, *ftls.Conn) {
		c := tcpDial(t, p.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := ftls.Client(ctx, c, testKey, tlsDomain)
		if err != nil {
			t.Fatal(err)
		}
		return c, tc
	}
	var closed, relayed uint64
	check := func(t *testing.T, c net.Conn) {
		t.Helper()
		expectClosed(t, c, 5*time.Second)
		closed++
		checkCounters(t, p.stats(t), map[string]uint64{"TLSBadHeader": closed, "HandshakesOK": relayed, "Fronted": 0})
	}

	t.Run("alert instead of the header", func(t *testing.T) {
		c, _ := handshake(t)
		c.Write(append([]byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01}, alert...))
		check(t, c)
	})
	t.Run("alert after data", func(t *testing.T) {
		c, tc := handshake(t)
		rc, err := tgclient.NewRawConn(context.Background(), tc, testKey, fakedc.TagPaddedIntermediate, 2)
		if err != nil {
			t.Fatal(err)
		}
		echoes(t, rc, []byte("fine so far"))
		relayed++
		c.Write(alert)
		check(t, c)
	})
	t.Run("handshake record inside", func(t *testing.T) {
		c, _ := handshake(t)
		c.Write([]byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x16, 0x03, 0x03, 0x00, 0x04, 0x14, 0, 0, 0})
		check(t, c)
	})
	t.Run("abridged inside TLS", func(t *testing.T) {
		c, tc := handshake(t)
		rc, err := tgclient.NewRawConn(context.Background(), tc, testKey, fakedc.TagAbridged, 2)
		if err != nil {
			t.Fatal(err)
		}
		rc.Write([]byte{1, 2, 3, 4})
		check(t, c)
	})
	t.Run("another secret inside TLS", func(t *testing.T) {
		c, tc := handshake(t)
		// {1} is the proxy's other secret; the hello was signed with testKey.
		rc, err := tgclient.NewRawConn(context.Background(), tc, [16]byte{1}, fakedc.TagPaddedIntermediate, 2)
		if err != nil {
			t.Fatal(err)
		}
		rc.Write([]byte{1, 2, 3, 4})
		check(t, c)
	})
	waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
	st := p.stats(t)
	checkCounters(t, st, map[string]uint64{"TLSValid": 5})
	if n := len(s.conns()); n != 0 {
		t.Errorf("%d connections fronted", n)
	}
}

var garbageSeed = flag.Uint64("garbage-seed", 0, "seed of TestFakeTLSGarbage's inputs; 0 picks one")

// TestFakeTLSGarbage sends 200 sequences that start like a ClientHello
// (16 03 01) and go on at random: random bytes, well-framed records with
// random bodies, real hellos with bytes flipped, cut short or extended,
// and intact hellos followed by junk. Each connection must be fronted (the
// site then echoes exactly what was sent) or, for an intact hello, answered
// as a client and then closed; none may hang, be closed unanswered or crash
// the proxy, and every client must be gone at the end.
func TestFakeTLSGarbage(t *testing.T) {
	const n = 200
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.Echo})
	s := startSite(t)
	p := startTLSProxy(t, d.Addr(), s.addr, server.Config{Loops: 2, HandshakeTimeout: 300 * time.Millisecond})

	seed := *garbageSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -garbage-seed=%[1]d)", seed)
	rnd := mrand.New(mrand.NewPCG(seed, 2))
	inputs := make([][]byte, n)
	for i := range inputs {
		var b []byte
		switch i % 3 {
		case 0: // random bytes
			b = make([]byte, 3+rnd.IntN(6000))
			for j := range b {
				b[j] = byte(rnd.Uint32())
			}
		case 1: // a handshake record, mostly consistent, with a random body
			size := 1 + rnd.IntN(1<<14+100)
			hs := 4 + rnd.IntN(size)
			if rnd.IntN(2) == 0 {
				hs = size
			}
			b = []byte{0, 0, 0, byte(size >> 8), byte(size), 0x01, 0, byte((hs - 4) >> 8), byte(hs - 4)}
			body := make([]byte, rnd.IntN(size+50))
			for j := range body {
				body[j] = byte(rnd.Uint32())
			}
			if len(body) > 4 {
				copy(body, []byte{0x03, 0x03})
			}
			b = append(b, body...)
		case 2: // a real hello, damaged, or intact and followed by junk
			b = newHello(t, ftls.HelloOptions{Domain: tlsDomain, Size: 512 + rnd.IntN(3000)})
			intact := rnd.IntN(4) == 0
			if !intact {
				for range 1 + rnd.IntN(4) {
					b[3+rnd.IntN(len(b)-3)] ^= byte(1 + rnd.IntN(255))
				}
			}
			switch r := rnd.IntN(3); {
			case r == 0 && !intact:
				b = b[:3+rnd.IntN(len(b)-3)]
			case r == 1 || intact:
				for range 1 + rnd.IntN(200) {
					b = append(b, byte(rnd.Uint32()))
				}
			}
		}
		copy(b, []byte{0x16, 0x03, 0x01})
		inputs[i] = b
	}

	type outcome int
	const (
		fronted outcome = iota
		answered
		closed
	)
	results := make([]outcome, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// In one to three writes.
			for rest, k := in, 0; len(rest) > 0; k++ {
				m := len(rest)
				if k < 2 {
					m = 1 + writeSize(i, k, len(rest))
				}
				if _, err := c.Write(rest[:m]); err != nil {
					break // the proxy may close first
				}
				rest = rest[m:]
			}
			got, err := io.ReadAll(io.LimitReader(c, int64(len(siteGreeting)+len(in))))
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				errs <- fmt.Errorf("input %d (%d bytes % x...): no outcome after %d bytes", i, len(in), in[:min(len(in), 12)], len(got))
			case bytes.HasPrefix(got, []byte(siteGreeting)):
				results[i] = fronted
				if !bytes.Equal(got[len(siteGreeting):], in) {
					errs <- fmt.Errorf("input %d: the site got other bytes than sent", i)
				}
			case len(got) > 0 && got[0] == 0x16:
				results[i] = answered
			case len(got) == 0:
				results[i] = closed
			default:
				errs <- fmt.Errorf("input %d: the proxy answered % x", i, got[:min(len(got), 12)])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var count [3]uint64
	for _, r := range results {
		count[r]++
	}
	t.Logf("fronted %d, answered as a proxy %d, closed %d", count[fronted], count[answered], count[closed])
	waitFor(t, "client count back to 0", func() bool { return p.Clients() == 0 })
	st := p.stats(t)
	t.Logf("counters: bad hello %d, unknown SNI %d, bad digest %d, clock skew %d, timeouts %d",
		st.TLSBadHello, st.TLSUnknownSNI, st.TLSBadDigest, st.TLSClockSkew, st.FrontedTimeout)
	checkCounters(t, st, map[string]uint64{
		"Accepted": n, "Fronted": count[fronted], "TLSValid": count[answered], "HandshakesOK": 0,
	})
	if count[answered] == 0 {
		t.Error("no intact hello was answered")
	}
	// Before its ServerHello the proxy has nothing to close for: whatever
	// fails is relayed to the real site.
	if count[closed] != 0 {
		t.Errorf("%d connections closed without an answer, want all fronted or answered", count[closed])
	}
	reasons := st.TLSBadHello + st.TLSUnknownSNI + st.TLSBadDigest + st.TLSClockSkew + st.TLSReplay + st.FrontedTimeout
	if reasons != st.Fronted {
		t.Errorf("%d fronting reasons counted for %d fronted connections", reasons, st.Fronted)
	}
	if len(s.conns()) != int(count[fronted]) {
		t.Errorf("the site saw %d connections, %d were fronted", len(s.conns()), count[fronted])
	}
}

// writeSize picks a size below n for input i's k-th write, without sharing
// a generator between goroutines.
func writeSize(i, k, n int) int {
	return int(mrand.New(mrand.NewPCG(uint64(i), uint64(k))).IntN(n))
}
