package main

// End-to-end signature policy: images signed with the real cosign and
// notation CLIs (and keyless, in process, with sigstore-go's virtual
// Sigstore) on the source registry, exported, verified and imported under a
// site policy. Every refusal asserts exit 3, the reason, and that nothing at
// all was pushed to the destination; accepted images verify there with the
// real cosign and notation.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testtools"
)

var sigPrefixes int

// sigSite is one test's destination prefix and policy directory.
type sigSite struct {
	t      *testing.T
	prefix string
	dir    string // policy, keys, certificates
}

func newSigSite(t *testing.T) *sigSite {
	t.Helper()
	sigPrefixes++
	return &sigSite{t: t, prefix: fmt.Sprintf("sigs%d", sigPrefixes), dir: t.TempDir()}
}

// policy writes the site's policy into its directory; files it names are
// relative to that directory.
func (s *sigSite) policy(doc string) string {
	s.t.Helper()
	p := filepath.Join(s.dir, "policy.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// copyIn copies a file into the policy directory under rel.
func (s *sigSite) copyIn(from, rel string) {
	s.t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		s.t.Fatal(err)
	}
	p := filepath.Join(s.dir, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// refuse expects verify and import of archive to refuse ref with exit 3 and
// a message holding every want, with nothing pushed to the destination:
// signatures are decided before the first blob goes out.
func (s *sigSite) refuse(archive, ref string, args []string, want ...string) {
	s.t.Helper()
	for _, cmd := range [][]string{
		append([]string{"verify", archive}, args...),
		append([]string{"import", archive, "--to", dst.Host + "/" + s.prefix, "--plain-http"}, args...),
	} {
		r := relocateCmd(s.t, nil, cmd...)
		if r.code != exitRefused {
			s.t.Errorf("%s: exit %d, want %d\n%s", cmd[0], r.code, exitRefused, r.stderr)
			continue
		}
		for _, w := range append([]string{ref}, want...) {
			if !strings.Contains(r.stderr, w) {
				s.t.Errorf("%s: stderr lacks %q\n%s", cmd[0], w, r.stderr)
			}
		}
	}
	if repos := catalog(s.t, dst.Host, s.prefix); len(repos) != 0 {
		s.t.Errorf("refused import pushed to %v", repos)
	}
}

// accept expects verify and import to pass and returns the import's output.
func (s *sigSite) accept(archive string, args ...string) result {
	s.t.Helper()
	mustRun(s.t, append([]string{"verify", archive}, args...)...)
	return mustRun(s.t, append([]string{"import", archive, "--to", dst.Host + "/" + s.prefix, "--plain-http"}, args...)...)
}

// at is where an image lands at the destination, by digest.
func (s *sigSite) at(im testimages.Image) string {
	repo, _ := repoTag(im.Ref)
	return dst.Host + "/" + s.prefix + "/" + repo + "@" + im.Digest
}

// pushOne pushes a small single-platform image to the source registry.
func pushOne(t *testing.T, repo string, seed int64) testimages.Image {
	t.Helper()
	ims, err := testimages.Push(context.Background(), src.Host, testimages.Spec{Repo: repo, Tag: "v1", Count: 1, Layers: 1, LayerSize: 8 << 10, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return ims[0]
}

func exportRefs(t *testing.T, refs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, append([]string{"export", "-o", path, "--plain-http", "-q"}, refs...)...)
	return path
}

// cosignTool is the real cosign with its state in the test's directory.
type cosignTool struct {
	bin string
	env []string
}

func newCosign(t *testing.T) *cosignTool {
	t.Helper()
	bin := testtools.Need(t, testtools.Cosign)
	home := t.TempDir()
	return &cosignTool{bin: bin, env: []string{"HOME=" + home, "COSIGN_PASSWORD=", "SIGSTORE_NO_CACHE=true", "TUF_ROOT=" + filepath.Join(home, "tuf")}}
}

func (c *cosignTool) run(t *testing.T, args ...string) string {
	t.Helper()
	return testtools.Run(t, t.Context(), c.env, c.bin, args...)
}

// keyPair makes a cosign key pair and returns the private and public keys.
func (c *cosignTool) keyPair(t *testing.T) (key, pub string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "cosign")
	c.run(t, "generate-key-pair", "--output-key-prefix", prefix)
	return prefix + ".key", prefix + ".pub"
}

// sign signs im by digest with a key, without a transparency log (the
// test's Sigstore is offline).
func (c *cosignTool) sign(t *testing.T, key string, im testimages.Image) {
	t.Helper()
	repo, _ := repoTag(im.Ref)
	c.run(t, "sign", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry", src.Host+"/"+repo+"@"+im.Digest)
}

func TestSignaturePolicyCosignKey(t *testing.T) {
	needRegistries(t)
	cosign := newCosign(t)
	key, pub := cosign.keyPair(t)
	strangerKey, _ := cosign.keyPair(t)

	good := pushOne(t, "sigs/key/good", 1101)
	cosign.sign(t, key, good)
	wrong := pushOne(t, "sigs/key/wrong", 1102)
	cosign.sign(t, strangerKey, wrong)
	unsigned := pushOne(t, "sigs/key/unsigned", 1103)
	// moved: a genuine signature of good, tagged as moved's own: what a
	// hostile mirror would do.
	moved := pushOne(t, "sigs/key/moved", 1104)
	copySig(t, good, moved)
	// junk: a referrer claiming to be a Sigstore bundle, holding text.
	junk := pushOne(t, "sigs/key/junk", 1105)
	repo := strings.TrimSuffix(junk.Ref, ":v1")
	bundleType := "application/vnd.dev.sigstore.bundle.v0.3+json"
	if _, err := testimages.Attach(context.Background(), repo, descOf(t, repo, junk.Digest), bundleType, bundleType, []byte("trust me, I am a signature")); err != nil {
		t.Fatal(err)
	}

	s := newSigSite(t)
	s.copyIn(pub, "keys/release.pub")
	policy := s.policy(`{"signatures": [{"paths": ["` + src.Host + `/sigs/key/*"],
		"require": [{"name": "release key", "cosign": {"keys": ["keys/release.pub"]}}]}]}`)
	args := []string{"--policy", policy, "--state", t.TempDir()}

	for _, tc := range []struct {
		name string
		im   testimages.Image
		want []string
	}{
		{"wrong key", wrong, []string{`release key: wrong key`}},
		{"no signature", unsigned, []string{`release key: no signature`}},
		{"signature over another digest", moved, []string{`release key: digest mismatch`, good.Digest}},
		{"junk referrer claiming to be a signature", junk, []string{`release key: not a signature`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			s.refuse(exportRefs(t, tc.im.Ref), tc.im.Ref, args, tc.want...)
		})
	}
	s.t = t

	t.Run("valid key signature", func(t *testing.T) {
		path := exportRefs(t, good.Ref)
		r := relocateCmd(t, nil, append([]string{"verify", path, "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("verify: exit %d\n%s", r.code, r.stderr)
		}
		var rep struct {
			Signatures struct {
				Images []struct {
					Ref, Verdict string
					Satisfied    []struct{ Requirement string }
				}
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Signatures.Images) != 1 || rep.Signatures.Images[0].Verdict != "ok" || rep.Signatures.Images[0].Satisfied[0].Requirement != "release key" {
			t.Fatalf("verify report: %+v", rep.Signatures)
		}
		r = s.accept(path, args...)
		if !strings.Contains(r.stderr, "signed: "+good.Ref) {
			t.Errorf("import does not report the signature:\n%s", r.stderr)
		}
		// The real cosign verifies the relocated image with the key.
		out := cosign.run(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", s.at(good))
		if !strings.Contains(out, good.Digest) {
			t.Errorf("cosign verify at the destination:\n%s", out)
		}
	})

	t.Run("all images of an archive, one refused", func(t *testing.T) {
		s := newSigSite(t)
		s.copyIn(pub, "keys/release.pub")
		s.policy(`{"signatures": [{"paths": ["` + src.Host + `/sigs/key/*"], "require": [{"cosign": {"keys": ["keys/release.pub"]}}]}]}`)
		s.refuse(exportRefs(t, good.Ref, wrong.Ref), wrong.Ref, []string{"--policy", filepath.Join(s.dir, "policy.json"), "--state", t.TempDir()}, "wrong key")
	})

	t.Run("two of two keys", func(t *testing.T) {
		_, pub2 := cosign.keyPair(t)
		s := newSigSite(t)
		s.copyIn(pub, "a.pub")
		s.copyIn(pub2, "b.pub")
		p := s.policy(`{"signatures": [{"paths": ["*"], "require": [{"cosign": {"keys": ["a.pub", "b.pub"], "threshold": 2}}]}]}`)
		s.refuse(exportRefs(t, good.Ref), good.Ref, []string{"--policy", p, "--state", t.TempDir()}, "threshold not met")
	})
}

// copySig tags from's cosign signature manifest as to's.
func copySig(t *testing.T, from, to testimages.Image) {
	t.Helper()
	tag := func(im testimages.Image) string {
		return strings.TrimSuffix(im.Ref, ":v1") + ":" + strings.Replace(im.Digest, ":", "-", 1) + ".sig"
	}
	f, _ := name.ParseReference(tag(from), name.Insecure)
	d, err := remote.Get(f)
	if err != nil {
		t.Fatal(err)
	}
	img, err := d.Image()
	if err != nil {
		t.Fatal(err)
	}
	dstRef, _ := name.ParseReference(tag(to), name.Insecure)
	if err := remote.Write(dstRef, img); err != nil {
		t.Fatal(err)
	}
}

func TestRequireSignaturesNeedsPolicy(t *testing.T) {
	needRegistries(t)
	path := exportRefs(t, refs[0]) // unsigned
	r := mustRun(t, "verify", path)
	if !strings.Contains(r.stderr, "1 of 1 image(s) have no signature attached ("+refs[0]+")") {
		t.Errorf("verify does not mention the unsigned image:\n%s", r.stderr)
	}
	for _, args := range [][]string{
		{"verify", path, "--require-signatures"},
		{"import", path, "--to", dst.Host + "/reqsig", "--plain-http", "--require-signatures"},
		{"verify", path, "--require-signatures", "--policy", writePolicy(t, `{"mapping": []}`)},
	} {
		r := relocateCmd(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--require-signatures needs a --policy with signature rules") {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
	// A policy whose rules do not cover the image: refused with
	// --require-signatures, let through without.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	p := writePolicy(t, `{"signatures": [{"paths": ["elsewhere.example/*"], "require": [{"cosign": {"keys": [`+string(pub)+`]}}]}]}`)
	mustRun(t, "verify", path, "--policy", p, "--state", t.TempDir())
	s := newSigSite(t)
	s.refuse(path, refs[0], []string{"--policy", p, "--state", t.TempDir(), "--require-signatures"}, "no signature rule of the policy covers this image")
}

// notationTrustPolicy is a notation trust policy document trusting the
// store ca:site for identity (offline: revocation is only logged).
func notationTrustPolicy(identity string) string {
	return `{"version": "1.0", "trustPolicies": [{"name": "site", "registryScopes": ["*"],
		"signatureVerification": {"level": "strict", "override": {"revocation": "log"}},
		"trustStores": ["ca:site"], "trustedIdentities": ["` + identity + `"]}]}`
}

const notationIdentity = "x509.subject: C=US, ST=WA, L=Seattle, O=Relocate Test, CN=release.example"

func TestSignaturePolicyNotation(t *testing.T) {
	needRegistries(t)
	notation := testtools.Need(t, testtools.Notation)
	pki := testtools.NewNotationPKI(t, "release.example")
	signEnv := pki.SignerEnv(t)

	signed := pushOne(t, "sigs/notation/app", 1201)
	repo, _ := repoTag(signed.Ref)
	testtools.Run(t, t.Context(), signEnv, notation, "sign", "--insecure-registry", "--signature-format", "jws", src.Host+"/"+repo+"@"+signed.Digest)
	path := exportRefs(t, signed.Ref)

	policyFor := func(s *sigSite, identity string) []string {
		s.copyIn(pki.CAPath, "certs/acme-ca.pem")
		os.WriteFile(filepath.Join(s.dir, "trustpolicy.json"), []byte(notationTrustPolicy(identity)), 0o644)
		p := s.policy(`{"signatures": [{"paths": ["` + src.Host + `/sigs/notation/*"],
			"require": [{"name": "acme release", "notation": {"trustStores": {"ca:site": ["certs/acme-ca.pem"]}, "trustPolicy": "trustpolicy.json"}}]}]}`)
		return []string{"--policy", p, "--state", t.TempDir()}
	}

	t.Run("identity mismatch", func(t *testing.T) {
		s := newSigSite(t)
		s.refuse(path, signed.Ref, policyFor(s, "x509.subject: C=US, ST=WA, L=Seattle, O=Relocate Test, CN=someone.else"), "acme release: identity mismatch")
	})
	t.Run("untrusted CA", func(t *testing.T) {
		s := newSigSite(t)
		args := policyFor(s, notationIdentity)
		s.copyIn(testtools.NewNotationPKI(t, "stranger.example").CAPath, "certs/acme-ca.pem")
		s.refuse(path, signed.Ref, args, "acme release: untrusted certificate")
	})
	t.Run("valid signature", func(t *testing.T) {
		s := newSigSite(t)
		s.accept(path, policyFor(s, notationIdentity)...)
		// The real notation verifies the relocated image at the destination,
		// with the same trust store and policy in its own configuration.
		site := t.TempDir()
		store := filepath.Join(site, "notation", "truststore", "x509", "ca", "site")
		os.MkdirAll(store, 0o700)
		b, _ := os.ReadFile(pki.CAPath)
		os.WriteFile(filepath.Join(store, "ca.pem"), b, 0o600)
		os.WriteFile(filepath.Join(site, "notation", "trustpolicy.json"), []byte(notationTrustPolicy(notationIdentity)), 0o600)
		out := testtools.Run(t, t.Context(), []string{"XDG_CONFIG_HOME=" + site, "HOME=" + site}, notation, "verify", "--insecure-registry", s.at(signed))
		if !strings.Contains(out, "Successfully verified") {
			t.Errorf("notation verify at the destination:\n%s", out)
		}
	})
}

// TestSignatureBlobsTravelWithMetadata: the payloads of signature
// attachments travel in the archive's metadata section (kind "signature"),
// SBOM layers stay layers, archives stay byte-reproducible, and an archive
// from before (payloads among the layers) is refused where signatures must
// be verified, with a message saying to export again.
func TestSignatureBlobsTravelWithMetadata(t *testing.T) {
	needRegistries(t)
	ctx := context.Background()
	im := pushOne(t, "sigs/meta/app", 1401)
	repo := strings.TrimSuffix(im.Ref, ":v1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := testimages.Sign(ctx, repo, im.Digest, key); err != nil {
		t.Fatal(err)
	}
	if _, err := testimages.Attach(ctx, repo, descOf(t, repo, im.Digest), "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	mustRun(t, "export", "-o", a, "--plain-http", "-q", im.Ref)
	mustRun(t, "export", "-o", b, "--plain-http", "-q", im.Ref)
	if da, db := mustRead(t, a), mustRead(t, b); string(da) != string(db) {
		t.Fatal("two exports of the same signed image differ")
	}
	es := readAll(t, a)
	toc := tocOf(t, es)
	kinds := map[string]string{}
	for _, bl := range toc.Blobs {
		kinds[bl.Digest] = bl.Kind
	}
	var sigBlob string
	firstLayer := -1
	for i, e := range es {
		d := "sha256:" + strings.TrimPrefix(e.hdr.Name, "blobs/sha256/")
		switch {
		case kinds[d] == "layer" && firstLayer < 0:
			firstLayer = i
		case kinds[d] == "signature":
			sigBlob = d
			if firstLayer >= 0 {
				t.Errorf("signature blob %s comes after the first layer", d)
			}
			var p testimages.SimpleSigning
			if json.Unmarshal(e.data, &p) != nil || p.Critical.Image.DockerManifestDigest != im.Digest {
				t.Errorf("signature blob %s is not the signed payload: %s", d, e.data)
			}
		}
	}
	if sigBlob == "" {
		t.Fatalf("no signature blob in the table of contents: %v", kinds)
	}
	sbomLayer := false
	for d, k := range kinds {
		sbomLayer = sbomLayer || k == "layer" && strings.Contains(string(mustBlob(t, es, d)), "spdxVersion")
	}
	if !sbomLayer {
		t.Error("the SBOM's layer is not a layer")
	}

	s := newSigSite(t)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(s.dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	p := s.policy(`{"signatures": [{"paths": ["` + src.Host + `/sigs/meta/*"], "require": [{"cosign": {"keys": ["release.pub"]}}]}]}`)
	args := []string{"--policy", p, "--state", t.TempDir()}
	mustRun(t, append([]string{"verify", a}, args...)...)

	t.Run("archive from before: payloads among the layers", func(t *testing.T) {
		old := filepath.Join(t.TempDir(), "old.tar")
		writeAll(t, old, edit(es, "relocate-toc.json", func(e *entry) {
			e.data = []byte(strings.ReplaceAll(string(e.data), `"kind": "signature"`, `"kind": "layer"`))
		}))
		mustRun(t, "verify", old) // still a valid archive
		s.refuse(old, im.Ref, args, "travels among the archive's layers", "export the images again")
	})
	t.Run("a layer smuggled into the metadata section", func(t *testing.T) {
		var layer string
		for d, k := range kinds {
			if k == "layer" && slices.Contains(im.Blobs, d) {
				layer = d
			}
		}
		bad := filepath.Join(t.TempDir(), "bad.tar")
		writeAll(t, bad, edit(es, "relocate-toc.json", func(e *entry) {
			var doc map[string]any
			json.Unmarshal(e.data, &doc)
			for _, bl := range doc["blobs"].([]any) {
				if m := bl.(map[string]any); m["digest"] == layer {
					m["kind"] = "signature"
				}
			}
			e.data, _ = json.Marshal(doc)
		}))
		r := relocateCmd(t, nil, "verify", bad)
		if r.code != exitRefused || !strings.Contains(r.stderr, "listed as a signature blob") {
			t.Errorf("exit %d, want %d\n%s", r.code, exitRefused, r.stderr)
		}
	})
}

func mustBlob(t *testing.T, es []entry, d string) []byte {
	t.Helper()
	for _, e := range es {
		if e.hdr.Name == blobName(d) {
			return e.data
		}
	}
	t.Fatalf("blob %s not in the archive", d)
	return nil
}
