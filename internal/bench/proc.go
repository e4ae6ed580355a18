package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds one child process, so a hung tool fails the run
// instead of stalling it forever.
const cmdTimeout = 15 * time.Minute

// sample is one timed execution: wall seconds and peak resident set size.
type sample struct {
	secs   float64
	rssKiB int64
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

// run executes c and measures it. Wall time includes process start-up,
// as a user running the tool would see it.
func (c command) run(ctx context.Context) (sample, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	ec := exec.CommandContext(ctx, c.name, c.args...)
	ec.Dir = c.dir
	if c.env != nil {
		ec.Env = append(ec.Environ(), c.env...)
	}
	ec.SysProcAttr = sysProcAttr()
	var stdout, stderr bytes.Buffer
	ec.Stdout, ec.Stderr = &stdout, &stderr

	start := time.Now()
	err := ec.Run()
	s := sample{secs: time.Since(start).Seconds()}
	if ec.ProcessState != nil {
		s.rssKiB = maxRSSKiB(ec.ProcessState)
	}
	if err != nil {
		return s, stdout.Bytes(), fmt.Errorf("%s: %w\n%s", c, err, tail(stderr.String(), 15))
	}
	return s, stdout.Bytes(), nil
}

// runAll runs cmds one after another, as a shell loop would: the sample is
// the wall time of the whole loop and the largest peak RSS of any of them.
func runAll(ctx context.Context, cmds []command) (sample, error) {
	var total sample
	start := time.Now()
	for _, c := range cmds {
		s, _, err := c.run(ctx)
		if err != nil {
			return sample{}, err
		}
		total.rssKiB = max(total.rssKiB, s.rssKiB)
	}
	total.secs = time.Since(start).Seconds()
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
