package soak

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/procstat"
)

// countFDs returns the number of open descriptors of process pid, from
// /proc/PID/fd. For this process the count includes the descriptor of the
// directory being read, the same every time.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(4096)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fdKinds sums the descriptors of pid by what they point at: "socket",
// "anon_inode:[eventpoll]", "pipe", a file name, ... It explains an fd
// count that did not come back.
func fdKinds(pid int) map[string]int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	kinds := make(map[string]int)
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if i := strings.IndexByte(target, ':'); i > 0 && !strings.HasPrefix(target, "anon_inode") {
			target = target[:i] // socket:[123] → socket
		}
		kinds[target]++
	}
	return kinds
}

// kindsDiff describes how after differs from before.
func kindsDiff(before, after map[string]int) string {
	keys := make(map[string]bool)
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var parts []string
	for k := range keys {
		if d := after[k] - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %+d", k, d))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "no change by kind"
	}
	return strings.Join(parts, ", ")
}

// noFileLimit returns the soft limit on open files of process pid, from
// /proc/PID/limits.
func noFileLimit(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("Max open files")); ok {
			f := bytes.Fields(rest)
			if len(f) < 1 {
				break
			}
			if string(f[0]) == "unlimited" {
				return 1 << 62, nil
			}
			return strconv.ParseUint(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("soak: no open-file limit in /proc/%d/limits", pid)
}

// Usage is what a process uses at one moment.
type Usage struct {
	FDs int   `json:"fds"`
	RSS int64 `json:"rss_bytes"`
	// CPU is user plus system time since the process started.
	CPU time.Duration `json:"cpu_ns"`
}

// usageOf reads the fds, RSS and CPU time of pid.
func usageOf(pid int) (Usage, error) {
	u, err := procstat.Tree(pid)
	if err != nil {
		return Usage{}, err
	}
	n, err := countFDs(pid)
	if err != nil {
		return Usage{}, err
	}
	return Usage{FDs: n, RSS: u.RSS, CPU: u.CPU}, nil
}

// peakSampler reads the fd count and RSS of a process at a fixed interval
// and keeps the peaks.
type peakSampler struct {
	poll    *procstat.Poller
	mu      sync.Mutex
	fds     int
	rss     int64
	samples int
}

func samplePeaks(pid int, every time.Duration) *peakSampler {
	s := &peakSampler{}
	s.poll = procstat.Poll(every, func() error {
		u, err := usageOf(pid)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.fds = max(s.fds, u.FDs)
		s.rss = max(s.rss, u.RSS)
		s.samples++
		s.mu.Unlock()
		return nil
	})
	return s
}

// Stop ends sampling and returns the peaks; err is set if the process
// could not be read (it exited).
func (s *peakSampler) Stop() (fds int, rss int64, err error) {
	err = s.poll.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fds, s.rss, err
}

// logScan reads the proxy's log as it grows and picks out the lines that
// mean trouble.
type logScan struct {
	path    string
	off     int64
	partial []byte
}

// maxProblems bounds the log lines a phase quotes.
const maxProblems = 5

// LogFindings is what a phase's stretch of the proxy log held.
type LogFindings struct {
	Lines    int `json:"lines"`
	Warnings int `json:"warnings"` // WARN or ERROR lines (zap console or JSON)
	// Problems counts the lines that mention a panic or a fatal error;
	// any fails the phase. Quoted holds the first few.
	Problems int      `json:"problems"`
	Quoted   []string `json:"quoted,omitempty"`
}

// scan reads the log from where the last scan stopped.
func (l *logScan) scan() (LogFindings, error) {
	var lf LogFindings
	f, err := os.Open(l.path)
	if err != nil {
		return lf, err
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return lf, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		l.off += int64(len(line))
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if len(l.partial) > 0 {
				line = append(l.partial, line...)
				l.partial = nil
			}
			l.classify(&lf, string(bytes.TrimRight(line, "\r\n")))
		} else if len(line) > 0 {
			l.partial = append(l.partial, line...) // the rest comes later
		}
		if errors.Is(err, io.EOF) {
			return lf, nil
		}
		if err != nil {
			return lf, err
		}
	}
}

// flush classifies a last line without a newline (the proxy has exited).
func (l *logScan) flush(lf *LogFindings) {
	if len(l.partial) > 0 {
		l.classify(lf, string(l.partial))
		l.partial = nil
	}
}

func (l *logScan) classify(lf *LogFindings, line string) {
	lf.Lines++
	lower := strings.ToLower(line)
	switch {
	case strings.Contains(lower, "panic") || strings.Contains(lower, "fatal"):
		lf.Problems++
		if len(lf.Quoted) < maxProblems {
			lf.Quoted = append(lf.Quoted, truncate(line, 300))
		}
	case strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") ||
		strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`):
		lf.Warnings++
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (lf *LogFindings) add(o LogFindings) {
	lf.Lines += o.Lines
	lf.Warnings += o.Warnings
	lf.Problems += o.Problems
	for _, q := range o.Quoted {
		if len(lf.Quoted) < maxProblems {
			lf.Quoted = append(lf.Quoted, q)
		}
	}
}
