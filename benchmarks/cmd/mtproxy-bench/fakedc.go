package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
)

func runFakeDC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fakedc", `Runs a fake Telegram DC that accepts what an MTProxy sends in direct mode:
obfuscated2 without a secret, any of the three framings. Point every DC of
the proxy at it (for this repository's proxy: --dc 1=ADDR ... --dc 5=ADDR)
and run 'mtproxy-bench load' against the proxy. Modes:
  reqresp  answer each frame as its request asks (what 'load' needs)
  echo     send every byte back
  sink     read and count everything
  source   send -source-bytes bytes of a pattern, then read and discard`, stderr)
	listen := fs.String("listen", "127.0.0.1:4430", "listening `address`, a loopback IP and a port")
	mode := fs.String("mode", "reqresp", "`mode`: reqresp, echo, sink or source")
	sourceBytes := fs.Int64("source-bytes", 1<<30, "bytes each connection gets in source mode")
	seed := fs.Uint64("seed", 0, "pattern seed in source mode")
	duration := fs.Duration("duration", time.Hour, "stop after this long")
	every := fs.Duration("stats", 10*time.Second, "print the counters this often")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, err := fakedc.ParseMode(*mode)
	if err != nil || m == fakedc.MTProto {
		return usageError{fmt.Errorf("mode %q: want reqresp, echo, sink or source", *mode)}
	}
	if *every <= 0 {
		return usageError{fmt.Errorf("-stats must be positive")}
	}
	dc, err := fakedc.Start(fakedc.Config{
		Mode: m, Addr: *listen, SourceBytes: *sourceBytes, Seed: *seed,
		OnError: func(err error) { fmt.Fprintf(stderr, "refused: %v\n", err) },
	})
	if err != nil {
		return err
	}
	defer dc.Close()
	fmt.Fprintf(stdout, "fake DC (%v) on %s for %v\n", m, dc.Addr(), *duration)

	return printStats(ctx, stdout, *duration, *every, func() any { return dc.Stats() })
}

// printStats prints a fake server's counters every period until the
// duration is over or ctx is done, then once more.
func printStats(ctx context.Context, stdout io.Writer, duration, every time.Duration, stats func() any) error {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(stdout, "stopping: %+v\n", stats())
			return nil
		case <-t.C:
			fmt.Fprintf(stdout, "%+v\n", stats())
		}
	}
}
