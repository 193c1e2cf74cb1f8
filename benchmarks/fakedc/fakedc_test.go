package fakedc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/mtproxy"
	"github.com/gotd/td/mtproxy/obfuscator"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/transport"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
)

var tags = []uint32{fakedc.TagAbridged, fakedc.TagIntermediate, fakedc.TagPaddedIntermediate}

func start(t *testing.T, cfg fakedc.Config) *fakedc.Server {
	t.Helper()
	s, err := fakedc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial connects the way a proxy does in direct mode: gotd's obfuscated2
// client without a secret.
func dial(t *testing.T, addr string, tag uint32, dc int) *obfuscator.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	oc := obfuscator.Obfuscated2(rand.Reader, c)
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], tag)
	if err := oc.Handshake(p, dc, mtproxy.Secret{}); err != nil {
		t.Fatal(err)
	}
	return oc
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEcho(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.Echo})
	const n = 1<<20 + 3
	for i, tag := range tags {
		c := dial(t, s.Addr(), tag, -(i + 1))
		errc := make(chan error, 1)
		go func() {
			_, err := io.CopyN(c, fakedc.NewPattern(uint64(i)), n)
			errc <- err
		}()
		v := fakedc.NewVerifier(uint64(i))
		if _, err := io.CopyN(v, c, n); err != nil {
			t.Fatalf("tag %#x: %v", tag, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	s.Close()

	got := s.Conns()
	if len(got) != len(tags) {
		t.Fatalf("%d connections recorded, want %d", len(got), len(tags))
	}
	for i, info := range got {
		if info.Tag != tags[i] || info.DC != int16(-(i+1)) || info.Err != nil {
			t.Errorf("conn %d: %v, want tag %#x dc %d", i, info, tags[i], -(i + 1))
		}
	}
	st := s.Stats()
	want := fakedc.Stats{Accepted: 3, BytesReceived: 3 * n, BytesSent: 3 * n}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestSink(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.Sink})
	c := dial(t, s.Addr(), fakedc.TagIntermediate, 2)
	const n = 3 << 20
	if _, err := io.CopyN(c, fakedc.NewPattern(1), n); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the sink to read everything", func() bool { return s.Stats().BytesReceived == n })
	if st := s.Stats(); st.BytesSent != 0 {
		t.Errorf("sink sent %d bytes", st.BytesSent)
	}
}

func TestSource(t *testing.T) {
	const n = 3<<20 + 5
	s := start(t, fakedc.Config{Mode: fakedc.Source, SourceBytes: n, Seed: 42})
	c := dial(t, s.Addr(), fakedc.TagPaddedIntermediate, 4)
	v := fakedc.NewVerifier(42)
	if _, err := io.CopyN(v, c, n); err != nil {
		t.Fatal(err)
	}

	// The stream ends but the connection stays open.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if m, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the stream: read %d bytes, %v; want a timeout", m, err)
	}
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the source to drain input", func() bool { return s.Stats().BytesReceived == 100 })
	if st := s.Stats(); st.BytesSent != n {
		t.Errorf("sent %d bytes, want %d", st.BytesSent, n)
	}
}

func TestRejectsBadHeaders(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.Echo})

	valid := make([]byte, 64)
	for i := range valid {
		valid[i] = byte(i + 1)
	}
	headers := map[string][]byte{
		"plain abridged": append([]byte{0xef}, valid[1:]...),
		"HTTP":           append([]byte("POST"), valid[4:]...),
		"TLS":            append([]byte{0x16, 0x03, 0x01, 0x02}, valid[4:]...),
		"full transport": append(append(append([]byte(nil), valid[:4]...), 0, 0, 0, 0), valid[8:]...),
		// Valid bytes, but the tag decrypts to garbage.
		"unknown tag": valid,
	}
	for name, hdr := range headers {
		c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append(hdr, 1, 2, 3, 4)); err != nil {
			t.Fatal(err)
		}
		if m, err := c.Read(make([]byte, 16)); err == nil {
			t.Errorf("%s: got %d bytes back, want the connection closed", name, m)
		}
		c.Close()
	}
	// A proper header with an unknown tag.
	c := dial(t, s.Addr(), 0x01020304, 2)
	if m, err := c.Read(make([]byte, 16)); err == nil {
		t.Errorf("unknown tag: got %d bytes back, want the connection closed", m)
	}

	waitFor(t, "all rejections", func() bool { return s.Stats().Rejected == int64(len(headers)+1) })
	for _, info := range s.Conns() {
		if info.Err == nil {
			t.Errorf("accepted %v", info)
		}
	}
}

func TestCloseEndsConnections(t *testing.T) {
	s := start(t, fakedc.Config{Mode: fakedc.Echo})
	c := dial(t, s.Addr(), fakedc.TagAbridged, 2)
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with an open connection")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
}

var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, crypto.RSAKeyBits)
})

// TestMTProtoDirect runs gotd's client against the fake DC without a proxy,
// the way Telegram Desktop connects directly: abridged inside obfuscated2
// without a secret. The other transports are covered through a relay in
// package tgclient; every run costs a second of key exchange under -race.
func TestMTProtoDirect(t *testing.T) {
	key, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, fakedc.Config{Mode: fakedc.MTProto, Key: key})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, telegram.Options{
		PublicKeys:        []telegram.PublicKey{s.PublicKey()},
		DC:                2,
		DCList:            dcs.List{Options: []tg.DCOption{{ID: 2, IPAddress: host, Port: portNum}}},
		Resolver:          dcs.Plain(dcs.PlainOptions{Protocol: transport.Abridged, Obfuscated: true}),
		NoUpdates:         true,
		CompressThreshold: -1,
	})
	err = client.Run(ctx, func(ctx context.Context) error {
		if err := tgclient.Exercise(ctx, client.API(), 2, tgclient.Workload{Seed: 9}); err != nil {
			return err
		}
		// The upload check must be able to fail.
		_, err := client.API().UploadSaveFilePart(ctx, &tg.UploadSaveFilePartRequest{FileID: 9, Bytes: make([]byte, 1024)})
		if !tgerr.Is(err, "FILE_PART_CORRUPT") {
			t.Errorf("corrupt part: %v, want FILE_PART_CORRUPT", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Conns()
	if len(got) != 1 || got[0].Tag != fakedc.TagAbridged || got[0].DC != 2 || got[0].Err != nil {
		t.Errorf("connections %v, want one abridged to DC 2", got)
	}
}
