package relocate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// memRegistry is go-containerregistry's in-memory registry on 127.0.0.1,
// counting the requests it answers. It is a test double for the fast
// tests; the end-to-end tests use a real registry.
func memRegistry(t *testing.T) (host string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

func client() *mirror.Client { return mirror.New(mirror.WithPlainHTTPHosts("127.0.0.1")) }

// roundTrip exports images from one in-memory registry, verifies the
// archive and imports it into another.
func TestExportVerifyImport(t *testing.T) {
	ctx := context.Background()
	src, _ := memRegistry(t)
	ims, err := testimages.Push(ctx, src, testimages.Spec{Repo: "team/app-{i}", Tag: "v1", Count: 3, Layers: 2, LayerSize: 4 << 10, Shared: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	multi, err := testimages.Push(ctx, src, testimages.Spec{Repo: "team/multi", Tag: "v2", Count: 1, Layers: 1, LayerSize: 4 << 10, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	ims = append(ims, multi...)
	var refs []string
	for _, im := range ims {
		refs = append(refs, im.Ref)
	}
	dir := t.TempDir()
	for _, out := range []string{"site.tar", "site.tar.zst"} {
		path := filepath.Join(dir, out)
		rep, err := Export(ctx, ExportOptions{Refs: refs, Output: path, Client: client()})
		if err != nil {
			t.Fatalf("export %s: %v", out, err)
		}
		if len(rep.Images) != len(ims) {
			t.Fatalf("exported %d images, want %d", len(rep.Images), len(ims))
		}
		verifyAndImport(t, path)
	}
}

// verifyAndImport verifies an archive and imports it into an empty
// in-memory registry, where every image must then be pushed with its digest.
func verifyAndImport(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	vr, err := Verify(ctx, VerifyOptions{Archive: path, Trust: TrustOptions{StateDir: t.TempDir()}})
	if err != nil || vr.Verdict != "ok" {
		t.Fatalf("verify %s: %v %+v", path, err, vr)
	}
	dst, _ := memRegistry(t)
	ir, err := Import(ctx, ImportOptions{Archive: path, To: dst + "/site", Client: client(), Trust: TrustOptions{StateDir: t.TempDir()}})
	if err != nil || ir.Verdict != "ok" {
		t.Fatalf("import %s: %v %+v", path, err, ir)
	}
	for _, im := range ir.Images {
		if im.Status != "pushed" {
			t.Errorf("%s: %s", im.Ref, im.Status)
		}
		d, ok, err := client().ManifestDigest(ctx, mustRepo(t, im.Target), tagOf(im.Target))
		if err != nil || !ok || d != im.Digest {
			t.Errorf("%s at the destination: %v %v %v, want %s", im.Target, d, ok, err, im.Digest)
		}
	}
}

// A flipped byte in a layer is a refusal naming the blob: nothing of the
// image that needs it is tagged.
func TestImportRefusesATamperedLayer(t *testing.T) {
	ctx := context.Background()
	src, _ := memRegistry(t)
	ims, err := testimages.Push(ctx, src, testimages.Spec{Repo: "team/app", Tag: "v1", Count: 1, Layers: 1, LayerSize: 2 << 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "site.tar")
	if _, err := Export(ctx, ExportOptions{Refs: []string{ims[0].Ref}, Output: path, Client: client()}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	b[len(b)-(1<<20)] ^= 0x40 // inside the 2 MiB layer, the archive's last entry
	os.WriteFile(path, b, 0o644)
	dst, _ := memRegistry(t)
	rep, err := Import(ctx, ImportOptions{Archive: path, To: dst + "/site", Client: client(), Trust: TrustOptions{StateDir: t.TempDir()}})
	var ve *verify.Error
	if !errors.As(err, &ve) || !IsRefused(err) || !strings.Contains(err.Error(), "content does not match its digest") || !strings.Contains(err.Error(), "not imported: 1 blob(s) failed verification") {
		t.Fatalf("got %v", err)
	}
	if rep.Verdict != "refused" || rep.Images[0].Status != "refused" {
		t.Errorf("report %+v", rep)
	}
	if _, ok, _ := client().ManifestDigest(ctx, mustRepo(t, dst+"/site/team/app"), "v1"); ok {
		t.Error("the image was tagged")
	}
}

// A small image into an empty registry: the tag looked up, a POST and a
// PUT for each of its three blobs, and the manifest and its tag in one
// PUT. go-containerregistry's registry cannot mount, so a second import
// asks the tag only, as the image is there whole.
func TestImportRequests(t *testing.T) {
	ctx := context.Background()
	src, _ := memRegistry(t)
	const n = 5
	ims, err := testimages.Push(ctx, src, testimages.Spec{Repo: "small/img-{i}", Tag: "v1", Count: n, Layers: 2, LayerSize: 1 << 10, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, im := range ims {
		refs = append(refs, im.Ref)
	}
	path := filepath.Join(t.TempDir(), "site.tar")
	if _, err := Export(ctx, ExportOptions{Refs: refs, Output: path, Client: client(), NoReferrers: true}); err != nil {
		t.Fatal(err)
	}
	dst, requests := memRegistry(t)
	c := client()
	if _, err := Import(ctx, ImportOptions{Archive: path, To: dst + "/site", Client: c, Trust: TrustOptions{StateDir: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got > 8*n+1 {
		t.Errorf("%d requests for %d small images, want at most %d (and a ping)", got, n, 8*n)
	}
	before := requests.Load()
	if _, err := Import(ctx, ImportOptions{Archive: path, To: dst + "/site", Client: c, Trust: TrustOptions{StateDir: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	if got := requests.Load() - before; got > n {
		t.Errorf("re-import: %d requests for %d images", got, n)
	}
}

// An archive read from a pipe is a stream: it imports the same way.
func TestImportFromAStream(t *testing.T) {
	ctx := context.Background()
	src, _ := memRegistry(t)
	ims, err := testimages.Push(ctx, src, testimages.Spec{Repo: "team/app-{i}", Tag: "v1", Count: 2, Layers: 2, LayerSize: 1500 << 10, Shared: 1, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Export(ctx, ExportOptions{Refs: []string{ims[0].Ref, ims[1].Ref}, Output: "-", Stdout: &out, Compression: "zstd", Client: client()}); err != nil {
		t.Fatal(err)
	}
	dst, _ := memRegistry(t)
	rep, err := Import(ctx, ImportOptions{Archive: "-", Stdin: &out, To: dst + "/s", Client: client(), Trust: TrustOptions{StateDir: t.TempDir()}})
	if err != nil || rep.Verdict != "ok" {
		t.Fatalf("%v %+v", err, rep)
	}
}

func mustRepo(t *testing.T, ref string) name.Repository {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r.Context()
}

func tagOf(ref string) string {
	r, _ := name.ParseReference(ref)
	return r.Identifier()
}
