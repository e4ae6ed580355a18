package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	// File holds a layer read from local media (a thick bundle), already
	// checked against its digest; Repo is then unset.
	File string
}

// Graph is the union of the graphs of several references, each blob once.
type Graph struct {
	Images      []layout.Image
	Blobs       map[v1.Hash]*Node
	Attachments []layout.Attachment
	// Warnings lists attachments left out because they could not be fetched
	// (only with WalkOptions.SkipBroken).
	Warnings []string
}

// WalkOptions says how far a walk goes.
type WalkOptions struct {
	Jobs int
	// Attachments follows cosign tags and OCI referrers of every manifest,
	// recursively.
	Attachments bool
	// ArtifactTypes, when set, keeps only referrers of these artifact types.
	ArtifactTypes []string
	// SkipBroken leaves out, with a warning, attachments that are listed but
	// cannot be fetched; without it they fail the walk.
	SkipBroken bool
}

type walker struct {
	c    *Client
	opts WalkOptions
	mu   sync.Mutex
	g    *Graph
	seen map[string]bool // attachments recorded: subject|digest|tag
}

// Walk resolves every reference and walks its graph: child manifests of
// indexes (every platform), configs (fetched, being small), layers
// (recorded, to be fetched later by FetchBlob) and, if asked, everything
// attached to any manifest on the way. Manifests keep their exact bytes.
func (c *Client) Walk(ctx context.Context, refs []string, opts WalkOptions) (*Graph, error) {
	w := &walker{c: c, opts: opts, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}}
	images := make([]layout.Image, len(refs))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(opts.Jobs, 1))
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
				if im.Platforms, err = platforms(m); err != nil {
					return fmt.Errorf("%s: %w", ref, err)
				}
			}
			images[i] = im
			top := v1.Descriptor{Digest: m.Digest, Size: int64(len(m.Raw)), MediaType: typ(m.MediaType)}
			return w.manifest(ctx, ref.Context(), top, m, 0)
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, im := range images {
		if !seen[im.Ref] {
			seen[im.Ref] = true
			w.g.Images = append(w.g.Images, im)
		}
	}
	sort.Strings(w.g.Warnings)
	return w.g, nil
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

// claim records that a blob is being handled, reporting false if it already was.
func (w *walker) claim(n *Node) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, done := w.g.Blobs[n.Digest]; done {
		return false
	}
	w.g.Blobs[n.Digest] = n
	return true
}

// manifest records a manifest (fetching it unless m is given), descends into
// what it names, then into what is attached to it.
func (w *walker) manifest(ctx context.Context, repo name.Repository, d v1.Descriptor, m *Manifest, depth int) error {
	if depth > layout.MaxDepth {
		return fmt.Errorf("%s@%s: graph nested more than %d levels deep", repo, d.Digest, layout.MaxDepth)
	}
	if m == nil {
		var err error
		if m, err = w.c.GetManifest(ctx, repo.Digest(d.Digest.String())); err != nil {
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
	if !w.claim(&Node{Blob: layout.Blob{Digest: d.Digest, Size: d.Size, MediaType: mt, Kind: layout.KindOf(mt)}, Desc: d, Repo: repo, Data: m.Raw}) {
		return nil
	}
	for _, k := range kids {
		switch k.Kind {
		case layout.KindIndex, layout.KindManifest:
			err = w.manifest(ctx, repo, k.Descriptor, nil, depth+1)
		default:
			err = w.blob(ctx, repo, k)
		}
		if err != nil {
			return err
		}
	}
	if w.opts.Attachments {
		return w.attachments(ctx, repo, d.Digest, depth)
	}
	return nil
}

func (w *walker) blob(ctx context.Context, repo name.Repository, k layout.Child) error {
	n := &Node{Blob: layout.Blob{Digest: k.Digest, Size: k.Size, MediaType: string(k.MediaType), Kind: k.Kind}, Desc: k.Descriptor, Repo: repo}
	if k.Kind == layout.KindConfig {
		if k.Size > layout.MaxConfigSize {
			return fmt.Errorf("%s@%s: config of %d bytes, over the %d limit", repo, k.Digest, k.Size, layout.MaxConfigSize)
		}
		var buf bytes.Buffer
		if err := w.c.FetchBlob(ctx, repo, k.Descriptor, &buf); err != nil {
			return err
		}
		n.Data = buf.Bytes()
	}
	w.claim(n)
	return nil
}

// attachments finds cosign tags and OCI referrers of subject and walks each.
func (w *walker) attachments(ctx context.Context, repo name.Repository, subject v1.Hash, depth int) error {
	where := repo.String() + "@" + subject.String()
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		kind := layout.CosignSuffixes[suffix]
		tag := layout.CosignTag(subject, kind)
		m, err := w.c.GetManifest(ctx, repo.Tag(tag))
		if errors.As(err, new(*NotFoundError)) {
			continue
		}
		if err == nil {
			err = w.attach(ctx, repo, subject, m, kind, tag, depth)
		}
		if err = w.broken(err, fmt.Sprintf("%s %s:%s of %s", kind, repo, tag, where)); err != nil {
			return err
		}
	}
	refs, err := w.c.Referrers(ctx, repo, subject)
	if err != nil {
		return fmt.Errorf("listing referrers of %s: %w", where, err)
	}
	for _, d := range refs {
		m, err := w.c.GetManifest(ctx, repo.Digest(d.Digest.String()))
		if err == nil {
			if a := layout.ArtifactOf(m.Raw); a.Subject == nil || *a.Subject != subject {
				err = fmt.Errorf("listed as a referrer, but its subject is not %s", subject)
			} else if !w.wanted(a.Type) {
				continue
			}
		}
		if err == nil {
			err = w.attach(ctx, repo, subject, m, layout.AttachReferrer, "", depth)
		}
		if err = w.broken(err, fmt.Sprintf("referrer %s of %s", d.Digest, where)); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) wanted(artifactType string) bool {
	return len(w.opts.ArtifactTypes) == 0 || slices.Contains(w.opts.ArtifactTypes, artifactType)
}

// broken turns a failed attachment into an error, or into a warning when
// the user chose to export without what cannot be fetched.
func (w *walker) broken(err error, what string) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	if !w.opts.SkipBroken {
		return fmt.Errorf("%s (use --skip-broken-referrers to export without it)", msg)
	}
	w.mu.Lock()
	w.g.Warnings = append(w.g.Warnings, "left out "+msg)
	w.mu.Unlock()
	return nil
}

func (w *walker) attach(ctx context.Context, repo name.Repository, subject v1.Hash, m *Manifest, kind, tag string, depth int) error {
	art := layout.ArtifactOf(m.Raw)
	a := layout.Attachment{Subject: subject, Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Raw)), Kind: kind, Tag: tag, ArtifactType: art.Type, Annotations: art.Annotations}
	key := subject.String() + "|" + a.Digest.String() + "|" + tag
	w.mu.Lock()
	dup := w.seen[key]
	w.seen[key] = true
	if !dup {
		w.g.Attachments = append(w.g.Attachments, a)
	}
	w.mu.Unlock()
	if dup {
		return nil
	}
	return w.manifest(ctx, repo, v1.Descriptor{Digest: m.Digest, Size: a.Size, MediaType: typ(m.MediaType)}, m, depth+1)
}
