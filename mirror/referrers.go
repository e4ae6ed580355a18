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

// A referrers listing is bounded, whatever a registry sends: pages (against
// pagination that never ends), bytes and entries in all (against pages that
// pile up: 1,000 pages of 4 MiB would be 4 GB in memory).
const (
	maxReferrerPages   = 1000
	maxReferrerBytes   = 16 << 20
	maxReferrerEntries = 10000
)

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
	if len(idx.Manifests) > maxReferrerEntries {
		return nil, &InvalidError{What: fmt.Sprintf("referrers of %s@%s", repo, d), Reason: fmt.Sprintf("the fallback index lists more than %d entries", maxReferrerEntries)}
	}
	return idx.Manifests, nil
}

// ReferrersAPI reports whether a registry answers the referrers API, and
// what it lists for d.
func (c *Client) ReferrersAPI(ctx context.Context, repo name.Repository, d v1.Hash) ([]v1.Descriptor, bool, error) {
	return c.referrersAPI(ctx, repo, d)
}

func (c *Client) referrersAPI(ctx context.Context, repo name.Repository, d v1.Hash) ([]v1.Descriptor, bool, error) {
	where := fmt.Sprintf("referrers of %s@%s", repo, d)
	var out []v1.Descriptor
	var total int64
	next := c.url(repo, "referrers/"+d.String())
	for page := 0; next != ""; page++ {
		if page == maxReferrerPages {
			return nil, true, &InvalidError{What: where, Reason: fmt.Sprintf("more than %d pages", maxReferrerPages)}
		}
		var idx v1.IndexManifest
		var link string
		api := true
		err := c.retry1(ctx, func() error {
			req, _ := http.NewRequest(http.MethodGet, next, nil)
			req.Header.Set("Accept", string(types.OCIImageIndex))
			resp, err := c.do(ctx, repo, false, "", req)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			defer resp.Body.Close()
			if page == 0 && resp.StatusCode == http.StatusNotFound {
				api = false
				return nil
			}
			ct := resp.Header.Get("Content-Type")
			if err := statusErr(resp, http.StatusOK); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if page == 0 && !strings.HasPrefix(ct, string(types.OCIImageIndex)) {
				// Some registries answer unknown routes with 200 and an HTML page.
				api = false
				return nil
			}
			limit := min(int64(layout.MaxManifestSize), maxReferrerBytes-total)
			body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if int64(len(body)) > limit {
				if limit < layout.MaxManifestSize {
					return &InvalidError{What: where, Reason: fmt.Sprintf("the listing is larger than %d MiB in all", maxReferrerBytes>>20)}
				}
				return &InvalidError{What: where, Reason: fmt.Sprintf("a page is larger than %d bytes", layout.MaxManifestSize)}
			}
			total += int64(len(body))
			if err := json.Unmarshal(body, &idx); err != nil {
				return &InvalidError{What: where, Reason: "not an image index: " + err.Error()}
			}
			if link, err = nextLink(resp); err != nil {
				return &InvalidError{What: where, Reason: err.Error()}
			}
			return nil
		})
		if err != nil {
			return nil, true, err
		}
		if !api {
			return nil, false, nil
		}
		if len(out)+len(idx.Manifests) > maxReferrerEntries {
			return nil, true, &InvalidError{What: where, Reason: fmt.Sprintf("more than %d entries", maxReferrerEntries)}
		}
		out = append(out, idx.Manifests...)
		next = link
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
		return nil, &InvalidError{What: repo.String() + ":" + layout.FallbackTag(d), Reason: "not an index: " + err.Error()}
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
