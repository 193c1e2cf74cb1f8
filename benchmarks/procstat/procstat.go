// Package procstat reads the CPU time and resident memory of a process and
// its descendants from /proc, so that a proxy that forks workers, or runs
// under a wrapper, is measured whole.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// per second on every architecture Linux and Go support together.
const clockTick = 10 * time.Millisecond

// Usage is what a process tree uses at one moment.
type Usage struct {
	CPU   time.Duration // user plus system time, since each process started
	RSS   int64         // resident bytes (VmRSS), summed; shared pages count once per process
	Procs int
}

// proc is what /proc/PID/stat says about one process.
type proc struct {
	ppid int
	cpu  time.Duration
}

func readStat(pid int) (proc, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, err
	}
	// The command name, field 2, is in parentheses and may hold anything,
	// so fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, fmt.Errorf("procstat: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, state
	if len(f) < 13 {
		return proc{}, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))               // field 4
	utime, err2 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, err3 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err := errors.Join(err1, err2, err3); err != nil {
		return proc{}, fmt.Errorf("procstat: /proc/%d/stat: %w", pid, err)
	}
	return proc{ppid: ppid, cpu: time.Duration(utime+stime) * clockTick}, nil
}

// readRSS returns VmRSS from /proc/PID/status; zero for a zombie.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("procstat: /proc/%d/status: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, nil
}

// Tree returns the usage of pid and all its descendants. Processes that
// exit while it reads are skipped; pid itself must exist.
func Tree(pid int) (Usage, error) {
	root, err := readStat(pid)
	if err != nil {
		return Usage{}, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return Usage{}, err
	}
	children := make(map[int][]int)
	cpu := map[int]time.Duration{pid: root.cpu}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, err := readStat(p); err == nil {
			children[st.ppid] = append(children[st.ppid], p)
			cpu[p] = st.cpu
		}
	}
	var u Usage
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		p := queue[0]
		rss, err := readRSS(p)
		if err != nil && p == pid {
			return Usage{}, err
		}
		u.CPU += cpu[p]
		u.RSS += rss
		u.Procs++
		queue = append(queue, children[p]...)
	}
	return u, nil
}

// maxSamples bounds a Poller that is never stopped.
const maxSamples = 1 << 20

// Poller calls a function at a fixed interval, from its own goroutine,
// until Stop or until the function fails (the process it reads is gone).
type Poller struct {
	stop chan struct{}
	done chan struct{}
	err  error // set before done is closed
}

// Poll calls read now and then every interval.
func Poll(every time.Duration, read func() error) *Poller {
	p := &Poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for range maxSamples {
			if p.err = read(); p.err != nil {
				return
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop ends polling and returns read's error, if it failed.
func (p *Poller) Stop() error {
	close(p.stop)
	<-p.done
	return p.err
}

// Sampler reads the usage of a process tree at a fixed interval and keeps
// the peak resident size.
type Sampler struct {
	poll *Poller
	mu   sync.Mutex
	peak int64
}

// Sample starts sampling the tree of pid every interval until Stop.
func Sample(pid int, every time.Duration) *Sampler {
	s := &Sampler{}
	s.poll = Poll(every, func() error {
		u, err := Tree(pid)
		s.mu.Lock()
		s.peak = max(s.peak, u.RSS)
		s.mu.Unlock()
		return err
	})
	return s
}

// Peak returns the largest resident size seen so far.
func (s *Sampler) Peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Stop ends sampling and returns the peak resident size, with an error if
// the process vanished.
func (s *Sampler) Stop() (int64, error) {
	err := s.poll.Stop()
	return s.Peak(), err
}
