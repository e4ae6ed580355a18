package mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

// pki is a site's private CA, a CA for client certificates, and files of
// both.
type pki struct {
	ca, clientCA *testregistry.CA
	caFile       string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testregistry.NewCA("site CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := testregistry.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, clientCA: clientCA, caFile: f}
}

// tlsRegistry serves an in-memory registry over TLS on 127.0.0.1 with a
// certificate from p's CA, requiring a client certificate from p's client
// CA when mutual is set.
func (p *pki) tlsRegistry(t *testing.T, mutual bool, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	pair, err := p.ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pair.TLS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if mutual {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = p.clientCA.Pool()
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// reach asks the registry at host for a manifest: nil when the
// conversation works (the manifest does not exist).
func reach(c *Client, host string) error {
	repo, err := c.ParseRepository(host + "/team/app")
	if err != nil {
		return err
	}
	_, _, err = c.ManifestDigest(context.Background(), repo, "v1")
	return err
}

// certsDir makes a certs.d root with files for host.
func certsDir(t *testing.T, host string, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for name, b := range files {
		p := filepath.Join(root, host, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noDirs() Option { return WithCertsDirs() }

// TestPrivateCA: a registry whose certificate comes from a private CA is
// refused, naming the host and the fix, until the CA is given in a file or
// in the host's certs.d directory (or $RELOCATE_CERTS_DIRS).
func TestPrivateCA(t *testing.T) {
	p := newPKI(t)
	host := p.tlsRegistry(t, false, nil)

	err := reach(New(fast, noDirs()), host)
	var te *TLSError
	if !errors.As(err, &te) || te.Host != host || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("untrusted CA: %v, want a TLS error naming %s and --ca-file", err, host)
	}
	if ok, _ := transient(err); ok {
		t.Error("an untrusted certificate is retried")
	}
	if err := reach(New(fast, noDirs(), WithCAFiles(p.caFile)), host); err != nil {
		t.Errorf("with --ca-file: %v", err)
	}

	other := certsDir(t, "127.0.0.1:1", map[string][]byte{"ca.crt": p.ca.PEM})
	good := certsDir(t, host, map[string][]byte{"ca.crt": p.ca.PEM})
	if err := reach(New(fast, WithCertsDirs(other, good)), host); err != nil {
		t.Errorf("with certs.d/%s/ca.crt: %v", host, err)
	}
	if err := reach(New(fast, WithCertsDirs(other)), host); !errors.As(err, &te) {
		t.Errorf("with another host's certs.d directory: %v", err)
	}
	t.Setenv(CertsDirsEnv, other+string(filepath.ListSeparator)+good)
	if err := reach(New(fast), host); err != nil {
		t.Errorf("with $%s: %v", CertsDirsEnv, err)
	}
	t.Setenv(CertsDirsEnv, "")
	if err := reach(New(fast), host); !errors.As(err, &te) {
		t.Errorf("with $%s empty: %v", CertsDirsEnv, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "absent.pem")} {
		if err := New(WithCAFiles(f)).Err(); err == nil || !strings.Contains(err.Error(), filepath.Base(f)) {
			t.Errorf("CA file %s: %v", f, err)
		}
	}
}

// TestSystemRootsKept: the site's CAs are trusted besides the system's
// roots, not instead of them.
func TestSystemRootsKept(t *testing.T) {
	sys, err := x509.SystemCertPool()
	if err != nil || len(sys.Subjects()) == 0 { //nolint:staticcheck // counting, not verifying
		t.Skip("no system roots here")
	}
	p := newPKI(t)
	c := New(noDirs(), WithCAFiles(p.caFile))
	tt := c.inner.(*tlsTransport)
	h := tt.build("registry.example:443", false)
	got := h.rt.(*http.Transport).TLSClientConfig.RootCAs
	if n, want := len(got.Subjects()), len(sys.Subjects())+1; n != want { //nolint:staticcheck
		t.Errorf("%d roots, want the %d system roots and the site's CA", n, want-1)
	}
}

// TestMutualTLS: a registry that requires a client certificate gets the
// one in the host's certs.d directory, as client.cert and client.key or as
// any NAME.cert and NAME.key; without one the failure says what is missing.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	host := p.tlsRegistry(t, true, nil)
	pair, err := p.clientCA.Client("site")
	if err != nil {
		t.Fatal(err)
	}

	err = reach(New(fast, noDirs(), WithCAFiles(p.caFile)), host)
	var te *TLSError
	if !errors.As(err, &te) || te.Host != host || !strings.Contains(err.Error(), "client.cert") {
		t.Fatalf("no client certificate: %v, want a TLS error naming %s and client.cert", err, host)
	}
	for _, name := range []string{"client", "site"} {
		root := certsDir(t, host, map[string][]byte{"ca.crt": p.ca.PEM, name + ".cert": pair.Cert, name + ".key": pair.Key})
		if err := reach(New(fast, WithCertsDirs(root)), host); err != nil {
			t.Errorf("with %s.cert and %s.key: %v", name, name, err)
		}
	}
	for name, files := range map[string]map[string][]byte{
		"client.cert": {"client.cert": pair.Cert},
		"client.key":  {"client.key": pair.Key},
	} {
		root := certsDir(t, host, files)
		err := reach(New(fast, WithCertsDirs(root), WithCAFiles(p.caFile)), host)
		if !errors.As(err, &te) || !strings.Contains(err.Error(), filepath.Join(root, host, name)) {
			t.Errorf("%s alone: %v, want an error naming it", name, err)
		}
	}
}

// TestInsecureSkipVerify: only when asked, only for the registries named,
// and with a warning naming each, once.
func TestInsecureSkipVerify(t *testing.T) {
	p := newPKI(t)
	// A registry that sends blob downloads to another host, whose
	// certificate is not trusted either.
	storage := p.tlsRegistry(t, false, nil)
	host := p.tlsRegistry(t, false, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") {
				http.Redirect(w, r, "https://"+storage+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	var mu sync.Mutex
	var warnings []string
	warn := WithWarnings(func(m string) { mu.Lock(); warnings = append(warnings, m); mu.Unlock() })

	if err := reach(New(fast, noDirs(), warn), host); !errors.As(err, new(*TLSError)) {
		t.Fatalf("without --insecure-skip-tls-verify: %v", err)
	}
	c := New(fast, noDirs(), warn, WithInsecureSkipTLSVerify(true))
	for range 2 {
		if err := reach(c, host); err != nil {
			t.Fatalf("with --insecure-skip-tls-verify: %v", err)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], host) || !strings.Contains(warnings[0], "not verified") {
		t.Errorf("warnings %q, want one naming %s", warnings, host)
	}
	repo, _ := c.ParseRepository(host + "/team/app")
	err := c.FetchBlob(context.Background(), repo, desc("layer"), io.Discard)
	if !errors.As(err, new(*TLSError)) || !strings.Contains(err.Error(), storage) {
		t.Errorf("a redirect to another host with an untrusted certificate: %v, want a TLS error naming %s", err, storage)
	}
}
