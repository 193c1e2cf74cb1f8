package mproxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// session drives a Conn over a real TCP connection to fakeme; a goroutine
// pumps the socket's bytes to the test goroutine, which owns the Conn.
type session struct {
	t        *testing.T
	nc       net.Conn
	c        *Conn
	h        *recorder
	in       chan []byte
	bytewise bool
}

func startFakeme(t *testing.T, cfg fakeme.Config) *fakeme.Server {
	t.Helper()
	srv, err := fakeme.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func dial(t *testing.T, srv *fakeme.Server, secret []byte, offer, bytewise bool) *session {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	s := &session{t: t, nc: nc, h: newRecorder(), in: make(chan []byte, 64), bytewise: bytewise}
	s.c = New(Config{
		Secret:      secret,
		Local:       nc.LocalAddr().(*net.TCPAddr).AddrPort(),
		Remote:      nc.RemoteAddr().(*net.TCPAddr).AddrPort(),
		PID:         rpc.PID{IP: 0x7f000001, Port: 1, PID: 2, Time: uint32(time.Now().Unix())},
		OfferCRC32C: offer,
		Handler:     s.h,
	})
	go func() {
		defer close(s.in)
		for {
			buf := make([]byte, 1+len(s.in)*100) // vary the read sizes
			n, err := nc.Read(buf)
			if n > 0 {
				s.in <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	s.write(s.c.Start(nil))
	return s
}

func (s *session) write(b []byte) {
	s.t.Helper()
	if len(b) == 0 {
		return
	}
	if _, err := s.nc.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

// run feeds the server's bytes to the Conn until done reports true; it
// returns the Conn's error, or its EOF error if the server hangs up.
func (s *session) run(done func() bool) error {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	var out []byte
	for !done() {
		select {
		case chunk, ok := <-s.in:
			if !ok {
				return s.c.EOF()
			}
			var err error
			if s.bytewise {
				for i := range chunk {
					if out, err = s.c.Feed(chunk[i:i+1], out[:0]); err != nil {
						return err
					}
					s.write(out)
				}
			} else {
				if out, err = s.c.Feed(chunk, out[:0]); err != nil {
					return err
				}
				s.write(out)
			}
		case <-timeout:
			return errors.New("timeout")
		}
	}
	return nil
}

func TestFakeme(t *testing.T) {
	for _, tc := range []struct {
		name            string
		offer, noCRC32C bool
		bytewise        bool
		wantCRC32C      bool
	}{
		{"crc32", false, false, false, false},
		{"crc32c", true, false, false, true},
		{"crc32c-declined", true, true, false, false},
		{"bytewise", true, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := testSecret()
			srv := startFakeme(t, fakeme.Config{Secret: secret, Mode: fakeme.Echo, NoCRC32C: tc.noCRC32C})
			s := dial(t, srv, secret, tc.offer, tc.bytewise)
			if err := s.run(s.c.Ready); err != nil {
				t.Fatal(err)
			}
			if s.c.CRC32C() != tc.wantCRC32C {
				t.Fatalf("CRC32C = %v, want %v", s.c.CRC32C(), tc.wantCRC32C)
			}

			// Several clients, interleaved, packets of varied sizes.
			ids := []int64{11, 1 << 33, -5, 77, 123456789}
			want := map[int64][]byte{}
			var out []byte
			var err error
			sent := 0
			for round := range 3 {
				for i, id := range ids {
					p := make([]byte, 4*(1+(i*37+round*101)%600))
					for j := range p {
						p[j] = byte(int(id) + j*(round+1) + i)
					}
					want[id] = append(want[id], p...)
					req := rpc.ProxyReq{Flags: rpc.FlagMagic | rpc.FlagExtMode2 | rpc.FlagIntermediate, ConnID: id,
						Client: netip.MustParseAddrPort("198.51.100.7:40001"), Proxy: netip.MustParseAddrPort("127.0.0.1:443")}
					if out, err = s.c.AppendProxyReq(out, &req, p); err != nil {
						t.Fatal(err)
					}
					sent++
				}
				s.write(out)
				out = out[:0]
			}
			if err := s.run(func() bool { return s.h.n == sent }); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if s.h.roomless != 0 {
					t.Errorf("%d answers without room for the checksum after them", s.h.roomless)
				}
				if !bytes.Equal(s.h.ans[id], want[id]) {
					t.Errorf("id %d: answers differ: got %d bytes, want %d", id, len(s.h.ans[id]), len(want[id]))
				}
			}
			if len(s.h.ans) != len(ids) {
				t.Errorf("answers for %d ids, want %d", len(s.h.ans), len(ids))
			}

			// Close one client; the server forgets it.
			if out, err = s.c.AppendCloseConn(out[:0], ids[0]); err != nil {
				t.Fatal(err)
			}
			s.write(out)
			deadline := time.Now().Add(5 * time.Second)
			for srv.Stats().Closes != 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			st := srv.Stats()
			if st.Closes != 1 || st.Requests != int64(sent) || st.Errors != 0 || st.HandshakesOK != 1 {
				t.Errorf("server stats %+v", st)
			}
		})
	}
}

func TestFakemeWrongSecret(t *testing.T) {
	good := testSecret()
	for _, tc := range []struct {
		name  string
		alter func([]byte)
	}{
		{"selector", func(s []byte) { s[0] ^= 0xff }},
		{"same-selector", func(s []byte) { s[64] ^= 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFakeme(t, fakeme.Config{Secret: good, Mode: fakeme.Echo, HandshakeTimeout: 2 * time.Second})
			bad := bytes.Clone(good)
			tc.alter(bad)
			s := dial(t, srv, bad, true, false)
			err := s.run(func() bool { return false })
			if !errors.Is(err, ErrWrongSecret) {
				t.Fatalf("err = %v, want ErrWrongSecret", err)
			}
			t.Log(err)
			if s.c.Ready() {
				t.Fatal("ready with a wrong secret")
			}
		})
	}
}
