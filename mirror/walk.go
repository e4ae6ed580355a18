package mirror

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	"golang.org/x/sync/errgroup"
)

// Node is one blob of a graph and where to fetch it from.
type Node struct {
	layout.Blob
	Desc v1.Descriptor   // as a parent named it (URLs of foreign layers included)
	Repo name.Repository // a repository that holds it
	Data []byte          // content of manifests and configs, checked; nil for layers
}

// Graph is the union of the graphs of several references, each blob once.
type Graph struct {
	Images []layout.Image
	Blobs  map[v1.Hash]*Node
}

// Walk resolves every reference and walks its graph: child manifests of
// indexes (every platform), configs (fetched, being small) and layers
// (recorded, to be fetched later by FetchBlob). Manifests keep their exact
// bytes. Up to jobs references are walked at once.
func (c *Client) Walk(ctx context.Context, refs []string, jobs int) (*Graph, error) {
	g := &Graph{Blobs: map[v1.Hash]*Node{}}
	var mu sync.Mutex
	images := make([]layout.Image, len(refs))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(jobs, 1))
	for i, s := range refs {
		eg.Go(func() error {
			ref, err := c.ParseReference(s)
			if err != nil {
				return fmt.Errorf("reference %q: %w", s, err)
			}
			m, err := c.GetManifest(ctx, ref)
			if err != nil {
				return err
			}
			im := layout.Image{Ref: ref.Name(), Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Raw))}
			if layout.IsIndexType(m.MediaType) {
				im.Platforms, err = platforms(m)
				if err != nil {
					return fmt.Errorf("%s: %w", ref, err)
				}
			}
			images[i] = im
			top := v1.Descriptor{Digest: m.Digest, Size: int64(len(m.Raw)), MediaType: typ(m.MediaType)}
			return c.walk(ctx, g, &mu, ref.Context(), top, layout.KindOf(m.MediaType), m, 0)
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, im := range images {
		if seen[im.Ref] {
			continue
		}
		seen[im.Ref] = true
		g.Images = append(g.Images, im)
	}
	return g, nil
}

func platforms(m *Manifest) ([]string, error) {
	kids, err := layout.Children(m.MediaType, m.Raw)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range kids {
		if k.Platform != nil {
			out = append(out, k.Platform.String())
		}
	}
	return out, nil
}

// walk records a manifest (fetching it unless m is given) and descends.
func (c *Client) walk(ctx context.Context, g *Graph, mu *sync.Mutex, repo name.Repository, d v1.Descriptor, kind layout.Kind, m *Manifest, depth int) error {
	if depth > 8 {
		return fmt.Errorf("%s: indexes nested too deeply at %s", repo, d.Digest)
	}
	mu.Lock()
	_, done := g.Blobs[d.Digest]
	mu.Unlock()
	if done {
		return nil
	}
	if m == nil {
		var err error
		if m, err = c.GetManifest(ctx, repo.Digest(d.Digest.String())); err != nil {
			return err
		}
		if int64(len(m.Raw)) != d.Size {
			return &IntegrityError{Where: repo.String() + "@" + d.Digest.String(), Want: d.Digest, Got: fmt.Sprintf("%d bytes instead of %d", len(m.Raw), d.Size)}
		}
	}
	mt := string(d.MediaType)
	if mt == "" {
		mt = m.MediaType
	}
	kids, err := layout.Children(mt, m.Raw)
	if err != nil {
		return fmt.Errorf("%s@%s: %w", repo, d.Digest, err)
	}
	mu.Lock()
	g.Blobs[d.Digest] = &Node{Blob: layout.Blob{Digest: d.Digest, Size: d.Size, MediaType: mt, Kind: kind}, Desc: d, Repo: repo, Data: m.Raw}
	mu.Unlock()
	for _, k := range kids {
		switch k.Kind {
		case layout.KindIndex, layout.KindManifest:
			if err := c.walk(ctx, g, mu, repo, k.Descriptor, k.Kind, nil, depth+1); err != nil {
				return err
			}
		default:
			if err := c.addBlob(ctx, g, mu, repo, k); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Client) addBlob(ctx context.Context, g *Graph, mu *sync.Mutex, repo name.Repository, k layout.Child) error {
	mu.Lock()
	_, done := g.Blobs[k.Digest]
	mu.Unlock()
	if done {
		return nil
	}
	n := &Node{Blob: layout.Blob{Digest: k.Digest, Size: k.Size, MediaType: string(k.MediaType), Kind: k.Kind}, Desc: k.Descriptor, Repo: repo}
	if k.Kind == layout.KindConfig {
		if k.Size > layout.MaxConfigSize {
			return fmt.Errorf("%s@%s: config of %d bytes, over the %d limit", repo, k.Digest, k.Size, layout.MaxConfigSize)
		}
		var buf bytes.Buffer
		if err := c.FetchBlob(ctx, repo, k.Descriptor, &buf); err != nil {
			return err
		}
		n.Data = buf.Bytes()
	}
	mu.Lock()
	if _, done := g.Blobs[k.Digest]; !done {
		g.Blobs[k.Digest] = n
	}
	mu.Unlock()
	return nil
}
