package main

import (
	"path/filepath"
	"testing"

	"github.com/relocate-dev/relocate/internal/testimages"
)

// Against the real registry: a blob that is one image's config and
// another's layer, and the OCI empty descriptor as an artifact's config and
// layer, go through export, verify and import with every digest, whichever
// part one job meets first. Before export settled a blob's kind, verify
// refused the archives export had just written.
func TestBlobInTwoParts(t *testing.T) {
	needRegistries(t)
	ims, err := testimages.TwoParts(t.Context(), src.Host, "twoparts")
	if err != nil {
		t.Fatal(err)
	}
	a, b, artifact := ims[0], ims[1], ims[2]
	for i, order := range [][]testimages.Image{{a, b, artifact}, {b, a, artifact}} {
		path := filepath.Join(t.TempDir(), "site.tar")
		args := []string{"export", "-o", path, "--plain-http", "--jobs", "1", "-q"}
		for _, im := range order {
			args = append(args, im.Ref)
		}
		mustRun(t, args...)
		mustRun(t, "verify", path, "-q")
		prefix := []string{"twoparts-ab", "twoparts-ba"}[i]
		mustRun(t, "import", path, "--to", dst.Host+"/"+prefix, "--plain-http", "-q")
		for _, im := range ims {
			repo, tag := repoTag(im.Ref)
			if got := headDigest(t, dst.Host, prefix+"/"+repo, tag); got != im.Digest {
				t.Errorf("%s imported as %q, want %s", im.Ref, got, im.Digest)
			}
		}
	}
}
