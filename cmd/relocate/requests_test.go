package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

// TestSmallImagesFewRequests counts what an import asks of the registry:
// into an empty registry a small image (a config and two layers) costs at
// most 8 requests (the tag looked up once, a POST and a PUT a blob, the
// manifest and its tag in one PUT), and importing it again one.
func TestSmallImagesFewRequests(t *testing.T) {
	needRegistries(t)
	const n = 20
	ims, err := testimages.Push(context.Background(), src.Host, testimages.Spec{Repo: "small/img-{i}", Tag: "v1", Count: n, Layers: 2, LayerSize: 64 << 10, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, im := range ims {
		refs = append(refs, im.Ref)
	}
	path := filepath.Join(t.TempDir(), "small.tar")
	mustRun(t, append([]string{"export", "-o", path, "--plain-http", "-q", "--no-referrers"}, refs...)...)
	proxy := testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{})
	to := proxy.Host + "/requests"
	mustRun(t, "import", path, "--to", to, "--plain-http", "-q")
	first := proxy.Requests()
	if first > 8*n+1 { // and one ping of the registry
		t.Errorf("%d requests for %d small images into an empty registry: %.1f an image, want at most 8", first, n, float64(first)/n)
	}
	mustRun(t, "import", path, "--to", to, "--plain-http", "-q")
	again := proxy.Requests() - first
	if again > n+1 {
		t.Errorf("re-import: %d requests for %d images, want at most one an image (and the ping)", again, n)
	}
	for _, im := range ims {
		repo, tag := repoTag(im.Ref)
		if got := headDigest(t, dst.Host, "requests/"+repo, tag); got != im.Digest {
			t.Errorf("%s at the destination: %s, want %s", im.Ref, got, im.Digest)
		}
	}
	t.Logf("first import %d requests (%.1f an image), re-import %d", first, float64(first)/n, again)
}
