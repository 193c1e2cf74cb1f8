// Package proxyproc starts a proxy under test from a command template and
// stops it again.
package proxyproc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// Expand splits a command template into words and replaces each {name} in
// them with vars[name]; an unknown name is an error. Words are separated by
// blanks and may be quoted as in a shell, with '…', "…" or a backslash;
// nothing else is interpreted, so a template needing a shell says
// sh -c '…'. Values are substituted after splitting and never split.
func Expand(template string, vars map[string]string) ([]string, error) {
	words, err := split(template)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("proxyproc: empty command")
	}
	for i, w := range words {
		var unknown []string
		words[i] = placeholder.ReplaceAllStringFunc(w, func(p string) string {
			v, ok := vars[p[1:len(p)-1]]
			if !ok {
				unknown = append(unknown, p)
			}
			return v
		})
		if unknown != nil {
			return nil, fmt.Errorf("proxyproc: unknown placeholder %s in %q", strings.Join(unknown, ", "), template)
		}
	}
	return words, nil
}

// split is a shell's word splitting without expansions.
func split(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case '\'', '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("proxyproc: unterminated %c in %q", c, s)
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("proxyproc: trailing backslash in %q", s)
			}
			i++
			w.WriteByte(s[i])
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// RaiseNoFile raises the soft limit on open files to the hard limit and
// returns it. Go raises its own limit at start but restores the old one for
// the processes it starts; an explicit Setrlimit is inherited instead, so a
// proxy started afterwards can hold as many connections as the load.
func RaiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Process is a started proxy. It runs in a process group of its own, so
// that workers it forks are stopped with it.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start runs argv with its output going to log (nil discards it) and
// waits, at most timeout, until addr accepts TCP connections.
func Start(argv []string, log io.Writer, addr string, timeout time.Duration) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proxyproc: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("proxyproc: %s exited before listening on %s: %v", argv[0], addr, p.err)
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(time.Second)
			return nil, fmt.Errorf("proxyproc: %s not listening on %s after %v", argv[0], addr, timeout)
		}
	}
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM to the process group, SIGKILL after grace, and waits
// for the process to exit. It returns an error if SIGKILL was needed.
func (p *Process) Stop(grace time.Duration) error {
	pgid := -p.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("proxyproc: pid %d ignored SIGTERM for %v", -pgid, grace)
}

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}
