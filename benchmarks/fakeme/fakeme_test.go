package fakeme

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/cipher/cbc"
	"github.com/mtproxy-go/mtproxy/cipher/mtkeys"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

var le = binary.LittleEndian

func testSecret(seed byte) []byte {
	s := make([]byte, 128)
	for i := range s {
		s[i] = byte(7*i) + 1 + seed
	}
	return s
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret(0)
	}
	cfg.Logf = t.Logf
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clientOpts are the variations of the test client's handshake.
type clientOpts struct {
	secret      []byte
	flags       uint32 // handshake flags: 0 or rpc.HandshakeCRC32C
	fillBefore  bool   // a filler word before the nonce frame
	fillAfter   bool   // a filler word after it, in the same write
	lateFill    bool   // a filler word after the nonce answer, before the handshake
	checkSilent bool   // check that nothing follows the nonce answer
}

// client is the proxy side of an RPC connection, built from the codec
// packages, with independent checks of the first frames.
type client struct {
	t      *testing.T
	nc     net.Conn
	enc    *cbc.Encrypter
	dec    *cbc.Decrypter
	fr     rpc.FrameReader
	wseq   int32
	crc32c bool
	rbuf   []byte
	plain  []byte
	carry  []byte
	sender rpc.PID
	ans    rpc.Handshake
}

func dial(t *testing.T, s *Server, o clientOpts) (*client, error) {
	t.Helper()
	if o.secret == nil {
		o.secret = testSecret(0)
	}
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	c := &client{t: t, nc: nc, rbuf: make([]byte, 64<<10)}

	req := rpc.Nonce{KeySelector: rpc.KeySelector(o.secret), Schema: rpc.SchemaAES, Time: uint32(time.Now().Unix())}
	rand.Read(req.Nonce[:])
	frame := rpc.AppendFrame(nil, rpc.SeqNonce, rpc.AppendNonce(nil, &req), false)
	// The layout of §11.3's nonce frame, checked byte by byte.
	want := mustHex(t, "2c000000 feffffff aa87cb7a")
	want = append(want, o.secret[:4]...)
	want = append(want, 1, 0, 0, 0)
	want = le.AppendUint32(want, req.Time)
	want = append(want, req.Nonce[:]...)
	want = le.AppendUint32(want, crc32.ChecksumIEEE(want))
	if !bytes.Equal(frame, want) {
		t.Fatalf("nonce frame\n%x, want\n%x", frame, want)
	}
	var out []byte
	if o.fillBefore {
		out = append(out, 4, 0, 0, 0)
	}
	out = append(out, frame...)
	if o.fillAfter {
		out = append(out, 4, 0, 0, 0)
	}
	if _, err := nc.Write(out); err != nil {
		return nil, err
	}

	// The answer: exactly one 44-byte plaintext frame.
	raw := make([]byte, 44)
	if _, err := io.ReadFull(nc, raw); err != nil {
		return nil, fmt.Errorf("reading nonce answer: %w", err)
	}
	if le.Uint32(raw) != 44 || int32(le.Uint32(raw[4:])) != -2 || le.Uint32(raw[8:]) != 0x7acb87aa ||
		le.Uint32(raw[40:]) != crc32.ChecksumIEEE(raw[:40]) {
		t.Fatalf("nonce answer frame %x", raw)
	}
	if o.checkSilent {
		nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var b [1]byte
		if n, err := nc.Read(b[:]); n != 0 || !isTimeout(err) {
			t.Fatalf("after the nonce answer: %d bytes, %v; want nothing", n, err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
	}
	body, rest, err := c.fr.Next(raw)
	if err != nil || len(rest) != 0 {
		t.Fatalf("nonce answer: %v, %d bytes after", err, len(rest))
	}
	ans, err := rpc.ParseNonce(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := rpc.CheckNonceAnswer(&req, &ans); err != nil {
		t.Fatal(err)
	}

	local := netip.MustParseAddrPort(nc.LocalAddr().String())
	remote := netip.MustParseAddrPort(nc.RemoteAddr().String())
	keys, err := mtkeys.Derive(&mtkeys.Params{
		ClientNonce: req.Nonce, ServerNonce: ans.Nonce, ClientTime: req.Time,
		Client: local, Server: remote, Secret: o.secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.enc = cbc.NewEncrypter(&keys.Client.Key, &keys.Client.IV)
	c.dec = cbc.NewDecrypter(&keys.Server.Key, &keys.Server.IV)

	c.sender = rpc.PID{IP: 0x7f000001, Port: local.Port(), PID: 4242, Time: req.Time}
	hreq := rpc.Handshake{Flags: o.flags, Sender: c.sender, Peer: rpc.PID{IP: 0x7f000001, Port: remote.Port()}}
	var hs []byte
	if o.lateFill {
		hs = append(hs, 4, 0, 0, 0)
	}
	enc := rpc.Pad(rpc.AppendFrame(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &hreq), false))
	c.enc.CryptBlocks(enc, enc)
	if _, err := nc.Write(append(hs, enc...)); err != nil {
		return nil, err
	}

	// The handshake answer: 44 bytes and one filler, CRC-32, seq −1.
	blk := make([]byte, 48)
	if _, err := io.ReadFull(nc, blk); err != nil {
		return nil, fmt.Errorf("reading handshake answer: %w", err)
	}
	c.dec.CryptBlocks(blk, blk)
	if le.Uint32(blk) != 44 || int32(le.Uint32(blk[4:])) != -1 || le.Uint32(blk[8:]) != 0x7682eef5 ||
		le.Uint32(blk[40:]) != crc32.ChecksumIEEE(blk[:40]) || le.Uint32(blk[44:]) != 4 {
		t.Fatalf("handshake answer frame %x", blk)
	}
	body, c.plain, err = c.fr.Next(blk)
	if err != nil || len(c.plain) != 4 {
		t.Fatalf("handshake answer: %v, %d bytes after", err, len(c.plain))
	}
	if c.ans, err = rpc.ParseHandshake(body); err != nil {
		t.Fatal(err)
	}
	if c.ans.Peer != c.sender {
		t.Fatalf("answer's peer PID %+v, want our sender %+v", c.ans.Peer, c.sender)
	}
	if c.crc32c, err = rpc.CheckHandshakeAnswer(&hreq, &c.ans); err != nil {
		t.Fatal(err)
	}
	if c.crc32c {
		c.fr.UseCRC32C()
	}
	return c, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// send writes bodies as frames, padded and encrypted.
func (c *client) send(bodies ...[]byte) error {
	var b []byte
	for _, body := range bodies {
		b = rpc.AppendFrame(b, c.wseq, body, c.crc32c)
		c.wseq++
	}
	b = rpc.Pad(b)
	c.enc.CryptBlocks(b, b)
	_, err := c.nc.Write(b)
	return err
}

// recv returns the next frame body.
func (c *client) recv() ([]byte, error) {
	for {
		body, rest, err := c.fr.Next(c.plain)
		c.plain = rest
		if err != nil || body != nil {
			return body, err
		}
		k := copy(c.rbuf, c.carry)
		c.carry = c.carry[:0]
		for k < cbc.BlockSize {
			n, err := c.nc.Read(c.rbuf[k:])
			if n == 0 {
				return nil, readErr(err)
			}
			k += n
		}
		whole := k &^ (cbc.BlockSize - 1)
		c.dec.CryptBlocks(c.rbuf[:whole], c.rbuf[:whole])
		c.carry = append(c.carry, c.rbuf[whole:k]...)
		c.plain = c.rbuf[:whole]
	}
}

func proxyReq(id int64, tag, payload []byte) []byte {
	b := rpc.AppendProxyReq(nil, &rpc.ProxyReq{
		Flags:  rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagAbridged,
		ConnID: id,
		Client: netip.MustParseAddrPort("198.51.100.7:51000"),
		Proxy:  netip.MustParseAddrPort("203.0.113.5:443"),
		AdTag:  tag,
	})
	return append(b, payload...)
}

func payload(id int64, i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(int(id)*31 + i*7 + j)
	}
	return b
}

// TestVectors checks the codec the test client and the server share against
// protocol.md §11.3's frames, computed independently.
func TestVectors(t *testing.T) {
	secret := testSecret(0)
	var cn, sn [16]byte
	for i := range cn {
		cn[i], sn[i] = 0xbb, 0xaa
	}
	n := rpc.Nonce{KeySelector: rpc.KeySelector(secret), Schema: rpc.SchemaAES, Time: 0x65000000, Nonce: cn}
	want := mustHex(t, "2c000000 feffffff aa87cb7a 01080f16 01000000 00000065"+strings.Repeat("bb", 16)+"92794583")
	if got := rpc.AppendFrame(nil, rpc.SeqNonce, rpc.AppendNonce(nil, &n), false); !bytes.Equal(got, want) {
		t.Errorf("nonce frame %x, want %x", got, want)
	}
	keys, err := mtkeys.Derive(&mtkeys.Params{
		ClientNonce: cn, ServerNonce: sn, ClientTime: 0x65000000,
		Client: netip.MustParseAddrPort("203.0.113.5:40000"),
		Server: netip.MustParseAddrPort("149.154.175.50:8888"),
		Secret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(keys.Server.Key[:]); got != "de832f4e74a444f59e9ba41dc93e386f7c9eac2583732a2374c8d22fcc77e3fa" {
		t.Errorf("SERVER key %s", got)
	}
	plain := mustHex(t, "2c000000ffffffff f5ee8276 00000000 0500710bc800000000006500 0500710bc800000000006500 351b5556")
	h, err := rpc.ParseHandshake(plain[8:40])
	if err != nil {
		t.Fatal(err)
	}
	frame := rpc.AppendFrame(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &h), false)
	if !bytes.Equal(frame, plain) {
		t.Errorf("handshake frame %x, want %x", frame, plain)
	}
	frame = rpc.Pad(frame)
	cbc.NewEncrypter(&keys.Client.Key, &keys.Client.IV).CryptBlocks(frame, frame)
	want = mustHex(t, "0a07c50dedc0aff66ea8fa731ec7cdf7d79dc6cebf79520f6e97534c42cc3cb3 4ff34e4fb08fe18373b90936a76e71b7")
	if !bytes.Equal(frame, want) {
		t.Errorf("handshake frame %x, want %x", frame, want)
	}
}

func TestEchoCRC32C(t *testing.T) {
	s := start(t, Config{})
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C, checkSilent: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.crc32c || c.ans.Flags != rpc.HandshakeCRC32C {
		t.Fatalf("CRC-32C not agreed: flags %#x", c.ans.Flags)
	}
	tag := mustHex(t, "0123456789abcdeffedcba9876543210")
	data := payload(7, 0, 1000)
	if err := c.send(proxyReq(0x400007, tag, data)); err != nil {
		t.Fatal(err)
	}
	body, err := c.recv()
	if err != nil {
		t.Fatal(err)
	}
	// §11.4: PROXY_ANS header 0dda0344 00000000 0700400000000000.
	if hdr := mustHex(t, "0dda0344 00000000 0700400000000000"); !bytes.Equal(body[:16], hdr) {
		t.Fatalf("answer header %x, want %x", body[:16], hdr)
	}
	if !bytes.Equal(body[16:], data) {
		t.Fatal("echoed payload differs")
	}
	st := s.Stats()
	if st.HandshakesOK != 1 || st.CRC32C != 1 || st.Requests != 1 || st.BytesIn != 1000 || st.Answers != 1 || st.BytesOut != 1000 {
		t.Errorf("stats %+v", st)
	}
	if tags := s.AdTags(); tags["0123456789abcdeffedcba9876543210"] != 1 || len(tags) != 1 {
		t.Errorf("ad tags %v", tags)
	}
	if fl := s.Flags(); fl[0x40021008] != 1 || len(fl) != 1 {
		t.Errorf("flags %v", fl)
	}
}

// TestProxyReqVector sends §11.4's RPC_PROXY_REQ header as raw bytes.
func TestProxyReqVector(t *testing.T) {
	s := start(t, Config{NoCRC32C: true})
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
	if err != nil {
		t.Fatal(err)
	}
	if c.crc32c || c.ans.Flags != 0 {
		t.Fatalf("CRC-32C agreed despite NoCRC32C: flags %#x", c.ans.Flags)
	}
	req := mustHex(t, `eef1ce36 0a100240 0700400000000000
		00000000000000000000ffffc6336407 38c70000
		00000000000000000000ffffcb007105 bb010000
		18000000 ae261edb 10 0123456789abcdeffedcba9876543210 000000`)
	data := payload(1, 1, 40)
	if err := c.send(append(req, data...)); err != nil {
		t.Fatal(err)
	}
	body, err := c.recv()
	if err != nil {
		t.Fatal(err)
	}
	_, id, got, err := rpc.ParseProxyAns(body)
	if err != nil || id != 0x400007 || !bytes.Equal(got, data) {
		t.Fatalf("answer id %#x, %v, payload ok %v", id, err, bytes.Equal(got, data))
	}
	if fl := s.Flags(); fl[0x4002100a] != 1 {
		t.Errorf("flags %v", fl)
	}
	if tags := s.AdTags(); tags["0123456789abcdeffedcba9876543210"] != 1 {
		t.Errorf("ad tags %v", tags)
	}
}

func TestPingPong(t *testing.T) {
	s := start(t, Config{})
	c, err := dial(t, s, clientOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if c.crc32c {
		t.Fatal("CRC-32C agreed without an offer")
	}
	for i := range int64(3) {
		id := 0x1122334455667788 + i
		if err := c.send(rpc.AppendPing(nil, id)); err != nil {
			t.Fatal(err)
		}
		body, err := c.recv()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := rpc.ParsePong(body); err != nil || got != id {
			t.Fatalf("pong %#x, %v; want %#x", got, err, id)
		}
	}
	if st := s.Stats(); st.Pings != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestMultiplex(t *testing.T) {
	s := start(t, Config{})
	c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
	if err != nil {
		t.Fatal(err)
	}
	const ids, per = 40, 25
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range per {
			var batch [][]byte
			for id := range int64(ids) {
				batch = append(batch, proxyReq(id+1, nil, payload(id, i, 4*(1+(int(id)*13+i*5)%300))))
			}
			if err := c.send(batch...); err != nil {
				werr = err
				return
			}
		}
	}()
	next := make([]int, ids+1)
	for range ids * per {
		body, err := c.recv()
		if err != nil {
			t.Fatal(err)
		}
		_, id, got, err := rpc.ParseProxyAns(body)
		if err != nil || id < 1 || id > ids {
			t.Fatalf("answer for %d: %v", id, err)
		}
		i := next[id]
		next[id]++
		if want := payload(id-1, i, 4*(1+(int(id-1)*13+i*5)%300)); !bytes.Equal(got, want) {
			t.Fatalf("id %d packet %d: payload differs", id, i)
		}
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if st := s.Stats(); st.Requests != ids*per || st.Answers != ids*per {
		t.Errorf("stats %+v", st)
	}
}

func TestWrongSecret(t *testing.T) {
	s := start(t, Config{})
	// A different key selector: refused after the nonce.
	other := testSecret(1)
	if _, err := dial(t, s, clientOpts{secret: other}); err == nil {
		t.Fatal("handshake with another selector succeeded")
	}
	// The same selector, the rest different: the handshake frame fails.
	same := testSecret(0)
	same[100] ^= 1
	if _, err := dial(t, s, clientOpts{secret: same}); err == nil {
		t.Fatal("handshake with another secret succeeded")
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().HandshakesFailed < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats(); st.HandshakesFailed != 2 || st.HandshakesOK != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFillers(t *testing.T) {
	s := start(t, Config{})
	for _, o := range []clientOpts{
		{fillBefore: true},
		{fillAfter: true, checkSilent: true},
		{fillBefore: true, fillAfter: true, flags: rpc.HandshakeCRC32C},
		{lateFill: true},
	} {
		c, err := dial(t, s, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		data := payload(3, 3, 64)
		if err := c.send(proxyReq(3, nil, data)); err != nil {
			t.Fatal(err)
		}
		body, err := c.recv()
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if _, _, got, err := rpc.ParseProxyAns(body); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%+v: bad answer %v", o, err)
		}
	}
}

func TestSinkAndSourceAndClose(t *testing.T) {
	t.Run("sink", func(t *testing.T) {
		s := start(t, Config{Mode: Sink})
		c, err := dial(t, s, clientOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.send(proxyReq(1, nil, payload(1, 0, 100)), proxyReq(2, nil, payload(2, 0, 200)), rpc.AppendPing(nil, 9)); err != nil {
			t.Fatal(err)
		}
		body, err := c.recv()
		if err != nil || rpc.TypeOf(body) != rpc.TypePong {
			t.Fatalf("got %v, %v; want only the pong", rpc.TypeOf(body), err)
		}
		if st := s.Stats(); st.Requests != 2 || st.BytesIn != 300 || st.Answers != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("source", func(t *testing.T) {
		const total, chunk = 50000, 4096
		s := start(t, Config{Mode: Source, SourceBytes: total, SourceChunk: chunk, Seed: 5})
		c, err := dial(t, s, clientOpts{flags: rpc.HandshakeCRC32C})
		if err != nil {
			t.Fatal(err)
		}
		expect := func(id int64) {
			t.Helper()
			v := fakedc.NewVerifier(5)
			for got := 0; got < total; {
				body, err := c.recv()
				if err != nil {
					t.Fatal(err)
				}
				_, gid, p, err := rpc.ParseProxyAns(body)
				if err != nil || gid != id || len(p) != min(chunk, total-got) {
					t.Fatalf("answer for %d (%v), %d bytes at %d", gid, err, len(p), got)
				}
				if _, err := v.Write(p); err != nil {
					t.Fatal(err)
				}
				got += len(p)
			}
		}
		// Only the first request of an id starts the stream; the ping
		// after the second shows that nothing else was sent.
		if err := c.send(proxyReq(11, nil, payload(0, 0, 8)), proxyReq(11, nil, payload(0, 1, 8))); err != nil {
			t.Fatal(err)
		}
		expect(11)
		if err := c.send(rpc.AppendPing(nil, 1)); err != nil {
			t.Fatal(err)
		}
		if body, err := c.recv(); err != nil || rpc.TypeOf(body) != rpc.TypePong {
			t.Fatalf("got %v, %v; want the pong", rpc.TypeOf(body), err)
		}
		// RPC_CLOSE_CONN forgets the id: its next request starts anew.
		if err := c.send(rpc.AppendCloseConn(nil, 11), proxyReq(11, nil, payload(0, 2, 8))); err != nil {
			t.Fatal(err)
		}
		expect(11)
		if st := s.Stats(); st.Closes != 1 || st.Requests != 3 || st.BytesOut != 2*total {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestCloseWithOpenConns(t *testing.T) {
	s, err := Start(Config{Secret: testSecret(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, s, clientOpts{}); err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", s.Addr()) // never says anything
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := Start(Config{Secret: testSecret(0), Addr: "0.0.0.0:0"}); err == nil {
		t.Error("non-loopback address accepted")
	}
	if _, err := Start(Config{Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
}
