package main

import (
	"fmt"
	"slices"
)

// op names one measured operation of one tool.
type op string

const (
	relExport   op = "relocate export"
	relVerify   op = "relocate verify"
	relImport   op = "relocate import"
	relReimport op = "relocate re-import"
	cranePull   op = "crane pull"
	cranePush   op = "crane push"
	craneRepush op = "crane re-push"
	skopeoOut   op = "skopeo copy to oci-archive"
	skopeoIn    op = "skopeo copy from oci-archive"
	// ingestFloor is the registry's own ingest limit, measured in-process.
	ingestFloor op = "registry ingest floor"
)

// relSmall and craneSmall are the imports of n small images; the Mem
// variants go into a registry whose storage is in memory (tmpfs).
func relSmall(n int) op      { return op(fmt.Sprintf("relocate import, %d small images", n)) }
func craneSmall(n int) op    { return op(fmt.Sprintf("crane copy, %d small images", n)) }
func relSmallMem(n int) op   { return relSmall(n) + memSuffix }
func craneSmallMem(n int) op { return craneSmall(n) + memSuffix }

const memSuffix = ", registry in memory"

// results collects every measurement of one bench run.
type results struct {
	samples   map[op][]sample
	sha256MBs []float64 // Go SHA-256 over the exported archive, per run
	sha256Par []float64 // the same, one stream per CPU
	pullMBs   []float64 // loopback blob pulls, per run
	diskMBs   float64
	floorKiB  int64 // peak RSS measured for `true`: the floor of the method
	scale     *scaleResult
	notes     []string

	// Small images, by set size: the one export of each archive, and the
	// extra import and re-import through the counting proxy.
	smallExport   map[int]sample
	smallRequests map[int]*requestCounts
}

// scaleResult is one relocate pass over a set twice as large.
type scaleResult struct {
	set *dataset
	ops map[op]sample
}

func newResults() *results {
	return &results{samples: map[op][]sample{}, smallExport: map[int]sample{}, smallRequests: map[int]*requestCounts{}}
}

func (r *results) add(o op, s sample) { r.samples[o] = append(r.samples[o], s) }

// notef records something a reader of the report should know, once.
func (r *results) notef(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(r.notes, n) {
		r.notes = append(r.notes, n)
	}
}

// has reports whether o was measured at all (skopeo may be missing).
func (r *results) has(o op) bool { return len(r.samples[o]) > 0 }

// secs is the median wall time of o: the median resists one slow outlier
// caused by the page cache or a background task.
func (r *results) secs(o op) float64 {
	s := r.samples[o]
	xs := make([]float64, len(s))
	for i := range s {
		xs[i] = s[i].secs
	}
	return median(xs)
}

// ratios are, run by run, num's time ÷ den's time. Within a run the two
// were measured minutes apart under about the same load; on a shared
// machine whose load drifts, the medians of each may come from different
// runs, so a ratio of medians can say more about the drift than the tools.
func (r *results) ratios(num, den op) []float64 {
	return divide(secsOf(r.samples[num]), secsOf(r.samples[den]))
}

// ratio is the median of ratios: what the targets judge.
func (r *results) ratio(num, den op) float64 { return median(r.ratios(num, den)) }

func secsOf(ss []sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.secs
	}
	return out
}

// divide pairs a and b run by run (both hold one value per run, in order).
func divide(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// times formats the median of per-run ratios, with their range when there
// are several.
func times(xs []float64) string {
	if len(xs) < 2 {
		return fmt.Sprintf("%.2f×", median(xs))
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(xs), slices.Min(xs), slices.Max(xs))
}

// percent is times for ratios read as a share.
func percent(xs []float64) string {
	if len(xs) < 2 {
		return fmt.Sprintf("%.0f%%", 100*median(xs))
	}
	return fmt.Sprintf("%.0f%% (%.0f–%.0f%%)", 100*median(xs), 100*slices.Min(xs), 100*slices.Max(xs))
}

// cpu is the median CPU seconds of o: the tool's own, and the registries'.
func (r *results) cpu(o op) (tool, registry float64) {
	s := r.samples[o]
	ts, rs := make([]float64, len(s)), make([]float64, len(s))
	for i := range s {
		ts[i], rs[i] = s[i].cpuSecs, s[i].regCPU
	}
	return median(ts), median(rs)
}

// rssMiB is the largest peak RSS of o over all runs: memory limits are
// about the worst case, not the typical one.
func (r *results) rssMiB(o op) float64 {
	var peak int64
	for _, s := range r.samples[o] {
		peak = max(peak, s.rssKiB)
	}
	return float64(peak) / 1024
}

// spread formats the median of xs with its range, which shows how noisy
// the machine was.
func spread(xs []float64) string {
	if len(xs) < 2 {
		return fmt.Sprintf("%.0f", median(xs))
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", median(xs), slices.Min(xs), slices.Max(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}
