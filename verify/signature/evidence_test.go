package signature

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testsigstore"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
)

// logKeySignature logs a key signature in the virtual Rekor and returns
// cosign's Rekor bundle annotation for it, as `cosign sign --key` with the
// transparency log leaves it.
func (ts *testSigstore) logKeySignature(t *testing.T, k keyPair, payload, sig []byte) string {
	t.Helper()
	pub, _ := k.signer.PublicKey()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(payload)
	pe, err := types.NewProposedEntry(context.Background(), hashedrekord.KIND, "0.0.1", types.ArtifactProperties{
		PublicKeyBytes: [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})},
		PKIFormat:      string(pki.X509),
		ArtifactHash:   hex.EncodeToString(sum[:]),
		SignatureBytes: sig,
	})
	if err != nil {
		t.Fatal(err)
	}
	ei, err := types.CreateVersionedEntry(pe)
	if err != nil {
		t.Fatal(err)
	}
	body, err := types.CanonicalizeEntry(context.Background(), ei)
	if err != nil {
		t.Fatal(err)
	}
	logID, _ := ts.vs.RekorLogID()
	rb := testsigstore.NewRekorBundle(t, ts.vs, body, time.Now().Unix(), 7, logID)
	b, _ := json.Marshal(rb)
	return string(b)
}

func TestKeySignatureWithTransparencyLog(t *testing.T) {
	ts := newTestSigstore(t)
	k := newKey(t, "ecdsa")
	one := 1
	req := load(t, Requirement{Cosign: &Cosign{Keys: []string{k.pubPath}, TransparencyLog: &one, TrustedRoot: ts.rootPath}}, LoadOptions{})

	a := newArchive()
	img := a.image(t, "1")
	l := k.sign(t, simpleSigning(img.Digest))
	sig, _ := base64.StdEncoding.DecodeString(l.annotations[annSignature])

	t.Run("no entry", func(t *testing.T) {
		a.attachSig(img, l)
		mustRefuse(t, req, a.collect(t, img), ReasonBadTransparencyLog)
	})
	t.Run("logged", func(t *testing.T) {
		l.annotations[annRekorBundle] = ts.logKeySignature(t, k, l.payload, sig)
		a.attachSig(img, l)
		mustPass(t, req, a.collect(t, img))
		// Without the requirement, the entry is not needed but does no harm.
		mustPass(t, load(t, keyReq(0, k), LoadOptions{}), a.collect(t, img))
	})
	t.Run("entry of another signature", func(t *testing.T) {
		l2 := k.sign(t, simpleSigning(img.Digest))
		other, _ := base64.StdEncoding.DecodeString(l2.annotations[annSignature])
		l.annotations[annRekorBundle] = ts.logKeySignature(t, k, l.payload, other)
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, l)
		f := mustRefuse(t, req, a.collect(t, img), ReasonBadTransparencyLog)
		if !strings.Contains(f.Detail, "signature does not match") {
			t.Fatal(f)
		}
	})
}

func TestKeylessWithTimestampAuthority(t *testing.T) {
	ts := newTestSigstore(t)
	zero := 0
	r := ts.req(testIssuer, testSubject)
	r.Cosign.TransparencyLog = &zero
	r.Cosign.Timestamps = 1
	req := load(t, r, LoadOptions{})

	a := newArchive()
	img := a.image(t, "1")
	l := ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest))
	delete(l.annotations, annRekorBundle) // signed with a TSA instead of Rekor
	sig, _ := base64.StdEncoding.DecodeString(l.annotations[annSignature])
	tsr, err := ts.vs.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(b []byte) string {
		j, _ := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": b})
		return string(j)
	}

	l.annotations[annRFC3161] = stamp(tsr)
	a.attachSig(img, l)
	mustPass(t, req, a.collect(t, img))

	t.Run("timestamp of another signature", func(t *testing.T) {
		other, _ := ts.vs.TimestampResponse([]byte("another signature"))
		l.annotations[annRFC3161] = stamp(other)
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, l)
		mustRefuse(t, req, a.collect(t, img), ReasonBadTimestamp)
	})
}

// TestKeylessSCTByDefault: a trusted root that lists CT logs makes an SCT
// required unless the requirement says otherwise; the virtual Fulcio issues
// none.
func TestKeylessSCTByDefault(t *testing.T) {
	ts := newTestSigstore(t)
	r := ts.req(testIssuer, testSubject)
	r.Cosign.SCTs = nil
	a := newArchive()
	img := a.image(t, "1")
	a.attachSig(img, ts.sigLayer(t, testSubject, testIssuer, simpleSigning(img.Digest)))
	f := mustRefuse(t, load(t, r, LoadOptions{}), a.collect(t, img), ReasonUntrustedCertificate)
	if !strings.Contains(f.Detail, "certificate transparency") {
		t.Fatal(f)
	}
}
