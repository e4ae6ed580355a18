package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// spawnEnv switches the bench binary into its spawn-helper mode.
//
// Why a helper: Go starts children with vfork semantics (CLONE_VM), and on
// exec Linux folds the old address space's peak RSS (the parent's) into the
// child's ru_maxrss. A child started directly by the bench would therefore
// report at least the bench's own RSS, tens of MiB after pushing the set.
// The helper is a fresh, small process, so what it starts inherits only its
// few MiB; the report states that floor, measured with `true`.
const spawnEnv = "RELOCATE_BENCH_SPAWN"

// reportFD is where the helper writes "seconds maxrssKiB cpuSeconds" for
// the parent.
const reportFD = 3

// spawnMain runs in the helper: it runs args[0] with args[1:] on the
// helper's stdio, writes the measurement to reportFD and exits with the
// child's status.
func spawnMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench spawn helper: no command")
		return 2
	}
	syscall.CloseOnExec(reportFD) // keep the report pipe out of the child
	report := os.NewFile(reportFD, "report")

	c := exec.Command(args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = withoutSpawnEnv(os.Environ())
	c.SysProcAttr = sysProcAttr() // the child dies with the helper
	start := time.Now()
	err := c.Run()
	secs := time.Since(start).Seconds()
	if c.ProcessState == nil {
		fmt.Fprintf(os.Stderr, "bench spawn helper: %v\n", err)
		return 127
	}
	cpu := c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	fmt.Fprintf(report, "%f %d %f\n", secs, maxRSSKiB(c.ProcessState), cpu.Seconds())
	report.Close()
	if code := c.ProcessState.ExitCode(); code >= 0 {
		return code
	}
	return 1 // killed by a signal
}

func withoutSpawnEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, spawnEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// parseSpawnReport reads the helper's "seconds maxrssKiB cpuSeconds" line.
func parseSpawnReport(b []byte) (sample, error) {
	var s sample
	if _, err := fmt.Sscanf(string(b), "%f %d %f", &s.secs, &s.rssKiB, &s.cpuSecs); err != nil {
		return sample{}, fmt.Errorf("spawn helper report %q: %w", b, err)
	}
	return s, nil
}
