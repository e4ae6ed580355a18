package relocate

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// A blob can play two parts: OCI 1.1 artifacts without content use the
// empty descriptor as their config and as their one layer, and one image's
// config can be another's layer. Export, verify and import carry both.
func TestBlobInTwoRoles(t *testing.T) {
	ctx := context.Background()
	src, _ := memRegistry(t)
	empty := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	blob := static.NewLayer([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	desc := func(l v1.Layer, mt string) string {
		d, _ := l.Digest()
		s, _ := l.Size()
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, s)
	}
	manifests := map[string]string{
		"team/artifact:v1": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.thing","config":` + desc(empty, "application/vnd.oci.empty.v1+json") + `,"layers":[` + desc(empty, "application/vnd.oci.empty.v1+json") + `]}`,
		"team/a:v1":        `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(blob, string(types.OCIConfigJSON)) + `,"layers":[]}`,
		"team/b:v1":        `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(empty, "application/vnd.oci.empty.v1+json") + `,"layers":[` + desc(blob, "application/vnd.oci.image.layer.v1.tar") + `]}`,
	}
	full := map[string]string{}
	for ref, m := range manifests {
		r, err := name.ParseReference(src + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []v1.Layer{empty, blob} {
			if err := remote.WriteLayer(r.Context(), l); err != nil {
				t.Fatal(err)
			}
		}
		if err := remote.Put(r, rawManifest{[]byte(m), types.OCIManifestSchema1}); err != nil {
			t.Fatal(err)
		}
		full[ref] = r.String()
	}
	// One job walks the images in the order given: the blob is met first as
	// a's config, or first as b's layer.
	dir := t.TempDir()
	for i, order := range [][]string{{"team/a:v1", "team/b:v1", "team/artifact:v1"}, {"team/b:v1", "team/a:v1", "team/artifact:v1"}} {
		var refs []string
		for _, ref := range order {
			refs = append(refs, full[ref])
		}
		out := []string{"site.tar", "site.tar.zst"}[i]
		path := filepath.Join(dir, out)
		if _, err := Export(ctx, ExportOptions{Refs: refs, Output: path, Client: client(), Jobs: 1}); err != nil {
			t.Fatalf("export %s: %v", out, err)
		}
		verifyAndImport(t, path)
	}
}
