package testimages

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Spec describes a set of synthetic images. Identical Specs produce
// identical digests.
type Spec struct {
	Repo      string   // e.g. "team/app-{i}"; {i} is replaced by the image index (0-based)
	Tag       string   // e.g. "v1" or "v{i}"
	Count     int      // number of images
	Layers    int      // layers per image (per platform)
	LayerSize int64    // bytes of random (incompressible) payload per layer
	Shared    int      // the first Shared layers are the same blobs in every image and platform
	Platforms []string // e.g. {"linux/amd64","linux/arm64/v8"}: push an index; empty = single image
	Docker    bool     // Docker v2 schema 2 media types (manifest list for indexes); false = OCI
	Seed      int64
}

// Image describes one pushed image or index.
type Image struct {
	Ref       string   // "HOST/repo:tag" as pushed
	Digest    string   // digest of the top manifest (index or image), "sha256:..."
	MediaType string   // media type of the top manifest
	Size      int64    // size of the top manifest bytes
	Children  []string // digests of child manifests for an index, else nil
	Blobs     []string // every config and layer digest reachable from it (deduplicated)
	Bytes     int64    // sum of sizes of manifests+configs+layers reachable from it (deduplicated)
}

// singlePlatform is the config platform of non-index images.
const singlePlatform = "linux/amd64"

const imageIndexPlaceholder = "{i}"

// Push generates the images described by s and pushes them to the registry
// at host (plain HTTP), returning them in index order.
func Push(ctx context.Context, host string, s Spec) ([]Image, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("testimages: %w", err)
	}
	mt := ociTypes
	if s.Docker {
		mt = dockerTypes
	}
	platformStrs := s.Platforms
	if len(platformStrs) == 0 {
		platformStrs = []string{singlePlatform}
	}
	platforms := make([]v1.Platform, len(platformStrs))
	for n, ps := range platformStrs {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return nil, fmt.Errorf("testimages: platform %q: %w", ps, err)
		}
		platforms[n] = *p
	}

	// Shared layers depend only on Seed and position, so compute them once.
	shared := make([]layer, s.Shared)
	for n := range shared {
		c, err := newContent(layerID{seed: s.Seed, shared: true, index: n}, s.LayerSize)
		if err != nil {
			return nil, fmt.Errorf("testimages: %w", err)
		}
		shared[n] = layer{content: c, mediaType: mt.layer}
	}

	// One Pusher dedupes blob uploads and reuses connections across images.
	pusher, err := remote.NewPusher(remote.WithContext(ctx), remote.WithJobs(4))
	if err != nil {
		return nil, fmt.Errorf("testimages: %w", err)
	}
	p := &pushJob{spec: s, host: host, mt: mt, platforms: platforms, shared: shared, pusher: pusher}

	// Image 0 goes first so the others can mount the shared layers from
	// its repository instead of uploading them again.
	out := make([]Image, s.Count)
	if out[0], err = p.push(ctx, 0, nil); err != nil {
		return nil, fmt.Errorf("testimages: %w", err)
	}
	ref0, err := p.ref(0)
	if err != nil {
		return nil, fmt.Errorf("testimages: %w", err)
	}
	mountFrom := ref0.Context()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.Count-1, max(4, runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			for i := range next {
				img, err := p.push(ctx, i, &mountFrom)
				if err != nil {
					cancel(err)
					continue // drain so the feeder never blocks
				}
				out[i] = img
			}
		})
	}
feed:
	for i := 1; i < s.Count; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("testimages: %w", err)
	}
	return out, nil
}

func (s Spec) validate() error {
	switch {
	case s.Repo == "" || s.Tag == "":
		return errors.New("spec needs Repo and Tag")
	case s.Count < 1:
		return fmt.Errorf("spec Count %d < 1", s.Count)
	case s.Layers < 1:
		return fmt.Errorf("spec Layers %d < 1", s.Layers)
	case s.LayerSize < 0:
		return fmt.Errorf("spec LayerSize %d < 0", s.LayerSize)
	case s.Shared < 0 || s.Shared > s.Layers:
		return fmt.Errorf("spec Shared %d outside [0, Layers=%d]", s.Shared, s.Layers)
	case s.Count > 1 && !strings.Contains(s.Repo, imageIndexPlaceholder) && !strings.Contains(s.Tag, imageIndexPlaceholder):
		return fmt.Errorf("spec Count %d needs %s in Repo or Tag, or images overwrite each other", s.Count, imageIndexPlaceholder)
	}
	return nil
}

// pushJob holds what every image of one Push call shares.
type pushJob struct {
	spec      Spec
	host      string
	mt        mediaTypes
	platforms []v1.Platform
	shared    []layer
	pusher    *remote.Pusher
}

// ref returns the tag image i is pushed to.
func (p *pushJob) ref(i int) (name.Tag, error) {
	expand := func(t string) string { return strings.ReplaceAll(t, imageIndexPlaceholder, strconv.Itoa(i)) }
	ref := p.host + "/" + expand(p.spec.Repo) + ":" + expand(p.spec.Tag)
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image %d: parse %q: %w", i, ref, err)
	}
	return tag, nil
}

// push builds image i (an index if there are platforms) and pushes it by
// tag; remote.WriteIndex pushes an index's children first, by digest. If
// mountFrom is set, shared layers are first mounted from that repository.
func (p *pushJob) push(ctx context.Context, i int, mountFrom *name.Repository) (Image, error) {
	tag, err := p.ref(i)
	if err != nil {
		return Image{}, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.Reuse(p.pusher)}

	if mountFrom != nil && *mountFrom != tag.Repository {
		for _, l := range p.shared {
			// Falls back to a plain upload if the mount is refused.
			ml := &remote.MountableLayer{Layer: l, Reference: mountFrom.Digest(l.digest.String())}
			if err := remote.WriteLayer(tag.Repository, ml, opts...); err != nil {
				return Image{}, fmt.Errorf("mount shared layer into %s: %w", tag.Repository, err)
			}
		}
	}

	imgs := make([]*image, len(p.platforms))
	children := make([]v1.Image, len(p.platforms))
	for pi := range p.platforms {
		ls := make([]layer, p.spec.Layers)
		copy(ls, p.shared)
		for n := len(p.shared); n < len(ls); n++ {
			c, err := newContent(layerID{seed: p.spec.Seed, image: i, platform: pi, index: n}, p.spec.LayerSize)
			if err != nil {
				return Image{}, fmt.Errorf("image %d: %w", i, err)
			}
			ls[n] = layer{content: c, mediaType: p.mt.layer}
		}
		if imgs[pi], err = newImage(p.mt, p.platforms[pi], ls); err != nil {
			return Image{}, fmt.Errorf("image %d: %w", i, err)
		}
		if children[pi], err = partial.CompressedToImage(imgs[pi]); err != nil {
			return Image{}, fmt.Errorf("image %d: %w", i, err)
		}
	}

	var top partial.Describable
	isIndex := len(p.spec.Platforms) > 0
	if !isIndex {
		top = children[0]
		err = remote.Write(tag, children[0], opts...)
	} else {
		var idx *index
		if idx, err = newIndex(p.mt, children, p.platforms); err != nil {
			return Image{}, fmt.Errorf("image %d: %w", i, err)
		}
		top = idx
		err = remote.WriteIndex(tag, idx, opts...)
	}
	if err != nil {
		return Image{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return describe(tag.String(), top, imgs, isIndex)
}

// describe summarises what was pushed, counting each blob once.
func describe(ref string, top partial.Describable, imgs []*image, isIndex bool) (Image, error) {
	desc, err := partial.Descriptor(top)
	if err != nil {
		return Image{}, fmt.Errorf("describe %s: %w", ref, err)
	}
	out := Image{Ref: ref, Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Size: desc.Size, Bytes: desc.Size}
	seen := map[v1.Hash]bool{}
	add := func(list *[]string, h v1.Hash, size int64) {
		if !seen[h] {
			seen[h] = true
			*list = append(*list, h.String())
			out.Bytes += size
		}
	}
	for _, img := range imgs {
		if isIndex {
			add(&out.Children, img.digest, int64(len(img.manifest)))
		}
		add(&out.Blobs, img.configDigest, int64(len(img.rawCfg)))
		for _, l := range img.order {
			add(&out.Blobs, l.digest, l.csize)
		}
	}
	return out, nil
}
