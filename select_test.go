package relocate

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
)

func hash(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }

func refsOf(ims []layout.Image) []string {
	var out []string
	for _, im := range ims {
		out = append(out, im.Ref)
	}
	return out
}

func TestSelectImages(t *testing.T) {
	toc := &layout.TOC{Images: []layout.Image{
		{Ref: "reg.example/shop/bundle:1.0", Digest: hash("b")},
		{Ref: "reg.example/shop/web:1.0", Digest: hash("1")},
		{Ref: "reg.example/team/app:v1", Digest: hash("2")},
		{Ref: "reg.example/team/multi@" + hash("3").String(), Digest: hash("3"),
			Index: &layout.IndexOrigin{Ref: "reg.example/team/multi:v2", Digest: hash("4"), Platform: "linux/amd64"}},
	}, Bundles: []layout.Bundle{{Ref: "reg.example/shop/bundle:1.0", Images: []layout.BundleImage{{Key: "web", Ref: "reg.example/shop/web:1.0", Digest: hash("1")}}}}}
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want, excluded   []string
		err              string
	}{
		{name: "everything", want: refsOf(toc.Images)},
		{name: "exclude wins", include: []string{"reg.example/team/*"}, exclude: []string{"*:v1"},
			want: []string{"reg.example/team/multi@" + hash("3").String()}, excluded: []string{"reg.example/shop/bundle:1.0", "reg.example/shop/web:1.0", "reg.example/team/app:v1"}},
		{name: "by the index's name", include: []string{"reg.example/team/multi:v2"}, want: []string{"reg.example/team/multi@" + hash("3").String()}},
		{name: "a bundle brings its images", include: []string{"*/bundle:*"}, want: []string{"reg.example/shop/bundle:1.0", "reg.example/shop/web:1.0"}},
		{name: "an image without its bundle", include: []string{"*/web:*"}, want: []string{"reg.example/shop/web:1.0"}},
		{name: "the bundle goes too", exclude: []string{"reg.example/shop/*"}, want: []string{"reg.example/team/app:v1", "reg.example/team/multi@" + hash("3").String()}},
		{name: "a bundle without one of its images", exclude: []string{"*/web:*"}, err: "an image of bundle reg.example/shop/bundle:1.0"},
		{name: "an include that matches nothing", include: []string{"*/app:*", "nowhere/*"}, err: `--include "nowhere/*" matches no image`},
		{name: "nothing left", exclude: []string{"*"}, err: "leave no image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := selectImages(toc, tc.include, tc.exclude)
			if tc.err != "" {
				if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want usage %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := refsOf(sel.images); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("selected %v, want %v", got, tc.want)
			}
			if tc.excluded != nil && strings.Join(sel.excluded, " ") != strings.Join(tc.excluded, " ") {
				t.Errorf("excluded %v, want %v", sel.excluded, tc.excluded)
			}
		})
	}
}

func TestPlanWithMap(t *testing.T) {
	c := mirror.New()
	images := []layout.Image{
		{Ref: "localhost:5000/a:1", Digest: hash("1")},
		{Ref: "127.0.0.1:5000/a:1", Digest: hash("1")},
	}
	if _, err := plan(c, "site.local", nil, images, nil); !errors.Is(err, ErrNameConflict) || !strings.Contains(err.Error(), "localhost:5000/a:1 and 127.0.0.1:5000/a:1 would both land on site.local/a:1") {
		t.Errorf("err %v", err)
	}
	dests, err := checkSelection(ImportOptions{Map: map[string]string{"localhost:5000/a:1": "site.local/local/a:1"}})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := plan(c, "site.local", dests, images, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range targets {
		got[tg.image.Ref] = dest(tg)
	}
	if got["localhost:5000/a:1"] != "site.local/local/a:1" || got["127.0.0.1:5000/a:1"] != "site.local/a:1" {
		t.Errorf("placed %v", got)
	}
	if _, err := plan(c, "", dests, images, nil); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "127.0.0.1:5000/a:1 is not in --map") {
		t.Errorf("without --to: %v", err)
	}
	for to, want := range map[string]string{
		"a:1":                                "names no registry",
		"site.local/a/../b:1":                "'..'",
		"site.local/a":                       "neither a tag nor a digest",
		"site.local/A:1":                     "not a valid reference",
		"site.local/a@sha256:zz":             "",
		"site.local/b@" + hash("2").String(): "but the image is",
	} {
		dests, err := checkSelection(ImportOptions{Map: map[string]string{"localhost:5000/a:1": to}})
		if err == nil {
			_, err = plan(c, "site.local", dests, images, nil)
		}
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("--map to %s: %v, want usage %q", to, err, want)
		}
	}
}
