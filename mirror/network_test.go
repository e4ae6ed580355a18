package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// secretKeychain hands out a password for every registry.
type secretKeychain struct{}

func (secretKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: "site", Password: "s3cret"}, nil
}

// fast retries for tests.
var fast = WithRetryPolicy(RetryPolicy{Retries: 5, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: 2 * time.Second})

func memRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// cleartext records whether a plain HTTP server ever received an
// Authorization header.
type cleartext struct {
	requests, credentials atomic.Int32
}

func (c *cleartext) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			c.credentials.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// basicAuth asks for credentials as a registry with basic auth does.
func basicAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "auth required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// A registry on 127.0.0.1 gets HTTPS unless the client was told otherwise:
// no request, let alone a password, reaches it over plain HTTP.
func TestHTTPSUnlessTold(t *testing.T) {
	var rec cleartext
	host := memRegistry(t, func(h http.Handler) http.Handler { return rec.wrap(basicAuth(h)) })
	ctx := context.Background()
	for _, c := range []*Client{
		New(WithKeychain(secretKeychain{}), fast),
		New(WithKeychain(secretKeychain{}), fast, WithPlainHTTPHosts("127.0.0.1:1")),
		New(WithKeychain(secretKeychain{}), fast, WithPlainHTTPHosts("localhost")),
	} {
		ref, _ := c.ParseReference(host + "/team/app:v1")
		_, err := c.GetManifest(ctx, ref)
		if err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			t.Fatalf("GetManifest from a plain HTTP registry without --plain-http-host: %v", err)
		}
		if n := c.Retried(); n != 0 {
			t.Errorf("a TLS failure was retried %d times", n)
		}
	}
	if n := rec.requests.Load(); n != 0 {
		t.Fatalf("%d requests went over plain HTTP", n)
	}
	for _, opt := range []Option{WithPlainHTTPHosts(host), WithPlainHTTPHosts("127.0.0.1"), WithPlainHTTP(true)} {
		c := New(WithKeychain(secretKeychain{}), fast, opt)
		ref, _ := c.ParseReference(host + "/team/app:v1")
		if _, err := c.GetManifest(ctx, ref); !errors.As(err, new(*NotFoundError)) {
			t.Fatalf("GetManifest from a registry named for plain HTTP: %v", err)
		}
	}
	if rec.credentials.Load() == 0 {
		t.Fatal("the named registry never received credentials: the test proves nothing")
	}
}

// A token server on another host over plain HTTP never receives the
// registry's credentials, even when the registry itself is named for plain
// HTTP or --plain-http is given.
func TestNoCredentialsToTokenServerOverHTTP(t *testing.T) {
	var tokens cleartext
	tok := httptest.NewServer(tokens.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"token":"t0k3n"}`)
	})))
	defer tok.Close()
	// "localhost": a host name, so that go-containerregistry's own check
	// of private realm addresses does not step in first.
	realm := "http://localhost:" + tok.URL[strings.LastIndex(tok.URL, ":")+1:] + "/token"
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="registry"`)
				http.Error(w, "auth required", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, opt := range []Option{WithPlainHTTPHosts(host), WithPlainHTTP(true)} {
		c := New(WithKeychain(secretKeychain{}), fast, opt)
		ref, _ := c.ParseReference(host + "/team/app:v1")
		_, err := c.GetManifest(context.Background(), ref)
		if !errors.As(err, new(*PlainHTTPError)) {
			t.Errorf("GetManifest with an http:// token realm on another host: %v, want a refusal", err)
		}
	}
	if n := tokens.credentials.Load(); n != 0 {
		t.Fatalf("the token server received credentials over plain HTTP %d times", n)
	}
	// Named, it may have them.
	c := New(WithKeychain(secretKeychain{}), fast, WithPlainHTTPHosts(host, "localhost"))
	ref, _ := c.ParseReference(host + "/team/app:v1")
	if _, err := c.GetManifest(context.Background(), ref); !errors.As(err, new(*NotFoundError)) {
		t.Fatalf("with the token server named: %v", err)
	}
	if tokens.credentials.Load() == 0 {
		t.Fatal("the named token server got no credentials: the test proves nothing")
	}
}

// A registry over HTTPS that redirects to plain HTTP (another host, or the
// same host downgraded) gets no credentials through the redirect.
func TestNoCredentialsThroughRedirectToHTTP(t *testing.T) {
	var plain cleartext
	files := httptest.NewServer(plain.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "layer")
	})))
	defer files.Close()
	var redirected atomic.Int32
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "auth required", http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			redirected.Add(1)
			http.Redirect(w, r, files.URL+"/layer", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "https://")
	d := desc("layer")
	for _, opts := range [][]Option{nil, {WithPlainHTTPHosts(strings.TrimPrefix(files.URL, "http://"))}} {
		c := New(append([]Option{WithKeychain(secretKeychain{}), fast, WithTransport(reg.Client().Transport)}, opts...)...)
		repo, _ := c.ParseRepository(host + "/team/app")
		err := c.FetchBlob(context.Background(), repo, d, io.Discard)
		if opts == nil && !errors.As(err, new(*PlainHTTPError)) {
			t.Errorf("a redirect to plain HTTP was followed: %v", err)
		}
	}
	if redirected.Load() == 0 {
		t.Fatal("no redirect happened: the test proves nothing")
	}
	if n := plain.credentials.Load(); n != 0 {
		t.Fatalf("credentials followed a redirect to plain HTTP %d times", n)
	}
}

// twoDoors serves one in-memory registry on two hosts: clean, for setting
// up, and one whose requests go through wrap.
func twoDoors(t *testing.T, wrap func(http.Handler) http.Handler) (clean, faulty string) {
	t.Helper()
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	a, b := httptest.NewServer(h), httptest.NewServer(wrap(h))
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	return strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")
}

// faults fails requests matching match for their first n times with status
// (or a reset connection when status is 0), then passes them on.
func faults(match func(*http.Request) bool, n int32, status int, header http.Header) func(http.Handler) http.Handler {
	var seen atomic.Int32
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) && seen.Add(1) <= n {
				for k, v := range header {
					w.Header()[k] = v
				}
				if status == 0 {
					resetConn(w)
					return
				}
				http.Error(w, "injected", status)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

func pushManifest(t *testing.T, c *Client, host, repo, tag string) (*Manifest, v1.Descriptor) {
	t.Helper()
	ctx := context.Background()
	r, _ := c.ParseRepository(host + "/" + repo)
	layer := desc("layer of " + repo)
	if _, err := c.PushBlob(ctx, r, Blob{Desc: layer, Open: func() (io.Reader, error) { return strings.NewReader("layer of " + repo), nil }}, ""); err != nil {
		t.Fatal(err)
	}
	cfg := desc("{}")
	if _, err := c.PushBlob(ctx, r, Blob{Desc: cfg, Open: func() (io.Reader, error) { return strings.NewReader("{}"), nil }}, ""); err != nil {
		t.Fatal(err)
	}
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`, cfg.Digest, layer.Digest, layer.Size))
	if err := c.PutManifest(ctx, r, tag, "application/vnd.oci.image.manifest.v1+json", raw); err != nil {
		t.Fatal(err)
	}
	ref, _ := c.ParseReference(host + "/" + repo + ":" + tag)
	m, err := c.GetManifest(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	return m, layer
}

func isManifestGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
}

// Requests that fail for reasons that pass are retried: 5xx, reset
// connections, 429 after its Retry-After.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
	}{
		{"500", http.StatusInternalServerError, nil},
		{"503", http.StatusServiceUnavailable, nil},
		{"reset", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean, host := twoDoors(t, faults(isManifestGet, 3, tc.status, tc.header))
			c := New(WithPlainHTTP(true), fast)
			m, _ := pushManifest(t, New(WithPlainHTTP(true)), clean, "team/app", "v1")
			ref, _ := c.ParseReference(host + "/team/app:v1")
			got, err := c.GetManifest(ctx, ref)
			if err != nil || got.Digest != m.Digest {
				t.Fatalf("GetManifest after 3 failures: %v", err)
			}
			// (net/http itself resends a GET whose reused connection was
			// reset before any answer, so resets may cost fewer retries.)
			if n := c.Retried(); n != 3 && (tc.status != 0 || n < 1) {
				t.Errorf("retried %d times, want 3", n)
			}
		})
	}
	t.Run("retries spent", func(t *testing.T) {
		host := memRegistry(t, faults(isManifestGet, 100, http.StatusBadGateway, nil))
		c := New(WithPlainHTTP(true), fast, WithRetries(2))
		ref, _ := c.ParseReference(host + "/team/app:v1")
		_, err := c.GetManifest(ctx, ref)
		var st *StatusError
		if !errors.As(err, &st) || st.Code != http.StatusBadGateway || !strings.Contains(err.Error(), "after 2 retries") {
			t.Fatalf("GetManifest from a registry that keeps failing: %v", err)
		}
	})
	t.Run("not for 4xx", func(t *testing.T) {
		host := memRegistry(t, faults(isManifestGet, 100, http.StatusForbidden, nil))
		c := New(WithPlainHTTP(true), fast)
		ref, _ := c.ParseReference(host + "/team/app:v1")
		if _, err := c.GetManifest(ctx, ref); err == nil || c.Retried() != 0 {
			t.Fatalf("403: %v, retried %d times", err, c.Retried())
		}
	})
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		clean, host := twoDoors(t, faults(isManifestGet, 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}))
		c := New(WithPlainHTTP(true), fast)
		m, _ := pushManifest(t, New(WithPlainHTTP(true)), clean, "team/app", "v1")
		ref, _ := c.ParseReference(host + "/team/app:v1")
		start := time.Now()
		got, err := c.GetManifest(ctx, ref)
		if err != nil || got.Digest != m.Digest {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("retried after %s, before the Retry-After of 1s", d)
		}
	})
	t.Run("Retry-After is bounded", func(t *testing.T) {
		clean, host := twoDoors(t, faults(isManifestGet, 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"3600"}}))
		c := New(WithPlainHTTP(true), WithRetryPolicy(RetryPolicy{Retries: 2, Backoff: time.Millisecond, MaxRetryAfter: 50 * time.Millisecond}))
		pushManifest(t, New(WithPlainHTTP(true)), clean, "team/app", "v1")
		ref, _ := c.ParseReference(host + "/team/app:v1")
		start := time.Now()
		if _, err := c.GetManifest(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second || c.Retried() != 1 {
			t.Errorf("waited %s for a Retry-After of an hour, %d retries", d, c.Retried())
		}
	})
}

// Content that does not match its digest is never retried.
func TestMismatchNotRetried(t *testing.T) {
	ctx := context.Background()
	var gets atomic.Int32
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/sha256:") {
				gets.Add(1)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				if len(body) > 0 {
					body[len(body)/2] ^= 1
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := New(WithPlainHTTP(true), fast)
	m, layer := pushManifest(t, c, host, "team/app", "v1")
	repo, _ := c.ParseRepository(host + "/team/app")
	if _, err := c.GetManifest(ctx, repo.Digest(m.Digest.String())); !errors.As(err, new(*layout.IntegrityError)) {
		t.Fatalf("manifest: %v", err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("manifest asked for %d times", n)
	}
	gets.Store(0)
	var out bytes.Buffer
	if err := c.FetchBlob(ctx, repo, layer, &out); !errors.As(err, new(*layout.IntegrityError)) {
		t.Fatalf("blob: %v", err)
	}
	if n := gets.Load(); n != 1 || c.Retried() != 0 {
		t.Errorf("blob asked for %d times, %d retries", n, c.Retried())
	}
	// The consumer never receives a complete body that does not match.
	if int64(out.Len()) >= layer.Size {
		t.Errorf("%d of %d bytes of a mismatching blob were passed on", out.Len(), layer.Size)
	}
}

// A blob transfer cut short goes on from where it stopped: each byte is
// written once.
func TestFetchResumes(t *testing.T) {
	content := strings.Repeat("0123456789", 10000)
	d := desc(content)
	var ranges []string
	var mu sync.Mutex
	cut := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		doCut := cut > 0
		cut--
		mu.Unlock()
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(content)-1, len(content)))
			w.Header().Set("Content-Length", strconv.Itoa(len(content)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		}
		body := content[start:]
		if doCut {
			io.WriteString(w, body[:len(body)/3])
			w.(http.Flusher).Flush()
			resetConn(w)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c := New(WithPlainHTTP(true), fast)
	repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	var out bytes.Buffer
	if err := c.FetchBlob(context.Background(), repo, d, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != content {
		t.Fatalf("got %d bytes, want the %d of the blob, once", out.Len(), len(content))
	}
	if len(ranges) != 3 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[2] <= ranges[1] && len(ranges[2]) <= len(ranges[1]) {
		t.Errorf("requests' ranges: %q", ranges)
	}
}

// uploads is a registry's upload endpoint, enough to watch what a client
// does: sessions, what each PATCH carried, completions and cancellations.
type uploads struct {
	mu        sync.Mutex
	next      int
	sessions  map[string][]byte // id → content
	patches   int
	puts      []string // digests completed
	deletes   []string // locations deleted
	blobs     map[string]bool
	patchFail func(n int, w http.ResponseWriter, r *http.Request) bool
}

func newUploads() *uploads {
	return &uploads{sessions: map[string][]byte{}, blobs: map[string]bool{}}
}

func (u *uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodHead && strings.Contains(path, "/blobs/sha256:"):
		if !u.blobs[path[strings.LastIndex(path, "/")+1:]] {
			w.WriteHeader(http.StatusNotFound)
		}
	case r.Method == http.MethodPost:
		u.next++
		id := strconv.Itoa(u.next)
		u.sessions[id] = nil
		w.Header().Set("Location", "/v2/team/app/blobs/uploads/"+id+"?state=0")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPatch:
		u.patches++
		id := path[strings.LastIndex(path, "/")+1:]
		if u.patchFail != nil && u.patchFail(u.patches, w, r) {
			return
		}
		data, ok := u.sessions[id]
		if !ok || r.URL.Query().Get("state") != strconv.Itoa(len(data)) {
			http.Error(w, "BLOB_UPLOAD_INVALID", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(r.Body)
		data = append(data, body...)
		u.sessions[id] = data
		if err != nil {
			return
		}
		w.Header().Set("Location", "/v2/team/app/blobs/uploads/"+id+"?state="+strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut:
		id := path[strings.LastIndex(path, "/")+1:]
		data, ok := u.sessions[id]
		dg := r.URL.Query().Get("digest")
		if !ok || r.URL.Query().Get("state") != strconv.Itoa(len(data)) {
			http.Error(w, "BLOB_UPLOAD_INVALID", http.StatusNotFound)
			return
		}
		if fmt.Sprintf("sha256:%x", sha256.Sum256(data)) != dg {
			http.Error(w, "DIGEST_INVALID", http.StatusBadRequest)
			return
		}
		u.puts = append(u.puts, dg)
		u.blobs[dg] = true
		delete(u.sessions, id)
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete:
		id := path[strings.LastIndex(path, "/")+1:]
		data, ok := u.sessions[id]
		if !ok || r.URL.Query().Get("state") != strconv.Itoa(len(data)) {
			http.Error(w, "BLOB_UPLOAD_INVALID", http.StatusNotFound)
			return
		}
		u.deletes = append(u.deletes, r.URL.RequestURI())
		delete(u.sessions, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

// held is how many bytes open sessions keep.
func (u *uploads) held() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, d := range u.sessions {
		n += len(d)
	}
	return n
}

func uploadClient(t *testing.T, u *uploads) (*Client, *httptest.Server) {
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return New(WithPlainHTTP(true), fast), srv
}

// Content that does not match is sent once, never completed, and its
// session is cancelled with the location the PATCH returned, so the
// registry keeps nothing; a stream's content is checked the same way.
func TestPushMismatchLeavesNothing(t *testing.T) {
	for _, sized := range []bool{true, false} {
		u := newUploads()
		c, srv := uploadClient(t, u)
		repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
		d := desc("the content promised")
		opens := 0
		_, err := c.PushBlob(context.Background(), repo, Blob{Desc: d, Open: func() (io.Reader, error) {
			opens++
			if sized {
				return strings.NewReader("the content delivered"[:d.Size]), nil
			}
			return io.MultiReader(strings.NewReader("the content delivered"[:d.Size])), nil
		}}, "")
		var ie *layout.IntegrityError
		if !errors.As(err, &ie) {
			t.Fatalf("sized %v: %v, want an layout.IntegrityError", sized, err)
		}
		if opens != 1 || u.patches != 1 || len(u.puts) != 0 || c.Retried() != 0 {
			t.Errorf("sized %v: opened %d times, %d PATCH, %d PUT, %d retries; want 1, 1, 0, 0", sized, opens, u.patches, len(u.puts), c.Retried())
		}
		if len(u.deletes) != 1 || !strings.HasSuffix(u.deletes[0], "state="+strconv.FormatInt(d.Size, 10)) {
			t.Errorf("sized %v: sessions deleted: %v, want the one the PATCH returned", sized, u.deletes)
		}
		if n := u.held(); n != 0 {
			t.Errorf("sized %v: the registry keeps %d bytes", sized, n)
		}
	}
	// Short and long content too.
	for _, content := range []string{"short", "the content promised, and more"} {
		u := newUploads()
		c, srv := uploadClient(t, u)
		repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
		d := desc("the content promised")
		_, err := c.PushBlob(context.Background(), repo, Blob{Desc: d, Open: func() (io.Reader, error) { return io.MultiReader(strings.NewReader(content)), nil }}, "")
		if !errors.As(err, new(*layout.IntegrityError)) || len(u.puts) != 0 || u.held() != 0 || len(u.deletes) != 1 {
			t.Errorf("content %q: %v; %d PUT, %d bytes held, %v deleted", content, err, len(u.puts), u.held(), u.deletes)
		}
	}
}

// A source that fails to read ends the upload body cleanly, and the
// session is cancelled.
func TestPushSourceFailureCancels(t *testing.T) {
	u := newUploads()
	c, srv := uploadClient(t, u)
	repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	d := desc("0123456789")
	boom := errors.New("archive truncated")
	_, err := c.PushBlob(context.Background(), repo, Blob{Desc: d, Open: func() (io.Reader, error) {
		return io.MultiReader(strings.NewReader("01234"), iotestErr{boom}), nil
	}}, "")
	if !errors.Is(err, boom) || c.Retried() != 0 {
		t.Fatalf("%v (retried %d times), want the source's error, not retried", err, c.Retried())
	}
	if len(u.puts) != 0 || u.held() != 0 || len(u.deletes) != 1 {
		t.Errorf("%d PUT, %d bytes held, deleted %v", len(u.puts), u.held(), u.deletes)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// Failed upload requests are retried; when the registry saw part of a
// failed PATCH the session is gone, and the upload starts again.
func TestPushRetries(t *testing.T) {
	content := strings.Repeat("layer bytes ", 5000)
	d := desc(content)
	for _, tc := range []struct {
		name  string
		fail  func(u *uploads, w http.ResponseWriter, r *http.Request)
		want  int // sessions started
		opens int // times the content was read
	}{
		{"500 before the body", func(u *uploads, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}, 1, 2},
		{"reset before the body", func(u *uploads, w http.ResponseWriter, r *http.Request) {
			resetConn(w)
		}, 1, 2},
		{"reset after part of the body", func(u *uploads, w http.ResponseWriter, r *http.Request) {
			// The registry keeps what arrived: the session's offset moved.
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			part := make([]byte, 1000)
			io.ReadFull(r.Body, part)
			u.sessions[id] = append(u.sessions[id], part...)
			resetConn(w)
		}, 2, 3}, // the retry at the same location learns that the session is gone
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUploads()
			u.patchFail = func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n == 1 {
					tc.fail(u, w, r)
				}
				return n == 1
			}
			c, srv := uploadClient(t, u)
			repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
			opens := 0
			up, err := c.PushBlob(context.Background(), repo, Blob{Desc: d, Open: func() (io.Reader, error) {
				opens++
				return strings.NewReader(content), nil
			}}, "")
			if err != nil || up != Uploaded {
				t.Fatalf("push: %v", err)
			}
			if len(u.puts) != 1 || u.puts[0] != d.Digest.String() || u.next != tc.want || opens != tc.opens {
				t.Errorf("completed %v, %d sessions, content read %d times; want %s once, %d sessions, read %d times", u.puts, u.next, opens, d.Digest, tc.want, tc.opens)
			}
		})
	}
	t.Run("answer to the completion lost", func(t *testing.T) {
		u := newUploads()
		var puts atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.ServeHTTP(w, r)
			if r.Method == http.MethodPut && puts.Add(1) == 1 {
				// Completed, but the client never hears of it.
				panic(http.ErrAbortHandler)
			}
		}))
		defer srv.Close()
		c := New(WithPlainHTTP(true), fast)
		repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
		up, err := c.PushBlob(context.Background(), repo, Blob{Desc: d, Open: func() (io.Reader, error) { return strings.NewReader(content), nil }}, "")
		if err != nil || up != Uploaded || u.next != 1 {
			t.Fatalf("push: %v, %d sessions", err, u.next)
		}
	})
}

// A stream read once can be read again from its start.
func TestReplay(t *testing.T) {
	src := strings.Repeat("abcdefghij", 50000)
	rp := NewReplay(strings.NewReader(src))
	defer rp.Close()
	r1, _ := rp.Open()
	part := make([]byte, 123456)
	io.ReadFull(r1, part)
	r2, _ := rp.Open()
	if _, err := r1.Read(part); err == nil {
		t.Error("an old reader still reads")
	}
	half := make([]byte, 1000)
	io.ReadFull(r2, half)
	r3, _ := rp.Open()
	all, err := io.ReadAll(r3)
	if err != nil || string(all) != src {
		t.Fatalf("read again: %d bytes, %v", len(all), err)
	}
	r4, _ := rp.Open()
	if again, _ := io.ReadAll(r4); string(again) != src {
		t.Fatal("third read differs")
	}
}

// Foreign layers: their URLs are not fetched unless allowed, and then only
// over https, without following a redirect elsewhere.
func TestForeignLayers(t *testing.T) {
	content := "foreign layer bytes"
	d := desc(content)
	var hits atomic.Int32
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/elsewhere" {
			http.Redirect(w, r, "https://127.0.0.2:1/x", http.StatusFound)
			return
		}
		io.WriteString(w, content)
	})
	plainFiles := httptest.NewServer(serve)
	defer plainFiles.Close()
	tlsFiles := httptest.NewTLSServer(serve)
	defer tlsFiles.Close()
	host := memRegistry(t, nil)
	ctx := context.Background()
	push := func(c *Client, tag string, urls ...string) string {
		r, _ := c.ParseRepository(host + "/win/base")
		cfg := desc("{}")
		c.PushBlob(ctx, r, Blob{Desc: cfg, Open: func() (io.Reader, error) { return strings.NewReader("{}"), nil }}, "")
		u, _ := json.Marshal(urls)
		raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"%s","size":%d,"urls":%s}]}`, cfg.Digest, d.Digest, d.Size, u)
		if err := c.PutManifest(ctx, r, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(raw)); err != nil {
			t.Fatal(err)
		}
		return host + "/win/base:" + tag
	}
	setup := New(WithPlainHTTP(true))
	httpRef := push(setup, "http", plainFiles.URL+"/layer")
	httpsRef := push(setup, "https", tlsFiles.URL+"/layer")
	redirRef := push(setup, "redirect", tlsFiles.URL+"/elsewhere")
	opts := func(more ...Option) []Option {
		return append([]Option{WithPlainHTTPHosts(host), fast, WithTransport(tlsFiles.Client().Transport)}, more...)
	}

	for _, ref := range []string{httpRef, httpsRef} {
		_, err := New(opts()...).Walk(ctx, []string{ref}, WalkOptions{Jobs: 1})
		var fe *ForeignLayerError
		if !errors.As(err, &fe) || fe.Image != ref || !strings.Contains(err.Error(), d.Digest.String()) || !strings.Contains(err.Error(), "--allow-foreign-layers") {
			t.Errorf("walk of %s: %v, want a refusal naming the image and the layer", ref, err)
		}
	}
	allowed := New(opts(WithForeignLayers(true))...)
	if _, err := allowed.Walk(ctx, []string{httpRef}, WalkOptions{Jobs: 1}); !errors.As(err, new(*ForeignLayerError)) || !strings.Contains(err.Error(), "https") {
		t.Errorf("walk of an image whose foreign layer is http only: %v", err)
	}
	repo, _ := allowed.ParseRepository(host + "/win/base")
	fd := d
	fd.URLs = []string{plainFiles.URL + "/layer"}
	if err := allowed.FetchBlob(ctx, repo, fd, io.Discard); !errors.As(err, new(*ForeignLayerError)) {
		t.Errorf("fetch from an http URL: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("foreign URLs were fetched %d times", n)
	}

	g, err := allowed.Walk(ctx, []string{httpsRef}, WalkOptions{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := allowed.FetchBlob(ctx, repo, g.Blobs[d.Digest].Desc, &out); err != nil || out.String() != content {
		t.Fatalf("fetch from an https URL: %q %v", out.String(), err)
	}
	g, err = allowed.Walk(ctx, []string{redirRef}, WalkOptions{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = allowed.FetchBlob(ctx, repo, g.Blobs[d.Digest].Desc, io.Discard)
	if !errors.As(err, new(*ForeignLayerError)) || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("fetch through a redirect to another host: %v", err)
	}
}

// A referrers listing is bounded in entries and bytes, however many pages
// the registry sends.
func TestReferrersBounded(t *testing.T) {
	subject := desc("subject").Digest
	for _, tc := range []struct {
		name    string
		entries int    // per page
		pad     int    // annotation bytes per entry
		want    string // in the error
	}{
		{"entries", 3000, 0, "more than 10000 entries"},
		{"bytes", 1, 4000 << 10, "larger than 16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pages atomic.Int32
			var entries []byte
			for i := range tc.entries {
				e, _ := json.Marshal(v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: desc(strconv.Itoa(i)).Digest, Size: 10,
					Annotations: map[string]string{"pad": strings.Repeat("x", tc.pad)}})
				if i > 0 {
					entries = append(entries, ',')
				}
				entries = append(entries, e...)
			}
			page := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + string(entries) + `]}`)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.URL.Path, "/referrers/") {
					return
				}
				n := pages.Add(1)
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, r.URL.Path, n))
				w.Write(page)
			}))
			defer srv.Close()
			c := New(WithPlainHTTP(true), fast)
			repo, _ := c.ParseRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
			_, err := c.Referrers(context.Background(), repo, subject)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, new(*InvalidError)) {
				t.Fatalf("endless referrers: %v, want %q", err, tc.want)
			}
			if n := pages.Load(); n > 5 {
				t.Errorf("read %d pages", n)
			}
		})
	}
}

// An attachment left out leaves nothing of itself in the graph; one the
// registry fails to serve for other reasons fails the walk either way.
func TestSkippedAttachmentLeavesNothing(t *testing.T) {
	var mu sync.Mutex
	failing := map[string]int{} // path suffix → status
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			for suffix, status := range failing {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, suffix) {
					http.Error(w, "failing", status)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	c := New(WithPlainHTTP(true), fast, WithRetries(1))
	m, _ := pushManifest(t, c, host, "team/app", "v1")
	r, _ := c.ParseRepository(host + "/team/app")
	// A referrer whose config is gone.
	cfg := desc(`{"kind":"sbom"}`)
	c.PushBlob(ctx, r, Blob{Desc: cfg, Open: func() (io.Reader, error) { return strings.NewReader(`{"kind":"sbom"}`), nil }}, "")
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/spdx+json","digest":"%s","size":%d},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}`, cfg.Digest, cfg.Size, m.Digest, len(m.Raw)))
	rd := desc(string(raw)).Digest
	if _, err := c.PutReferrer(ctx, r, rd, "application/vnd.oci.image.manifest.v1+json", raw); err != nil {
		t.Fatal(err)
	}
	ref := host + "/team/app:v1"

	failing["/blobs/"+cfg.Digest.String()] = http.StatusNotFound
	g, err := c.Walk(ctx, []string{ref}, WalkOptions{Jobs: 1, Attachments: true, SkipBroken: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Skipped) != 1 || g.Skipped[0].Digest != rd.String() || g.Skipped[0].Kind != "referrer" || len(g.Warnings) != 1 {
		t.Fatalf("skipped %+v, warnings %v", g.Skipped, g.Warnings)
	}
	if _, ok := g.Blobs[rd]; ok || len(g.Attachments) != 0 {
		t.Errorf("the skipped referrer is in the graph: %v attachments", g.Attachments)
	}
	if _, err := c.Walk(ctx, []string{ref}, WalkOptions{Jobs: 1, Attachments: true}); err == nil || !strings.Contains(err.Error(), "--skip-broken-referrers") {
		t.Errorf("without skipping: %v", err)
	}

	failing["/blobs/"+cfg.Digest.String()] = http.StatusInternalServerError
	_, err = c.Walk(ctx, []string{ref}, WalkOptions{Jobs: 1, Attachments: true, SkipBroken: true})
	if err == nil || !strings.Contains(err.Error(), rd.String()) || !strings.Contains(err.Error(), "not left out") {
		t.Errorf("a referrer the registry keeps failing on, with SkipBroken: %v, want a failure naming it", err)
	}

	delete(failing, "/blobs/"+cfg.Digest.String())
	g, err = c.Walk(ctx, []string{ref}, WalkOptions{Jobs: 1, Attachments: true, SkipBroken: true})
	if err != nil || len(g.Attachments) != 1 || len(g.Skipped) != 0 {
		t.Fatalf("healthy: %v, %d attachments, skipped %v", err, len(g.Attachments), g.Skipped)
	}
}

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		scheme  string
		params  map[string]string
	}{
		{[]string{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`}, "Bearer",
			map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}},
		{[]string{`Basic realm="Registry Realm"`}, "Basic", map[string]string{"realm": "Registry Realm"}},
		{[]string{`Negotiate, Basic realm="x"`, `Bearer realm="https://t/\"q\"", service=svc`}, "Bearer", map[string]string{"realm": `https://t/"q"`, "service": "svc"}},
		{[]string{`Basic realm="a", Bearer realm="https://b",service="c"`}, "Bearer", map[string]string{"realm": "https://b", "service": "c"}},
		{nil, "", nil},
	} {
		scheme, params := parseChallenge(tc.headers)
		if scheme != tc.scheme || fmt.Sprint(params) != fmt.Sprint(tc.params) {
			t.Errorf("%q: %q %v, want %q %v", tc.headers, scheme, params, tc.scheme, tc.params)
		}
	}
}
