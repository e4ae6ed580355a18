package verify

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// An image that claims to be chosen out of an index the archive does not
// carry as an index is refused: trust in that index cannot extend to it.
func TestOriginMustBeCarried(t *testing.T) {
	s := buildSynthetic(t, 1, 0)
	im := &s.toc.Images[0]
	im.Index = &layout.IndexOrigin{Ref: im.Ref, Digest: digestOf([]byte("absent")), MediaType: string(types.OCIImageIndex), Size: 6, Platform: "linux/amd64"}
	var ps Problems
	Structure(s.toc, s.index, s.small, &ps)
	if ps.Len() != 1 || !strings.Contains(ps.List()[0].String(), "does not list as an index") {
		t.Errorf("problems: %v", ps.List())
	}
	if got := Unsigned(s.toc); len(got) != 1 {
		t.Errorf("unsigned %v", got)
	}
}
