package relocate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
)

// RelocationMappingType is the artifact type of the relocation mapping that
// import attaches to a relocated bundle.
const RelocationMappingType = "application/vnd.cnab.relocation-mapping.v1+json"

// ImportedBundle is what happened to one CNAB bundle.
type ImportedBundle struct {
	Ref    string  `json:"ref"`
	Target string  `json:"target"`
	Digest v1.Hash `json:"bundleDigest"` // of bundle.json, unchanged
	// RelocationMapping (CNAB core 103) maps every image reference of the
	// bundle to where it now is: the bundle's repository, by digest, as
	// cnab-to-oci stores images.
	RelocationMapping map[string]string `json:"relocationMapping"`
}

// pushBundles writes each imported bundle's relocation mapping, attaches it
// to the bundle's index as a referrer, and reads the bundle back from the
// destination as a CNAB client would, checking bundle.json's digest and
// every image digest.
func (cp *copier) pushBundles(ctx context.Context, targets []*target, rep *ImportReport) ([]ImportedBundle, error) {
	byRef := map[string]int{}
	for i, t := range targets {
		byRef[t.image.Ref] = i
	}
	var out []ImportedBundle
	for _, b := range cp.s.TOC.Bundles {
		i, ok := byRef[b.Ref]
		if !ok {
			continue // left out of this import (--exclude)
		}
		t := targets[i]
		if rep.Images[i].Status == "refused" {
			continue
		}
		ib := ImportedBundle{Ref: b.Ref, Target: dest(t), Digest: b.Digest, RelocationMapping: map[string]string{}}
		for _, bi := range b.Images {
			ib.RelocationMapping[bi.Ref] = t.repo.Digest(bi.Digest.String()).String()
		}
		raw, err := json.MarshalIndent(ib.RelocationMapping, "", "  ")
		if err != nil {
			return nil, err
		}
		subject := v1.Descriptor{MediaType: types.MediaType(t.image.MediaType), Digest: t.image.Digest, Size: t.image.Size}
		if err := cp.attachData(ctx, t.repo, subject, RelocationMappingType, "application/json", raw); err != nil {
			return nil, fmt.Errorf("bundle %s: relocation mapping: %w", b.Ref, err)
		}
		if err := cp.readBack(ctx, t, b); err != nil {
			return nil, err
		}
		out = append(out, ib)
	}
	return out, nil
}

// attachData pushes data as an OCI 1.1 referrer of subject and makes it
// discoverable, through the referrers API or the fallback tag.
func (cp *copier) attachData(ctx context.Context, repo name.Repository, subject v1.Descriptor, artifactType, mediaType string, data []byte) error {
	empty := []byte("{}")
	blob := func(b []byte, mt string) (v1.Descriptor, error) {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		d := v1.Descriptor{MediaType: types.MediaType(mt), Digest: h, Size: n}
		_, err := cp.p.Blob(ctx, []name.Repository{repo}, mirror.Blob{Desc: d, Verified: true, Open: func() (io.Reader, error) { return bytes.NewReader(b), nil }})
		return d, err
	}
	cfg, err := blob(empty, string(types.OCIEmptyJSON))
	if err != nil {
		return err
	}
	layer, err := blob(data, mediaType)
	if err != nil {
		return err
	}
	m, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType, Config: cfg, Layers: []v1.Descriptor{layer}, Subject: &subject})
	if err != nil {
		return err
	}
	h, n, _ := v1.SHA256(bytes.NewReader(m))
	indexed, err := cp.p.Manifest(ctx, repo, h, string(types.OCIManifestSchema1), m)
	if err != nil {
		return err
	}
	return cp.p.List(ctx, repo, layout.Attachment{Subject: subject.Digest, Digest: h, MediaType: string(types.OCIManifestSchema1), Size: n, Kind: layout.AttachReferrer, ArtifactType: artifactType}, indexed)
}

// readBack reads a relocated bundle from the destination in the cnab-to-oci
// form and compares it with what the archive carried.
func (cp *copier) readBack(ctx context.Context, t *target, b layout.Bundle) error {
	m, err := cp.c.GetManifest(ctx, t.repo.Digest(t.image.Digest.String()))
	if err != nil {
		return fmt.Errorf("bundle %s at %s: %w", b.Ref, dest(t), err)
	}
	stored, err := bundle.ParseStored(m.Raw, func(h v1.Hash) ([]byte, error) {
		// Ask for what the archive says it is: a registry may answer a
		// blob asked for as a manifest with a 500, which is retried.
		if k := cp.s.Blobs[h].Kind; k == layout.KindIndex || k == layout.KindManifest {
			mm, err := cp.c.GetManifest(ctx, t.repo.Digest(h.String()))
			if err != nil {
				return nil, err
			}
			return mm.Raw, nil
		}
		var buf bytes.Buffer
		err := cp.c.FetchBlob(ctx, t.repo, v1.Descriptor{Digest: h, Size: cp.s.Blobs[h].Size}, &buf)
		return buf.Bytes(), err
	})
	if err != nil {
		return fmt.Errorf("bundle %s does not read back from %s: %w", b.Ref, dest(t), err)
	}
	if stored.Bundle.Digest != b.Digest {
		return fmt.Errorf("bundle %s at %s: bundle.json is %s, not %s", b.Ref, dest(t), stored.Bundle.Digest, b.Digest)
	}
	for _, bi := range b.Images {
		if got := stored.Images[bi.Key].Digest; got != bi.Digest {
			return fmt.Errorf("bundle %s at %s: image %s is %s, not %s", b.Ref, dest(t), bi.Key, got, bi.Digest)
		}
	}
	return nil
}
