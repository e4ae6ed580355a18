package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// NotFoundError is a manifest or blob the registry does not have.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + ": not found" }

// Client talks to registries. It is safe for concurrent use; authenticated
// transports are cached per repository and access.
//
// It speaks HTTPS to every registry unless told otherwise (WithPlainHTTP,
// WithPlainHTTPHosts), whatever the address, and retries requests that fail
// for reasons that may pass (WithRetryPolicy).
type Client struct {
	keychain     authn.Keychain
	plainHTTP    bool
	plainHosts   []hostPattern
	inner        http.RoundTripper // as given
	base         http.RoundTripper // inner behind the plain-HTTP guard
	userAgent    string
	policy       RetryPolicy
	allowForeign bool
	tlsOpt       tlsOptions
	optErr       error
	retried      atomic.Int64

	mu         sync.Mutex
	registries map[string]bool // hosts of the registries asked for
	transports map[string]*transportEntry
	pings      map[string]*pingEntry
}

// pingEntry and transportEntry cache a registry handshake once it
// succeeded; a failed one is tried again by the next request.
type pingEntry struct {
	mu sync.Mutex
	ch *transport.Challenge
}

type transportEntry struct {
	mu sync.Mutex
	rt http.RoundTripper
}

// Option configures a Client.
type Option func(*Client)

// WithKeychain sets where credentials come from (default: the docker config
// and its credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(c *Client) { c.keychain = k } }

// WithPlainHTTP talks HTTP instead of HTTPS to every registry. Credentials
// then travel in clear text to the registries the client is asked to talk
// to, never to other hosts (token servers, redirects).
func WithPlainHTTP(b bool) Option { return func(c *Client) { c.plainHTTP = b } }

// WithPlainHTTPHosts talks HTTP instead of HTTPS to these hosts only, each
// HOST (any port) or HOST:PORT. Every other host gets HTTPS, loopback and
// private addresses included.
func WithPlainHTTPHosts(hosts ...string) Option {
	return func(c *Client) {
		for _, h := range hosts {
			p, err := parseHostPattern(h)
			if err != nil {
				c.optErr = err
				continue
			}
			c.plainHosts = append(c.plainHosts, p)
		}
	}
}

// CheckPlainHTTPHost reports whether s is a valid HOST or HOST:PORT for
// WithPlainHTTPHosts.
func CheckPlainHTTPHost(s string) error {
	_, err := parseHostPattern(s)
	return err
}

// WithRetries sets how many times a failed request is retried (default
// DefaultRetries); 0 never retries.
func WithRetries(n int) Option { return func(c *Client) { c.policy.Retries = max(n, 0) } }

// WithRetryPolicy sets the whole retry policy; zero durations take the
// defaults.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) { c.policy = p.withDefaults() }
}

// WithForeignLayers lets FetchBlob fetch a foreign (non-distributable)
// layer that the registry does not hold from the URLs its descriptor
// lists: https only, with no redirect to another host, no credentials
// sent. Without it those URLs are never fetched.
func WithForeignLayers(allow bool) Option { return func(c *Client) { c.allowForeign = allow } }

// WithTransport sets the base HTTP transport.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.inner = rt } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a Client.
func New(opts ...Option) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	// Layers are already compressed; transparent gzip would only cost CPU.
	t.DisableCompression = true
	c := &Client{keychain: authn.DefaultKeychain, inner: t, userAgent: "relocate", policy: DefaultRetryPolicy(),
		registries: map[string]bool{}, transports: map[string]*transportEntry{}, pings: map[string]*pingEntry{}}
	for _, o := range opts {
		o(c)
	}
	c.inner = c.withTLS(c.inner)
	c.base = guard{c: c, inner: c.inner}
	return c
}

// ParseReference parses a reference, honouring the plain-HTTP settings.
func (c *Client) ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	c.register(ref.Context().Registry)
	if c.plain(ref.Context().RegistryStr()) {
		return name.ParseReference(s, name.StrictValidation, name.Insecure)
	}
	return ref, nil
}

// ParseRepository parses a repository name, honouring the plain-HTTP settings.
func (c *Client) ParseRepository(s string) (name.Repository, error) {
	repo, err := name.NewRepository(s, name.StrictValidation)
	if err != nil {
		return repo, err
	}
	c.register(repo.Registry)
	if c.plain(repo.RegistryStr()) {
		return name.NewRepository(s, name.StrictValidation, name.Insecure)
	}
	return repo, nil
}

func (c *Client) register(reg name.Registry) {
	c.mu.Lock()
	c.registries[strings.ToLower(reg.RegistryStr())] = true
	c.mu.Unlock()
}

// registry is reg as go-containerregistry must see it: insecure exactly
// when the user allowed plain HTTP for it. (Its own default would pick HTTP
// for loopback and private addresses; the guard refuses that anyway.)
func (c *Client) registry(reg name.Registry) name.Registry {
	opts := []name.Option{name.StrictValidation}
	if c.plain(reg.RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(reg.RegistryStr(), opts...)
	if err != nil {
		return reg
	}
	return r
}

// transport returns an authenticated transport for repo with the given
// scopes; the handshake (ping, token) happens once per key, and again after
// a failure.
func (c *Client) transport(ctx context.Context, repo name.Repository, push bool, mountFrom string) (http.RoundTripper, error) {
	if c.optErr != nil {
		return nil, c.optErr
	}
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		scopes = []string{repo.Scope(transport.PushScope)}
	}
	if mountFrom != "" {
		scopes = append(scopes, "repository:"+mountFrom+":pull")
	}
	reg := c.registry(repo.Registry)
	ch, err := c.challenge(ctx, reg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	// Only bearer tokens are scoped to repositories; with anonymous or basic
	// access one handshake serves the whole registry.
	bearer := strings.EqualFold(ch.Scheme, "bearer")
	key := reg.RegistryStr()
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
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rt != nil {
		return e.rt, nil
	}
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	inner := transport.NewUserAgent(c.base, c.userAgent)
	var tok *transport.Token
	if bearer {
		if tok, err = transport.Exchange(ctx, reg, auth, inner, scopes, ch); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), authErr(reg.RegistryStr(), auth, err))
		}
		if tok.Token == "" {
			tok.Token = tok.AccessToken // OAuth 2 token servers
		}
	}
	rt, err := transport.FromToken(reg, auth, inner, ch, tok)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	e.rt = authCheck{host: reg.RegistryStr(), anonymous: anonymous(auth), inner: schemeFix{c: c, host: reg.RegistryStr(), inner: rt}}
	return e.rt, nil
}

// schemeFix sends requests for the registry's own host (Locations, Links,
// redirects it hands out) in the scheme relocate chose for it, as
// go-containerregistry does: a registry behind a TLS proxy may announce its
// upload locations as http://.
type schemeFix struct {
	c     *Client
	host  string
	inner http.RoundTripper
}

func (s schemeFix) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.EqualFold(r.URL.Host, s.host) {
		if want := s.c.scheme(s.host); r.URL.Scheme != want {
			r = r.Clone(r.Context())
			r.URL.Scheme = want
		}
	}
	return s.inner.RoundTrip(r)
}

// challenge pings a registry once, in the scheme relocate chose for it
// (go-containerregistry's Ping would try HTTP too for loopback and private
// addresses), and returns how it wants to be authenticated.
func (c *Client) challenge(ctx context.Context, reg name.Registry) (*transport.Challenge, error) {
	c.mu.Lock()
	e, ok := c.pings[reg.RegistryStr()]
	if !ok {
		e = &pingEntry{}
		c.pings[reg.RegistryStr()] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch != nil {
		return e.ch, nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme(reg.RegistryStr())+"://"+reg.RegistryStr()+"/v2/", nil)
	resp, err := (&http.Client{Transport: transport.NewUserAgent(c.base, c.userAgent)}).Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			err = fmt.Errorf("%w (the registry speaks plain HTTP; --plain-http-host %s allows that for it)", err, reg.RegistryStr())
		}
		return nil, err
	}
	defer resp.Body.Close()
	ch := &transport.Challenge{Insecure: resp.Request.URL.Scheme == "http"}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		ch.Scheme, ch.Parameters = parseChallenge(resp.Header.Values("WWW-Authenticate"))
	default:
		return nil, statusErr(resp, http.StatusOK)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	e.ch = ch
	return ch, nil
}

// parseChallenge reads WWW-Authenticate headers (RFC 7235) and picks the
// bearer challenge, else the basic one, else the first.
func parseChallenge(headers []string) (string, map[string]string) {
	type challenge struct {
		scheme string
		params map[string]string
	}
	var all []challenge
	for _, h := range headers {
		for s := strings.TrimSpace(h); s != ""; {
			scheme, rest, _ := strings.Cut(s, " ")
			ch := challenge{scheme: strings.TrimSuffix(scheme, ","), params: map[string]string{}}
			s = strings.TrimSpace(rest)
			for s != "" {
				key, rest, ok := strings.Cut(s, "=")
				if !ok || strings.ContainsAny(strings.TrimSpace(key), " ,") {
					break // the next challenge
				}
				key = strings.ToLower(strings.TrimSpace(key))
				rest = strings.TrimLeft(rest, " ")
				var val string
				if strings.HasPrefix(rest, `"`) {
					var b strings.Builder
					i := 1
					for ; i < len(rest) && rest[i] != '"'; i++ {
						if rest[i] == '\\' && i+1 < len(rest) {
							i++
						}
						b.WriteByte(rest[i])
					}
					val, rest = b.String(), rest[min(i+1, len(rest)):]
				} else {
					val, rest, _ = strings.Cut(rest, ",")
					rest = "," + rest
				}
				ch.params[key] = strings.TrimSpace(val)
				s = strings.TrimLeft(strings.TrimSpace(rest), ",")
				s = strings.TrimSpace(s)
			}
			all = append(all, ch)
		}
	}
	for _, want := range []string{"bearer", "basic"} {
		for _, ch := range all {
			if strings.EqualFold(ch.scheme, want) {
				return ch.scheme, ch.params
			}
		}
	}
	if len(all) > 0 {
		return all[0].scheme, all[0].params
	}
	return "", nil
}

func (c *Client) url(repo name.Repository, path string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s", c.scheme(repo.RegistryStr()), repo.RegistryStr(), repo.RepositoryStr(), path)
}

// do sends one request to a registry.
func (c *Client) do(ctx context.Context, repo name.Repository, push bool, mountFrom string, req *http.Request) (*http.Response, error) {
	rt, err := c.transport(ctx, repo, push, mountFrom)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
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
	var m *Manifest
	err := c.retry1(ctx, func() (err error) {
		m, err = c.getManifest(ctx, ref)
		return err
	})
	return m, err
}

func (c *Client) getManifest(ctx context.Context, ref name.Reference) (*Manifest, error) {
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
		return nil, &InvalidError{What: ref.String(), Reason: fmt.Sprintf("manifest larger than %d bytes", layout.MaxManifestSize)}
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
			return nil, &layout.IntegrityError{Where: ref.String(), Want: want, Got: d.String()}
		}
	}
	mt := strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	return &Manifest{Repo: repo, Digest: d, MediaType: mt, Raw: raw}, nil
}

// InvalidError is content a registry served that cannot be what it claims
// to be: a manifest over the size limit or that does not parse, a referrer
// of another subject.
type InvalidError struct{ What, Reason string }

func (e *InvalidError) Error() string { return e.What + ": " + e.Reason }

func hexSum(h hash.Hash, b []byte) string {
	h.Write(b)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// BlobExists asks whether repo holds a blob (with push access, as before
// an upload).
func (c *Client) BlobExists(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	return c.headBlob(ctx, repo, d, true)
}

func (c *Client) headBlob(ctx context.Context, repo name.Repository, d v1.Hash, push bool) (bool, error) {
	var ok bool
	err := c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodHead, c.url(repo, "blobs/"+d.String()), nil)
		resp, err := c.do(ctx, repo, push, "", req)
		if err != nil {
			return fmt.Errorf("%s@%s: %w", repo, d, err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok = true
			return nil
		case http.StatusNotFound:
			ok = false
			return nil
		}
		return fmt.Errorf("%s@%s: %w", repo, d, statusErr(resp, http.StatusOK))
	})
	return ok, err
}

// ManifestDigest returns the digest a tag or digest resolves to in repo, or
// false when it does not exist.
func (c *Client) ManifestDigest(ctx context.Context, repo name.Repository, ref string) (v1.Hash, bool, error) {
	var d v1.Hash
	var ok bool
	err := c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodHead, c.url(repo, "manifests/"+ref), nil)
		req.Header.Set("Accept", manifestAccept)
		resp, err := c.do(ctx, repo, true, "", req)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", repo, ref, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			ok = false
			return nil
		}
		if err := statusErr(resp, http.StatusOK); err != nil {
			return fmt.Errorf("%s:%s: %w", repo, ref, err)
		}
		if d, err = v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err != nil {
			return fmt.Errorf("%s:%s: registry sent no usable Docker-Content-Digest: %w", repo, ref, err)
		}
		ok = true
		return nil
	})
	return d, ok, err
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

// putManifest puts a manifest; putting the same bytes again is harmless, so
// it is retried.
func (c *Client) putManifest(ctx context.Context, repo name.Repository, ref, mediaType string, raw []byte) (http.Header, error) {
	var h http.Header
	err := c.retry1(ctx, func() error {
		req, _ := http.NewRequest(http.MethodPut, c.url(repo, "manifests/"+ref), bytes.NewReader(raw))
		req.ContentLength = int64(len(raw))
		req.Header.Set("Content-Type", mediaType)
		resp, err := c.do(ctx, repo, true, "", req)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", repo, ref, err)
		}
		defer resp.Body.Close()
		if err := statusErr(resp, http.StatusCreated); err != nil {
			return fmt.Errorf("pushing manifest %s to %s: %w", ref, repo, err)
		}
		h = resp.Header
		return nil
	})
	if h == nil {
		h = http.Header{}
	}
	return h, err
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
	return &StatusError{Code: resp.StatusCode, Message: msg, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

func typ(mt string) types.MediaType { return types.MediaType(mt) }
