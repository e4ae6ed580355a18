package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
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
	// Warnings lists attachments left out (only with WalkOptions.SkipBroken).
	Warnings []string
	// Skipped lists the same attachments, each with the reason.
	Skipped []SkippedAttachment
}

// SkippedAttachment is an attachment a walk left out: the registry lists
// it, but says it is absent or serves it invalid.
type SkippedAttachment struct {
	Subject string `json:"subject"` // repository@digest it is attached to
	Kind    string `json:"kind"`    // cosign-signature, …, referrer
	Digest  string `json:"digest,omitempty"`
	Tag     string `json:"tag,omitempty"` // cosign tag
	Reason  string `json:"reason"`
}

func (s SkippedAttachment) what() string {
	if s.Tag != "" {
		repo, _, _ := strings.Cut(s.Subject, "@")
		return fmt.Sprintf("%s %s:%s of %s", s.Kind, repo, s.Tag, s.Subject)
	}
	return fmt.Sprintf("%s %s of %s", s.Kind, s.Digest, s.Subject)
}

// WalkOptions says how far a walk goes.
type WalkOptions struct {
	Jobs int
	// Attachments follows cosign tags and OCI referrers of every manifest,
	// recursively.
	Attachments bool
	// ArtifactTypes, when set, keeps only referrers of these artifact types.
	ArtifactTypes []string
	// SkipBroken leaves out, with a warning, attachments that the registry
	// lists but says are absent (404) or serves invalid (wrong digest,
	// unparsable); without it they fail the walk. Other failures (after
	// retries) fail it either way: an export never silently lacks a
	// signature because a request failed.
	SkipBroken bool
	// Platforms, when set, carries only these platforms of each index: the
	// chosen platform manifests travel alone, under their own digests, as
	// images of their own (platform.go); references in Whole are walked
	// whole all the same (bundles, whose digests must not change).
	Platforms []layout.Platform
	Whole     map[string]bool
}

// walker walks a graph. Each attachment is walked by a child walker whose
// findings join its parent's only when the whole attachment was walked, so
// an attachment left out leaves nothing of itself behind.
type walker struct {
	c      *Client
	opts   WalkOptions
	mu     *sync.Mutex // shared by the whole walk
	g      *Graph
	seen   map[string]bool // attachments recorded: subject|digest|tag
	parent *walker
	// indexes are those platforms were chosen from (top walker only).
	indexes map[v1.Hash]*Node
}

func (w *walker) child() *walker {
	return &walker{c: w.c, opts: w.opts, mu: w.mu, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}, parent: w}
}

// merge adds what a child walk found.
func (w *walker) merge(sub *walker) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d, n := range sub.g.Blobs {
		if have, ok := w.g.Blobs[d]; ok {
			have.Settle(n)
		} else {
			w.g.Blobs[d] = n
		}
	}
	for _, a := range sub.g.Attachments {
		key := a.Subject.String() + "|" + a.Digest.String() + "|" + a.Tag
		if !w.seen[key] {
			w.seen[key] = true
			w.g.Attachments = append(w.g.Attachments, a)
		}
	}
	w.g.Warnings = append(w.g.Warnings, sub.g.Warnings...)
	w.g.Skipped = append(w.g.Skipped, sub.g.Skipped...)
}

// Walk resolves every reference and walks its graph: child manifests of
// indexes (every platform), configs (fetched, being small), layers
// (recorded, to be fetched later by FetchBlob) and, if asked, everything
// attached to any manifest on the way. Manifests keep their exact bytes.
func (c *Client) Walk(ctx context.Context, refs []string, opts WalkOptions) (*Graph, error) {
	w := &walker{c: c, opts: opts, mu: &sync.Mutex{}, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}, indexes: map[v1.Hash]*Node{}}
	images := make([][]layout.Image, len(refs))
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
			choose := len(opts.Platforms) > 0 && !opts.Whole[s]
			if choose && layout.IsIndexType(m.MediaType) {
				images[i], err = w.choose(ctx, ref, m)
				return err
			}
			im := layout.Image{Ref: ref.Name(), Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Raw))}
			if layout.IsIndexType(m.MediaType) {
				if im.Platforms, err = platforms(m); err != nil {
					return fmt.Errorf("%s: %w", ref, err)
				}
			}
			images[i] = []layout.Image{im}
			top := v1.Descriptor{Digest: m.Digest, Size: int64(len(m.Raw)), MediaType: typ(m.MediaType)}
			if err := w.manifest(ctx, ref.Name(), ref.Context(), top, m, 0); err != nil {
				return err
			}
			if choose {
				return w.checkSingle(ref, m)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	// One reference per image; where two walks give one name (a tag and a
	// platform chosen from it), the image as named wins, so that the result
	// does not depend on the order of the references.
	byRef := map[string]int{}
	for _, ims := range images {
		for _, im := range ims {
			j, dup := byRef[im.Ref]
			switch {
			case !dup:
				byRef[im.Ref] = len(w.g.Images)
				w.g.Images = append(w.g.Images, im)
			case w.g.Images[j].Index != nil && (im.Index == nil || im.Index.Digest.String() < w.g.Images[j].Index.Digest.String()):
				w.g.Images[j] = im
			}
		}
	}
	// The indexes platforms were chosen from travel as blobs of their own,
	// unless a whole walk carried them already.
	for d, n := range w.indexes {
		if _, ok := w.g.Blobs[d]; !ok {
			w.g.Blobs[d] = n
		}
	}
	sort.Strings(w.g.Warnings)
	sort.Slice(w.g.Skipped, func(i, j int) bool { return w.g.Skipped[i].what() < w.g.Skipped[j].what() })
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

// claim records that a blob is being handled, reporting false if it already
// was, by this walk or one it is part of.
func (w *walker) claim(n *Node) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := w; x != nil; x = x.parent {
		if have, done := x.g.Blobs[n.Digest]; done {
			have.Settle(n)
			return false
		}
	}
	w.g.Blobs[n.Digest] = n
	return true
}

// Settle makes what is recorded of a blob that manifests name in different
// parts (the 2-byte {} is the config and the layer of OCI artifacts) or
// under different media types (a notation signature's config and a cosign
// signature's) independent of which walk reached it first: walks run
// concurrently, and the table of contents must be the same for the same
// content. The outranking kind is kept (with its content, if it needs it in
// memory), then the least media type.
func (have *Node) Settle(n *Node) {
	switch {
	case n.Kind.Outranks(have.Kind):
		have.Kind, have.MediaType = n.Kind, n.MediaType
		if n.Data != nil {
			have.Data = n.Data
		}
	case n.Kind == have.Kind && n.MediaType < have.MediaType:
		have.MediaType = n.MediaType
	}
}

// manifest records a manifest (fetching it unless m is given), descends into
// what it names, then into what is attached to it. img is the reference the
// walk started from, for messages.
func (w *walker) manifest(ctx context.Context, img string, repo name.Repository, d v1.Descriptor, m *Manifest, depth int) error {
	where := repo.String() + "@" + d.Digest.String()
	if depth > layout.MaxDepth {
		return &InvalidError{What: where, Reason: fmt.Sprintf("graph nested more than %d levels deep", layout.MaxDepth)}
	}
	if m == nil {
		var err error
		if m, err = w.c.GetManifest(ctx, repo.Digest(d.Digest.String())); err != nil {
			return err
		}
		if int64(len(m.Raw)) != d.Size {
			return &layout.IntegrityError{Where: where, Want: d.Digest, Got: fmt.Sprintf("%d bytes instead of %d", len(m.Raw), d.Size)}
		}
	}
	mt := string(d.MediaType)
	if mt == "" {
		mt = m.MediaType
	}
	kids, err := layout.Children(mt, m.Raw)
	if err != nil {
		return &InvalidError{What: where, Reason: err.Error()}
	}
	if !w.claim(&Node{Blob: layout.Blob{Digest: d.Digest, Size: d.Size, MediaType: mt, Kind: layout.KindOf(mt)}, Desc: d, Repo: repo, Data: m.Raw}) {
		return nil
	}
	for _, k := range kids {
		switch k.Kind {
		case layout.KindIndex, layout.KindManifest:
			err = w.manifest(ctx, img, repo, k.Descriptor, nil, depth+1)
		default:
			err = w.blob(ctx, img, repo, k)
		}
		if err != nil {
			return err
		}
	}
	if w.opts.Attachments {
		return w.attachments(ctx, img, repo, d.Digest, depth)
	}
	return nil
}

func (w *walker) blob(ctx context.Context, img string, repo name.Repository, k layout.Child) error {
	n := &Node{Blob: layout.Blob{Digest: k.Digest, Size: k.Size, MediaType: string(k.MediaType), Kind: k.Kind}, Desc: k.Descriptor, Repo: repo}
	where := repo.String() + "@" + k.Digest.String()
	if k.Kind == layout.KindConfig {
		if k.Size > layout.MaxConfigSize {
			return &InvalidError{What: where, Reason: fmt.Sprintf("config of %d bytes, over the %d limit", k.Size, layout.MaxConfigSize)}
		}
		var buf bytes.Buffer
		if err := w.c.FetchBlob(ctx, repo, k.Descriptor, &buf); err != nil {
			return err
		}
		n.Data = buf.Bytes()
	}
	if !w.claim(n) || len(k.URLs) == 0 {
		return nil
	}
	return w.foreign(ctx, img, repo, k)
}

// foreign checks, before anything is written, that a foreign layer (one
// whose descriptor lists URLs) can be carried: the registry holds it, or
// the client may fetch it from an https URL.
func (w *walker) foreign(ctx context.Context, img string, repo name.Repository, k layout.Child) error {
	ok, err := w.c.headBlob(ctx, repo, k.Digest, false)
	if err != nil || ok {
		return err
	}
	fe := &ForeignLayerError{Image: img, Where: repo.String() + "@" + k.Digest.String(), URLs: k.URLs}
	if !w.c.allowForeign {
		fe.Reason = "the registry does not have it, and relocate does not fetch the URLs of foreign layers unless --allow-foreign-layers is given (https only)"
		return fe
	}
	for _, u := range k.URLs {
		if strings.HasPrefix(u, "https://") {
			return nil
		}
	}
	fe.Reason = "the registry does not have it, and none of its URLs is https"
	return fe
}

// attachments finds cosign tags and OCI referrers of subject and walks each.
func (w *walker) attachments(ctx context.Context, img string, repo name.Repository, subject v1.Hash, depth int) error {
	where := repo.String() + "@" + subject.String()
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		kind := layout.CosignSuffixes[suffix]
		tag := layout.CosignTag(subject, kind)
		m, err := w.c.GetManifest(ctx, repo.Tag(tag))
		if errors.As(err, new(*NotFoundError)) {
			continue
		}
		if err == nil {
			err = w.attach(ctx, img, repo, subject, m, kind, tag, depth)
		}
		if err = w.broken(err, SkippedAttachment{Subject: where, Kind: kind, Tag: tag}); err != nil {
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
				err = &InvalidError{What: repo.String() + "@" + d.Digest.String(), Reason: fmt.Sprintf("listed as a referrer, but its subject is not %s", subject)}
			} else if !w.wanted(a.Type) {
				continue
			}
		}
		if err == nil {
			err = w.attach(ctx, img, repo, subject, m, layout.AttachReferrer, "", depth)
		}
		if err = w.broken(err, SkippedAttachment{Subject: where, Kind: layout.AttachReferrer, Digest: d.Digest.String()}); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) wanted(artifactType string) bool {
	return len(w.opts.ArtifactTypes) == 0 || slices.Contains(w.opts.ArtifactTypes, artifactType)
}

// skippable: the registry says the attachment is absent, or serves it
// invalid. Anything else (a registry that keeps failing, a network that
// does) is no reason to export without it.
func skippable(err error) bool {
	var nf *NotFoundError
	var ie *layout.IntegrityError
	var inv *InvalidError
	return errors.As(err, &nf) || errors.As(err, &ie) || errors.As(err, &inv)
}

// broken turns a failed attachment into an error, or, when the user chose
// to export without what the registry says is absent or invalid, into a
// recorded skip.
func (w *walker) broken(err error, s SkippedAttachment) error {
	if err == nil {
		return nil
	}
	switch {
	case !skippable(err):
		if w.opts.SkipBroken {
			return fmt.Errorf("%s: %w (not left out: --skip-broken-referrers leaves out only what the registry says is absent or serves invalid)", s.what(), err)
		}
		return fmt.Errorf("%s: %w", s.what(), err)
	case !w.opts.SkipBroken:
		return fmt.Errorf("%s: %w (use --skip-broken-referrers to export without it)", s.what(), err)
	}
	s.Reason = err.Error()
	w.mu.Lock()
	w.g.Warnings = append(w.g.Warnings, fmt.Sprintf("left out %s: %s", s.what(), s.Reason))
	w.g.Skipped = append(w.g.Skipped, s)
	w.mu.Unlock()
	return nil
}

func (w *walker) attach(ctx context.Context, img string, repo name.Repository, subject v1.Hash, m *Manifest, kind, tag string, depth int) error {
	art := layout.ArtifactOf(m.Raw)
	a := layout.Attachment{Subject: subject, Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Raw)), Kind: kind, Tag: tag, ArtifactType: art.Type, Annotations: art.Annotations}
	key := subject.String() + "|" + a.Digest.String() + "|" + tag
	w.mu.Lock()
	for x := w; x != nil; x = x.parent {
		if x.seen[key] {
			w.mu.Unlock()
			return nil
		}
	}
	w.mu.Unlock()
	sub := w.child()
	sub.seen[key] = true
	sub.g.Attachments = append(sub.g.Attachments, a)
	if err := sub.manifest(ctx, img, repo, v1.Descriptor{Digest: m.Digest, Size: a.Size, MediaType: typ(m.MediaType)}, m, depth+1); err != nil {
		return err
	}
	w.merge(sub)
	return nil
}
