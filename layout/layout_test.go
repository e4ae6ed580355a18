package layout

import (
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestTagOf(t *testing.T) {
	tests := map[string]string{
		"reg.example/team/app:1.2":              "1.2",
		"127.0.0.1:5000/app:v1":                 "v1",
		"127.0.0.1:5000/app":                    "",
		"reg.example/app@sha256:" + hexA:        "",
		"reg.example/app:v2@sha256:" + hexA:     "v2",
		"localhost:5000/a/b/c:latest":           "latest",
		"index.docker.io/library/alpine:3.20.1": "3.20.1",
	}
	for ref, want := range tests {
		if got := TagOf(ref); got != want {
			t.Errorf("TagOf(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestParseBlobPath(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"blobs/sha256/" + hexA, true},
		{"blobs/sha256/" + strings.ToUpper(hexA), false},
		{"blobs/sha256/" + hexA[:63], false},
		{"blobs/md5/" + hexA, false},
		{"blobs/sha256/" + hexA + "/x", false},
		{"blobs/sha256/../" + hexA, false},
		{"index.json", false},
	}
	for _, tc := range tests {
		if _, ok := ParseBlobPath(tc.name); ok != tc.ok {
			t.Errorf("ParseBlobPath(%q) ok=%v, want %v", tc.name, ok, tc.ok)
		}
	}
}

func TestParseTOCRefuses(t *testing.T) {
	d := `"sha256:` + hexA + `"`
	tests := []struct{ name, doc, want string }{
		{"not JSON", `{`, "not valid JSON"},
		{"wrong version", `{"schemaVersion":2}`, "schemaVersion"},
		{"bad digest", `{"schemaVersion":1,"blobs":[{"digest":"sha256:xyz","size":1,"kind":"layer"}]}`, "hex"},
		{"negative size", `{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":-1,"kind":"layer"}]}`, "negative"},
		{"huge manifest", `{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":99999999,"kind":"manifest"}]}`, "limit"},
		{"unknown kind", `{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":1,"kind":"script"}]}`, "unknown kind"},
		{"too much metadata", `{"schemaVersion":1,"blobs":[` + manyMetadata() + `]}`, "add up to"},
		{"duplicate", `{"schemaVersion":1,"blobs":[{"digest":` + d + `,"size":1,"kind":"layer"},{"digest":` + d + `,"size":1,"kind":"layer"}]}`, "twice"},
		{"too many images", `{"schemaVersion":1,"images":[` + repeatJSON(`{}`, MaxImages+1) + `]}`, "65537 images, over the limit of 65536 images"},
		{"too many attachments", `{"schemaVersion":1,"attachments":[` + repeatJSON(`{}`, MaxAttachments+1) + `]}`, "262145 attachments, over the limit of 262144 attachments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTOC([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSortPutsMetadataFirst(t *testing.T) {
	h := func(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }
	toc := &TOC{Blobs: []Blob{
		{Digest: h('1'), Kind: KindLayer}, {Digest: h('2'), Kind: KindConfig},
		{Digest: h('0'), Kind: KindLayer}, {Digest: h('3'), Kind: KindManifest}, {Digest: h('4'), Kind: KindIndex},
	}}
	toc.Sort()
	var got []string
	for _, b := range toc.Blobs {
		got = append(got, string(b.Kind)+b.Digest.Hex[:1])
	}
	if want := "index4 manifest3 config2 layer0 layer1"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

func TestChildren(t *testing.T) {
	dig := "sha256:" + hexA
	tests := []struct {
		name, mt, doc string
		kinds         string
		err           string
	}{
		{"oci manifest", "application/vnd.oci.image.manifest.v1+json",
			`{"schemaVersion":2,"config":{"digest":"` + dig + `","size":2},"layers":[{"digest":"` + dig + `","size":3}]}`, "config layer", ""},
		{"docker list", "application/vnd.docker.distribution.manifest.list.v2+json",
			`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + dig + `","size":2}]}`, "manifest", ""},
		// OCI makes the document's mediaType optional, and registries agree.
		{"oci index without media type in the document", "application/vnd.oci.image.index.v1+json",
			`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + dig + `","size":2}]}`, "index", ""},
		// What registries refuse, verify must refuse (issue 10).
		{"docker list without media type in the document", "application/vnd.docker.distribution.manifest.list.v2+json",
			`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + dig + `","size":2}]}`, "", "no mediaType field"},
		{"docker manifest without media type in the document", "application/vnd.docker.distribution.manifest.v2+json",
			`{"schemaVersion":2,"config":{"digest":"` + dig + `","size":2},"layers":[]}`, "", "no mediaType field"},
		{"manifest declared as an index", "application/vnd.oci.image.index.v1+json",
			`{"schemaVersion":2,"config":{"digest":"` + dig + `","size":2},"layers":[{"digest":"` + dig + `","size":3}]}`, "", "declared as an index"},
		{"index declared as a manifest", "application/vnd.oci.image.manifest.v1+json",
			`{"schemaVersion":2,"config":{"digest":"` + dig + `","size":2},"manifests":[]}`, "", "declared as an image manifest"},
		{"no media type anywhere", "",
			`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + dig + `","size":2}]}`, "", "no media type in the descriptor"},
		{"descriptor without media type", "",
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, "", "no media type in the descriptor"},
		{"not a manifest type", "application/vnd.oci.image.layer.v1.tar+gzip",
			`{"schemaVersion":2,"config":{"digest":"` + dig + `","size":2}}`, "", "not an image manifest or index type"},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`, "", "schema 1"},
		{"schema 1 by its version", "application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":1}`, "", "schema 1"},
		{"media types disagree", "application/vnd.oci.image.index.v1+json",
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`, "", "media type"},
		{"no config", "application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2,"layers":[]}`, "", "without a config"},
		{"bad child digest", "application/vnd.oci.image.manifest.v1+json",
			`{"schemaVersion":2,"config":{"digest":"sha256:00","size":2}}`, "", "hex"},
		{"not JSON", "application/vnd.oci.image.manifest.v1+json", `nope`, "", "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kids, err := Children(tc.mt, []byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, k := range kids {
				kinds = append(kinds, string(k.Kind))
			}
			if strings.Join(kinds, " ") != tc.kinds {
				t.Errorf("kinds %v, want %s", kinds, tc.kinds)
			}
		})
	}
}

// repeatJSON is n copies of a JSON value, comma-separated.
func repeatJSON(v string, n int) string { return strings.TrimSuffix(strings.Repeat(v+",", n), ",") }

// A chain of indexes one level deeper than MaxDepth is refused, naming the
// bound; one at MaxDepth walks.
func TestWalkDepth(t *testing.T) {
	const indexType = "application/vnd.oci.image.index.v1+json"
	build := func(levels int) (Child, map[v1.Hash][]byte) {
		docs := map[v1.Hash][]byte{}
		// The innermost index is empty; each one above names the one below.
		doc := []byte(`{"schemaVersion":2,"mediaType":"` + indexType + `","manifests":[]}`)
		for i := 0; ; i++ {
			d := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i+1)}
			docs[d] = doc
			top := Child{Descriptor: v1.Descriptor{MediaType: indexType, Digest: d, Size: int64(len(doc))}, Kind: KindIndex}
			if i == levels {
				return top, docs
			}
			doc = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`, indexType, indexType, d, len(doc))
		}
	}
	get := func(docs map[v1.Hash][]byte) func(v1.Hash) ([]byte, bool) {
		return func(h v1.Hash) ([]byte, bool) { b, ok := docs[h]; return b, ok }
	}
	top, docs := build(MaxDepth)
	c, err := Walk(top, get(docs), nil)
	if err != nil || len(c.Manifests) != MaxDepth+1 {
		t.Fatalf("%d levels below the image: %v", MaxDepth, err)
	}
	top, docs = build(MaxDepth + 1)
	if _, err := Walk(top, get(docs), nil); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("nested more than %d deep", MaxDepth)) {
		t.Fatalf("%d levels below the image: %v, want the depth bound named", MaxDepth+1, err)
	}
}

// manyMetadata lists 20 distinct 16 MB metadata blobs: 320 MB in all.
func manyMetadata() string {
	var parts []string
	for i := 0; i < 20; i++ {
		parts = append(parts, fmt.Sprintf(`{"digest":"sha256:%064x","size":16000000,"kind":"metadata"}`, i))
	}
	return strings.Join(parts, ",")
}

// A blob with two parts is listed with the kind that needs it in memory,
// then the one written first; never both ways round.
func TestKindOutranks(t *testing.T) {
	kinds := []Kind{KindIndex, KindManifest, KindConfig, KindMetadata, KindSignature, KindLayer}
	for i, k := range kinds {
		for j, o := range kinds {
			if got, want := k.Outranks(o), i < j; got != want {
				t.Errorf("%s.Outranks(%s) = %v, want %v", k, o, got, want)
			}
		}
	}
	if !KindConfig.Outranks(KindLayer) || KindLayer.Outranks(KindConfig) {
		t.Fatal("a layer outranks a config")
	}
}
