// Package hostinfo describes the machine a benchmark or soak ran on, for
// its report: other load and a different CPU change every number.
package hostinfo

import (
	"bytes"
	"os"
	"runtime"
	"strings"
)

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	NoFile    uint64 `json:"nofile"` // RLIMIT_NOFILE the run had
	// LoadAvg is /proc/loadavg at the start: other load on the machine
	// distorts every number.
	LoadAvg string `json:"loadavg"`
}

// Read describes this machine; nofile is the run's file limit.
func Read(nofile uint64) Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NoFile: nofile}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			h.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				h.CPUModel = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	return h
}
