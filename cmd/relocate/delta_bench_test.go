package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/internal/testimages"
)

// TestDeltaBenchmark measures a daily update where 1 of 20 images changed
// (the data set of docs/benchmarks.md: 20 images × 3 layers × 16 MiB, one
// base layer shared; the changed image gets a new 16 MiB layer on top):
// the full archive against the delta --since the previous day's, in size
// and time to export, verify and import at a site that imported the
// previous day's. It prints the table of the "Daily deltas" section of
// docs/benchmarks.md. It pushes 656 MiB: it runs only when asked,
// RELOCATE_BENCH_DELTA=1 go test -run TestDeltaBenchmark -v ./cmd/relocate
func TestDeltaBenchmark(t *testing.T) {
	if os.Getenv("RELOCATE_BENCH_DELTA") == "" {
		t.Skip("set RELOCATE_BENCH_DELTA=1 to measure deltas (pushes 656 MiB)")
	}
	needRegistries(t)
	const runs = 3
	ctx := context.Background()
	ims, err := testimages.Push(ctx, src.Host, testimages.Spec{Repo: "bench/app-{i}", Tag: "v1", Count: 20, Layers: 3, LayerSize: 16 << 20, Shared: 1, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	var daily []string
	for _, im := range ims {
		daily = append(daily, im.Ref)
	}
	dir := t.TempDir()
	monday := filepath.Join(dir, "monday.tar")
	mustRun(t, append([]string{"export", "-o", monday, "--plain-http", "-q"}, daily...)...)
	for i := range runs {
		for _, kind := range []string{"full", "delta"} {
			mustRun(t, "import", monday, "--to", fmt.Sprintf("%s/bench-%s-%d", dst.Host, kind, i), "--plain-http", "-q")
		}
	}

	// Tuesday: one image rebuilt with a new layer on top.
	ref, _ := name.ParseReference(ims[7].Ref, name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	top, err := random.Layer(16<<20, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, top)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	type row struct {
		size                    int64
		export, verify, imports []time.Duration
	}
	rows := map[string]*row{}
	for _, kind := range []string{"full", "delta"} {
		r := &row{}
		rows[kind] = r
		for i := range runs {
			out := filepath.Join(dir, fmt.Sprintf("tuesday-%s-%d.tar", kind, i))
			args := []string{"export", "-o", out, "--plain-http", "-q"}
			if kind == "delta" {
				args = append(args, "--since", monday)
			}
			start := time.Now()
			mustRun(t, append(args, daily...)...)
			r.export = append(r.export, time.Since(start))
			st, _ := os.Stat(out)
			r.size = st.Size()
			start = time.Now()
			mustRun(t, "verify", out, "-q")
			r.verify = append(r.verify, time.Since(start))
			start = time.Now()
			mustRun(t, "import", out, "--to", fmt.Sprintf("%s/bench-%s-%d", dst.Host, kind, i), "--plain-http", "-q")
			r.imports = append(r.imports, time.Since(start))
			os.Remove(out)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| Tuesday's archive | size | export s | verify s | import s |\n|---|--:|--:|--:|--:|\n")
	for _, kind := range []string{"full", "delta"} {
		r := rows[kind]
		fmt.Fprintf(&b, "| %s | %.1f MiB | %.2f | %.2f | %.2f |\n", kind, float64(r.size)/(1<<20), median(r.export).Seconds(), median(r.verify).Seconds(), median(r.imports).Seconds())
	}
	f, d := rows["full"], rows["delta"]
	fmt.Fprintf(&b, "\ndelta ÷ full: size %.1f%%, export %.0f%%, verify %.0f%%, import %.0f%%\n",
		100*float64(d.size)/float64(f.size), 100*median(d.export).Seconds()/median(f.export).Seconds(),
		100*median(d.verify).Seconds()/median(f.verify).Seconds(), 100*median(d.imports).Seconds()/median(f.imports).Seconds())
	t.Logf("median of %d runs:\n%s", runs, b.String())
}
