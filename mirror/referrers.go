package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// maxReferrerPages bounds Link pagination against a registry that never ends it.
const maxReferrerPages = 1000

// Referrers lists the manifests whose subject is d: from the referrers API
// when the registry answers it (following Link pagination), else from the
// fallback tag sha256-<hex>.
func (c *Client) Referrers(ctx context.Context, repo name.Repository, d v1.Hash) ([]v1.Descriptor, error) {
	descs, api, err := c.referrersAPI(ctx, repo, d)
	if err != nil || api {
		return descs, err
	}
	idx, err := c.FallbackIndex(ctx, repo, d)
	if err != nil || idx == nil {
		return nil, err
	}
	return idx.Manifests, nil
}

// ReferrersAPI reports whether a registry answers the referrers API, and
// what it lists for d.
func (c *Client) ReferrersAPI(ctx context.Context, repo name.Repository, d v1.Hash) ([]v1.Descriptor, bool, error) {
	return c.referrersAPI(ctx, repo, d)
}

func (c *Client) referrersAPI(ctx context.Context, repo name.Repository, d v1.Hash) ([]v1.Descriptor, bool, error) {
	var out []v1.Descriptor
	next := c.url(repo, "referrers/"+d.String())
	for page := 0; next != ""; page++ {
		if page == maxReferrerPages {
			return nil, true, fmt.Errorf("referrers of %s@%s: more than %d pages", repo, d, maxReferrerPages)
		}
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Accept", string(types.OCIImageIndex))
		resp, err := c.do(ctx, repo, false, "", req)
		if err != nil {
			return nil, false, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
		if page == 0 && resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			return nil, false, nil
		}
		ct := resp.Header.Get("Content-Type")
		if err := statusErr(resp, http.StatusOK); err != nil {
			resp.Body.Close()
			return nil, false, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
		if page == 0 && !strings.HasPrefix(ct, string(types.OCIImageIndex)) {
			// Some registries answer unknown routes with 200 and an HTML page.
			resp.Body.Close()
			return nil, false, nil
		}
		var idx v1.IndexManifest
		err = json.NewDecoder(io.LimitReader(resp.Body, layout.MaxManifestSize)).Decode(&idx)
		resp.Body.Close()
		if err != nil {
			return nil, true, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
		out = append(out, idx.Manifests...)
		next, err = nextLink(resp)
		if err != nil {
			return nil, true, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
	}
	return out, true, nil
}

// nextLink resolves an RFC 5988 Link header with rel="next".
func nextLink(resp *http.Response) (string, error) {
	for _, l := range resp.Header.Values("Link") {
		for _, part := range strings.Split(l, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
			if err != nil {
				return "", fmt.Errorf("bad Link header %q: %w", l, err)
			}
			return resp.Request.URL.ResolveReference(u).String(), nil
		}
	}
	return "", nil
}

// FallbackIndex returns the index under the referrers fallback tag of d, or
// nil when there is none.
func (c *Client) FallbackIndex(ctx context.Context, repo name.Repository, d v1.Hash) (*v1.IndexManifest, error) {
	m, err := c.GetManifest(ctx, repo.Tag(layout.FallbackTag(d)))
	if errors.As(err, new(*NotFoundError)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return nil, fmt.Errorf("%s:%s: not an index: %w", repo, layout.FallbackTag(d), err)
	}
	return &idx, nil
}

// AddToFallbackIndex adds a referrer to the fallback index of its subject,
// keeping every entry already there.
func (c *Client) AddToFallbackIndex(ctx context.Context, repo name.Repository, subject v1.Hash, ref v1.Descriptor) error {
	idx, err := c.FallbackIndex(ctx, repo, subject)
	if err != nil {
		return err
	}
	if idx == nil {
		idx = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	}
	for _, e := range idx.Manifests {
		if e.Digest == ref.Digest {
			return nil
		}
	}
	idx.Manifests = append(idx.Manifests, ref)
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return c.PutManifest(ctx, repo, layout.FallbackTag(subject), string(types.OCIImageIndex), raw)
}
