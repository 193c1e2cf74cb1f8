package faketls

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

func TestHelloLengthIncremental(t *testing.T) {
	rec := signedHello(t, 1, "example.com", 1800, testSecret, 1)
	prev := 0
	for k := 0; k <= len(rec); k++ {
		n, err := HelloLength(rec[:k])
		if err != nil {
			t.Fatalf("after %d bytes: %v", k, err)
		}
		if n < prev || n > len(rec) || (k < len(rec) && n <= k) {
			t.Fatalf("after %d bytes: n = %d (before %d)", k, n, prev)
		}
		if k >= recordHeaderLen && n != len(rec) {
			t.Fatalf("after %d bytes: n = %d, want %d once the header is in", k, n, len(rec))
		}
		prev = n
	}
	// Bytes after the hello are not counted.
	if n, err := HelloLength(append(rec, 0x14, 0x03)); n != len(rec) || err != nil {
		t.Fatalf("with trailing bytes: %d, %v", n, err)
	}
}

func TestHelloLengthRejects(t *testing.T) {
	valid := signedHello(t, 2, "example.com", 600, testSecret, 1)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	for _, tc := range []struct {
		name string
		buf  []byte
	}{
		{"obfuscated2", []byte{0xef}},
		{"HTTP", []byte("GET / HTTP/1.1\r\n")},
		{"TLS 1.2 record version", []byte{0x16, 0x03, 0x03}},
		{"application data", []byte{0x17, 0x03, 0x01, 0x02, 0x00}},
		{"empty record", []byte{0x16, 0x03, 0x01, 0x00, 0x00}},
		{"record over 16384", []byte{0x16, 0x03, 0x01, 0x40, 0x01}},
		{"ServerHello", mod(func(b []byte) []byte { b[5] = 0x02; return b[:6] })},
		{"too short", unhex(t, vectorHello)},
		{"record longer than its message", mod(func(b []byte) []byte { b[8]--; return b })},
		{"message over 16384", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x40, 0x01}},
		{"11 fragments", fragment(valid, 11)},
	} {
		n, err := HelloLength(tc.buf)
		if !errors.Is(err, ErrNotHello) {
			t.Errorf("%s: HelloLength = %d, %v; want ErrNotHello", tc.name, n, err)
		}
	}
}

// fragment splits a single-record hello into k handshake records of
// similar size.
func fragment(rec []byte, k int) []byte {
	body := rec[recordHeaderLen:]
	var out []byte
	for i := range k {
		part := body[i*len(body)/k : (i+1)*len(body)/k]
		out = append(out, 0x16, 0x03, 0x01, byte(len(part)>>8), byte(len(part)))
		out = append(out, part...)
	}
	return out
}

func TestFragmentedHello(t *testing.T) {
	rec := signedHello(t, 3, "example.com", 1800, testSecret, 1)
	v := NewVerifier([][16]byte{testSecret})
	for _, k := range []int{2, 3, 10, 600} { // 600: fragments of 3 bytes split the handshake header
		frags := fragment(rec, k)
		for i := range len(frags) {
			n, err := HelloLength(frags[:i])
			if err != nil || n <= i {
				if k <= maxFragments {
					t.Fatalf("%d fragments, %d bytes in: %d, %v", k, i, n, err)
				}
				break
			}
		}
		n, err := HelloLength(frags)
		if k > maxFragments {
			if err == nil {
				t.Fatalf("%d fragments accepted", k)
			}
			continue
		}
		if err != nil || n != len(frags) {
			t.Fatalf("%d fragments: HelloLength = %d, %v; want %d", k, n, err, len(frags))
		}
		orig := bytes.Clone(frags)
		joined, err := Reassemble(make([]byte, 0, 5+MaxHelloLen), frags)
		if err != nil || !bytes.Equal(joined, rec) {
			t.Fatalf("%d fragments: Reassemble = %v, equal %v", k, err, bytes.Equal(joined, rec))
		}
		if !bytes.Equal(frags, orig) {
			t.Fatal("Reassemble modified its input")
		}
		if _, _, err := v.Verify(joined); err != nil {
			t.Fatal(err)
		}
	}
	// A single record comes back as is.
	if same, err := Reassemble(nil, rec); err != nil || &same[0] != &rec[0] {
		t.Fatalf("Reassemble of one record copied it (%v)", err)
	}
}

// helloWith builds a hello with the given session id and extensions
// block (nil for none) around the vector's fields.
func helloWith(sid []byte, suites []uint16, exts []byte) []byte {
	w := builder{}
	w.raw(helloPrefix[:]...)
	w.vec(2, func() {
		w.u8(1)
		w.vec(3, func() {
			w.u16(0x0303)
			w.raw(make([]byte, 32)...)
			w.vec(1, func() { w.raw(sid...) })
			w.vec(2, func() { w.u16s(suites...) })
			w.raw(1, 0)
			if exts != nil {
				w.vec(2, func() { w.raw(exts...) })
			}
		})
	})
	return w.b
}

func sniExt(name string) []byte {
	w := builder{}
	w.ext(extServerName, func() {
		w.vec(2, func() { w.u8(0); w.vec(2, func() { w.raw([]byte(name)...) }) })
	})
	return w.b
}

func TestParseHello(t *testing.T) {
	tls13 := []uint16{0x1a1a, 0x1302, 0x1301}
	for _, sidLen := range []int{0, 1, 16, 32} {
		sid := bytes.Repeat([]byte{0xab}, sidLen)
		h, err := ParseHello(helloWith(sid, tls13, sniExt("a.example")))
		if err != nil || !bytes.Equal(h.SessionID(), sid) || h.CipherSuite != 0x1302 || string(h.ServerName) != "a.example" {
			t.Fatalf("session id of %d: %+v, %v", sidLen, h, err)
		}
	}
	h, err := ParseHello(helloWith(nil, tls13, nil))
	if err != nil || h.ServerName != nil {
		t.Fatalf("no extensions: %+v, %v", h, err)
	}
	h, err = ParseHello(helloWith(nil, tls13, []byte{0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04}))
	if err != nil || h.ServerName != nil {
		t.Fatalf("no SNI: %+v, %v", h, err)
	}

	// The suites 13 01 | 01 with the list length patched to 3.
	oddSuites := helloWith(nil, []uint16{0x1301, 0x0100}, nil)
	oddSuites[45] = 3

	twoNames := sniExt("a")
	twoNames = append(twoNames[:4:4], 0, 8, 0, 0, 1, 'a', 0, 0, 1, 'b')
	twoNames[3] = 10
	for _, tc := range []struct {
		name string
		rec  []byte
	}{
		{"session id of 33", helloWith(make([]byte, 33), tls13, nil)},
		{"odd suites", oddSuites},
		{"only GREASE", helloWith(nil, []uint16{0x0a0a, 0xfafa}, nil)},
		{"NUL in SNI", helloWith(nil, tls13, sniExt("a\x00b"))},
		{"empty SNI", helloWith(nil, tls13, sniExt(""))},
		{"two host names", helloWith(nil, tls13, twoNames)},
		{"two SNI extensions", helloWith(nil, tls13, append(sniExt("a"), sniExt("b")...))},
		{"truncated extension", helloWith(nil, tls13, []byte{0x00, 0x2b, 0x00, 0x05, 0x02})},
		{"trailing byte", append(helloWith(nil, tls13, nil), 0)},
	} {
		if _, err := ParseHello(tc.rec); !errors.Is(err, ErrBadHello) {
			t.Errorf("%s: %v, want ErrBadHello", tc.name, err)
		}
	}
}

// TestGoTLSClient captures the hello of Go's crypto/tls client, which must
// be recognised as a ClientHello but fail the digest: that is how a probe
// or a browser gets relayed to the real site.
func TestGoTLSClient(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	go tls.Client(client, &tls.Config{ServerName: "example.com", InsecureSkipVerify: true}).Handshake()
	server.SetDeadline(time.Now().Add(5 * time.Second))
	var buf []byte
	chunk := make([]byte, 100)
	n := 0
	for {
		var err error
		if n, err = HelloLength(buf); err != nil {
			t.Fatalf("after %d bytes: %v", len(buf), err)
		}
		if n <= len(buf) {
			break
		}
		k, err := server.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, chunk[:k]...)
	}
	if n != len(buf) {
		t.Fatalf("hello of %d bytes, %d received", n, len(buf))
	}
	t.Logf("Go's ClientHello: %d bytes", n)
	h, err := ParseHello(buf)
	if err != nil {
		t.Fatal(err)
	}
	// Go lists its TLS 1.2 suites first, so the official proxy would also
	// refuse it for its cipher suite.
	if string(h.ServerName) != "example.com" || len(h.SessionID()) != 32 || h.CipherSuite == 0 {
		t.Fatalf("parsed SNI %q, session id %x, suite %#04x", h.ServerName, h.SessionID(), h.CipherSuite)
	}
	if _, _, err := NewVerifier([][16]byte{testSecret}).Verify(buf); err != ErrDigest {
		t.Fatalf("Verify = %v, want ErrDigest", err)
	}
}

// TestChromeHello checks the probe's hello over many random draws: it
// parses, is 517 bytes, and never repeats an extension (a server would
// refuse it).
func TestChromeHello(t *testing.T) {
	for seed := range uint64(500) {
		rec, err := appendChromeHello(nil, detRand(seed), "example.com", probeHelloLen)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseHello(rec); err != nil || len(rec) != probeHelloLen {
			t.Fatalf("seed %d: %d bytes, %v", seed, len(rec), err)
		}
		c := cursor(rec[76:])
		c.vec16() // suites
		c.vec8()  // compression
		exts, _ := c.vec16()
		seen := map[uint16]bool{}
		for !exts.empty() {
			typ, _ := exts.u16()
			exts.vec16()
			if seen[typ] {
				t.Fatalf("seed %d: extension %#04x twice", seed, typ)
			}
			seen[typ] = true
		}
	}
}
