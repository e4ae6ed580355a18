package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// FuzzStructure runs the structure check over an arbitrary table of
// contents, index.json and up to five metadata blobs (each stored under its
// own digest, as the reader does after hashing). An image it passes must
// be complete and consistent: every manifest and blob of its closure listed
// with the size and kind the manifests give, every manifest available, and
// the closure in push order (children and subjects before what names or
// attaches to them). Without problems, index.json and the table of
// contents name the same images.
func FuzzStructure(f *testing.F) {
	for _, s := range structureSeeds(f) {
		f.Add(s.toc, s.index, s.blobs[0], s.blobs[1], s.blobs[2], s.blobs[3], s.blobs[4])
	}
	f.Fuzz(func(t *testing.T, tocJSON, indexJSON, b0, b1, b2, b3, b4 []byte) {
		toc, err := layout.ParseTOC(tocJSON)
		if err != nil {
			return
		}
		index, err := layout.ParseIndex(indexJSON)
		if err != nil {
			return
		}
		small := map[v1.Hash][]byte{}
		for _, b := range [][]byte{b0, b1, b2, b3, b4} {
			small[digestOf(b)] = b
		}
		ps := &Problems{}
		closures := Structure(toc, index, small, ps)

		listed := map[v1.Hash]layout.Blob{}
		for _, b := range toc.Blobs {
			listed[b.Digest] = b
		}
		images := map[string]layout.Image{}
		for _, im := range toc.Images {
			images[im.Ref] = im
		}
		for ref, c := range closures {
			im, ok := images[ref]
			if !ok {
				t.Fatalf("closure for %s, which the table of contents does not list", ref)
			}
			checkClosure(t, ref, im, c, listed, small)
		}
		if ps.Len() > 0 {
			return
		}
		if len(closures) != len(toc.Images) {
			t.Fatalf("no problem, but %d of %d images passed", len(closures), len(toc.Images))
		}
		// Images are the named entries; the others list attachments, for
		// tools that find referrers through index.json.
		inIndex := map[string]v1.Descriptor{}
		attached := map[v1.Hash]bool{}
		for _, a := range toc.Attachments {
			attached[a.Digest] = true
		}
		named := 0
		for _, d := range index.Manifests {
			name, ok := d.Annotations[layout.AnnotationImageName]
			if !ok {
				if !attached[d.Digest] {
					t.Fatalf("no problem, but index.json lists %s, neither an image nor an attachment", d.Digest)
				}
				continue
			}
			named++
			inIndex[name] = d
		}
		if len(inIndex) != named || len(inIndex) != len(images) {
			t.Fatalf("no problem, but index.json has %d named entries (%d names), the table of contents %d images", named, len(inIndex), len(images))
		}
		for ref, im := range images {
			d, ok := inIndex[ref]
			if !ok || d.Digest != im.Digest || d.Size != im.Size || string(d.MediaType) != im.MediaType {
				t.Fatalf("no problem, but %s is %+v in index.json and %+v in the table of contents", ref, d, im)
			}
		}
	})
}

func checkClosure(t *testing.T, ref string, im layout.Image, c *layout.Closure, listed map[v1.Hash]layout.Blob, small map[v1.Hash][]byte) {
	t.Helper()
	pos := map[v1.Hash]int{}
	for i, m := range c.Manifests {
		if _, dup := pos[m.Digest]; dup {
			t.Fatalf("%s: manifest %s twice in the closure", ref, m.Digest)
		}
		pos[m.Digest] = i
	}
	if _, ok := pos[im.Digest]; !ok {
		t.Fatalf("%s: closure without the image's own manifest %s", ref, im.Digest)
	}
	for _, d := range append(append([]layout.Child{}, c.Manifests...), c.Blobs...) {
		b, ok := listed[d.Digest]
		if !ok || b.Size != d.Size || b.Kind.Small() != d.Kind.Small() {
			t.Fatalf("%s: %s (%d bytes, %s) passed, the table of contents has %+v", ref, d.Digest, d.Size, d.Kind, b)
		}
	}
	for i, m := range c.Manifests {
		raw, ok := small[m.Digest]
		if !ok {
			t.Fatalf("%s: manifest %s passed without its content", ref, m.Digest)
		}
		kids, err := layout.Children(string(m.MediaType), raw)
		if err != nil {
			t.Fatalf("%s: manifest %s passed but does not parse: %v", ref, m.Digest, err)
		}
		for _, k := range kids {
			if k.Kind == layout.KindIndex || k.Kind == layout.KindManifest {
				if j, ok := pos[k.Digest]; !ok || j > i {
					t.Fatalf("%s: child %s of %s is not pushed before it", ref, k.Digest, m.Digest)
				}
			}
		}
	}
	for _, a := range c.Attached {
		if i, j := pos[a.Subject], pos[a.Digest]; j < i {
			t.Fatalf("%s: attachment %s is pushed before its subject %s", ref, a.Digest, a.Subject)
		}
	}
}

type structureSeed struct {
	toc, index []byte
	blobs      [5][]byte
}

// structureSeeds are consistent archives' metadata as export writes it: a
// two-platform index with a signature referrer, and a single image with a
// cosign signature.
func structureSeeds(tb testing.TB) []structureSeed {
	tb.Helper()
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	build := func(multi bool) structureSeed {
		var s structureSeed
		var n int
		toc := &layout.TOC{SchemaVersion: layout.TOCSchemaVersion}
		add := func(b []byte, mt types.MediaType, k layout.Kind) v1.Descriptor {
			d := v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: digestOf(b)}
			toc.Blobs = append(toc.Blobs, layout.Blob{Digest: d.Digest, Size: d.Size, MediaType: string(mt), Kind: k})
			if k.Small() && k != layout.KindConfig {
				s.blobs[n] = b
				n++
			}
			return d
		}
		image := func(arch string) v1.Descriptor {
			cfg := add([]byte(`{"architecture":"`+arch+`","os":"linux"}`), types.OCIConfigJSON, layout.KindConfig)
			layer := add([]byte("layer "+arch), types.OCILayer, layout.KindLayer)
			return add(marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}}), types.OCIManifestSchema1, layout.KindManifest)
		}
		top := image("amd64")
		if multi {
			arm := image("arm64")
			top = add(marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{top, arm}}), types.OCIImageIndex, layout.KindIndex)
		}
		sigCfg := add([]byte("{}"), types.OCIEmptyJSON, layout.KindConfig)
		sigBlob := add([]byte("signature"), "application/jose+json", layout.KindLayer)
		subject := v1.Descriptor{MediaType: top.MediaType, Size: top.Size, Digest: top.Digest}
		a := layout.Attachment{Subject: top.Digest, MediaType: string(types.OCIManifestSchema1), Kind: layout.AttachReferrer, ArtifactType: "application/vnd.cncf.notary.signature"}
		m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: a.ArtifactType, Config: sigCfg, Layers: []v1.Descriptor{sigBlob}, Subject: &subject}
		if !multi {
			a.Kind, a.ArtifactType, a.Tag = layout.AttachCosignSignature, string(types.OCIEmptyJSON), layout.CosignTag(top.Digest, layout.AttachCosignSignature)
			m.ArtifactType, m.Subject = "", nil
		}
		sig := add(marshal(m), types.OCIManifestSchema1, layout.KindManifest)
		a.Digest, a.Size = sig.Digest, sig.Size
		toc.Attachments = []layout.Attachment{a}
		toc.Images = []layout.Image{{Ref: fmt.Sprintf("registry.example/team/app:%v", multi), Digest: top.Digest, MediaType: string(top.MediaType), Size: top.Size}}
		toc.Sort()
		var err error
		if s.index, err = layout.BuildIndex(toc); err != nil {
			tb.Fatal(err)
		}
		if s.toc, err = toc.Marshal(); err != nil {
			tb.Fatal(err)
		}
		return s
	}
	return []structureSeed{build(true), build(false)}
}

// TestStructureSeeds keeps the seeds consistent, so that fuzzing starts
// from archives that pass.
func TestStructureSeeds(t *testing.T) {
	for i, s := range structureSeeds(t) {
		toc, err := layout.ParseTOC(s.toc)
		if err != nil {
			t.Fatal(err)
		}
		index, err := layout.ParseIndex(s.index)
		if err != nil {
			t.Fatal(err)
		}
		small := map[v1.Hash][]byte{}
		for _, b := range s.blobs {
			small[digestOf(b)] = b
		}
		ps := &Problems{}
		if c := Structure(toc, index, small, ps); ps.Len() > 0 || len(c) != 1 {
			t.Fatalf("seed %d: %v", i, ps.List())
		}
	}
}

// FuzzParsePolicy parses arbitrary policy files. An accepted policy is one
// JSON document (a second one would be silently ignored: a policy must
// never be weaker than what its file says), meets the invariants the trust
// decisions rely on, and survives a marshal round trip.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"mapping":[{"paths":["registry.example.com/prod/*"],"repositories":["team","security"],"threshold":2,"terminating":true,
		  "roles":[{"role":"ci","minSignatures":1},{"role":"qa","minSignatures":2},{"repository":"team","role":"release","minSignatures":1}]},
		 {"paths":["*"],"repositories":["team"],"threshold":1}],
		 "allowUnvouched":["registry.example.com/tools/*"],"grace":{"timestamp":"48h","snapshot":"1h30m"},"cnabMinSecurityLevel":2}`,
		`{"mapping":[{"paths":["reg.example/*:v?"],"repositories":["a"],"threshold":1}]}`,
		`{"mappings":[]}`,
		`{"grace":{"targets":"1h"}}`,
		`{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":2}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted a policy that is not one JSON document")
		}
		for role, d := range p.grace {
			if (role != "timestamp" && role != "snapshot") || d < 0 {
				t.Fatalf("grace %s for %s accepted", d, role)
			}
		}
		for i, m := range p.Mapping {
			if len(m.Paths) == 0 || m.Threshold < 1 || m.Threshold > len(m.Repositories) {
				t.Fatalf("mapping %d accepted: %+v", i, m)
			}
			for _, r := range m.Roles {
				if len(r.Role) == 0 || r.MinSignatures < 1 {
					t.Fatalf("mapping %d: role %+v accepted", i, r)
				}
			}
		}
		// Matching must work for any pattern that was accepted.
		for _, ref := range []string{"registry.example.com/prod/app:1.0", "", "*"} {
			p.mappingsFor(ref)
			p.allowsUnvouched(ref)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("accepted policy does not marshal: %v", err)
		}
		again, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("accepted policy refused after a round trip: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(p.grace, again.grace) {
			t.Fatalf("round trip changed the grace: %v, %v", p.grace, again.grace)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the policy:\n%s\n%s", b, b2)
		}
	})
}
