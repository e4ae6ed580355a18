package testimages_test

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

func get(t *testing.T, ref string) *remote.Descriptor {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	return desc
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

func TestPushOCIImages(t *testing.T) {
	reg := testregistry.New(t)
	spec := testimages.Spec{
		Repo: "team/app-{i}", Tag: "v1", Count: 3,
		Layers: 2, LayerSize: 64 << 10, Shared: 1, Seed: 42,
	}
	imgs, err := testimages.Push(t.Context(), reg.Host, spec)
	if err != nil {
		t.Fatalf("Push: %v\nregistry log:\n%s", err, reg.LogTail(20))
	}
	if len(imgs) != spec.Count {
		t.Fatalf("got %d images, want %d", len(imgs), spec.Count)
	}

	var shared v1.Hash
	seenOwn := map[v1.Hash]bool{}
	for i, want := range imgs {
		if want.Ref != reg.Host+"/team/app-"+strconv.Itoa(i)+":v1" {
			t.Errorf("image %d: Ref = %q", i, want.Ref)
		}
		desc := get(t, want.Ref)
		if got := desc.Digest.String(); got != want.Digest {
			t.Errorf("%s: registry digest %s, Push said %s", want.Ref, got, want.Digest)
		}
		if desc.MediaType != types.OCIManifestSchema1 || want.MediaType != string(types.OCIManifestSchema1) {
			t.Errorf("%s: media type %s / %s, want OCI manifest", want.Ref, desc.MediaType, want.MediaType)
		}
		if desc.Size != want.Size || want.Children != nil {
			t.Errorf("%s: size %d / %d, children %v", want.Ref, desc.Size, want.Size, want.Children)
		}
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		// validate.Image re-downloads every blob and checks digests and diff_ids.
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: invalid image: %v", want.Ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer {
			t.Errorf("%s: config/layer media types %s, %s", want.Ref, m.Config.MediaType, m.Layers[0].MediaType)
		}
		ls := layerDigests(t, img)
		if len(ls) != spec.Layers {
			t.Fatalf("%s: %d layers, want %d", want.Ref, len(ls), spec.Layers)
		}
		if i == 0 {
			shared = ls[0]
		} else if ls[0] != shared {
			t.Errorf("%s: shared layer %s, want %s", want.Ref, ls[0], shared)
		}
		if seenOwn[ls[1]] {
			t.Errorf("%s: own layer %s repeated across images", want.Ref, ls[1])
		}
		seenOwn[ls[1]] = true

		blobs := []string{m.Config.Digest.String(), ls[0].String(), ls[1].String()}
		if !slices.Equal(want.Blobs, blobs) {
			t.Errorf("%s: Blobs = %v, want %v", want.Ref, want.Blobs, blobs)
		}
		bytes := desc.Size + m.Config.Size + m.Layers[0].Size + m.Layers[1].Size
		if want.Bytes != bytes {
			t.Errorf("%s: Bytes = %d, want %d", want.Ref, want.Bytes, bytes)
		}
	}

	again, err := testimages.Push(t.Context(), reg.Host, spec)
	if err != nil {
		t.Fatalf("second Push: %v", err)
	}
	if !reflect.DeepEqual(again, imgs) {
		t.Errorf("second Push differs:\n%+v\nvs\n%+v", again, imgs)
	}
}

func TestPushDockerIndex(t *testing.T) {
	reg := testregistry.New(t)
	spec := testimages.Spec{
		Repo: "multi/arch", Tag: "v{i}", Count: 1,
		Layers: 2, LayerSize: 32 << 10, Shared: 1, Seed: 7,
		Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Docker: true,
	}
	imgs, err := testimages.Push(t.Context(), reg.Host, spec)
	if err != nil {
		t.Fatalf("Push: %v\nregistry log:\n%s", err, reg.LogTail(20))
	}
	want := imgs[0]
	if want.Ref != reg.Host+"/multi/arch:v0" {
		t.Errorf("Ref = %q", want.Ref)
	}
	desc := get(t, want.Ref)
	if desc.Digest.String() != want.Digest || desc.Size != want.Size {
		t.Errorf("registry has %s (%d bytes), Push said %s (%d bytes)", desc.Digest, desc.Size, want.Digest, want.Size)
	}
	if desc.MediaType != types.DockerManifestList || want.MediaType != string(types.DockerManifestList) {
		t.Errorf("media type %s / %s, want Docker manifest list", desc.MediaType, want.MediaType)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("invalid index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(spec.Platforms) || len(want.Children) != len(spec.Platforms) {
		t.Fatalf("index has %d children, Push said %v", len(im.Manifests), want.Children)
	}

	repo := reg.Host + "/multi/arch@"
	var firstLayers []v1.Hash
	for n, child := range im.Manifests {
		if child.Digest.String() != want.Children[n] {
			t.Errorf("child %d: %s, Push said %s", n, child.Digest, want.Children[n])
		}
		if got := child.Platform.String(); got != spec.Platforms[n] {
			t.Errorf("child %d: platform %s, want %s", n, got, spec.Platforms[n])
		}
		cd := get(t, repo+want.Children[n])
		if cd.MediaType != types.DockerManifestSchema2 {
			t.Errorf("child %d: media type %s", n, cd.MediaType)
		}
		img, err := cd.Image()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Platform().String(); got != spec.Platforms[n] {
			t.Errorf("child %d: config platform %s, want %s", n, got, spec.Platforms[n])
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.DockerConfigJSON || m.Layers[0].MediaType != types.DockerLayer {
			t.Errorf("child %d: config/layer media types %s, %s", n, m.Config.MediaType, m.Layers[0].MediaType)
		}
		ls := layerDigests(t, img)
		if n == 0 {
			firstLayers = ls
			continue
		}
		if ls[0] != firstLayers[0] {
			t.Errorf("shared layer differs across platforms: %s vs %s", ls[0], firstLayers[0])
		}
		if ls[1] == firstLayers[1] {
			t.Errorf("per-platform layer identical across platforms: %s", ls[1])
		}
	}
	// 2 configs + 1 shared layer + 2 per-platform layers.
	if len(want.Blobs) != 5 {
		t.Errorf("Blobs = %v, want 5 distinct", want.Blobs)
	}
}

func TestPushRejectsBadSpec(t *testing.T) {
	for _, s := range []testimages.Spec{
		{Repo: "a", Tag: "t", Count: 0, Layers: 1},
		{Repo: "a", Tag: "t", Count: 1, Layers: 1, Shared: 2},
		{Repo: "a", Tag: "t", Count: 2, Layers: 1}, // would overwrite itself
		{Repo: "a", Tag: "t", Count: 1, Layers: 1, Platforms: []string{"a/b/c/d"}},
	} {
		if _, err := testimages.Push(context.Background(), "127.0.0.1:1", s); err == nil {
			t.Errorf("Push(%+v) succeeded, want error", s)
		}
	}
}
