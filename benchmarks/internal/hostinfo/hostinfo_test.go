package hostinfo

import (
	"runtime"
	"testing"
)

func TestRead(t *testing.T) {
	h := Read(42)
	if h.CPUs != runtime.NumCPU() || h.NoFile != 42 || h.GoVersion != runtime.Version() {
		t.Fatalf("%+v", h)
	}
	if runtime.GOOS == "linux" && (h.Kernel == "" || h.LoadAvg == "") {
		t.Fatalf("no kernel or load average on Linux: %+v", h)
	}
}
