package layout

import (
	"encoding/json"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on index.json entries. An image's entry carries its full
// original reference in both: containerd, podman and nerdctl read
// io.containerd.image.name, skopeo and oras match org.opencontainers.image.ref.name
// exactly, and a tag alone would be ambiguous (three images tagged v1).
const (
	AnnotationRefName   = "org.opencontainers.image.ref.name"
	AnnotationImageName = "io.containerd.image.name"
)

// MaxIndexEntries bounds index.json: one entry per image and one per
// attached manifest.
const MaxIndexEntries = MaxImages + MaxAttachments

// BuildIndex writes index.json: first one entry per image, named by its full
// original reference, then one unnamed entry per attached manifest (each
// digest once, none that is already an image's). Tools that work on an OCI
// layout (oras-go's store, so oras and notation) find referrers only among
// manifests reachable from index.json, and walk down from each entry, never
// up from a subject: an attachment must be listed itself. It carries no
// name, so no tool can take it for an image. The order depends on content
// only, so the same content gives the same bytes.
func BuildIndex(toc *TOC) ([]byte, error) {
	images := append([]Image(nil), toc.Images...)
	sort.Slice(images, func(i, j int) bool { return images[i].Ref < images[j].Ref })
	atts := append([]Attachment(nil), toc.Attachments...)
	sort.SliceStable(atts, func(i, j int) bool { return atts[i].Digest.String() < atts[j].Digest.String() })

	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	listed := map[v1.Hash]bool{}
	for _, im := range images {
		listed[im.Digest] = true
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:   types.MediaType(im.MediaType),
			Size:        im.Size,
			Digest:      im.Digest,
			Annotations: map[string]string{AnnotationImageName: im.Ref, AnnotationRefName: im.Ref},
		})
	}
	for _, a := range atts {
		if listed[a.Digest] {
			continue
		}
		listed[a.Digest] = true
		idx.Manifests = append(idx.Manifests, AttachmentEntry(a))
	}
	return json.MarshalIndent(idx, "", " ")
}

// AttachmentEntry is the index.json entry of an attached manifest: its
// descriptor, with the artifact type of a referrer (what a referrers
// listing shows) and no annotations. A cosign tag's manifest gets no
// artifact type: it has none of its own.
func AttachmentEntry(a Attachment) v1.Descriptor {
	d := v1.Descriptor{MediaType: types.MediaType(a.MediaType), Size: a.Size, Digest: a.Digest}
	if a.Kind == AttachReferrer {
		d.ArtifactType = a.ArtifactType
	}
	return d
}

// ParseIndex decodes index.json.
func ParseIndex(b []byte) (*v1.IndexManifest, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", IndexFile, err)
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion %d, want 2", IndexFile, idx.SchemaVersion)
	}
	if len(idx.Manifests) > MaxIndexEntries {
		return nil, fmt.Errorf("%s: %d entries, over the limit of %d (%d images and %d attachments)", IndexFile, len(idx.Manifests), MaxIndexEntries, MaxImages, MaxAttachments)
	}
	return &idx, nil
}
