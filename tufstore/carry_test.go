package tufstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// targetRepo is a TUF repository serving target files under their
// consistent-snapshot names, as Sigstore's does.
type targetRepo struct {
	repo    *testtuf.Repo
	content map[string][]byte // target name -> content
}

func newTargetRepo(t *testing.T, targets map[string][]byte) *targetRepo {
	t.Helper()
	r, err := testtuf.New(testtuf.Options{Delegations: []testtuf.Delegation{{Name: "keys", Paths: []string{"keys/*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for n, b := range targets {
		role := "targets"
		if strings.HasPrefix(n, "keys/") {
			role = "keys"
		}
		if err := r.AddTarget(role, n, fmt.Sprintf("%x", sha256.Sum256(b)), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Publish(); err != nil {
		t.Fatal(err)
	}
	return &targetRepo{repo: r, content: targets}
}

// serve serves the metadata and the target files; served may replace a
// target's bytes (a tampering mirror).
func (r *targetRepo) serve(t *testing.T, served map[string][]byte) string {
	t.Helper()
	files := r.repo.Files()
	for n, b := range r.content {
		if s, ok := served[n]; ok {
			b = s
		}
		dir, base := "", n
		if i := strings.LastIndex(n, "/"); i >= 0 {
			dir, base = n[:i+1], n[i+1:]
		}
		files[neturl.PathEscape("targets/"+dir+fmt.Sprintf("%x", sha256.Sum256(r.content[n]))+"."+base)] = b
	}
	return testtuf.ServeFiles(t, files)
}

func TestCarryTargets(t *testing.T) {
	trusted := []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	keys := []byte(`{"keys":["k1"]}`)
	r := newTargetRepo(t, map[string][]byte{"trusted_root.json": trusted, "keys/keys.json": keys})
	url := r.serve(t, nil)
	collect := func(t *testing.T, url string) *Chain {
		c, err := Collect(context.Background(), http.DefaultClient, "sig", url)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		glob string
		want string
	}{
		{"trusted_root.json", "trusted_root.json"},
		{"*", "keys/keys.json,trusted_root.json"},
		{"keys/*.json", "keys/keys.json"},
		{"nothing*", ""},
	} {
		c := collect(t, url)
		names, err := c.CollectTargets(context.Background(), http.DefaultClient, url+"/targets", tc.glob)
		if err != nil {
			t.Fatalf("%s: %v", tc.glob, err)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%s: carried %q, want %q", tc.glob, got, tc.want)
		}
		for _, n := range names {
			if string(c.Files[TargetFileName(n)]) != string(r.content[n]) {
				t.Errorf("%s: carried content differs", n)
			}
		}
	}

	t.Run("a mirror serving other bytes", func(t *testing.T) {
		bad := append([]byte(nil), trusted...)
		bad[5] ^= 1
		url := r.serve(t, map[string][]byte{"trusted_root.json": bad})
		_, err := collect(t, url).CollectTargets(context.Background(), http.DefaultClient, url+"/targets", "*")
		if err == nil || !strings.Contains(err.Error(), "does not match its length and sha256") {
			t.Fatalf("got %v", err)
		}
	})

	c := collect(t, url)
	if _, err := c.CollectTargets(context.Background(), http.DefaultClient, url+"/targets", "*"); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, files map[string][]byte) *Session {
		s, err := Update("sig", files, Trusted{Root: r.repo.Root(1)}, time.Now(), Grace{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	t.Run("verified through the session", func(t *testing.T) {
		s := open(t, c.Files)
		if err := s.VerifyCarried(); err != nil {
			t.Fatal(err)
		}
		_, role, err := s.VerifyTarget("keys/keys.json", keys)
		if err != nil || role.String() != "keys" {
			t.Fatalf("role %s: %v", role, err)
		}
	})
	t.Run("tampered in the archive", func(t *testing.T) {
		files := map[string][]byte{}
		for k, v := range c.Files {
			files[k] = v
		}
		bad := append([]byte(nil), keys...)
		bad[3] ^= 1
		files[TargetFileName("keys/keys.json")] = bad
		err := open(t, files).VerifyCarried()
		if err == nil || !strings.Contains(err.Error(), "does not match its TUF target") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("carried but not a target", func(t *testing.T) {
		files := map[string][]byte{TargetFileName("smuggled.json"): []byte("{}")}
		for k, v := range c.Files {
			files[k] = v
		}
		err := open(t, files).VerifyCarried()
		if err == nil || !strings.Contains(err.Error(), "smuggled.json") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("published for clients", func(t *testing.T) {
		s := open(t, c.Files)
		p, err := s.Publish()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pub")
		for range 2 { // the second write replaces the first in one exchange
			if err := p.Write(dir); err != nil {
				t.Fatal(err)
			}
		}
		if ents, _ := os.ReadDir(filepath.Dir(dir)); len(ents) != 1 {
			t.Errorf("publishing left %d entries beside the directory", len(ents))
		}
		rootV, tsV, ok, err := PublishedVersions(dir)
		if err != nil || !ok || rootV != 1 || tsV != r.repo.Version("timestamp") {
			t.Fatalf("published versions: root %d timestamp %d %v %v", rootV, tsV, ok, err)
		}
		for n, want := range r.content {
			if got := clientFetch(t, dir, r.repo.Root(1), time.Time{}, n); string(got) != string(want) {
				t.Errorf("go-tuf fetched %q for %s", got, n)
			}
		}
	})
}

// clientFetch runs go-tuf's updater from root against dir served over HTTP,
// as a client at the site does, and downloads target.
func clientFetch(t *testing.T, dir string, root []byte, at time.Time, target string) []byte {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	cfg, err := config.New(srv.URL+"/", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	cfg.RemoteTargetsURL = srv.URL + "/targets/"
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !at.IsZero() {
		up.UnsafeSetRefTime(at)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh from the published repository: %v", err)
	}
	tf, err := up.GetTargetInfo(target)
	if err != nil {
		t.Fatal(err)
	}
	if at.IsZero() {
		_, b, err := up.DownloadTarget(tf, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return nil
}

// TestPublishSigstore republishes Sigstore's real metadata (15 roots, a
// delegation, consistent snapshots) and runs go-tuf's client over it from
// root 5, as of a time inside its validity. trusted_root.json is listed by
// the real targets role, but its file is not in testdata: collecting it
// fails there, naming it.
func TestPublishSigstore(t *testing.T) {
	url, files := sigstore(t)
	at := time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC)
	c, err := Collect(context.Background(), http.DefaultClient, "sigstore", url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CollectTargets(context.Background(), http.DefaultClient, url+"/targets", "trusted_root.json")
	if err == nil || !strings.Contains(err.Error(), "target trusted_root.json") {
		t.Fatalf("collecting a target testdata does not hold: %v", err)
	}
	pin := files["5.root.json"]
	s, err := Update("sigstore", files, Trusted{Root: pin}, at, Grace{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Publish()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"1.root.json", "15.root.json", "timestamp.json", "165.snapshot.json", "14.targets.json", "8.registry.npmjs.org.json"} {
		if _, ok := p.Files[f]; !ok {
			t.Errorf("published repository lacks %s", f)
		}
	}
	dir := filepath.Join(t.TempDir(), "sigstore")
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	clientFetch(t, dir, pin, at, "registry.npmjs.org/keys.json")
}
