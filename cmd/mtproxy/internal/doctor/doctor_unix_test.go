//go:build unix

package doctor

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A check that ignores its context (here: opening a FIFO nobody writes
// to, as a file on a dead NFS mount would block) does not hold up Run.
func TestHangIgnoringContext(t *testing.T) {
	t.Parallel()
	rc := middleFiles(t, "proxy_for 2 127.0.0.1:1;\n")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs:", err)
	}
	rc.ProxyConfig.Path = fifo
	cfg := local(t)
	cfg.Middle, cfg.Refresh, cfg.Timeout = true, rc, 200*time.Millisecond
	start := time.Now()
	rs := Run(context.Background(), cfg)
	if took := time.Since(start); took > cfg.Timeout+margin+300*time.Millisecond {
		t.Errorf("Run took %v", took)
	}
	expect(t, find(t, rs, "middle proxies"), Fail, "did not finish within 200ms")
	expect(t, find(t, rs, "clock"), OK)
	// Let the stuck open return, so the goroutine ends. A non-blocking
	// open for writing fails until the reader is there, so waiting for it
	// is bounded even if the check never got as far as opening the FIFO.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
			return
		}
	}
	t.Log("the check never opened the FIFO")
}
