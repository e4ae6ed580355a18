package mirror

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Hold records that repo holds blob d (the caller saw it there), so that
// the Pusher neither asks nor pushes it again, and mounts from there.
func (p *Pusher) Hold(repo name.Repository, d v1.Hash) { p.hold(repo, d) }

// Mount makes repo hold blob d, taken from the repository from of the
// same registry, without content: for a blob relocate has no bytes of (a
// delta expects it at the site). It reports whether the registry mounted
// it; one that opens an upload session instead (it does not mount) sees
// the session cancelled.
func (p *Pusher) Mount(ctx context.Context, repo name.Repository, d v1.Hash, from name.Repository) (bool, error) {
	where := repo.String() + "@" + d.String()
	if from.RegistryStr() != repo.RegistryStr() {
		return false, fmt.Errorf("%s: cannot mount from %s, another registry", where, from)
	}
	q := "?mount=" + url.QueryEscape(d.String()) + "&from=" + url.QueryEscape(from.RepositoryStr())
	mounted := false
	var loc *url.URL
	err := p.c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodPost, p.c.url(repo, "blobs/uploads/"+q), nil)
		resp, err := p.c.do(ctx, repo, true, from.RepositoryStr(), req)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			mounted = true
			return nil
		}
		if err := statusErr(resp, http.StatusAccepted); err != nil {
			return fmt.Errorf("%s: mounting from %s: %w", where, from.RepositoryStr(), err)
		}
		loc, _ = resp.Location()
		return nil
	})
	if err != nil {
		return false, err
	}
	if !mounted {
		p.c.cancelUpload(ctx, repo, loc)
		return false, nil
	}
	p.count(Mounted, 0)
	p.hold(repo, d)
	return true, nil
}
