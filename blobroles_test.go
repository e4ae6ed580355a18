package relocate

import (
	"path/filepath"
	"testing"

	"github.com/relocate-dev/relocate/internal/testimages"
)

// A blob can play two parts: OCI 1.1 artifacts without content use the
// empty descriptor as their config and as their one layer, and one image's
// config can be another's layer. Export, verify and import carry both,
// whichever part the walk meets first (one job walks in the order given).
func TestBlobInTwoRoles(t *testing.T) {
	src, _ := memRegistry(t)
	ims, err := testimages.TwoParts(t.Context(), src, "team")
	if err != nil {
		t.Fatal(err)
	}
	a, b, artifact := ims[0].Ref, ims[1].Ref, ims[2].Ref
	for i, refs := range [][]string{{a, b, artifact}, {b, a, artifact}} {
		path := filepath.Join(t.TempDir(), []string{"site.tar", "site.tar.zst"}[i])
		if _, err := Export(t.Context(), ExportOptions{Refs: refs, Output: path, Client: client(), Jobs: 1}); err != nil {
			t.Fatalf("export %v: %v", refs, err)
		}
		verifyAndImport(t, path)
	}
}
