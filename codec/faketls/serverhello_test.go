package faketls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestAppendServerHello(t *testing.T) {
	h, err := ParseHello(vectorRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range []Shape{
		{AppDataLen: 2500, Jitter: 1},
		{SupportedVersionsFirst: true, AppDataLen: 23},
		{AppDataLen: 100, Jitter: 3},
	} {
		seen := map[int]bool{}
		for seed := range uint64(200) {
			out, err := AppendServerHello([]byte{1, 2, 3}, &h, testSecret, shape, detRand(seed))
			if err != nil {
				t.Fatal(err)
			}
			reply := out[3:]
			n := len(reply) - 138
			if n < shape.AppDataLen-shape.Jitter || n > shape.AppDataLen+shape.Jitter {
				t.Fatalf("%+v: body of %d bytes", shape, n)
			}
			seen[n] = true
			if int(reply[136])<<8|int(reply[137]) != n {
				t.Fatalf("%+v: record length does not match", shape)
			}

			// Signed as the client checks it.
			check := bytes.Clone(reply)
			clear(check[11:43])
			mac := hmac.New(sha256.New, testSecret[:])
			mac.Write(h.Random[:])
			mac.Write(check)
			if !bytes.Equal(mac.Sum(nil), reply[11:43]) {
				t.Fatalf("%+v: bad server random", shape)
			}

			// The key share is a valid X25519 point and the extensions are
			// in the asked order.
			ks, sv := 81, 121
			if shape.SupportedVersionsFirst {
				ks, sv = 87, 81
			}
			if !bytes.Equal(reply[ks:ks+8], []byte{0, 0x33, 0, 0x24, 0, 0x1d, 0, 0x20}) ||
				!bytes.Equal(reply[sv:sv+6], []byte{0, 0x2b, 0, 2, 3, 4}) {
				t.Fatalf("%+v: extensions % x", shape, reply[81:127])
			}
			if _, err := ecdh.X25519().NewPublicKey(reply[ks+8 : ks+40]); err != nil {
				t.Fatal(err)
			}
		}
		if len(seen) != 2*shape.Jitter+1 {
			t.Errorf("%+v: %d different lengths", shape, len(seen))
		}
	}

	h.CipherSuite = 0xc02f
	if out, err := AppendServerHello(nil, &h, testSecret, Shape{AppDataLen: 10}, detRand(0)); !errors.Is(err, ErrCipherSuite) || len(out) != 0 {
		t.Fatalf("TLS 1.2 suite: %d bytes, %v", len(out), err)
	}
}

func TestDefaultShape(t *testing.T) {
	lo, hi := 1<<30, 0
	for seed := range uint64(3000) {
		s, err := DefaultShape(detRand(seed))
		if err != nil {
			t.Fatal(err)
		}
		if s.SupportedVersionsFirst || s.Jitter != 1 {
			t.Fatalf("%+v", s)
		}
		lo, hi = min(lo, s.AppDataLen), max(hi, s.AppDataLen)
	}
	if lo != 2500 || hi != 2500+1119 {
		t.Fatalf("lengths span %d..%d, want 2500..3619", lo, hi)
	}
}
