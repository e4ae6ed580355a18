package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// store is a content-addressed blob and manifest store for ParseStored.
type store map[v1.Hash][]byte

func (s store) put(b []byte) v1.Hash {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	s[h] = b
	return h
}

func (s store) get(h v1.Hash) ([]byte, error) {
	b, ok := s[h]
	if !ok {
		return nil, fmt.Errorf("%s: not found", h)
	}
	return b, nil
}

func TestStoredRoundTrip(t *testing.T) {
	b := mustParse(t, fixture(t))
	images := descriptors(b)
	index, cm, err := BuildStored(b, images)
	if err != nil {
		t.Fatal(err)
	}
	s := store{}
	s.put(b.Raw)
	cmDigest := s.put(cm)

	got, err := ParseStored(index, s.get)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bundle.Digest != b.Digest || !bytes.Equal(got.Bundle.Raw, b.Raw) {
		t.Fatalf("bundle digest %s, want %s", got.Bundle.Digest, b.Digest)
	}
	if got.Config.Digest != cmDigest || got.Config.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("config descriptor %+v", got.Config)
	}
	if len(got.Images) != len(images) {
		t.Fatalf("images %v", got.Images)
	}
	for key, d := range images {
		g := got.Images[key]
		if g.Digest != d.Digest || g.Size != d.Size || g.MediaType != d.MediaType {
			t.Errorf("image %s: %+v, want %+v", key, g, d)
		}
	}
	if !IsStoredIndex(index) || IsStoredIndex(cm) {
		t.Fatal("IsStoredIndex")
	}

	// The form as cnab-to-oci's converter writes it: annotations, then
	// config, invocation, components by name.
	var ix v1.IndexManifest
	if err := json.Unmarshal(index, &ix); err != nil {
		t.Fatal(err)
	}
	wantAnn := map[string]string{
		"org.opencontainers.artifactType":      "application/vnd.cnab.manifest.v1",
		"io.cnab.runtime_version":              "v1.2.0",
		"org.opencontainers.image.title":       "helloworld",
		"org.opencontainers.image.version":     "0.1.2",
		"org.opencontainers.image.description": b.Def.Description,
		"org.opencontainers.image.authors":     `[{"name":"Jane Doe","email":"jane.doe@example.com","url":"https://example.com"}]`,
		"io.cnab.keywords":                     `["helloworld","cnab","example"]`,
	}
	if !maps.Equal(ix.Annotations, wantAnn) {
		t.Errorf("annotations %v", ix.Annotations)
	}
	var order []string
	for _, d := range ix.Manifests {
		order = append(order, d.Annotations["io.cnab.manifest.type"]+":"+d.Annotations["io.cnab.component.name"])
	}
	if strings.Join(order, " ") != "config: invocation: component:db component:web" {
		t.Errorf("entries %v", order)
	}
	var m v1.Manifest
	if err := json.Unmarshal(cm, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != ConfigMediaType || m.Config.Digest != b.Digest || m.Config.Size != int64(len(b.Raw)) {
		t.Errorf("config manifest %s", cm)
	}
}

func TestBuildStoredRefused(t *testing.T) {
	b := mustParse(t, fixture(t))
	two := mustParse(t, []byte(`{"name":"x","version":"1","invocationImages":[
		{"imageType":"docker","image":"a/b:1"},{"imageType":"docker","image":"a/c:1"}]}`))
	edit := func(f func(m map[string]v1.Descriptor)) map[string]v1.Descriptor {
		m := descriptors(b)
		f(m)
		return m
	}
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	tests := []struct {
		name   string
		b      *Bundle
		images map[string]v1.Descriptor
		want   string
	}{
		{"two invocation images", two, nil, "2 invocation images"},
		{"image missing", b, edit(func(m map[string]v1.Descriptor) { delete(m, "db") }), "image db (docker.io/library/postgres:16.4): no manifest descriptor"},
		{"image not in the bundle", b, edit(func(m map[string]v1.Descriptor) { m["cache"] = m["db"] }), "image cache: not in bundle.json"},
		{"digest other than contentDigest", b, edit(func(m map[string]v1.Descriptor) {
			d := m["web"]
			d.Digest = other
			m["web"] = d
		}), "image web (registry.example.com/helloworld/web@sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50): manifest sha256:abab"},
		{"layer media type", b, edit(func(m map[string]v1.Descriptor) {
			d := m["db"]
			d.MediaType = types.OCILayer
			m["db"] = d
		}), "is not an image manifest or index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := BuildStored(tc.b, tc.images)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseStoredRefused(t *testing.T) {
	b := mustParse(t, fixture(t))
	index, cm, err := BuildStored(b, descriptors(b))
	if err != nil {
		t.Fatal(err)
	}
	good := store{}
	good.put(b.Raw)
	good.put(cm)

	// rewrite edits the index JSON.
	rewrite := func(f func(ix *v1.IndexManifest)) []byte {
		var ix v1.IndexManifest
		if err := json.Unmarshal(index, &ix); err != nil {
			t.Fatal(err)
		}
		f(&ix)
		out, err := json.Marshal(ix)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// tampered serves other bytes for bundle.json under its digest.
	tampered := maps.Clone(good)
	tampered[b.Digest] = bytes.Replace(b.Raw, []byte(`"0.1.2"`), []byte(`"0.1.3"`), 1)

	tests := []struct {
		name  string
		index []byte
		s     store
		want  string
	}{
		{"not JSON", []byte("{"), good, "cnab index"},
		{"not a CNAB index", rewrite(func(ix *v1.IndexManifest) { delete(ix.Annotations, AnnotationArtifactType) }), good,
			"annotation org.opencontainers.artifactType"},
		{"a manifest, not an index", rewrite(func(ix *v1.IndexManifest) { ix.MediaType = types.OCIManifestSchema1 }), good, "is not an index"},
		{"tampered bundle.json", index, tampered, "bundle.json " + b.Digest.String() + ": content has digest"},
		{"missing config manifest", index, store{b.Digest: b.Raw}, "config manifest sha256:"},
		{"two configs", rewrite(func(ix *v1.IndexManifest) { ix.Manifests = append(ix.Manifests, ix.Manifests[0]) }), good, "2 config manifests"},
		{"component missing", rewrite(func(ix *v1.IndexManifest) { ix.Manifests = ix.Manifests[:3] }), good, "image web"},
		{"component listed twice", rewrite(func(ix *v1.IndexManifest) { ix.Manifests = append(ix.Manifests, ix.Manifests[3]) }), good, `component "web" listed twice`},
		{"unknown entry type", rewrite(func(ix *v1.IndexManifest) { ix.Manifests[2].Annotations[AnnotationManifestType] = "sbom" }), good, `io.cnab.manifest.type "sbom"`},
		{"component posing as the invocation image", rewrite(func(ix *v1.IndexManifest) {
			extra := ix.Manifests[3]
			extra.Annotations = map[string]string{AnnotationManifestType: ManifestTypeComponent, AnnotationComponentName: "invocation-0"}
			ix.Manifests = append(ix.Manifests, extra)
		}), good, `component name "invocation-0" is reserved`},
		{"component swapped for another image", rewrite(func(ix *v1.IndexManifest) {
			ix.Manifests[3].Digest = ix.Manifests[2].Digest
		}), good, "image web (registry.example.com/helloworld/web@sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50): manifest sha256:f3e2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStored(tc.index, tc.s.get)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
