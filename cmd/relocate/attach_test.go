package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/relocate-dev/relocate/internal/testimages"
)

// memRegistry is go-containerregistry's in-memory registry with the OCI 1.1
// referrers API, which distribution 2.8 lacks. handler may wrap it.
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

// attached is one artifact the test attached, to be found again.
type attached struct {
	what            string
	subject, digest string
	tag             string // cosign tag; "" for a referrer
}

// signedSet is a multi-platform index with, attached: a cosign signature of
// the index and of each child, an SBOM referrer of each child, a notation
// signature of the index, and a notation signature of the first SBOM (a
// referrer of a referrer).
type signedSet struct {
	repo, ref string
	index     testimages.Image
	key       *ecdsa.PrivateKey
	attached  []attached
}

func pushSignedSet(t *testing.T, host, repo string, seed int64) *signedSet {
	t.Helper()
	ctx := context.Background()
	ims, err := testimages.Push(ctx, host, testimages.Spec{Repo: repo, Tag: "v1", Count: 1, Layers: 1, LayerSize: 16 << 10, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := &signedSet{repo: host + "/" + repo, ref: ims[0].Ref, index: ims[0], key: key}
	sign := func(subject string) {
		d, err := testimages.Sign(ctx, s.repo, subject, key)
		if err != nil {
			t.Fatal(err)
		}
		s.attached = append(s.attached, attached{"cosign signature", subject, d, strings.Replace(subject, ":", "-", 1) + ".sig"})
	}
	refer := func(what, subject, artifactType, layerType string) string {
		d, err := testimages.Attach(ctx, s.repo, descOf(t, s.repo, subject), artifactType, layerType, []byte(what+" of "+subject))
		if err != nil {
			t.Fatal(err)
		}
		s.attached = append(s.attached, attached{what, subject, d, ""})
		return d
	}
	sign(s.index.Digest)
	refer("notation signature", s.index.Digest, "application/vnd.cncf.notary.signature", "application/jose+json")
	var sboms []string
	for _, c := range s.index.Children {
		sign(c)
		sboms = append(sboms, refer("SBOM", c, "application/spdx+json", "application/spdx+json"))
	}
	refer("signature of an SBOM", sboms[0], "application/vnd.cncf.notary.signature", "application/jose+json")
	return s
}

func descOf(t *testing.T, repo, digest string) v1.Descriptor {
	t.Helper()
	ref, err := name.ParseReference(repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	return *d
}

// checkAttached asserts that every attachment can be found from its subject
// in repo the way a verifier finds it: the cosign tag, or the referrers API
// or its fallback tag (go-containerregistry's remote.Referrers picks).
func checkAttached(t *testing.T, repo string, want []attached) {
	t.Helper()
	for _, a := range want {
		if a.tag != "" {
			ref, _ := name.ParseReference(repo+":"+a.tag, name.Insecure)
			d, err := remote.Head(ref)
			if err != nil || d.Digest.String() != a.digest {
				t.Errorf("%s of %s: tag %s: %v %v", a.what, a.subject, a.tag, d, err)
			}
			continue
		}
		sub, _ := name.NewDigest(repo+"@"+a.subject, name.Insecure)
		idx, err := remote.Referrers(sub)
		if err != nil {
			t.Errorf("referrers of %s: %v", sub, err)
			continue
		}
		m, _ := idx.IndexManifest()
		if !slices.ContainsFunc(m.Manifests, func(d v1.Descriptor) bool { return d.Digest.String() == a.digest }) {
			t.Errorf("%s %s is not listed as a referrer of %s in %s", a.what, a.digest, a.subject, repo)
		}
	}
}

// verifyCosign checks the cosign signature of the index found at repo: the
// ECDSA signature over the payload with the public key, and that the payload
// names the digest the tag resolves to there.
func verifyCosign(t *testing.T, repo string, s *signedSet) {
	t.Helper()
	tagRef, _ := name.ParseReference(repo+":v1", name.Insecure)
	top, err := remote.Head(tagRef)
	if err != nil {
		t.Fatal(err)
	}
	sigRef, _ := name.ParseReference(repo+":"+strings.Replace(top.Digest.String(), ":", "-", 1)+".sig", name.Insecure)
	img, err := remote.Image(sigRef)
	if err != nil {
		t.Fatalf("signature of %s: %v", top.Digest, err)
	}
	m, _ := img.Manifest()
	layers, _ := img.Layers()
	rc, _ := layers[0].Compressed()
	payload, _ := io.ReadAll(rc)
	rc.Close()
	sig, _ := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[testimages.CosignSigAnnotation])
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(&s.key.PublicKey, sum[:], sig) {
		t.Fatalf("cosign signature at %s does not verify with the public key", sigRef)
	}
	var p testimages.SimpleSigning
	json.Unmarshal(payload, &p)
	if p.Critical.Image.DockerManifestDigest != top.Digest.String() {
		t.Fatalf("signed digest %s, image at destination %s", p.Critical.Image.DockerManifestDigest, top.Digest)
	}
}

func TestAttachmentsTravel(t *testing.T) {
	needRegistries(t)
	type side struct {
		name string
		host func(*testing.T) string
	}
	sides := []side{
		{"distribution (fallback tags)", func(*testing.T) string { return src.Host }},
		{"referrers API", func(t *testing.T) string { return memRegistry(t, nil) }},
	}
	n := 0
	for _, from := range sides {
		for _, to := range sides {
			n++
			t.Run(from.name+" to "+to.name, func(t *testing.T) {
				srcHost, dstHost := from.host(t), to.host(t)
				if dstHost == src.Host {
					dstHost = dst.Host
				}
				s := pushSignedSet(t, srcHost, fmt.Sprintf("att%d/app", n), int64(100+n))
				checkAttached(t, s.repo, s.attached) // the fixture itself is right
				path := filepath.Join(t.TempDir(), "site.tar")
				mustRun(t, "export", "-o", path, "--plain-http", "-q", s.ref)
				r := mustRun(t, "inspect", path, "--json")
				var rep struct {
					Images []struct{ Attached []struct{ Digest string } }
				}
				json.Unmarshal([]byte(r.stdout), &rep)
				if got := len(rep.Images[0].Attached); got != len(s.attached) {
					t.Fatalf("archive holds %d attachments, want %d", got, len(s.attached))
				}
				prefix := fmt.Sprintf("moved%d", n)
				mustRun(t, "import", path, "--to", dstHost+"/"+prefix, "--plain-http")
				moved := dstHost + "/" + prefix + "/" + fmt.Sprintf("att%d/app", n)
				checkAttached(t, moved, s.attached)
				verifyCosign(t, moved, s)
				// Importing again changes nothing and still finds everything.
				mustRun(t, "import", path, "--to", dstHost+"/"+prefix, "--plain-http")
				checkAttached(t, moved, s.attached)
			})
		}
	}
}

// TestFallbackIndexKeepsEntries: the destination already lists a referrer
// of the image under the fallback tag; importing adds to it, keeping it.
func TestFallbackIndexKeepsEntries(t *testing.T) {
	needRegistries(t)
	s := pushSignedSet(t, src.Host, "keep/app", 200)
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", s.ref)
	moved := dst.Host + "/keep/keep/app"
	local, err := testimages.Attach(context.Background(), moved, descOf(t, s.repo, s.index.Digest), "application/vnd.example.local-scan", "text/plain", []byte("scanned at the site"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "import", path, "--to", dst.Host+"/keep", "--plain-http")
	checkAttached(t, moved, append(s.attached, attached{"the site's own referrer", s.index.Digest, local, ""}))
}

func TestReferrerSelection(t *testing.T) {
	needRegistries(t)
	s := pushSignedSet(t, src.Host, "select/app", 300)
	count := func(args ...string) (kinds map[string]int) {
		path := filepath.Join(t.TempDir(), "site.tar")
		mustRun(t, append([]string{"export", "-o", path, "--plain-http", "-q", s.ref}, args...)...)
		var rep struct {
			Images []struct {
				Attached []struct{ Kind, ArtifactType string }
			}
		}
		json.Unmarshal([]byte(mustRun(t, "inspect", path, "--json").stdout), &rep)
		kinds = map[string]int{}
		for _, a := range rep.Images[0].Attached {
			kinds[a.Kind+" "+a.ArtifactType]++
		}
		return kinds
	}
	if k := count("--no-referrers"); len(k) != 0 {
		t.Errorf("--no-referrers kept %v", k)
	}
	k := count("--referrers-filter", "application/spdx+json")
	if k["referrer application/spdx+json"] != 2 || k["referrer application/vnd.cncf.notary.signature"] != 0 {
		t.Errorf("--referrers-filter kept %v", k)
	}
	if k["cosign-signature application/vnd.oci.image.config.v1+json"] != 3 {
		t.Errorf("cosign signatures with a filter: %v", k)
	}
}

// TestBrokenReferrer: a referrer the registry lists but fails to serve
// fails the export. --skip-broken-referrers leaves out only what the
// registry says is absent (404) or serves invalid, each listed in the
// report; a referrer that fails now and then is retried and travels, and
// one that keeps failing fails the export even with the flag.
func TestBrokenReferrer(t *testing.T) {
	needRegistries(t)
	var mu sync.Mutex
	var broken string
	mode, fails := "", 0
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit := broken != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+broken)
			m := mode
			if hit {
				fails++
			}
			n := fails
			mu.Unlock()
			switch {
			case hit && m == "absent":
				http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
				return
			case hit && (m == "failing" || m == "flaky" && n <= 2):
				http.Error(w, "storage driver error", http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	s := pushSignedSet(t, host, "broken/app", 400)
	broken = s.attached[1].digest // the notation signature of the index
	set := func(m string) {
		mu.Lock()
		mode, fails = m, 0
		mu.Unlock()
	}
	path := filepath.Join(t.TempDir(), "site.tar")
	export := func(args ...string) result {
		return relocateCmd(t, nil, append([]string{"export", "-o", path, "--plain-http", "--retries", "2", s.ref}, args...)...)
	}

	set("failing")
	for _, skip := range [][]string{nil, {"--skip-broken-referrers", "--json"}} {
		r := export(skip...)
		if r.code != exitFailure || !strings.Contains(r.stderr, broken) || !strings.Contains(r.stderr, "storage driver error") {
			t.Fatalf("export %v with a referrer that keeps failing: exit %d, want %d\n%s", skip, r.code, exitFailure, r.stderr)
		}
		mu.Lock()
		n := fails
		mu.Unlock()
		if n != 3 {
			t.Errorf("export %v: the failing referrer was asked for %d times, want 3 (2 retries)", skip, n)
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("failed export left an archive")
		}
		set("failing")
	}

	set("absent")
	if r := export(); r.code != exitFailure || !strings.Contains(r.stderr, broken) || !strings.Contains(r.stderr, "--skip-broken-referrers") {
		t.Fatalf("export with an absent referrer: exit %d\n%s", r.code, r.stderr)
	}
	r := export("--skip-broken-referrers", "--json")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: left out referrer "+broken) {
		t.Fatalf("export --skip-broken-referrers: exit %d\n%s", r.code, r.stderr)
	}
	var rep struct {
		SkippedAttachments []struct{ Subject, Kind, Digest, Reason string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.SkippedAttachments) != 1 || rep.SkippedAttachments[0].Digest != broken || rep.SkippedAttachments[0].Kind != "referrer" || !strings.Contains(rep.SkippedAttachments[0].Reason, "not found") {
		t.Errorf("skippedAttachments: %+v, want the absent referrer %s", rep.SkippedAttachments, broken)
	}
	if inArchive(t, path, broken) {
		t.Errorf("the skipped referrer %s is in the archive", broken)
	}
	mustRun(t, "verify", path)

	set("flaky")
	r = export("--skip-broken-referrers", "--json")
	if r.code != 0 || strings.Contains(r.stderr, "left out") {
		t.Fatalf("export with a flaky referrer: exit %d\n%s", r.code, r.stderr)
	}
	if !inArchive(t, path, broken) {
		t.Errorf("a referrer that failed twice then answered was left out")
	}
}

// inArchive reports whether an archive's table of contents lists an
// attachment with digest d.
func inArchive(t *testing.T, path, d string) bool {
	t.Helper()
	var toc struct{ Attachments []struct{ Digest string } }
	readEntry(t, path, "relocate-toc.json", &toc)
	return slices.ContainsFunc(toc.Attachments, func(a struct{ Digest string }) bool { return a.Digest == d })
}

// TestAttachmentCannotMoveTags: an archive whose table of contents claims a
// cosign attachment under an arbitrary tag is refused, and nothing is tagged.
func TestAttachmentCannotMoveTags(t *testing.T) {
	needRegistries(t)
	s := pushSignedSet(t, src.Host, "hostile/app", 500)
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", s.ref)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	writeAll(t, bad, edit(readAll(t, path), "relocate-toc.json", func(e *entry) {
		var toc map[string]any
		json.Unmarshal(e.data, &toc)
		for _, a := range toc["attachments"].([]any) {
			if a.(map[string]any)["tag"] != nil {
				a.(map[string]any)["tag"] = "v1"
			}
		}
		e.data, _ = json.Marshal(toc)
	}))
	for _, args := range [][]string{{"verify", bad}, {"import", bad, "--to", dst.Host + "/hostile", "--plain-http"}} {
		r := relocateCmd(t, nil, args...)
		if r.code != exitRefused || !strings.Contains(r.stderr, `tag "v1"`) {
			t.Errorf("%s: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	if tags := tagsUnder(t, "hostile"); len(tags) != 0 {
		t.Errorf("refused archive tagged %v", tags)
	}
}

// TestAttachmentClaimsChecked: what the table of contents says of an
// attachment (its subject, artifact type, annotations) must be what its
// manifest says; a fake "signature" label or a moved subject is refused.
func TestAttachmentClaimsChecked(t *testing.T) {
	needRegistries(t)
	s := pushSignedSet(t, src.Host, "claims/app", 700)
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", s.ref)
	tests := []struct {
		name string
		edit func(a map[string]any)
		want string
	}{
		{"SBOM labelled a signature", func(a map[string]any) {
			if a["artifactType"] == "application/spdx+json" {
				a["artifactType"] = "application/vnd.cncf.notary.signature"
			}
		}, "artifact type"},
		{"referrer moved to another subject", func(a map[string]any) {
			if a["kind"] == "referrer" && a["subject"] != s.index.Digest {
				a["subject"] = s.index.Digest
			}
		}, "another subject"},
		{"annotations forged", func(a map[string]any) {
			if a["kind"] == "referrer" {
				a["annotations"] = map[string]any{"org.example.verdict": "approved"}
			}
		}, "annotations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar")
			writeAll(t, bad, edit(readAll(t, path), "relocate-toc.json", func(e *entry) {
				var toc map[string]any
				json.Unmarshal(e.data, &toc)
				for _, a := range toc["attachments"].([]any) {
					tc.edit(a.(map[string]any))
				}
				e.data, _ = json.Marshal(toc)
			}))
			r := relocateCmd(t, nil, "verify", bad)
			if r.code != exitRefused || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q\n%s", r.code, exitRefused, tc.want, r.stderr)
			}
		})
	}
}
