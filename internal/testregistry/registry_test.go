//go:build unix

package testregistry

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestStartStop(t *testing.T) {
	r := New(t)
	if !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Errorf("Host = %q, want 127.0.0.1:PORT", r.Host)
	}
	if !r.Reachable() {
		t.Fatalf("registry not reachable after start; log:\n%s", r.LogTail(20))
	}
	pid := r.cmd.Process.Pid

	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if r.Reachable() {
		t.Error("registry still reachable after Stop")
	}
	// Signal 0 probes existence; the whole group must be gone and reaped.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Stop: %v", pid, err)
	}
}

func TestParallelInstances(t *testing.T) {
	a, b := New(t), New(t)
	if a.Host == b.Host || a.Dir == b.Dir {
		t.Fatalf("instances share host or dir: %+v %+v", a, b)
	}
	if !a.Reachable() || !b.Reachable() {
		t.Fatal("instances not both reachable")
	}
}
