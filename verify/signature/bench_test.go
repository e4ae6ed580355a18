package signature

import (
	"context"
	"testing"
)

// What verification costs per image, after the archive is read: collecting
// the image's signatures from the archive's metadata (parsing manifests,
// hashing blobs) and checking one requirement against them. Run with
//
//	go test -run '^$' -bench . -benchmem ./verify/signature

func benchCheck(b *testing.B, c *Checker, a *archive, s Subject) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sigs, err := Collect(s, a.atts, a)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Check(context.Background(), sigs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckKeySignature: a cosign `.sig` signed with an ECDSA P-256
// key, checked against that key (cosign verify --key, offline).
func BenchmarkCheckKeySignature(b *testing.B) {
	a := newArchive()
	img := a.image(b, "1")
	k := newKey(b, "ecdsa")
	a.attachSig(img, k.sign(b, simpleSigning(img.Digest)))
	benchCheck(b, load(b, Requirement{Cosign: &Cosign{Keys: []string{k.pubPath}}}, LoadOptions{}), a, img)
}

// BenchmarkCheckKeyThreshold: 2 of 3 keys, two signatures.
func BenchmarkCheckKeyThreshold(b *testing.B) {
	a := newArchive()
	img := a.image(b, "1")
	k1, k2, k3 := newKey(b, "ecdsa"), newKey(b, "ecdsa"), newKey(b, "ecdsa")
	a.attachSig(img, k1.sign(b, simpleSigning(img.Digest)), k2.sign(b, simpleSigning(img.Digest)))
	benchCheck(b, load(b, Requirement{Cosign: &Cosign{Keys: []string{k1.pubPath, k2.pubPath, k3.pubPath}, Threshold: 2}}, LoadOptions{}), a, img)
}

// BenchmarkCheckKeyless: a keyless `.sig` (Fulcio certificate and chain,
// Rekor entry with its signed entry timestamp) against an identity under a
// trusted root.
func BenchmarkCheckKeyless(b *testing.B) {
	ts := newTestSigstore(b)
	a := newArchive()
	img := a.image(b, "1")
	a.attachSig(img, ts.sigLayer(b, testSubject, testIssuer, simpleSigning(img.Digest)))
	benchCheck(b, load(b, ts.req(testIssuer, testSubject), LoadOptions{}), a, img)
}

// BenchmarkCheckKeylessBundle: a Sigstore bundle referrer (DSSE, Rekor
// inclusion proof and SET, RFC 3161 timestamp).
func BenchmarkCheckKeylessBundle(b *testing.B) {
	ts := newTestSigstore(b)
	a := newArchive()
	img := a.image(b, "1")
	l, _ := ts.bundleLayer(b, testSubject, testIssuer, statement(img.Digest, cosignSignPredicate))
	a.attachReferrer(img, bundleType, l)
	benchCheck(b, load(b, ts.req(testIssuer, testSubject), LoadOptions{}), a, img)
}
