package layout

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// IndexOrigin is the multi-platform index a platform manifest was chosen
// from (export --platform). The index's own bytes and its attachments
// travel among the archive's blobs, so that trust in the index (a TUF
// target, a signature) extends to the manifests it lists; the index itself
// is never pushed, since registries refuse an index whose other children
// are absent.
type IndexOrigin struct {
	Ref       string  `json:"ref"` // the reference exported, which resolved to the index
	Digest    v1.Hash `json:"digest"`
	MediaType string  `json:"mediaType"`
	Size      int64   `json:"size"`
	Platform  string  `json:"platform"` // os/arch[/variant] of the chosen child
}

// Image is the index as an image of its own: what TUF targets and
// signatures made over the index name.
func (o *IndexOrigin) Image() Image {
	return Image{Ref: o.Ref, Digest: o.Digest, MediaType: o.MediaType, Size: o.Size}
}

// Names are the references an image goes by: its own, and that of the
// index it was chosen from, if any. Selection patterns and signature rules
// match either.
func (im Image) Names() []string {
	if im.Index != nil && im.Index.Ref != im.Ref {
		return []string{im.Ref, im.Index.Ref}
	}
	return []string{im.Ref}
}

// Platform is an os/arch[/variant] to choose from multi-platform indexes.
type Platform struct{ OS, Architecture, Variant string }

// ParsePlatform reads os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64 or linux/arm/v7", s)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " :@") {
			return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64 or linux/arm/v7", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Architecture + "/" + p.Variant
	}
	return p.OS + "/" + p.Architecture
}

// Matches reports whether an index entry's platform is this one. Without a
// variant any variant matches (linux/arm64 takes linux/arm64/v8), as
// docker pull --platform does; with one, it must be the same. OS versions
// and features are not compared.
func (p Platform) Matches(q *v1.Platform) bool {
	if q == nil || q.OS != p.OS || q.Architecture != p.Architecture {
		return false
	}
	return p.Variant == "" || p.Variant == q.Variant
}

// ChosenRef is the reference a platform manifest chosen out of the index
// that ref resolved to goes by: ref itself when it was the only one chosen
// and ref is a tag (the image lands under that tag), else ref's repository
// at the manifest's digest (one tag cannot name several manifests, and a
// reference pinned to the index's digest would not name this one).
func ChosenRef(ref string, child v1.Hash, only bool) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	if _, isTag := r.(name.Tag); isTag && only {
		return r.Name(), nil
	}
	return r.Context().Digest(child.String()).Name(), nil
}

// CheckOrigin holds an image chosen from an index to what the index says:
// the index (raw, its bytes as the archive carries them) lists the image's
// manifest with the same digest, size, media type and platform, and the
// image's reference names the index's repository (and its tag, if any).
// Trust in the index extends to the image only then.
func CheckOrigin(im Image, raw []byte) error {
	o := im.Index
	if err := CheckRef(o.Ref); err != nil {
		return fmt.Errorf("the index it was chosen from, %s: %w", o.Ref, err)
	}
	if !IsIndexType(o.MediaType) {
		return fmt.Errorf("chosen from %s, whose media type %q is not an index", o.Ref, o.MediaType)
	}
	if int64(len(raw)) != o.Size {
		return fmt.Errorf("the index it was chosen from, %s, is %d bytes, not %d", o.Digest, len(raw), o.Size)
	}
	kids, err := Children(o.MediaType, raw)
	if err != nil {
		return fmt.Errorf("the index it was chosen from, %s: %w", o.Digest, err)
	}
	listed := false
	for _, k := range kids {
		if k.Digest == im.Digest && k.Size == im.Size && string(k.MediaType) == im.MediaType && k.Platform != nil && k.Platform.String() == o.Platform {
			listed = true
			break
		}
	}
	if !listed {
		return fmt.Errorf("the index it was chosen from, %s (%s), does not list it as platform %s", o.Ref, o.Digest, o.Platform)
	}
	a, err := name.ParseReference(im.Ref)
	if err != nil {
		return err
	}
	b, err := name.ParseReference(o.Ref)
	if err != nil {
		return err
	}
	if a.Context().Name() != b.Context().Name() {
		return fmt.Errorf("chosen from %s, an index of another repository", o.Ref)
	}
	if tag := TagOf(im.Ref); tag != "" && tag != TagOf(o.Ref) {
		return fmt.Errorf("tagged %s, but chosen from %s", tag, o.Ref)
	}
	return nil
}
