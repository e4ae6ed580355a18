package mirror

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
)

const (
	testUser     = "site"
	testPassword = "correct horse battery staple"
)

// basicRegistry is an in-memory registry that wants HTTP basic
// authentication, as distribution's htpasswd does.
func basicRegistry(t *testing.T) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			// A hostile registry echoing what it was sent.
			fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad password %s"}]}`, p)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// tokenRegistry is an in-memory registry with a token server that checks
// basic credentials, as Docker Hub and Harbor have. (go-containerregistry
// accepts a token server on a loopback address only on the registry's own
// host and port.)
func tokenRegistry(t *testing.T) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var realm string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			token := "anonymous"
			if u, p, ok := r.BasicAuth(); ok {
				if u != testUser || p != testPassword {
					w.WriteHeader(http.StatusUnauthorized)
					io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"nope"}]}`)
					return
				}
				token = "granted"
			}
			json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if r.Header.Get("Authorization") != "Bearer granted" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s",service="test"`, realm))
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	realm = srv.URL + "/token"
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestAuthErrors: a registry that wants credentials and got none says so;
// one that refused the credentials given says "authentication failed";
// neither is retried and neither message holds the password.
func TestAuthErrors(t *testing.T) {
	for kind, start := range map[string]func(*testing.T) string{"basic": basicRegistry, "token": tokenRegistry} {
		t.Run(kind, func(t *testing.T) {
			host := start(t)
			client := func(k authn.Keychain) *Client { return New(fast, WithPlainHTTPHosts(host), WithKeychain(k)) }
			err := reach(client(StaticKeychain(testUser, testPassword, host)), host)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			if err := client(StaticKeychain(testUser, testPassword, host)).CheckCredentials(context.Background(), host); err != nil {
				t.Errorf("CheckCredentials with the right password: %v", err)
			}

			for _, tc := range []struct {
				name    string
				k       authn.Keychain
				anon    bool
				message string
			}{
				{"wrong password", StaticKeychain(testUser, "wrong "+testPassword, host), false, "authentication failed for " + host},
				{"no credentials", authn.NewMultiKeychain(), true, "no credentials for " + host},
				{"credentials for another registry", StaticKeychain(testUser, testPassword, "127.0.0.1:1"), true, "no credentials for " + host},
			} {
				c := client(tc.k)
				for what, err := range map[string]error{"request": reach(c, host), "CheckCredentials": c.CheckCredentials(context.Background(), host)} {
					var ae *AuthError
					if !errors.As(err, &ae) || ae.Anonymous != tc.anon || ae.Host != host || !strings.Contains(err.Error(), tc.message) {
						t.Errorf("%s, %s: %v, want %q", tc.name, what, err, tc.message)
						continue
					}
					if strings.Contains(err.Error(), testPassword) {
						t.Errorf("%s, %s: the message holds the password: %v", tc.name, what, err)
					}
					if tc.anon == strings.Contains(err.Error(), "authentication failed") {
						t.Errorf("%s, %s: %v: the two cases read alike", tc.name, what, err)
					}
					if ok, _ := transient(err); ok {
						t.Errorf("%s, %s: retried", tc.name, what)
					}
				}
			}
		})
	}
}

func TestCleanCode(t *testing.T) {
	for in, want := range map[string]string{"UNAUTHORIZED": "UNAUTHORIZED", "insufficient_scope": "insufficient_scope", "pass word": "", "s3cret": "", "": ""} {
		if got := cleanCode(in); got != want {
			t.Errorf("cleanCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSaveCredentials: login's credentials land in config.json as docker
// writes them (base64 user:password, mode 0600, other entries kept) and
// are read back; a config.json that does not parse is left alone.
func TestSaveCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	os.MkdirAll(dir, 0o700)
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"auths":{"other.example":{"auth":"b3RoZXI6cHc="}},"proxies":{"default":{"httpProxy":"http://proxy:3128"}},"x-custom":[1,2]}`), 0o644)

	where, err := SaveCredentials(dir, "registry.example:5000", testUser, testPassword)
	if err != nil || where != cfg {
		t.Fatalf("SaveCredentials: %q, %v", where, err)
	}
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	var doc struct {
		Auths   map[string]map[string]string
		Proxies map[string]any
		Custom  []int `json:"x-custom"`
	}
	raw, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	if doc.Auths["registry.example:5000"]["auth"] != want || doc.Auths["other.example"]["auth"] != "b3RoZXI6cHc=" || doc.Proxies == nil || len(doc.Custom) != 2 {
		t.Errorf("config.json after login:\n%s", raw)
	}
	if strings.Contains(string(raw), testPassword) {
		t.Error("the password is in clear in config.json")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	repo, _ := name.NewRepository("registry.example:5000/team/app")
	auth, err := ConfigKeychain(dir).Resolve(repo)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := auth.Authorization()
	if got.Username != testUser || got.Password != testPassword {
		t.Errorf("read back %q", got.Username)
	}
	if _, err := SaveCredentials(dir, "docker.io", testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(cfg)
	if !strings.Contains(string(raw), `"https://index.docker.io/v1/"`) {
		t.Errorf("Docker Hub is not filed under its historical key:\n%s", raw)
	}

	os.WriteFile(cfg, []byte(`{"auths": {`), 0o600)
	if _, err := SaveCredentials(dir, "registry.example:5000", testUser, testPassword); err == nil || !strings.Contains(err.Error(), "leaves it alone") {
		t.Errorf("a config.json that does not parse: %v", err)
	}
	if raw, _ := os.ReadFile(cfg); string(raw) != `{"auths": {` {
		t.Errorf("a config.json that does not parse was rewritten: %s", raw)
	}

	fresh := filepath.Join(t.TempDir(), "new", "docker")
	if _, err := SaveCredentials(fresh, "registry.example:5000", testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("a new config directory: %v %v, want mode 0700", err, fi.Mode().Perm())
	}
}

// TestSaveCredentialsHelper: a credential helper the config names gets the
// credentials, as with docker login; config.json is left as it was.
func TestSaveCredentialsHelper(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a shell-script helper")
	}
	bin := t.TempDir()
	got := filepath.Join(t.TempDir(), "stored")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = store ] || exit 1\ncat > %q\n", got)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	conf := `{"credHelpers":{"registry.example:5000":"test"}}`
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(conf), 0o600)
	where, err := SaveCredentials(dir, "registry.example:5000", testUser, testPassword)
	if err != nil || where != "docker-credential-test" {
		t.Fatalf("SaveCredentials: %q, %v", where, err)
	}
	var stored struct{ ServerURL, Username, Secret string }
	raw, _ := os.ReadFile(got)
	if err := json.Unmarshal(raw, &stored); err != nil || stored.ServerURL != "registry.example:5000" || stored.Username != testUser || stored.Secret != testPassword {
		t.Errorf("the helper got %v (%v)", stored.ServerURL, err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(raw) != conf {
		t.Errorf("config.json changed: %s", raw)
	}
}
