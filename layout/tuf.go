package layout

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Trust metadata (a TUF repository's chain, a Notary v1 GUN's trust data)
// travels as OCI content: one artifact manifest per repository, each
// metadata file a blob named by its title annotation.
const (
	TUFArtifactType    = "application/vnd.relocate.tuf.repository.v1"
	NotaryArtifactType = "application/vnd.relocate.notary.trustdata.v1"
	TUFFileMediaType   = "application/vnd.relocate.tuf.metadata.v1+json"
	AnnotationTitle    = "org.opencontainers.image.title"
	AnnotationTUFName  = "dev.relocate.tuf.name"
	AnnotationTUFURL   = "dev.relocate.tuf.url"
)

// TUFRepo lists one TUF repository's (or Notary GUN's) metadata in the
// table of contents.
type TUFRepo struct {
	Name     string    `json:"name"`
	URL      string    `json:"url"`
	Manifest v1.Hash   `json:"manifest"`
	Verified bool      `json:"verifiedAtExport"` // export ran the client workflow from a root it was given
	Roles    []TUFRole `json:"roles"`
	// Targets names the target files carried with the metadata
	// (export --tuf-targets), each a blob titled target.<escaped name>.
	Targets []string `json:"targets,omitempty"`
}

// TUFRole is one role's version and expiry as carried.
type TUFRole struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	File    string    `json:"file,omitempty"`
}

// Packed is content to add to an archive: a manifest and the blobs it names.
type Packed struct {
	Manifest []byte
	Digest   v1.Hash
	Blobs    []Blob
	Data     map[v1.Hash][]byte
}

// PackTrust makes the artifact of the given type that carries a repository's
// metadata files.
func PackTrust(artifactType, name, url string, files map[string][]byte) (*Packed, error) {
	p := &Packed{Data: map[v1.Hash][]byte{}}
	add := func(b []byte, mt string, k Kind) v1.Descriptor {
		h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
		if _, dup := p.Data[h]; !dup {
			p.Data[h] = b
			p.Blobs = append(p.Blobs, Blob{Digest: h, Size: int64(len(b)), MediaType: mt, Kind: k})
		}
		return v1.Descriptor{MediaType: types.MediaType(mt), Digest: h, Size: int64(len(b))}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        add([]byte("{}"), string(types.OCIEmptyJSON), KindConfig),
		Annotations:   map[string]string{AnnotationTUFName: name, AnnotationTUFURL: url},
	}
	names := slices.Sorted(maps.Keys(files))
	for _, n := range names {
		d := add(files[n], TUFFileMediaType, KindMetadata)
		d.Annotations = map[string]string{AnnotationTitle: n}
		m.Layers = append(m.Layers, d)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	p.Manifest = raw
	p.Digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(raw))}
	p.Blobs = append(p.Blobs, Blob{Digest: p.Digest, Size: int64(len(raw)), MediaType: string(types.OCIManifestSchema1), Kind: KindManifest})
	p.Data[p.Digest] = raw
	return p, nil
}

// UnpackTrust reads the metadata files of a repository's artifact back.
func UnpackTrust(artifactType string, r TUFRepo, get func(v1.Hash) ([]byte, bool)) (map[string][]byte, error) {
	raw, ok := get(r.Manifest)
	if !ok {
		return nil, fmt.Errorf("TUF repository %s: manifest %s missing", r.Name, r.Manifest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("TUF repository %s: manifest %s: %w", r.Name, r.Manifest, err)
	}
	if m.ArtifactType != artifactType || m.Annotations[AnnotationTUFName] != r.Name {
		return nil, fmt.Errorf("TUF repository %s: manifest %s is not its metadata artifact", r.Name, r.Manifest)
	}
	files := map[string][]byte{}
	for _, l := range m.Layers {
		n := l.Annotations[AnnotationTitle]
		if n == "" || strings.ContainsAny(n, `/\`) || n == "." || n == ".." {
			return nil, fmt.Errorf("TUF repository %s: file name %q", r.Name, n)
		}
		if _, dup := files[n]; dup {
			return nil, fmt.Errorf("TUF repository %s: file %s twice", r.Name, n)
		}
		b, ok := get(l.Digest)
		if !ok {
			return nil, fmt.Errorf("TUF repository %s: %s (%s) missing", r.Name, n, l.Digest)
		}
		files[n] = b
	}
	return files, nil
}

func checkRepoName(name string) error {
	if name == "" || len(name) > 128 || name == "." || name == ".." || strings.ContainsAny(name, "/\\ \t\n") {
		return fmt.Errorf("bad name %q", name)
	}
	return nil
}
