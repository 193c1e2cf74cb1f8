package obfuscated2

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/gotd/td/mtproxy"
	gotdobfs "github.com/gotd/td/mtproxy/obfuscated2"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorSecret and vectorWire are protocol.md §11.1.
const (
	vectorSecret = "00112233445566778899aabbccddeeff"
	vectorWire   = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
		"202122232425262728292a2b2c2d2e2f30313233343536378f3d40553f8b44b1"
)

func vectorHeader(t testing.TB) *[HeaderLen]byte {
	return (*[HeaderLen]byte)(unhex(t, vectorWire))
}

func vectorSecrets(t testing.TB) [][16]byte {
	return [][16]byte{[16]byte(unhex(t, vectorSecret))}
}

func TestParseClientVector(t *testing.T) {
	c, err := ParseClient(vectorHeader(t), vectorSecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tag != TagPadded || c.DC != 2 || c.Secret != 0 {
		t.Fatalf("got tag %v dc %d secret %d, want padded, 2, 0", c.Tag, c.DC, c.Secret)
	}
	// The client's first frame, at stream position 64.
	got := unhex(t, "916c5102baebf594906bcdb5")
	c.Decrypt.XORKeyStream(got, got)
	if want := "080000000000000000000000"; hex.EncodeToString(got) != want {
		t.Fatalf("decrypted frame %x, want %s", got, want)
	}
	// The proxy's first output, at stream position 0.
	out := unhex(t, "0400000001020304")
	c.Encrypt().XORKeyStream(out, out)
	if want := "0ce1eddf0b71ef88"; hex.EncodeToString(out) != want {
		t.Fatalf("encrypted output %x, want %s", out, want)
	}
}

func TestDeriveKeysVector(t *testing.T) {
	h := vectorHeader(t)
	recvKey, recvIV, sendKey, sendIV := deriveKeys(h, unhex(t, vectorSecret))
	for _, kv := range []struct{ name, got, want string }{
		{"recvKey", hex.EncodeToString(recvKey[:]), "28ddb6447216c5f55106259f1c7ba64bfe69909197bc20253466cfa42715f29c"},
		{"recvIV", hex.EncodeToString(recvIV[:]), "28292a2b2c2d2e2f3031323334353637"},
		{"sendKey", hex.EncodeToString(sendKey[:]), "c95a3c8c663a4e2daff3469561805825e7be010c4fcb691415b93145b640c9f3"},
		{"sendIV", hex.EncodeToString(sendIV[:]), "17161514131211100f0e0d0c0b0a0908"},
	} {
		if kv.got != kv.want {
			t.Errorf("%s = %s, want %s", kv.name, kv.got, kv.want)
		}
	}
	// Secretless: the key material is the key.
	recvKey, _, sendKey, _ = deriveKeys(h, nil)
	if !bytes.Equal(recvKey[:], h[8:40]) {
		t.Errorf("secretless recvKey %x, want wire[8:40]", recvKey)
	}
	if want := "37363534333231302f2e2d2c2b2a292827262524232221201f1e1d1c1b1a1918"; hex.EncodeToString(sendKey[:]) != want {
		t.Errorf("secretless sendKey %x, want %s", sendKey, want)
	}
}

func TestParseClientPicksMatchingSecret(t *testing.T) {
	other := [16]byte{1, 2, 3}
	secrets := append([][16]byte{other, other}, vectorSecrets(t)...)
	c, err := ParseClient(vectorHeader(t), secrets)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret != 2 {
		t.Fatalf("secret index %d, want 2", c.Secret)
	}
	if _, err := ParseClient(vectorHeader(t), [][16]byte{other}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("wrong secret: err %v, want ErrNoSecret", err)
	}
}

// duplex is an io.ReadWriter over two buffers, for gotd's stream wrappers.
type duplex struct {
	in  *bytes.Buffer
	out *bytes.Buffer
}

func (d duplex) Read(p []byte) (int, error)  { return d.in.Read(p) }
func (d duplex) Write(p []byte) (int, error) { return d.out.Write(p) }

// TestParseClientAgainstGotd checks our server side against gotd's client,
// an implementation written elsewhere, for every tag, secret and DC sign.
func TestParseClientAgainstGotd(t *testing.T) {
	var secret [16]byte
	rand.Read(secret[:])
	for _, tag := range []Tag{TagAbridged, TagIntermediate, TagPadded} {
		for _, dc := range []int{1, 2, 5, -2, 203} {
			wire := new(bytes.Buffer)
			back := new(bytes.Buffer)
			client := gotdobfs.NewObfuscated2(rand.Reader, duplex{in: back, out: wire})
			var proto [4]byte
			binary.LittleEndian.PutUint32(proto[:], uint32(tag))
			err := client.Handshake(proto, dc, mtproxy.Secret{Secret: secret[:], Type: mtproxy.Simple})
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte("client payload after the header")
			if _, err := client.Write(payload); err != nil {
				t.Fatal(err)
			}

			h := (*[HeaderLen]byte)(wire.Next(HeaderLen))
			c, err := ParseClient(h, [][16]byte{{9}, secret})
			if err != nil {
				t.Fatalf("tag %v dc %d: %v", tag, dc, err)
			}
			if c.Tag != tag || int(c.DC) != dc || c.Secret != 1 {
				t.Fatalf("got tag %v dc %d secret %d, want %v %d 1", c.Tag, c.DC, c.Secret, tag, dc)
			}
			got := wire.Bytes()
			c.Decrypt.XORKeyStream(got, got)
			if !bytes.Equal(got, payload) {
				t.Fatalf("client payload decrypted to %q", got)
			}

			reply := []byte("proxy reply")
			enc := make([]byte, len(reply))
			c.Encrypt().XORKeyStream(enc, reply)
			back.Write(enc)
			read := make([]byte, len(reply))
			if _, err := io.ReadFull(client, read); err != nil || !bytes.Equal(read, reply) {
				t.Fatalf("client read %q, %v; want %q", read, err, reply)
			}
		}
	}
}

// TestNewBackendAgainstGotd checks our DC-side header with gotd's server.
func TestNewBackendAgainstGotd(t *testing.T) {
	for _, tag := range []Tag{TagAbridged, TagIntermediate, TagPadded} {
		for _, dc := range []int16{2, -4, 203} {
			b, err := NewBackend(rand.Reader, tag, dc)
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte("relayed to the DC")
			wire := bytes.NewBuffer(append([]byte(nil), b.Header[:]...))
			enc := make([]byte, len(payload))
			b.Encrypt.XORKeyStream(enc, payload)
			wire.Write(enc)

			back := new(bytes.Buffer)
			dcSide, meta, err := gotdobfs.Accept(duplex{in: wire, out: back}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if Tag(binary.LittleEndian.Uint32(meta.Protocol[:])) != tag || int16(meta.DC) != dc {
				t.Fatalf("DC saw %x dc %d, want %v %d", meta.Protocol, int16(meta.DC), tag, dc)
			}
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(dcSide, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("DC read %q, %v", got, err)
			}
			reply := []byte("answer from the DC")
			if _, err := dcSide.Write(reply); err != nil {
				t.Fatal(err)
			}
			dec := back.Bytes()
			b.Decrypt.XORKeyStream(dec, dec)
			if !bytes.Equal(dec, reply) {
				t.Fatalf("proxy decrypted %q, want %q", dec, reply)
			}
		}
	}
}

// scripted yields the given blocks, then random bytes.
type scripted struct{ blocks [][]byte }

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.blocks) == 0 {
		return rand.Read(p)
	}
	n := copy(p, s.blocks[0])
	s.blocks = s.blocks[1:]
	return n, nil
}

func TestNewBackendAvoidsForbiddenPrefixes(t *testing.T) {
	bad := func(first8 string) []byte {
		b := make([]byte, HeaderLen)
		rand.Read(b)
		copy(b, unhex(t, first8))
		return b
	}
	blocks := [][]byte{
		bad("ef00000001000000"),
		bad("4845414401000000"), // HEAD
		bad("504f535401000000"), // POST
		bad("4745542001000000"), // GET
		bad("4f50544901000000"), // OPTI
		bad("1603010201000000"), // TLS
		bad("dddddddd01000000"),
		bad("eeeeeeee01000000"),
		bad("0102030400000000"), // zero seq_no
	}
	src := &scripted{blocks: blocks}
	b, err := NewBackend(src, TagAbridged, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.blocks) != 0 {
		t.Fatalf("%d forbidden candidates left unread", len(src.blocks))
	}
	if forbidden(&b.Header) {
		t.Fatalf("header %x is forbidden", b.Header[:8])
	}
	for _, blk := range blocks {
		if !forbidden((*[HeaderLen]byte)(blk)) {
			t.Errorf("%x not recognised as forbidden", blk[:8])
		}
	}
}

func TestNewBackendRandomError(t *testing.T) {
	if _, err := NewBackend(bytes.NewReader(make([]byte, 10)), TagPadded, 2); err == nil {
		t.Fatal("short random source: want error")
	}
}

func FuzzParseClient(f *testing.F) {
	f.Add(unhex(f, vectorWire))
	f.Add(make([]byte, HeaderLen))
	secrets := vectorSecrets(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderLen {
			return
		}
		h := (*[HeaderLen]byte)(data[:HeaderLen])
		for _, s := range [][][16]byte{secrets, nil} {
			c, err := ParseClient(h, s)
			if err != nil {
				if !errors.Is(err, ErrNoSecret) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if !c.Tag.Valid() {
				t.Fatalf("accepted invalid tag %v", c.Tag)
			}
		}
	})
}

func BenchmarkParseClient(b *testing.B) {
	h := vectorHeader(b)
	secrets := vectorSecrets(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClient(h, secrets); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNewBackendFastAgainstGotd: in fast mode the DC's output, forwarded
// untouched, must be readable by the client. Both ends are gotd's.
func TestNewBackendFastAgainstGotd(t *testing.T) {
	var secret [16]byte
	rand.Read(secret[:])
	toProxy, toClient := new(bytes.Buffer), new(bytes.Buffer)
	client := gotdobfs.NewObfuscated2(rand.Reader, duplex{in: toClient, out: toProxy})
	var proto [4]byte
	binary.LittleEndian.PutUint32(proto[:], uint32(TagPadded))
	if err := client.Handshake(proto, 2, mtproxy.Secret{Secret: secret[:], Type: mtproxy.Secured}); err != nil {
		t.Fatal(err)
	}
	c, err := ParseClient((*[HeaderLen]byte)(toProxy.Next(HeaderLen)), [][16]byte{secret})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackendFast(rand.Reader, c.Tag, c.DC, &c.SendKey, &c.SendIV)
	if err != nil {
		t.Fatal(err)
	}
	if b.Decrypt != nil {
		t.Fatal("fast mode needs no DC decrypt stream")
	}
	if forbidden(&b.Header) {
		t.Fatalf("header %x is forbidden", b.Header[:8])
	}
	toDC := bytes.NewBuffer(append([]byte(nil), b.Header[:]...))
	dcSide, meta, err := gotdobfs.Accept(duplex{in: toDC, out: toClient}, nil)
	if err != nil || Tag(binary.LittleEndian.Uint32(meta.Protocol[:])) != TagPadded {
		t.Fatalf("DC accept: %v %x", err, meta.Protocol)
	}
	// The DC answers twice; the proxy forwards its bytes as they are.
	for _, msg := range []string{"first answer from the DC", "and a second one"} {
		if _, err := dcSide.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(client, got); err != nil || string(got) != msg {
			t.Fatalf("client read %q, %v; want %q", got, err, msg)
		}
	}
}
