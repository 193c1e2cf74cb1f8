package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

const usageText = `Usage:
  mtproxy [run] [flags] [proxy-multi.conf]   run the proxy (the default)
  mtproxy link [--qr] [flags]                print the tg:// and t.me links of every user
  mtproxy generate-secret [--tls DOMAIN]     print a fresh secret (dd…, or ee… for fake TLS)
  mtproxy doctor [--timeout D] [flags]       check ports, limits, clock, DCs, middle proxies, fronting
  mtproxy healthcheck [HOST:PORT]            exit 0 if the proxy accepts connections (default 127.0.0.1:443)
  mtproxy help                               this text

Settings come from the flags below and, with --config FILE, a TOML file whose
keys are the long flag names (http-ports or http_ports), plus named users:

  [users]
  alice = "dd00112233445566778899aabbccddeeff"

Flags given on the command line override the file. See mtproxy.example.toml.

Signals: SIGTERM or SIGINT stops taking clients and waits up to --drain-timeout
for the open ones (a second signal closes them at once); SIGHUP re-reads the
config file (users, secrets, proxy tag) and the middle-proxy files; SIGUSR1
reopens --log-file.

Flags:
`

// usage prints the usage text with the flags of cmd, each flag once with
// all its names.
func usage(w io.Writer, cmd string) {
	_, fs, idx := newFlagSet(cmd)
	fmt.Fprint(w, usageText)
	for _, fi := range idx.order {
		f := fs.Lookup(fi.canonical)
		names := make([]string, len(fi.names))
		for i, n := range fi.names {
			names[i] = "--" + n
			if len(n) == 1 {
				names[i] = "-" + n
			}
		}
		arg, text := flag.UnquoteUsage(f)
		if arg == "value" {
			arg = map[flagKind]string{kindInt: "N", kindDuration: "duration"}[fi.kind]
		}
		if fi.kind == kindBool {
			arg = ""
		}
		fmt.Fprintf(w, "  %s\n    \t%s", strings.TrimSpace(strings.Join(names, ", ")+" "+arg), text)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

// runHelp is the help subcommand: the usage on stdout, status 0.
func runHelp(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		if command(args[0]) == nil {
			fmt.Fprintf(stderr, "mtproxy: no command %q\n", args[0])
			return 2
		}
		cmd = args[0]
	}
	if cmd == "generate-secret" {
		generateSecretUsage(stdout)
		return 0
	}
	usage(stdout, cmd)
	return 0
}

// runLink is the link subcommand: every user's links, as the proxy with the
// same flags and config file would log them at start.
func runLink(args []string, stdout, stderr io.Writer) int {
	o, code := optionsFor("link", args, stderr)
	if o == nil {
		return code
	}
	if len(o.users) == 0 {
		fmt.Fprintln(stderr, "mtproxy: no secrets to link: give -S SECRET or [users] in a --config file (mtproxy generate-secret makes one)")
		return 2
	}
	host := publicHost(o)
	if o.publicHost == "" && host == "127.0.0.1" {
		fmt.Fprintln(stderr, "mtproxy: no global IPv4 address found; the links name 127.0.0.1 (give --public-host)")
	}
	if err := printLinks(stdout, o, host, o.qr); err != nil {
		fmt.Fprintf(stderr, "mtproxy: %v\n", err)
		return 1
	}
	return 0
}

func generateSecretFlags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("generate-secret", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	domain := fs.String("tls", "", "make a fake-TLS (ee) secret for this `domain` (the proxy's -D)")
	return fs, domain
}

func generateSecretUsage(w io.Writer) {
	fs, _ := generateSecretFlags()
	fmt.Fprintln(w, "Usage: mtproxy generate-secret [--tls DOMAIN]\n\nPrints a fresh secret: dd and 32 hex digits, or with --tls ee, 32 hex digits and the domain in hex.")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// runGenerateSecret is the generate-secret subcommand: a fresh key in the
// dd form, or in the ee form for --tls DOMAIN, on one line.
func runGenerateSecret(args []string, stdout, stderr io.Writer) int {
	fs, domain := generateSecretFlags()
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err == nil && *domain != "" {
		err = secret.CheckDomain(*domain)
	}
	if errors.Is(err, flag.ErrHelp) {
		generateSecretUsage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtproxy: generate-secret: %v\n", err)
		return 2
	}
	s, err := secret.Generate(rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "mtproxy: %v\n", err)
		return 1
	}
	if *domain != "" {
		s = s.WithMode(secret.FakeTLS, *domain)
	} else {
		s = s.WithMode(secret.Secure, "")
	}
	fmt.Fprintln(stdout, s.Hex())
	return 0
}
