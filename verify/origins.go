package verify

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// checkOrigins holds every image that export --platform chose out of an
// index to that index, which the archive carries among its metadata: the
// index lists the image's manifest for its platform, under its repository.
// Trust in the index (a TUF target, a signature) extends to the image only
// through this check.
func checkOrigins(toc *layout.TOC, listed map[v1.Hash]layout.Blob, small map[v1.Hash][]byte, ps *Problems) {
	for _, im := range toc.Images {
		if im.Index == nil {
			continue
		}
		b, ok := listed[im.Index.Digest]
		raw, have := small[im.Index.Digest]
		switch {
		case !ok || b.Kind != layout.KindIndex:
			ps.Add(im.Ref, "chosen from index %s, which the table of contents does not list as an index", im.Index.Digest)
		case !have:
			ps.Add(im.Ref, "chosen from index %s, which is missing from the archive", im.Index.Digest)
		default:
			if err := layout.CheckOrigin(im, raw); err != nil {
				ps.Add(im.Ref, "%v", err)
			}
		}
	}
}

// through is the index an image was chosen from, as the image that trust
// in it is about, or nil.
func through(im layout.Image) *layout.Image {
	if im.Index == nil {
		return nil
	}
	x := im.Index.Image()
	return &x
}
