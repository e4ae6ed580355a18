package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// IntegrityError is content that does not match the digest or size it was
// asked for by.
type IntegrityError struct {
	Where string // reference or repository and digest
	Want  v1.Hash
	Got   string // digest or size actually seen
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: content does not match %s (got %s)", e.Where, e.Want, e.Got)
}

// NotFoundError is a manifest or blob the registry does not have.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + ": not found" }

// Client talks to registries. It is safe for concurrent use; authenticated
// transports are cached per repository and access.
type Client struct {
	keychain  authn.Keychain
	plainHTTP bool
	base      http.RoundTripper
	userAgent string

	mu         sync.Mutex
	transports map[string]*transportEntry
	pings      map[string]*pingEntry
}

type pingEntry struct {
	once   sync.Once
	bearer bool
	err    error
}

type transportEntry struct {
	once sync.Once
	rt   http.RoundTripper
	err  error
}

// Option configures a Client.
type Option func(*Client)

// WithKeychain sets where credentials come from (default: the docker config
// and its credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(c *Client) { c.keychain = k } }

// WithPlainHTTP talks HTTP instead of HTTPS to every registry.
func WithPlainHTTP(b bool) Option { return func(c *Client) { c.plainHTTP = b } }

// WithTransport sets the base HTTP transport.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.base = rt } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a Client.
func New(opts ...Option) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	// Layers are already compressed; transparent gzip would only cost CPU.
	t.DisableCompression = true
	c := &Client{keychain: authn.DefaultKeychain, base: t, userAgent: "relocate", transports: map[string]*transportEntry{}, pings: map[string]*pingEntry{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// ParseReference parses a reference, honouring the plain-HTTP setting.
func (c *Client) ParseReference(s string) (name.Reference, error) {
	return name.ParseReference(s, c.nameOpts()...)
}

// ParseRepository parses a repository name, honouring the plain-HTTP setting.
func (c *Client) ParseRepository(s string) (name.Repository, error) {
	return name.NewRepository(s, c.nameOpts()...)
}

func (c *Client) nameOpts() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if c.plainHTTP {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// transport returns an authenticated transport for repo with the given
// scopes; the handshake (ping, token) happens once per key.
func (c *Client) transport(ctx context.Context, repo name.Repository, push bool, mountFrom string) (http.RoundTripper, error) {
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		scopes = []string{repo.Scope(transport.PushScope)}
	}
	if mountFrom != "" {
		scopes = append(scopes, "repository:"+mountFrom+":pull")
	}
	// Only bearer tokens are scoped to repositories; with anonymous or basic
	// access one handshake serves the whole registry.
	bearer, err := c.bearer(ctx, repo.Registry)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	key := repo.Registry.RegistryStr()
	if bearer {
		key += "|" + strings.Join(scopes, " ")
	}
	c.mu.Lock()
	e, ok := c.transports[key]
	if !ok {
		e = &transportEntry{}
		c.transports[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		auth, err := authn.Resolve(ctx, c.keychain, repo)
		if err != nil {
			e.err = fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
			return
		}
		rt := transport.NewUserAgent(c.base, c.userAgent)
		e.rt, e.err = transport.NewWithContext(ctx, repo.Registry, auth, rt, scopes)
		if e.err != nil {
			e.err = fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), e.err)
		}
	})
	return e.rt, e.err
}

// bearer pings a registry once and reports whether it wants bearer tokens.
func (c *Client) bearer(ctx context.Context, reg name.Registry) (bool, error) {
	c.mu.Lock()
	e, ok := c.pings[reg.RegistryStr()]
	if !ok {
		e = &pingEntry{}
		c.pings[reg.RegistryStr()] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		ch, err := transport.Ping(ctx, reg, c.base)
		e.err = err
		if err == nil {
			e.bearer = strings.EqualFold(ch.Scheme, "bearer")
		}
	})
	return e.bearer, e.err
}

func (c *Client) url(repo name.Repository, path string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), path)
}

func (c *Client) do(ctx context.Context, repo name.Repository, push bool, mountFrom string, req *http.Request) (*http.Response, error) {
	rt, err := c.transport(ctx, repo, push, mountFrom)
	if err != nil {
		return nil, err
	}
	return (&http.Client{Transport: rt}).Do(req.WithContext(ctx))
}

// manifestAccept lists every manifest type relocate carries.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
	"application/vnd.oci.artifact.manifest.v1+json",
}, ", ")

// Manifest is a manifest exactly as the registry served it.
type Manifest struct {
	Repo      name.Repository
	Digest    v1.Hash
	MediaType string
	Raw       []byte
}

// GetManifest fetches a manifest by tag or digest. Its bytes are kept as
// served; a digest reference is checked against them.
func (c *Client) GetManifest(ctx context.Context, ref name.Reference) (*Manifest, error) {
	repo := ref.Context()
	req, _ := http.NewRequest(http.MethodGet, c.url(repo, "manifests/"+ref.Identifier()), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(ctx, repo, false, "", req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, &NotFoundError{What: "manifest " + ref.String()}
	}
	if err := statusErr(resp, http.StatusOK); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, layout.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if len(raw) > layout.MaxManifestSize {
		return nil, fmt.Errorf("%s: manifest larger than %d bytes", ref, layout.MaxManifestSize)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hexSum(sha256.New(), raw)}
	if dr, ok := ref.(name.Digest); ok {
		want, err := v1.NewHash(dr.DigestStr())
		if err != nil {
			return nil, err
		}
		if want.Algorithm == "sha512" {
			d = v1.Hash{Algorithm: "sha512", Hex: hexSum(sha512.New(), raw)}
		}
		if d != want {
			return nil, &IntegrityError{Where: ref.String(), Want: want, Got: d.String()}
		}
	}
	mt := strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	return &Manifest{Repo: repo, Digest: d, MediaType: mt, Raw: raw}, nil
}

func hexSum(h hash.Hash, b []byte) string {
	h.Write(b)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// NewHasher returns the hash for a digest's algorithm.
func NewHasher(d v1.Hash) (hash.Hash, error) {
	switch d.Algorithm {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", d.Algorithm)
}

// FetchBlob copies a blob to w, checking its size and digest as it streams.
// When the registry does not have it and the descriptor lists URLs (foreign
// layers), those are tried in turn.
func (c *Client) FetchBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, w io.Writer) error {
	req, _ := http.NewRequest(http.MethodGet, c.url(repo, "blobs/"+desc.Digest.String()), nil)
	resp, err := c.do(ctx, repo, false, "", req)
	if err != nil {
		return fmt.Errorf("%s@%s: %w", repo, desc.Digest, err)
	}
	defer resp.Body.Close()
	where := repo.String() + "@" + desc.Digest.String()
	if resp.StatusCode == http.StatusNotFound && len(desc.URLs) > 0 {
		return c.fetchForeign(ctx, desc, w)
	}
	if resp.StatusCode == http.StatusNotFound {
		return &NotFoundError{What: "blob " + where}
	}
	if err := statusErr(resp, http.StatusOK); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return CopyVerified(w, resp.Body, desc, where)
}

func (c *Client) fetchForeign(ctx context.Context, desc v1.Descriptor, w io.Writer) error {
	var errs []error
	for _, u := range desc.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") {
			errs = append(errs, fmt.Errorf("foreign layer URL %q: unsupported", u))
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := (&http.Client{Transport: c.base}).Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = statusErr(resp, http.StatusOK)
		if err == nil {
			err = CopyVerified(w, resp.Body, desc, u)
		}
		resp.Body.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return fmt.Errorf("foreign layer %s: %w", desc.Digest, errors.Join(errs...))
}

// CopyVerified copies exactly desc.Size bytes from r to w and checks the digest.
func CopyVerified(w io.Writer, r io.Reader, desc v1.Descriptor, where string) error {
	vr, err := NewVerifyingReader(r, desc, where)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, vr); err != nil {
		if vr.Err() != nil {
			return vr.Err()
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	return vr.Err()
}

// BlobExists asks whether repo holds a blob.
func (c *Client) BlobExists(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	req, _ := http.NewRequest(http.MethodHead, c.url(repo, "blobs/"+d.String()), nil)
	resp, err := c.do(ctx, repo, true, "", req)
	if err != nil {
		return false, fmt.Errorf("%s@%s: %w", repo, d, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("%s@%s: %w", repo, d, statusErr(resp, http.StatusOK))
}

// PushBlob makes repo hold a blob: by mounting it from mountFrom (a
// repository of the same registry) when given, else by uploading the content
// that open returns. It reports whether content was uploaded.
func (c *Client) PushBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, mountFrom string, open func() (io.Reader, error)) (bool, error) {
	where := repo.String() + "@" + desc.Digest.String()
	q := ""
	if mountFrom != "" {
		q = "?mount=" + url.QueryEscape(desc.Digest.String()) + "&from=" + url.QueryEscape(mountFrom)
	}
	req, _ := http.NewRequest(http.MethodPost, c.url(repo, "blobs/uploads/"+q), nil)
	resp, err := c.do(ctx, repo, true, mountFrom, req)
	if err != nil {
		return false, fmt.Errorf("%s: %w", where, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated && mountFrom != "" {
		return false, nil
	}
	if err := statusErr(resp, http.StatusAccepted); err != nil {
		return false, fmt.Errorf("%s: starting upload: %w", where, err)
	}
	loc, err := resp.Location()
	if err != nil {
		return false, fmt.Errorf("%s: upload location: %w", where, err)
	}
	r, err := open()
	if err != nil {
		return false, err
	}
	q2 := loc.Query()
	q2.Set("digest", desc.Digest.String())
	loc.RawQuery = q2.Encode()
	put, _ := http.NewRequest(http.MethodPut, loc.String(), io.NopCloser(r))
	put.ContentLength = desc.Size
	put.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.do(ctx, repo, true, mountFrom, put)
	if err != nil {
		return false, fmt.Errorf("%s: uploading: %w", where, err)
	}
	defer resp.Body.Close()
	if err := statusErr(resp, http.StatusCreated); err != nil {
		return false, fmt.Errorf("%s: uploading: %w", where, err)
	}
	return true, nil
}

// ManifestDigest returns the digest a tag or digest resolves to in repo, or
// false when it does not exist.
func (c *Client) ManifestDigest(ctx context.Context, repo name.Repository, ref string) (v1.Hash, bool, error) {
	req, _ := http.NewRequest(http.MethodHead, c.url(repo, "manifests/"+ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(ctx, repo, true, "", req)
	if err != nil {
		return v1.Hash{}, false, fmt.Errorf("%s:%s: %w", repo, ref, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return v1.Hash{}, false, nil
	}
	if err := statusErr(resp, http.StatusOK); err != nil {
		return v1.Hash{}, false, fmt.Errorf("%s:%s: %w", repo, ref, err)
	}
	d, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return v1.Hash{}, false, fmt.Errorf("%s:%s: registry sent no usable Docker-Content-Digest: %w", repo, ref, err)
	}
	return d, true, nil
}

// PutManifest uploads a manifest byte for byte under ref, a tag or its digest.
func (c *Client) PutManifest(ctx context.Context, repo name.Repository, ref, mediaType string, raw []byte) error {
	_, err := c.putManifest(ctx, repo, ref, mediaType, raw)
	return err
}

// PutReferrer uploads a manifest that has a subject, by digest, and reports
// whether the registry says it indexed the subject (the OCI-Subject header);
// if not, the client must maintain the fallback tag.
func (c *Client) PutReferrer(ctx context.Context, repo name.Repository, d v1.Hash, mediaType string, raw []byte) (bool, error) {
	h, err := c.putManifest(ctx, repo, d.String(), mediaType, raw)
	return h.Get("OCI-Subject") != "", err
}

func (c *Client) putManifest(ctx context.Context, repo name.Repository, ref, mediaType string, raw []byte) (http.Header, error) {
	req, _ := http.NewRequest(http.MethodPut, c.url(repo, "manifests/"+ref), bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.do(ctx, repo, true, "", req)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", repo, ref, err)
	}
	defer resp.Body.Close()
	if err := statusErr(resp, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("pushing manifest %s to %s: %w", ref, repo, err)
	}
	return resp.Header, nil
}

// statusErr turns an unexpected response into an error that carries the
// registry's own message.
func statusErr(resp *http.Response, want int) error {
	if resp.StatusCode == want {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("registry answered %s: %s", strconv.Itoa(resp.StatusCode), msg)
}

func typ(mt string) types.MediaType { return types.MediaType(mt) }

// VerifyingReader passes through exactly the size of a descriptor and checks
// the digest before releasing the final bytes, so a consumer such as an
// upload never receives a complete body that does not match.
type VerifyingReader struct {
	r     io.Reader
	h     hash.Hash
	desc  v1.Descriptor
	where string
	n     int64
	err   error
}

// NewVerifyingReader wraps r, which must hold desc's content.
func NewVerifyingReader(r io.Reader, desc v1.Descriptor, where string) (*VerifyingReader, error) {
	h, err := NewHasher(desc.Digest)
	if err != nil {
		return nil, err
	}
	return &VerifyingReader{r: io.LimitReader(r, desc.Size+1), h: h, desc: desc, where: where}, nil
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.desc.Size:
		v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: fmt.Sprintf("more than %d bytes", v.desc.Size)}
		return 0, v.err
	case v.n == v.desc.Size:
		if got := fmt.Sprintf("%x", v.h.Sum(nil)); got != v.desc.Digest.Hex {
			v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: v.desc.Digest.Algorithm + ":" + got}
			return 0, v.err
		}
		v.err = io.EOF
		return n, nil
	case err == io.EOF:
		v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: fmt.Sprintf("%d bytes instead of %d", v.n, v.desc.Size)}
		return 0, v.err
	}
	return n, err
}

// Err is the integrity error seen so far, if any.
func (v *VerifyingReader) Err() error {
	if v.err == io.EOF {
		return nil
	}
	return v.err
}
