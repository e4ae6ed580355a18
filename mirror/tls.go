package mirror

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// CertsDirsEnv names the environment variable that replaces the default
// certs.d roots: a list of directories separated like PATH (":" on Unix);
// set and empty, no certs.d directory is read.
const CertsDirsEnv = "RELOCATE_CERTS_DIRS"

// DefaultCertsDirs are the roots searched for a registry's certificates, in
// order, as podman and skopeo search them (docker reads the last only):
// ~/.config/containers/certs.d (not for root), /etc/containers/certs.d,
// /etc/docker/certs.d; or the list in $RELOCATE_CERTS_DIRS.
func DefaultCertsDirs() []string {
	if v, ok := os.LookupEnv(CertsDirsEnv); ok {
		return filepath.SplitList(v)
	}
	var dirs []string
	if os.Geteuid() != 0 {
		if home, err := os.UserHomeDir(); err == nil {
			dirs = append(dirs, filepath.Join(home, ".config", "containers", "certs.d"))
		}
	}
	return append(dirs, "/etc/containers/certs.d", "/etc/docker/certs.d")
}

// tlsOptions are the client's TLS settings beyond the system's defaults.
type tlsOptions struct {
	caFiles   []string
	certsDirs []string
	dirsSet   bool // WithCertsDirs was given: no defaults
	insecure  bool
	warn      func(string)
}

// WithCAFiles trusts the CA certificates in these PEM files for every host,
// besides the system's roots: a site's private CA.
func WithCAFiles(files ...string) Option {
	return func(c *Client) { c.tlsOpt.caFiles = append(c.tlsOpt.caFiles, files...) }
}

// WithCertsDirs sets the roots searched for per-host certificates instead
// of DefaultCertsDirs. In each root, the directory named after the host
// (HOST:PORT, or HOST for port 443) holds, as docker and containers/image
// read them: *.crt, CA certificates trusted for that host; *.cert with the
// *.key of the same name, a client certificate (client.cert and client.key
// by convention) for mutual TLS. The first root that has a directory for a
// host is the one used.
func WithCertsDirs(dirs ...string) Option {
	return func(c *Client) { c.tlsOpt.certsDirs, c.tlsOpt.dirsSet = dirs, true }
}

// WithInsecureSkipTLSVerify skips verifying the TLS certificates of the
// registries the client is asked to talk to (not of token servers or
// redirect targets on other hosts). Each such host is reported once through
// WithWarnings when first contacted.
func WithInsecureSkipTLSVerify(b bool) Option { return func(c *Client) { c.tlsOpt.insecure = b } }

// WithWarnings receives warnings meant for the user, such as a registry
// whose certificate is not verified.
func WithWarnings(f func(msg string)) Option { return func(c *Client) { c.tlsOpt.warn = f } }

// Err reports a problem with the client's options (an unreadable CA file,
// a malformed plain-HTTP host), which every request would fail with.
func (c *Client) Err() error { return c.optErr }

// TLSError is a TLS failure with a host: its certificate is not trusted,
// it refused ours, or the host's certificate files are unusable.
type TLSError struct {
	Host string
	Err  error
	Hint string
}

func (e *TLSError) Error() string {
	msg := fmt.Sprintf("TLS with %s: %v", e.Host, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *TLSError) Unwrap() error { return e.Err }

// withTLS puts the TLS settings under rt. They need an *http.Transport to
// clone per host; another RoundTripper (a test's) is used as it is.
func (c *Client) withTLS(rt http.RoundTripper) http.RoundTripper {
	base, ok := rt.(*http.Transport)
	if !ok {
		if len(c.tlsOpt.caFiles) > 0 || c.tlsOpt.dirsSet || c.tlsOpt.insecure {
			c.optErr = errors.New("TLS options need an *http.Transport as base transport")
		}
		return rt
	}
	t := &tlsTransport{c: c, base: base, hosts: map[string]*hostTransport{}, dirs: c.tlsOpt.certsDirs}
	if !c.tlsOpt.dirsSet {
		t.dirs = DefaultCertsDirs()
	}
	for _, f := range c.tlsOpt.caFiles {
		certs, err := readCAFile(f)
		if err != nil {
			c.optErr = err
			return rt
		}
		t.cas = append(t.cas, certs...)
	}
	return t
}

func readCAFile(f string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	certs, err := parsePEMCerts(b)
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", f, err)
	}
	return certs, nil
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}

// tlsTransport picks the TLS settings of each host: the system roots plus
// the CA files, plus the host's certs.d directory, and no verification only
// for registries when asked. Hosts with nothing special share the base
// transport and its connections.
type tlsTransport struct {
	c    *Client
	base *http.Transport
	cas  []*x509.Certificate
	dirs []string

	mu    sync.Mutex
	hosts map[string]*hostTransport
}

type hostTransport struct {
	rt  http.RoundTripper
	err error
}

func (t *tlsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.EqualFold(r.URL.Scheme, "https") {
		return t.base.RoundTrip(r)
	}
	host := strings.ToLower(r.URL.Host)
	h := t.forHost(host)
	if h.err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, h.err
	}
	resp, err := h.rt.RoundTrip(r)
	if err != nil {
		err = explainTLS(host, err)
	}
	return resp, err
}

func (t *tlsTransport) forHost(host string) *hostTransport {
	insecure := t.c.tlsOpt.insecure && t.c.isRegistry(host)
	key := host
	if insecure {
		key += "|insecure"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.hosts[key]; ok {
		return h
	}
	h := t.build(host, insecure)
	t.hosts[key] = h
	if insecure && h.err == nil && t.c.tlsOpt.warn != nil {
		t.c.tlsOpt.warn(fmt.Sprintf("the TLS certificate of %s is not verified (--insecure-skip-tls-verify): anyone on the network path can read and change what is sent, credentials included", host))
	}
	return h
}

func (t *tlsTransport) build(host string, insecure bool) *hostTransport {
	dir := t.certsDir(host)
	if dir == "" && len(t.cas) == 0 && !insecure {
		return &hostTransport{rt: t.base}
	}
	cfg := t.base.TLSClientConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	roots := cfg.RootCAs
	if roots == nil {
		// The system's roots stay trusted besides the site's CAs.
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
	} else {
		roots = roots.Clone()
	}
	for _, ca := range t.cas {
		roots.AddCert(ca)
	}
	if dir != "" {
		cas, pairs, err := readCertsDir(dir)
		if err != nil {
			return &hostTransport{err: &TLSError{Host: host, Err: err}}
		}
		for _, ca := range cas {
			roots.AddCert(ca)
		}
		cfg.Certificates = append(cfg.Certificates, pairs...)
	}
	cfg.RootCAs = roots
	cfg.InsecureSkipVerify = insecure
	tr := t.base.Clone()
	tr.TLSClientConfig = cfg
	return &hostTransport{rt: tr}
}

// certsDir is the host's directory in the first root that has one.
// Docker names it HOST:PORT, or HOST for the default port.
func (t *tlsTransport) certsDir(host string) string {
	names := []string{host}
	if h, port, err := net.SplitHostPort(host); err == nil && port == "443" {
		names = append(names, h)
	} else if err != nil {
		names = append(names, host+":443")
	}
	for _, root := range t.dirs {
		if root == "" {
			continue
		}
		for _, n := range names {
			d := filepath.Join(root, n)
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				return d
			}
		}
	}
	return ""
}

// readCertsDir reads a host's certs.d directory the way docker does: *.crt
// are CAs; *.cert and *.key come in pairs of the same name.
func readCertsDir(dir string) (cas []*x509.Certificate, pairs []tls.Certificate, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	has := map[string]bool{}
	for _, e := range entries {
		has[e.Name()] = true
	}
	for _, e := range entries {
		n := e.Name()
		p := filepath.Join(dir, n)
		switch {
		case strings.HasSuffix(n, ".crt"):
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			certs, err := parsePEMCerts(b)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", p, err)
			}
			cas = append(cas, certs...)
		case strings.HasSuffix(n, ".cert"):
			key := strings.TrimSuffix(n, ".cert") + ".key"
			if !has[key] {
				return nil, nil, fmt.Errorf("%s: client certificate without its key %s (CA certificates end in .crt)", p, key)
			}
			pair, err := tls.LoadX509KeyPair(p, filepath.Join(dir, key))
			if err != nil {
				return nil, nil, fmt.Errorf("client certificate %s: %w", p, err)
			}
			pairs = append(pairs, pair)
		case strings.HasSuffix(n, ".key"):
			if cert := strings.TrimSuffix(n, ".key") + ".cert"; !has[cert] {
				return nil, nil, fmt.Errorf("%s: key without its client certificate %s", p, cert)
			}
		}
	}
	return cas, pairs, nil
}

// explainTLS names the host in a certificate failure and says what would
// fix it.
func explainTLS(host string, err error) error {
	var (
		uae x509.UnknownAuthorityError
		cve *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &uae):
		return &TLSError{Host: host, Err: err, Hint: fmt.Sprintf("trust its CA with --ca-file FILE or in a certs.d directory such as /etc/docker/certs.d/%s/ca.crt", host)}
	case errors.As(err, &cve):
		return &TLSError{Host: host, Err: err}
	case strings.Contains(err.Error(), "remote error: tls:"):
		// The server refused the handshake: most often a client certificate
		// it wants and did not get or does not trust.
		return &TLSError{Host: host, Err: err, Hint: fmt.Sprintf("if the registry requires a client certificate, put client.cert and client.key in a certs.d directory such as /etc/docker/certs.d/%s/", host)}
	}
	return err
}

// isRegistry reports whether host is one the client was asked to talk to.
func (c *Client) isRegistry(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registries[strings.ToLower(host)]
}
