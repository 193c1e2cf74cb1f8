package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/compare"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
)

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", `Runs the scenario matrix against each -proxy in turn, on one fake DC in
this process, samples each proxy's CPU time and memory from /proc, and
writes report.json, report.md and report.svg to -out. A proxy is either
started for every scenario from a command template, or already running:

  -proxy 'name=ours;cmd=bin/mtproxy -H {port} --address 127.0.0.1 -S {secret} -M {workers} --dc 1={dc_addr} ...'
  -proxy 'name=theirs;kinds=classic,dd,ee;addr=127.0.0.1:8443;pid=1234;secret=dd00...'
  -proxy 'name=ours middle;backend=middle;cmd=bin/mtproxy ... --aes-pwd {proxy_secret} {proxy_multi_conf}'

Placeholders: {port} {addr} {secret} {secret_dd} {secret_ee} {domain}
{dc_addr} {dc_host} {dc_port} {workers} {dir}, and for backend=middle
{proxy_secret} {proxy_multi_conf} {me_addr} {me_host} {me_port}. kinds=
lists the secret kinds a proxy serves (default classic,dd); others are
skipped for it. backend=middle runs the proxy in middle-proxy mode against
a fake middle proxy in this process. A running proxy must have all its DCs
at -dc-listen, or in middle-proxy mode at -me-listen with the proxy secret
of -me-secret-file.`, stderr)
	var proxies stringList
	fs.Var(&proxies, "proxy", "a proxy `spec`, repeatable (see above)")
	d := compare.DefaultPlan()
	kinds := fs.String("secrets", "dd", "secret `kinds` to run every scenario with: classic, dd, ee, comma-separated")
	framingName := fs.String("framing", d.Framing.String(), "framing of classic clients")
	duration := fs.Duration("duration", d.Duration, "measured time of the bulk, storm and rr scenarios")
	bulk := intList(d.Bulk)
	fs.Var(&bulk, "bulk", "connection `counts` of the bulk scenarios")
	bulkUp := fs.Int("bulk-up", d.BulkUp, "bulk: payload bytes per request")
	bulkDown := fs.Int("bulk-down", d.BulkDown, "bulk: payload bytes per reply")
	idle := fs.Int("idle", d.Idle, "idle connections (fewer if RLIMIT_NOFILE is too low)")
	settle := fs.Duration("settle", d.Settle, "idle: wait before reading the proxy's memory")
	storm := fs.Int("storm", d.StormConcurrency, "storm: handshakes in flight")
	rr := fs.Int("rr", d.RRConns, "rr: connections")
	rrRate := fs.Float64("rr-rate", d.RRRate, "rr: requests per second per connection")
	rrReq := fs.Int("rr-req", d.RRReq, "rr: payload bytes per request")
	rrReply := fs.Int("rr-reply", d.RRReply, "rr: payload bytes per reply")
	rrDelay := fs.Duration("rr-delay", d.RRDelay, "rr: fake DC delay before each reply")
	openConc := fs.Int("open-concurrency", d.OpenConcurrency, "connections being opened at once")
	openRate := fs.Float64("open-rate", d.OpenRate, "new connections per second; 0 for no limit")
	workers := fs.Int("workers", d.Workers, "the {workers} placeholder")
	only := fs.String("only", "", "run only scenarios whose names start with one of these comma-separated `prefixes`")
	dcListen := fs.String("dc-listen", "127.0.0.1:0", "fake DC `address`")
	meListen := fs.String("me-listen", "127.0.0.1:0", "fake middle proxy `address` (with a backend=middle proxy)")
	meSecret := fs.String("me-secret-file", "", "the fake middle proxy's proxy-secret `file`, written if it does not exist; default a fresh secret")
	out := fs.String("out", "benchmarks/results", "output `directory`")
	timeout := fs.Duration("timeout", time.Hour, "bound on the whole run")
	if err := parse(fs, args); err != nil {
		return err
	}
	plan := compare.Plan{
		Duration: *duration, Bulk: bulk, BulkUp: *bulkUp, BulkDown: *bulkDown,
		Idle: *idle, Settle: *settle, StormConcurrency: *storm,
		RRConns: *rr, RRRate: *rrRate, RRReq: *rrReq, RRReply: *rrReply, RRDelay: *rrDelay,
		OpenConcurrency: *openConc, OpenRate: *openRate, Workers: *workers,
	}
	var err error
	if plan.Framing, err = framing.Parse(*framingName); err != nil {
		return usageError{err}
	}
	for k := range strings.SplitSeq(*kinds, ",") {
		kind, err := load.ParseKind(k)
		if err != nil {
			return usageError{err}
		}
		plan.Kinds = append(plan.Kinds, kind)
	}
	if *only != "" {
		plan.Only = strings.Split(*only, ",")
	}
	var ps []compare.Proxy
	for _, spec := range proxies {
		p, err := compare.ParseProxy(spec)
		if err != nil {
			return usageError{err}
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return usageError{fmt.Errorf("no -proxy given")}
	}

	opts := compare.Options{DCAddr: *dcListen, MEAddr: *meListen, LogDir: filepath.Join(*out, "logs"), Out: stdout}
	if *meSecret != "" {
		if opts.MESecret, _, err = loadSecret(*meSecret); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, runErr := compare.Run(ctx, plan, ps, opts)
	if rep == nil {
		return runErr
	}
	if err := writeReports(rep, *out); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteMarkdown(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nReport: %s/report.{md,json,svg}\n", *out)
	return runErr
}

func writeReports(rep *compare.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.json": rep.WriteJSON,
		"report.md":   rep.WriteMarkdown,
		"report.svg":  rep.WriteSVG,
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}
