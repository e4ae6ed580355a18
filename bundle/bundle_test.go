package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, raw []byte) *Bundle {
	t.Helper()
	b, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseImages(t *testing.T) {
	b := mustParse(t, fixture(t))
	if b.Def.Name != "helloworld" || b.Def.Version != "0.1.2" {
		t.Fatalf("name/version %s/%s", b.Def.Name, b.Def.Version)
	}
	want := []Image{
		{Key: "invocation-0", Ref: "registry.example.com/helloworld/installer:0.1.2",
			ContentDigest: "sha256:5b6a0c7a2bf3d1e5bcd0ea3bb9e43a2d3e5f0a6c6a3e0b2d4c7e18f9a1b2c3d4",
			MediaType:     "application/vnd.docker.distribution.manifest.v2+json", ImageType: "docker", Size: 1362, Invocation: true},
		{Key: "db", Ref: "docker.io/library/postgres:16.4",
			ContentDigest: "sha256:f3e2d1c0b9a8f7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6d5",
			MediaType:     "application/vnd.oci.image.index.v1+json", ImageType: "docker", Size: 7733},
		{Key: "web", Ref: "registry.example.com/helloworld/web@sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50",
			ContentDigest: "sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50",
			MediaType:     "application/vnd.oci.image.manifest.v1+json", ImageType: "oci", Size: 528},
	}
	if got := b.Images(); !slices.Equal(got, want) {
		t.Fatalf("Images()\n got %+v\nwant %+v", got, want)
	}
}

func TestParseKeepsRawBytes(t *testing.T) {
	raw := fixture(t)
	in := bytes.Clone(raw)
	b := mustParse(t, in)
	sum := sha256.Sum256(raw)
	if !bytes.Equal(b.Raw, raw) || b.Digest.String() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("Raw/Digest differ from the input: %s", b.Digest)
	}
	in[0] = 'X' // the caller's buffer is not Raw
	if b.Raw[0] != raw[0] {
		t.Fatal("Raw aliases the caller's slice")
	}
	// Why Raw exists: cnab-go's own serialization is another document.
	remarshalled, err := b.Def.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(remarshalled, raw) || bytes.Contains(remarshalled, []byte("x-relocate-test-unknown-field")) {
		t.Fatal("expected cnab-go to drop the unknown field and reformat")
	}
}

func TestParseRefused(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{"name":`, "bundle.json"},
		{"no invocation image", `{"schemaVersion":"v1.2.0","name":"x","version":"1.0.0","invocationImages":[]}`, "no invocation image"},
		{"image key like an invocation key", `{"name":"x","version":"1","invocationImages":[{"imageType":"docker","image":"a/b:1"}],
			"images":{"invocation-0":{"imageType":"docker","image":"c/d:1"}}}`, `image key "invocation-0" collides`},
		{"empty image key", `{"name":"x","version":"1","invocationImages":[{"imageType":"docker","image":"a/b:1"}],
			"images":{"":{"imageType":"docker","image":"c/d:1"}}}`, "an image with an empty key"},
		{"bad contentDigest", `{"name":"x","version":"1","invocationImages":[{"imageType":"docker","image":"a/b:1","contentDigest":"sha256:abc"}]}`,
			"image invocation-0: contentDigest"},
		{"image without reference", `{"name":"x","version":"1","invocationImages":[{"imageType":"docker","image":"a/b:1"}],
			"images":{"web":{"imageType":"oci"}}}`, "image web: no image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRelocationMapping(t *testing.T) {
	b := mustParse(t, fixture(t))
	calls := 0
	m, err := RelocationMapping(b, func(ref string) (string, error) {
		calls++
		for _, img := range b.Images() {
			if img.Ref == ref && img.ContentDigest != "" {
				return "airgap.local:5000/helloworld@" + img.ContentDigest, nil
			}
		}
		return "", errors.New("unknown")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"registry.example.com/helloworld/installer:0.1.2": "airgap.local:5000/helloworld@sha256:5b6a0c7a2bf3d1e5bcd0ea3bb9e43a2d3e5f0a6c6a3e0b2d4c7e18f9a1b2c3d4",
		"docker.io/library/postgres:16.4":                 "airgap.local:5000/helloworld@sha256:f3e2d1c0b9a8f7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6d5",
		"registry.example.com/helloworld/web@sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50": "airgap.local:5000/helloworld@sha256:0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50",
	}
	if len(m) != len(want) || calls != 3 {
		t.Fatalf("mapping %v after %d calls", m, calls)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s -> %q, want %q", k, m[k], v)
		}
	}

	tests := []struct {
		name     string
		relocate func(string) (string, error)
		want     string
	}{
		{"relocate fails", func(ref string) (string, error) {
			if strings.Contains(ref, "postgres") {
				return "", errors.New("no such repository")
			}
			return "x/y:1", nil
		}, "relocating image db (docker.io/library/postgres:16.4): no such repository"},
		{"empty result", func(string) (string, error) { return "", nil }, "relocating image invocation-0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RelocationMapping(b, tc.relocate); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSecurityLevel(t *testing.T) {
	tests := []struct {
		p    Protection
		want string
		num  int
	}{
		{Protection{}, "0", 0},
		{Protection{ImagesTUF: true}, "1a", 1},
		{Protection{BundleTUF: true}, "1b", 1},
		{Protection{BundleTUF: true, BundleInToto: true}, "1b", 1},   // images unsigned: no level names this
		{Protection{BundleInToto: true, ImagesInToto: true}, "0", 0}, // in-toto without TUF counts for nothing
		{Protection{BundleTUF: true, ImagesTUF: true}, "2", 2},
		{Protection{BundleTUF: true, ImagesTUF: true, ImagesInToto: true}, "3a", 3},
		{Protection{BundleTUF: true, ImagesTUF: true, BundleInToto: true}, "3b", 3},
		{Protection{BundleTUF: true, ImagesTUF: true, BundleInToto: true, ImagesInToto: true}, "4", 4},
	}
	for _, tc := range tests {
		if l := SecurityLevel(tc.p); l.String() != tc.want || l.Number() != tc.num {
			t.Errorf("SecurityLevel(%+v) = %s (%d), want %s (%d)", tc.p, l, l.Number(), tc.want, tc.num)
		}
	}
}

// descriptors are the manifest descriptors of the fixture's images as a
// registry would report them.
func descriptors(b *Bundle) map[string]v1.Descriptor {
	m := map[string]v1.Descriptor{}
	for _, img := range b.Images() {
		h, err := v1.NewHash(img.ContentDigest)
		if err != nil {
			panic(err)
		}
		m[img.Key] = v1.Descriptor{MediaType: types.MediaType(img.MediaType), Size: int64(img.Size), Digest: h}
	}
	return m
}
