package signature

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func keyReq(threshold int, keys ...keyPair) Requirement {
	var paths []string
	for _, k := range keys {
		paths = append(paths, k.pubPath)
	}
	return Requirement{Cosign: &Cosign{Keys: paths, Threshold: threshold}}
}

func TestKeySignatureEachKeyType(t *testing.T) {
	for _, kind := range []string{"ecdsa", "ecdsa384", "ed25519", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			a := newArchive()
			img := a.image(t, "1")
			k := newKey(t, kind)
			a.attachSig(img, k.sign(t, simpleSigning(img.Digest)))
			res := mustPass(t, load(t, keyReq(0, k), LoadOptions{}), a.collect(t, img))
			if res.Signatures[0].Format != FormatCosignSignature || !strings.HasPrefix(res.Signatures[0].Signer, "sha256:") {
				t.Fatalf("evidence %+v", res.Signatures)
			}
		})
	}
}

func TestKeySignatureRefusals(t *testing.T) {
	a := newArchive()
	img := a.image(t, "1")
	other := a.image(t, "2")
	signer, stranger := newKey(t, "ecdsa"), newKey(t, "ecdsa")
	req := load(t, keyReq(0, signer), LoadOptions{})

	t.Run("no signature", func(t *testing.T) {
		f := mustRefuse(t, req, a.collect(t, img), ReasonNoSignature)
		if !strings.Contains(f.Detail, "no cosign signature") {
			t.Fatal(f)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, stranger.sign(t, simpleSigning(img.Digest)))
		mustRefuse(t, req, a.collect(t, img), ReasonWrongKey)
	})
	t.Run("signature over another digest", func(t *testing.T) {
		// A valid signature of the right key, copied from another image.
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, signer.sign(t, simpleSigning(other.Digest)))
		f := mustRefuse(t, req, a.collect(t, img), ReasonDigestMismatch)
		if !strings.Contains(f.Detail, other.Digest.String()) {
			t.Fatalf("detail should name the signed digest: %v", f)
		}
	})
	t.Run("tampered payload", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		l := signer.sign(t, simpleSigning(other.Digest))
		l.payload = simpleSigning(img.Digest) // re-pointed at this image after signing
		a.attachSig(img, l)
		mustRefuse(t, req, a.collect(t, img), ReasonWrongKey)
	})
	t.Run("junk referrer claiming to be a bundle", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachReferrer(img, "application/vnd.dev.sigstore.bundle.v0.3+json",
			sigLayer{mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", payload: []byte("trust me")})
		mustRefuse(t, req, a.collect(t, img), ReasonNotSignature)
	})
	t.Run("junk sig tag", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachSig(img, sigLayer{mediaType: mtSimpleSigning, payload: []byte("{}"), annotations: map[string]string{annSignature: "AAAA"}})
		mustRefuse(t, req, a.collect(t, img), ReasonNotSignature)
	})
	t.Run("junk does not hide a good signature", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachReferrer(img, "application/vnd.dev.sigstore.bundle.v0.3+json",
			sigLayer{mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", payload: []byte("junk")})
		a.attachSig(img, stranger.sign(t, simpleSigning(img.Digest)), signer.sign(t, simpleSigning(img.Digest)))
		mustPass(t, req, a.collect(t, img))
	})
	t.Run("the most telling failure is named", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		a.attachReferrer(img, "application/vnd.dev.sigstore.bundle.v0.3+json",
			sigLayer{mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", payload: []byte("junk")})
		a.attachSig(img, stranger.sign(t, simpleSigning(img.Digest)), signer.sign(t, simpleSigning(other.Digest)))
		f := mustRefuse(t, req, a.collect(t, img), ReasonDigestMismatch)
		if len(f.Attempts) != 3 {
			t.Fatalf("want 3 attempts listed: %v", f)
		}
	})
	t.Run("referrer naming another subject", func(t *testing.T) {
		a := newArchive()
		img := a.image(t, "1")
		d := a.manifestWith(atCosignSigReferrer, &other, []sigLayer{signer.sign(t, simpleSigning(img.Digest))})
		a.atts = append(a.atts, layoutReferrer(img, d.Digest, d.Size, atCosignSigReferrer))
		mustRefuse(t, req, a.collect(t, img), ReasonNotSignature)
	})
}

func TestKeyThreshold(t *testing.T) {
	k1, k2, k3 := newKey(t, "ecdsa"), newKey(t, "ed25519"), newKey(t, "rsa")
	req := load(t, keyReq(2, k1, k2, k3), LoadOptions{})

	a := newArchive()
	img := a.image(t, "1")
	// cosign appends one layer per `cosign sign` to the same .sig manifest.
	a.attachSig(img, k1.sign(t, simpleSigning(img.Digest)))
	f := mustRefuse(t, req, a.collect(t, img), ReasonThreshold)
	if !strings.Contains(f.Detail, "2 of the 3 keys must sign, 1 did") {
		t.Fatal(f)
	}
	// The same key twice is still one key.
	a.attachSig(img, k1.sign(t, simpleSigning(img.Digest)), k1.sign(t, simpleSigning(img.Digest)))
	mustRefuse(t, req, a.collect(t, img), ReasonThreshold)

	a.attachSig(img, k1.sign(t, simpleSigning(img.Digest)), k3.sign(t, simpleSigning(img.Digest)))
	res := mustPass(t, req, a.collect(t, img))
	if len(res.Signatures) != 2 {
		t.Fatalf("want two signers, got %+v", res.Signatures)
	}
}

func TestRequirementJSON(t *testing.T) {
	k := newKey(t, "ecdsa")
	var r Requirement
	doc := `{"name": "release", "cosign": {"keys": ["` + k.pubPath + `"]}}`
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	c := load(t, r, LoadOptions{})
	if c.Name() != "release" {
		t.Fatal(c.Name())
	}

	bad := map[string]string{
		"two kinds":          `{"cosign": {"keys": ["a.pub"]}, "notation": {"trustStores": {"ca:x": ["x.pem"]}, "trustPolicy": "p.json"}}`,
		"none":               `{}`,
		"keys and keyless":   `{"cosign": {"keys": ["a.pub"], "identities": [{"issuer": "i", "subject": "s"}]}}`,
		"threshold too high": `{"cosign": {"keys": ["a.pub"], "threshold": 2}}`,
		"identity half":      `{"cosign": {"identities": [{"issuer": "i"}]}}`,
		"bad regexp":         `{"cosign": {"identities": [{"issuer": "i", "subjectRegExp": "("}]}}`,
		"keyless no time":    `{"cosign": {"identities": [{"issuer": "i", "subject": "s"}], "transparencyLog": 0}}`,
		"store name":         `{"notation": {"trustStores": {"x509": ["x.pem"]}, "trustPolicy": "p.json"}}`,
		"no predicate":       `{"attestation": {"cosign": {"keys": ["a.pub"]}}}`,
	}
	for name, doc := range bad {
		var r Requirement
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := r.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}

	// One key listed twice would count twice toward a threshold.
	if _, err := (Requirement{Cosign: &Cosign{Keys: []string{k.pubPath, k.pubPath}, Threshold: 2}}).Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "same key") {
		t.Fatalf("duplicate key: %v", err)
	}
	// Keyless with no trusted root anywhere.
	if _, err := (Requirement{Cosign: &Cosign{Identities: []Identity{{Issuer: "i", Subject: "s"}}}}).Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "trusted root") {
		t.Fatalf("keyless without root: %v", err)
	}
}

func TestSetAllMustHold(t *testing.T) {
	k1, k2 := newKey(t, "ecdsa"), newKey(t, "ed25519")
	set, err := LoadSet([]Requirement{
		{Name: "release", Cosign: &Cosign{Keys: []string{k1.pubPath}}},
		{Name: "qa", Cosign: &Cosign{Keys: []string{k2.pubPath}}},
	}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive()
	img := a.image(t, "1")
	a.attachSig(img, k1.sign(t, simpleSigning(img.Digest)))
	results, err := set.Check(context.Background(), a.collect(t, img))
	fs := Failures(err)
	if len(results) != 1 || results[0].Requirement != "release" || len(fs) != 1 || fs[0].Requirement != "qa" || fs[0].Reason != ReasonWrongKey {
		t.Fatalf("results %+v, failures %v", results, err)
	}
	a.attachSig(img, k1.sign(t, simpleSigning(img.Digest)), k2.sign(t, simpleSigning(img.Digest)))
	if results, err := set.Check(context.Background(), a.collect(t, img)); err != nil || len(results) != 2 {
		t.Fatalf("results %+v, err %v", results, err)
	}
}
