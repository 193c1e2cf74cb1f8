package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mtproxy-go/mtproxy/cmd/mtproxy/internal/doctor"
)

// runDoctor is the doctor subcommand: the checks for the configuration the
// same flags and config file would run, as a table on stdout. It exits 1
// when a check fails, 2 for a bad configuration.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	o, code := optionsFor("doctor", args, stderr)
	if o == nil {
		return code
	}
	cfg, err := doctorConfig(o)
	if err != nil {
		io.WriteString(stderr, "mtproxy: "+err.Error()+"\n")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if doctor.Report(stdout, doctor.Run(ctx, cfg)) {
		return 1
	}
	return 0
}

// doctorConfig describes the proxy o would run to the doctor.
func doctorConfig(o *options) (doctor.Config, error) {
	table, err := dcTable(o)
	if err != nil {
		return doctor.Config{}, err
	}
	listen, err := listenAddrs(o)
	if err != nil {
		return doctor.Config{}, err
	}
	cfg := doctor.Config{
		Listen:         listen,
		MaxConnections: o.maxConnections,
		DCs:            table,
		PreferIPv6:     o.preferIPv6,
		Middle:         o.middle,
		NAT:            o.nat,
		Timeout:        o.doctorTimeout,
	}
	if o.middle {
		cfg.Refresh = refreshConfig(o)
	}
	if len(o.domains) > 0 {
		cfg.FrontingAddr, cfg.Domain = o.fronting, o.domains[0]
	}
	return cfg, nil
}
