package testimages

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mediaTypes is the set of media types for one manifest format.
type mediaTypes struct {
	index, manifest, config, layer types.MediaType
}

var (
	dockerTypes = mediaTypes{types.DockerManifestList, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer}
	ociTypes    = mediaTypes{types.OCIImageIndex, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer}
)

// imageConfig is the minimal valid image config. It has no timestamps or
// history so its bytes depend only on the platform and the layers.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
	Config       struct {
		Env []string `json:"Env"`
	} `json:"config"`
	RootFS struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	} `json:"rootfs"`
}

// image is a fully precomputed image; partial.CompressedToImage turns it
// into a v1.Image, which lets us control every manifest and config byte.
type image struct {
	mt           mediaTypes
	config       v1.Layer
	configDigest v1.Hash
	rawCfg       []byte
	manifest     []byte
	digest       v1.Hash // of manifest
	layers       map[v1.Hash]layer
	order        []layer
}

func newImage(mt mediaTypes, p v1.Platform, ls []layer) (*image, error) {
	var cfg imageConfig
	cfg.Architecture, cfg.OS, cfg.Variant = p.Architecture, p.OS, p.Variant
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = make([]v1.Hash, 0, len(ls))
	for _, l := range ls {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	cfgLayer := static.NewLayer(rawCfg, mt.config)
	cfgDesc, err := partial.Descriptor(cfgLayer)
	if err != nil {
		return nil, fmt.Errorf("describe config: %w", err)
	}

	m := v1.Manifest{SchemaVersion: 2, MediaType: mt.manifest, Config: *cfgDesc}
	img := &image{mt: mt, config: cfgLayer, configDigest: cfgDesc.Digest, rawCfg: rawCfg, layers: map[v1.Hash]layer{}, order: ls}
	for _, l := range ls {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: l.csize, Digest: l.digest})
		img.layers[l.digest] = l
	}
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	if img.digest, _, err = v1.SHA256(bytes.NewReader(img.manifest)); err != nil {
		return nil, fmt.Errorf("hash manifest: %w", err)
	}
	return img, nil
}

func (i *image) MediaType() (types.MediaType, error) { return i.mt.manifest, nil }
func (i *image) RawConfigFile() ([]byte, error)      { return i.rawCfg, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	if h == i.configDigest {
		return i.config, nil
	}
	return nil, fmt.Errorf("blob %s not in image", h)
}

// index is a precomputed image index over child images; it implements
// v1.ImageIndex so remote.WriteIndex pushes the children first.
type index struct {
	mt       types.MediaType
	manifest []byte
	children map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*index)(nil)

func newIndex(mt mediaTypes, children []v1.Image, platforms []v1.Platform) (*index, error) {
	idx := &index{mt: mt.index, children: map[v1.Hash]v1.Image{}}
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: mt.index}
	for n, child := range children {
		desc, err := partial.Descriptor(child)
		if err != nil {
			return nil, fmt.Errorf("describe child: %w", err)
		}
		desc.Platform = &platforms[n]
		im.Manifests = append(im.Manifests, *desc)
		idx.children[desc.Digest] = child
	}
	var err error
	if idx.manifest, err = json.Marshal(im); err != nil {
		return nil, fmt.Errorf("marshal index: %w", err)
	}
	return idx, nil
}

func (i *index) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *index) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *index) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *index) Size() (int64, error)                { return partial.Size(i) }

func (i *index) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.manifest))
}

func (i *index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := i.children[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s not in index", h)
}

func (i *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index %s not in index: nested indexes are not generated", h)
}
