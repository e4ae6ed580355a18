package signature

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/internal/testsigstore"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	testIssuer  = "https://issuer.example"
	testSubject = "release@example.com"
)

// testSigstore is sigstore-go's virtual Fulcio, Rekor and TSA, with its
// trusted root written as trusted_root.json, as a site would receive it.
type testSigstore struct {
	vs       *ca.VirtualSigstore
	rootPath string
}

func newTestSigstore(t testing.TB) *testSigstore {
	t.Helper()
	vs, b := testsigstore.New(t)
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return &testSigstore{vs: vs, rootPath: p}
}

// keylessReq requires identity (issuer, subject) under the test root. The
// virtual Fulcio issues no SCTs.
func (ts *testSigstore) req(issuer, subject string) Requirement {
	zero := 0
	return Requirement{Cosign: &Cosign{Identities: []Identity{{Issuer: issuer, Subject: subject}}, TrustedRoot: ts.rootPath, SCTs: &zero}}
}

// sigLayer signs payload keyless and returns it in cosign's `.sig` form: the
// signature, the Fulcio certificate and chain, and the Rekor bundle in the
// layer's annotations.
func (ts *testSigstore) sigLayer(t testing.TB, identity, issuer string, payload []byte) sigLayer {
	t.Helper()
	return sigLayer{mediaType: mtSimpleSigning, payload: payload, annotations: testsigstore.CosignAnnotations(t, ts.vs, identity, issuer, payload, nil)}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// statement is an in-toto statement about d.
func statement(d v1.Hash, predicateType string) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example/team/app","digest":{"` +
		d.Algorithm + `":"` + d.Hex + `"}}],"predicateType":"` + predicateType + `","predicate":{}}`)
}

// bundleLayer signs an in-toto statement keyless and returns it as cosign
// --new-bundle-format attaches it: a v0.3 Sigstore bundle with the
// certificate, the Rekor entry with its inclusion proof and SET, and a TSA
// timestamp.
func (ts *testSigstore) bundleLayer(t testing.TB, identity, issuer string, stmt []byte) (sigLayer, *protobundle.Bundle) {
	t.Helper()
	pb := testsigstore.Bundle(t, ts.vs, identity, issuer, stmt)
	return bundleLayerOf(t, pb), pb
}

func bundleLayerOf(t testing.TB, pb *protobundle.Bundle) sigLayer {
	t.Helper()
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return sigLayer{mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", payload: b,
		annotations: map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": cosignSignPredicate}}
}

const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"

func TestKeylessSigTag(t *testing.T) {
	ts := newTestSigstore(t)
	a := newArchive()
	img := a.image(t, "1")
	other := a.image(t, "2")
	a.attachSig(img, ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest)))
	sigs := a.collect(t, img)

	t.Run("identity matches", func(t *testing.T) {
		res := mustPass(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), sigs)
		if got := res.Signatures[0].Signer; got != testIssuer+" "+testSubject {
			t.Fatalf("signer %q", got)
		}
	})
	t.Run("identity by regular expression", func(t *testing.T) {
		r := ts.req(testIssuer, testSubject)
		r.Cosign.Identities = []Identity{{IssuerRegExp: `^https://issuer\.example$`, SubjectRegExp: `@example\.com$`}}
		mustPass(t, load(t, r, LoadOptions{}), sigs)
	})
	t.Run("trusted root from the site", func(t *testing.T) {
		r := ts.req(testIssuer, testSubject)
		r.Cosign.TrustedRoot = ""
		tr, err := root.NewTrustedRootFromPath(ts.rootPath)
		if err != nil {
			t.Fatal(err)
		}
		mustPass(t, load(t, r, LoadOptions{TrustedRoot: tr}), sigs)
	})
	t.Run("subject mismatch", func(t *testing.T) {
		f := mustRefuse(t, load(t, ts.req(testIssuer, "mallory@example.com"), LoadOptions{}), sigs, ReasonIdentityMismatch)
		if !strings.Contains(f.Detail, testSubject) {
			t.Fatalf("detail should name the certificate's identity: %v", f)
		}
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		mustRefuse(t, load(t, ts.req("https://other.example", testSubject), LoadOptions{}), sigs, ReasonIdentityMismatch)
	})
	t.Run("signature over another digest", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, ts.sigLayer(t, testSubject, testIssuer, simpleSigning(other.Digest)))
		mustRefuse(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), a.collect(t, img), ReasonDigestMismatch)
	})
	t.Run("tampered rekor entry", func(t *testing.T) {
		// The entry claims another time than Rekor signed: the SET fails.
		l := ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest))
		var rb testsigstore.RekorBundle
		json.Unmarshal([]byte(l.annotations[annRekorBundle]), &rb)
		rb.Payload.IntegratedTime--
		b, _ := json.Marshal(rb)
		l.annotations[annRekorBundle] = string(b)
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, l)
		mustRefuse(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("rekor entry of another signature", func(t *testing.T) {
		// A genuine Rekor entry, but for another signature.
		l := ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest))
		l2 := ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest))
		l.annotations[annRekorBundle] = l2.annotations[annRekorBundle]
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, l)
		mustRefuse(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("rekor entry signed by an untrusted log", func(t *testing.T) {
		other := newTestSigstore(t)
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, other.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest)))
		mustRefuse(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("no rekor entry", func(t *testing.T) {
		l := ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest))
		delete(l.annotations, annRekorBundle)
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, l)
		mustRefuse(t, load(t, ts.req(testIssuer, testSubject), LoadOptions{}), a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("a key requirement refuses a keyless signature", func(t *testing.T) {
		mustRefuse(t, load(t, keyReq(0, newKey(t, "ecdsa")), LoadOptions{}), sigs, ReasonWrongKey)
	})
}

func TestKeylessBundle(t *testing.T) {
	ts := newTestSigstore(t)
	req := load(t, ts.req(testIssuer, testSubject), LoadOptions{})
	a := newArchive()
	img := a.image(t, "1")
	l, pb := ts.bundleLayer(t, testSubject, testIssuer, statement(img.Digest, cosignSignPredicate))
	a.attachReferrer(img, bundleType, l)

	t.Run("accepted", func(t *testing.T) {
		res := mustPass(t, req, a.collect(t, img))
		if res.Signatures[0].Format != FormatSigstoreBundle {
			t.Fatalf("%+v", res.Signatures)
		}
	})
	t.Run("identity mismatch", func(t *testing.T) {
		mustRefuse(t, load(t, ts.req(testIssuer, "mallory@example.com"), LoadOptions{}), a.collect(t, img), ReasonIdentityMismatch)
	})
	t.Run("tampered inclusion proof", func(t *testing.T) {
		bad := cloneBundle(pb)
		tle := bad.VerificationMaterial.TlogEntries[0]
		tle.InclusionProof.RootHash[0] ^= 0xff
		a := newArchive()
		img := a.image(t, "1")
		a.attachReferrer(img, bundleType, bundleLayerOf(t, bad))
		mustRefuse(t, req, a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("tampered entry body", func(t *testing.T) {
		bad := cloneBundle(pb)
		tle := bad.VerificationMaterial.TlogEntries[0]
		tle.CanonicalizedBody = append([]byte(nil), tle.CanonicalizedBody...)
		tle.CanonicalizedBody[len(tle.CanonicalizedBody)/2] ^= 0x01
		a := newArchive()
		img := a.image(t, "1")
		a.attachReferrer(img, bundleType, bundleLayerOf(t, bad))
		mustRefuse(t, req, a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("statement about another digest", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		other := a.image(t, "2")
		l, _ := ts.bundleLayer(t, testSubject, testIssuer, statement(other.Digest, cosignSignPredicate))
		a.attachReferrer(img, bundleType, l)
		mustRefuse(t, req, a.collect(t, img), ReasonDigestMismatch)
	})
	t.Run("an attestation bundle is not a signature", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		l, _ := ts.bundleLayer(t, testSubject, testIssuer, statement(img.Digest, "https://slsa.dev/provenance/v1"))
		a.attachReferrer(img, bundleType, l)
		mustRefuse(t, req, a.collect(t, img), ReasonNoSignature)

		att := ts.req(testIssuer, testSubject)
		att = Requirement{Attestation: &Attestation{PredicateType: "https://slsa.dev/provenance/v1", Cosign: *att.Cosign}}
		mustPass(t, load(t, att, LoadOptions{}), a.collect(t, img))
	})
}

func cloneBundle(pb *protobundle.Bundle) *protobundle.Bundle {
	b, _ := protojson.Marshal(pb)
	var out protobundle.Bundle
	protojson.Unmarshal(b, &out)
	return &out
}

// TestKeylessExpiredWithoutTimestamp signs with a certificate that expired
// and carries no Rekor entry and no timestamp (cosign sign
// --tlog-upload=false with a Fulcio certificate): nothing shows it was valid
// when it signed.
func TestKeylessExpiredWithoutTimestamp(t *testing.T) {
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuerExt, _ := asn1.Marshal(testIssuer)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), EmailAddresses: []string{testSubject},
		NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-2*time.Hour + 10*time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(testIssuer)}, // issuer (v1)
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerExt},          // issuer (v2)
		}}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	leaf, _ := x509.ParseCertificate(leafDER)

	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: caCert, ValidityPeriodStart: now.Add(-48 * time.Hour), URI: "https://fulcio.test"}},
		nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive()
	img := a.image(t, "1")
	payload := simpleSigning(img.Digest)
	signer, _ := sigsig.LoadSigner(leafKey, crypto.SHA256)
	sig, _ := signer.SignMessage(strings.NewReader(string(payload)))
	a.attachSig(img, sigLayer{mediaType: mtSimpleSigning, payload: payload, annotations: map[string]string{
		annSignature:   base64.StdEncoding.EncodeToString(sig),
		annCertificate: string(pemCert(leaf)),
	}})
	zero := 0
	r := Requirement{Cosign: &Cosign{Identities: []Identity{{Issuer: testIssuer, Subject: testSubject}}, SCTs: &zero}}
	f := mustRefuse(t, load(t, r, LoadOptions{TrustedRoot: tr}), a.collect(t, img), ReasonCertificateExpired)
	if !strings.Contains(f.Detail, "expired") {
		t.Fatal(f)
	}
}

// TestKeyAttestation checks cosign's `.att` form: a DSSE envelope over an
// in-toto statement, signed with a key.
func TestKeyAttestation(t *testing.T) {
	const slsa = "https://slsa.dev/provenance/v1"
	k := newKey(t, "ecdsa")
	att := func(t *testing.T, k keyPair, stmt []byte) sigLayer {
		t.Helper()
		pub, _ := k.signer.PublicKey()
		es, err := dsse.NewEnvelopeSigner(&sigdsse.SignerAdapter{SignatureSigner: k.signer, Pub: pub})
		if err != nil {
			t.Fatal(err)
		}
		env, err := es.SignPayload(context.Background(), atIntoto, stmt)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		return sigLayer{mediaType: mtDSSE, payload: b, annotations: map[string]string{annPredicateType: slsa}}
	}
	req := load(t, Requirement{Attestation: &Attestation{PredicateType: slsa, Cosign: Cosign{Keys: []string{k.pubPath}}}}, LoadOptions{})

	a := newArchive()
	img := a.image(t, "1")
	other := a.image(t, "2")
	mustRefuse(t, req, a.collect(t, img), ReasonNoSignature)

	a.attachAtt(img, att(t, k, statement(img.Digest, slsa)))
	mustPass(t, req, a.collect(t, img))

	t.Run("another predicate type", func(t *testing.T) {
		r := load(t, Requirement{Attestation: &Attestation{PredicateType: "https://spdx.dev/Document", Cosign: Cosign{Keys: []string{k.pubPath}}}}, LoadOptions{})
		mustRefuse(t, r, a.collect(t, img), ReasonNoSignature)
	})
	t.Run("a signature requirement does not take an attestation", func(t *testing.T) {
		mustRefuse(t, load(t, keyReq(0, k), LoadOptions{}), a.collect(t, img), ReasonNoSignature)
	})
	t.Run("statement about another digest", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachAtt(img, att(t, k, statement(other.Digest, slsa)))
		mustRefuse(t, req, a.collect(t, img), ReasonDigestMismatch)
	})
	t.Run("wrong key", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachAtt(img, att(t, newKey(t, "ecdsa"), statement(img.Digest, slsa)))
		mustRefuse(t, req, a.collect(t, img), ReasonWrongKey)
	})
}
