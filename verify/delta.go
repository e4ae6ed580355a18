package verify

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// expectedBlobs indexes the blobs a delta expects at the site.
func expectedBlobs(toc *layout.TOC) map[v1.Hash]layout.Expected {
	m := make(map[v1.Hash]layout.Expected, len(toc.Expected))
	for _, e := range toc.Expected {
		m[e.Digest] = e
	}
	return m
}

// expectedUse says what is wrong with an image's use of an expected blob,
// or "": it must be a layer of the size the delta lists. A manifest or
// config cannot be expected (they travel in every archive, so that the
// graph can be walked and signatures decided from the archive alone).
func expectedUse(e layout.Expected, d layout.Child) string {
	switch {
	case d.Kind.Small():
		return fmt.Sprintf("used as %s", d.Kind)
	case e.Size != d.Size:
		return fmt.Sprintf("listed with size %d, %d in the manifest", e.Size, d.Size)
	}
	return ""
}
