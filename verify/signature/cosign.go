package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// ErrNoTrustedRoot is a keyless (or transparency-log) requirement loaded
// without a Sigstore trusted root: a site may still supply one.
var ErrNoTrustedRoot = errors.New("needs a Sigstore trusted root")

// cosignChecker verifies cosign signatures or attestations with keys or
// keyless identities.
type cosignChecker struct {
	name       string
	keys       []*publicKey
	threshold  int
	identities verify.CertificateIdentities
	trusted    root.TrustedMaterial
	tlog, tsa  int
	sct        int
	// predicateType is set for attestations.
	predicateType string
}

func (c *Cosign) load(name string, o LoadOptions) (*cosignChecker, error) {
	cc := &cosignChecker{name: name, threshold: max(c.Threshold, 1), tlog: c.tlog(), tsa: c.Timestamps}
	seen := map[string]string{}
	for _, k := range c.Keys {
		b, err := o.readPEM(k)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", short(k), err)
		}
		pk, err := parsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", short(k), err)
		}
		// One key listed twice must not count twice toward a threshold.
		if prev, dup := seen[pk.fingerprint]; dup {
			return nil, fmt.Errorf("keys %s and %s are the same key", short(prev), short(k))
		}
		seen[pk.fingerprint] = k
		for _, sv := range keyVerifiers(pk.pub) {
			tm := keyMaterial(sv)
			if v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps()); err == nil {
				pk.verifiers = append(pk.verifiers, keyVerifier{tm: tm, v: v})
			}
		}
		cc.keys = append(cc.keys, pk)
	}
	if c.TrustedRoot != "" {
		b, err := o.read(c.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("trusted root: %w", err)
		}
		tr, err := root.NewTrustedRootFromJSON(b)
		if err != nil {
			return nil, fmt.Errorf("trusted root %s: %w", c.TrustedRoot, err)
		}
		cc.trusted = tr
	} else {
		cc.trusted = o.TrustedRoot
	}
	keyless := len(c.Identities) > 0
	if cc.trusted == nil && (keyless || cc.tlog > 0 || cc.tsa > 0) {
		return nil, fmt.Errorf("%w: give trustedRoot, or the site's (--sigstore-trusted-root, or a TUF-verified trusted_root.json)", ErrNoTrustedRoot)
	}
	if keyless {
		ids, err := identities(c.Identities)
		if err != nil {
			return nil, err
		}
		cc.identities = ids
		switch {
		case c.SCTs != nil:
			cc.sct = *c.SCTs
		case len(cc.trusted.CTLogs()) > 0:
			cc.sct = 1
		}
	}
	return cc, nil
}

func short(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return "(inline PEM)"
	}
	return s
}

// signatures checks cosign signatures: `.sig` layers, and bundles signing
// the image (cosign's sign predicate, or a message signature).
func (cc *cosignChecker) signatures(_ context.Context, s *Signatures) (*Result, error) {
	var cands []*item
	for _, it := range s.items {
		switch {
		case it.format == FormatCosignSignature:
			cands = append(cands, it)
		case it.format == FormatSigstoreBundle:
			if it.invalid != "" || it.tlogInvalid != "" || it.bundleMessageDigest != "" || it.predicateType == cosignSignPredicate {
				cands = append(cands, it)
			}
		}
	}
	return cc.decide(s, cands, "cosign signature")
}

// attestations checks attestations of the requirement's predicate type.
func (cc *cosignChecker) attestations(_ context.Context, s *Signatures) (*Result, error) {
	var cands []*item
	for _, it := range s.items {
		if it.format != FormatCosignAttestation && it.format != FormatSigstoreBundle {
			continue
		}
		// Junk cannot say what it attests: it is tried, and refused.
		if it.invalid != "" || it.tlogInvalid != "" || (it.dsse && it.predicateType == cc.predicateType) {
			cands = append(cands, it)
		}
	}
	return cc.decide(s, cands, "attestation of "+cc.predicateType)
}

// decide verifies every candidate and folds the outcomes into a result or
// a refusal.
func (cc *cosignChecker) decide(s *Signatures, cands []*item, what string) (*Result, error) {
	if len(cands) == 0 {
		return nil, &Failure{Requirement: cc.name, Reason: ReasonNoSignature, Detail: "no " + what + " attached" + found(s)}
	}
	res := &Result{Requirement: cc.name}
	var attempts []Attempt
	signedBy := map[string]bool{} // keys (or identities) that verified
	for _, it := range cands {
		var signers []string
		var err *attemptErr
		if len(cc.keys) > 0 {
			signers, err = cc.verifyKeys(it, s.Subject)
		} else {
			signers, err = cc.verifyKeyless(it, s.Subject)
		}
		if err != nil {
			attempts = append(attempts, Attempt{Signature: it.name, Format: it.format, Reason: err.reason, Detail: err.detail})
			continue
		}
		for _, who := range signers {
			if !signedBy[who] {
				signedBy[who] = true
				res.Signatures = append(res.Signatures, Evidence{Signature: it.name, Format: it.format, Signer: who})
			}
		}
	}
	need := 1
	if len(cc.keys) > 0 {
		need = cc.threshold
	}
	if len(signedBy) >= need {
		return res, nil
	}
	sortAttempts(attempts)
	if len(signedBy) > 0 {
		who := slices.Sorted(maps.Keys(signedBy))
		return nil, &Failure{Requirement: cc.name, Reason: ReasonThreshold,
			Detail:   fmt.Sprintf("%d of the %d keys must sign, %d did (%s)", need, len(cc.keys), len(who), strings.Join(who, ", ")),
			Attempts: attempts}
	}
	best := attempts[0]
	return nil, &Failure{Requirement: cc.name, Reason: best.Reason, Detail: best.Signature + ": " + best.Detail, Attempts: attempts}
}

// sortAttempts puts the attempt that got furthest first.
func sortAttempts(a []Attempt) {
	sort.SliceStable(a, func(i, j int) bool { return a[i].Reason.rank() > a[j].Reason.rank() })
}

// found says what is attached instead, for a "no signature" refusal.
func found(s *Signatures) string {
	n := s.Count()
	if len(n) == 0 {
		return ""
	}
	var parts []string
	for f, c := range n {
		parts = append(parts, fmt.Sprintf("%d %s", c, f))
	}
	sort.Strings(parts)
	return " (attached: " + strings.Join(parts, ", ") + ")"
}

// entity is the sigstore-go view of a signature.
func (it *item) entity(asKey bool) verify.SignedEntity {
	if it.bundle != nil {
		return it.bundle
	}
	return legacyEntity{l: it.legacy, asKey: asKey}
}

// artifactPolicy binds sigstore-go's signature check to what was signed:
// the simple-signing payload as the message, or nothing for DSSE (whose
// subject is compared to the image digest afterwards, to tell "digest
// mismatch" from "wrong key").
func (it *item) artifactPolicy() verify.ArtifactPolicyOption {
	switch {
	case it.dsse:
		return verify.WithoutArtifactUnsafe()
	case it.bundleMessageDigest != "":
		_, hexd, _ := strings.Cut(it.bundleMessageDigest, ":")
		d, _ := hex.DecodeString(hexd)
		return verify.WithArtifactDigest("sha256", d)
	default:
		return verify.WithArtifact(bytes.NewReader(it.payload))
	}
}

// common refusals before any cryptography.
func (it *item) precheck() *attemptErr {
	if it.invalid != "" {
		return refuse(ReasonNotSignature, "%s", it.invalid)
	}
	if it.tlogInvalid != "" {
		return refuse(ReasonBadTransparencyLog, "%s", it.tlogInvalid)
	}
	return nil
}

// bound refuses a verified signature whose payload names another digest.
func (it *item) bound(s Subject) *attemptErr {
	if !it.boundTo(s.Digest) {
		return refuse(ReasonDigestMismatch, "signed payload names %s, not the image %s", it.subjectList(), s.Digest)
	}
	return nil
}

// verifyKeys checks one signature against the requirement's keys and
// returns the fingerprints of the keys it verifies with.
func (cc *cosignChecker) verifyKeys(it *item, s Subject) ([]string, *attemptErr) {
	if e := it.precheck(); e != nil {
		return nil, e
	}
	ent := it.entity(true)
	vc, err := ent.VerificationContent()
	if err != nil {
		return nil, refuse(ReasonNotSignature, "%v", err)
	}
	if vc.Certificate() != nil {
		return nil, refuse(ReasonWrongKey, "signed with a certificate (keyless), not one of the keys")
	}
	var signers []string
	for _, k := range cc.keys {
		tm, ok := cc.keySigned(k, ent, it)
		if !ok {
			continue
		}
		if cc.tlog > 0 || cc.tsa > 0 {
			if e := cc.timeEvidence(ent, tm); e != nil {
				return nil, e
			}
		}
		signers = append(signers, k.fingerprint)
	}
	if len(signers) == 0 {
		return nil, refuse(ReasonWrongKey, "does not verify with %s", keyList(cc.keys))
	}
	if e := it.bound(s); e != nil {
		return nil, e
	}
	return signers, nil
}

func keyList(keys []*publicKey) string {
	if len(keys) == 1 {
		return "the key " + keys[0].fingerprint
	}
	return fmt.Sprintf("any of the %d keys", len(keys))
}

// keySigned reports whether k made the signature, trying the verifiers a
// cosign or sigstore-go client may have signed with for k's type.
func (cc *cosignChecker) keySigned(k *publicKey, ent verify.SignedEntity, it *item) (root.TrustedMaterial, bool) {
	for _, kv := range k.verifiers {
		if _, err := kv.v.Verify(ent, verify.NewPolicy(it.artifactPolicy(), verify.WithKey())); err == nil {
			if cc.trusted != nil {
				return root.TrustedMaterialCollection{cc.trusted, kv.tm}, true
			}
			return kv.tm, true
		}
	}
	return nil, false
}

// timeEvidence checks the Rekor entries and timestamps a keyed signature
// must carry.
func (cc *cosignChecker) timeEvidence(ent verify.SignedEntity, tm root.TrustedMaterial) *attemptErr {
	if cc.tlog > 0 {
		entries, err := ent.TlogEntries()
		if err != nil {
			return refuse(ReasonBadTransparencyLog, "%v", err)
		}
		if len(entries) == 0 {
			return refuse(ReasonBadTransparencyLog, "no transparency-log entry (%d required)", cc.tlog)
		}
		if _, err := verify.VerifyTlogEntry(ent, tm, cc.tlog, true); err != nil {
			return refuse(ReasonBadTransparencyLog, "%v", err)
		}
	}
	if cc.tsa > 0 {
		if _, err := verify.VerifySignedTimestampWithThreshold(ent, tm, cc.tsa); err != nil {
			return refuse(ReasonBadTimestamp, "%v", err)
		}
	}
	return nil
}

func keyVerifiers(pub crypto.PublicKey) []sigsig.Verifier {
	var out []sigsig.Verifier
	// cosign loads every key with SHA-256 (and pure Ed25519).
	if v, err := sigsig.LoadVerifier(pub, crypto.SHA256); err == nil {
		out = append(out, v)
	}
	// sigstore-go signs with the algorithm's default hash (SHA-384 for
	// P-384, ...); for P-256, RSA and Ed25519 that is the one above, and a
	// second try would only double the cost of a wrong key.
	if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve != elliptic.P256() {
		if v, err := sigsig.LoadDefaultVerifier(pub); err == nil {
			out = append(out, v)
		}
	}
	// hashedrekord signatures with Ed25519 keys are Ed25519ph.
	if ed, ok := pub.(ed25519.PublicKey); ok {
		if v, err := sigsig.LoadDefaultVerifier(ed, sigopts.WithED25519ph()); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// keyMaterial is trusted material holding one key, whatever the signature's
// key hint says: the requirement names the keys, not the signature.
func keyMaterial(v sigsig.Verifier) root.TrustedMaterial {
	k := root.NewExpiringKey(v, time.Time{}, time.Time{})
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return k, nil })
}

// verifyKeyless checks one signature against the trusted root and the
// identities, stage by stage so that a refusal names its stage: the Rekor
// entry, the time of signing, the certificate chain at that time, the
// signature, the identity, and last the digest.
func (cc *cosignChecker) verifyKeyless(it *item, s Subject) ([]string, *attemptErr) {
	if e := it.precheck(); e != nil {
		return nil, e
	}
	ent := it.entity(false)
	vc, err := ent.VerificationContent()
	if err != nil {
		return nil, refuse(ReasonNotSignature, "%v", err)
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return nil, refuse(ReasonIdentityMismatch, "signed with a key, not a certificate with an identity")
	}
	summary, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return nil, refuse(ReasonUntrustedCertificate, "certificate: %v", err)
	}
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if cc.tlog > 0 {
		opts = append(opts, verify.WithTransparencyLog(cc.tlog))
	}
	if cc.tsa > 0 {
		opts = append(opts, verify.WithSignedTimestamps(cc.tsa))
	}
	if cc.sct > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(cc.sct))
	}
	v, err := verify.NewVerifier(cc.trusted, opts...)
	if err != nil {
		return nil, refuse(ReasonNotSignature, "%v", err)
	}
	// Fast path: sigstore-go checks everything in one call; the stages
	// below only run to name the reason of a refusal.
	if _, err := v.Verify(ent, verify.NewPolicy(it.artifactPolicy(), verify.WithoutIdentitiesUnsafe())); err == nil {
		return cc.identityAndDigest(it, s, &summary)
	}
	now := time.Now()
	expired := now.After(leaf.NotAfter)

	// 1. The transparency log.
	entries, err := ent.TlogEntries()
	if err != nil {
		return nil, refuse(ReasonBadTransparencyLog, "%v", err)
	}
	stamps, _ := ent.Timestamps()
	if cc.tlog > 0 && len(entries) == 0 {
		if len(stamps) == 0 && expired {
			return nil, refuse(ReasonCertificateExpired, "certificate expired %s and no transparency-log entry or timestamp shows when it signed", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil, refuse(ReasonBadTransparencyLog, "no transparency-log entry (%d required)", cc.tlog)
	}
	logTimes, err := v.VerifyTransparencyLogInclusion(ent)
	if err != nil {
		return nil, refuse(ReasonBadTransparencyLog, "%v", err)
	}
	// 2. A trusted time of signing.
	times, err := v.VerifyObserverTimestamps(ent, logTimes)
	if err != nil {
		if expired && len(logTimes) == 0 {
			return nil, refuse(ReasonCertificateExpired, "certificate expired %s: %v", leaf.NotAfter.UTC().Format(time.RFC3339), err)
		}
		return nil, refuse(ReasonBadTimestamp, "%v", err)
	}
	// 3. The certificate chain, at each time.
	var chains [][]*x509.Certificate
	for _, t := range times {
		chains, err = verify.VerifyLeafCertificate(t.Timestamp, leaf, cc.trusted)
		if err == nil {
			continue
		}
		// Does it chain at all, at a time it was valid? Then time is the fault.
		mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		if _, err2 := verify.VerifyLeafCertificate(mid, leaf, cc.trusted); err2 == nil {
			return nil, refuse(ReasonCertificateExpired, "signed at %s (%s), outside the certificate's validity %s to %s",
				t.Timestamp.UTC().Format(time.RFC3339), t.Type, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil, refuse(ReasonUntrustedCertificate, "certificate of %s does not chain to the trusted root's Fulcio CAs", summary.SubjectAlternativeName)
	}
	if cc.sct > 0 {
		if err := verify.VerifySignedCertificateTimestamp(chains, cc.sct, cc.trusted); err != nil {
			return nil, refuse(ReasonUntrustedCertificate, "certificate transparency: %v", err)
		}
	}
	// 4. The signature, with everything sigstore-go checks, in one call.
	if _, err := v.Verify(ent, verify.NewPolicy(it.artifactPolicy(), verify.WithoutIdentitiesUnsafe())); err != nil {
		return nil, refuse(ReasonInvalidSignature, "%v", err)
	}
	return cc.identityAndDigest(it, s, &summary)
}

// identityAndDigest ends a keyless check that verified: 5. the identity,
// 6. the digest.
func (cc *cosignChecker) identityAndDigest(it *item, s Subject, summary *certificate.Summary) ([]string, *attemptErr) {
	if _, err := cc.identities.Verify(*summary); err != nil {
		return nil, refuse(ReasonIdentityMismatch, "certificate of %s issued by %s: %v", summary.SubjectAlternativeName, summary.Issuer, err)
	}
	if e := it.bound(s); e != nil {
		return nil, e
	}
	return []string{summary.Issuer + " " + summary.SubjectAlternativeName}, nil
}
