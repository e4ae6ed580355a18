package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveSigstore serves Sigstore's real root-signing metadata (testdata) under
// consistent-snapshot names.
func serveSigstore(t *testing.T) (url, dir string) {
	t.Helper()
	dir = filepath.Join("..", "..", "testdata", "sigstore-root-signing", "metadata")
	files := map[string]string{
		"timestamp.json":            "timestamp.json",
		"165.snapshot.json":         "snapshot.json",
		"14.targets.json":           "targets.json",
		"8.registry.npmjs.org.json": "registry.npmjs.org.json",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		p, ok := files[name]
		if ok {
			p = filepath.Join(dir, p)
		} else if strings.HasSuffix(name, ".root.json") && !strings.Contains(name, "/") {
			p = filepath.Join(dir, "root_history", name)
		}
		b, err := os.ReadFile(p)
		if p == "" || err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, dir
}

// TestSigstoreMetadataExpired carries real production TUF metadata whose root
// expired on 2026-11-20: export packs it (unverified), and verify and import
// refuse it at the local clock, with nothing tagged and no state written.
func TestSigstoreMetadataExpired(t *testing.T) {
	needRegistries(t)
	url, dir := serveSigstore(t)
	pin := filepath.Join(dir, "root_history", "5.root.json")
	path := filepath.Join(t.TempDir(), "site.tar")

	r := relocateCmd(t, nil, "export", "-o", path, "--plain-http", refs[0], "--tuf", "sigstore="+url, "--tuf-root", "sigstore="+pin)
	if r.code != exitRefused || !strings.Contains(r.stderr, "expired") {
		t.Fatalf("export verifying expired metadata: exit %d\n%s", r.code, r.stderr)
	}
	r = mustRun(t, "export", "-o", path, "--plain-http", refs[0], "--tuf", "sigstore="+url)
	if !strings.Contains(r.stderr, "NOT verified") {
		t.Errorf("export does not say the chain was not verified:\n%s", r.stderr)
	}
	state := t.TempDir()
	for _, args := range [][]string{
		{"verify", path, "--state", state, "--trust", "sigstore=" + pin},
		{"import", path, "--to", dst.Host + "/sigstore", "--plain-http", "--state", state, "--trust", "sigstore=" + pin},
	} {
		r := relocateCmd(t, nil, args...)
		if r.code != exitRefused || !strings.Contains(r.stderr, "expired") || !strings.Contains(r.stderr, "tuf:sigstore") {
			t.Errorf("%s: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	if tags := tagsUnder(t, "sigstore"); len(tags) != 0 {
		t.Errorf("refused import tagged %v", tags)
	}
	if _, err := os.Lstat(filepath.Join(state, "current")); err == nil {
		t.Error("a refused import wrote trusted state")
	}
	// No pin, no state: refused, and the message shows how to pin.
	r = relocateCmd(t, nil, "verify", path, "--state", t.TempDir())
	if r.code != exitRefused || !strings.Contains(r.stderr, "--trust sigstore=root.json") {
		t.Errorf("trust on first use: exit %d\n%s", r.code, r.stderr)
	}
}
