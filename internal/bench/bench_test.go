package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/relocate-dev/relocate/internal/testimages"
)

// Nothing here starts a process: the registry is go-containerregistry's
// in-memory one, and the proxy runs in the test.

func TestSizeList(t *testing.T) {
	for in, want := range map[string][]int{
		"100,1000":      {100, 1000},
		"1000, 100,100": {100, 1000},
		"0":             nil,
		"":              nil,
		"0,50":          {50},
		"1_000":         {1000},
	} {
		var l sizeList
		if err := l.Set(in); err != nil || !slices.Equal(l, want) {
			t.Errorf("Set(%q) = %v, %v; want %v", in, l, err, want)
		}
	}
	for _, in := range []string{"x", "-1", "1.5", "100;1000"} {
		var l sizeList
		if err := l.Set(in); err == nil {
			t.Errorf("Set(%q): no error", in)
		}
	}
	cfg, err := parseFlags([]string{"-small", "0"}, io.Discard)
	if err != nil || len(cfg.small) != 0 {
		t.Errorf("-small 0: %v, %v; want none", cfg.small, err)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil || !slices.Equal(cfg.small, []int{100, 1000}) || cfg.jobs < 1 {
		t.Errorf("defaults: small %v jobs %d, %v", cfg.small, cfg.jobs, err)
	}
}

func TestParseSpawnReport(t *testing.T) {
	s, err := parseSpawnReport([]byte("1.500000 20480 0.750000\n"))
	if err != nil || s.secs != 1.5 || s.rssKiB != 20480 || s.cpuSecs != 0.75 {
		t.Errorf("parseSpawnReport = %+v, %v", s, err)
	}
}

func TestEndpoint(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/":                              "ping",
		"/v2/a/b/blobs/uploads/":            "upload",
		"/v2/a/blobs/uploads/3f2c?_state=x": "upload",
		"/v2/a/b/blobs/sha256:00":           "blob",
		"/v2/a/manifests/v1":                "manifest",
		"/v2/a/referrers/sha256:00":         "referrers",
		"/v2/a/tags/list":                   "tags",
		"/v2/_catalog":                      "catalog",
		"/metrics":                          "other",
	} {
		if got := endpoint(path); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", path, got, want)
		}
	}
}

// layoutTar writes an OCI-layout-shaped tar holding blobs, with other
// entries (and a long name, which takes a PAX header) around them.
func layoutTar(t *testing.T, blobs [][]byte) (string, []blob) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "set.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add(strings.Repeat("long/", 40)+"name", []byte("not a blob"))
	var out []blob
	for i, b := range blobs {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
		out = append(out, blob{repo: fmt.Sprintf("floor/r%d", i%2), digest: d, size: int64(len(b))})
	}
	add("index.json", []byte(`{}`))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, out
}

func TestBlobSectionsAndUpload(t *testing.T) {
	payloads := [][]byte{[]byte("config"), bytes.Repeat([]byte{7}, 100_000), {}, bytes.Repeat([]byte("ab"), 3000)}
	path, blobs := layoutTar(t, payloads)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	where, err := blobSections(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(where) != len(blobs) {
		t.Fatalf("%d blobs found, want %d: %v", len(where), len(blobs), where)
	}
	for i, b := range blobs {
		got, err := io.ReadAll(io.NewSectionReader(f, where[b.digest].off, where[b.digest].size))
		if err != nil || !bytes.Equal(got, payloads[i]) {
			t.Errorf("blob %d: section %+v reads %d bytes, %v; want the %d bytes written", i, where[b.digest], len(got), err, len(payloads[i]))
		}
	}

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	proxy, err := startCountingProxy(strings.TrimPrefix(reg.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := uploadBlobs(ctx, proxy.host, f, blobs, where, 3); err != nil {
		t.Fatal(err)
	}
	counts := proxy.take()
	n := len(blobs)
	if counts["POST upload"] != n || counts["PUT upload"] != n || counts.total() != 2*n {
		t.Errorf("requests through the proxy: %v; want %d POST and %d PUT", counts, n, n)
	}
	for _, b := range blobs {
		resp, err := http.Head(fmt.Sprintf("%s/v2/%s/blobs/%s", reg.URL, b.repo, b.digest))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s in %s after the upload: %s", b.digest, b.repo, resp.Status)
		}
	}
	if again := proxy.take(); again.total() != 0 {
		t.Errorf("take did not reset: %v", again)
	}

	// A blob the archive lacks fails before anything is sent.
	missing := append(slices.Clone(blobs), blob{repo: "floor/r0", digest: "sha256:00", size: 1})
	if err := uploadBlobs(ctx, proxy.host, f, missing, where, 3); err == nil {
		t.Error("upload of a blob missing from the archive: no error")
	}
}

// TestPairedRatios: a ratio pairs the two operations of one run, so load
// that drifts between runs cancels out where a ratio of medians would not.
func TestPairedRatios(t *testing.T) {
	r := newResults()
	for i, secs := range []float64{1, 3, 4} {
		r.add(relImport, sample{secs: secs})
		r.add(cranePush, sample{secs: []float64{2, 6, 2}[i]})
	}
	if got := r.ratio(cranePush, relImport); got != 2 {
		t.Errorf("ratio = %v, want 2 (per run 2, 2, 0.5)", got)
	}
	if got := times(r.ratios(cranePush, relImport)); got != "2.00× (0.50–2.00)" {
		t.Errorf("times = %q", got)
	}
	if got := percent([]float64{0.95}); got != "95%" {
		t.Errorf("percent = %q", got)
	}
}

func TestTallyString(t *testing.T) {
	got := tally{"PUT upload": 3, "POST upload": 3, "PUT manifest": 1, "GET ping": 1}.String()
	if want := "3 POST upload, 3 PUT upload, 1 GET ping, 1 PUT manifest"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestReport renders a report from made-up results, to check that every
// section and target is there and the kept section survives.
func TestReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	kept := keptMarker + " test -->\n## Kept\n\nkept text\n"
	if err := os.WriteFile(out, []byte("# old\n\n"+kept), 0o644); err != nil {
		t.Fatal(err)
	}
	sizes := []int{100, 1000}
	b := &bench{
		cfg:     config{out: out, runs: 2, small: sizes, jobs: 8},
		machine: machine{date: time.Unix(0, 0).UTC(), nproc: 2, load: "1.00, 2.00, 3.00"},
		set: &dataset{
			spec:      testimages.Spec{Count: 20, Layers: 3, LayerSize: 16 << 20},
			blobs:     make([]blob, 61),
			blobBytes: 687990180, manifestBytes: 14480,
		},
		small: &smallSets{images: make([]testimages.Image, 1000), archives: map[int]string{}},
		res:   newResults(),
		start: time.Now(),
	}
	for i := range b.small.images {
		b.small.images[i].Bytes = 133_000
	}
	add := func(o op, secs ...float64) {
		for _, s := range secs {
			b.res.add(o, sample{secs: s, rssKiB: 20 << 10, cpuSecs: s / 2, regCPU: s / 2})
		}
	}
	add(relExport, 1.6, 1.8)
	add(relVerify, 0.3, 0.4)
	add(relImport, 2.0, 2.2)
	add(relReimport, 0.05, 0.06)
	add(ingestFloor, 1.9, 2.0)
	add(cranePull, 2.5, 2.7)
	add(cranePush, 5, 5.2)
	add(craneRepush, 0.7, 0.8)
	add(relSmall(100), 0.5, 0.6)
	add(craneSmall(100), 10, 11)
	add(relSmall(1000), 4, 5)
	add(craneSmall(1000), 100, 110)
	add(relSmallMem(1000), 2, 2.5)
	add(craneSmallMem(1000), 60, 70)
	b.res.sha256MBs, b.res.sha256Par, b.res.pullMBs, b.res.diskMBs = []float64{1200}, []float64{2000}, []float64{800}, 500
	for _, n := range sizes {
		b.res.smallRequests[n] = &requestCounts{first: tally{"POST upload": 3 * n, "PUT upload": 3 * n, "PUT manifest": n, "GET ping": 1}, again: tally{"HEAD manifest": n, "GET ping": 1}}
	}
	if err := b.writeReport(); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Small images", "| 1000 | 4.50 | 4.5 | 4.5 | 20.0 | 105.00 | 105.0 | 105.0 | 23.50× (22.00–25.00) |",
		"| 100 | 701 | 7.00 | 101 | 1.00 | 300 POST upload, 300 PUT upload, 100 PUT manifest, 1 GET ping | 100 HEAD manifest, 1 GET ping |",
		"registry ingest floor", "## Where the time goes", "Load average (1, 5, 15 min): 1.00, 2.00, 3.00",
		"| import ≥ 80% of the registry ingest floor (floor s ÷ import s) | 93% (91–95%) | ✓ |",
		"| import of 1000 small images ≥ 4× faster than a crane copy loop | 23.50× (22.00–25.00) | ✓ |",
		"| small-image import linear from 100 to 1000 images (ms per image ≤ 1.25×) | 4.5 ms at 1000 vs 5.5 ms at 100: 0.82× (0.80–0.83) | ✓ |",
		"| ≤ 8 requests per small image into an empty registry | 7.00 at 1000 images | ✓ |",
		"| ≤ 1 request per small image on re-import | 1.00 at 1000 images | ✓ |",
		"| 1000, registry in memory | 2.25 | 2.2 | 2.2 | 20.0 | 65.00 | 65.0 | 65.0 | 29.00× (28.00–30.00) |",
		"| import of 1000 small images ≥ 4× faster than a crane copy loop, destination registries in memory (tmpfs: no disk syncs) | 29.00× (28.00–30.00) | ✓ |",
		// CPU = wall here (half tool, half registry): the floor is half the wall.
		"| relocate export, against crane pull | 1.70 | 0.85 | 3.06× | 1.53× (1.50–1.56) |",
		"| relocate import, 1000 small images, registry in memory, against crane copy, 1000 small images, registry in memory | 2.25 | 1.12 | 57.78× | 29.00× (28.00–30.00) |",
		"\n" + kept,
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(string(doc))
	}
}
