package main

import (
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/mtproxy-go/mtproxy/server"
)

func TestListenHosts(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		v6only bool
		want   []string
		err    string
	}{
		{nil, false, []string{"0.0.0.0"}, ""},
		{[]string{"--address", "127.0.0.1"}, false, []string{"127.0.0.1"}, ""},
		{[]string{"--address", "::1"}, false, []string{"::1"}, ""},
		{[]string{"--address", "[::1]"}, false, []string{"::1"}, ""},
		{[]string{"--address", "::1", "-6"}, false, []string{"::1"}, ""},
		// [::] is dual stack unless bindv6only: it takes IPv4 too.
		{[]string{"-6"}, false, []string{"::"}, ""},
		{[]string{"--ipv6"}, true, []string{"0.0.0.0", "::"}, ""},
		{[]string{"-6", "--address", "192.0.2.1"}, true, []string{"192.0.2.1", "::"}, ""},
		{[]string{"-6", "--address", "192.0.2.1"}, false, nil, "bindv6only"},
	} {
		o, err := loadOptions("run", tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		got, err := listenHosts(o, tc.v6only)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q v6only=%v: %v, %v; want an error about %s", tc.args, tc.v6only, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q v6only=%v: %q, %v; want %q", tc.args, tc.v6only, got, err, tc.want)
		}
	}
	o, _ := loadOptions("run", []string{"-H", "443,8443", "--address", "::1"})
	if addrs, err := listenAddrs(o); err != nil || !slices.Equal(addrs, []string{"[::1]:443", "[::1]:8443"}) {
		t.Errorf("listen addresses %q, %v", addrs, err)
	}
	for _, bad := range []string{"localhost", "fe80::1%eth0", "1.2.3"} {
		if _, err := loadOptions("run", []string{"--address", bad}); err == nil {
			t.Errorf("--address %s accepted", bad)
		}
	}
}

// TestIPv6Loopback relays a client through the proxy listening on [::1].
func TestIPv6Loopback(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	d := startEchoDC(t)
	o, err := loadOptions("run", []string{"--address", "::1", "-H", port, "-S", key, "--dc", "2=" + d.Addr(), "-M", "1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := serverConfig(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		t.Fatal(err)
	case <-srv.Ready():
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-served
	})
	if a := srv.Addrs(); len(a) != 1 || a[0].String() != "[::1]:"+port {
		t.Fatalf("listening on %v", a)
	}
	echo(t, dialKey(t, "[::1]:"+port, mustKey(t, key)), 3000)
	if host := publicHost(o); host != "::1" {
		t.Errorf("public host %q", host)
	}
	if tg, _ := proxyLinks(publicHost(o), 443, key); !strings.Contains(tg, "server=%3A%3A1&") {
		t.Errorf("link %s: want the IPv6 literal without brackets", tg)
	}
}

func TestFileLimit(t *testing.T) {
	limit, _, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cur != r.Max || limit != r.Cur {
		t.Errorf("limit %d, rlimit %+v: want the soft limit at the hard one", limit, r)
	}
	if msg, bad := fileLimitAdvice(1024, 1000); !bad || !strings.Contains(msg, "too low for -C") {
		t.Errorf("-C 1000 under 1024 fds: %q, %v", msg, bad)
	}
	if _, bad := fileLimitAdvice(1<<20, 1000); bad {
		t.Error("-C 1000 under 1M fds flagged")
	}
	if msg, bad := fileLimitAdvice(1024, 0); bad || msg == "" {
		t.Errorf("no -C: %q, %v", msg, bad)
	}
	if fdsNeeded(1000) != 2256 || clientsFor(2256) != 1000 || clientsFor(10) != 0 {
		t.Error("fd arithmetic")
	}
	// The warning reaches the start-up log.
	var stderr strings.Builder
	port := strconv.Itoa(freePort(t, "tcp4", "127.0.0.1"))
	args := []string{"-H", port, "--address", "127.0.0.1", "-S", key, "-C", strconv.FormatUint(r.Max, 10), "-u", "no-such-user-mtproxy"}
	run(args, io.Discard, &stderr)
	if !strings.Contains(stderr.String(), "too low for -C") || !strings.Contains(stderr.String(), "open-file limit") {
		t.Errorf("start-up log:\n%s", stderr.String())
	}
}
