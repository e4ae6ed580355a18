package verify

import "github.com/relocate-dev/relocate/layout"

// Names refuses image references that are not names: a repository with an
// empty, "." or ".." segment could, behind a registry or proxy that cleans
// paths, land outside the destination prefix or on another image's name;
// and a reference pinned by digest must name the image's own digest.
func Names(toc *layout.TOC, ps *Problems) {
	for _, im := range toc.Images {
		if err := layout.CheckRef(im.Ref); err != nil {
			ps.Add(im.Ref, "refused reference: %v", err)
			continue
		}
		d, pinned, err := layout.PinnedDigest(im.Ref)
		switch {
		case err != nil:
			ps.Add(im.Ref, "%v", err)
		case pinned && d != im.Digest:
			ps.Add(im.Ref, "the reference names digest %s, the image it labels is %s", d, im.Digest)
		}
	}
}
