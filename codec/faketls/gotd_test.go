package faketls

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	gotd "github.com/gotd/td/mtproxy"
	gotdtls "github.com/gotd/td/mtproxy/faketls"
)

// TestGotdClient runs gotd's fake-TLS client, an independent
// implementation, against this package's server side: its ClientHello
// must verify, our reply must pass its HMAC check, and data must cross in
// both directions.
func TestGotdClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// Messages stay under 16 KB: gotd puts each in one record.
	var msgs [][]byte
	total := 0
	for _, n := range []int{64 + 8, 1, 2878, 16000, 300} {
		m := make([]byte, n)
		rand.Read(m)
		msgs = append(msgs, m)
		total += n
	}
	want := bytes.Join(msgs, nil)

	done := make(chan error, 1)
	go func() { done <- serveOne(t, ln, total) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	client := gotdtls.NewFakeTLS(rand.Reader, conn)
	secret := gotd.Secret{Secret: testSecret[:], Type: gotd.TLS, Tag: 0xee, CloakHost: "example.com"}
	if err := client.Handshake([4]byte{0xdd, 0xdd, 0xdd, 0xdd}, 2, secret); err != nil {
		t.Fatalf("gotd refuses our reply: %v", err)
	}
	for _, m := range msgs {
		if _, err := client.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	// The server echoes everything back in records of up to 16 KB.
	got := make([]byte, total)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs from what was sent")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// serveOne accepts one connection on ln and plays the proxy with this
// package as an event loop would, reading in small chunks: handshake,
// then total payload bytes in, echoed back.
func serveOne(t *testing.T, ln net.Listener, total int) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	var buf []byte
	chunk := make([]byte, 1000)
	read := func() error {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		return err
	}
	n := 0
	for {
		if n, err = HelloLength(buf); err != nil {
			return err
		}
		if n <= len(buf) {
			break
		}
		if err := read(); err != nil {
			return err
		}
	}
	t.Logf("gotd's ClientHello: %d bytes", n)
	rec, err := Reassemble(nil, buf[:n])
	if err != nil {
		return err
	}
	h, err := ParseHello(rec)
	if err != nil {
		return err
	}
	if string(h.ServerName) != "example.com" {
		t.Errorf("SNI %q", h.ServerName)
	}
	secrets := [][16]byte{{1, 2, 3}, testSecret}
	idx, ts, err := NewVerifier(secrets).Verify(rec)
	if err != nil {
		return err
	}
	if idx != 1 {
		t.Errorf("matched secret %d, want 1", idx)
	}
	now := time.Now()
	cache := NewReplayCache(ReplayConfig{}, now)
	if err := cache.CheckTime(ts, now); err != nil {
		return err
	}
	if err := cache.Add(h.Random, now); err != nil {
		return err
	}
	shape, err := DefaultShape(rand.Reader)
	if err != nil {
		return err
	}
	reply, err := AppendServerHello(nil, &h, secrets[idx], shape, rand.Reader)
	if err != nil {
		return err
	}
	if _, err := conn.Write(reply); err != nil {
		return err
	}

	buf = buf[n:]
	var rr RecordReader
	var payload []byte
	for {
		for len(buf) > 0 {
			var p []byte
			if p, buf, err = rr.Next(buf); err != nil {
				return err
			}
			payload = append(payload, p...)
		}
		if len(payload) >= total {
			break
		}
		if err := read(); err != nil {
			return err
		}
	}
	iov, _ := AppendRecords(nil, nil, payload)
	_, err = (*net.Buffers)(&iov).WriteTo(conn)
	return err
}
