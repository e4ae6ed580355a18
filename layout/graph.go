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

// pushable are the manifest media types that registries accept and
// Children parses: an archive holding any other could not be imported.
var pushable = map[types.MediaType]bool{
	types.OCIManifestSchema1:    true,
	types.OCIImageIndex:         true,
	types.DockerManifestSchema2: true,
	types.DockerManifestList:    true,
}

// MaxDepth bounds how deep indexes and attachments may nest below an image
// (an image's manifest is at depth 0, its platforms' manifests and what is
// attached to it at 1, and so on). Export, verify and import all walk
// graphs with this one bound, so whatever export writes, verify accepts; no
// real graph comes close, and a hostile one must not lead a walk on forever.
const MaxDepth = 16

// Children parses a manifest or index and returns what it points at: child
// manifests of an index; the config and layers of an image manifest.
//
// mediaType is the descriptor's, which is what an importer sends as the
// Content-Type: it must be one of the manifest or index types registries
// accept. The document must be what a registry would take under that type
// (CNCF distribution's rules): its own mediaType, when present, must agree;
// Docker types require it; an index may not have a config or layers, nor an
// image manifest child manifests. An archive that verify accepts is then one
// that import can push.
func Children(mediaType string, raw []byte) ([]Child, error) {
	var m manifestish
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	mt := types.MediaType(mediaType)
	if mt.IsSchema1() || m.MediaType.IsSchema1() || m.SchemaVersion == 1 {
		return nil, fmt.Errorf("docker schema 1 manifests are not supported")
	}
	switch {
	case mt == "":
		return nil, fmt.Errorf("no media type in the descriptor that points to it (the document says %q)", m.MediaType)
	case !pushable[mt]:
		return nil, fmt.Errorf("media type %q is not an image manifest or index type", mt)
	case m.MediaType != "" && m.MediaType != mt:
		return nil, fmt.Errorf("media type %q in the document, %q in its descriptor", m.MediaType, mt)
	case m.MediaType == "" && (mt == types.DockerManifestSchema2 || mt == types.DockerManifestList):
		return nil, fmt.Errorf("the document has no mediaType field, which registries require of a %s", mt)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	isIndex := mt.IsIndex()
	switch {
	case isIndex && (m.Config != nil || m.Layers != nil):
		return nil, fmt.Errorf("declared as an index (%s) but the document is an image manifest: it has a config or layers", mt)
	case !isIndex && m.Manifests != nil:
		return nil, fmt.Errorf("declared as an image manifest (%s) but the document is an index: it has manifests", mt)
	}
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

// Size is the number of manifests, blobs and attachments in the closure.
func (c *Closure) Size() int { return len(c.Manifests) + len(c.Blobs) + len(c.Attached) }

// Walker computes the closures of many images over one set of manifests,
// parsing each manifest once however many images share it, so that walking
// every image of an archive costs what their closures hold, not what their
// manifests weigh times the number of images.
type Walker struct {
	get      func(v1.Hash) ([]byte, bool)
	attached map[v1.Hash][]Attachment
	parsed   map[parseKey]parsed
}

// parseKey is a manifest as a descriptor names it: Children's result
// depends on the media type the descriptor claims.
type parseKey struct {
	digest    v1.Hash
	mediaType types.MediaType
}

type parsed struct {
	kids []Child
	err  error
}

// NewWalker reads manifests with get and follows attachments (nil for none).
func NewWalker(get func(v1.Hash) ([]byte, bool), attached map[v1.Hash][]Attachment) *Walker {
	return &Walker{get: get, attached: attached, parsed: map[parseKey]parsed{}}
}

// Walk computes the closure of a top-level manifest, reading manifests with
// get and following attachments (nil for none). A manifest that get cannot
// supply, or that does not parse, is an error naming its digest.
func Walk(top Child, get func(v1.Hash) ([]byte, bool), attached map[v1.Hash][]Attachment) (*Closure, error) {
	return NewWalker(get, attached).Walk(top)
}

// Walk computes the closure of a top-level manifest. A manifest that cannot
// be read, or that does not parse, is an error naming its digest.
func (w *Walker) Walk(top Child) (*Closure, error) {
	c := &Closure{}
	seen := map[v1.Hash]bool{}
	var visit func(d Child, depth int) error
	visit = func(d Child, depth int) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if depth > MaxDepth {
			return fmt.Errorf("manifest %s: indexes and attachments nested more than %d deep", d.Digest, MaxDepth)
		}
		kids, err := w.children(d)
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
		for _, a := range w.attached[d.Digest] {
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

// children parses a manifest once per media type it is named with.
func (w *Walker) children(d Child) ([]Child, error) {
	key := parseKey{d.Digest, d.MediaType}
	if p, ok := w.parsed[key]; ok {
		return p.kids, p.err
	}
	var p parsed
	if raw, ok := w.get(d.Digest); !ok {
		p.err = fmt.Errorf("missing from the archive")
	} else {
		p.kids, p.err = Children(string(d.MediaType), raw)
	}
	w.parsed[key] = p
	return p.kids, p.err
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
