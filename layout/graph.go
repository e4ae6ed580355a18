package layout

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Child is a descriptor that a manifest or index points at, with its role.
type Child struct {
	v1.Descriptor
	Kind Kind
}

// manifestish holds the fields of both image manifests and indexes, so one
// decode tells which of the two a document is even when mediaType is absent.
type manifestish struct {
	SchemaVersion int64           `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Config        *v1.Descriptor  `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Manifests     []v1.Descriptor `json:"manifests"`
}

// IsIndexType reports whether a media type names an index or manifest list.
func IsIndexType(mt string) bool { return types.MediaType(mt).IsIndex() }

// IsManifestType reports whether a media type names a manifest or an index.
func IsManifestType(mt string) bool {
	m := types.MediaType(mt)
	return m.IsIndex() || m.IsImage() || m == "application/vnd.oci.artifact.manifest.v1+json"
}

// Children parses a manifest or index and returns what it points at: child
// manifests of an index; the config and layers of an image manifest. The
// descriptor's media type wins over the document's own field; both must agree
// when present.
func Children(mediaType string, raw []byte) ([]Child, error) {
	var m manifestish
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if m.MediaType != "" && mediaType != "" && string(m.MediaType) != mediaType {
		return nil, fmt.Errorf("media type %q in the document, %q in its descriptor", m.MediaType, mediaType)
	}
	mt := types.MediaType(mediaType)
	if mt == "" {
		mt = m.MediaType
	}
	if mt.IsSchema1() || m.SchemaVersion == 1 {
		return nil, fmt.Errorf("docker schema 1 manifests are not supported")
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	isIndex := mt.IsIndex() || (mt == "" && m.Manifests != nil)
	var out []Child
	if isIndex {
		for _, d := range m.Manifests {
			if err := checkDesc(d); err != nil {
				return nil, err
			}
			k := KindManifest
			if d.MediaType.IsIndex() {
				k = KindIndex
			}
			out = append(out, Child{Descriptor: d, Kind: k})
		}
		return out, nil
	}
	if m.Config == nil {
		return nil, fmt.Errorf("image manifest without a config")
	}
	if err := checkDesc(*m.Config); err != nil {
		return nil, err
	}
	out = append(out, Child{Descriptor: *m.Config, Kind: KindConfig})
	for _, d := range m.Layers {
		if err := checkDesc(d); err != nil {
			return nil, err
		}
		out = append(out, Child{Descriptor: d, Kind: KindLayer})
	}
	return out, nil
}

func checkDesc(d v1.Descriptor) error {
	if err := CheckDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size", d.Digest)
	}
	return nil
}

// KindOf is the kind of a top-level manifest given its media type.
func KindOf(mediaType string) Kind {
	if IsIndexType(mediaType) {
		return KindIndex
	}
	return KindManifest
}

// Closure is everything one image needs: its manifests in push order
// (children before the indexes that name them, subjects before what is
// attached to them), its configs and layers, and its attachments.
type Closure struct {
	Manifests []Child
	Blobs     []Child
	Attached  []Attachment
}

// Walk computes the closure of a top-level manifest, reading manifests with
// get and following attachments (nil for none). A manifest that get cannot
// supply, or that does not parse, is an error naming its digest.
func Walk(top Child, get func(v1.Hash) ([]byte, bool), attached map[v1.Hash][]Attachment) (*Closure, error) {
	c := &Closure{}
	seen := map[v1.Hash]bool{}
	var visit func(d Child, depth int) error
	visit = func(d Child, depth int) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if depth > 8 {
			return fmt.Errorf("manifest %s: indexes nested too deeply", d.Digest)
		}
		raw, ok := get(d.Digest)
		if !ok {
			return fmt.Errorf("manifest %s: missing from the archive", d.Digest)
		}
		kids, err := Children(string(d.MediaType), raw)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		for _, k := range kids {
			if k.Kind == KindIndex || k.Kind == KindManifest {
				if err := visit(k, depth+1); err != nil {
					return err
				}
			} else if !seen[k.Digest] {
				seen[k.Digest] = true
				c.Blobs = append(c.Blobs, k)
			}
		}
		c.Manifests = append(c.Manifests, d)
		for _, a := range attached[d.Digest] {
			c.Attached = append(c.Attached, a)
			ad := v1.Descriptor{Digest: a.Digest, Size: a.Size, MediaType: types.MediaType(a.MediaType)}
			if err := visit(Child{Descriptor: ad, Kind: KindOf(a.MediaType)}, depth+1); err != nil {
				return fmt.Errorf("%s attached to %s: %w", a.Kind, d.Digest, err)
			}
		}
		return nil
	}
	return c, visit(top, 0)
}

// Artifact is what a referrers listing shows of a manifest.
type Artifact struct {
	// Type is the manifest's artifactType, else its config's media type
	// (OCI distribution spec).
	Type        string
	Subject     *v1.Hash
	Annotations map[string]string
}

// ArtifactOf reads a manifest's artifact fields; absent fields stay empty.
func ArtifactOf(raw []byte) Artifact {
	var f struct {
		ArtifactType string            `json:"artifactType"`
		Config       *v1.Descriptor    `json:"config"`
		Subject      *v1.Descriptor    `json:"subject"`
		Annotations  map[string]string `json:"annotations"`
	}
	json.Unmarshal(raw, &f) // callers parse the manifest properly elsewhere
	a := Artifact{Type: f.ArtifactType, Annotations: f.Annotations}
	if a.Type == "" && f.Config != nil {
		a.Type = string(f.Config.MediaType)
	}
	if f.Subject != nil {
		a.Subject = &f.Subject.Digest
	}
	return a
}
