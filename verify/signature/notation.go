package signature

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/notaryproject/notation-core-go/revocation"
	revocationresult "github.com/notaryproject/notation-core-go/revocation/result"
	notationsig "github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers the JWS envelope
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// notationChecker runs notation-go's verifier over the envelopes the
// archive carries, with an in-memory trust store and no network.
type notationChecker struct {
	name     string
	verifier notation.Verifier
}

func (n *Notation) load(name string, o LoadOptions) (*notationChecker, error) {
	policy := bytes.TrimSpace(n.TrustPolicy)
	if policy[0] == '"' {
		var path string
		if err := json.Unmarshal(policy, &path); err != nil {
			return nil, fmt.Errorf("trustPolicy: %w", err)
		}
		b, err := o.read(path)
		if err != nil {
			return nil, fmt.Errorf("trust policy: %w", err)
		}
		policy = b
	}
	var doc trustpolicy.Document
	dec := json.NewDecoder(bytes.NewReader(policy))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("trust policy does not parse: %w", err)
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	for _, p := range doc.TrustPolicies {
		lvl, err := p.SignatureVerification.GetVerificationLevel()
		if err != nil {
			return nil, fmt.Errorf("trust policy %q: %w", p.Name, err)
		}
		// A site requirement that verifies nothing, or only logs, is a
		// mistake; and revocation needs OCSP or CRL servers an air gap
		// does not reach.
		if lvl.Enforcement[trustpolicy.TypeAuthenticity] != trustpolicy.ActionEnforce || lvl.Enforcement[trustpolicy.TypeIntegrity] != trustpolicy.ActionEnforce {
			return nil, fmt.Errorf("trust policy %q: level %q does not enforce authenticity; use strict or permissive", p.Name, lvl.Name)
		}
		if lvl.Enforcement[trustpolicy.TypeRevocation] == trustpolicy.ActionEnforce {
			return nil, fmt.Errorf(`trust policy %q enforces revocation, which cannot be checked offline: add "override": {"revocation": "log"} (or "skip") to its signatureVerification`, p.Name)
		}
	}
	store := memoryTrustStore{}
	for k, files := range n.TrustStores {
		typ, name, _ := strings.Cut(k, ":")
		var certs []*x509.Certificate
		for _, f := range files {
			b, err := o.readPEM(f)
			if err != nil {
				return nil, fmt.Errorf("trust store %s: %w", k, err)
			}
			cs, err := parsePEMCerts(b)
			if err != nil {
				return nil, fmt.Errorf("trust store %s: %s: %w", k, short(f), err)
			}
			certs = append(certs, cs...)
		}
		if err := truststore.ValidateCertificates(certs); err != nil {
			return nil, fmt.Errorf("trust store %s: %w", k, err)
		}
		store[storeKey{truststore.Type(typ), name}] = certs
	}
	v, err := verifier.NewWithOptions(&doc, store, nil, verifier.VerifierOptions{
		RevocationCodeSigningValidator:  offlineRevocation{},
		RevocationTimestampingValidator: offlineRevocation{},
	})
	if err != nil {
		return nil, err
	}
	return &notationChecker{name: name, verifier: v}, nil
}

type storeKey struct {
	typ  truststore.Type
	name string
}

// memoryTrustStore is notation's X509TrustStore over certificates read at
// Load, instead of notation's configuration directory.
type memoryTrustStore map[storeKey][]*x509.Certificate

func (m memoryTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	certs, ok := m[storeKey{t, name}]
	if !ok {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("trust store %s:%s is not configured", t, name)}
	}
	return append([]*x509.Certificate(nil), certs...), nil
}

// offlineRevocation answers revocation checks without a network: a
// certificate that names no OCSP or CRL server cannot be revoked; any other
// has an unknown status, which a trust policy may only log or skip.
type offlineRevocation struct{}

func (offlineRevocation) ValidateContext(_ context.Context, o revocation.ValidateContextOptions) ([]*revocationresult.CertRevocationResult, error) {
	out := make([]*revocationresult.CertRevocationResult, len(o.CertChain))
	for i, c := range o.CertChain {
		r := revocationresult.ResultNonRevokable
		if len(c.OCSPServer) > 0 || len(c.CRLDistributionPoints) > 0 {
			r = revocationresult.ResultUnknown
		}
		out[i] = &revocationresult.CertRevocationResult{Result: r, ServerResults: []*revocationresult.ServerResult{{
			Result: r, Error: errOffline, RevocationMethod: revocationresult.RevocationMethodUnknown,
		}}}
	}
	return out, nil
}

var errOffline = errors.New("revocation not checked: offline")

func (nc *notationChecker) check(ctx context.Context, s *Signatures) (*Result, error) {
	var cands []*item
	for _, it := range s.items {
		if it.format == FormatNotation {
			cands = append(cands, it)
		}
	}
	if len(cands) == 0 {
		return nil, &Failure{Requirement: nc.name, Reason: ReasonNoSignature, Detail: "no notation signature attached" + found(s)}
	}
	var attempts []Attempt
	for _, it := range cands {
		signer, err := nc.verify(ctx, it, s.Subject)
		if err == nil {
			return &Result{Requirement: nc.name, Signatures: []Evidence{{Signature: it.name, Format: it.format, Signer: signer}}}, nil
		}
		attempts = append(attempts, Attempt{Signature: it.name, Format: it.format, Reason: err.reason, Detail: err.detail})
	}
	sortAttempts(attempts)
	best := attempts[0]
	return nil, &Failure{Requirement: nc.name, Reason: best.Reason, Detail: best.Signature + ": " + best.Detail, Attempts: attempts}
}

func (nc *notationChecker) verify(ctx context.Context, it *item, s Subject) (string, *attemptErr) {
	if it.invalid != "" {
		return "", refuse(ReasonNotSignature, "%s", it.invalid)
	}
	desc := ocispec.Descriptor{MediaType: s.MediaType, Digest: digest.Digest(s.Digest.String()), Size: s.Size}
	ref := artifactRef(s)
	outcome, err := nc.verifier.Verify(ctx, desc, it.envelope, notation.VerifierVerifyOptions{
		ArtifactReference:  ref,
		SignatureMediaType: it.envelopeType,
	})
	if err == nil {
		return signerOf(outcome), nil
	}
	var noPolicy notation.ErrorNoApplicableTrustPolicy
	if errors.As(err, &noPolicy) {
		return "", refuse(ReasonUntrustedCertificate, "no trust policy applies to %s", ref)
	}
	if outcome == nil {
		return "", refuse(ReasonInvalidSignature, "%v", err)
	}
	// The first enforced check that failed names the stage.
	for _, r := range outcome.VerificationResults {
		if r == nil || r.Error == nil || r.Action != trustpolicy.ActionEnforce {
			continue
		}
		switch r.Type {
		case trustpolicy.TypeIntegrity:
			var parse *notationsig.InvalidSignatureError
			if outcome.EnvelopeContent == nil && (errors.As(r.Error, &parse) || strings.Contains(r.Error.Error(), "unable to parse")) {
				return "", refuse(ReasonNotSignature, "%v", r.Error)
			}
			return "", refuse(ReasonInvalidSignature, "%v", r.Error)
		case trustpolicy.TypeAuthenticity:
			var auth *notationsig.SignatureAuthenticityError
			var inconclusive notation.ErrorVerificationInconclusive
			var tsErr truststore.TrustStoreError
			if errors.As(r.Error, &auth) || errors.As(r.Error, &inconclusive) || errors.As(r.Error, &tsErr) {
				return "", refuse(ReasonUntrustedCertificate, "%v", r.Error)
			}
			return "", refuse(ReasonIdentityMismatch, "%v", r.Error)
		case trustpolicy.TypeAuthenticTimestamp:
			return "", refuse(ReasonCertificateExpired, "%v", r.Error)
		case trustpolicy.TypeExpiry:
			return "", refuse(ReasonSignatureExpired, "%v", r.Error)
		case trustpolicy.TypeRevocation:
			return "", refuse(ReasonUntrustedCertificate, "%v", r.Error)
		}
	}
	// Every check passed but the payload names another artifact.
	if outcome.EnvelopeContent != nil {
		var p struct {
			TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
		}
		if json.Unmarshal(outcome.EnvelopeContent.Payload.Content, &p) == nil && !sameArtifact(p.TargetArtifact, desc) {
			return "", refuse(ReasonDigestMismatch, "signed payload names %s (%s, %d bytes), not the image %s (%s, %d bytes)",
				p.TargetArtifact.Digest, p.TargetArtifact.MediaType, p.TargetArtifact.Size, desc.Digest, desc.MediaType, desc.Size)
		}
	}
	return "", refuse(ReasonInvalidSignature, "%v", err)
}

func sameArtifact(a, b ocispec.Descriptor) bool {
	return a.Digest == b.Digest && a.Size == b.Size && a.MediaType == b.MediaType
}

// artifactRef is the reference notation selects a trust policy with:
// the subject's repository, by digest.
func artifactRef(s Subject) string {
	repo := s.Ref
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	// Strip a tag (a colon after the last slash; a registry port comes before it).
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if repo == "" {
		repo = "unnamed.invalid/unnamed"
	}
	return repo + "@" + s.Digest.String()
}

func signerOf(o *notation.VerificationOutcome) string {
	if o == nil || o.EnvelopeContent == nil || len(o.EnvelopeContent.SignerInfo.CertificateChain) == 0 {
		return ""
	}
	return o.EnvelopeContent.SignerInfo.CertificateChain[0].Subject.String()
}
