package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// TestDropPrivilegesUnknownUser: a user that does not exist is named in
// the error, before anything changes.
func TestDropPrivilegesUnknownUser(t *testing.T) {
	err := dropPrivileges("no-such-user-mtproxy")
	if err == nil || !strings.Contains(err.Error(), "-u no-such-user-mtproxy") || !strings.Contains(err.Error(), "unknown user") {
		t.Fatalf("err %v, want it to name the unknown user", err)
	}
}

// TestDropPrivileges switches users in a child process, to nobody and then
// back to root: as root the first must succeed (every id is nobody's) and
// the second fail, as any switch by a user other than root, saying root is
// needed.
func TestDropPrivileges(t *testing.T) {
	if names := os.Getenv("MTPROXY_TEST_DROP"); names != "" {
		for _, name := range strings.Split(names, ",") {
			if err := dropPrivileges(name); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			fmt.Println("uid", os.Getuid(), "gid", os.Getgid(), "euid", os.Geteuid(), "egid", os.Getegid())
		}
		os.Exit(0)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDropPrivileges$")
	cmd.Env = append(os.Environ(), "MTPROXY_TEST_DROP=nobody,root")
	out, _ := cmd.CombinedOutput()
	wantErr := "error: -u root: setgroups: operation not permitted (run as root to switch users)"
	if os.Geteuid() != 0 {
		wantErr = "error: -u nobody: setgroups: operation not permitted (run as root to switch users)"
	} else if want := fmt.Sprintf("uid %s gid %s euid %s egid %s\n", u.Uid, u.Gid, u.Uid, u.Gid); !strings.HasPrefix(string(out), want) {
		t.Fatalf("as root: output %q, want it to start with %q", out, want)
	}
	if !strings.Contains(string(out), wantErr) {
		t.Fatalf("output %q, want %q", out, wantErr)
	}
}

// TestRunWithUnknownUser: the proxy refuses to start, saying why.
func TestRunWithUnknownUser(t *testing.T) {
	var stderr bytes.Buffer
	port := strconv.Itoa(freePort(t, "tcp4", "127.0.0.1"))
	code := run([]string{"-H", port, "--address", "127.0.0.1", "-S", key, "-u", "no-such-user-mtproxy"}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "cannot start") || !strings.Contains(stderr.String(), "unknown user") {
		t.Fatalf("exit %d, log:\n%s", code, stderr.String())
	}
}
