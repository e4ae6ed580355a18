package signature

// End-to-end: signatures made by the real cosign and notation CLIs, pushed
// to a real registry on 127.0.0.1, fetched back the way export collects them
// and verified offline. They skip under -short and when the tools are not
// built (make tools); RELOCATE_REQUIRE_TOOLS=1 makes a missing tool fail.

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/relocate-dev/relocate/internal/testregistry"
	"github.com/relocate-dev/relocate/internal/testtools"
	"github.com/relocate-dev/relocate/layout"
)

// pushImage pushes a small random image to host/repo:tag.
func pushImage(t *testing.T, host, repo, tag string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

// fromRegistry collects what export would carry for subject: its cosign
// tags and its referrers (the API, or the fallback tag), with their blobs.
func fromRegistry(t *testing.T, subject name.Digest) (*archive, Subject) {
	t.Helper()
	a := newArchive()
	desc, err := remote.Get(subject)
	if err != nil {
		t.Fatal(err)
	}
	a.put(desc.Manifest)
	s := Subject{Ref: subject.Context().Tag("latest").String(), Digest: desc.Digest, MediaType: string(desc.MediaType), Size: desc.Size}
	addManifest := func(ref name.Reference) (*remote.Descriptor, bool) {
		d, err := remote.Get(ref)
		if err != nil {
			return nil, false
		}
		a.put(d.Manifest)
		m, err := v1.ParseManifest(strings.NewReader(string(d.Manifest)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			layer, err := remote.Layer(subject.Context().Digest(l.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			a.put(b)
		}
		return d, true
	}
	for _, kind := range []string{layout.AttachCosignSignature, layout.AttachCosignAttestation} {
		tag := layout.CosignTag(desc.Digest, kind)
		if d, ok := addManifest(subject.Context().Tag(tag)); ok {
			a.atts = append(a.atts, layout.Attachment{Subject: desc.Digest, Digest: d.Digest, MediaType: string(d.MediaType), Size: d.Size, Kind: kind, Tag: tag})
		}
	}
	idx, err := remote.Referrers(subject)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, r := range im.Manifests {
		d, ok := addManifest(subject.Context().Digest(r.Digest.String()))
		if !ok {
			t.Fatalf("referrer %s listed but not found", r.Digest)
		}
		a.atts = append(a.atts, layout.Attachment{Subject: desc.Digest, Digest: d.Digest, MediaType: string(d.MediaType), Size: d.Size,
			Kind: layout.AttachReferrer, ArtifactType: r.ArtifactType})
	}
	return a, s
}

// cosignEnv keeps cosign's state (TUF cache, config) in the test's dir.
func cosignEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "COSIGN_PASSWORD=", "SIGSTORE_NO_CACHE=true", "TUF_ROOT=" + filepath.Join(home, "tuf")}
}

func cosignKey(t *testing.T, cosign string, env []string) (key, pub string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "cosign")
	testtools.Run(t, t.Context(), env, cosign, "generate-key-pair", "--output-key-prefix", prefix)
	return prefix + ".key", prefix + ".pub"
}

func TestCosignCLIKeySignature(t *testing.T) {
	cosign := testtools.Need(t, testtools.Cosign)
	reg := testregistry.New(t)
	env := cosignEnv(t)
	key, pub := cosignKey(t, cosign, env)
	_, strangerPub := cosignKey(t, cosign, env)

	img := pushImage(t, reg.Host, "team/app", "v1")
	other := pushImage(t, reg.Host, "team/app", "v2")
	sign := func(ref name.Digest, extra ...string) {
		args := append([]string{"sign", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry"}, extra...)
		testtools.Run(t, t.Context(), env, cosign, append(args, ref.String())...)
	}
	sign(img)
	sign(other)

	a, s := fromRegistry(t, img)
	sigs := a.collect(t, s)
	if sigs.Count()[FormatCosignSignature] != 1 {
		t.Fatalf("collected %v, want one cosign signature", sigs.Count())
	}
	mustPass(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), sigs)
	mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{strangerPub}}}, LoadOptions{}), sigs, ReasonWrongKey)
	// 2 of 2 keys, one signed.
	mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub, strangerPub}, Threshold: 2}}, LoadOptions{}), sigs, ReasonThreshold)

	t.Run("signature moved to another image", func(t *testing.T) {
		// other's genuine .sig manifest, tagged as img's: what a hostile
		// mirror would do.
		src, err := remote.Get(other.Context().Tag(layout.CosignTag(mustHash(t, other), layout.AttachCosignSignature)))
		if err != nil {
			t.Fatal(err)
		}
		victim := pushImage(t, reg.Host, "team/app", "v3")
		dst := victim.Context().Tag(layout.CosignTag(mustHash(t, victim), layout.AttachCosignSignature))
		if err := remote.Put(dst, src); err != nil {
			t.Fatal(err)
		}
		a, s := fromRegistry(t, victim)
		mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), a.collect(t, s), ReasonDigestMismatch)
	})

	t.Run("junk referrer claiming to be a bundle", func(t *testing.T) {
		oras := testtools.Need(t, testtools.Oras)
		victim := pushImage(t, reg.Host, "team/app", "v4")
		junk := filepath.Join(t.TempDir(), "bundle.json")
		os.WriteFile(junk, []byte("trust me, I am a signature"), 0o644)
		testtools.Run(t, t.Context(), nil, oras, "attach", "--plain-http", "--disable-path-validation",
			"--artifact-type", bundleType, victim.String(), junk+":"+bundleType)
		a, s := fromRegistry(t, victim)
		if a.collect(t, s).Count()[FormatSigstoreBundle] != 1 {
			t.Fatal("the junk referrer was not collected (oras fallback tag?)")
		}
		mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), a.collect(t, s), ReasonNotSignature)
	})

	t.Run("attestation", func(t *testing.T) {
		pred := filepath.Join(t.TempDir(), "provenance.json")
		os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/build"},"runDetails":{"builder":{"id":"ci"}}}`), 0o644)
		testtools.Run(t, t.Context(), env, cosign, "attest", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry",
			"--type", "slsaprovenance1", "--predicate", pred, img.String())
		a, s := fromRegistry(t, img)
		req := Requirement{Attestation: &Attestation{PredicateType: "https://slsa.dev/provenance/v1", Cosign: Cosign{Keys: []string{pub}}}}
		mustPass(t, load(t, req, LoadOptions{}), a.collect(t, s))
		req.Attestation.Cosign.Keys = []string{strangerPub}
		mustRefuse(t, load(t, req, LoadOptions{}), a.collect(t, s), ReasonWrongKey)
	})
}

func mustHash(t *testing.T, d name.Digest) v1.Hash {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCosignCLIBundleReferrer signs with cosign's Sigstore bundle format,
// which cosign attaches through the referrers API: go-containerregistry's
// in-memory registry has it, distribution 2.8 does not.
func TestCosignCLIBundleReferrer(t *testing.T) {
	cosign := testtools.Need(t, testtools.Cosign)
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	env := cosignEnv(t)
	key, pub := cosignKey(t, cosign, env)
	_, strangerPub := cosignKey(t, cosign, env)

	img := pushImage(t, host, "team/app", "v1")
	testtools.Run(t, t.Context(), env, cosign, "sign", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry",
		"--new-bundle-format", img.String())

	a, s := fromRegistry(t, img)
	sigs := a.collect(t, s)
	if sigs.Count()[FormatSigstoreBundle] != 1 {
		t.Fatalf("collected %v, want one Sigstore bundle referrer", sigs.Count())
	}
	res := mustPass(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), sigs)
	if res.Signatures[0].Format != FormatSigstoreBundle {
		t.Fatalf("%+v", res)
	}
	mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{strangerPub}}}, LoadOptions{}), sigs, ReasonWrongKey)

	t.Run("bundle moved to another image", func(t *testing.T) {
		// The bundle's own layer, re-attached to another image as a fresh
		// referrer: the statement still names the first image.
		victim := pushImage(t, host, "team/app", "v2")
		a2, s2 := fromRegistry(t, victim)
		var bundleLayer []byte
		for _, it := range sigs.items {
			if it.format == FormatSigstoreBundle {
				bundleLayer, _ = it.bundle.MarshalJSON()
			}
		}
		a2.attachReferrer(s2, bundleType, sigLayer{mediaType: bundleType, payload: bundleLayer})
		mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), a2.collect(t, s2), ReasonDigestMismatch)
	})

	t.Run("simple signing as a referrer", func(t *testing.T) {
		// --registry-referrers-mode=oci-1-1 (experimental) attaches the
		// .sig manifest as a referrer instead of a tag.
		img := pushImage(t, host, "team/app", "v3")
		testtools.Run(t, t.Context(), append(env, "COSIGN_EXPERIMENTAL=1"), cosign, "sign", "--key", key, "--tlog-upload=false", "--yes",
			"--allow-http-registry", "--registry-referrers-mode=oci-1-1", img.String())
		a, s := fromRegistry(t, img)
		sigs := a.collect(t, s)
		if sigs.Count()[FormatCosignSignature] != 1 {
			t.Fatalf("collected %v, want one cosign signature referrer", sigs.Count())
		}
		mustPass(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), sigs)
		mustRefuse(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{strangerPub}}}, LoadOptions{}), sigs, ReasonWrongKey)
	})

	t.Run("attestation bundle", func(t *testing.T) {
		pred := filepath.Join(t.TempDir(), "provenance.json")
		os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/build"},"runDetails":{"builder":{"id":"ci"}}}`), 0o644)
		testtools.Run(t, t.Context(), env, cosign, "attest", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry",
			"--new-bundle-format", "--type", "slsaprovenance1", "--predicate", pred, img.String())
		a, s := fromRegistry(t, img)
		req := Requirement{Attestation: &Attestation{PredicateType: "https://slsa.dev/provenance/v1", Cosign: Cosign{Keys: []string{pub}}}}
		res := mustPass(t, load(t, req, LoadOptions{}), a.collect(t, s))
		if res.Signatures[0].Format != FormatSigstoreBundle {
			t.Fatalf("%+v", res)
		}
		// The signature requirement still counts only the signature bundle.
		mustPass(t, load(t, Requirement{Cosign: &Cosign{Keys: []string{pub}}}, LoadOptions{}), a.collect(t, s))
	})
}

func notationReq(ca string, identities ...string) Requirement {
	if len(identities) == 0 {
		identities = []string{"*"}
	}
	ids, _ := json.Marshal(identities)
	policy := `{"version": "1.0", "trustPolicies": [{"name": "site", "registryScopes": ["*"],
		"signatureVerification": {"level": "strict", "override": {"revocation": "skip"}},
		"trustStores": ["ca:site"], "trustedIdentities": ` + string(ids) + `}]}`
	return Requirement{Notation: &Notation{TrustStores: map[string][]string{"ca:site": {ca}}, TrustPolicy: json.RawMessage(policy)}}
}

func TestNotationCLI(t *testing.T) {
	notation := testtools.Need(t, testtools.Notation)
	reg := testregistry.New(t)
	pki := testtools.NewNotationPKI(t, "release.example")
	env := pki.SignerEnv(t)

	for _, format := range []string{"jws", "cose"} {
		t.Run(format, func(t *testing.T) {
			img := pushImage(t, reg.Host, "team/"+format, "v1")
			testtools.Run(t, context.Background(), env, notation, "sign", "--insecure-registry", "--signature-format", format, img.String())
			a, s := fromRegistry(t, img)
			sigs := a.collect(t, s)
			if sigs.Count()[FormatNotation] != 1 {
				t.Fatalf("collected %v, want one notation signature", sigs.Count())
			}
			res := mustPass(t, load(t, notationReq(pki.CAPath), LoadOptions{}), sigs)
			if !strings.Contains(res.Signatures[0].Signer, "CN=release.example") {
				t.Fatalf("signer %q", res.Signatures[0].Signer)
			}
			mustPass(t, load(t, notationReq(pki.CAPath, "x509.subject: C=US, ST=WA, L=Seattle, O=Relocate Test, CN=release.example"), LoadOptions{}), sigs)

			t.Run("untrusted CA", func(t *testing.T) {
				stranger := testtools.NewNotationPKI(t, "stranger.example")
				mustRefuse(t, load(t, notationReq(stranger.CAPath), LoadOptions{}), sigs, ReasonUntrustedCertificate)
			})
			t.Run("identity mismatch", func(t *testing.T) {
				r := notationReq(pki.CAPath, "x509.subject: C=US, ST=WA, L=Seattle, O=Relocate Test, CN=someone.else")
				mustRefuse(t, load(t, r, LoadOptions{}), sigs, ReasonIdentityMismatch)
			})
			t.Run("signature moved to another image", func(t *testing.T) {
				victim := pushImage(t, reg.Host, "team/"+format, "v2")
				a2, s2 := fromRegistry(t, victim)
				for _, it := range sigs.items {
					a2.attachReferrer(s2, atNotation, sigLayer{mediaType: it.envelopeType, payload: it.envelope})
				}
				mustRefuse(t, load(t, notationReq(pki.CAPath), LoadOptions{}), a2.collect(t, s2), ReasonDigestMismatch)
			})
			t.Run("a cosign requirement finds no cosign signature", func(t *testing.T) {
				mustRefuse(t, load(t, keyReq(0, newKey(t, "ecdsa")), LoadOptions{}), sigs, ReasonNoSignature)
			})
		})
	}
}

func TestNotationPolicyMustNotNeedTheNetwork(t *testing.T) {
	pki := testtools.NewNotationPKI(t, "release.example")
	r := notationReq(pki.CAPath)
	r.Notation.TrustPolicy = json.RawMessage(`{"version": "1.0", "trustPolicies": [{"name": "site", "registryScopes": ["*"],
		"signatureVerification": {"level": "strict"}, "trustStores": ["ca:site"], "trustedIdentities": ["*"]}]}`)
	if _, err := r.Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "cannot be checked offline") {
		t.Fatalf("strict revocation: %v", err)
	}
	r.Notation.TrustPolicy = json.RawMessage(`{"version": "1.0", "trustPolicies": [{"name": "site", "registryScopes": ["*"],
		"signatureVerification": {"level": "audit"}, "trustStores": ["ca:site"], "trustedIdentities": ["*"]}]}`)
	if _, err := r.Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "does not enforce authenticity") {
		t.Fatalf("audit level: %v", err)
	}
	// A policy file beside the policy, by relative name.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "trustpolicy.json"), notationReq(pki.CAPath).Notation.TrustPolicy, 0o644)
	r.Notation.TrustPolicy = json.RawMessage(`"trustpolicy.json"`)
	if _, err := r.Load(LoadOptions{BaseDir: dir}); err != nil {
		t.Fatal(err)
	}
}
