package faketls

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// The fake-TLS vector of protocol.md §11.2.
const (
	vectorHello = `
160301006e0100006a0303000000000000000000000000000000000000000000
000000000000000000000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
b4b5b6b7b8b9babbbcbdbebf00060a0a130113020100001b00000010000e0000
0b6578616d706c652e636f6d002b0003020304`
	vectorDigest       = "8def4abec0726088114fea7bd879913f61eae414209d13ddef00f9fff8d038e7"
	vectorClientRandom = "8def4abec0726088114fea7bd879913f61eae414209d13ddef00f9fff8216b82"
	vectorTS           = 1700000000
	vectorReply        = `
160303007a020000760303000000000000000000000000000000000000000000
000000000000000000000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
b4b5b6b7b8b9babbbcbdbebf130100002e00330024001d002009000000000000
00000000000000000000000000000000000000000000000000002b0002030414
0303000101170303001042424242424242424242424242424242`
	vectorServerRandom = "f027fafb05efcaeeb9376478d0900f583dfbd6ece081eb4ee39ed651f7c5e1d7"
)

// vectorRecord returns the vector's hello with its client random in place.
func vectorRecord(t *testing.T) []byte {
	rec := unhex(t, vectorHello)
	copy(rec[11:43], unhex(t, vectorClientRandom))
	return rec
}

func TestVectorClientDigest(t *testing.T) {
	zeroed := unhex(t, vectorHello)
	mac := hmac.New(sha256.New, testSecret[:])
	mac.Write(zeroed)
	if got := mac.Sum(nil); !bytes.Equal(got, unhex(t, vectorDigest)) {
		t.Fatalf("HMAC of the zeroed hello = %x, want %s", got, vectorDigest)
	}
	// The test's own client side must produce the vector's random.
	signed := unhex(t, vectorHello)
	sign(signed, testSecret, vectorTS)
	rec := vectorRecord(t)
	if !bytes.Equal(signed, rec) {
		t.Fatalf("sign gives random %x, want %s", signed[11:43], vectorClientRandom)
	}

	other := [16]byte{1}
	v := NewVerifier([][16]byte{other, testSecret})
	idx, ts, err := v.Verify(rec)
	if err != nil || idx != 1 || ts != vectorTS {
		t.Fatalf("Verify = %d, %d, %v; want 1, %d, nil", idx, ts, err, vectorTS)
	}
	if !bytes.Equal(rec, vectorRecord(t)) {
		t.Fatal("Verify modified the record")
	}
	rec[50] ^= 1
	if _, _, err := v.Verify(rec); err != ErrDigest {
		t.Fatalf("Verify of a changed record = %v, want ErrDigest", err)
	}
}

func TestVectorServerReply(t *testing.T) {
	h, err := ParseHello(vectorRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	if h.CipherSuite != 0x1301 || string(h.ServerName) != "example.com" ||
		!bytes.Equal(h.SessionID(), unhex(t, vectorHello)[44:76]) {
		t.Fatalf("parsed suite %#04x, SNI %q, session id %x", h.CipherSuite, h.ServerName, h.SessionID())
	}
	pub := make([]byte, 32)
	pub[0] = 0x09
	reply := appendReply([]byte("prefix"), &h, false, pub, 16)[len("prefix"):]
	copy(reply[len(reply)-16:], bytes.Repeat([]byte{0x42}, 16))
	want := unhex(t, vectorReply)
	if !bytes.Equal(reply, want) {
		t.Fatalf("reply with zero random\n got %x\nwant %x", reply, want)
	}
	signReply(reply, testSecret, &h.Random)
	if !bytes.Equal(reply[11:43], unhex(t, vectorServerRandom)) {
		t.Fatalf("server random = %x, want %s", reply[11:43], vectorServerRandom)
	}
	if !bytes.Equal(reply[:11], want[:11]) || !bytes.Equal(reply[43:], want[43:]) || len(reply) != 154 {
		t.Fatal("signing changed more than the random")
	}
}
