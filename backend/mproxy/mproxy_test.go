package mproxy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/cipher/cbc"
	"github.com/mtproxy-go/mtproxy/cipher/mtkeys"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// recorder is a Handler that records everything.
type recorder struct {
	ready  int
	ans    map[int64][]byte
	flags  map[int64]uint32
	acks   map[int64]uint32
	closed []int64
	n      int
	// roomless counts answers without the checksum's room after them.
	roomless int
}

func newRecorder() *recorder {
	return &recorder{ans: map[int64][]byte{}, flags: map[int64]uint32{}, acks: map[int64]uint32{}}
}

func (r *recorder) Ready() { r.ready++ }
func (r *recorder) ProxyAns(id int64, flags uint32, msg []byte) {
	if cap(msg) < len(msg)+4 {
		r.roomless++
	}
	r.ans[id] = append(r.ans[id], msg[rpc.ProxyAnsHeaderLen:]...)
	r.flags[id] = flags
	r.n++
}
func (r *recorder) SimpleAck(id int64, token uint32) { r.acks[id] = token }
func (r *recorder) CloseExt(id int64)                { r.closed = append(r.closed, id) }

// nopHandler counts answers without allocating.
type nopHandler struct{ n, bytes int }

func (h *nopHandler) Ready()                                 {}
func (h *nopHandler) ProxyAns(_ int64, _ uint32, msg []byte) { h.n++; h.bytes += len(msg) }
func (h *nopHandler) SimpleAck(int64, uint32)                {}
func (h *nopHandler) CloseExt(int64)                         {}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memMP plays the middle proxy in memory.
type memMP struct {
	t        testing.TB
	secret   []byte
	proxy    netip.AddrPort // the proxy's address as the MP sees it
	mp       netip.AddrPort
	nonce    [16]byte
	time     uint32 // 0: the request's
	selector [4]byte
	noCRC32C bool

	r      rpc.FrameReader
	enc    *cbc.Encrypter
	dec    *cbc.Decrypter
	crc32c bool
	seq    int32
}

func newMemMP(t testing.TB, secret []byte) *memMP {
	return &memMP{
		t: t, secret: secret,
		proxy:    netip.MustParseAddrPort("203.0.113.5:40000"),
		mp:       netip.MustParseAddrPort("149.154.175.50:8888"),
		nonce:    [16]byte{0: 0xaa, 15: 0x55},
		selector: rpc.KeySelector(secret),
	}
}

// answerNonce reads the proxy's nonce frame and returns the answer.
func (m *memMP) answerNonce(in []byte) []byte {
	m.t.Helper()
	body, rest, err := m.r.Next(in)
	if err != nil || body == nil || len(rest) != 0 {
		m.t.Fatalf("nonce frame: %v %x %x", err, body, rest)
	}
	req, err := rpc.ParseNonce(body)
	if err != nil {
		m.t.Fatal(err)
	}
	keys, err := mtkeys.Derive(&mtkeys.Params{
		ClientNonce: req.Nonce, ServerNonce: m.nonce, ClientTime: req.Time,
		Client: m.proxy, Server: m.mp, Secret: m.secret,
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.enc = cbc.NewEncrypter(&keys.Server.Key, &keys.Server.IV)
	m.dec = cbc.NewDecrypter(&keys.Client.Key, &keys.Client.IV)
	ts := m.time
	if ts == 0 {
		ts = req.Time
	}
	ans := rpc.Nonce{KeySelector: m.selector, Schema: rpc.SchemaAES, Time: ts, Nonce: m.nonce}
	return rpc.AppendFrame(nil, rpc.SeqNonce, rpc.AppendNonce(nil, &ans), false)
}

// read decrypts ciphertext from the proxy and returns copies of its frames.
func (m *memMP) read(ct []byte) [][]byte {
	m.t.Helper()
	if len(ct)%16 != 0 {
		m.t.Fatalf("proxy output of %d bytes, not whole blocks", len(ct))
	}
	plain := make([]byte, len(ct))
	m.dec.CryptBlocks(plain, ct)
	var out [][]byte
	for {
		body, rest, err := m.r.Next(plain)
		if err != nil {
			m.t.Fatalf("reading proxy frames: %v", err)
		}
		if body == nil {
			return out
		}
		out = append(out, bytes.Clone(body))
		plain = rest
	}
}

// answerHandshake reads the proxy's handshake and returns the answer.
func (m *memMP) answerHandshake(ct []byte) []byte {
	m.t.Helper()
	bodies := m.read(ct)
	if len(bodies) != 1 {
		m.t.Fatalf("%d frames in the handshake", len(bodies))
	}
	req, err := rpc.ParseHandshake(bodies[0])
	if err != nil {
		m.t.Fatal(err)
	}
	ans := rpc.Handshake{Sender: rpc.PID{IP: 0x7f000001, Port: 8888, PID: 1}, Peer: req.Sender}
	if req.Flags&rpc.HandshakeCRC32C != 0 && !m.noCRC32C {
		ans.Flags = rpc.HandshakeCRC32C
	}
	out := m.send(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &ans))
	if ans.Flags != 0 {
		m.crc32c = true
		m.r.UseCRC32C()
	}
	return out
}

// send appends an encrypted, padded frame.
func (m *memMP) send(dst []byte, seq int32, body []byte) []byte {
	start := len(dst)
	dst = rpc.Pad(rpc.AppendFrame(dst, seq, body, m.crc32c && seq >= 0))
	m.enc.CryptBlocks(dst[start:], dst[start:])
	return dst
}

func (m *memMP) sendNext(dst []byte, body []byte) []byte {
	dst = m.send(dst, m.seq, body)
	m.seq++
	return dst
}

func testSecret() []byte {
	s := make([]byte, 128)
	for i := range s {
		s[i] = byte(7*i + 1)
	}
	return s
}

// handshake runs a Conn against m to the ready state.
func handshake(t testing.TB, m *memMP, h Handler, offer bool) *Conn {
	t.Helper()
	c := New(Config{
		Secret: testSecret(), Local: m.proxy, Remote: m.mp,
		PID: rpc.PID{IP: 0xcb007105, Port: 2398, PID: 77, Time: 1700000000}, OfferCRC32C: offer,
		Handler: h,
	})
	out, err := c.Feed(m.answerNonce(c.Start(nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = c.Feed(m.answerHandshake(out), nil)
	if err != nil || len(out) != 0 || !c.Ready() {
		t.Fatalf("handshake answer: err %v, out %x, ready %v", err, out, c.Ready())
	}
	return c
}

// TestVectors checks the first two frames against protocol.md §11.3.
func TestVectors(t *testing.T) {
	const (
		nonceFrame = `2c000000 feffffff aa87cb7a 01080f16 01000000 00000065
			bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 92794583`
		hsPlain = `2c000000ffffffff f5ee8276 00000000 0500710bc800000000006500
			0500710bc800000000006500 351b5556`
		hsCipher = `0a07c50dedc0aff66ea8fa731ec7cdf7d79dc6cebf79520f6e97534c42cc3cb3
			4ff34e4fb08fe18373b90936a76e71b7`
	)
	hs, err := rpc.ParseHandshake(unhex(t, hsPlain)[8:40])
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{
		Secret:  testSecret(),
		Local:   netip.MustParseAddrPort("203.0.113.5:40000"),
		Remote:  netip.MustParseAddrPort("149.154.175.50:8888"),
		PID:     hs.Sender,
		Peer:    hs.Peer,
		Now:     func() time.Time { return time.Unix(0x65000000, 0) },
		Rand:    bytes.NewReader(bytes.Repeat([]byte{0xbb}, 16)),
		Handler: newRecorder(),
	})
	prefix := []byte("keep")
	out := c.Start(bytes.Clone(prefix))
	if want := append(bytes.Clone(prefix), unhex(t, nonceFrame)...); !bytes.Equal(out, want) {
		t.Fatalf("RPC_NONCE frame\n got %x\nwant %x", out, want)
	}
	ans := rpc.Nonce{KeySelector: rpc.KeySelector(testSecret()), Schema: rpc.SchemaAES, Time: 0x65000000 + 30}
	for i := range ans.Nonce {
		ans.Nonce[i] = 0xaa
	}
	out, err = c.Feed(rpc.AppendFrame(nil, rpc.SeqNonce, rpc.AppendNonce(nil, &ans), false), bytes.Clone(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(prefix), unhex(t, hsCipher)...); !bytes.Equal(out, want) {
		t.Fatalf("RPC_HANDSHAKE ciphertext\n got %x\nwant %x", out, want)
	}
}

func TestSessionInMemory(t *testing.T) {
	for _, tc := range []struct {
		name          string
		offer, refuse bool
		wantCRC32C    bool
		chunk         int
	}{
		{"crc32", false, false, false, 0},
		{"crc32c", true, false, true, 0},
		{"crc32c-refused", true, true, false, 0},
		{"bytewise", true, false, true, 1},
		{"chunks7", false, false, false, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemMP(t, testSecret())
			m.noCRC32C = tc.refuse
			h := newRecorder()
			c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, OfferCRC32C: tc.offer, Handler: h})
			feed := func(in []byte) []byte {
				t.Helper()
				var out []byte
				var err error
				if tc.chunk == 0 {
					out, err = c.Feed(in, nil)
				} else {
					for len(in) > 0 {
						k := min(tc.chunk, len(in))
						out, err = c.Feed(in[:k], out)
						if err != nil {
							break
						}
						in = in[k:]
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			out := feed(m.answerNonce(c.Start(nil)))
			if out = feed(m.answerHandshake(out)); len(out) != 0 || h.ready != 1 || c.CRC32C() != tc.wantCRC32C {
				t.Fatalf("after handshake: out %x ready %d crc32c %v", out, h.ready, c.CRC32C())
			}

			// Requests for several clients.
			var ct []byte
			var err error
			ids := []int64{1, -7, 1 << 40, 3}
			for i, id := range ids {
				req := rpc.ProxyReq{Flags: rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagAbridged, ConnID: id,
					Client: netip.MustParseAddrPort("198.51.100.9:5555"), Proxy: netip.MustParseAddrPort("203.0.113.5:443"),
					AdTag: bytes.Repeat([]byte{byte(i)}, 16)}
				if ct, err = c.AppendProxyReq(ct, &req, bytes.Repeat([]byte{byte(i + 1)}, 4*(i+7))); err != nil {
					t.Fatal(err)
				}
			}
			if ct, err = c.AppendCloseConn(ct, 99); err != nil {
				t.Fatal(err)
			}
			bodies := m.read(ct)
			if len(bodies) != len(ids)+1 {
				t.Fatalf("%d frames, want %d", len(bodies), len(ids)+1)
			}
			var back []byte
			for i, b := range bodies[:len(ids)] {
				r, p, err := rpc.ParseProxyReq(b)
				if err != nil || r.ConnID != ids[i] || !bytes.Equal(r.AdTag, bytes.Repeat([]byte{byte(i)}, 16)) ||
					!bytes.Equal(p, bytes.Repeat([]byte{byte(i + 1)}, 4*(i+7))) {
					t.Fatalf("request %d: %v %+v %x", i, err, r, p)
				}
				back = m.sendNext(back, append(rpc.AppendProxyAns(nil, 0, r.ConnID), p...))
			}
			if id, err := rpc.ParseCloseConn(bodies[len(ids)]); err != nil || id != 99 {
				t.Fatalf("close conn: %d %v", id, err)
			}
			back = m.sendNext(back, rpc.AppendSimpleAck(nil, 3, 0xdeadbeef))
			back = m.sendNext(back, rpc.AppendPing(nil, 0x1122334455667788))
			back = m.sendNext(back, rpc.AppendPong(nil, 5))
			back = m.sendNext(back, []byte{1, 2, 3, 4}) // unknown type: ignored
			back = m.sendNext(back, rpc.AppendCloseExt(nil, -7))
			out = feed(back)
			for i, id := range ids {
				if want := bytes.Repeat([]byte{byte(i + 1)}, 4*(i+7)); !bytes.Equal(h.ans[id], want) {
					t.Errorf("answer for %d: %x, want %x", id, h.ans[id], want)
				}
			}
			if h.roomless != 0 {
				t.Errorf("%d answers without room for the checksum after them", h.roomless)
			}
			if h.acks[3] != 0xdeadbeef || len(h.closed) != 1 || h.closed[0] != -7 {
				t.Errorf("acks %v closed %v", h.acks, h.closed)
			}
			pong := m.read(out)
			if len(pong) != 1 {
				t.Fatalf("%d frames in reply to a ping", len(pong))
			}
			if id, err := rpc.ParsePong(pong[0]); err != nil || id != 0x1122334455667788 {
				t.Fatalf("pong %d %v", id, err)
			}
		})
	}
}

func TestWrongSecret(t *testing.T) {
	t.Run("selector", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		m.selector = [4]byte{9, 9, 9, 9}
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, Handler: newRecorder()})
		_, err := c.Feed(m.answerNonce(c.Start(nil)), nil)
		if !errors.Is(err, ErrWrongSecret) || !strings.Contains(err.Error(), "key selector") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("keys", func(t *testing.T) {
		other := testSecret()
		other[100] ^= 1 // same key selector, other keys
		m := newMemMP(t, other)
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, Handler: newRecorder()})
		if _, err := c.Feed(m.answerNonce(c.Start(nil)), nil); err != nil {
			t.Fatal(err)
		}
		// The MP could not decrypt our handshake either; answer blindly.
		ans := rpc.Handshake{}
		_, err := c.Feed(m.send(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &ans)), nil)
		if !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		if _, err2 := c.Feed([]byte{1}, nil); err2 != err {
			t.Fatalf("error not final: %v", err2)
		}
	})
	t.Run("eof", func(t *testing.T) {
		c := New(Config{Secret: testSecret(), Handler: newRecorder()})
		c.Start(nil)
		if err := c.EOF(); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHandshakeChecks(t *testing.T) {
	t.Run("skew", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		now := time.Unix(1700000000, 0)
		m.time = uint32(now.Unix()) + 31
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, Now: func() time.Time { return now }, Handler: newRecorder()})
		if _, err := c.Feed(m.answerNonce(c.Start(nil)), nil); !errors.Is(err, ErrHandshake) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("trailing", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, Handler: newRecorder()})
		if _, err := c.Feed(append(m.answerNonce(c.Start(nil)), 4, 0, 0, 0), nil); !errors.Is(err, ErrHandshake) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("peer", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, PID: rpc.PID{IP: 1, Port: 2}, Handler: newRecorder()})
		out, err := c.Feed(m.answerNonce(c.Start(nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		m.read(out)
		ans := rpc.Handshake{Peer: rpc.PID{IP: 5, Port: 2}}
		if _, err = c.Feed(m.send(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &ans)), nil); !errors.Is(err, ErrHandshake) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("crc32c-unoffered", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := New(Config{Secret: testSecret(), Local: m.proxy, Remote: m.mp, Handler: newRecorder()})
		out, _ := c.Feed(m.answerNonce(c.Start(nil)), nil)
		m.read(out)
		ans := rpc.Handshake{Flags: rpc.HandshakeCRC32C}
		if _, err := c.Feed(m.send(nil, rpc.SeqHandshake, rpc.AppendHandshake(nil, &ans)), nil); !errors.Is(err, ErrHandshake) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not-ready", func(t *testing.T) {
		c := New(Config{Secret: testSecret(), Handler: newRecorder()})
		c.Start(nil)
		if _, err := c.AppendProxyReq(nil, &rpc.ProxyReq{}, nil); !errors.Is(err, ErrNotReady) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestStreamErrors(t *testing.T) {
	t.Run("sequence", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := handshake(t, m, newRecorder(), true)
		m.seq = 1 // skip 0
		if _, err := c.Feed(m.sendNext(nil, rpc.AppendPong(nil, 1)), nil); !errors.Is(err, ErrProtocol) || !errors.Is(err, rpc.ErrSequence) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("crc", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := handshake(t, m, newRecorder(), true)
		m.crc32c = false // CRC-32 where CRC-32C was agreed
		if _, err := c.Feed(m.sendNext(nil, rpc.AppendPong(nil, 1)), nil); !errors.Is(err, rpc.ErrChecksum) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("packet", func(t *testing.T) {
		m := newMemMP(t, testSecret())
		c := handshake(t, m, newRecorder(), false)
		if _, err := c.AppendProxyReq(nil, &rpc.ProxyReq{ConnID: 1}, []byte{1, 2, 3}); !errors.Is(err, ErrPacket) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestZeroAllocs(t *testing.T) {
	m := newMemMP(t, testSecret())
	h := &nopHandler{}
	c := handshake(t, m, h, true)
	req := rpc.ProxyReq{Flags: rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagIntermediate, ConnID: 42,
		Client: netip.MustParseAddrPort("198.51.100.9:5555"), Proxy: netip.MustParseAddrPort("203.0.113.5:443"),
		AdTag: make([]byte, 16)}
	packet := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	var err error
	if n := testing.AllocsPerRun(200, func() {
		if buf, err = c.AppendProxyReq(buf[:0], &req, packet); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendProxyReq: %v allocs per run", n)
	}

	const runs = 200
	frames := make([][]byte, runs+1)
	body := append(rpc.AppendProxyAns(nil, 0, 42), packet...)
	for i := range frames {
		frames[i] = m.sendNext(nil, body)
	}
	c.Feed(frames[0], nil) // grows the plaintext buffer
	i := 1
	if n := testing.AllocsPerRun(runs-1, func() {
		if buf, err = c.Feed(frames[i], buf[:0]); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Errorf("Feed of a PROXY_ANS: %v allocs per run", n)
	}
	if h.n != runs+1 {
		t.Errorf("%d answers, want %d", h.n, runs+1)
	}
}
