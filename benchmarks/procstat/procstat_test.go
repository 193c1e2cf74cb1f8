package procstat

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	before, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Touch memory, then spin until the CPU time moves; a busy machine
	// only makes that take longer.
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	var after Usage
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		for end := time.Now().Add(10 * time.Millisecond); time.Now().Before(end); {
		}
		if after, err = Tree(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after.CPU-before.CPU >= 50*time.Millisecond {
			break
		}
	}
	if after.CPU-before.CPU < 50*time.Millisecond {
		t.Errorf("CPU went from %v to %v after 10s of spinning", before.CPU, after.CPU)
	}
	if after.RSS < 64<<20 {
		t.Errorf("RSS %d after touching 64 MiB", after.RSS)
	}
	runtime.KeepAlive(buf)
}

func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	u, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	alone, err := readRSS(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.Procs < 2 || alone <= 0 {
		t.Errorf("tree of %d processes, child RSS %d; want the child counted", u.Procs, alone)
	}
}

func TestSampler(t *testing.T) {
	s := Sample(os.Getpid(), 5*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	if s.Peak() <= 0 {
		t.Error("no peak while running")
	}
	peak, err := s.Stop()
	if err != nil || peak <= 0 {
		t.Errorf("peak %d, %v", peak, err)
	}

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	if _, err := Sample(cmd.Process.Pid, time.Millisecond).Stop(); err == nil {
		t.Error("sampling a process that is gone reported no error")
	}
	if _, err := Tree(cmd.Process.Pid); err == nil {
		t.Error("Tree of a process that is gone reported no error")
	}
}
