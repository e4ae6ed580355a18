package verify

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// inMemory gives the closure's layers that the archive carries with its
// metadata the kind its table of contents lists: a signature blob, or a
// blob that is also another manifest's config (the OCI empty descriptor is
// the config and the one layer of many artifacts). They were read, checked
// and bounded by that kind's limit with the metadata, and an importer
// pushes them from memory. A blob listed as a layer stays a layer.
func inMemory(c *layout.Closure, listed map[v1.Hash]layout.Blob) {
	for i, d := range c.Blobs {
		if b, ok := listed[d.Digest]; ok && d.Kind == layout.KindLayer && b.Kind.Small() {
			c.Blobs[i].Kind = b.Kind
		}
	}
}

// checkSignatureBlobs holds every signature blob of the table of contents
// to what it claims: a layer, of at most layout.MaxSignatureSize, of a
// signature attachment's manifest. Anything else is a layer smuggled into
// the metadata section.
func checkSignatureBlobs(toc *layout.TOC, small map[v1.Hash][]byte, ps *Problems) {
	used := map[v1.Hash]bool{}
	for _, a := range toc.Attachments {
		raw, ok := small[a.Digest]
		if !ok {
			continue
		}
		for _, l := range layout.SignatureLayers(a, raw) {
			used[l.Digest] = true
		}
	}
	for _, b := range toc.Blobs {
		if b.Kind == layout.KindSignature && !used[b.Digest] {
			ps.Add(b.Digest.String(), "listed as a signature blob, but no signature attachment of the archive has it as a layer")
		}
	}
}
