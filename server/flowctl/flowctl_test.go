package flowctl

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// epollWatch is one line of /proc/self/fdinfo/EPFD: a watched fd and its mask.
type epollWatch struct{ fd, events int }

// epollSets reads which epoll descriptor watches which fds, from the kernel's
// own account rather than gnet's.
func epollSets(t *testing.T) map[int][]epollWatch {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int][]epollWatch{}
	for _, e := range entries {
		epfd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// tfd:        9 events:       19 data: ...
			if len(fields) < 4 || fields[0] != "tfd:" || fields[2] != "events:" {
				continue
			}
			fd, _ := strconv.Atoi(fields[1])
			ev, _ := strconv.ParseInt(fields[3], 16, 64)
			sets[epfd] = append(sets[epfd], epollWatch{fd, int(ev)})
		}
		f.Close()
	}
	return sets
}

func maskOf(t *testing.T, epfd, fd int) (int, bool) {
	for _, w := range epollSets(t)[epfd] {
		if w.fd == fd {
			return w.events, true
		}
	}
	return 0, false
}

// probe is a gnet handler that records each conn and, on request, pauses it
// on its own loop.
type probe struct {
	gnet.BuiltinEventEngine
	mu     sync.Mutex
	conns  []gnet.Conn
	opened chan gnet.Conn
	eng    gnet.Engine
	booted chan struct{}
	read   map[gnet.Conn]int
}

func (p *probe) OnBoot(eng gnet.Engine) gnet.Action {
	p.eng = eng
	close(p.booted)
	return gnet.None
}

func (p *probe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	p.opened <- c
	return nil, gnet.None
}

func (p *probe) OnTraffic(c gnet.Conn) gnet.Action {
	n, _ := c.Discard(-1)
	p.mu.Lock()
	p.read[c] += n
	p.mu.Unlock()
	return gnet.None
}

func (p *probe) readBy(c gnet.Conn) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.read[c]
}

func startProbe(t *testing.T, loops int) (*probe, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &probe{opened: make(chan gnet.Conn, 16), booted: make(chan struct{}), read: map[gnet.Conn]int{}}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(p, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithNumEventLoop(loops))
	}()
	select {
	case <-p.booted:
	case err := <-done:
		t.Fatalf("gnet: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.eng.Stop(ctx)
		<-done
	})
	return p, addr
}

// onLoop runs f on c's event loop and waits for it.
func onLoop(t *testing.T, c gnet.Conn, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	err := c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		errc <- f()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestEpollFDMatchesKernel(t *testing.T) {
	p, addr := startProbe(t, 2)
	seen := map[int]bool{}
	for i := 0; i < 6; i++ {
		cl, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		c := <-p.opened
		epfd, err := EpollFD(c)
		if err != nil {
			t.Fatal(err)
		}
		seen[epfd] = true
		mask, ok := maskOf(t, epfd, c.Fd())
		if !ok {
			t.Fatalf("fd %d is not watched by epoll fd %d", c.Fd(), epfd)
		}
		if mask&unix.EPOLLIN == 0 {
			t.Fatalf("fresh conn mask %#x lacks EPOLLIN", mask)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("saw %d distinct loop epoll fds over 6 conns on 2 loops, want 2", len(seen))
	}
}

func TestPauseStopsReadingAndResumeRestarts(t *testing.T) {
	p, addr := startProbe(t, 1)
	cl, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := <-p.opened
	epfd, err := EpollFD(c)
	if err != nil {
		t.Fatal(err)
	}
	onLoop(t, c, func() error { return Pause(epfd, c) })
	if mask, _ := maskOf(t, epfd, c.Fd()); mask&(unix.EPOLLIN|unix.EPOLLOUT) != 0 {
		t.Fatalf("paused mask %#x, want neither EPOLLIN nor EPOLLOUT", mask)
	}

	// The sender fills the kernel buffers and then blocks: nothing is read.
	payload := make([]byte, 64<<10)
	cl.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	sent := 0
	for sent < 64<<20 {
		n, err := cl.Write(payload)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= 64<<20 {
		t.Fatal("64 MiB went into a paused connection")
	}
	if got := p.readBy(c); got != 0 {
		t.Fatalf("handler read %d bytes while paused", got)
	}

	onLoop(t, c, func() error { return Resume(epfd, c) })
	deadline := time.Now().Add(5 * time.Second)
	for p.readBy(c) < sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.readBy(c); got != sent {
		t.Fatalf("after resume read %d of %d bytes", got, sent)
	}
	if mask, _ := maskOf(t, epfd, c.Fd()); mask&unix.EPOLLIN == 0 {
		t.Fatalf("resumed mask %#x lacks EPOLLIN", mask)
	}
}

func TestEpollFDRejectsForeignConn(t *testing.T) {
	if _, err := EpollFD(fakeConn{}); err == nil {
		t.Fatal("want an error for a conn that is not gnet's")
	}
}

type fakeConn struct{ gnet.Conn }
