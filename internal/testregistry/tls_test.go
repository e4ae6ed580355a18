package testregistry

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// TestSecureRegistry: with TLS from a test CA, client certificates and
// htpasswd users, the registry answers only clients that trust the CA,
// present a certificate and, past /v2/, a password.
func TestSecureRegistry(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	r := NewWith(t, Options{TLS: ca, ClientCAs: []*CA{clientCA}, Users: map[string]string{"site": "pw"}})
	if r.Scheme != "https" || !r.Reachable() {
		t.Fatalf("scheme %s, reachable %v; log:\n%s", r.Scheme, r.Reachable(), r.LogTail(20))
	}
	pair, err := clientCA.Client("site")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pair.TLS()
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg *tls.Config, user, pw string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+r.Host+"/v2/", nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	full := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}
	for _, tc := range []struct {
		name     string
		cfg      *tls.Config
		user, pw string
		code     int
	}{
		{"password", full, "site", "pw", http.StatusOK},
		{"wrong password", full, "site", "nope", http.StatusUnauthorized},
		{"anonymous", full, "", "", http.StatusUnauthorized},
		{"no client certificate", &tls.Config{RootCAs: ca.Pool()}, "site", "pw", 0},
		{"CA not trusted", &tls.Config{Certificates: []tls.Certificate{cert}}, "site", "pw", 0},
	} {
		code, err := get(tc.cfg, tc.user, tc.pw)
		if code != tc.code || (tc.code == 0) != (err != nil) {
			t.Errorf("%s: status %d, error %v; want %d", tc.name, code, err, tc.code)
		}
	}
}
