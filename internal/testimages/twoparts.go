package testimages

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TwoParts pushes three manifests under host/prefix whose blobs play two
// parts: a:v1's config is b:v1's one layer, and artifact:v1 has the OCI
// empty descriptor as its config and its one layer, as `oras attach
// --annotation` makes (b:v1's config is the empty descriptor too). It
// returns a, b and artifact, in that order.
func TwoParts(ctx context.Context, host, prefix string) ([]Image, error) {
	empty := static.NewLayer([]byte("{}"), types.OCIEmptyJSON)
	shared := static.NewLayer([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	desc := func(l v1.Layer, mt types.MediaType) v1.Descriptor {
		d, _ := l.Digest()
		s, _ := l.Size()
		return v1.Descriptor{MediaType: mt, Digest: d, Size: s}
	}
	manifests := []struct {
		repo     string
		manifest v1.Manifest
	}{
		{"a", v1.Manifest{Config: desc(shared, types.OCIConfigJSON), Layers: []v1.Descriptor{}}},
		{"b", v1.Manifest{Config: desc(empty, types.OCIEmptyJSON), Layers: []v1.Descriptor{desc(shared, types.OCIUncompressedLayer)}}},
		{"artifact", v1.Manifest{ArtifactType: "application/vnd.example.note", Config: desc(empty, types.OCIEmptyJSON), Layers: []v1.Descriptor{desc(empty, types.OCIEmptyJSON)}}},
	}
	var out []Image
	for _, m := range manifests {
		repo, err := name.NewRepository(host+"/"+prefix+"/"+m.repo, name.Insecure)
		if err != nil {
			return nil, err
		}
		opts := []remote.Option{remote.WithContext(ctx)}
		for _, l := range []v1.Layer{empty, shared} {
			if err := remote.WriteLayer(repo, l, opts...); err != nil {
				return nil, fmt.Errorf("testimages: pushing a blob to %s: %w", repo, err)
			}
		}
		m.manifest.SchemaVersion, m.manifest.MediaType = 2, types.OCIManifestSchema1
		raw, err := json.Marshal(m.manifest)
		if err != nil {
			return nil, err
		}
		if err := remote.Put(repo.Tag("v1"), rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
			return nil, fmt.Errorf("testimages: pushing %s:v1: %w", repo, err)
		}
		out = append(out, Image{Ref: repo.Tag("v1").String(), Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(raw)), MediaType: string(types.OCIManifestSchema1), Size: int64(len(raw))})
	}
	return out, nil
}
