package verify

import (
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// checkIndex holds index.json to the table of contents. Other tools read
// index.json, not the table of contents, so each of its entries must say
// what the table of contents says:
//
//   - an entry with an io.containerd.image.name annotation is an image of
//     the table of contents, with the same digest, size and media type, and a
//     ref.name that is its full reference (or, in archives written before
//     full names, its tag, or none): a name that another tool resolves
//     leads to that image and no other;
//   - an entry without it is an attached manifest of the table of contents,
//     described as layout.AttachmentEntry describes it, with no name;
//   - the attached manifests are listed all (each digest once, those that
//     are images through their image entries) or none: an archive written
//     before attachments were listed lists none.
func checkIndex(toc *layout.TOC, index *v1.IndexManifest, ps *Problems) {
	inIndex := map[string]v1.Descriptor{}
	attached := map[v1.Hash][]layout.Attachment{}
	for _, a := range toc.Attachments {
		attached[a.Digest] = append(attached[a.Digest], a)
	}
	listed := map[v1.Hash]bool{} // attachments listed as such
	for _, d := range index.Manifests {
		ref, named := d.Annotations[layout.AnnotationImageName]
		if !named {
			checkAttachmentEntry(d, attached[d.Digest], listed, ps)
			continue
		}
		if ref == "" {
			ps.Add(layout.IndexFile, "entry %s has an empty %s annotation", d.Digest, layout.AnnotationImageName)
			continue
		}
		if _, dup := inIndex[ref]; dup {
			ps.Add(layout.IndexFile, "reference %s listed twice", ref)
		}
		inIndex[ref] = d
	}
	images := map[v1.Hash]bool{}
	for _, im := range toc.Images {
		images[im.Digest] = true
		d, ok := inIndex[im.Ref]
		if !ok {
			ps.Add(im.Ref, "in the table of contents but not in %s", layout.IndexFile)
			continue
		}
		delete(inIndex, im.Ref)
		if d.Digest != im.Digest || d.Size != im.Size || string(d.MediaType) != im.MediaType {
			ps.Add(im.Ref, "%s says %s (%d bytes, %s), the table of contents says %s (%d bytes, %s)",
				layout.IndexFile, d.Digest, d.Size, d.MediaType, im.Digest, im.Size, im.MediaType)
		}
		if f := extraFields(d); f != "" {
			ps.Add(im.Ref, "its %s entry carries %s, which relocate never writes", layout.IndexFile, f)
		}
		if name, ok := d.Annotations[layout.AnnotationRefName]; ok && name != im.Ref && name != layout.TagOf(im.Ref) {
			ps.Add(im.Ref, "%s names it %s %q: another tool would find it under that name", layout.IndexFile, layout.AnnotationRefName, name)
		}
	}
	for ref := range inIndex {
		ps.Add(ref, "in %s but not in the table of contents", layout.IndexFile)
	}
	if len(listed) == 0 {
		return // written before attachments were listed in index.json
	}
	var missing []string
	for h := range attached {
		if !listed[h] && !images[h] {
			missing = append(missing, h.String())
		}
	}
	slices.Sort(missing)
	for _, h := range missing {
		ps.Add(h, "attached manifest in the table of contents but not in %s", layout.IndexFile)
	}
}

// checkAttachmentEntry checks an unnamed index.json entry against the table
// of contents' attachments with its digest (as), recording it in listed.
func checkAttachmentEntry(d v1.Descriptor, as []layout.Attachment, listed map[v1.Hash]bool, ps *Problems) {
	subject := d.Digest.String()
	switch {
	case len(as) == 0:
		ps.Add(layout.IndexFile, "entry %s has no %s annotation and is not an attached manifest of the table of contents", d.Digest, layout.AnnotationImageName)
		return
	case listed[d.Digest]:
		ps.Add(subject, "attached manifest listed twice in %s", layout.IndexFile)
		return
	}
	listed[d.Digest] = true
	if f := extraFields(d); f != "" {
		ps.Add(subject, "its %s entry carries %s, which relocate never writes", layout.IndexFile, f)
		return
	}
	if len(d.Annotations) != 0 {
		// A ref.name would let skopeo or oras resolve a name to a signature
		// or an SBOM; relocate writes none.
		ps.Add(subject, "attached manifest with annotations in %s (it must carry no name)", layout.IndexFile)
		return
	}
	for _, a := range as {
		w := layout.AttachmentEntry(a)
		if d.MediaType == w.MediaType && d.Size == w.Size && d.ArtifactType == w.ArtifactType {
			return
		}
	}
	w := layout.AttachmentEntry(as[0])
	ps.Add(subject, "%s describes this attached manifest as %d bytes, %s, artifact type %q; the table of contents as %d bytes, %s, artifact type %q",
		layout.IndexFile, d.Size, d.MediaType, d.ArtifactType, w.Size, w.MediaType, w.ArtifactType)
}

// extraFields names the descriptor fields relocate never writes in
// index.json: embedded data that a reader might use instead of the blob,
// URLs to fetch it from elsewhere, a platform that would filter it out.
func extraFields(d v1.Descriptor) string {
	switch {
	case d.Data != nil:
		return "embedded data"
	case len(d.URLs) != 0:
		return "urls"
	case d.Platform != nil:
		return "a platform"
	}
	return ""
}
