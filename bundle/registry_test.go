package bundle

import (
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rawManifest lets remote.Put write manifest bytes unchanged.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// TestStoredThroughRegistry pushes BuildStored's output the way the doc
// says (images, bundle.json blob, config manifest, index) into
// go-containerregistry's in-memory registry, which checks that an index's
// children exist, and reads it back with ParseStored.
//
// cnab-to-oci v0.4.1's remotes.Pull would be the better reader here, but it
// does not compile against the docker/cli v29 that go-containerregistry
// v0.22.1 requires (opts.NamedOption is gone).
func TestStoredThroughRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/helloworld")
	if err != nil {
		t.Fatal(err)
	}

	// Three images in the bundle's repository, by digest.
	var parts []string
	for i := range 3 {
		img, err := random.Image(int64(512+i), 2)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(repo.Digest(d.String()), img); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf(`{"imageType":"docker","image":"example.com/hw/%d:1","contentDigest":%q,"size":%d,"mediaType":%q}`,
			i, d, len(m), types.DockerManifestSchema2))
	}
	raw := []byte(`{"schemaVersion":"v1.2.0","name":"hw","version":"0.1.0","invocationImages":[` + parts[0] +
		`],"images":{"a":` + parts[1] + `,"b":` + parts[2] + `}}`)
	b := mustParse(t, raw)
	images := map[string]v1.Descriptor{}
	for _, img := range b.Images() {
		h, _ := v1.NewHash(img.ContentDigest)
		images[img.Key] = v1.Descriptor{MediaType: types.MediaType(img.MediaType), Size: int64(img.Size), Digest: h}
	}
	index, cm, err := BuildStored(b, images)
	if err != nil {
		t.Fatal(err)
	}

	if err := remote.WriteLayer(repo, static.NewLayer(b.Raw, ConfigMediaType)); err != nil {
		t.Fatal(err)
	}
	cmDigest, _, _ := v1.SHA256(bytes.NewReader(cm))
	if err := remote.Put(repo.Digest(cmDigest.String()), rawManifest{cm, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Tag("0.1.0"), rawManifest{index, types.OCIImageIndex}); err != nil {
		t.Fatal(err)
	}

	desc, err := remote.Get(repo.Tag("0.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(desc.Manifest, index) {
		t.Fatal("index bytes changed in the registry")
	}
	get := func(h v1.Hash) ([]byte, error) {
		if d, err := remote.Get(repo.Digest(h.String())); err == nil {
			return d.Manifest, nil
		}
		l, err := remote.Layer(repo.Digest(h.String()))
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	s, err := ParseStored(desc.Manifest, get)
	if err != nil {
		t.Fatal(err)
	}
	if s.Bundle.Digest != b.Digest {
		t.Fatalf("bundle.json digest %s, pushed %s", s.Bundle.Digest, b.Digest)
	}
	for key, d := range images {
		if s.Images[key].Digest != d.Digest {
			t.Errorf("image %s: %s, pushed %s", key, s.Images[key].Digest, d.Digest)
		}
	}
}
