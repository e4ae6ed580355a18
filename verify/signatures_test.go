package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
)

func TestParsePolicySignatures(t *testing.T) {
	key := `{"cosign": {"keys": ["k.pub"]}}`
	tests := []struct {
		name, doc, want string
	}{
		{"key rule", `{"signatures": [{"paths": ["reg/prod/*"], "require": [` + key + `]}]}`, ""},
		{"every kind", `{"sigstoreTrustedRoot": {"tuf": "sigstore", "target": "trusted_root.json"}, "signatures": [{"paths": ["*"], "require": [
			{"cosign": {"keys": ["a.pub", "b.pub", "c.pub"], "threshold": 2}},
			{"cosign": {"identities": [{"issuer": "https://token.actions.githubusercontent.com", "subjectRegExp": "^https://github.com/acme/"}]}},
			{"notation": {"trustStores": {"ca:acme": ["ca.pem"]}, "trustPolicy": "trustpolicy.json"}},
			{"attestation": {"predicateType": "https://slsa.dev/provenance/v1", "cosign": {"keys": ["ci.pub"]}}}]}]}`, ""},
		{"misspelt key in a requirement", `{"signatures": [{"paths": ["*"], "require": [{"cosign": {"key": ["k.pub"]}}]}]}`, "unknown field"},
		{"misspelt key in a rule", `{"signatures": [{"path": ["*"], "require": [` + key + `]}]}`, "unknown field"},
		{"no requirement", `{"signatures": [{"paths": ["*"], "require": []}]}`, "needs paths and require"},
		{"no paths", `{"signatures": [{"require": [` + key + `]}]}`, "needs paths and require"},
		{"dot-dot in a pattern", `{"signatures": [{"paths": ["reg/../*"], "require": [` + key + `]}]}`, "'..' segments are refused"},
		{"two kinds in one requirement", `{"signatures": [{"paths": ["*"], "require": [{"cosign": {"keys": ["k.pub"]}, "notation": {"trustStores": {"ca:x": ["c.pem"]}, "trustPolicy": "p.json"}}]}]}`, "exactly one of"},
		{"threshold above keys", `{"signatures": [{"paths": ["*"], "require": [{"cosign": {"keys": ["k.pub"], "threshold": 2}}]}]}`, "threshold 2 of 1"},
		{"sigstoreTrustedRoot without target", `{"sigstoreTrustedRoot": {"tuf": "sigstore"}}`, "sigstoreTrustedRoot needs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.doc))
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// sigArchive is an in-memory archive: images, their cosign signatures, and
// the metadata blobs a reader holds in memory.
type sigArchive struct {
	toc   *layout.TOC
	small map[v1.Hash][]byte
}

func newSigArchive() *sigArchive {
	return &sigArchive{toc: &layout.TOC{SchemaVersion: layout.TOCSchemaVersion}, small: map[v1.Hash][]byte{}}
}

func (a *sigArchive) put(b []byte, kind layout.Kind) v1.Hash {
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
	if _, ok := a.small[h]; !ok {
		a.small[h] = b
		a.toc.Blobs = append(a.toc.Blobs, layout.Blob{Digest: h, Size: int64(len(b)), Kind: kind})
	}
	return h
}

func (a *sigArchive) image(ref string) layout.Image {
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` +
		strings.Repeat("0", 64) + `","size":2},"layers":[],"ref":"` + ref + `"}`)
	im := layout.Image{Ref: ref, Digest: a.put(raw, layout.KindManifest), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(raw))}
	a.toc.Images = append(a.toc.Images, im)
	return im
}

// sign attaches a cosign `.sig` of payloadDigest to im, signed by key.
func (a *sigArchive) sign(t *testing.T, im layout.Image, payloadDigest v1.Hash, key *ecdsa.PrivateKey, payloadKind layout.Kind) {
	t.Helper()
	payload := []byte(`{"critical":{"identity":{"docker-reference":"reg/app"},"image":{"docker-manifest-digest":"` + payloadDigest.String() + `"},"type":"cosign container image signature"},"optional":null}`)
	s, _ := sigsig.LoadSigner(key, crypto.SHA256)
	sig, err := s.SignMessage(strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	pd := a.put(payload, payloadKind)
	cfg := a.put([]byte("{}"), layout.KindConfig)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.String(), "size": 2},
		"layers": []any{map[string]any{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": pd.String(), "size": len(payload),
			"annotations": map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}}})
	md := a.put(m, layout.KindManifest)
	a.toc.Attachments = append(a.toc.Attachments, layout.Attachment{Subject: im.Digest, Digest: md, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(m)), Kind: layout.AttachCosignSignature, Tag: layout.CosignTag(im.Digest, layout.AttachCosignSignature)})
}

func writeKey(t *testing.T, dir, name string) *ecdsa.PrivateKey {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignatureDecisions(t *testing.T) {
	dir := t.TempDir()
	release := writeKey(t, dir, "release.pub")
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// Keys resolve against the policy's directory, not the working one.
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	os.Rename(filepath.Join(dir, "release.pub"), filepath.Join(dir, "keys", "release.pub"))
	policyFile := filepath.Join(dir, "policy.json")
	os.WriteFile(policyFile, []byte(`{"signatures": [
		{"paths": ["reg.example/prod/*"], "require": [{"name": "release key", "cosign": {"keys": ["keys/release.pub"]}}]},
		{"paths": ["reg.example/*"], "require": [{"name": "any release", "cosign": {"keys": ["keys/release.pub"]}}]}]}`), 0o644)
	p, err := LoadPolicy(policyFile)
	if err != nil {
		t.Fatal(err)
	}

	a := newSigArchive()
	good := a.image("reg.example/prod/good:1")
	a.sign(t, good, good.Digest, release, layout.KindSignature)
	wrong := a.image("reg.example/prod/wrong:1")
	a.sign(t, wrong, wrong.Digest, stranger, layout.KindSignature)
	moved := a.image("reg.example/prod/moved:1")
	a.sign(t, moved, good.Digest, release, layout.KindSignature)
	unsigned := a.image("reg.example/prod/unsigned:1")
	second := a.image("reg.example/tools/x:1") // the second rule applies
	a.sign(t, second, second.Digest, release, layout.KindSignature)
	old := a.image("reg.example/prod/old:1") // payload among the layers
	a.sign(t, old, old.Digest, release, layout.KindLayer)
	other := a.image("elsewhere.example/x:1") // no rule

	ps := &Problems{}
	res, err := Signatures(context.Background(), SignatureInput{Policy: p, TOC: a.toc, Small: a.small}, ps)
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]ImageSignatures{}
	for _, im := range res.Images {
		verdicts[im.Ref] = im
	}
	problems := map[string]string{}
	for _, pr := range ps.List() {
		problems[pr.Subject] += pr.Reason
	}
	for _, tc := range []struct {
		im      layout.Image
		verdict string
		rule    int
		want    string
	}{
		{good, "ok", 0, ""},
		{second, "ok", 1, ""},
		{other, "not covered", -1, ""},
		{wrong, "refused", 0, "release key: wrong key"},
		{moved, "refused", 0, "release key: digest mismatch"},
		{unsigned, "refused", 0, "release key: no signature"},
		{old, "refused", 0, "travels among the archive's layers"},
	} {
		v := verdicts[tc.im.Ref]
		if v.Verdict != tc.verdict || v.Rule != tc.rule {
			t.Errorf("%s: verdict %q rule %d, want %q rule %d (%s)", tc.im.Ref, v.Verdict, v.Rule, tc.verdict, tc.rule, v.Problem)
		}
		if tc.want == "" && problems[tc.im.Ref] != "" || !strings.Contains(problems[tc.im.Ref], tc.want) {
			t.Errorf("%s: problem %q, want %q", tc.im.Ref, problems[tc.im.Ref], tc.want)
		}
	}
	if len(verdicts[good.Ref].Satisfied) != 1 || verdicts[good.Ref].Satisfied[0].Requirement != "release key" {
		t.Errorf("good: %+v", verdicts[good.Ref])
	}

	t.Run("required, and not covered", func(t *testing.T) {
		ps := &Problems{}
		if _, err := Signatures(context.Background(), SignatureInput{Policy: p, Require: true, TOC: a.toc, Small: a.small}, ps); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pr := range ps.List() {
			found = found || pr.Subject == other.Ref && strings.Contains(pr.Reason, "no signature rule of the policy covers this image")
		}
		if !found {
			t.Errorf("%s not refused: %v", other.Ref, ps.List())
		}
	})
	t.Run("keyless without a trusted root", func(t *testing.T) {
		p, err := ParsePolicy([]byte(`{"sigstoreTrustedRoot": {"tuf": "sigstore", "target": "trusted_root.json"}, "signatures": [{"paths": ["*"],
			"require": [{"cosign": {"identities": [{"issuer": "https://issuer.example", "subject": "a@example.com"}]}}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		ps := &Problems{}
		if _, err := Signatures(context.Background(), SignatureInput{Policy: p, TOC: a.toc, Small: a.small}, ps); err != nil {
			t.Fatal(err)
		}
		if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "--tuf-targets sigstore=trusted_root.json") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSignatureBlobsChecked(t *testing.T) {
	a := newSigArchive()
	im := a.image("reg.example/app:1")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a.sign(t, im, im.Digest, k, layout.KindSignature)
	stray := a.put([]byte("a layer pretending"), layout.KindSignature)
	ps := &Problems{}
	checkSignatureBlobs(a.toc, a.small, ps)
	if l := ps.List(); len(l) != 1 || l[0].Subject != stray.String() || !strings.Contains(l[0].Reason, "listed as a signature blob") {
		t.Fatalf("problems %v", l)
	}
}

func TestLoadPolicyReadsSignatureFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "policy.json")
	os.WriteFile(f, []byte(`{"signatures": [{"paths": ["*"], "require": [{"cosign": {"keys": ["keys/absent.pub"]}}]}]}`), 0o644)
	if _, err := LoadPolicy(f); err == nil || !strings.Contains(err.Error(), "keys/absent.pub") {
		t.Fatalf("a missing key file: %v", err)
	}
	// A keyless requirement may rely on the site's trusted root, given later.
	os.WriteFile(f, []byte(`{"signatures": [{"paths": ["*"], "require": [{"cosign": {"identities": [{"issuer": "https://i.example", "subject": "a@example.com"}]}}]}]}`), 0o644)
	if _, err := LoadPolicy(f); err != nil {
		t.Fatal(err)
	}
}
