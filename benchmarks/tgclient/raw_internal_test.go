package tgclient

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/gotd/td/mtproxy/obfuscated2"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientHeaderVector checks protocol.md §11.1.
func TestClientHeaderVector(t *testing.T) {
	var rnd [64]byte
	for i := range rnd {
		rnd[i] = byte(i)
	}
	var key [16]byte
	copy(key[:], unhex(t, "00112233445566778899aabbccddeeff"))

	hdr, enc, dec, err := clientHeader(rnd, key[:], 0xdddddddd, 2)
	if err != nil {
		t.Fatal(err)
	}
	wire := unhex(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"+
		"202122232425262728292a2b2c2d2e2f30313233343536378f3d40553f8b44b1")
	if !bytes.Equal(hdr[:], wire) {
		t.Fatalf("header\n%x, want\n%x", hdr, wire)
	}

	frame := unhex(t, "080000000000000000000000")
	enc.XORKeyStream(frame, frame)
	if want := unhex(t, "916c5102baebf594906bcdb5"); !bytes.Equal(frame, want) {
		t.Errorf("first frame encrypts to %x, want %x", frame, want)
	}
	reply := unhex(t, "0ce1eddf0b71ef88")
	dec.XORKeyStream(reply, reply)
	if want := unhex(t, "0400000001020304"); !bytes.Equal(reply, want) {
		t.Errorf("first reply decrypts to %x, want %x", reply, want)
	}
}

// TestClientHeaderGotd checks our header against gotd's server side.
func TestClientHeaderGotd(t *testing.T) {
	rnd, err := randomHeader()
	if err != nil {
		t.Fatal(err)
	}
	key := [16]byte{1, 2, 3}
	hdr, enc, dec, err := clientHeader(rnd, key[:], 0xefefefef, -4)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("ping")
	enc.XORKeyStream(msg, msg)

	var wire bytes.Buffer
	wire.Write(hdr[:])
	wire.Write(msg)
	rw, md, err := obfuscated2.Accept(&wire, key[:])
	if err != nil {
		t.Fatal(err)
	}
	if tag := binary.LittleEndian.Uint32(md.Protocol[:]); tag != 0xefefefef || int16(md.DC) != -4 {
		t.Fatalf("gotd read tag %#x dc %d, want 0xefefefef -4", tag, int16(md.DC))
	}
	got := make([]byte, 4)
	if _, err := rw.Read(got); err != nil || string(got) != "ping" {
		t.Fatalf("gotd decrypted %q, %v", got, err)
	}
	if _, err := rw.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	reply := wire.Bytes()
	dec.XORKeyStream(reply, reply)
	if string(reply) != "pong" {
		t.Fatalf("decrypted reply %q", reply)
	}
}

func TestRandomHeader(t *testing.T) {
	for range 1000 {
		b, err := randomHeader()
		if err != nil {
			t.Fatal(err)
		}
		first := binary.LittleEndian.Uint32(b[0:4])
		if b[0] == 0xef || first == 0xdddddddd || first == 0xeeeeeeee || binary.LittleEndian.Uint32(b[4:8]) == 0 {
			t.Fatalf("forbidden header % x", b[:8])
		}
	}
}
