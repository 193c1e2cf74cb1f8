// Package tgclient drives clients through an MTProxy towards a fakedc
// server: gotd's real MTProto client for end-to-end checks, and a raw
// obfuscated2 connection (DialRaw) for bulk byte streams.
package tgclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/exchange"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
)

// Transport is the MTProto transport framing used inside obfuscated2.
type Transport int

const (
	Abridged Transport = iota + 1
	Intermediate
	PaddedIntermediate
)

// Tag returns the protocol tag announcing t.
func (t Transport) Tag() uint32 {
	switch t {
	case Abridged:
		return fakedc.TagAbridged
	case Intermediate:
		return fakedc.TagIntermediate
	case PaddedIntermediate:
		return fakedc.TagPaddedIntermediate
	}
	return 0
}

func (t Transport) String() string {
	switch t {
	case Abridged:
		return "abridged"
	case Intermediate:
		return "intermediate"
	case PaddedIntermediate:
		return "padded-intermediate"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// Secret is an MTProxy secret as a client holds it (protocol.md §1.1).
type Secret struct {
	Key [16]byte
	// DD marks a "dd" secret; its clients always use padded intermediate.
	DD bool
	// Domain, when set, makes an "ee" secret (fake TLS, protocol.md §4):
	// the client opens with a TLS ClientHello naming this host and then
	// speaks padded intermediate inside TLS records. DD must be false.
	Domain string
}

// gotdSecret encodes s for dcs.MTProxy so that gotd uses transport t. gotd
// picks the transport from the first byte of a 17-byte secret and uses
// padded intermediate for a plain 16-byte one, so a classic secret with
// abridged or intermediate is passed as 0xef/0xee followed by the key: on
// the wire that is exactly a classic client choosing that transport. An ee
// secret is passed in its binary form, 0xee ‖ key ‖ domain, for which gotd
// does fake TLS with padded intermediate.
func gotdSecret(s Secret, t Transport) ([]byte, error) {
	if s.Domain != "" {
		switch {
		case s.DD:
			return nil, errors.New("tgclient: a secret is either dd or ee (with a domain), not both")
		case t != PaddedIntermediate:
			return nil, fmt.Errorf("tgclient: an ee secret requires padded intermediate, not %v", t)
		}
		b := append([]byte{0xee}, s.Key[:]...)
		return append(b, s.Domain...), nil
	}
	var prefix byte
	switch {
	case s.DD && t != PaddedIntermediate:
		return nil, fmt.Errorf("tgclient: a dd secret requires padded intermediate, not %v", t)
	case s.DD:
		prefix = 0xdd
	case t == Abridged:
		prefix = 0xef
	case t == Intermediate:
		prefix = 0xee
	case t == PaddedIntermediate:
		return s.Key[:], nil
	default:
		return nil, fmt.Errorf("tgclient: unknown transport %v", t)
	}
	return append([]byte{prefix}, s.Key[:]...), nil
}

// Config says how to reach a fakedc server in MTProto mode through a proxy.
type Config struct {
	ProxyAddr string // host:port of the MTProxy
	Secret    Secret
	Transport Transport
	// DC is announced to the proxy and used in the key exchange; it must be
	// the fakedc's Config.DC. Defaults to 2.
	DC int
	// PublicKey is the fakedc's key, from (*fakedc.Server).PublicKey. If
	// zero, gotd trusts Telegram's real keys, which fakedc does not have.
	PublicKey exchange.PublicKey
	// Workload is what Run does once connected.
	Workload Workload
}

func (c Config) dc() int {
	if c.DC == 0 {
		return 2
	}
	return c.DC
}

// Workload is the RPC sequence of Exercise. Zero fields take defaults.
type Workload struct {
	// Parts is how many upload.saveFilePart and upload.getFile calls are
	// made, each. Defaults to 2.
	Parts int
	// PartSize is the payload of each of those calls in bytes, at most
	// 1 MiB. Defaults to 128 KiB, which needs the long abridged header and
	// spans many TCP segments. With an ee secret it must be at most
	// MaxFakeTLSPart.
	PartSize int
	// Seed selects the transferred pattern (fakedc.NewPattern).
	Seed uint64
}

// MaxFakeTLSPart bounds Workload.PartSize with an ee secret. gotd's fake-TLS
// writer (v0.162.0) puts each message in a single TLS record, so a message
// over 65535 bytes overflows the record's 16-bit length and corrupts the
// stream; this leaves room for MTProto's headers and padding.
const MaxFakeTLSPart = 60 << 10

func (w *Workload) setDefaults() {
	if w.Parts == 0 {
		w.Parts = 2
	}
	if w.PartSize == 0 {
		w.PartSize = 128 << 10
	}
}

// NewClient returns a gotd client that reaches the DC through the proxy
// described by cfg. opts may carry extra settings such as a Logger; the
// fields about the DC and the proxy are overwritten, updates are off, and so
// is compression, so payload sizes on the wire are as requested. Without
// opts.SessionStorage every client does its own auth key exchange.
func NewClient(cfg Config, opts telegram.Options) (*telegram.Client, error) {
	secret, err := gotdSecret(cfg.Secret, cfg.Transport)
	if err != nil {
		return nil, err
	}
	resolver, err := dcs.MTProxy(cfg.ProxyAddr, secret, dcs.MTProxyOptions{})
	if err != nil {
		return nil, fmt.Errorf("tgclient: %w", err)
	}
	if !cfg.PublicKey.Zero() {
		opts.PublicKeys = []telegram.PublicKey{cfg.PublicKey}
	}
	opts.DC = cfg.dc()
	opts.Resolver = resolver
	opts.NoUpdates = true
	opts.CompressThreshold = -1
	return telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts), nil
}

// Run connects through the proxy, does the auth key exchange and the
// initConnection+help.getConfig handshake, then runs Exercise. It fails as
// soon as the connection dies instead of letting gotd reconnect.
func Run(ctx context.Context, cfg Config) error {
	if w := cfg.Workload; cfg.Secret.Domain != "" {
		w.setDefaults()
		if w.PartSize > MaxFakeTLSPart {
			return fmt.Errorf("tgclient: part size %d over %d with an ee secret (see MaxFakeTLSPart)", w.PartSize, MaxFakeTLSPart)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	client, err := NewClient(cfg, telegram.Options{
		OnDead: func(err error) { cancel(fmt.Errorf("tgclient: connection died: %w", err)) },
	})
	if err != nil {
		return err
	}
	exercised := false
	err = client.Run(ctx, func(ctx context.Context) error {
		err := Exercise(ctx, client.API(), cfg.dc(), cfg.Workload)
		exercised = err == nil
		return err
	})
	// gotd's Run returns nil when its context is canceled, which is how a
	// dead connection stops it.
	if err == nil && !exercised {
		err = errors.New("tgclient: client stopped before the workload ran")
	}
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// Exercise calls, on an initialised connection to fakedc: help.getConfig and
// help.getNearestDc (both must report dc), then w.Parts uploads of pattern
// parts, which fakedc verifies, and w.Parts downloads, verified here.
func Exercise(ctx context.Context, api *tg.Client, dc int, w Workload) error {
	w.setDefaults()
	cfg, err := api.HelpGetConfig(ctx)
	if err != nil {
		return fmt.Errorf("tgclient: help.getConfig: %w", err)
	}
	if cfg.ThisDC != dc {
		return fmt.Errorf("tgclient: help.getConfig: this_dc %d, want %d", cfg.ThisDC, dc)
	}
	nearest, err := api.HelpGetNearestDC(ctx)
	if err != nil {
		return fmt.Errorf("tgclient: help.getNearestDc: %w", err)
	}
	if nearest.ThisDC != dc {
		return fmt.Errorf("tgclient: help.getNearestDc: this_dc %d, want %d", nearest.ThisDC, dc)
	}

	fileID := int64(w.Seed)
	pattern := fakedc.NewPattern(w.Seed)
	part := make([]byte, w.PartSize)
	for i := range w.Parts {
		pattern.Read(part)
		ok, err := api.UploadSaveFilePart(ctx, &tg.UploadSaveFilePartRequest{FileID: fileID, FilePart: i, Bytes: part})
		if err != nil {
			return fmt.Errorf("tgclient: upload.saveFilePart %d: %w", i, err)
		}
		if !ok {
			return fmt.Errorf("tgclient: upload.saveFilePart %d: false", i)
		}
	}

	v := fakedc.NewVerifier(w.Seed)
	for i := range w.Parts {
		res, err := api.UploadGetFile(ctx, &tg.UploadGetFileRequest{
			Location: &tg.InputDocumentFileLocation{ID: fileID},
			Offset:   int64(i) * int64(w.PartSize),
			Limit:    w.PartSize,
		})
		if err != nil {
			return fmt.Errorf("tgclient: upload.getFile %d: %w", i, err)
		}
		f, ok := res.(*tg.UploadFile)
		if !ok {
			return fmt.Errorf("tgclient: upload.getFile %d: unexpected %T", i, res)
		}
		if len(f.Bytes) != w.PartSize {
			return fmt.Errorf("tgclient: upload.getFile %d: %d bytes, want %d", i, len(f.Bytes), w.PartSize)
		}
		if _, err := v.Write(f.Bytes); err != nil {
			return fmt.Errorf("tgclient: upload.getFile %d: %w", i, err)
		}
	}
	return nil
}
