package verify

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// synthetic is an archive's metadata built in memory: images of one config
// and one layer each, with perImage referrers attached to every image.
type synthetic struct {
	toc   *layout.TOC
	index *v1.IndexManifest
	small map[v1.Hash][]byte
}

func digestOf(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

func buildSynthetic(tb testing.TB, images, perImage int) *synthetic {
	tb.Helper()
	s := &synthetic{toc: &layout.TOC{SchemaVersion: layout.TOCSchemaVersion}, small: map[v1.Hash][]byte{}}
	add := func(raw []byte, kind layout.Kind, mt string) v1.Hash {
		d := digestOf(raw)
		if _, dup := s.small[d]; !dup {
			s.small[d] = raw
			s.toc.Blobs = append(s.toc.Blobs, layout.Blob{Digest: d, Size: int64(len(raw)), MediaType: mt, Kind: kind})
		}
		return d
	}
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := add(config, layout.KindConfig, string(types.OCIConfigJSON))
	cfg := v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cd, Size: int64(len(config))}
	const artifactType = "application/vnd.example.sbom"
	for i := range images {
		layer := v1.Descriptor{MediaType: types.OCILayer, Digest: digestOf(fmt.Appendf(nil, "layer %d", i)), Size: 1 << 20}
		s.toc.Blobs = append(s.toc.Blobs, layout.Blob{Digest: layer.Digest, Size: layer.Size, MediaType: string(layer.MediaType), Kind: layout.KindLayer})
		raw := marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
		md := add(raw, layout.KindManifest, string(types.OCIManifestSchema1))
		ref := fmt.Sprintf("registry.example/team/app-%d:v1", i)
		s.toc.Images = append(s.toc.Images, layout.Image{Ref: ref, Digest: md, MediaType: string(types.OCIManifestSchema1), Size: int64(len(raw))})
		subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: md, Size: int64(len(raw))}
		for j := range perImage {
			ann := map[string]string{"n": fmt.Sprint(j)}
			araw := marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
				Config: cfg, Layers: []v1.Descriptor{layer}, Subject: &subject, Annotations: ann})
			ad := add(araw, layout.KindManifest, string(types.OCIManifestSchema1))
			s.toc.Attachments = append(s.toc.Attachments, layout.Attachment{Subject: md, Digest: ad, MediaType: string(types.OCIManifestSchema1),
				Size: int64(len(araw)), Kind: layout.AttachReferrer, ArtifactType: artifactType, Annotations: ann})
		}
	}
	s.toc.Sort()
	idx, err := layout.BuildIndex(s.toc)
	if err != nil {
		tb.Fatal(err)
	}
	if s.index, err = layout.ParseIndex(idx); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestStructureSynthetic(t *testing.T) {
	s := buildSynthetic(t, 50, 20)
	var ps Problems
	closures := Structure(s.toc, s.index, s.small, &ps)
	if err := ps.Err(); err != nil {
		t.Fatal(err)
	}
	if len(closures) != 50 {
		t.Fatalf("%d closures, want 50", len(closures))
	}
	for ref, c := range closures {
		if len(c.Attached) != 20 || len(c.Manifests) != 21 {
			t.Fatalf("%s: %d attached, %d manifests", ref, len(c.Attached), len(c.Manifests))
		}
	}
}

// BenchmarkStructure checks an archive of 5,000 images with 100,000
// attachments: the attachment map must be built once, not once per image.
func BenchmarkStructure(b *testing.B) {
	s := buildSynthetic(b, 5000, 20)
	b.ResetTimer()
	for b.Loop() {
		var ps Problems
		Structure(s.toc, s.index, s.small, &ps)
		if ps.Len() != 0 {
			b.Fatal(ps.Err())
		}
	}
}

func TestStructureWalkedLimit(t *testing.T) {
	s := buildSynthetic(t, 10, 2)
	defer func(n int) { maxWalked = n }(maxWalked)
	maxWalked = 20 // each image's closure holds 7: manifest, config, layer, 2 attachments and their manifests
	var ps Problems
	Structure(s.toc, s.index, s.small, &ps)
	list := ps.List()
	if len(list) != 1 || list[0].Subject != layout.TOCFile || !strings.Contains(list[0].Reason, "more than 20 manifests, blobs and attachments (the limit of layout.MaxWalked)") {
		t.Fatalf("problems %v, want one naming the walked limit", list)
	}
}

// A manifest whose descriptor calls it an index, with no mediaType of its
// own to contradict that, passed verify and was refused by the registry at
// import (issue 10): verify refuses it, naming its digest.
func TestStructureRefusesWhatRegistriesRefuse(t *testing.T) {
	tests := []struct {
		name     string
		declared types.MediaType // in the table of contents and index.json
		doc      func(cfg, layer v1.Descriptor) map[string]any
		want     string
	}{
		{"manifest declared as an index", types.OCIImageIndex, func(cfg, layer v1.Descriptor) map[string]any {
			return map[string]any{"schemaVersion": 2, "config": cfg, "layers": []any{layer}}
		}, "declared as an index"},
		{"docker manifest without mediaType", types.DockerManifestSchema2, func(cfg, layer v1.Descriptor) map[string]any {
			return map[string]any{"schemaVersion": 2, "config": cfg, "layers": []any{layer}}
		}, "no mediaType field"},
		{"docker list without mediaType", types.DockerManifestList, func(cfg, layer v1.Descriptor) map[string]any {
			return map[string]any{"schemaVersion": 2, "manifests": []any{}}
		}, "no mediaType field"},
		{"mediaType disagrees", types.OCIManifestSchema1, func(cfg, layer v1.Descriptor) map[string]any {
			return map[string]any{"schemaVersion": 2, "mediaType": types.DockerManifestSchema2, "config": cfg, "layers": []any{layer}}
		}, "in the document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildSynthetic(t, 1, 0)
			im := &s.toc.Images[0]
			var m v1.Manifest
			if err := json.Unmarshal(s.small[im.Digest], &m); err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(tc.doc(m.Config, m.Layers[0]))
			d := digestOf(raw)
			s.small[d] = raw
			s.toc.Blobs = append(s.toc.Blobs, layout.Blob{Digest: d, Size: int64(len(raw)), MediaType: string(tc.declared), Kind: layout.KindOf(string(tc.declared))})
			im.Digest, im.Size, im.MediaType = d, int64(len(raw)), string(tc.declared)
			s.index.Manifests[0].Digest, s.index.Manifests[0].Size, s.index.Manifests[0].MediaType = d, int64(len(raw)), tc.declared
			var ps Problems
			Structure(s.toc, s.index, s.small, &ps)
			list := ps.List()
			if len(list) != 1 || !strings.Contains(list[0].Reason, d.String()) || !strings.Contains(list[0].Reason, tc.want) {
				t.Fatalf("problems %v, want one naming %s and %q", list, d, tc.want)
			}
		})
	}
}

// A blob's kind in the table of contents says whether the archive carries
// it with the metadata (in memory) or as a layer. A blob an image uses as a
// layer may be carried with the metadata (it is another image's config, or
// the OCI empty descriptor): the image's closure then takes that kind, so
// that an importer pushes it from memory. A blob an image needs in memory
// (a config) listed as a layer is refused, naming it and the image, and so
// is a layer listed as a signature blob that no signature has.
func TestStructureBlobKinds(t *testing.T) {
	tests := []struct {
		name string
		kind func(m v1.Manifest) (v1.Hash, layout.Kind)
		want string // the problem, or "" with the layer's kind in the closure
	}{
		{"config listed as a layer", func(m v1.Manifest) (v1.Hash, layout.Kind) { return m.Config.Digest, layout.KindLayer },
			"kind layer in the table of contents, used as config by registry.example/team/app-0:v1"},
		{"layer listed as a config", func(m v1.Manifest) (v1.Hash, layout.Kind) { return m.Layers[0].Digest, layout.KindConfig }, ""},
		// Signature blobs are held to signature attachments: a layer is not
		// smuggled into the metadata under that name.
		{"layer listed as a signature", func(m v1.Manifest) (v1.Hash, layout.Kind) { return m.Layers[0].Digest, layout.KindSignature },
			"listed as a signature blob, but no signature attachment of the archive has it as a layer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildSynthetic(t, 1, 0)
			im := s.toc.Images[0]
			var m v1.Manifest
			if err := json.Unmarshal(s.small[im.Digest], &m); err != nil {
				t.Fatal(err)
			}
			d, kind := tc.kind(m)
			for i := range s.toc.Blobs {
				if s.toc.Blobs[i].Digest == d {
					s.toc.Blobs[i].Kind = kind
				}
			}
			var ps Problems
			closures := Structure(s.toc, s.index, s.small, &ps)
			list := ps.List()
			if tc.want != "" {
				if len(list) != 1 || list[0].Subject != d.String() || !strings.Contains(list[0].Reason, tc.want) {
					t.Fatalf("problems %v, want one for %s saying %q", list, d, tc.want)
				}
				if strings.Contains(tc.want, im.Ref) && closures[im.Ref] != nil {
					t.Fatal("a refused image has a closure to push")
				}
				return
			}
			if len(list) != 0 {
				t.Fatalf("problems %v, want none", list)
			}
			for _, b := range closures[im.Ref].Blobs {
				if b.Digest == d && b.Kind != kind {
					t.Fatalf("the closure has %s as %s, want %s as the archive carries it", d, b.Kind, kind)
				}
			}
		})
	}
}
