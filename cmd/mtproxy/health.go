package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// healthTimeout bounds the health check's connect.
const healthTimeout = 3 * time.Second

// runHealthcheck is the healthcheck subcommand, for container health
// checks in images without a shell: it connects to the client port (by
// default 127.0.0.1:443, the image's) and hangs up at once, which the
// proxy takes as any client that left before its header. Status 0 when the
// proxy accepted the connection.
func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	addr := "127.0.0.1:443"
	switch len(args) {
	case 0:
	case 1:
		addr = args[0]
	default:
		fmt.Fprintln(stderr, "mtproxy: healthcheck takes one HOST:PORT")
		return 2
	}
	c, err := net.DialTimeout("tcp", addr, healthTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "mtproxy: unhealthy: %v\n", err)
		return 1
	}
	c.Close()
	fmt.Fprintf(stdout, "mtproxy: %s accepts connections\n", addr)
	return 0
}
