package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// config is what the flags select.
type config struct {
	out       string
	count     int
	layers    int
	layerSize int64
	runs      int
	workdir   string
	scale     bool
	small     []int // small-image set sizes, ascending; empty = none
	jobs      int   // parallel uploads of the ingest floor
}

func main() {
	if os.Getenv(spawnEnv) == "1" {
		os.Exit(spawnMain(os.Args[1:]))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	// Cancelling on a signal lets deferred cleanups stop every registry.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("interrupted: %w", err)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{layerSize: 16 << 20, small: []int{100, 1000}}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.out, "out", "docs/benchmarks.md", "Markdown report to write")
	fs.IntVar(&cfg.count, "count", 20, "number of images in the set")
	fs.IntVar(&cfg.layers, "layers", 3, "layers per image; the first is a base layer shared by all images")
	fs.Var((*byteSize)(&cfg.layerSize), "layer-size", "payload bytes per layer: plain bytes or a KiB/MiB/GiB suffix")
	fs.IntVar(&cfg.runs, "runs", 3, "repetitions of every measurement; the median time is reported")
	fs.StringVar(&cfg.workdir, "workdir", "", "scratch directory, kept afterwards (default: a temporary directory, removed at the end)")
	fs.BoolVar(&cfg.scale, "scale", false, "also run relocate once on a set twice as large, to show peak RSS stays flat")
	fs.Var((*sizeList)(&cfg.small), "small", "comma-separated numbers of small images (2 × 64 KiB layers) to import with relocate and copy with crane; 0 disables")
	fs.IntVar(&cfg.jobs, "jobs", relocateJobs(), "parallel uploads of the registry ingest floor (default: relocate's own default)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	switch {
	case c.out == "":
		return errors.New("-out must name a file")
	case c.count < 1:
		return fmt.Errorf("-count %d: need at least 1 image", c.count)
	case c.layers < 1:
		return fmt.Errorf("-layers %d: need at least 1 layer", c.layers)
	case c.layerSize < 1:
		return fmt.Errorf("-layer-size %d: need at least 1 byte", c.layerSize)
	case c.runs < 1:
		return fmt.Errorf("-runs %d: need at least 1 run", c.runs)
	case c.jobs < 1:
		return fmt.Errorf("-jobs %d: need at least 1", c.jobs)
	}
	return nil
}

// relocateJobs is relocate.DefaultJobs, copied: the bench drives the CLI
// and stays off the library, which builds on fewer systems.
func relocateJobs() int { return max(8, 4*runtime.NumCPU()) }

// sizeList is a flag of comma-separated positive counts, kept sorted and
// without repeats; "0" (or "") means none.
type sizeList []int

func (l *sizeList) String() string {
	if l == nil || len(*l) == 0 {
		return "0"
	}
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *sizeList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < 0 {
			return fmt.Errorf("%q: want comma-separated image counts, or 0 for none", v)
		}
		if n > 0 {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	*l = slices.Compact(out)
	return nil
}
