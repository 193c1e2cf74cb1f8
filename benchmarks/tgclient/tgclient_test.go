package tgclient_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, crypto.RSAKeyBits)
})

func randomKey() [16]byte {
	var k [16]byte
	rand.Read(k[:])
	return k
}

func startDC(t *testing.T, cfg fakedc.Config) *fakedc.Server {
	t.Helper()
	s, err := fakedc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRunThroughRelay(t *testing.T) {
	key, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	dc := startDC(t, fakedc.Config{Mode: fakedc.MTProto, Key: key})
	cases := []struct {
		name      string
		dd        bool
		transport tgclient.Transport
	}{
		{"classic/abridged", false, tgclient.Abridged},
		{"classic/intermediate", false, tgclient.Intermediate},
		{"classic/padded", false, tgclient.PaddedIntermediate},
		{"dd/padded", true, tgclient.PaddedIntermediate},
	}
	// Key exchanges are CPU-bound; run them side by side.
	t.Run("cases", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				secret := tgclient.Secret{Key: randomKey(), DD: tc.dd}
				relay := startRelay(t, dc.Addr(), secret.Key)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				err := tgclient.Run(ctx, tgclient.Config{
					ProxyAddr: relay.addr(),
					Secret:    secret,
					Transport: tc.transport,
					PublicKey: dc.PublicKey(),
					Workload:  tgclient.Workload{Seed: uint64(i)},
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	count := make(map[uint32]int)
	for _, info := range dc.Conns() {
		if info.DC != 2 || info.Err != nil {
			t.Errorf("DC saw %v, want DC 2", info)
		}
		count[info.Tag]++
	}
	want := map[uint32]int{fakedc.TagAbridged: 1, fakedc.TagIntermediate: 1, fakedc.TagPaddedIntermediate: 2}
	for tag, n := range want {
		if count[tag] != n {
			t.Errorf("DC saw %d connections with tag %#x, want %d", count[tag], tag, n)
		}
	}
}

// TestRunFakeTLSThroughRelay runs gotd's fake-TLS client (an ee secret)
// through a relay fronted by benchmarks/faketls's server side.
func TestRunFakeTLSThroughRelay(t *testing.T) {
	key, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	dc := startDC(t, fakedc.Config{Mode: fakedc.MTProto, Key: key})
	secret := tgclient.Secret{Key: randomKey(), Domain: "example.com"}
	relay := startRelayTLS(t, dc.Addr(), secret.Key, true)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = tgclient.Run(ctx, tgclient.Config{
		ProxyAddr: relay.addr(),
		Secret:    secret,
		Transport: tgclient.PaddedIntermediate,
		PublicKey: dc.PublicKey(),
		// Parts bigger than a TLS record (16 KiB) but within gotd's limit.
		Workload: tgclient.Workload{Parts: 3, PartSize: 40 << 10, Seed: 9},
	})
	if err != nil {
		t.Fatal(err)
	}
	conns := dc.Conns()
	if len(conns) == 0 {
		t.Fatal("DC saw no connection")
	}
	for _, info := range conns {
		if info.Tag != fakedc.TagPaddedIntermediate || info.Err != nil {
			t.Errorf("DC saw %v, want padded intermediate", info)
		}
	}
}

func TestRunFailsFast(t *testing.T) {
	dc := startDC(t, fakedc.Config{Mode: fakedc.Echo})
	relay := startRelay(t, dc.Addr(), randomKey())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tgclient.Run(ctx, tgclient.Config{
		ProxyAddr: relay.addr(),
		Secret:    tgclient.Secret{Key: randomKey()}, // not the relay's
		Transport: tgclient.Intermediate,
	})
	if err == nil {
		t.Fatal("Run succeeded with a wrong secret")
	}
	t.Log(err)
	if ctx.Err() != nil {
		t.Fatalf("Run waited for its deadline: %v", err)
	}
	if n := len(dc.Conns()); n != 0 {
		t.Errorf("DC saw %d connections", n)
	}

	_, err = tgclient.NewClient(tgclient.Config{
		Secret:    tgclient.Secret{DD: true},
		Transport: tgclient.Abridged,
	}, telegram.Options{})
	if err == nil {
		t.Error("dd secret with abridged accepted")
	}
	for _, bad := range []tgclient.Config{
		{Secret: tgclient.Secret{Domain: "example.com"}, Transport: tgclient.Intermediate},
		{Secret: tgclient.Secret{Domain: "example.com", DD: true}, Transport: tgclient.PaddedIntermediate},
	} {
		if _, err := tgclient.NewClient(bad, telegram.Options{}); err == nil {
			t.Errorf("%+v accepted", bad.Secret)
		}
	}
	// A part gotd would send in an oversized TLS record is refused up front.
	err = tgclient.Run(ctx, tgclient.Config{
		ProxyAddr: relay.addr(),
		Secret:    tgclient.Secret{Domain: "example.com"},
		Transport: tgclient.PaddedIntermediate,
	})
	if err == nil || !strings.Contains(err.Error(), "part size") {
		t.Errorf("ee secret with the default 128 KiB parts: %v", err)
	}
}

// dialRelay starts a relay to dc and returns a raw client connection.
func dialRelay(t *testing.T, dc *fakedc.Server, tag uint32, dcIndex int16) *tgclient.RawConn {
	t.Helper()
	key := randomKey()
	relay := startRelay(t, dc.Addr(), key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRaw(ctx, relay.addr(), key, tag, dcIndex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestDialRawEcho(t *testing.T) {
	dc := startDC(t, fakedc.Config{Mode: fakedc.Echo})
	const n = 1<<20 + 7
	tags := []uint32{fakedc.TagAbridged, fakedc.TagIntermediate, fakedc.TagPaddedIntermediate}
	for i, tag := range tags {
		c := dialRelay(t, dc, tag, int16(-i))
		errc := make(chan error, 1)
		go func() {
			_, err := io.CopyN(c, fakedc.NewPattern(uint64(i)), n)
			if err == nil {
				err = c.CloseWrite()
			}
			errc <- err
		}()
		// Everything comes back, then EOF once the half-close went round.
		v := fakedc.NewVerifier(uint64(i))
		if m, err := io.Copy(v, c); err != nil || m != n {
			t.Fatalf("tag %#x: echoed %d bytes, %v; want %d", tag, m, err, n)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	got := dc.Conns()
	if len(got) != len(tags) {
		t.Fatalf("DC saw %d connections, want %d", len(got), len(tags))
	}
	for i, info := range got {
		if info.Tag != tags[i] || info.DC != int16(-i) || info.Err != nil {
			t.Errorf("conn %d: %v, want tag %#x dc %d", i, info, tags[i], -i)
		}
	}
}

func TestDialRawSource(t *testing.T) {
	const n = 4<<20 + 1
	dc := startDC(t, fakedc.Config{Mode: fakedc.Source, SourceBytes: n, Seed: 77})
	c := dialRelay(t, dc, fakedc.TagPaddedIntermediate, 3)
	v := fakedc.NewVerifier(77)
	if _, err := io.CopyN(v, c, n); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if m, err := io.Copy(io.Discard, c); err != nil || m != 0 {
		t.Fatalf("after the stream: %d more bytes, %v; want EOF", m, err)
	}
}

func TestDialRawSink(t *testing.T) {
	dc := startDC(t, fakedc.Config{Mode: fakedc.Sink})
	c := dialRelay(t, dc, fakedc.TagAbridged, 1)
	const n = 4 << 20
	if _, err := io.CopyN(c, fakedc.NewPattern(5), n); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The sink closes after EOF, so its count is final once we see EOF too.
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if got := dc.Stats().BytesReceived; got != n {
		t.Errorf("DC received %d bytes, want %d", got, n)
	}
}

func TestDialRawWrongKey(t *testing.T) {
	dc := startDC(t, fakedc.Config{Mode: fakedc.Echo})
	relay := startRelay(t, dc.Addr(), randomKey())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tgclient.DialRaw(ctx, relay.addr(), randomKey(), fakedc.TagAbridged, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{1, 2, 3, 4})
	if m, err := c.Read(make([]byte, 4)); err == nil {
		t.Fatalf("read %d bytes through a relay with another secret", m)
	}
	if n := len(dc.Conns()); n != 0 {
		t.Errorf("DC saw %d connections", n)
	}
}

func TestTransportTags(t *testing.T) {
	for tr, want := range map[tgclient.Transport]uint32{
		tgclient.Abridged:           fakedc.TagAbridged,
		tgclient.Intermediate:       fakedc.TagIntermediate,
		tgclient.PaddedIntermediate: fakedc.TagPaddedIntermediate,
	} {
		if got := tr.Tag(); got != want {
			t.Errorf("%v: tag %#x, want %#x", tr, got, want)
		}
	}
}
