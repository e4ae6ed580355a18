package main

// Keyless signatures end to end: sigstore-go's virtual Fulcio and Rekor sign
// (in process: the real cosign would need an OIDC token and a Fulcio), the
// signatures travel in cosign's `.sig` form, and the Sigstore trusted root
// travels as a target of a TUF repository that the site pins, is verified
// through TUF at the site, and is republished there for TUF clients.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testsigstore"
	"github.com/relocate-dev/relocate/internal/testtools"
	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	keylessIssuer  = "https://issuer.example"
	keylessSubject = "release@example.com"
)

// virtualSigstore is sigstore-go's virtual Fulcio, Rekor and CT log with
// its trusted root as a trusted_root.json.
type virtualSigstore struct {
	vs          *ca.VirtualSigstore
	trustedRoot []byte
}

func newVirtualSigstore(t *testing.T) *virtualSigstore {
	t.Helper()
	vs, b := testsigstore.New(t)
	return &virtualSigstore{vs: vs, trustedRoot: b}
}

// sign pushes a keyless cosign signature of im (`.sig` tag) made for
// subject: the certificate and chain, and the Rekor entry with its signed
// entry timestamp, in the layer's annotations as cosign writes them. tamper
// may change the Rekor bundle.
func (v *virtualSigstore) sign(t *testing.T, im testimages.Image, subject string, tamper func(*testsigstore.RekorBundle)) {
	t.Helper()
	repo := strings.TrimSuffix(im.Ref, ":v1")
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` +
		im.Digest + `"},"type":"cosign container image signature"},"optional":null}`)
	ann := testsigstore.CosignAnnotations(t, v.vs, subject, keylessIssuer, payload, tamper)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(payload, testimages.CosignPayloadType), Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.ParseReference(repo+":"+strings.Replace(im.Digest, ":", "-", 1)+".sig", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

// attachBundle attaches to im a Sigstore bundle referrer, as cosign
// --new-bundle-format does: a v0.3 bundle with a DSSE envelope over an
// in-toto statement of cosign's sign predicate about im, the certificate,
// the Rekor entry with its inclusion proof and signed entry timestamp, and a
// TSA timestamp.
func (v *virtualSigstore) attachBundle(t *testing.T, im testimages.Image, subject string) {
	t.Helper()
	hexd := strings.TrimPrefix(im.Digest, "sha256:")
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"` + strings.TrimSuffix(im.Ref, ":v1") +
		`","digest":{"sha256":"` + hexd + `"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`)
	b, err := protojson.Marshal(testsigstore.Bundle(t, v.vs, subject, keylessIssuer, stmt))
	if err != nil {
		t.Fatal(err)
	}
	repo := strings.TrimSuffix(im.Ref, ":v1")
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	if _, err := testimages.Attach(context.Background(), repo, descOf(t, repo, im.Digest), bundleType, bundleType, b); err != nil {
		t.Fatal(err)
	}
}

// sigstoreTUF is a TUF repository serving trusted_root.json as a target,
// as Sigstore's own does, with consistent-snapshot target names.
type sigstoreTUF struct {
	repo    *testtuf.Repo
	root    string // root v1, pinned out of band
	targets map[string][]byte
}

func newSigstoreTUF(t *testing.T, trustedRoot []byte) *sigstoreTUF {
	t.Helper()
	r, err := testtuf.New(testtuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &sigstoreTUF{repo: r, targets: map[string][]byte{}}
	s.setTarget(t, "trusted_root.json", trustedRoot)
	s.root = filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(s.root, r.Root(1), 0o644)
	return s
}

func (s *sigstoreTUF) setTarget(t *testing.T, name string, b []byte) {
	t.Helper()
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	if err := s.repo.AddTarget("targets", name, sum, int64(len(b)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.repo.Publish(); err != nil {
		t.Fatal(err)
	}
	s.targets[neturl.PathEscape("targets/"+sum+"."+name)] = b
}

// serve serves the repository as it is now, with its target files.
func (s *sigstoreTUF) serve(t *testing.T) string {
	t.Helper()
	files := s.repo.Files()
	for n, b := range s.targets {
		files[n] = b
	}
	return testtuf.ServeFiles(t, files)
}

func TestSignaturePolicyKeyless(t *testing.T) {
	needRegistries(t)
	v := newVirtualSigstore(t)
	tuf := newSigstoreTUF(t, v.trustedRoot)
	url := tuf.serve(t)

	good := pushOne(t, "sigs/keyless/good", 1301)
	v.sign(t, good, keylessSubject, nil)
	stranger := pushOne(t, "sigs/keyless/stranger", 1302)
	v.sign(t, stranger, "mallory@example.com", nil)
	tampered := pushOne(t, "sigs/keyless/tampered", 1303)
	v.sign(t, tampered, keylessSubject, func(rb *testsigstore.RekorBundle) { rb.Payload.IntegratedTime-- })

	export := func(t *testing.T, im testimages.Image) string {
		path := filepath.Join(t.TempDir(), "site.tar")
		mustRun(t, "export", "-o", path, "--plain-http", "-q", im.Ref, "--tuf", "sigstore="+url,
			"--tuf-root", "sigstore="+tuf.root, "--tuf-targets", "sigstore=trusted_root.json")
		return path
	}
	// The Sigstore repository vouches for no image: the site admits them
	// unvouched by TUF, and requires their signatures instead.
	policy := `{"allowUnvouched": ["` + src.Host + `/sigs/keyless/*"],
		"sigstoreTrustedRoot": {"tuf": "sigstore", "target": "trusted_root.json"},
		"signatures": [{"paths": ["` + src.Host + `/sigs/keyless/*"],
			"require": [{"name": "release identity", "cosign": {"identities": [{"issuer": "` + keylessIssuer + `", "subject": "` + keylessSubject + `"}], "scts": 0}}]}]}`

	bundled := pushOne(t, "sigs/keyless/bundled", 1304)
	v.attachBundle(t, bundled, keylessSubject)
	bundledStranger := pushOne(t, "sigs/keyless/bundled-stranger", 1305)
	v.attachBundle(t, bundledStranger, "mallory@example.com")

	for _, tc := range []struct {
		name string
		im   testimages.Image
		want string
	}{
		{"identity mismatch", stranger, "release identity: identity mismatch"},
		{"identity mismatch, Sigstore bundle referrer", bundledStranger, "release identity: identity mismatch"},
		{"tampered Rekor entry", tampered, "release identity: bad transparency-log proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSigSite(t)
			s.refuse(export(t, tc.im), tc.im.Ref, []string{"--policy", s.policy(policy), "--state", t.TempDir(), "--trust", "sigstore=" + tuf.root}, tc.want)
		})
	}

	t.Run("no trusted root carried", func(t *testing.T) {
		s := newSigSite(t)
		path := filepath.Join(t.TempDir(), "site.tar")
		mustRun(t, "export", "-o", path, "--plain-http", "-q", good.Ref, "--tuf", "sigstore="+url)
		s.refuse(path, good.Ref, []string{"--policy", s.policy(policy), "--state", t.TempDir(), "--trust", "sigstore=" + tuf.root},
			"needs a Sigstore trusted root", "--tuf-targets sigstore=trusted_root.json")
	})

	t.Run("Sigstore bundle referrer", func(t *testing.T) {
		s := newSigSite(t)
		r := s.accept(export(t, bundled), "--policy", s.policy(policy), "--state", t.TempDir(), "--trust", "sigstore="+tuf.root)
		if !strings.Contains(r.stderr, "sigstore-bundle") {
			t.Errorf("the bundle is not what satisfied the rule:\n%s", r.stderr)
		}
	})

	t.Run("site's own trusted root file", func(t *testing.T) {
		s := newSigSite(t)
		path := filepath.Join(t.TempDir(), "site.tar")
		mustRun(t, "export", "-o", path, "--plain-http", "-q", good.Ref)
		trFile := filepath.Join(s.dir, "trusted_root.json")
		os.WriteFile(trFile, v.trustedRoot, 0o644)
		p := s.policy(`{"signatures": [{"paths": ["` + src.Host + `/sigs/keyless/*"],
			"require": [{"cosign": {"identities": [{"issuer": "` + keylessIssuer + `", "subject": "` + keylessSubject + `"}], "scts": 0}}]}]}`)
		s.accept(path, "--policy", p, "--state", t.TempDir(), "--sigstore-trusted-root", trFile)
	})

	t.Run("valid identity, trusted root published", func(t *testing.T) {
		s := newSigSite(t)
		state := t.TempDir()
		pub := filepath.Join(t.TempDir(), "sigstore-tuf")
		args := []string{"--policy", s.policy(policy), "--state", state, "--trust", "sigstore=" + tuf.root}
		path := export(t, good)
		r := relocateCmd(t, nil, append([]string{"verify", path, "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("verify: exit %d\n%s", r.code, r.stderr)
		}
		var rep struct {
			Signatures struct{ TrustedRoot string }
			Trust      struct {
				Repositories []struct {
					Name    string
					Targets []struct{ Name, SHA256 string }
				}
			}
		}
		json.Unmarshal([]byte(r.stdout), &rep)
		if !strings.Contains(rep.Signatures.TrustedRoot, "TUF sigstore target trusted_root.json") ||
			len(rep.Trust.Repositories) != 1 || len(rep.Trust.Repositories[0].Targets) != 1 {
			t.Fatalf("verify report: %s", r.stdout)
		}
		r = mustRun(t, append([]string{"import", path, "--to", dst.Host + "/" + s.prefix, "--plain-http", "--publish-tuf", "sigstore=" + pub}, args...)...)
		if !strings.Contains(r.stderr, "published TUF sigstore to "+pub) {
			t.Errorf("import does not report publishing:\n%s", r.stderr)
		}
		sum := fmt.Sprintf("%x", sha256.Sum256(v.trustedRoot))
		snap, targets := tuf.repo.Version("snapshot"), tuf.repo.Version("targets")
		for _, f := range []string{"1.root.json", "timestamp.json", fmt.Sprintf("%d.snapshot.json", snap), fmt.Sprintf("%d.targets.json", targets), "targets/" + sum + ".trusted_root.json"} {
			if _, err := os.Stat(filepath.Join(pub, f)); err != nil {
				t.Errorf("published repository lacks %s", f)
			}
		}
		// go-tuf's client, unchanged, over HTTP from the published directory.
		if got := tufClientFetch(t, pub, tuf.root, "trusted_root.json"); string(got) != string(v.trustedRoot) {
			t.Errorf("go-tuf fetched %d bytes of trusted_root.json, want the carried %d", len(got), len(v.trustedRoot))
		}

		// The real cosign, unchanged, initialised from the published
		// repository and the pinned root, verifies the relocated image
		// keyless. cosign v2.6.5 reads trusted_root.json through
		// sigstore-go's TUF client, which fetches over HTTP only (a file://
		// mirror fails with "unsupported protocol scheme"), so the site
		// serves the directory with any static HTTP server.
		t.Run("cosign verify at the destination", func(t *testing.T) {
			cosign := newCosign(t)
			srv := httptest.NewServer(http.FileServer(http.Dir(pub)))
			defer srv.Close()
			cosign.run(t, "initialize", "--mirror", srv.URL, "--root", tuf.root)
			out := cosign.run(t, "verify", "--certificate-identity", keylessSubject, "--certificate-oidc-issuer", keylessIssuer,
				"--insecure-ignore-sct", "--allow-http-registry", s.at(good))
			if !strings.Contains(out, good.Digest) || !strings.Contains(out, "verified offline") {
				t.Errorf("cosign verify (keyless) at the destination:\n%s", out)
			}
			out, err := testtools.Output(t.Context(), cosign.env, cosign.bin, "verify", "--certificate-identity", "mallory@example.com",
				"--certificate-oidc-issuer", keylessIssuer, "--insecure-ignore-sct", "--allow-http-registry", s.at(good))
			if err == nil {
				t.Errorf("cosign verify accepted another identity:\n%s", out)
			}
		})

		// A newer repository (timestamp v2, a new target) is published over
		// it; an older archive, imported at another site with its own state,
		// never overwrites it.
		old := path
		tuf.setTarget(t, "extra.json", []byte(`{"extra":true}`))
		url2 := tuf.serve(t)
		newer := filepath.Join(t.TempDir(), "newer.tar")
		mustRun(t, "export", "-o", newer, "--plain-http", "-q", good.Ref, "--tuf", "sigstore="+url2, "--tuf-targets", "sigstore=*")
		mustRun(t, append([]string{"import", newer, "--to", dst.Host + "/" + s.prefix, "--plain-http", "--publish-tuf", "sigstore=" + pub}, args...)...)
		newest := filepath.Join(pub, fmt.Sprintf("%d.snapshot.json", tuf.repo.Version("snapshot")))
		if _, err := os.Stat(newest); err != nil || snap == tuf.repo.Version("snapshot") {
			t.Fatalf("the newer repository was not published: %v", err)
		}
		r = mustRun(t, "import", old, "--to", dst.Host+"/"+s.prefix, "--plain-http", "--publish-tuf", "sigstore="+pub,
			"--policy", filepath.Join(s.dir, "policy.json"), "--state", t.TempDir(), "--trust", "sigstore="+tuf.root)
		if !strings.Contains(r.stderr, "holds a newer repository") {
			t.Errorf("an older archive's publish was not skipped:\n%s", r.stderr)
		}
		if _, err := os.Stat(newest); err != nil {
			t.Errorf("an older archive overwrote the newer published repository")
		}
	})
}

// tufClientFetch runs go-tuf's updater from root against dir served over
// HTTP on 127.0.0.1, as a client at the site would, and downloads target.
func tufClientFetch(t *testing.T, dir, rootFile, target string) []byte {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	rootBytes, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/", rootBytes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	cfg.RemoteTargetsURL = srv.URL + "/targets/"
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh from the published repository: %v", err)
	}
	tf, err := up.GetTargetInfo(target)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := up.DownloadTarget(tf, "", "")
	if err != nil {
		t.Fatalf("go-tuf download of %s: %v", target, err)
	}
	return b
}
