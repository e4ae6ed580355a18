package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The cnab-to-oci registry form, as github.com/cnabio/cnab-to-oci v0.4.1
// (package converter) writes and reads it.
const (
	// ArtifactType marks the index (in the AnnotationArtifactType annotation).
	ArtifactType = "application/vnd.cnab.manifest.v1"
	// ConfigMediaType is the media type of bundle.json as the config blob.
	ConfigMediaType = "application/vnd.cnab.config.v1+json"

	AnnotationArtifactType   = "org.opencontainers.artifactType"
	AnnotationRuntimeVersion = "io.cnab.runtime_version"
	AnnotationKeywords       = "io.cnab.keywords"
	AnnotationManifestType   = "io.cnab.manifest.type" // on index entries: ManifestType*
	AnnotationComponentName  = "io.cnab.component.name"

	ManifestTypeConfig     = "config"
	ManifestTypeInvocation = "invocation"
	ManifestTypeComponent  = "component"
)

// isConfigMediaType accepts the config media types cnab-to-oci falls back
// through for registries that refuse unknown ones.
func isConfigMediaType(mt types.MediaType) bool {
	switch mt {
	case ConfigMediaType, types.OCIConfigJSON, types.DockerConfigJSON:
		return true
	}
	return false
}

// Stored is a bundle as found in a registry in the cnab-to-oci form.
type Stored struct {
	Bundle *Bundle
	Index  []byte                   // the index bytes as given
	Config v1.Descriptor            // the config manifest (whose config blob is bundle.json)
	Images map[string]v1.Descriptor // Image.Key -> manifest descriptor, as in the index
}

// IsStoredIndex reports whether index bytes look like the cnab-to-oci form,
// for callers deciding whether to use ParseStored.
func IsStoredIndex(index []byte) bool {
	var ix v1.IndexManifest
	return json.Unmarshal(index, &ix) == nil && isCNABIndex(&ix)
}

func isCNABIndex(ix *v1.IndexManifest) bool {
	return ix.Annotations[AnnotationArtifactType] == ArtifactType
}

// ParseStored reads the cnab-to-oci form from its index and, through get,
// the config manifest and bundle.json (each checked against its
// descriptor's size and sha256, since get may read from anywhere). Every
// image of the bundle must have exactly one entry, and an entry's digest
// must equal the image's contentDigest where the bundle states one: the
// index is not what is signed, bundle.json is.
func ParseStored(index []byte, get func(v1.Hash) ([]byte, error)) (*Stored, error) {
	var ix v1.IndexManifest
	if err := json.Unmarshal(index, &ix); err != nil {
		return nil, fmt.Errorf("cnab index: %w", err)
	}
	switch ix.MediaType {
	case "", types.OCIImageIndex, types.DockerManifestList:
	default:
		return nil, fmt.Errorf("cnab index: media type %q is not an index", ix.MediaType)
	}
	if !isCNABIndex(&ix) {
		return nil, fmt.Errorf("cnab index: annotation %s is %q, want %q", AnnotationArtifactType, ix.Annotations[AnnotationArtifactType], ArtifactType)
	}

	var configs, invocations []v1.Descriptor
	components := map[string]v1.Descriptor{}
	for i, d := range ix.Manifests {
		switch t := d.Annotations[AnnotationManifestType]; t {
		case ManifestTypeConfig:
			configs = append(configs, d)
		case ManifestTypeInvocation:
			invocations = append(invocations, d)
		case ManifestTypeComponent:
			name := d.Annotations[AnnotationComponentName]
			if name == "" {
				return nil, fmt.Errorf("cnab index: manifest %d (%s): component without %s", i, d.Digest, AnnotationComponentName)
			}
			if _, dup := components[name]; dup {
				return nil, fmt.Errorf("cnab index: component %q listed twice", name)
			}
			if isInvocationKey(name) {
				// It would take the place of an invocation image below.
				return nil, fmt.Errorf("cnab index: component name %q is reserved for invocation images", name)
			}
			components[name] = d
		default:
			return nil, fmt.Errorf("cnab index: manifest %d (%s): %s %q", i, d.Digest, AnnotationManifestType, t)
		}
	}
	if len(configs) != 1 {
		return nil, fmt.Errorf("cnab index: %d config manifests, want 1", len(configs))
	}

	cm, err := fetch(get, configs[0], "config manifest")
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(cm))
	if err != nil {
		return nil, fmt.Errorf("cnab index: config manifest %s: %w", configs[0].Digest, err)
	}
	if !isConfigMediaType(m.Config.MediaType) {
		return nil, fmt.Errorf("cnab index: config manifest %s: config media type %q", configs[0].Digest, m.Config.MediaType)
	}
	raw, err := fetch(get, m.Config, "bundle.json")
	if err != nil {
		return nil, err
	}
	b, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cnab index: %w", err)
	}

	s := &Stored{Bundle: b, Index: bytes.Clone(index), Config: configs[0], Images: map[string]v1.Descriptor{}}
	// cnab-to-oci writes one invocation image; more are matched by position.
	for i, d := range invocations {
		s.Images[invocationPrefix+strconv.Itoa(i)] = d
	}
	for name, d := range components {
		s.Images[name] = d
	}
	if err := matchImages(b, s.Images); err != nil {
		return nil, fmt.Errorf("cnab index: %w", err)
	}
	return s, nil
}

// fetch gets a blob or manifest and checks it against its descriptor.
func fetch(get func(v1.Hash) ([]byte, error), d v1.Descriptor, what string) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("cnab index: %s %s: only sha256 digests are supported", what, d.Digest)
	}
	b, err := get(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("cnab index: %s %s: %w", what, d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("cnab index: %s %s: %d bytes, descriptor says %d", what, d.Digest, len(b), d.Size)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(b)); h != d.Digest {
		return nil, fmt.Errorf("cnab index: %s %s: content has digest %s", what, d.Digest, h)
	}
	return b, nil
}

// isManifestMediaType accepts what cnab-to-oci accepts for an image entry.
func isManifestMediaType(mt types.MediaType) bool {
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList:
		return true
	}
	return false
}

// matchImages checks that images has one manifest descriptor per image of
// b, no other, and that each agrees with the image's contentDigest.
func matchImages(b *Bundle, images map[string]v1.Descriptor) error {
	want := b.Images()
	keys := make(map[string]bool, len(want))
	for _, img := range want {
		keys[img.Key] = true
		d, ok := images[img.Key]
		if !ok {
			return fmt.Errorf("bundle %s: image %s (%s): no manifest descriptor", b.name(), img.Key, img.Ref)
		}
		if !isManifestMediaType(d.MediaType) {
			return fmt.Errorf("bundle %s: image %s (%s): media type %q is not an image manifest or index", b.name(), img.Key, img.Ref, d.MediaType)
		}
		if d.Size <= 0 {
			return fmt.Errorf("bundle %s: image %s (%s): descriptor without size", b.name(), img.Key, img.Ref)
		}
		if img.ContentDigest != "" && img.ContentDigest != d.Digest.String() {
			return fmt.Errorf("bundle %s: image %s (%s): manifest %s, bundle.json pins %s", b.name(), img.Key, img.Ref, d.Digest, img.ContentDigest)
		}
	}
	for key := range images {
		if !keys[key] {
			return fmt.Errorf("bundle %s: image %s: not in bundle.json", b.name(), key)
		}
	}
	return nil
}

// BuildStored makes the cnab-to-oci form of b for pushing into one
// repository. images gives each image's manifest descriptor (digest, size,
// media type) by Image.Key; the images must already be in that repository
// by digest. It returns the index and the config manifest; pushing means,
// in order: bundle.json (b.Raw, byte for byte) as a blob, the config
// manifest, then the index (by tag or digest). Only one invocation image
// fits the form, as cnab-to-oci reads it.
//
// The config manifest is an OCI manifest with no layers, as cnab-to-oci's
// first choice; its fallbacks for registries that refuse that are not
// produced. Annotations follow cnab-to-oci's makeAnnotations.
func BuildStored(b *Bundle, images map[string]v1.Descriptor) (index []byte, configManifest []byte, err error) {
	if n := len(b.Def.InvocationImages); n != 1 {
		return nil, nil, fmt.Errorf("bundle %s: %d invocation images; the cnab-to-oci form holds exactly one", b.name(), n)
	}
	if err := matchImages(b, images); err != nil {
		return nil, nil, err
	}

	configManifest, err = json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(b.Raw)), Digest: b.Digest},
		Layers:        []v1.Descriptor{},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: config manifest: %w", b.name(), err)
	}
	cmDigest, cmSize, err := v1.SHA256(bytes.NewReader(configManifest))
	if err != nil {
		return nil, nil, err
	}

	annotations, err := indexAnnotations(b)
	if err != nil {
		return nil, nil, err
	}
	ix := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   types.OCIManifestSchema1,
			Size:        cmSize,
			Digest:      cmDigest,
			Annotations: map[string]string{AnnotationManifestType: ManifestTypeConfig},
		}},
		Annotations: annotations,
	}
	// Invocation image first, then components by key: Images' order, and cnab-to-oci's.
	for _, img := range b.Images() {
		d := images[img.Key]
		entry := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
		if img.Invocation {
			entry.Annotations = map[string]string{AnnotationManifestType: ManifestTypeInvocation}
		} else {
			entry.Annotations = map[string]string{AnnotationManifestType: ManifestTypeComponent, AnnotationComponentName: img.Key}
		}
		ix.Manifests = append(ix.Manifests, entry)
	}
	index, err = json.Marshal(ix)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: index: %w", b.name(), err)
	}
	return index, configManifest, nil
}

func indexAnnotations(b *Bundle) (map[string]string, error) {
	a := map[string]string{
		AnnotationRuntimeVersion:               string(b.Def.SchemaVersion),
		"org.opencontainers.image.title":       b.Def.Name,
		"org.opencontainers.image.version":     b.Def.Version,
		"org.opencontainers.image.description": b.Def.Description,
		AnnotationArtifactType:                 ArtifactType,
	}
	if b.Def.Maintainers != nil {
		m, err := json.Marshal(b.Def.Maintainers)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: maintainers: %w", b.name(), err)
		}
		a["org.opencontainers.image.authors"] = string(m)
	}
	if b.Def.Keywords != nil {
		k, err := json.Marshal(b.Def.Keywords)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: keywords: %w", b.name(), err)
		}
		a[AnnotationKeywords] = string(k)
	}
	return a, nil
}
