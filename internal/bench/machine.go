package main

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the numbers were taken; they mean little without it.
type machine struct {
	date     time.Time
	cpu      string
	nproc    int
	memBytes int64
	kernel   string
	goVer    string
	commit   string // relocate's git commit, "" if unknown
	load     string // /proc/loadavg's 1, 5 and 15 minute averages at the start
}

func describeMachine(ctx context.Context, modRoot string) machine {
	return machine{
		date:     time.Now().UTC(),
		cpu:      procField("/proc/cpuinfo", "model name"),
		nproc:    runtime.NumCPU(),
		memBytes: memTotal(),
		kernel:   strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		goVer:    runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		commit:   gitCommit(ctx, modRoot),
		load:     loadAvg(),
	}
}

// loadAvg is the 1, 5 and 15 minute load averages: on a shared machine
// they say how much of it the bench had.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// procField returns the value of the first "key : value" line in a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotal reads MemTotal from /proc/meminfo ("MemTotal: 24684 kB").
func memTotal() int64 {
	fields := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(fields) == 0 {
		return 0
	}
	kb, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

// gitCommit names the measured code, marking uncommitted changes.
func gitCommit(ctx context.Context, modRoot string) string {
	_, out, err := command{dir: modRoot, name: "git", args: []string{"rev-parse", "--short", "HEAD"}}.run(ctx)
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	_, status, err := command{dir: modRoot, name: "git", args: []string{"status", "--porcelain"}}.run(ctx)
	if err == nil && len(strings.TrimSpace(string(status))) > 0 {
		commit += " (with uncommitted changes)"
	}
	return commit
}
