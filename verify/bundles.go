package verify

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
)

// Bundles checks that what the table of contents says of each CNAB bundle is
// what the archive holds: the bundle's image is a cnab-to-oci index whose
// bundle.json has the listed digest, naming the listed image manifests. The
// table of contents is not signed, so trust decisions rely on this check.
func Bundles(toc *layout.TOC, small map[v1.Hash][]byte, ps *Problems) {
	images := map[string]layout.Image{}
	for _, im := range toc.Images {
		images[im.Ref] = im
	}
	for _, b := range toc.Bundles {
		if err := checkBundle(b, images[b.Ref], small); err != nil {
			ps.Add(b.Ref, "%v", err)
		}
	}
}

func checkBundle(b layout.Bundle, im layout.Image, small map[v1.Hash][]byte) error {
	index, ok := small[im.Digest]
	if !ok {
		return fmt.Errorf("bundle index %s missing", im.Digest)
	}
	stored, err := bundle.ParseStored(index, func(h v1.Hash) ([]byte, error) {
		if d, ok := small[h]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("%s missing from the archive", h)
	})
	if err != nil {
		return err
	}
	if stored.Bundle.Digest != b.Digest || int64(len(stored.Bundle.Raw)) != b.Size {
		return fmt.Errorf("the table of contents lists bundle.json %s, the bundle holds %s", b.Digest, stored.Bundle.Digest)
	}
	want := map[string]layout.BundleImage{}
	for _, bi := range b.Images {
		want[bi.Key] = bi
	}
	for _, bi := range stored.Bundle.Images() {
		got, listed := want[bi.Key]
		d := stored.Images[bi.Key].Digest
		if !listed || got.Digest != d || got.Ref != bi.Ref || got.Pinned != (bi.ContentDigest != "") {
			return fmt.Errorf("image %s: the table of contents does not match bundle.json and the index", bi.Key)
		}
		delete(want, bi.Key)
	}
	if len(want) > 0 {
		return fmt.Errorf("the table of contents lists images the bundle does not name")
	}
	return nil
}

// BundleTrust is the outcome for one CNAB bundle.
type BundleTrust struct {
	Ref string `json:"ref"`
	// Level is the CNAB Security level reached (0, 1a, 1b, 2, 3a, 3b, 4).
	Level      string  `json:"securityLevel"`
	VouchedBy  []Vouch `json:"vouchedBy,omitempty"`
	ImagesTUF  bool    `json:"imagesUnderTUF"`
	InTotoNote string  `json:"inToto,omitempty"`
	inToto     bool
}
