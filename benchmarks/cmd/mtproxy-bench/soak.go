package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/soak"
)

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("soak", `Floods and soaks the proxy binary, run as a process of its own on
loopback, and watches its descriptors, memory, CPU and log from /proc.
Per mode (direct against a fake DC, middle against a fake middle proxy,
both echoing) one proxy runs these phases:
  slowloris  -conns connections trickling a byte every -trickle until the
             proxy closes them at its -handshake-timeout
  garbage    -conns connections sending random bytes, then closing
  reset      -conns valid handshakes, each reset at once
  short      -short sessions, each a handshake and one echo checked byte
             for byte, -concurrency at a time, for at most -max-duration
After each phase the proxy must return to its baseline: the same number of
descriptors within -settle, then RSS within -rss-slack within -rss-wait
(an idle Go process gives memory back after its next garbage collection,
at the latest two minutes later). A failed check, a client error, an
echo that differs, "panic" or "fatal" in the proxy's log or the proxy
exiting fails the phase and the run (exit status 1). Writes soak.json and
soak.txt to -out and the proxy's log to -out/logs/soak-MODE.log.`, stderr)
	proxy := fs.String("proxy", "bin/mtproxy", "the proxy `binary`")
	modes := fs.String("modes", "direct,middle", "`modes` to run, comma-separated: direct, middle")
	phases := fs.String("phases", strings.Join(soak.AllPhases, ","), "`phases` to run, comma-separated")
	conns := fs.Int("conns", 10000, "connections of the slowloris, garbage and reset phases")
	short := fs.Int("short", 1000000, "short sessions")
	concurrency := fs.Int("concurrency", 64, "short sessions in flight")
	floodConc := fs.Int("flood-concurrency", 64, "flood connections being opened at once")
	maxDuration := fs.Duration("max-duration", 15*time.Minute, "bound on each short phase; it stops early and reports how many ran")
	handshake := fs.Duration("handshake-timeout", 10*time.Second, "the proxy's --handshake-timeout")
	trickle := fs.Duration("trickle", 2*time.Second, "slowloris: one byte per connection this often")
	workers := fs.Int("workers", 0, "the proxy's reactors (-M); 0 for one per core")
	settle := fs.Duration("settle", 0, "bound on the proxy's return to its baseline after each phase (0: handshake timeout + 30s)")
	rssSlack := fs.Int("rss-slack", soak.DefaultRSSSlack>>20, "MiB the proxy's RSS may stay above its baseline after a phase")
	rssWait := fs.Duration("rss-wait", soak.DefaultRSSWait, "bound on the wait for the proxy's RSS to come within -rss-slack after each phase")
	out := fs.String("out", "benchmarks/results", "output `directory`")
	if err := parse(fs, args); err != nil {
		return err
	}
	for name, v := range map[string]int{"-conns": *conns, "-short": *short, "-concurrency": *concurrency, "-flood-concurrency": *floodConc, "-rss-slack": *rssSlack} {
		if v <= 0 {
			return usageError{fmt.Errorf("%s %d: want a positive number", name, v)}
		}
	}
	for name, v := range map[string]time.Duration{"-max-duration": *maxDuration, "-handshake-timeout": *handshake, "-trickle": *trickle, "-rss-wait": *rssWait} {
		if v <= 0 {
			return usageError{fmt.Errorf("%s %v: want a positive duration", name, v)}
		}
	}
	if *workers < 0 || *settle < 0 {
		return usageError{errors.New("-workers and -settle must not be negative")}
	}
	cfg := soak.Config{
		Proxy: *proxy, Modes: splitList(*modes), Phases: splitList(*phases),
		Conns: *conns, Short: *short, Concurrency: *concurrency, FloodConcurrency: *floodConc,
		MaxDuration: *maxDuration, HandshakeTimeout: *handshake, Trickle: *trickle, Workers: *workers,
		Settle: *settle, RSSSlack: int64(*rssSlack) << 20, RSSWait: *rssWait,
		LogDir: filepath.Join(*out, "logs"), Progress: stdout,
	}
	for _, m := range cfg.Modes {
		if !slices.Contains(soak.AllModes, m) {
			return usageError{fmt.Errorf("unknown mode %q (want %s)", m, strings.Join(soak.AllModes, ", "))}
		}
	}
	for _, p := range cfg.Phases {
		if !slices.Contains(soak.AllPhases, p) {
			return usageError{fmt.Errorf("unknown phase %q (want %s)", p, strings.Join(soak.AllPhases, ", "))}
		}
	}
	if fi, err := os.Stat(*proxy); err != nil || fi.IsDir() {
		return fmt.Errorf("no proxy binary at %s: build it with 'make build', or give -proxy", *proxy)
	}

	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{"soak.json": rep.WriteJSON, "soak.txt": rep.WriteText} {
		if err := writeFile(filepath.Join(*out, name), write); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nReport: %s/soak.{txt,json}\n", *out)
	if !rep.Passed {
		return errors.New("soak failed (see the FAIL lines above)")
	}
	return nil
}

func splitList(s string) []string {
	var l []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			l = append(l, f)
		}
	}
	return l
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
