package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	cnab "github.com/cnabio/cnab-go/bundle"
	"github.com/cnabio/cnab-go/bundle/loader"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// invocationPrefix names invocation images among Image keys: "invocation-<i>".
const invocationPrefix = "invocation-"

// Bundle is a thin bundle: the exact bundle.json bytes (their sha256 is what
// TUF signs) and cnab-go's parse of them. Def is for reading; re-marshalling
// it drops unknown fields and reorders keys, so Raw is what gets stored,
// hashed and carried.
type Bundle struct {
	Raw    []byte
	Digest v1.Hash
	Def    *cnab.Bundle
}

// Parse reads bundle.json with cnab-go's loader (LoadData: the file-or-HTTP
// Load is never used) and keeps a copy of raw unchanged. Beyond JSON it
// checks only what relocation relies on: at least one invocation image,
// every image with a reference, content digests that parse, and no
// images{} key that is empty or could be mistaken for an invocation
// image's key.
func Parse(raw []byte) (*Bundle, error) {
	def, err := loader.NewLoader().LoadData(raw)
	if err != nil {
		return nil, fmt.Errorf("bundle.json: %w", err)
	}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("bundle.json: %w", err)
	}
	b := &Bundle{Raw: bytes.Clone(raw), Digest: digest, Def: def}
	if len(def.InvocationImages) == 0 {
		return nil, fmt.Errorf("bundle %s: no invocation image", b.name())
	}
	for key := range def.Images {
		if isInvocationKey(key) {
			return nil, fmt.Errorf("bundle %s: image key %q collides with the invocation image keys", b.name(), key)
		}
		// The cnab-to-oci form names a component by its key: an empty one
		// would be stored but could never be read back.
		if key == "" {
			return nil, fmt.Errorf("bundle %s: an image with an empty key", b.name())
		}
	}
	for _, img := range b.Images() {
		if img.Ref == "" {
			return nil, fmt.Errorf("bundle %s: image %s: no image reference", b.name(), img.Key)
		}
		if img.ContentDigest != "" {
			if _, err := v1.NewHash(img.ContentDigest); err != nil {
				return nil, fmt.Errorf("bundle %s: image %s: contentDigest: %w", b.name(), img.Key, err)
			}
		}
	}
	return b, nil
}

// name is how errors name a bundle: name:version and its digest.
func (b *Bundle) name() string {
	return fmt.Sprintf("%s:%s (%s)", b.Def.Name, b.Def.Version, b.Digest)
}

// Image is one image a bundle names.
type Image struct {
	Key           string // images{} key, or "invocation-<i>" for invocationImages[i]
	Ref           string // the "image" field: the original reference
	ContentDigest string // the manifest digest ("sha256:…"), "" if the bundle does not pin it
	MediaType     string // the manifest's media type, "" if unstated
	ImageType     string // "docker", "oci", …
	Size          uint64
	Invocation    bool
}

// Images lists the invocation images in order, then images{} by key.
func (b *Bundle) Images() []Image {
	out := make([]Image, 0, len(b.Def.InvocationImages)+len(b.Def.Images))
	for i, img := range b.Def.InvocationImages {
		out = append(out, image(invocationPrefix+strconv.Itoa(i), img.BaseImage, true))
	}
	for _, key := range slices.Sorted(maps.Keys(b.Def.Images)) {
		out = append(out, image(key, b.Def.Images[key].BaseImage, false))
	}
	return out
}

func image(key string, bi cnab.BaseImage, invocation bool) Image {
	return Image{
		Key:           key,
		Ref:           bi.Image,
		ContentDigest: bi.Digest,
		MediaType:     bi.MediaType,
		ImageType:     bi.ImageType,
		Size:          bi.Size,
		Invocation:    invocation,
	}
}

func isInvocationKey(key string) bool {
	n, ok := strings.CutPrefix(key, invocationPrefix)
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// RelocationMapping is CNAB core spec 103's relocation mapping: every
// original image reference of the bundle mapped to its relocated
// reference; json.Marshal of it is relocation-mapping.json. relocate is
// called once per distinct reference.
func RelocationMapping(b *Bundle, relocate func(ref string) (string, error)) (map[string]string, error) {
	m := make(map[string]string)
	for _, img := range b.Images() {
		if _, done := m[img.Ref]; done {
			continue
		}
		to, err := relocate(img.Ref)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: relocating image %s (%s): %w", b.name(), img.Key, img.Ref, err)
		}
		if to == "" {
			return nil, fmt.Errorf("bundle %s: relocating image %s (%s): %w", b.name(), img.Key, img.Ref, errors.New("empty reference"))
		}
		m[img.Ref] = to
	}
	return m, nil
}
