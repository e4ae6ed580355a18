package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds one child process, so a hung tool fails the run
// instead of stalling it forever.
const cmdTimeout = 15 * time.Minute

// sample is one timed execution: wall seconds, peak resident set size, and
// where the CPU went: the tool's own user+system seconds and the seconds the
// registries spent serving it (on a 2-CPU machine they compete, so both
// explain the wall time).
type sample struct {
	secs    float64
	rssKiB  int64
	cpuSecs float64 // the tool, or the bench itself for in-process measurements
	regCPU  float64 // every registry process running during the operation
}

// command is one child process to run and measure.
type command struct {
	dir  string   // working directory; "" is ours
	env  []string // extra variables on top of ours
	name string
	args []string
}

func cmd(name string, args ...string) command { return command{name: name, args: args} }

func (c command) String() string { return c.name + " " + strings.Join(c.args, " ") }

// run executes c through the spawn helper (see spawnEnv) and measures it.
// Wall time is taken in the helper, around the child alone, and includes
// the child's start-up, as a user running the tool would see it.
func (c command) run(ctx context.Context) (sample, []byte, error) {
	self, err := os.Executable()
	if err != nil {
		return sample{}, nil, fmt.Errorf("%s: locate bench binary: %w", c, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	ec := exec.CommandContext(ctx, self, append([]string{c.name}, c.args...)...)
	ec.Dir = c.dir
	ec.Env = append(append(ec.Environ(), c.env...), spawnEnv+"=1")
	ec.SysProcAttr = sysProcAttr()
	var stdout, stderr bytes.Buffer
	ec.Stdout, ec.Stderr = &stdout, &stderr
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return sample{}, nil, fmt.Errorf("%s: %w", c, err)
	}
	defer reportR.Close()
	ec.ExtraFiles = []*os.File{reportW} // fd 3 in the helper

	err = ec.Start()
	reportW.Close() // the helper holds its own copy
	if err == nil {
		err = ec.Wait()
	}
	if err != nil {
		return sample{}, stdout.Bytes(), fmt.Errorf("%s: %w\n%s", c, err, tail(stderr.String(), 15))
	}
	report, err := io.ReadAll(reportR)
	if err != nil {
		return sample{}, nil, fmt.Errorf("%s: %w", c, err)
	}
	s, err := parseSpawnReport(report)
	if err != nil {
		return sample{}, nil, fmt.Errorf("%s: %w", c, err)
	}
	return s, stdout.Bytes(), nil
}

// runAll runs cmds one after another, as a shell loop would: the sample is
// the total of their wall times and the largest peak RSS of any of them.
func runAll(ctx context.Context, cmds []command) (sample, error) {
	var total sample
	for _, c := range cmds {
		s, _, err := c.run(ctx)
		if err != nil {
			return sample{}, err
		}
		total.secs += s.secs
		total.cpuSecs += s.cpuSecs
		total.rssKiB = max(total.rssKiB, s.rssKiB)
	}
	return total, nil
}

// tail keeps the last n lines of a tool's stderr for error messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
