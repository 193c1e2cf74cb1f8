package load

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgress(t *testing.T) {
	var m Meter
	var out lockedBuilder
	stop := Progress(context.Background(), &out, "bulk-1", &m, 20*time.Millisecond)
	m.Established.Add(3)
	m.Up.Add(3 << 20)
	m.Requests.Add(10)
	m.fail(errors.New("first"))
	m.fail(errors.New("second"))
	time.Sleep(70 * time.Millisecond)
	stop()
	lines := out.String()
	if !strings.Contains(lines, "  bulk-1 ") || !strings.Contains(lines, "3 conns") || !strings.Contains(lines, "2 errors") {
		t.Errorf("progress:\n%s", lines)
	}
	if n, err := m.Errors(); n != 2 || err.Error() != "first" {
		t.Errorf("Errors() = %d, %v; want 2 and the first", n, err)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[float64]string{0: "0.0 B", 1023: "1023.0 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%v) = %q, want %q", n, got, want)
		}
	}
}
