package layout

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// repeated is a digest of one hex digit repeated.
func repeated(c byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)}
}

// indexTOC holds three images that share the tag v1, one exported by
// digest, and attachments: a notation signature and a cosign signature of
// app-0, an SBOM of app-1 whose manifest is also attached to app-2 (listed
// once), and a referrer that is itself one of the images.
func indexTOC() *TOC {
	const oci = "application/vnd.oci.image.manifest.v1+json"
	return &TOC{SchemaVersion: TOCSchemaVersion,
		Images: []Image{
			{Ref: "reg.example:5000/team/app-2:v1", Digest: repeated('2'), MediaType: oci, Size: 12},
			{Ref: "reg.example:5000/team/app-0:v1", Digest: repeated('0'), MediaType: oci, Size: 10},
			{Ref: "reg.example:5000/team/app-1:v1", Digest: repeated('1'), MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 11},
			{Ref: "reg.example:5000/team/pinned@sha256:" + repeated('3').Hex, Digest: repeated('3'), MediaType: oci, Size: 13},
		},
		Attachments: []Attachment{
			{Subject: repeated('0'), Digest: repeated('c'), MediaType: oci, Size: 600, Kind: AttachCosignSignature, ArtifactType: "application/vnd.oci.image.config.v1+json",
				Tag: CosignTag(repeated('0'), AttachCosignSignature)},
			{Subject: repeated('0'), Digest: repeated('a'), MediaType: oci, Size: 700, Kind: AttachReferrer, ArtifactType: "application/vnd.cncf.notary.signature",
				Annotations: map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": "[]"}},
			{Subject: repeated('1'), Digest: repeated('b'), MediaType: oci, Size: 800, Kind: AttachReferrer, ArtifactType: "application/spdx+json"},
			{Subject: repeated('2'), Digest: repeated('b'), MediaType: oci, Size: 800, Kind: AttachReferrer, ArtifactType: "application/spdx+json"},
			{Subject: repeated('2'), Digest: repeated('3'), MediaType: oci, Size: 13, Kind: AttachReferrer, ArtifactType: "application/example"},
		},
	}
}

func TestBuildIndex(t *testing.T) {
	toc := indexTOC()
	raw, err := BuildIndex(toc)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ParseIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range idx.Manifests {
		got = append(got, fmt.Sprintf("%s %d %s %q %v", d.Digest.Hex[:1], d.Size, d.MediaType, d.ArtifactType, d.Annotations))
	}
	const oci = "application/vnd.oci.image.manifest.v1+json"
	name := func(ref string) string {
		return fmt.Sprintf("map[%s:%s %s:%s]", AnnotationImageName, ref, AnnotationRefName, ref)
	}
	want := []string{
		// Images in reference order, each named by its full reference in both annotations.
		`0 10 ` + oci + ` "" ` + name("reg.example:5000/team/app-0:v1"),
		`1 11 application/vnd.docker.distribution.manifest.v2+json "" ` + name("reg.example:5000/team/app-1:v1"),
		`2 12 ` + oci + ` "" ` + name("reg.example:5000/team/app-2:v1"),
		`3 13 ` + oci + ` "" ` + name("reg.example:5000/team/pinned@sha256:"+repeated('3').Hex),
		// Then attached manifests in digest order, unnamed, each once; the
		// referrer that is also an image is not listed again. A referrer
		// has its artifact type, a cosign tag's manifest none.
		`a 700 ` + oci + ` "application/vnd.cncf.notary.signature" map[]`,
		`b 800 ` + oci + ` "application/spdx+json" map[]`,
		`c 600 ` + oci + ` "" map[]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("index.json entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The bytes depend on content only, not on the order of the table of contents.
	rev := indexTOC()
	slices.Reverse(rev.Images)
	slices.Reverse(rev.Attachments)
	raw2, err := BuildIndex(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, raw2) {
		t.Errorf("index.json depends on the order of the table of contents:\n%s\n%s", raw, raw2)
	}
}

func TestParseIndexLimit(t *testing.T) {
	if _, err := ParseIndex([]byte(`{"schemaVersion":2,"manifests":[` + repeatJSON(`{}`, MaxIndexEntries) + `]}`)); err != nil {
		t.Fatalf("%d entries (every image and every attachment): %v", MaxIndexEntries, err)
	}
	_, err := ParseIndex([]byte(`{"schemaVersion":2,"manifests":[` + repeatJSON(`{}`, MaxIndexEntries+1) + `]}`))
	if err == nil || !strings.Contains(err.Error(), "index.json: 327681 entries, over the limit of 327680 (65536 images and 262144 attachments)") {
		t.Fatalf("got %v, want the limit named", err)
	}
}
