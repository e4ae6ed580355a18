package layout

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"linux/amd64", "linux/amd64", ""},
		{"linux/arm/v7", "linux/arm/v7", ""},
		{"linux", "", "os/arch"},
		{"linux/", "", "os/arch"},
		{"linux/arm/v7/x", "", "os/arch"},
		{"linux/amd64:10.0", "", "os/arch"},
	} {
		p, err := ParsePlatform(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || p.String() != tc.want):
			t.Errorf("%q: %v %v", tc.in, p, err)
		}
	}
	arm64, _ := ParsePlatform("linux/arm64")
	v8, _ := ParsePlatform("linux/arm64/v8")
	for _, tc := range []struct {
		p    Platform
		q    *v1.Platform
		want bool
	}{
		{arm64, &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true}, // no variant: any
		{v8, &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true},
		{v8, &v1.Platform{OS: "linux", Architecture: "arm64"}, false},
		{arm64, &v1.Platform{OS: "windows", Architecture: "arm64"}, false},
		{arm64, nil, false},
	} {
		if got := tc.p.Matches(tc.q); got != tc.want {
			t.Errorf("%s matches %v: %v", tc.p, tc.q, got)
		}
	}
}

func TestChosenRef(t *testing.T) {
	child := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}
	index := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		ref  string
		only bool
		want string
	}{
		{"reg.example/team/app:v1", true, "reg.example/team/app:v1"},
		{"reg.example/team/app:v1", false, "reg.example/team/app@" + child.String()},
		{"reg.example/team/app@" + index, true, "reg.example/team/app@" + child.String()},
	} {
		if got, err := ChosenRef(tc.ref, child, tc.only); err != nil || got != tc.want {
			t.Errorf("ChosenRef(%s, %v) = %s, %v; want %s", tc.ref, tc.only, got, err, tc.want)
		}
	}
}

func TestCheckOrigin(t *testing.T) {
	child := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2},"layers":[]}`)
	cd := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(child))}
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		{MediaType: types.OCIManifestSchema1, Digest: cd, Size: int64(len(child)), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	}})
	id := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(idx))}
	good := Image{Ref: "reg.example/team/app:v1", Digest: cd, MediaType: string(types.OCIManifestSchema1), Size: int64(len(child)), Platforms: []string{"linux/amd64"},
		Index: &IndexOrigin{Ref: "reg.example/team/app:v1", Digest: id, MediaType: string(types.OCIImageIndex), Size: int64(len(idx)), Platform: "linux/amd64"}}
	if err := CheckOrigin(good, idx); err != nil {
		t.Fatalf("good origin: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Image)
		want string
	}{
		{"another repository", func(im *Image) { im.Ref = "reg.example/evil/app:v1" }, "another repository"},
		{"another tag", func(im *Image) { im.Ref = "reg.example/team/app:v2" }, "tagged v2"},
		{"another platform", func(im *Image) { im.Index.Platform = "linux/arm64" }, "does not list it"},
		{"another size", func(im *Image) { im.Size++ }, "does not list it"},
		{"not an index", func(im *Image) { im.Index.MediaType = string(types.OCIManifestSchema1) }, "not an index"},
		{"index size", func(im *Image) { im.Index.Size++ }, "bytes, not"},
		{"index reference a path", func(im *Image) { im.Index.Ref = "reg.example/team/../app:v1" }, "'..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := good
			o := *good.Index
			im.Index = &o
			tc.edit(&im)
			if err := CheckOrigin(im, idx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
