package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mtproxy-go/mtproxy/backend/proxyconf"
	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
)

func runFakeME(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fakeme", `Runs a fake Telegram middle proxy that accepts what an MTProxy sends in
middle-proxy mode (protocol.md §6). Give the proxy the same proxy-secret
file (--aes-pwd) and a proxy-multi.conf sending every DC here (-conf
writes one), then run 'mtproxy-bench load -middle' against the proxy.
Modes:
  reqresp  answer each client packet as its request asks (what 'load' needs)
  echo     send every client packet back
  sink     read and count everything
  source   send -source-bytes bytes of a pattern to each new client
  forward  relay each client to an MTProto server at -forward`, stderr)
	addr := fs.String("addr", "127.0.0.1:8888", "listening `address`, a loopback IP and a port")
	mode := fs.String("mode", "reqresp", "`mode`: reqresp, echo, sink, source or forward")
	forward := fs.String("forward", "", "forward mode: the MTProto server, `host:port`, speaking the intermediate transport")
	secretFile := fs.String("secret-file", "proxy-secret", "the proxy-secret `file` (32..256 bytes) shared with the proxy; a fresh one is written there if it does not exist")
	conf := fs.String("conf", "", "also write a proxy-multi.conf sending every DC here to this `file`")
	replyChunk := fs.Int("reply-chunk", 0, "reqresp mode: split replies into answers of at most this many bytes, a multiple of 4; 0 for whole")
	sourceBytes := fs.Int64("source-bytes", 1<<30, "bytes each client gets in source mode")
	seed := fs.Uint64("seed", 0, "pattern seed in source mode")
	duration := fs.Duration("duration", time.Hour, "stop after this long")
	every := fs.Duration("stats", 10*time.Second, "print the counters this often")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, err := fakeme.ParseMode(*mode)
	if err != nil {
		return usageError{err}
	}
	if (m == fakeme.Forward) != (*forward != "") {
		return usageError{errors.New("-forward goes with -mode forward, and only with it")}
	}
	if *every <= 0 {
		return usageError{errors.New("-stats must be positive")}
	}
	secret, created, err := loadSecret(*secretFile)
	if err != nil {
		return err
	}
	me, err := fakeme.Start(fakeme.Config{
		Secret: secret, Mode: m, Addr: *addr, ForwardAddr: *forward, ReplyChunk: *replyChunk,
		SourceBytes: *sourceBytes, Seed: *seed,
		Logf: func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	defer me.Close()
	if created {
		fmt.Fprintf(stdout, "wrote a fresh proxy secret to %s\n", *secretFile)
	}
	if *conf != "" {
		if err := os.WriteFile(*conf, []byte(fakeme.ConfigText(me.Addr())), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *conf)
	}
	fmt.Fprintf(stdout, "fake middle proxy (%v) on %s for %v, proxy secret %s\n", m, me.Addr(), *duration, *secretFile)

	return printStats(ctx, stdout, *duration, *every, func() any { return me.Stats() })
}

// loadSecret reads a proxy secret from path, or writes a fresh one there
// if there is no file, and reports whether it did.
func loadSecret(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = fakeme.NewSecret()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, false, err
		}
		return b, true, os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := proxyconf.ParseSecret(b); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return b, false, nil
}
