package signature

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	sigsig "github.com/sigstore/sigstore/pkg/signature"

	"github.com/relocate-dev/relocate/layout"
)

// archive is an in-memory stand-in for what an archive holds: blobs by
// digest and the attachments its table of contents lists.
type archive struct {
	blobs map[v1.Hash][]byte
	atts  []layout.Attachment
}

func newArchive() *archive { return &archive{blobs: map[v1.Hash][]byte{}} }

func (a *archive) put(b []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(strings.NewReader(string(b)))
	a.blobs[h] = b
	return v1.Descriptor{Digest: h, Size: n}
}

func (a *archive) Fetch(h v1.Hash) ([]byte, error) {
	b, ok := a.blobs[h]
	if !ok {
		return nil, fmt.Errorf("%s: not in the archive", h)
	}
	return b, nil
}

// image puts a small image manifest in the archive and names it.
func (a *archive) image(t testing.TB, seed string) Subject {
	t.Helper()
	cfg := a.put([]byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`))
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIManifestSchema1),
		"config":        map[string]any{"mediaType": string(types.OCIConfigJSON), "digest": cfg.Digest.String(), "size": cfg.Size},
		"layers":        []any{},
	}
	raw, _ := json.Marshal(m)
	d := a.put(raw)
	return Subject{Ref: "registry.example/team/app:" + seed, Digest: d.Digest, MediaType: string(types.OCIManifestSchema1), Size: d.Size}
}

// sigLayer is one layer of a cosign signature manifest.
type sigLayer struct {
	mediaType   string
	payload     []byte
	annotations map[string]string
}

// manifestWith builds an OCI manifest of layers, optionally with an
// artifact type and subject (a referrer).
func (a *archive) manifestWith(artifactType string, subject *Subject, layers []sigLayer) v1.Descriptor {
	cfg := a.put([]byte("{}"))
	var ls []any
	for _, l := range layers {
		d := a.put(l.payload)
		ls = append(ls, map[string]any{"mediaType": l.mediaType, "digest": d.Digest.String(), "size": d.Size, "annotations": l.annotations})
	}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIManifestSchema1),
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg.Digest.String(), "size": cfg.Size},
		"layers":        ls,
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	if subject != nil {
		m["subject"] = map[string]any{"mediaType": subject.MediaType, "digest": subject.Digest.String(), "size": subject.Size}
	}
	raw, _ := json.Marshal(m)
	d := a.put(raw)
	d.MediaType = types.OCIManifestSchema1
	return d
}

// attachSig attaches a `.sig` tag manifest to s, as cosign does.
func (a *archive) attachSig(s Subject, layers ...sigLayer) v1.Hash {
	d := a.manifestWith("", nil, layers)
	a.atts = append(a.atts, layout.Attachment{Subject: s.Digest, Digest: d.Digest, MediaType: string(d.MediaType), Size: d.Size,
		Kind: layout.AttachCosignSignature, Tag: layout.CosignTag(s.Digest, layout.AttachCosignSignature)})
	return d.Digest
}

// attachAtt attaches a `.att` tag manifest to s.
func (a *archive) attachAtt(s Subject, layers ...sigLayer) v1.Hash {
	d := a.manifestWith("", nil, layers)
	a.atts = append(a.atts, layout.Attachment{Subject: s.Digest, Digest: d.Digest, MediaType: string(d.MediaType), Size: d.Size,
		Kind: layout.AttachCosignAttestation, Tag: layout.CosignTag(s.Digest, layout.AttachCosignAttestation)})
	return d.Digest
}

// attachReferrer attaches a referrer of artifactType with one layer.
func (a *archive) attachReferrer(s Subject, artifactType string, l sigLayer) v1.Hash {
	d := a.manifestWith(artifactType, &s, []sigLayer{l})
	a.atts = append(a.atts, layout.Attachment{Subject: s.Digest, Digest: d.Digest, MediaType: string(d.MediaType), Size: d.Size,
		Kind: layout.AttachReferrer, ArtifactType: artifactType})
	return d.Digest
}

func (a *archive) collect(t testing.TB, s Subject) *Signatures {
	t.Helper()
	sigs, err := Collect(s, a.atts, a)
	if err != nil {
		t.Fatal(err)
	}
	return sigs
}

// simpleSigning is the payload `cosign sign` signs for an image.
func simpleSigning(d v1.Hash) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":{"docker-manifest-digest":"` +
		d.String() + `"},"type":"cosign container image signature"},"optional":null}`)
}

// keyPair is a signing key and its public PEM in a file.
type keyPair struct {
	signer  sigsig.Signer
	pubPath string
}

func newKey(t testing.TB, kind string) keyPair {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := sigsig.LoadSigner(priv, crypto.SHA256) // what cosign signs with
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	p := filepath.Join(t.TempDir(), kind+".pub")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPair{signer: s, pubPath: p}
}

// sign makes a cosign `.sig` layer over payload.
func (k keyPair) sign(t testing.TB, payload []byte) sigLayer {
	t.Helper()
	sig, err := k.signer.SignMessage(strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	return sigLayer{mediaType: mtSimpleSigning, payload: payload,
		annotations: map[string]string{annSignature: base64.StdEncoding.EncodeToString(sig)}}
}

func load(t testing.TB, r Requirement, o LoadOptions) *Checker {
	t.Helper()
	c, err := r.Load(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustPass checks that c accepts sigs and returns the result.
func mustPass(t *testing.T, c *Checker, sigs *Signatures) *Result {
	t.Helper()
	res, err := c.Check(context.Background(), sigs)
	if err != nil {
		t.Fatalf("%s: refused: %v", c.Name(), err)
	}
	if len(res.Signatures) == 0 {
		t.Fatalf("%s: passed without a signature", c.Name())
	}
	return res
}

// mustRefuse checks that c refuses sigs for reason, and returns the failure.
func mustRefuse(t *testing.T, c *Checker, sigs *Signatures, reason Reason) *Failure {
	t.Helper()
	res, err := c.Check(context.Background(), sigs)
	if err == nil {
		t.Fatalf("%s: accepted (%+v), want refusal %q", c.Name(), res, reason)
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("%s: error %v is not a *Failure", c.Name(), err)
	}
	if f.Reason != reason {
		t.Fatalf("%s: refused for %q, want %q: %v", c.Name(), f.Reason, reason, err)
	}
	t.Logf("refused as expected: %v", err)
	return f
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%x", s)
}

func layoutReferrer(s Subject, d v1.Hash, size int64, artifactType string) layout.Attachment {
	return layout.Attachment{Subject: s.Digest, Digest: d, MediaType: string(types.OCIManifestSchema1), Size: size,
		Kind: layout.AttachReferrer, ArtifactType: artifactType}
}
