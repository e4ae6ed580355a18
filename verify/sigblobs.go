package verify

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// signatureBlobs marks the closure's layers that the archive carries as
// signature blobs (with its metadata, in memory): an importer pushes them
// from memory like configs. An archive written before signature blobs
// existed lists them as layers, and they stay layers.
func signatureBlobs(c *layout.Closure, listed map[v1.Hash]layout.Blob) {
	for i, d := range c.Blobs {
		if b, ok := listed[d.Digest]; ok && d.Kind == layout.KindLayer && b.Kind == layout.KindSignature {
			c.Blobs[i].Kind = layout.KindSignature
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
