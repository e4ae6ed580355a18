package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

// bench holds the state of one benchmark run.
type bench struct {
	cfg     config
	workdir string
	tools   tools
	machine machine
	src     *testregistry.Registry
	set     *dataset
	regs    []*testregistry.Registry       // every registry started, for cleanup
	regPIDs map[*testregistry.Registry]int // running registries' processes, for CPU accounting
	small   *smallSets                     // the small-image sets, nil without -small
	res     *results
	start   time.Time
}

// run measures everything, then writes the report. Registries are stopped
// and scratch files removed on every path out, including errors and signals.
func run(ctx context.Context, cfg config) error {
	workdir, removeWorkdir, err := makeWorkdir(cfg.workdir)
	if err != nil {
		return err
	}
	defer removeWorkdir()
	b := &bench{cfg: cfg, workdir: workdir, res: newResults(), start: time.Now(), regPIDs: map[*testregistry.Registry]int{}}
	defer b.stopRegistries()

	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.measure(ctx); err != nil {
		return err
	}
	if cfg.scale {
		if err := b.measureScale(ctx); err != nil {
			return err
		}
	}
	return b.writeReport()
}

// makeWorkdir returns the scratch directory and how to clean it up: a
// temporary directory is removed, a directory the user named is kept.
func makeWorkdir(dir string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("workdir: %w", err)
		}
		abs, err := filepath.Abs(dir)
		return abs, func() {}, err
	}
	tmp, err := os.MkdirTemp("", "relocate-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("workdir: %w", err)
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// setup builds the tools, starts the source registry and pushes the set.
func (b *bench) setup(ctx context.Context) error {
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	b.logf("building relocate and crane in %s", b.workdir)
	if b.tools, err = buildTools(ctx, modRoot, filepath.Join(b.workdir, "bin")); err != nil {
		return err
	}
	if b.tools.skopeo == "" {
		b.res.notef("skopeo: not installed; its columns are empty.")
	}
	b.machine = describeMachine(ctx, modRoot)
	floor, _, err := cmd("true").run(ctx)
	if err != nil {
		return fmt.Errorf("measure RSS floor: %w", err)
	}
	b.res.floorKiB = floor.rssKiB

	if b.src, err = b.startRegistry(ctx, filepath.Join(b.workdir, "src")); err != nil {
		return err
	}
	spec := testimages.Spec{
		Repo: "bench/app-{i}", Tag: "v1", Count: b.cfg.count, Layers: b.cfg.layers,
		LayerSize: b.cfg.layerSize, Shared: 1, Seed: 1,
	}
	b.logf("pushing %d images × %d layers × %s to %s", spec.Count, spec.Layers, (*byteSize)(&spec.LayerSize), b.src.Host)
	if b.set, err = pushSet(ctx, b.src.Host, spec); err != nil {
		return err
	}
	b.logf("set: %d unique blobs, %.1f MiB unique, pushed in %.1fs", len(b.set.blobs), mib(b.set.uniqueBytes()), b.set.pushSecs)

	b.logf("disk write limit: 1 GiB with fsync")
	if b.res.diskMBs, err = diskWriteMBs(b.workdir); err != nil {
		return err
	}
	b.logf("disk write: %.0f MB/s", b.res.diskMBs)
	return b.setupSmall(ctx)
}

// measure repeats every tool's operations -runs times. Each run gets its
// own directory, removed afterwards so disk use stays at one run's worth.
func (b *bench) measure(ctx context.Context) error {
	for run := 1; run <= b.cfg.runs; run++ {
		b.logf("run %d/%d", run, b.cfg.runs)
		dir := filepath.Join(b.workdir, fmt.Sprintf("run-%d", run))
		if err := b.measureRun(ctx, dir); err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("run %d: clean up: %w", run, err)
		}
	}
	return nil
}

func (b *bench) measureRun(ctx context.Context, dir string) error {
	pull, err := pullMBs(ctx, b.src.Host, b.set.blobs)
	if err != nil {
		return err
	}
	b.res.pullMBs = append(b.res.pullMBs, pull)
	b.logf("  loopback pull: %.0f MB/s", pull)

	ops, hash, err := b.relocateRun(ctx, filepath.Join(dir, "relocate"), b.set)
	if err != nil {
		return err
	}
	for o, s := range ops {
		b.res.add(o, s)
	}
	// The floor goes right after relocate's import, from the same archive,
	// so that both see the machine in the same state.
	if err := b.measureFloor(ctx, filepath.Join(dir, "floor"), filepath.Join(dir, "relocate", archiveName), b.set); err != nil {
		return err
	}
	b.res.sha256MBs = append(b.res.sha256MBs, hash.single)
	b.res.sha256Par = append(b.res.sha256Par, hash.parallel)
	b.logf("  sha256 of archive: %.0f MB/s, %.0f MB/s with %d streams", hash.single, hash.parallel, runtime.NumCPU())

	if err := b.craneRun(ctx, filepath.Join(dir, "crane"), b.set); err != nil {
		return err
	}
	if b.tools.skopeo != "" {
		if err := b.skopeoRun(ctx, filepath.Join(dir, "skopeo"), b.set); err != nil {
			return err
		}
	}
	return b.smallRun(ctx, filepath.Join(dir, "small"))
}

// measureScale runs relocate once on a set with twice the images, to show
// that memory does not grow with the amount of data.
func (b *bench) measureScale(ctx context.Context) error {
	spec := b.set.spec
	spec.Repo, spec.Count, spec.Seed = "bench/scale-{i}", 2*spec.Count, 2
	b.logf("scale: pushing %d images", spec.Count)
	set, err := pushSet(ctx, b.src.Host, spec)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	dir := filepath.Join(b.workdir, "scale")
	ops, _, err := b.relocateRun(ctx, dir, set)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	b.res.scale = &scaleResult{set: set, ops: ops}
	return os.RemoveAll(dir)
}

// startRegistry starts a registry in dir and remembers it for cleanup.
func (b *bench) startRegistry(ctx context.Context, dir string) (*testregistry.Registry, error) {
	r, err := testregistry.Start(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	b.regs = append(b.regs, r)
	if pid := childServing(r.Dir); pid != 0 {
		b.regPIDs[r] = pid
	}
	return r, nil
}

// registryCPU is the CPU seconds used so far by the registries running
// now. The bench measures one operation at a time, so the difference
// around an operation is what the registries spent serving it.
func (b *bench) registryCPU() float64 {
	var total float64
	for _, pid := range b.regPIDs {
		if secs, ok := processCPU(pid); ok {
			total += secs
		}
	}
	return total
}

// withRegistryCPU runs measure and adds the registries' CPU seconds to its
// sample. A registry stopped inside measure would lose its share, so
// measure must not stop one.
func (b *bench) withRegistryCPU(measure func() (sample, error)) (sample, error) {
	before := b.registryCPU()
	s, err := measure()
	s.regCPU = b.registryCPU() - before
	return s, err
}

// stopRegistry stops r now; Stop is idempotent, so the final sweep in
// stopRegistries may call it again.
func (b *bench) stopRegistry(r *testregistry.Registry) {
	delete(b.regPIDs, r)
	if err := r.Stop(); err != nil {
		b.logf("warning: stop registry %s: %v", r.Host, err)
	}
}

func (b *bench) stopRegistries() {
	for _, r := range b.regs {
		b.stopRegistry(r)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6.1fs: %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) logSample(o op, s sample) {
	b.logf("  %-30s %7.2fs  %6.1f MiB RSS", o, s.secs, float64(s.rssKiB)/1024)
}
