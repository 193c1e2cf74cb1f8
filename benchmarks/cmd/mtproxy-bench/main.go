// Command mtproxy-bench measures MTProxy servers on loopback: a fake
// Telegram DC, a load generator, and side-by-side comparisons of several
// proxies with a report in JSON, Markdown and SVG. See
// benchmarks/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

var commands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}{
	{"fakedc", "run a fake Telegram DC on loopback", runFakeDC},
	{"fakeme", "run a fake Telegram middle proxy on loopback", runFakeME},
	{"load", "put load on one proxy whose DCs lead to a fake DC", runLoad},
	{"compare", "run the scenario matrix against several proxies and report", runCompare},
	{"soak", "flood and soak the proxy binary; check it returns to its baseline", runSoak},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process exit: 0 on success, 1 on failure, 2 for
// a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		// Thousands of connections need thousands of descriptors, here and
		// in the proxies started from here.
		if _, err := proxyproc.RaiseNoFile(); err != nil {
			fmt.Fprintf(stderr, "mtproxy-bench: raising the open-file limit: %v\n", err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 2
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "mtproxy-bench %s: %v\nRun 'mtproxy-bench %s -h' for the flags.\n", c.name, err, c.name)
			return 2
		case err != nil:
			fmt.Fprintf(stderr, "mtproxy-bench %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "mtproxy-bench: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mtproxy-bench <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'mtproxy-bench <command> -h' for the flags of a command.")
}

// usageError is a bad command line.
type usageError struct{ error }

// newFlagSet returns a flag set whose errors come back from Parse; stderr
// receives usage text on -h and on errors.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mtproxy-bench %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// intList is a comma-separated list of positive integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

// stringList collects the values of a repeated flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
