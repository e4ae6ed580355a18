package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/internal/testregistry"
	"github.com/relocate-dev/relocate/mirror"
)

// TestHTTPSUnlessTold: a registry on 127.0.0.1 gets HTTPS like any other
// unless --plain-http or --plain-http-host names it; relocate does not fall
// back to plain HTTP on its own (go-containerregistry would, for loopback
// and private addresses).
func TestHTTPSUnlessTold(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, path)
	var plain atomic.Int32 // HTTP requests the registry received
	p := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{Intercept: func(http.ResponseWriter, *http.Request) bool {
		plain.Add(1)
		return false
	}})
	const tlsErr = "server gave HTTP response to HTTPS client"
	for _, extra := range [][]string{nil, {"--plain-http-host", "127.0.0.1:1"}, {"--plain-http-host", "localhost"}} {
		r := relocateCmd(t, nil, append([]string{"import", path, "--to", p.Host + "/https"}, extra...)...)
		if r.code != exitFailure || !strings.Contains(r.stderr, tlsErr) {
			t.Fatalf("import %v into a plain-HTTP registry on 127.0.0.1: exit %d, want %d with a TLS error\n%s", extra, r.code, exitFailure, r.stderr)
		}
		if n := plain.Load(); n != 0 {
			t.Fatalf("import %v sent %d plain HTTP requests", extra, n)
		}
	}
	mustRun(t, "import", path, "--to", p.Host+"/https", "--plain-http-host", p.Host)
	if plain.Load() == 0 {
		t.Fatal("import with --plain-http-host sent nothing through the proxy")
	}
	checkDestination(t, "https")

	out := filepath.Join(t.TempDir(), "out.tar")
	r := relocateCmd(t, nil, "export", "-o", out, refs[0])
	if r.code != exitFailure || !strings.Contains(r.stderr, tlsErr) {
		t.Fatalf("export from a plain-HTTP registry on 127.0.0.1: exit %d, want %d with a TLS error\n%s", r.code, exitFailure, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("failed export left a file")
	}
	mustRun(t, "export", "-o", out, "-q", "--plain-http-host", "127.0.0.1", refs[0])

	r = relocateCmd(t, nil, "import", path, "--to", p.Host+"/https", "--plain-http-host", "http://"+p.Host)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--plain-http-host") {
		t.Errorf("--plain-http-host with a URL: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}

// faultRate is the share of requests the faulty network fails.
const faultRate = 0.10

// TestFaultyNetwork: with 10% of requests failing (500, 429 with
// Retry-After, reset connections, bodies cut short), export and import
// succeed with every digest unchanged, and the registry keeps no upload
// data; without retries they fail.
func TestFaultyNetwork(t *testing.T) {
	needRegistries(t)
	if testing.Short() {
		t.Skip("slow: injected 429s wait their Retry-After")
	}
	clean := filepath.Join(t.TempDir(), "clean.tar")
	exportAll(t, clean)
	want := blobsOf(t, clean)

	t.Run("export", func(t *testing.T) {
		for i, tc := range []struct {
			file   string
			faults []testregistry.Fault
		}{
			{"site.tar", nil},     // parallel writes at offsets
			{"site.tar.zst", nil}, // one stream
			{"site.tar.zst", []testregistry.Fault{testregistry.FaultCut}}, // bodies cut short: resumed
		} {
			var ranges atomic.Int32
			p := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{FaultRate: faultRate, Seed: uint64(10 + i), Faults: tc.faults,
				Intercept: func(_ http.ResponseWriter, r *http.Request) bool {
					if r.Header.Get("Range") != "" {
						ranges.Add(1)
					}
					return false
				}})
			out := filepath.Join(t.TempDir(), tc.file)
			r := relocateCmd(t, nil, append([]string{"export", "-o", out, "--plain-http", "--json", "-q"}, via(p.Host)...)...)
			if r.code != 0 {
				t.Fatalf("export %s through a faulty network: exit %d\n%s", tc.file, r.code, r.stderr)
			}
			faults := p.Injected()
			if len(faults) == 0 {
				t.Errorf("no fault injected; the test proves nothing")
			}
			if tc.faults != nil && ranges.Load() == 0 {
				t.Errorf("bodies were cut %d times, but no transfer went on with a Range request", faults[testregistry.FaultCut])
			}
			var rep struct {
				Images []struct{ Ref, Digest string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			for _, im := range images {
				ref := p.Host + strings.TrimPrefix(im.Ref, src.Host)
				if !slices.Contains(rep.Images, struct{ Ref, Digest string }{ref, im.Digest}) {
					t.Errorf("%s: not exported with digest %s: %+v", ref, im.Digest, rep.Images)
				}
			}
			if r := relocateCmd(t, nil, "verify", out); r.code != 0 {
				t.Fatalf("verify of the export through a faulty network: exit %d\n%s", r.code, r.stderr)
			}
			if got := blobsOf(t, out); !slices.Equal(got, want) {
				t.Errorf("blobs differ from a clean export's")
			}
			t.Logf("%s: %d requests, faults %v, %d range requests", tc.file, p.Requests(), faults, ranges.Load())
		}
	})

	t.Run("import", func(t *testing.T) {
		zst := filepath.Join(t.TempDir(), "site.tar.zst")
		exportAll(t, zst)
		for i, tc := range []struct {
			name, path string
			stream     bool
		}{{"plain file", clean, false}, {"zstd through a pipe", zst, true}} {
			t.Run(tc.name, func(t *testing.T) {
				p := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{FaultRate: faultRate, Seed: uint64(20 + i)})
				prefix := fmt.Sprintf("faulty%d", i)
				arg, stdin := tc.path, io.Reader(nil)
				if tc.stream {
					arg, stdin = "-", pipeFrom(t, tc.path)
				}
				r := relocateCmd(t, stdin, "import", arg, "--to", p.Host+"/"+prefix, "--plain-http")
				if r.code != 0 {
					t.Fatalf("import through a faulty network: exit %d\n%s", r.code, r.stderr)
				}
				checkDestination(t, prefix)
				checkUploads(t, prefix, 0)
				faults := p.Injected()
				if len(faults) == 0 {
					t.Errorf("no fault injected; the test proves nothing")
				}
				t.Logf("%d requests, faults %v", p.Requests(), faults)
			})
		}
	})

	t.Run("without retries", func(t *testing.T) {
		p := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{FaultRate: faultRate, Seed: 30})
		r := relocateCmd(t, nil, "import", clean, "--to", p.Host+"/noretry", "--plain-http", "--retries", "0")
		network := false
		for _, s := range []string{"injected fault", "registry answered 500", "registry answered 429", "connection reset", "EOF"} {
			network = network || strings.Contains(r.stderr, s)
		}
		if r.code != exitFailure || !network {
			t.Fatalf("import through a faulty network without retries: exit %d, want %d for a network failure\n%s", r.code, exitFailure, r.stderr)
		}
	})
}

// blobsOf lists the blobs of an archive, as inspect reports them.
func blobsOf(t *testing.T, path string) []string {
	t.Helper()
	var rep struct {
		Blobs []struct {
			Digest, Kind string
			Size         int64
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, "inspect", path, "--json").stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range rep.Blobs {
		out = append(out, fmt.Sprintf("%s %s %d", b.Digest, b.Kind, b.Size))
	}
	return out
}

// via rewrites the test images' references to go through host.
func via(host string) []string {
	var out []string
	for _, r := range refs {
		out = append(out, host+strings.TrimPrefix(r, src.Host))
	}
	return out
}

// checkUploads asserts that the destination's upload area under prefix
// holds at most max bytes: what abandoned or refused uploads left behind.
func checkUploads(t *testing.T, prefix string, max int64) {
	t.Helper()
	n, files, err := dst.UploadBytes(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if n > max {
		t.Errorf("the registry's upload area under %s holds %d bytes (at most %d expected): %v", prefix, n, max, files)
	}
}

// hostileLayerSize is the size of the layer of zeros a hostile archive
// declares under a digest it does not have; RELOCATE_HOSTILE_LAYER_SIZE
// sets it (2147483648 reproduces the 2 GiB case).
func hostileLayerSize(t *testing.T, def int64) int64 {
	if v := os.Getenv("RELOCATE_HOSTILE_LAYER_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return def
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// hostileArchive writes an archive of one image whose manifest declares a
// layer of n zero bytes under a digest they do not have, and returns that
// digest and the digest of the zeros.
func hostileArchive(t *testing.T, path string, n int64, compress bool) (claimed, actual string) {
	t.Helper()
	h := sha256.New()
	io.CopyN(h, zeros{}, n)
	actual = "sha256:" + hex.EncodeToString(h.Sum(nil))
	claimed = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("what the manifest promises")))
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + claimed + `"]}}`)
	cd := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
	lt, ct, mt := "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.manifest.v1+json"
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mt,
		"config": map[string]any{"mediaType": ct, "digest": cd, "size": len(config)},
		"layers": []any{map[string]any{"mediaType": lt, "digest": claimed, "size": n}}})
	md := fmt.Sprintf("sha256:%x", sha256.Sum256(manifest))
	ref := "registry.example/hostile/zeros:v1"
	toc, _ := json.Marshal(map[string]any{"schemaVersion": 1,
		"images": []any{map[string]any{"ref": ref, "digest": md, "mediaType": mt, "size": len(manifest)}},
		"blobs": []any{
			map[string]any{"digest": md, "size": len(manifest), "kind": "manifest", "mediaType": mt},
			map[string]any{"digest": cd, "size": len(config), "kind": "config", "mediaType": ct},
			map[string]any{"digest": claimed, "size": n, "kind": "layer", "mediaType": lt},
		}})
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{"mediaType": mt, "digest": md, "size": len(manifest),
		"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "v1"}}}})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var zw *zstd.Encoder
	if compress {
		zw, _ = zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
		w = zw
	}
	tw := tar.NewWriter(w)
	put := func(name string, size int64, r io.Reader) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, r, size); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", idx}, {"relocate-toc.json", toc}, {blobName(md), manifest}, {blobName(cd), config}} {
		put(e.name, int64(len(e.data)), strings.NewReader(string(e.data)))
	}
	put(blobName(claimed), n, zeros{})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return claimed, actual
}

// bodyWatch hashes the bodies of upload requests the proxy passes on, to
// count how often given content was sent.
type bodyWatch struct {
	mu      sync.Mutex
	bodies  map[string]int // sha256 of complete PATCH bodies → count
	puts    map[string]int // digest= of PUTs completing an upload → count
	deletes int
}

func newBodyWatch() *bodyWatch {
	return &bodyWatch{bodies: map[string]int{}, puts: map[string]int{}}
}

func (b *bodyWatch) intercept(w http.ResponseWriter, r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/blobs/uploads/") {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.Method {
	case http.MethodPatch:
		r.Body = &hashingBody{rc: r.Body, h: sha256.New(), done: func(sum string) {
			b.mu.Lock()
			b.bodies[sum]++
			b.mu.Unlock()
		}}
	case http.MethodPut:
		b.puts[r.URL.Query().Get("digest")]++
	case http.MethodDelete:
		b.deletes++
	}
	return false
}

func (b *bodyWatch) counts(body, digest string) (patches, puts, deletes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bodies[body], b.puts[digest], b.deletes
}

type hashingBody struct {
	rc   io.ReadCloser
	h    hash.Hash
	done func(string)
}

func (hb *hashingBody) Read(p []byte) (int, error) {
	n, err := hb.rc.Read(p)
	hb.h.Write(p[:n])
	if err == io.EOF && hb.done != nil {
		hb.done("sha256:" + hex.EncodeToString(hb.h.Sum(nil)))
		hb.done = nil
	}
	return n, err
}

func (hb *hashingBody) Close() error { return hb.rc.Close() }

// TestRefusedBlobLeavesNothing: a hostile archive declaring a large layer
// of zeros under a digest they do not have is refused (exit 3, naming the
// layer), the content is sent once and never completed (no retry, even
// through a faulty network), and the registry keeps nothing of it.
func TestRefusedBlobLeavesNothing(t *testing.T) {
	needRegistries(t)
	for i, tc := range []struct {
		name     string
		compress bool
		size     int64
		faults   float64
	}{
		{"zstd stream", true, hostileLayerSize(t, 64<<20), 0},
		{"plain file", false, 16 << 20, 0},
		{"plain file through a faulty network", false, 16 << 20, faultRate},
		{"zstd stream through a faulty network", true, 16 << 20, faultRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hostile.tar")
			if tc.compress {
				path += ".zst"
			}
			claimed, actual := hostileArchive(t, path, tc.size, tc.compress)
			watch := newBodyWatch()
			p := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{Intercept: watch.intercept, FaultRate: tc.faults, Seed: uint64(40 + i)})
			prefix := fmt.Sprintf("hostile%d", i)
			r := relocateCmd(t, nil, "import", path, "--to", p.Host+"/"+prefix, "--plain-http")
			if r.code != exitRefused || !strings.Contains(r.stderr, strings.TrimPrefix(claimed, "sha256:")) || !strings.Contains(r.stderr, "does not match") {
				t.Fatalf("import of a layer that does not match its digest: exit %d, want %d naming %s\n%s", r.code, exitRefused, claimed, r.stderr)
			}
			patches, puts, deletes := watch.counts(actual, claimed)
			if patches != 1 || puts != 0 || deletes == 0 {
				t.Errorf("the refused content was sent %d times (want 1), completed %d times (want 0), sessions deleted %d times (want ≥ 1)", patches, puts, deletes)
			}
			if tags := tagsUnder(t, prefix); len(tags) != 0 {
				t.Errorf("refused import tagged %v", tags)
			}
			checkUploads(t, prefix, 4<<10)
			st, _ := os.Stat(path)
			left, _, _ := dst.UploadBytes(prefix)
			t.Logf("archive of %d bytes declaring a layer of %d: exit %d, %d bytes left in the upload area", st.Size(), tc.size, r.code, left)
		})
	}
}

// TestExportMismatchNotRetried: a source that serves a layer that does not
// match its digest fails the export with exit 3 at the first answer, even
// on a network that makes other requests fail and be retried.
func TestExportMismatchNotRetried(t *testing.T) {
	needRegistries(t)
	layer := images[1].Blobs[len(images[1].Blobs)-1]
	var served atomic.Int32
	p := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{FaultRate: faultRate, Seed: 50,
		Faults: []testregistry.Fault{testregistry.Fault500, testregistry.FaultReset, testregistry.FaultCut},
		Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
				return false
			}
			served.Add(1)
			resp, err := http.Get("http://" + src.Host + r.URL.Path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return true
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			body[len(body)/2] ^= 0x01
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
			return true
		}})
	for _, file := range []string{"site.tar", "site.tar.zst"} {
		served.Store(0)
		out := filepath.Join(t.TempDir(), file)
		r := relocateCmd(t, nil, append([]string{"export", "-o", out, "--plain-http", "-q"}, via(p.Host)...)...)
		if r.code != exitRefused || !strings.Contains(r.stderr, layer) || !strings.Contains(r.stderr, "does not match") {
			t.Fatalf("export %s of a layer that does not match: exit %d, want %d naming %s\n%s", file, r.code, exitRefused, layer, r.stderr)
		}
		if n := served.Load(); n != 1 {
			t.Errorf("export %s: the mismatching layer was fetched %d times, want 1 (never retried)", file, n)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("refused export left %s", out)
		}
	}
}

// TestFaultTrials measures how many of RELOCATE_FAULT_TRIALS exports and
// imports succeed, each with its own seed, at 1% and 10% injected faults,
// with digests checked and the upload area measured. It runs only when
// asked: go test ./cmd/relocate -run TestFaultTrials -v with the variable set.
func TestFaultTrials(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RELOCATE_FAULT_TRIALS"))
	if n <= 0 {
		t.Skip("set RELOCATE_FAULT_TRIALS=N to run")
	}
	needRegistries(t)
	clean := filepath.Join(t.TempDir(), "clean.tar")
	exportAll(t, clean)
	for _, rate := range []float64{0.01, 0.10} {
		exports, imports, faults := 0, 0, 0
		var upload int64
		for i := range n {
			seed := uint64(1000*rate) + uint64(i)*7919
			sp := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{FaultRate: rate, Seed: seed})
			out := filepath.Join(t.TempDir(), "site.tar.zst")
			if r := relocateCmd(t, nil, append([]string{"export", "-o", out, "-q", "--plain-http"}, via(sp.Host)...)...); r.code == 0 && slices.Equal(blobsOf(t, out), blobsOf(t, clean)) {
				exports++
			} else {
				t.Logf("rate %.2f export %d: exit %d: %s", rate, i, r.code, r.stderr)
			}
			dp := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{FaultRate: rate, Seed: seed + 1})
			prefix := fmt.Sprintf("trial%d-%d", int(rate*100), i)
			r := relocateCmd(t, nil, "import", clean, "--to", dp.Host+"/"+prefix, "--plain-http", "-q")
			ok := r.code == 0
			for _, im := range images {
				repo, tag := repoTag(im.Ref)
				ok = ok && headDigest(t, dst.Host, prefix+"/"+repo, tag) == im.Digest
			}
			if ok {
				imports++
			} else {
				t.Logf("rate %.2f import %d: exit %d: %s", rate, i, r.code, r.stderr)
			}
			b, _, _ := dst.UploadBytes(prefix)
			upload += b
			for _, p := range []*testregistry.Proxy{sp, dp} {
				for _, c := range p.Injected() {
					faults += c
				}
			}
		}
		t.Logf("faults %.0f%%: exports %d/%d, imports %d/%d ok, %d faults injected, %d bytes left in upload areas", rate*100, exports, n, imports, n, faults, upload)
	}
}

// TestForeignLayers: export never fetches a foreign layer's URLs unless
// --allow-foreign-layers, and then only over https; an image whose foreign
// layer the registry does not hold is refused (exit 3), naming the image
// and the layer. A foreign layer the registry serves travels like any other.
func TestForeignLayers(t *testing.T) {
	needRegistries(t)
	var hits atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "foreign layer bytes")
	}))
	defer files.Close()
	host := memRegistry(t, nil)
	c := mirror.New(mirror.WithPlainHTTP(true))
	ctx := context.Background()
	repo, _ := c.ParseRepository(host + "/win/base")
	push := func(content string) v1.Hash {
		d, n, _ := v1.SHA256(strings.NewReader(content))
		if _, err := c.PushBlob(ctx, repo, mirror.Blob{Desc: v1.Descriptor{Digest: d, Size: n}, Open: func() (io.Reader, error) { return strings.NewReader(content), nil }}, ""); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := push("{}")
	image := func(tag, layer string, held bool) (string, v1.Hash) {
		d, n, _ := v1.SHA256(strings.NewReader(layer))
		if held {
			push(layer)
		}
		raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"%s","size":%d,"urls":["%s/layer"]}]}`, cfg, d, n, files.URL)
		if err := c.PutManifest(ctx, repo, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(raw)); err != nil {
			t.Fatal(err)
		}
		return host + "/win/base:" + tag, d
	}
	absent, layer := image("absent", "foreign layer bytes", false)
	held, _ := image("held", "a foreign layer the registry holds", true)
	out := filepath.Join(t.TempDir(), "site.tar")
	for _, extra := range [][]string{nil, {"--allow-foreign-layers"}} {
		r := relocateCmd(t, nil, append([]string{"export", "-o", out, "--plain-http", absent}, extra...)...)
		want := "--allow-foreign-layers"
		if extra != nil {
			want = "none of its URLs is https"
		}
		if r.code != exitRefused || !strings.Contains(r.stderr, "image "+absent) || !strings.Contains(r.stderr, layer.String()) || !strings.Contains(r.stderr, want) {
			t.Errorf("export %v of an image whose foreign layer the registry lacks: exit %d, want %d naming the image, the layer and %q\n%s", extra, r.code, exitRefused, want, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("refused export left an archive")
		}
	}
	mustRun(t, "export", "-o", out, "--plain-http", "-q", held)
	mustRun(t, "verify", out)
	if n := hits.Load(); n != 0 {
		t.Fatalf("foreign layer URLs were fetched %d times", n)
	}
}

// TestNetworkFlagUsage: bad network flags are usage errors (exit 2).
func TestNetworkFlagUsage(t *testing.T) {
	for _, args := range [][]string{
		{"import", "x.tar", "--to", "reg.example", "--retries", "-1"},
		{"export", "-o", "x.tar", "reg.example/a:1", "--plain-http-host", "https://reg.example"},
		{"import", "x.tar", "--to", "reg.example", "--plain-http-host", "reg.example/path"},
	} {
		r := relocateCmd(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, args[len(args)-2]) {
			t.Errorf("%v: exit %d, want %d naming %s\n%s", args, r.code, exitUsage, args[len(args)-2], r.stderr)
		}
	}
}
