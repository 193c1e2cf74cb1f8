// Package flowctl stops and restarts reading a gnet connection, which gnet
// v2.9.7 itself cannot do (gnet issue 712): it reads every readable socket
// into an unbounded inbound buffer, so a relay towards a slower peer would
// hold an ever-growing backlog.
//
// # Choice
//
// The options, measured on this kind of machine (../shared/notes):
//
//   - SO_RCVLOWAT on the source: no effect, epoll still reports the socket
//     readable once the window nearly closes.
//   - Blocking the loop until the peer drains: bounded, but it starves every
//     other connection on the loop.
//   - Parking (Dup the fd, close the gnet conn, Enroll it again later):
//     public API only, but ~40 µs and ~25 syscalls per cycle, a goroutine
//     hop, a new gnet.Conn (and often a new fd) each time, and a parked conn
//     cannot be written to, so two-way traffic defeats it.
//   - Changing the socket's mask on the loop's own epoll set: one
//     epoll_ctl(EPOLL_CTL_MOD) per pause or resume (0.5–3 µs), the same conn
//     throughout, and writes keep working.
//
// We take the last. Its costs are a read-only look at one unexported gnet
// field (the loop's epoll fd, checked against /proc in the tests and pinned
// by go.mod) and two rules the caller keeps, because gnet re-enables reading
// behind our back in level-triggered mode:
//
//   - after a write to a paused conn that left bytes in its outbound buffer
//     (gnet then arms EPOLLIN|EPOLLOUT), call Pause again;
//   - when a paused conn delivers data anyway (gnet re-arms EPOLLIN when its
//     outbound buffer empties), take it and call Pause again.
//
// At most one read (ReadBufferCap bytes) slips through per such undo, which
// keeps memory bounded. gnet must run level-triggered (the default) and
// without its poll_opt build tag, where the epoll data word is a pointer.
package flowctl

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// The masks gnet itself uses in level-triggered mode.
const (
	readEvents  = unix.EPOLLIN | unix.EPOLLPRI
	writeEvents = unix.EPOLLOUT
)

// EpollFD returns the epoll descriptor of the event loop that owns c.
// Every conn of one loop shares it, so callers look it up once per loop.
func EpollFD(c gnet.Conn) (fd int, err error) {
	defer func() {
		// reflect panics when the layout differs from the one pinned.
		if r := recover(); r != nil {
			fd, err = -1, fmt.Errorf("flowctl: unexpected gnet layout: %v", r)
		}
	}()
	v := reflect.ValueOf(c)
	for _, name := range []string{"loop", "poller", "fd"} {
		if v.Kind() != reflect.Pointer || v.IsNil() {
			return -1, errors.New("flowctl: unexpected gnet layout at " + name)
		}
		v = v.Elem().FieldByName(name)
		if !v.IsValid() {
			return -1, errors.New("flowctl: gnet has no field " + name)
		}
	}
	if v.Kind() != reflect.Int {
		return -1, errors.New("flowctl: gnet epoll fd is not an int")
	}
	return int(v.Int()), nil
}

// Pause stops epoll from reporting c readable. Writes still complete: the
// mask keeps EPOLLOUT while c has bytes waiting in its outbound buffer
// (EPOLLOUT on an empty buffer would wake the loop for nothing).
func Pause(epfd int, c gnet.Conn) error {
	var mask uint32
	if c.OutboundBuffered() > 0 {
		mask = writeEvents
	}
	return modify(epfd, c.Fd(), mask)
}

// Resume restores the mask gnet would have set.
func Resume(epfd int, c gnet.Conn) error {
	var mask uint32 = readEvents
	if c.OutboundBuffered() > 0 {
		mask |= writeEvents
	}
	return modify(epfd, c.Fd(), mask)
}

func modify(epfd, fd int, mask uint32) error {
	ev := unix.EpollEvent{Events: mask, Fd: int32(fd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("flowctl: epoll_ctl mod fd %d: %w", fd, err)
	}
	return nil
}
