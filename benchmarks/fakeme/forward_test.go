package fakeme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/exchange"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/mtproto"
	"github.com/gotd/td/proto/codec"
	"github.com/gotd/td/testutil"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/services"
	"github.com/gotd/td/transport"

	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// mtServer is a tiny MTProto-transport server: it accepts the intermediate
// transport and answers every frame with the connection's serial number (a
// 4-byte LE word, from 1 in accept order) followed by the frame. A frame
// starting with "QACK" is first answered with the quick-ack word
// mtQuickAck; one starting with "BYE!" makes it hang up after the answer.
type mtServer struct {
	t  *testing.T
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns []*mtConn
	errs  []error
}

const mtQuickAck = 0x81234567

type mtConn struct {
	serial int
	nc     net.Conn
	mu     sync.Mutex
	frames [][]byte
	eof    chan struct{} // closed when the peer's end or the hang-up is seen
}

func startMT(t *testing.T) *mtServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mtServer{t: t, ln: ln}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			mc := &mtConn{serial: len(m.conns) + 1, nc: nc, eof: make(chan struct{})}
			m.conns = append(m.conns, mc)
			m.mu.Unlock()
			m.wg.Add(1)
			go m.serve(mc)
		}
	}()
	t.Cleanup(func() {
		m.hangUp()
		m.wg.Wait()
		for _, err := range m.errs {
			t.Errorf("MTProto server: %v", err)
		}
	})
	return m
}

// hangUp closes the listener and every connection.
func (m *mtServer) hangUp() {
	m.ln.Close()
	m.mu.Lock()
	for _, mc := range m.conns {
		mc.nc.Close()
	}
	m.mu.Unlock()
}

func (m *mtServer) addr() string { return m.ln.Addr().String() }

func (m *mtServer) fail(err error) {
	m.mu.Lock()
	m.errs = append(m.errs, err)
	m.mu.Unlock()
}

func (m *mtServer) serve(mc *mtConn) {
	defer m.wg.Done()
	defer close(mc.eof)
	defer mc.nc.Close()
	var tag [4]byte
	if _, err := io.ReadFull(mc.nc, tag[:]); err != nil {
		m.fail(fmt.Errorf("conn %d: reading the tag: %v", mc.serial, err))
		return
	}
	if tag != intermediateTag {
		m.fail(fmt.Errorf("conn %d: tag %x, want eeeeeeee", mc.serial, tag))
		return
	}
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(mc.nc, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				m.fail(fmt.Errorf("conn %d: %v", mc.serial, err))
			}
			return
		}
		n := le.Uint32(hdr[:])
		if n == 0 || n&quickAckBit != 0 || n > 1<<20 {
			m.fail(fmt.Errorf("conn %d: frame length %#x", mc.serial, n))
			return
		}
		f := make([]byte, n)
		if _, err := io.ReadFull(mc.nc, f); err != nil {
			m.fail(fmt.Errorf("conn %d: %v", mc.serial, err))
			return
		}
		mc.mu.Lock()
		mc.frames = append(mc.frames, f)
		mc.mu.Unlock()
		var out []byte
		if bytes.HasPrefix(f, []byte("QACK")) {
			out = le.AppendUint32(out, mtQuickAck)
		}
		out = le.AppendUint32(out, n+4)
		out = le.AppendUint32(out, uint32(mc.serial))
		out = append(out, f...)
		if _, err := mc.nc.Write(out); err != nil {
			return
		}
		if bytes.HasPrefix(f, []byte("BYE!")) {
			return
		}
	}
}

// conn returns the connection with serial n, waiting for it a little.
func (m *mtServer) conn(t *testing.T, n int) *mtConn {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		m.mu.Lock()
		if len(m.conns) >= n {
			mc := m.conns[n-1]
			m.mu.Unlock()
			return mc
		}
		m.mu.Unlock()
	}
	t.Fatalf("no MTProto server connection %d", n)
	return nil
}

func (m *mtServer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

func (mc *mtConn) received() [][]byte {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return append([][]byte(nil), mc.frames...)
}

func waitEOF(t *testing.T, mc *mtConn, why string) {
	t.Helper()
	select {
	case <-mc.eof:
	case <-time.After(2 * time.Second):
		t.Fatalf("MTProto server connection %d still open after %s", mc.serial, why)
	}
}

func proxyReqFlags(flags uint32, id int64, payload []byte) []byte {
	b := rpc.AppendProxyReq(nil, &rpc.ProxyReq{
		Flags:  flags,
		ConnID: id,
		Client: netip.MustParseAddrPort("198.51.100.7:51000"),
		Proxy:  netip.MustParseAddrPort("203.0.113.5:443"),
	})
	return append(b, payload...)
}

// recvType returns the next frame, which must be of type want.
func (c *client) recvType(want rpc.Type) []byte {
	c.t.Helper()
	body, err := c.recv()
	if err != nil {
		c.t.Fatal(err)
	}
	if got := rpc.TypeOf(body); got != want {
		c.t.Fatalf("got %v, want %v", got, want)
	}
	return body
}

// expectAns checks that the next frame answers id with payload p from the
// MTProto server connection serial.
func (c *client) expectAns(id int64, serial int, p []byte) {
	c.t.Helper()
	_, gid, got, err := rpc.ParseProxyAns(c.recvType(rpc.TypeProxyAns))
	want := le.AppendUint32(nil, uint32(serial))
	want = append(want, p...)
	if err != nil || gid != id || !bytes.Equal(got, want) {
		c.t.Fatalf("answer for %#x (%v) %x, want for %#x %x", gid, err, got, id, want)
	}
}

// pingPong checks that a ping's pong is the next frame: nothing else was
// sent before it.
func (c *client) pingPong(id int64) {
	c.t.Helper()
	if err := c.send(rpc.AppendPing(nil, id)); err != nil {
		c.t.Fatal(err)
	}
	if got, err := rpc.ParsePong(c.recvType(rpc.TypePong)); err != nil || got != id {
		c.t.Fatalf("pong %#x, %v; want %#x", got, err, id)
	}
}

// fakemeGoroutines returns the stacks of the goroutines running fakeme's
// functions whose names contain one of names.
func fakemeGoroutines(names ...string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, n := range names {
			if strings.Contains(g, "benchmarks/fakeme."+n) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

func waitNoGoroutines(t *testing.T, why string, names ...string) {
	t.Helper()
	var left string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if left = fakemeGoroutines(names...); left == "" {
			return
		}
	}
	t.Fatalf("goroutines left after %s:\n%s", why, left)
}

func TestForward(t *testing.T) {
	m := startMT(t)
	s := start(t, Config{Mode: Forward, ForwardAddr: m.addr()})
	// On failure, before s.Close: a bug that leaves a server connection
	// open must not hang the test.
	t.Cleanup(m.hangUp)
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
	if err != nil {
		t.Fatal(err)
	}
	const a, b = int64(0x400007), int64(-5)
	const flags = rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagIntermediate
	pa := func(i int) []byte { return payload(a, i, 40+4*i) }
	pb := func(i int) []byte { return payload(b, i, 100) }

	// Interleaved requests of two ids, two or four per write.
	const n = 6
	for i := 0; i < n; i += 2 {
		bodies := [][]byte{
			proxyReq(a, nil, pa(i)), proxyReq(b, nil, pb(i)),
			proxyReq(a, nil, pa(i+1)), proxyReq(b, nil, pb(i+1)),
		}
		if i%4 == 0 {
			err = c.send(bodies...)
		} else if err = c.send(bodies[:2]...); err == nil {
			err = c.send(bodies[2:]...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[int64][][]byte{}
	serial := map[int64]uint32{}
	for range 2 * n {
		_, id, p, err := rpc.ParseProxyAns(c.recvType(rpc.TypeProxyAns))
		if err != nil || (id != a && id != b) || len(p) < 4 {
			t.Fatalf("answer for %#x: %v", id, err)
		}
		if sn, ok := serial[id]; ok && sn != le.Uint32(p) {
			t.Fatalf("id %#x answered from server connections %d and %d", id, sn, le.Uint32(p))
		}
		serial[id] = le.Uint32(p)
		got[id] = append(got[id], append([]byte(nil), p[4:]...))
	}
	if serial[a] == serial[b] {
		t.Fatalf("ids %#x and %#x share server connection %d", a, b, serial[a])
	}
	for id, p := range map[int64]func(int) []byte{a: pa, b: pb} {
		recv := m.conn(t, int(serial[id])).received()
		if len(got[id]) != n || len(recv) != n {
			t.Fatalf("id %#x: %d answers, server got %d frames; want %d", id, len(got[id]), len(recv), n)
		}
		for i := range n {
			if !bytes.Equal(got[id][i], p(i)) || !bytes.Equal(recv[i], p(i)) {
				t.Fatalf("id %#x packet %d out of order or changed", id, i)
			}
		}
	}
	if m.count() != 2 {
		t.Fatalf("%d server connections, want 2", m.count())
	}
	sa, sb := int(serial[a]), int(serial[b])

	// A quick-ack request: RPC_SIMPLE_ACK on receipt, before the answer,
	// with the first 4 bytes of SHA-256 of the packet (LE), bit 31 set.
	qp := payload(a, 100, 64)
	if err := c.send(proxyReqFlags(flags|rpc.FlagQuickAck, a, qp)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(qp)
	wantToken := uint32(sum[0]) | uint32(sum[1])<<8 | uint32(sum[2])<<16 | uint32(sum[3])<<24 | 0x80000000
	if id, token, err := rpc.ParseSimpleAck(c.recvType(rpc.TypeSimpleAck)); err != nil || id != a || token != wantToken {
		t.Fatalf("simple ack %#x %#x %v; want %#x %#x", id, token, err, a, wantToken)
	}
	c.expectAns(a, sa, qp)

	// The server's own quick ack is passed on.
	sp := append([]byte("QACK"), payload(a, 101, 28)...)
	if err := c.send(proxyReqFlags(flags, a, sp)); err != nil {
		t.Fatal(err)
	}
	if id, token, err := rpc.ParseSimpleAck(c.recvType(rpc.TypeSimpleAck)); err != nil || id != a || token != mtQuickAck {
		t.Fatalf("simple ack %#x %#x %v; want %#x %#x", id, token, err, a, mtQuickAck)
	}
	c.expectAns(a, sa, sp)

	// The server hangs up on b: RPC_CLOSE_EXT after the answer, and b's
	// next request is dropped.
	bye := append([]byte("BYE!"), payload(b, 102, 28)...)
	if err := c.send(proxyReqFlags(flags, b, bye)); err != nil {
		t.Fatal(err)
	}
	c.expectAns(b, sb, bye)
	if id, err := rpc.ParseCloseExt(c.recvType(rpc.TypeCloseExt)); err != nil || id != b {
		t.Fatalf("close ext %#x, %v; want %#x", id, err, b)
	}
	if err := c.send(proxyReqFlags(flags|rpc.FlagQuickAck, b, pb(103))); err != nil {
		t.Fatal(err)
	}
	c.pingPong(1)
	// Once the proxy closes b, b is new again: a new server connection.
	nb := pb(104)
	if err := c.send(rpc.AppendCloseConn(nil, b), proxyReqFlags(flags, b, nb)); err != nil {
		t.Fatal(err)
	}
	c.expectAns(b, 3, nb)
	if got := m.conn(t, 3).received(); len(got) != 1 || !bytes.Equal(got[0], nb) {
		t.Fatalf("new connection for b got %d frames", len(got))
	}

	// RPC_CLOSE_CONN closes a's server connection, with no RPC_CLOSE_EXT.
	if err := c.send(rpc.AppendCloseConn(nil, a)); err != nil {
		t.Fatal(err)
	}
	waitEOF(t, m.conn(t, sa), "RPC_CLOSE_CONN")
	c.pingPong(2)

	st := s.Stats()
	if st.Requests != 2*n+5 || st.Answers != 2*n+4 || st.ForwardConns != 3 || st.CloseExts != 1 ||
		st.QuickAcks != 2 || st.Dropped != 1 || st.Closes != 2 || st.ForwardFailed != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
	if fl := s.Flags(); fl[0x40021000] != 2*n || fl[flags] != 3 || fl[flags|rpc.FlagQuickAck] != 2 {
		t.Errorf("flags %v", fl)
	}

	// The proxy hangs up: the server connection left (b's) is closed and
	// the RPC connection's goroutines end.
	c.nc.Close()
	waitEOF(t, m.conn(t, 3), "the RPC connection's end")
	waitNoGoroutines(t, "the RPC connection's end", "(*conn)", "(*Server).serve")

	// Close with a live server connection closes it, and no goroutine
	// is left.
	c2, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.send(proxyReq(7, nil, payload(7, 0, 32))); err != nil {
		t.Fatal(err)
	}
	c2.expectAns(7, 4, payload(7, 0, 32))
	s.Close()
	waitEOF(t, m.conn(t, 4), "Close")
	waitNoGoroutines(t, "Close", "(*conn)", "(*Server)")
}

func TestForwardDialFails(t *testing.T) {
	if _, err := Start(Config{Secret: testSecret(0), Mode: Forward}); err == nil {
		t.Error("forward mode without an address accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := start(t, Config{Mode: Forward, ForwardAddr: addr})
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(proxyReq(9, nil, payload(9, 0, 32)), proxyReq(9, nil, payload(9, 1, 32))); err != nil {
		t.Fatal(err)
	}
	if id, err := rpc.ParseCloseExt(c.recvType(rpc.TypeCloseExt)); err != nil || id != 9 {
		t.Fatalf("close ext %#x, %v; want 9", id, err)
	}
	c.pingPong(3)
	if st := s.Stats(); st.ForwardFailed != 1 || st.ForwardConns != 0 || st.CloseExts != 1 || st.Dropped != 2 {
		t.Errorf("stats %+v", st)
	}
}

// rpcTransport is gotd's transport.Conn over one out_conn_id of the test
// client: what the official proxy does with an intermediate client's
// packets, with the flags it would set (§6.7, §6.8), and a quick ack asked
// for on every encrypted packet.
type rpcTransport struct {
	c  *client
	id int64

	wmu     sync.Mutex
	pending map[uint32]bool // quick-ack tokens expected
	acks    atomic.Int64    // matching RPC_SIMPLE_ACKs received
}

func (r *rpcTransport) Send(ctx context.Context, b *bin.Buffer) error {
	pf, ok := rpc.PacketFlags(b.Buf)
	if !ok {
		return fmt.Errorf("packet of %d bytes would be dropped by the proxy", b.Len())
	}
	flags := rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagIntermediate | pf
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if pf == 0 {
		flags |= rpc.FlagQuickAck
		r.pending[QuickAckToken(b.Buf)] = true
	}
	return r.c.send(proxyReqFlags(flags, r.id, b.Buf))
}

func (r *rpcTransport) Recv(ctx context.Context, b *bin.Buffer) error {
	for {
		body, err := r.c.recv()
		if err != nil {
			return err
		}
		switch rpc.TypeOf(body) {
		case rpc.TypeProxyAns:
			_, id, p, err := rpc.ParseProxyAns(body)
			if err != nil || id != r.id {
				return fmt.Errorf("answer for %#x: %v", id, err)
			}
			b.ResetTo(append([]byte(nil), p...))
			if len(p) == 4 { // as gotd's codecs do
				return &codec.ProtocolErr{Code: -int32(le.Uint32(p))}
			}
			return nil
		case rpc.TypeSimpleAck:
			id, token, err := rpc.ParseSimpleAck(body)
			r.wmu.Lock()
			ok := r.pending[token]
			delete(r.pending, token)
			r.wmu.Unlock()
			if err != nil || id != r.id || !ok {
				return fmt.Errorf("unexpected simple ack %#x %#x %v", id, token, err)
			}
			r.acks.Add(1)
		default:
			return fmt.Errorf("unexpected %v", rpc.TypeOf(body))
		}
	}
}

func (r *rpcTransport) Close() error { return r.c.nc.Close() }

// TestForwardGotd runs a real MTProto session through Forward: gotd's
// MTProto client (over the proxy side of the RPC protocol) with gotd's
// tgtest server as the forward address, which detects the intermediate
// transport from its tag. Key exchange, then an encrypted RPC.
func TestForwardGotd(t *testing.T) {
	d := tgtest.NewDispatcher()
	d.HandleFunc(tg.HelpGetNearestDCRequestTypeID, func(srv *tgtest.Server, req *tgtest.Request) error {
		var r tg.HelpGetNearestDCRequest
		if err := r.Decode(req.Buf); err != nil {
			return err
		}
		return srv.SendResult(req, &tg.NearestDC{Country: "ZZ", ThisDC: 2, NearestDC: 2})
	})
	d.Fallback(tgtest.HandlerFunc(func(srv *tgtest.Server, req *tgtest.Request) error {
		if id, _ := req.Buf.PeekID(); id == mt.MsgsAckTypeID {
			return nil
		}
		return services.ErrMethodNotImplemented
	}))
	srv := tgtest.NewServer(tgtest.NewPrivateKey(testutil.RSAPrivateKey()), d, tgtest.ServerOptions{DC: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, transport.Listen(ln)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("tgtest: %v", err)
		}
	})

	s := start(t, Config{Mode: Forward, ForwardAddr: ln.Addr().String()})
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
	if err != nil {
		t.Fatal(err)
	}
	c.nc.SetDeadline(time.Now().Add(15 * time.Second))
	tr := &rpcTransport{c: c, id: 0x1234567, pending: map[uint32]bool{}}
	conn := mtproto.New(func(context.Context) (transport.Conn, error) { return tr, nil }, mtproto.Options{
		DC:         2,
		PublicKeys: []exchange.PublicKey{srv.Key()},
		// The client factors tgtest's fixed pq by Pollard's rho from
		// random starting points, which takes up to seconds under the
		// race detector; this seed makes it take milliseconds.
		Random: seededRand(102),
	})
	var nearest tg.NearestDC
	var invokeErr error
	invoked := false
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	err = conn.Run(runCtx, func(ctx context.Context) error {
		invokeErr = conn.Invoke(ctx, &tg.HelpGetNearestDCRequest{}, &nearest)
		invoked = true
		stop() // Run waits for its context
		return invokeErr
	})
	// Run's error after stop is gotd's shutdown, such as a write of its
	// salt loop to the closed transport.
	if !invoked || invokeErr != nil {
		t.Fatalf("invoke: %v; run: %v", invokeErr, err)
	}
	if nearest.Country != "ZZ" || nearest.ThisDC != 2 {
		t.Fatalf("help.getNearestDc: %+v", nearest)
	}
	st := s.Stats()
	// req_pq_multi, req_DH_params, set_client_DH_params, then encrypted.
	if st.ForwardConns != 1 || st.Requests < 4 || st.Answers < 4 || st.CloseExts != 0 {
		t.Errorf("stats %+v", st)
	}
	if fl := s.Flags(); fl[0x20021002] != 3 {
		t.Errorf("flags %v: want 3 unencrypted key exchange packets", fl)
	}
	// Those of the last packets may still be on their way.
	if acks := tr.acks.Load(); acks == 0 || acks > st.QuickAcks {
		t.Errorf("%d quick acks sent, %d received", st.QuickAcks, acks)
	}
}

// lockedRand is a seeded random source that gotd's goroutines may share.
type lockedRand struct {
	mu sync.Mutex
	r  *mrand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func seededRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: mrand.NewChaCha8(s)}
}

// TestForwardCloseBlocked closes the server while its goroutine is blocked
// writing to an MTProto server that reads nothing.
func TestForwardCloseBlocked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		nc.(*net.TCPConn).SetReadBuffer(4096) // and reads nothing
		accepted <- nc
	}()
	s, err := Start(Config{Secret: testSecret(0), Mode: Forward, ForwardAddr: ln.Addr().String(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	c.nc.SetDeadline(time.Time{})
	sent := make(chan error, 1)
	go func() {
		p := payload(1, 0, 64<<10)
		for {
			if err := c.send(proxyReq(1, nil, p)); err != nil {
				sent <- err
				return
			}
		}
	}()
	mt, ok := <-accepted
	if !ok {
		t.Fatal("no connection to the MTProto server")
	}
	defer mt.Close()
	// Blocked: BytesIn stands still.
	start := time.Now()
	for last, same := int64(-1), 0; same < 5; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the server never blocked")
		}
		if in := s.Stats().BytesIn; in == last {
			same++
		} else {
			last, same = in, 0
		}
	}
	t.Logf("blocked after %d bytes in %v", s.Stats().BytesIn, time.Since(start))
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return")
	}
	c.nc.Close()
	<-sent
	waitNoGoroutines(t, "Close", "(*conn)", "(*Server)")
}
