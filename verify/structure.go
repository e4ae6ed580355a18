package verify

import (
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// Structure checks that index.json and the table of contents name the same
// images, and that every image's manifests parse and point only at blobs the
// table of contents lists, with the same sizes. small holds the content of
// the metadata blobs (manifests, configs) already checked against their
// digests. It returns each image's closure, keyed by reference, for the
// images that passed.
//
// Its cost is linear: the table of contents is indexed once, each manifest
// parsed once, and the closures added up may not exceed layout.MaxWalked.
func Structure(toc *layout.TOC, index *v1.IndexManifest, small map[v1.Hash][]byte, ps *Problems) map[string]*layout.Closure {
	listed := make(map[v1.Hash]layout.Blob, len(toc.Blobs))
	for _, b := range toc.Blobs {
		listed[b.Digest] = b
	}
	expected := expectedBlobs(toc)
	checkIndex(toc, index, ps)
	checkAttachments(toc, small, ps)
	checkSignatureBlobs(toc, small, ps)
	checkOrigins(toc, listed, small, ps)

	w := layout.NewWalker(func(h v1.Hash) ([]byte, bool) { b, ok := small[h]; return b, ok }, toc.AttachedTo())
	out := map[string]*layout.Closure{}
	walked := 0
	for _, im := range toc.Images {
		top := layout.Child{Descriptor: v1.Descriptor{Digest: im.Digest, Size: im.Size, MediaType: types.MediaType(im.MediaType)}, Kind: layout.KindOf(im.MediaType)}
		c, err := w.Walk(top)
		if err != nil {
			ps.Add(im.Ref, "%v", err)
			continue
		}
		if walked += c.Size(); walked > maxWalked {
			ps.Add(layout.TOCFile, "the images' graphs add up to more than %d manifests, blobs and attachments (the limit of layout.MaxWalked)", maxWalked)
			return out
		}
		ok := true
		inMemory(c, listed)
		for _, d := range slices.Concat(c.Manifests, c.Blobs) {
			b, found := listed[d.Digest]
			if e, isExpected := expected[d.Digest]; isExpected && !found {
				if why := expectedUse(e, d); why != "" {
					ps.Add(d.Digest.String(), "expected at the site, but %s by %s", why, im.Ref)
					ok = false
				}
				continue
			}
			switch {
			case !found:
				ps.Add(d.Digest.String(), "needed by %s but not in the table of contents", im.Ref)
				ok = false
			case b.Size != d.Size:
				ps.Add(d.Digest.String(), "size %d in the table of contents, %d in the manifest of %s", b.Size, d.Size, im.Ref)
				ok = false
			case b.Kind.Small() != d.Kind.Small():
				ps.Add(d.Digest.String(), "kind %s in the table of contents, used as %s by %s", b.Kind, d.Kind, im.Ref)
				ok = false
			}
		}
		if ok {
			out[im.Ref] = c
		}
	}
	return out
}

// maxWalked is layout.MaxWalked, a variable so that a test can reach it.
var maxWalked = layout.MaxWalked

// Unsigned lists the images whose top-level manifest has no signature
// attached (cosign, notation or Sigstore bundle), nor the index a platform
// manifest was chosen from.
func Unsigned(toc *layout.TOC) []string {
	signed := map[v1.Hash]bool{}
	for _, a := range toc.Attachments {
		if a.Signature() {
			signed[a.Subject] = true
		}
	}
	var out []string
	for _, im := range toc.Images {
		if !signed[im.Digest] && (im.Index == nil || !signed[im.Index.Digest]) {
			out = append(out, im.Ref)
		}
	}
	return out
}

// checkAttachments holds the table of contents to what each attachment's
// manifest says: the fallback indexes written at import and the signature
// report are built from these fields.
func checkAttachments(toc *layout.TOC, small map[v1.Hash][]byte, ps *Problems) {
	for _, a := range toc.Attachments {
		raw, ok := small[a.Digest]
		if !ok {
			continue // Walk reports the missing manifest for the image
		}
		got := layout.ArtifactOf(raw)
		switch {
		case int64(len(raw)) != a.Size:
			ps.Add(a.Digest.String(), "attachment of %d bytes, the table of contents says %d", len(raw), a.Size)
		case a.Kind == layout.AttachReferrer && (got.Subject == nil || *got.Subject != a.Subject):
			ps.Add(a.Digest.String(), "listed as a referrer of %s, but its manifest names another subject", a.Subject)
		case got.Type != a.ArtifactType:
			ps.Add(a.Digest.String(), "artifact type %q in the table of contents, %q in the manifest", a.ArtifactType, got.Type)
		case !sameAnnotations(got.Annotations, a.Annotations):
			ps.Add(a.Digest.String(), "annotations in the table of contents differ from the manifest's")
		}
	}
}

func sameAnnotations(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
