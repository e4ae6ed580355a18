package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relocate-dev/relocate/internal/testimages"
)

// smallSpec is the small image: a config and two 64 KiB layers,
// nothing shared, so that the cost per image is round trips, not bytes.
func smallSpec(count int) testimages.Spec {
	return testimages.Spec{Repo: "small/img-{i}", Tag: "v1", Count: count, Layers: 2, LayerSize: 64 << 10, Seed: 3}
}

// smallSets are the small images in the source registry and their archives.
// Each size's set is the first images of the largest one.
type smallSets struct {
	images   []testimages.Image
	archives map[int]string
	pushSecs float64
}

// set is the first n images.
func (s *smallSets) set(n int) []testimages.Image { return s.images[:n] }

// bytes is what n small images hold: nothing is shared between them, so
// every image's own total counts.
func (s *smallSets) bytes(n int) int64 {
	var total int64
	for _, im := range s.set(n) {
		total += im.Bytes
	}
	return total
}

// setupSmall pushes the small images, exports each size once with relocate
// and counts the requests of one extra import of each, untimed.
func (b *bench) setupSmall(ctx context.Context) error {
	if len(b.cfg.small) == 0 {
		return nil
	}
	largest := b.cfg.small[len(b.cfg.small)-1]
	b.logf("small images: pushing %d images × 2 layers × 64KiB to %s", largest, b.src.Host)
	start := time.Now()
	images, err := testimages.Push(ctx, b.src.Host, smallSpec(largest))
	if err != nil {
		return fmt.Errorf("small images: %w", err)
	}
	b.small = &smallSets{images: images, archives: map[int]string{}, pushSecs: time.Since(start).Seconds()}
	dir := filepath.Join(b.workdir, "small")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("small images: %w", err)
	}
	for _, n := range b.cfg.small {
		if err := b.exportSmall(ctx, dir, n); err != nil {
			return err
		}
		if err := b.countRequests(ctx, filepath.Join(dir, fmt.Sprintf("requests-%d", n)), n); err != nil {
			return err
		}
	}
	return nil
}

// exportSmall writes the archive of n small images, once: the runs time
// imports only.
func (b *bench) exportSmall(ctx context.Context, dir string, n int) error {
	archive := filepath.Join(dir, fmt.Sprintf("small-%d.tar", n))
	var refs []string
	for _, im := range b.small.set(n) {
		refs = append(refs, im.Ref)
	}
	// An --images-file keeps a thousand references off the command line.
	list := archive + ".images"
	if err := os.WriteFile(list, []byte(strings.Join(refs, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("small images: %w", err)
	}
	var er exportReport
	ops := map[op]sample{}
	o := op(fmt.Sprintf("relocate export, %d small images", n))
	c := cmd(b.tools.relocate, "export", "-o", archive, "--images-file", list, "--plain-http", "--json", "-q")
	if err := b.step(ctx, o, c, &er, ops); err != nil {
		return err
	}
	if want := b.small.bytes(n); er.Bytes != want {
		b.res.notef("relocate export of %d small images reported %d bytes; the images add up to %d.", n, er.Bytes, want)
	}
	b.res.smallExport[n] = ops[o]
	b.small.archives[n] = archive
	return nil
}

// countRequests imports n small images through a counting proxy into a
// fresh registry in dir, then again, and keeps both counts. It is not
// timed: the proxy adds its own hop.
func (b *bench) countRequests(ctx context.Context, dir string, n int) error {
	dst, err := b.startRegistry(ctx, dir)
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	proxy, err := startCountingProxy(dst.Host)
	if err != nil {
		return err
	}
	defer proxy.close()
	imp := cmd(b.tools.relocate, "import", b.small.archives[n], "--to", proxy.host, "--plain-http", "--json", "-q")
	rc := &requestCounts{}
	o := op(fmt.Sprintf("relocate import through the counting proxy, %d small images", n))
	for _, pass := range []*tally{&rc.first, &rc.again} {
		if _, err := b.importSmall(ctx, o, imp, n, dst.Host); err != nil {
			return err
		}
		*pass = proxy.take()
	}
	b.res.smallRequests[n] = rc
	b.logf("  %d small images: %d requests into an empty registry (%.2f an image), %d on re-import (%.2f)", n, rc.first.total(), rc.first.perImage(n), rc.again.total(), rc.again.perImage(n))
	return nil
}

// requestCounts are the requests of one import of a small set into an
// empty registry and of the same import again.
type requestCounts struct {
	first, again tally
}

// smallRun times, for every size, relocate's import of the small archive
// into a fresh registry and crane copying each image from the source
// registry into another fresh registry, one call after another. The
// largest size runs again into registries whose storage is in memory: the
// registry syncs every file it writes (41 fsyncs per small image), so on a
// slow disk both tools wait for it, and the ratio says more about the disk.
func (b *bench) smallRun(ctx context.Context, dir string) error {
	for _, n := range b.cfg.small {
		if err := b.smallRelocate(ctx, filepath.Join(dir, fmt.Sprintf("relocate-%d", n)), n, relSmall(n)); err != nil {
			return err
		}
		if err := b.smallCrane(ctx, filepath.Join(dir, fmt.Sprintf("crane-%d", n)), n, craneSmall(n)); err != nil {
			return err
		}
	}
	if len(b.cfg.small) == 0 || memDir() == "" {
		return nil
	}
	mem, err := os.MkdirTemp(memDir(), "relocate-bench-")
	if err != nil {
		return fmt.Errorf("small images in memory: %w", err)
	}
	defer os.RemoveAll(mem)
	n := b.cfg.small[len(b.cfg.small)-1]
	if err := b.smallRelocate(ctx, filepath.Join(mem, "relocate"), n, relSmallMem(n)); err != nil {
		return err
	}
	return b.smallCrane(ctx, filepath.Join(mem, "crane"), n, craneSmallMem(n))
}

func (b *bench) smallRelocate(ctx context.Context, dir string, n int, o op) error {
	dst, err := b.startRegistry(ctx, dir)
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	imp := cmd(b.tools.relocate, "import", b.small.archives[n], "--to", dst.Host, "--plain-http", "--json", "-q")
	s, err := b.importSmall(ctx, o, imp, n, dst.Host)
	if err != nil {
		return err
	}
	b.res.add(o, s)
	return nil
}

// importSmall runs one relocate import of n small images and checks that
// they all landed on host with their digests.
func (b *bench) importSmall(ctx context.Context, o op, imp command, n int, host string) (sample, error) {
	var ir importReport
	ops := map[op]sample{}
	if err := b.step(ctx, o, imp, &ir, ops); err != nil {
		return sample{}, err
	}
	if ir.Verdict != "ok" {
		return sample{}, fmt.Errorf("%s: verdict %q", o, ir.Verdict)
	}
	if err := checkDigests(ctx, host, b.small.set(n)); err != nil {
		return sample{}, fmt.Errorf("%s: %w", o, err)
	}
	return ops[o], nil
}

func (b *bench) smallCrane(ctx context.Context, dir string, n int, o op) error {
	dst, err := b.startRegistry(ctx, dir)
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	copies := make([]command, n)
	for i, im := range b.small.set(n) {
		copies[i] = cmd(b.tools.crane, "copy", "--insecure", im.Ref, onHost(dst.Host, im.Ref))
	}
	if err := b.measureOne(ctx, o, copies); err != nil {
		return err
	}
	if err := checkDigests(ctx, dst.Host, b.small.set(n)); err != nil {
		b.res.notef("crane copy: %v", err)
	}
	return nil
}
