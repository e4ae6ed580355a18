package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// Pusher puts content into a registry's repositories, the mirror image of
// Walk. It remembers, for one run, what each repository holds, so that a
// blob goes up once and is mounted elsewhere, and nothing is asked twice:
// into an empty registry a small image costs one POST and one PUT a blob
// and one PUT for its manifest. It is safe for concurrent use.
type Pusher struct {
	c *Client

	mu      sync.Mutex
	holders map[v1.Hash][]name.Repository // repositories known to hold a blob
	present map[string]bool               // repository@digest of manifests known there
	api     map[string]bool               // registry → answers the referrers API
	// noMount lists registries that took content where a mount from a
	// repository holding the blob was asked: there, a blob's presence is
	// asked with HEAD, since a mount from the repository itself cannot
	// answer it.
	noMount map[string]bool
	stats   PushStats

	// Fallback indexes are read, extended and written back: one at a time.
	fallbackMu sync.Mutex
}

// PushStats counts what a Pusher did.
type PushStats struct {
	Uploaded, Mounted, Present int
	Bytes                      int64
}

// NewPusher returns a Pusher that pushes through c.
func (c *Client) NewPusher() *Pusher {
	return &Pusher{c: c, holders: map[v1.Hash][]name.Repository{}, present: map[string]bool{}, api: map[string]bool{}, noMount: map[string]bool{}}
}

// Stats is what the Pusher did so far.
func (p *Pusher) Stats() PushStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Blob makes every repository of repos hold b: mounted from a repository
// that holds it already, else uploaded once (checking the content against
// its digest when it is not verified yet), then mounted in the others. It
// reports whether content was read. An *layout.IntegrityError is never retried
// and leaves nothing at the registry.
func (p *Pusher) Blob(ctx context.Context, repos []name.Repository, b Blob) (read bool, err error) {
	for _, r := range repos {
		from, known := p.source(r, b.Desc.Digest)
		if known {
			p.count(Present, 0)
			continue
		}
		if from == r.RepositoryStr() && p.mountless(r) {
			ok, err := p.c.BlobExists(ctx, r, b.Desc.Digest)
			if err != nil {
				return read, err
			}
			if ok {
				p.count(Present, 0)
				p.hold(r, b.Desc.Digest)
				continue
			}
			from = ""
		}
		out, err := p.c.PushBlob(ctx, r, b, from)
		if err != nil {
			return read, err
		}
		if out == Uploaded && from != "" && from != r.RepositoryStr() {
			p.mu.Lock()
			p.noMount[r.RegistryStr()] = true
			p.mu.Unlock()
		}
		read = read || out == Uploaded
		p.count(out, b.Desc.Size)
		p.hold(r, b.Desc.Digest)
	}
	return read, nil
}

// source picks where to mount a blob from for repo: a repository of the
// same registry that holds it, else repo itself, which asks whether repo
// holds it already at no extra cost. known is set when repo holds it.
func (p *Pusher) source(repo name.Repository, d v1.Hash) (from string, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	from = repo.RepositoryStr()
	for _, h := range p.holders[d] {
		switch {
		case h.String() == repo.String():
			return "", true
		case h.RegistryStr() == repo.RegistryStr():
			from = h.RepositoryStr()
		}
	}
	return from, false
}

func (p *Pusher) mountless(repo name.Repository) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.noMount[repo.RegistryStr()]
}

func (p *Pusher) hold(repo name.Repository, d v1.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holders[d] = append(p.holders[d], repo)
}

func (p *Pusher) count(o Outcome, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch o {
	case Uploaded:
		p.stats.Uploaded++
		p.stats.Bytes += size
	case Mounted:
		p.stats.Mounted++
	default:
		p.stats.Present++
	}
}

// Manifest puts a manifest by digest, once a run, and reports whether the
// registry indexed its subject itself (the OCI-Subject header).
func (p *Pusher) Manifest(ctx context.Context, repo name.Repository, d v1.Hash, mediaType string, raw []byte) (indexed bool, err error) {
	key := repo.String() + "@" + d.String()
	p.mu.Lock()
	done := p.present[key]
	p.mu.Unlock()
	if done {
		return false, nil
	}
	if indexed, err = p.c.PutReferrer(ctx, repo, d, mediaType, raw); err != nil {
		return false, err
	}
	p.mu.Lock()
	p.present[key] = true
	p.mu.Unlock()
	return indexed, nil
}

// Tag points tag at a manifest, putting its bytes under the tag: the
// manifest and its tag in one request. current is what the tag resolved
// to before, if anything; a tag already there is not touched. It reports
// whether the tag moved.
func (p *Pusher) Tag(ctx context.Context, repo name.Repository, tag string, d v1.Hash, mediaType string, raw []byte, current *v1.Hash) (bool, error) {
	if current != nil && *current == d {
		return false, nil
	}
	if err := p.c.PutManifest(ctx, repo, tag, mediaType, raw); err != nil {
		return false, err
	}
	p.mu.Lock()
	p.present[repo.String()+"@"+d.String()] = true
	p.mu.Unlock()
	return true, nil
}

// List makes a referrer discoverable from its subject: registries with the
// referrers API index it themselves (indexed, or the API answers); for the
// others it is added to the fallback tag's index, keeping the entries
// already there.
func (p *Pusher) List(ctx context.Context, repo name.Repository, a layout.Attachment, indexed bool) error {
	if a.Kind != layout.AttachReferrer || indexed {
		return nil
	}
	reg := repo.RegistryStr()
	p.mu.Lock()
	api, known := p.api[reg]
	p.mu.Unlock()
	if !known {
		var err error
		if _, api, err = p.c.ReferrersAPI(ctx, repo, a.Subject); err != nil {
			return err
		}
		p.mu.Lock()
		p.api[reg] = api
		p.mu.Unlock()
	}
	if api {
		return nil
	}
	p.fallbackMu.Lock()
	defer p.fallbackMu.Unlock()
	return p.c.AddToFallbackIndex(ctx, repo, a.Subject, v1.Descriptor{
		MediaType: types.MediaType(a.MediaType), Size: a.Size, Digest: a.Digest,
		ArtifactType: a.ArtifactType, Annotations: a.Annotations,
	})
}

// ErrNotDiscoverable is an attachment that cannot be found from its
// subject after a push.
var ErrNotDiscoverable = errors.New("not discoverable")

// Discoverable checks that every attachment can be found from its subject
// in repo, as a verifier there would look for it: a cosign tag resolving
// to it, or a referrer listed for its subject.
func (p *Pusher) Discoverable(ctx context.Context, repo name.Repository, attached []layout.Attachment) error {
	listed := map[v1.Hash]map[v1.Hash]bool{}
	for _, a := range attached {
		if a.Tag != "" {
			d, ok, err := p.c.ManifestDigest(ctx, repo, a.Tag)
			if err != nil {
				return err
			}
			if !ok || d != a.Digest {
				return fmt.Errorf("%s:%s: %s of %s %w after import", repo, a.Tag, a.Kind, a.Subject, ErrNotDiscoverable)
			}
			continue
		}
		if listed[a.Subject] == nil {
			descs, err := p.c.Referrers(ctx, repo, a.Subject)
			if err != nil {
				return err
			}
			listed[a.Subject] = map[v1.Hash]bool{}
			for _, d := range descs {
				listed[a.Subject][d.Digest] = true
			}
		}
		if !listed[a.Subject][a.Digest] {
			return fmt.Errorf("%s@%s: referrer %s (%s) is %w from its subject after import", repo, a.Subject, a.Digest, a.ArtifactType, ErrNotDiscoverable)
		}
	}
	return nil
}
