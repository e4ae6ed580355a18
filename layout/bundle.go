package layout

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Bundle lists a CNAB bundle in the table of contents. The bundle travels as
// an image whose reference is Ref: the cnab-to-oci index (config manifest
// holding bundle.json, then the invocation and component image manifests),
// pushed with the same digest at the site.
type Bundle struct {
	Ref    string        `json:"ref"`    // the bundle's reference, an image of the archive; TUF's target name
	Digest v1.Hash       `json:"digest"` // sha256 of bundle.json, which TUF signs
	Size   int64         `json:"size"`
	Images []BundleImage `json:"images"`
}

// BundleImage is one image a bundle names.
type BundleImage struct {
	Key    string  `json:"key"`    // images{} key, or invocation-<i>
	Ref    string  `json:"ref"`    // the reference in bundle.json
	Digest v1.Hash `json:"digest"` // the manifest the archive carries for it
	// Pinned is set when bundle.json states this digest (contentDigest), so
	// that trust in bundle.json extends to the image.
	Pinned bool `json:"pinned"`
}

func (b Bundle) check(images map[string]bool) error {
	if !images[b.Ref] {
		return fmt.Errorf("bundle %s is not among the images", b.Ref)
	}
	if err := CheckDigest(b.Digest); err != nil {
		return fmt.Errorf("bundle %s: %w", b.Ref, err)
	}
	// Like every digest of the table of contents: an absent one would
	// parse as the zero hash, which marshals as ":" and never parses again.
	for _, im := range b.Images {
		if err := CheckDigest(im.Digest); err != nil {
			return fmt.Errorf("bundle %s: image %s: %w", b.Ref, im.Key, err)
		}
	}
	return nil
}
