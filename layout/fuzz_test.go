package layout

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzParseTOC parses arbitrary relocate-toc.json documents. What it accepts
// must hold to the limits the reader relies on (sizes known and bounded
// before content is read) and must be one JSON document that survives a
// marshal round trip unchanged.
func FuzzParseTOC(f *testing.F) {
	for _, seed := range tocSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		toc, err := ParseTOC(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted a table of contents that is not one JSON document")
		}
		checkTOC(t, toc)
		b1, err := toc.Marshal()
		if err != nil {
			t.Fatalf("accepted table of contents does not marshal: %v", err)
		}
		again, err := ParseTOC(b1)
		if err != nil {
			t.Fatalf("accepted table of contents refused after a round trip: %v\n%s", err, b1)
		}
		b2, _ := again.Marshal()
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed the table of contents:\n%s\n%s", b1, b2)
		}
	})
}

// checkTOC restates ParseTOC's guarantees independently.
func checkTOC(t *testing.T, toc *TOC) {
	t.Helper()
	if toc.SchemaVersion != TOCSchemaVersion || len(toc.Blobs) > MaxBlobs {
		t.Fatalf("schemaVersion %d, %d blobs", toc.SchemaVersion, len(toc.Blobs))
	}
	seen := map[v1.Hash]bool{}
	var small int64
	for _, b := range toc.Blobs {
		if CheckDigest(b.Digest) != nil || seen[b.Digest] {
			t.Fatalf("blob %q accepted (malformed or twice)", b.Digest)
		}
		seen[b.Digest] = true
		switch b.Kind {
		case KindIndex, KindManifest, KindConfig, KindMetadata, KindLayer:
		default:
			t.Fatalf("blob %s of kind %q accepted", b.Digest, b.Kind)
		}
		if b.Size < 0 || (b.Kind.MaxSize() >= 0 && b.Size > b.Kind.MaxSize()) {
			t.Fatalf("%s blob %s of %d bytes accepted", b.Kind, b.Digest, b.Size)
		}
		if b.Kind.Small() {
			small += b.Size
		}
		if _, ok := ParseBlobPath(BlobPath(b.Digest)); !ok {
			t.Fatalf("blob %s has no blob path", b.Digest)
		}
	}
	if small > MaxSmallTotal {
		t.Fatalf("metadata adds up to %d bytes", small)
	}
	for _, im := range toc.Images {
		if CheckDigest(im.Digest) != nil {
			t.Fatalf("image %s with digest %q accepted", im.Ref, im.Digest)
		}
	}
	for _, r := range append(append([]TUFRepo{}, toc.TUF...), toc.Notary...) {
		if !seen[r.Manifest] || r.Name == "" || strings.Contains(r.Name, "..") {
			t.Fatalf("trust repository %q (manifest %s) accepted", r.Name, r.Manifest)
		}
	}
	for _, a := range toc.Attachments {
		if !seen[a.Digest] || !seen[a.Subject] {
			t.Fatalf("attachment %s of %s accepted without its blobs", a.Digest, a.Subject)
		}
		// The tag is the one thing an attachment could move at the site.
		if want := CosignTag(a.Subject, a.Kind); a.Tag != want {
			t.Fatalf("%s attachment with tag %q accepted, want %q", a.Kind, a.Tag, want)
		}
	}
}

// FuzzParseIndex parses arbitrary index.json documents: what is accepted
// is an index of schemaVersion 2 that, when its digests are well formed,
// survives a marshal round trip.
func FuzzParseIndex(f *testing.F) {
	idx, err := BuildIndex(&TOC{Images: seedImages()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(idx)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:` + hexA + `","size":7,"platform":{"os":"linux","architecture":"arm64","variant":"v8"},"annotations":{"a":"b"}}],"annotations":{"x":"y"}}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ParseIndex(data)
		if err != nil {
			return
		}
		if idx.SchemaVersion != 2 {
			t.Fatalf("schemaVersion %d accepted", idx.SchemaVersion)
		}
		// ParseIndex leaves descriptors to verify.Structure, which holds
		// each to the table of contents (FuzzStructure); a missing digest
		// is the zero hash, which does not marshal back.
		for _, d := range idx.Manifests {
			if CheckDigest(d.Digest) != nil {
				return
			}
		}
		b1, err := json.Marshal(idx)
		if err != nil {
			t.Fatalf("accepted index does not marshal: %v", err)
		}
		again, err := ParseIndex(b1)
		if err != nil {
			t.Fatalf("accepted index refused after a round trip: %v\n%s", err, b1)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed the index:\n%s\n%s", b1, b2)
		}
	})
}

// FuzzParseBlobPath checks the rule that decides which tar entries are
// blobs: an accepted name is exactly the canonical path of its digest.
func FuzzParseBlobPath(f *testing.F) {
	for _, s := range []string{"blobs/sha256/" + hexA, "blobs/sha512/" + hexA + hexA, "blobs/sha256/" + hexA + "/", "blobs/sha256/../" + hexA, "index.json", "blobs/sha256/" + strings.ToUpper(hexA)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		h, ok := ParseBlobPath(name)
		if !ok {
			return
		}
		if BlobPath(h) != name || CheckDigest(h) != nil || h.String() != h.Algorithm+":"+h.Hex {
			t.Fatalf("%q accepted as %s", name, h)
		}
		if _, err := v1.NewHash(h.String()); err != nil {
			t.Fatalf("%q accepted, but %s is not a digest: %v", name, h, err)
		}
	})
}

func seedImages() []Image {
	return []Image{
		{Ref: "registry.example/team/app:1.0", Digest: v1.Hash{Algorithm: "sha256", Hex: hexA}, MediaType: "application/vnd.oci.image.index.v1+json", Size: 506, Platforms: []string{"linux/amd64", "linux/arm64/v8"}},
		{Ref: "127.0.0.1:5000/tools/jq@sha256:" + hexA, Digest: v1.Hash{Algorithm: "sha256", Hex: hexA}, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 428},
	}
}

// tocSeeds are tables of contents as export writes them: images, blobs of
// every kind, attachments of both sorts, TUF and Notary repositories and a
// bundle; and a few one-field-off refusals.
func tocSeeds(tb testing.TB) [][]byte {
	h := func(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	toc := &TOC{
		SchemaVersion: TOCSchemaVersion,
		Images:        seedImages(),
		Blobs: []Blob{
			{Digest: h('a'), Size: 506, MediaType: "application/vnd.oci.image.index.v1+json", Kind: KindIndex},
			{Digest: h('b'), Size: 428, MediaType: "application/vnd.oci.image.manifest.v1+json", Kind: KindManifest},
			{Digest: h('c'), Size: 591, MediaType: "application/vnd.oci.image.manifest.v1+json", Kind: KindManifest},
			{Digest: h('d'), Size: 1200, MediaType: "application/vnd.oci.image.config.v1+json", Kind: KindConfig},
			{Digest: h('e'), Size: 3000, MediaType: TUFFileMediaType, Kind: KindMetadata},
			{Digest: h('f'), Size: 16777731, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Kind: KindLayer},
			{Digest: v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("9", 128)}, Size: 1, Kind: KindLayer},
		},
		Attachments: []Attachment{
			{Subject: h('a'), Digest: h('c'), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 591, Kind: AttachCosignSignature,
				ArtifactType: "application/vnd.oci.image.config.v1+json", Tag: CosignTag(h('a'), AttachCosignSignature)},
			{Subject: h('b'), Digest: h('c'), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 591, Kind: AttachReferrer,
				ArtifactType: "application/vnd.cncf.notary.signature", Annotations: map[string]string{"k": "v"}},
		},
		TUF: []TUFRepo{{Name: "team", URL: "https://tuf.example.com", Manifest: h('b'), Verified: true,
			Roles: []TUFRole{{Role: "root", Version: 3, Expires: exp, File: "3.root.json"}, {Role: "timestamp", Version: 9, Expires: exp}}}},
		Notary: []TUFRepo{{Name: "registry.example/team/app", URL: "https://notary.example.com", Manifest: h('c'), Roles: []TUFRole{{Role: "targets/releases", Version: 1, Expires: exp}}}},
		Bundles: []Bundle{{Ref: "registry.example/team/app:1.0", Digest: h('d'), Size: 1200,
			Images: []BundleImage{{Key: "invocation-0", Ref: "registry.example/team/installer:1.0", Digest: h('b'), Pinned: true}}}},
	}
	full, err := toc.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	d := `"sha256:` + hexA + `"`
	return [][]byte{
		full,
		[]byte(`{"schemaVersion":1,"images":[],"blobs":[]}`),
		[]byte(`{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":1,"kind":"layer"},{"digest":` + d + `,"size":1,"kind":"layer"}]}`),
		[]byte(`{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":99999999,"kind":"manifest"}]}`),
		[]byte(`{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":1,"kind":"manifest"}],"attachments":[{"subject":` + d + `,"digest":` + d + `,"kind":"cosign-sbom","tag":"latest"}]}`),
	}
}

// FuzzUnpackTrust reads arbitrary trust metadata artifacts (the manifest an
// archive carries for a TUF repository or Notary GUN). The files it returns
// have names that are single, safe path elements, each once, with the
// content stored under the digest the manifest gives.
func FuzzUnpackTrust(f *testing.F) {
	files := map[string][]byte{"1.root.json": []byte(`{"signed":{"_type":"root","version":1}}`), "timestamp.json": []byte(`{"signed":{}}`), "target.app%2Fx": []byte("x")}
	p, err := PackTrust(TUFArtifactType, "team", "https://tuf.example.com", files)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.Manifest, "team")
	n, err := PackTrust(NotaryArtifactType, "registry.example/app", "https://notary.example.com", map[string][]byte{"targets%2Freleases.json": []byte("{}")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(n.Manifest, "registry.example/app")
	data := map[v1.Hash][]byte{}
	for _, q := range []*Packed{p, n} {
		for h, b := range q.Data {
			data[h] = b
		}
	}
	f.Fuzz(func(t *testing.T, manifest []byte, name string) {
		h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
		get := func(d v1.Hash) ([]byte, bool) {
			if d == h {
				return manifest, true
			}
			b, ok := data[d]
			return b, ok
		}
		for _, typ := range []string{TUFArtifactType, NotaryArtifactType} {
			got, err := UnpackTrust(typ, TUFRepo{Name: name, Manifest: h}, get)
			if err != nil {
				continue
			}
			var m v1.Manifest
			if err := json.Unmarshal(manifest, &m); err != nil || m.ArtifactType != typ || m.Annotations[AnnotationTUFName] != name {
				t.Fatalf("accepted a manifest that is not %s's %s artifact", name, typ)
			}
			for fn, b := range got {
				if fn == "" || fn == "." || fn == ".." || strings.ContainsAny(fn, `/\`) {
					t.Fatalf("file name %q accepted", fn)
				}
				found := false
				for _, l := range m.Layers {
					if l.Annotations[AnnotationTitle] == fn {
						want, _ := get(l.Digest)
						found = bytes.Equal(want, b)
					}
				}
				if !found {
					t.Fatalf("file %s is not the content its layer names", fn)
				}
			}
		}
	})
}
