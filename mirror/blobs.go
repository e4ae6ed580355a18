package mirror

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// ForeignLayerError is a foreign (non-distributable) layer that the
// registry does not hold and that relocate may not fetch from its URLs.
type ForeignLayerError struct {
	Image  string // the image it belongs to, if known
	Where  string // repository@digest
	URLs   []string
	Reason string
}

func (e *ForeignLayerError) Error() string {
	img := ""
	if e.Image != "" {
		img = "image " + e.Image + ": "
	}
	return fmt.Sprintf("%sforeign layer %s (URLs %s): %s", img, e.Where, strings.Join(e.URLs, ", "), e.Reason)
}

// fetch is one blob being copied to w, across attempts: what was written
// stays written, and the next attempt asks for the rest.
type fetch struct {
	w     io.Writer
	h     hash.Hash
	desc  v1.Descriptor
	where string
	n     int64
}

// Write passes content on, except the bytes that complete the blob when it
// does not match its digest: a consumer that stops reading at the size (an
// archive entry) must never receive a complete body that does not match.
func (f *fetch) Write(p []byte) (int, error) {
	if f.n+int64(len(p)) >= f.desc.Size {
		f.h.Write(p)
		if got := fmt.Sprintf("%x", f.h.Sum(nil)); got != f.desc.Digest.Hex {
			return 0, &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: f.desc.Digest.Algorithm + ":" + got}
		}
		n, err := f.w.Write(p)
		f.n += int64(n)
		return n, err
	}
	n, err := f.w.Write(p)
	f.h.Write(p[:n])
	f.n += int64(n)
	return n, err
}

// writeErr marks a failure to write where the blob goes: not the network's
// fault, so not retried.
type writeErr struct{ w io.Writer }

func (w writeErr) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = &sourceError{err: err}
	}
	return n, err
}

// copy reads the rest of the blob from body.
func (f *fetch) copy(body io.Reader) error {
	if _, err := io.Copy(f, io.LimitReader(body, f.desc.Size-f.n)); err != nil {
		if errors.As(err, new(*layout.IntegrityError)) || errors.As(err, new(*sourceError)) {
			return err
		}
		return fmt.Errorf("%s: %w", f.where, err)
	}
	if f.n < f.desc.Size {
		return &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: fmt.Sprintf("%d bytes instead of %d", f.n, f.desc.Size)}
	}
	// The content must end here. (A connection lost right at the end leaves
	// the question open; the digest still decides.)
	var one [1]byte
	if n, _ := io.ReadFull(body, one[:]); n > 0 {
		return &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: fmt.Sprintf("more than %d bytes", f.desc.Size)}
	}
	return nil
}

func (f *fetch) finish() error {
	if f.n != f.desc.Size {
		return &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: fmt.Sprintf("%d bytes instead of %d", f.n, f.desc.Size)}
	}
	if got := fmt.Sprintf("%x", f.h.Sum(nil)); got != f.desc.Digest.Hex {
		return &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: f.desc.Digest.Algorithm + ":" + got}
	}
	return nil
}

// response starts reading a blob response at f.n: a 206 must start there;
// a 200 (a server that ignores Range) is read from its start and the part
// already written is skipped.
func (f *fetch) response(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != f.desc.Size {
			return &layout.IntegrityError{Where: f.where, Want: f.desc.Digest, Got: fmt.Sprintf("%d bytes announced instead of %d", resp.ContentLength, f.desc.Size)}
		}
		if f.n > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, f.n); err != nil {
				return fmt.Errorf("%s: %w", f.where, err)
			}
		}
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != f.n {
			return fmt.Errorf("%s: asked for the bytes from %d, the server sent range %q", f.where, f.n, resp.Header.Get("Content-Range"))
		}
	default:
		return fmt.Errorf("%s: %w", f.where, statusErr(resp, http.StatusOK))
	}
	return f.copy(resp.Body)
}

func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func (f *fetch) request(ctx context.Context, u string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if f.n > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", f.n, f.desc.Size-1))
	}
	return req
}

// FetchBlob copies a blob to w, checking its size and digest as it streams.
// A transfer cut short goes on from where it stopped (a Range request), so
// nothing is written twice. A foreign layer the registry does not have is
// fetched from its URLs only if the client allows foreign layers.
func (c *Client) FetchBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, w io.Writer) error {
	h, err := layout.NewHasher(desc.Digest)
	if err != nil {
		return err
	}
	where := repo.String() + "@" + desc.Digest.String()
	f := &fetch{w: writeErr{w}, h: h, desc: desc, where: where}
	err = c.retry(ctx, func() (bool, error) {
		before := f.n
		req := f.request(ctx, c.url(repo, "blobs/"+desc.Digest.String()))
		resp, err := c.do(ctx, repo, false, "", req)
		if err != nil {
			return false, fmt.Errorf("%s: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return false, &NotFoundError{What: "blob " + where}
		}
		err = f.response(resp)
		return f.n > before, err
	})
	if errors.As(err, new(*NotFoundError)) && len(desc.URLs) > 0 && f.n == 0 {
		return c.fetchForeign(ctx, f, repo)
	}
	if err != nil {
		return err
	}
	return f.finish()
}

// fetchForeign fetches a foreign layer from the https URLs its descriptor
// lists, without credentials and without following a redirect to another
// host or to plain HTTP.
func (c *Client) fetchForeign(ctx context.Context, f *fetch, repo name.Repository) error {
	fe := &ForeignLayerError{Where: f.where, URLs: f.desc.URLs}
	if !c.allowForeign {
		fe.Reason = "the registry does not have it, and relocate fetches the URLs of foreign layers only with --allow-foreign-layers"
		return fe
	}
	var errs []error
	for _, u := range f.desc.URLs {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" {
			errs = append(errs, fmt.Errorf("%q: only https URLs are fetched", u))
			continue
		}
		hc := &http.Client{Transport: c.base, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, pu.Host) {
				return &ForeignLayerError{Where: f.where, URLs: f.desc.URLs, Reason: fmt.Sprintf("%s redirects to %s, another host or not https", u, req.URL.Redacted())}
			}
			return nil
		}}
		err = c.retry(ctx, func() (bool, error) {
			before := f.n
			resp, err := hc.Do(f.request(ctx, u))
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			err = f.response(resp)
			return f.n > before, err
		})
		if err == nil {
			return f.finish()
		}
		if errors.As(err, new(*layout.IntegrityError)) || errors.As(err, new(*sourceError)) {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	fe.Reason = "not fetched: " + errors.Join(errs...).Error()
	if len(errs) == 1 {
		fe.Reason = "not fetched: " + errs[0].Error()
	}
	return fe
}

// uploadBody is what an upload sends: at most the blob's size from the
// source, hashed on the way. A failure to read the source ends the body
// cleanly, so that the registry keeps a session relocate can still cancel.
type uploadBody struct {
	mu  sync.Mutex
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
	eof bool
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.eof {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
		return n, io.EOF
	}
	return n, err
}

// check reports how the content sent compares with desc once the
// registry has received it all; src is probed for content past the size.
func (b *uploadBody) check(src io.Reader, desc v1.Descriptor, where string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if b.n < desc.Size {
		return &layout.IntegrityError{Where: where, Want: desc.Digest, Got: fmt.Sprintf("%d bytes instead of %d", b.n, desc.Size)}
	}
	var one [1]byte
	if n, _ := io.ReadFull(src, one[:]); n > 0 {
		return &layout.IntegrityError{Where: where, Want: desc.Digest, Got: fmt.Sprintf("more than %d bytes", desc.Size)}
	}
	if got := fmt.Sprintf("%x", b.h.Sum(nil)); got != desc.Digest.Hex {
		return &layout.IntegrityError{Where: where, Want: desc.Digest, Got: desc.Digest.Algorithm + ":" + got}
	}
	return nil
}

// sessionLost is an upload session the registry no longer knows (a retried
// request after one it may have seen in part): the upload starts again.
type sessionLost struct{ err error }

func (e *sessionLost) Error() string { return e.err.Error() }
func (e *sessionLost) Unwrap() error { return e.err }

// Blob is content to push.
type Blob struct {
	Desc v1.Descriptor
	// Open returns the content from its start; an upload that must start
	// again calls it again.
	Open func() (io.Reader, error)
	// Verified says the content was checked against Desc already (held in
	// memory, or hashed before): it goes up in one PUT. Content not yet
	// checked goes up in a PATCH, hashed on the way, and the upload is
	// completed only if it matches.
	Verified bool
}

// Outcome is how a repository came to hold a blob.
type Outcome int

const (
	Uploaded Outcome = iota // its content was sent
	Mounted                 // mounted from another repository of the registry
	Present                 // the repository held it already
)

// PushBlob makes repo hold a blob. With from set (a repository of the same
// registry, possibly repo itself), it first asks the registry to mount the
// blob from there: the answer also says whether repo holds it already, so
// no HEAD is needed; a registry that cannot mount starts an upload
// session, which the content then fills.
//
// Content that does not match fails with an *layout.IntegrityError, never
// retried, and its session is cancelled, so that the registry keeps
// nothing of it. Requests that fail for reasons that may pass are retried;
// when the registry lost the session, the upload starts again from the
// start of the content.
func (c *Client) PushBlob(ctx context.Context, repo name.Repository, b Blob, from string) (Outcome, error) {
	where := repo.String() + "@" + b.Desc.Digest.String()
	for restarts := 0; ; restarts++ {
		out, err := c.pushSession(ctx, repo, b, from, where)
		var lost *sessionLost
		if !errors.As(err, &lost) {
			return out, err
		}
		if restarts >= c.policy.Retries {
			return out, fmt.Errorf("%s: uploading: %w", where, lost.err)
		}
		c.retried.Add(1)
		if err := sleep(ctx, c.policy.wait(restarts, 0)); err != nil {
			return out, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pushSession is one upload session: POST, then PUT with the content when
// it is verified already, else PATCH and PUT.
func (c *Client) pushSession(ctx context.Context, repo name.Repository, b Blob, from, where string) (Outcome, error) {
	desc := b.Desc
	q := ""
	if from != "" {
		q = "?mount=" + url.QueryEscape(desc.Digest.String()) + "&from=" + url.QueryEscape(from)
	}
	mountFrom := from
	if from == repo.RepositoryStr() {
		mountFrom = "" // no other repository's scope to ask for
	}
	var loc *url.URL
	mounted := false
	err := c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodPost, c.url(repo, "blobs/uploads/"+q), nil)
		resp, err := c.do(ctx, repo, true, mountFrom, req)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusCreated && from != "" {
			mounted = true
			return nil
		}
		if err := statusErr(resp, http.StatusAccepted); err != nil {
			return fmt.Errorf("%s: starting upload: %w", where, err)
		}
		if loc, err = resp.Location(); err != nil {
			return fmt.Errorf("%s: upload location: %w", where, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return Uploaded, err
	case mounted && mountFrom == "":
		return Present, nil
	case mounted:
		return Mounted, nil
	}
	if b.Verified {
		return Uploaded, c.putWhole(ctx, repo, b, loc, where)
	}
	open := b.Open

	// The content, hashed as it goes up. A retry at the same location
	// works when the registry never saw the failed request; if it saw part
	// of it, the session is gone and the upload starts again.
	var next *url.URL
	var body *uploadBody
	var src io.Reader
	tries := 0
	err = c.retry1(ctx, func() error {
		tries++
		r, err := open()
		if err != nil {
			return &sourceError{err: err}
		}
		h, err := layout.NewHasher(desc.Digest)
		if err != nil {
			return &sourceError{err: err}
		}
		src, body = r, &uploadBody{r: io.LimitReader(r, desc.Size), h: h}
		req, _ := http.NewRequest(http.MethodPatch, loc.String(), body)
		req.ContentLength = -1 // chunked: a source that fails ends the body cleanly
		if s, ok := r.(interface{ Size() int64 }); ok && s.Size() == desc.Size {
			req.ContentLength = desc.Size
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := c.do(ctx, repo, true, mountFrom, req)
		if err != nil {
			if berr := body.sourceErr(); berr != nil {
				return &sourceError{err: berr}
			}
			return fmt.Errorf("%s: uploading: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			if next, err = resp.Location(); err != nil {
				return fmt.Errorf("%s: upload location: %w", where, err)
			}
			return nil
		}
		serr := statusErr(resp, http.StatusAccepted)
		if tries > 1 && lostSession(resp.StatusCode) {
			return &sessionLost{err: serr}
		}
		return fmt.Errorf("%s: uploading: %w", where, serr)
	})
	if err != nil {
		var se *sourceError
		if errors.As(err, &se) {
			// The body ended early and cleanly: the session still answers.
			c.cancelUpload(ctx, repo, loc)
			return Uploaded, se.err
		}
		if !errors.As(err, new(*sessionLost)) {
			// In case the registry never saw the failed request.
			c.cancelUpload(ctx, repo, loc)
		}
		return Uploaded, err
	}
	if err := body.check(src, desc, where); err != nil {
		c.cancelUpload(ctx, repo, next)
		return Uploaded, err
	}

	q2 := next.Query()
	q2.Set("digest", desc.Digest.String())
	next.RawQuery = q2.Encode()
	tries = 0
	err = c.retry1(ctx, func() error {
		tries++
		req, _ := http.NewRequest(http.MethodPut, next.String(), nil)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := c.do(ctx, repo, true, mountFrom, req)
		if err != nil {
			return fmt.Errorf("%s: completing upload: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return nil
		}
		serr := statusErr(resp, http.StatusCreated)
		if tries > 1 && lostSession(resp.StatusCode) {
			// The first PUT may have completed the upload before its
			// answer was lost.
			if ok, herr := c.headBlob(ctx, repo, desc.Digest, true); herr == nil && ok {
				return nil
			}
			return &sessionLost{err: serr}
		}
		return fmt.Errorf("%s: completing upload: %w", where, serr)
	})
	if err != nil && !errors.As(err, new(*sessionLost)) {
		c.cancelUpload(ctx, repo, next)
	}
	return Uploaded, err
}

// putWhole sends content already verified in the PUT that completes the
// upload: one request instead of two.
func (c *Client) putWhole(ctx context.Context, repo name.Repository, b Blob, loc *url.URL, where string) error {
	q := loc.Query()
	q.Set("digest", b.Desc.Digest.String())
	loc.RawQuery = q.Encode()
	tries := 0
	err := c.retry1(ctx, func() error {
		tries++
		r, err := b.Open()
		if err != nil {
			return &sourceError{err: err}
		}
		req, _ := http.NewRequest(http.MethodPut, loc.String(), io.NopCloser(io.LimitReader(r, b.Desc.Size)))
		req.ContentLength = b.Desc.Size
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := c.do(ctx, repo, true, "", req)
		if err != nil {
			return fmt.Errorf("%s: uploading: %w", where, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return nil
		}
		serr := statusErr(resp, http.StatusCreated)
		if tries > 1 && lostSession(resp.StatusCode) {
			if ok, herr := c.headBlob(ctx, repo, b.Desc.Digest, true); herr == nil && ok {
				return nil // the first PUT completed it before its answer was lost
			}
			return &sessionLost{err: serr}
		}
		return fmt.Errorf("%s: uploading: %w", where, serr)
	})
	var se *sourceError
	if errors.As(err, &se) {
		c.cancelUpload(ctx, repo, loc)
		return se.err
	}
	if err != nil && !errors.As(err, new(*sessionLost)) {
		c.cancelUpload(ctx, repo, loc)
	}
	return err
}

func (b *uploadBody) sourceErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// lostSession: what registries answer for an upload session they do not
// know (distribution: 404 BLOB_UPLOAD_INVALID/UNKNOWN once the session's
// offset moved; others 400 or 416).
func lostSession(code int) bool {
	return code == http.StatusNotFound || code == http.StatusBadRequest || code == http.StatusRequestedRangeNotSatisfiable
}

// cancelUpload deletes an upload session so that the registry frees what
// it received, even when ctx was cancelled. Best effort: a registry that
// does not answer keeps the session until it purges old uploads.
func (c *Client) cancelUpload(ctx context.Context, repo name.Repository, loc *url.URL) {
	if loc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	u := *loc
	q := u.Query()
	q.Del("digest")
	u.RawQuery = q.Encode()
	_ = c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodDelete, u.String(), nil)
		resp, err := c.do(ctx, repo, true, "", req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound {
			return nil
		}
		return statusErr(resp, http.StatusNoContent)
	})
}
