package layout

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestSignatureLayers(t *testing.T) {
	d := func(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }
	manifest := func(sizes ...int64) []byte {
		var ls []v1.Descriptor
		for i, s := range sizes {
			ls = append(ls, v1.Descriptor{MediaType: "x", Digest: d(byte('a' + i)), Size: s})
		}
		b, _ := json.Marshal(map[string]any{"layers": ls})
		return b
	}
	for _, tc := range []struct {
		name string
		a    Attachment
		raw  []byte
		want int
	}{
		{"cosign signature", Attachment{Kind: AttachCosignSignature}, manifest(300), 1},
		{"cosign attestation", Attachment{Kind: AttachCosignAttestation}, manifest(300, 400), 2},
		{"cosign SBOM", Attachment{Kind: AttachCosignSBOM}, manifest(300), 0},
		{"notation referrer", Attachment{Kind: AttachReferrer, ArtifactType: ArtifactNotation}, manifest(300), 1},
		{"Sigstore bundle referrer", Attachment{Kind: AttachReferrer, ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json"}, manifest(300), 1},
		{"SBOM referrer", Attachment{Kind: AttachReferrer, ArtifactType: "application/spdx+json"}, manifest(300), 0},
		{"too big to be a signature", Attachment{Kind: AttachCosignSignature}, manifest(MaxSignatureSize + 1), 0},
		{"not a manifest", Attachment{Kind: AttachCosignSignature}, []byte("junk"), 0},
	} {
		if got := len(SignatureLayers(tc.a, tc.raw)); got != tc.want {
			t.Errorf("%s: %d signature layers, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSignatureKindInTOC(t *testing.T) {
	h := func(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }
	toc := &TOC{SchemaVersion: TOCSchemaVersion, Blobs: []Blob{
		{Digest: h('1'), Kind: KindLayer, Size: 10}, {Digest: h('2'), Kind: KindSignature, Size: 10},
		{Digest: h('3'), Kind: KindMetadata, Size: 10}, {Digest: h('4'), Kind: KindManifest, Size: 10},
	}}
	toc.Sort()
	var order []string
	for _, b := range toc.Blobs {
		order = append(order, string(b.Kind))
	}
	// Signatures come with the metadata, before any layer.
	if got := strings.Join(order, ","); got != "manifest,metadata,signature,layer" {
		t.Fatalf("order %s", got)
	}
	b, _ := toc.Marshal()
	if _, err := ParseTOC(b); err != nil {
		t.Fatal(err)
	}
	toc.Blobs[2].Size = MaxSignatureSize + 1
	b, _ = toc.Marshal()
	if _, err := ParseTOC(b); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("a signature blob over the limit: %v", err)
	}
	toc.Blobs[2].Kind = "sig"
	b, _ = toc.Marshal()
	if _, err := ParseTOC(b); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("an unknown kind: %v", err)
	}
}
