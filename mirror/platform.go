package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// PlatformError is an image that has none of the platforms asked for.
type PlatformError struct {
	Ref  string
	Want []layout.Platform
	Has  []string // the platforms the image has
}

func (e *PlatformError) Error() string {
	want := make([]string, len(e.Want))
	for i, p := range e.Want {
		want[i] = p.String()
	}
	has := "no platform"
	if len(e.Has) > 0 {
		has = strings.Join(e.Has, ", ")
	}
	return fmt.Sprintf("%s has none of the platforms asked for (%s): it has %s", e.Ref, strings.Join(want, ", "), has)
}

func (w *walker) wantPlatform(p *v1.Platform) bool {
	for _, want := range w.opts.Platforms {
		if want.Matches(p) {
			return true
		}
	}
	return false
}

// choose walks the platform manifests of index m that WalkOptions.Platforms
// asks for, each as an image of its own under its own digest (a registry
// refuses an index whose other children are absent, and a rewritten index
// would have another digest than the one that was signed). The index
// itself travels as a blob, not walked into its children, with what is
// attached to it: a site can then vouch for a chosen manifest through the
// index's TUF target or signatures.
func (w *walker) choose(ctx context.Context, ref name.Reference, m *Manifest) ([]layout.Image, error) {
	kids, err := layout.Children(m.MediaType, m.Raw)
	if err != nil {
		return nil, &InvalidError{What: ref.Name(), Reason: err.Error()}
	}
	var chosen []layout.Child
	var has []string
	for _, k := range kids {
		if k.Platform != nil {
			has = append(has, k.Platform.String())
		}
		if k.Kind == layout.KindManifest && w.wantPlatform(k.Platform) {
			chosen = append(chosen, k)
		}
	}
	if len(chosen) == 0 {
		return nil, &PlatformError{Ref: ref.Name(), Want: w.opts.Platforms, Has: has}
	}
	repo := ref.Context()
	idx := &Node{Blob: layout.Blob{Digest: m.Digest, Size: int64(len(m.Raw)), MediaType: m.MediaType, Kind: layout.KindIndex},
		Desc: v1.Descriptor{Digest: m.Digest, Size: int64(len(m.Raw)), MediaType: typ(m.MediaType)}, Repo: repo, Data: m.Raw}
	w.mu.Lock()
	w.indexes[m.Digest] = idx
	w.mu.Unlock()
	if w.opts.Attachments {
		if err := w.attachments(ctx, ref.Name(), repo, m.Digest, 0); err != nil {
			return nil, err
		}
	}
	origin := layout.IndexOrigin{Ref: ref.Name(), Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Raw))}
	var out []layout.Image
	for _, k := range chosen {
		r, err := layout.ChosenRef(ref.Name(), k.Digest, len(chosen) == 1)
		if err != nil {
			return nil, err
		}
		if err := w.manifest(ctx, ref.Name(), repo, k.Descriptor, nil, 1); err != nil {
			return nil, err
		}
		o := origin
		o.Platform = k.Platform.String()
		out = append(out, layout.Image{Ref: r, Digest: k.Digest, MediaType: string(k.MediaType), Size: k.Size, Platforms: []string{o.Platform}, Index: &o})
	}
	return out, nil
}

// checkSingle refuses an image that is not an index when its config names
// a platform other than those asked for: it would otherwise travel as if
// it had been chosen. Artifacts whose config names no platform pass.
func (w *walker) checkSingle(ref name.Reference, m *Manifest) error {
	var mf struct{ Config v1.Descriptor }
	if json.Unmarshal(m.Raw, &mf) != nil {
		return nil
	}
	w.mu.Lock()
	n := w.g.Blobs[mf.Config.Digest]
	w.mu.Unlock()
	if n == nil || n.Data == nil {
		return nil
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if json.Unmarshal(n.Data, &cfg) != nil || cfg.OS == "" || cfg.Architecture == "" {
		return nil
	}
	p := &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if w.wantPlatform(p) {
		return nil
	}
	return &PlatformError{Ref: ref.Name(), Want: w.opts.Platforms, Has: []string{p.String() + " (a single-platform image)"}}
}
