package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// Requirement is one thing a site requires of an image's signatures.
// Exactly one of its kinds is set. As JSON:
//
//	{"name": "release key", "cosign": {"keys": ["keys/release.pub"]}}
//	{"cosign": {"keys": ["a.pub", "b.pub", "c.pub"], "threshold": 2}}
//	{"cosign": {"identities": [{"issuer": "https://token.actions.githubusercontent.com",
//	            "subjectRegExp": "^https://github.com/acme/.*"}], "trustedRoot": "trusted_root.json"}}
//	{"notation": {"trustStores": {"ca:acme": ["acme-root.pem"]}, "trustPolicy": "trustpolicy.json"}}
//	{"attestation": {"predicateType": "https://slsa.dev/provenance/v1", "cosign": {"keys": ["ci.pub"]}}}
type Requirement struct {
	// Name labels the requirement in reports; a summary of it by default.
	Name        string       `json:"name,omitempty"`
	Cosign      *Cosign      `json:"cosign,omitempty"`
	Notation    *Notation    `json:"notation,omitempty"`
	Attestation *Attestation `json:"attestation,omitempty"`
}

// Cosign requires a cosign signature over the image digest, in the `.sig`
// tag form or as a Sigstore bundle referrer: made with public keys (Keys),
// or keyless, by a certificate from a trusted Fulcio naming one of
// Identities.
type Cosign struct {
	// Keys are PEM public keys (ECDSA, Ed25519, RSA): file paths, relative
	// to the policy's directory, or the PEM text itself.
	Keys []string `json:"keys,omitempty"`
	// Threshold is how many distinct Keys must each have signed (default 1:
	// any one of them).
	Threshold int `json:"threshold,omitempty"`

	// Identities (keyless): the certificate must match one of them.
	Identities []Identity `json:"identities,omitempty"`

	// TrustedRoot is a Sigstore trusted_root.json (Fulcio CAs, Rekor and CT
	// log keys, timestamp authorities). Empty: the one the site supplies
	// (LoadOptions.TrustedRoot: TUF-verified, or --sigstore-trusted-root).
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// TransparencyLog is how many verified Rekor entries (inclusion proof or
	// signed entry timestamp) a signature needs: 1 by default for keyless,
	// 0 for keys (signatures made with --tlog-upload=false), where a
	// positive value needs a trusted root.
	TransparencyLog *int `json:"transparencyLog,omitempty"`
	// Timestamps is how many verified RFC 3161 timestamps a signature needs
	// (default 0).
	Timestamps int `json:"timestamps,omitempty"`
	// SCTs (keyless) is how many verified certificate transparency
	// timestamps the certificate needs: by default 1 when the trusted root
	// lists CT logs, else 0.
	SCTs *int `json:"scts,omitempty"`
}

// Identity is a keyless signer: the certificate's OIDC issuer and its
// subject (the SAN: an email, a URI such as a CI workflow), each exact or a
// regular expression. Both must be given, one way or the other.
type Identity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// Notation requires a notation signature that notation's own verifier
// accepts under a trust policy and trust store, as notation defines them.
type Notation struct {
	// TrustStores maps "<type>:<name>" (types ca, signingAuthority, tsa) to
	// PEM certificate files, relative to the policy's directory, or PEM text.
	TrustStores map[string][]string `json:"trustStores"`
	// TrustPolicy is a notation trustpolicy.json document (version 1.0),
	// inline, or as a string: the path of one. Revocation cannot be checked
	// offline: each policy must set revocation to "log" or "skip" (e.g.
	// "signatureVerification": {"level": "strict", "override": {"revocation": "log"}}).
	TrustPolicy json.RawMessage `json:"trustPolicy"`
}

// Attestation requires an attestation of PredicateType about the image,
// validly signed as Cosign says (`.att` tag form, or Sigstore bundle).
type Attestation struct {
	PredicateType string `json:"predicateType"`
	Cosign        Cosign `json:"cosign"`
}

// Validate checks a requirement's shape without reading any file.
func (r Requirement) Validate() error {
	n := 0
	for _, set := range []bool{r.Cosign != nil, r.Notation != nil, r.Attestation != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("requirement %s: exactly one of cosign, notation, attestation must be given", r.label())
	}
	switch {
	case r.Cosign != nil:
		return r.Cosign.validate(r.label())
	case r.Notation != nil:
		if len(r.Notation.TrustStores) == 0 {
			return fmt.Errorf("requirement %s: notation needs trustStores", r.label())
		}
		for k := range r.Notation.TrustStores {
			if t, name, ok := strings.Cut(k, ":"); !ok || name == "" || (t != "ca" && t != "signingAuthority" && t != "tsa") {
				return fmt.Errorf("requirement %s: trust store %q: want ca:NAME, signingAuthority:NAME or tsa:NAME", r.label(), k)
			}
		}
		if len(bytes.TrimSpace(r.Notation.TrustPolicy)) == 0 {
			return fmt.Errorf("requirement %s: notation needs a trustPolicy", r.label())
		}
	case r.Attestation != nil:
		if r.Attestation.PredicateType == "" {
			return fmt.Errorf("requirement %s: attestation needs a predicateType", r.label())
		}
		return r.Attestation.Cosign.validate(r.label())
	}
	return nil
}

func (c *Cosign) validate(label string) error {
	if (len(c.Keys) > 0) == (len(c.Identities) > 0) {
		return fmt.Errorf("requirement %s: cosign needs keys or identities (keyless), not both", label)
	}
	if len(c.Keys) > 0 {
		if c.Threshold < 0 || c.Threshold > len(c.Keys) {
			return fmt.Errorf("requirement %s: threshold %d of %d keys", label, c.Threshold, len(c.Keys))
		}
	} else if c.Threshold != 0 {
		return fmt.Errorf("requirement %s: threshold applies to keys, not identities", label)
	}
	for i, id := range c.Identities {
		if (id.Issuer == "") == (id.IssuerRegExp == "") {
			return fmt.Errorf("requirement %s: identity %d needs issuer or issuerRegExp (one)", label, i+1)
		}
		if (id.Subject == "") == (id.SubjectRegExp == "") {
			return fmt.Errorf("requirement %s: identity %d needs subject or subjectRegExp (one)", label, i+1)
		}
		for _, re := range []string{id.IssuerRegExp, id.SubjectRegExp} {
			if _, err := regexp.Compile(re); err != nil {
				return fmt.Errorf("requirement %s: identity %d: %v", label, i+1, err)
			}
		}
	}
	if c.TransparencyLog != nil && *c.TransparencyLog < 0 || c.Timestamps < 0 || c.SCTs != nil && *c.SCTs < 0 {
		return fmt.Errorf("requirement %s: negative threshold", label)
	}
	if len(c.Identities) > 0 && c.tlog() == 0 && c.Timestamps == 0 {
		// A short-lived certificate is only valid with a trusted time of
		// signing: a Rekor entry or a timestamp.
		return fmt.Errorf("requirement %s: keyless needs transparencyLog or timestamps", label)
	}
	return nil
}

func (c *Cosign) tlog() int {
	if c.TransparencyLog != nil {
		return *c.TransparencyLog
	}
	if len(c.Identities) > 0 {
		return 1
	}
	return 0
}

func (r Requirement) label() string {
	if r.Name != "" {
		return fmt.Sprintf("%q", r.Name)
	}
	return r.summary()
}

// summary describes a requirement in a few words.
func (r Requirement) summary() string {
	switch {
	case r.Cosign != nil:
		return "cosign " + r.Cosign.summary()
	case r.Notation != nil:
		return "notation"
	case r.Attestation != nil:
		return "attestation " + r.Attestation.PredicateType + " by " + r.Attestation.Cosign.summary()
	}
	return "(empty)"
}

func (c *Cosign) summary() string {
	if len(c.Keys) > 0 {
		t := c.Threshold
		if t == 0 {
			t = 1
		}
		if len(c.Keys) == 1 {
			return "key"
		}
		return fmt.Sprintf("%d of %d keys", t, len(c.Keys))
	}
	return "keyless"
}

// LoadOptions say where a requirement's files are and what the site
// supplies.
type LoadOptions struct {
	// BaseDir resolves relative file names (the policy file's directory).
	BaseDir string
	// TrustedRoot is the site's Sigstore trusted root, for requirements that
	// name none: the TUF-verified trusted_root.json, or the file given with
	// --sigstore-trusted-root.
	TrustedRoot root.TrustedMaterial
	// ReadFile reads a file (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
}

func (o LoadOptions) read(name string) ([]byte, error) {
	if !filepath.IsAbs(name) && o.BaseDir != "" {
		name = filepath.Join(o.BaseDir, name)
	}
	if o.ReadFile != nil {
		return o.ReadFile(name)
	}
	return os.ReadFile(name)
}

// readPEM reads a PEM value given inline or as a file name.
func (o LoadOptions) readPEM(v string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN") {
		return []byte(v), nil
	}
	return o.read(v)
}

// Checker verifies one requirement against an image's signatures.
type Checker struct {
	name  string
	check func(ctx context.Context, s *Signatures) (*Result, error)
}

// Name is the requirement's label in reports.
func (c *Checker) Name() string { return c.name }

// Result says how a requirement was met.
type Result struct {
	Requirement string `json:"requirement"`
	// Signatures that satisfied it.
	Signatures []Evidence `json:"signatures"`
}

// Evidence is one signature that counted, and who made it.
type Evidence struct {
	Signature string `json:"signature"`
	Format    Format `json:"format"`
	// Signer: a key's fingerprint (sha256 of its DER), a certificate's
	// identity (issuer and subject) or a notation signer's subject.
	Signer string `json:"signer"`
}

// Check verifies the requirement against s. It returns a *Failure when the
// signatures do not satisfy it.
func (c *Checker) Check(ctx context.Context, s *Signatures) (*Result, error) {
	return c.check(ctx, s)
}

// Load validates a requirement and reads what it names (keys, trusted
// root, certificates, trust policy) into a Checker.
func (r Requirement) Load(o LoadOptions) (*Checker, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	name := r.Name
	if name == "" {
		name = r.summary()
	}
	c := &Checker{name: name}
	switch {
	case r.Cosign != nil:
		cc, err := r.Cosign.load(name, o)
		if err != nil {
			return nil, fmt.Errorf("requirement %s: %w", r.label(), err)
		}
		c.check = cc.signatures
	case r.Attestation != nil:
		cc, err := r.Attestation.Cosign.load(name, o)
		if err != nil {
			return nil, fmt.Errorf("requirement %s: %w", r.label(), err)
		}
		cc.predicateType = r.Attestation.PredicateType
		c.check = cc.attestations
	case r.Notation != nil:
		nc, err := r.Notation.load(name, o)
		if err != nil {
			return nil, fmt.Errorf("requirement %s: %w", r.label(), err)
		}
		c.check = nc.check
	}
	return c, nil
}

// Set is several requirements that must all hold.
type Set []*Checker

// LoadSet loads requirements; all must hold for an image to pass.
func LoadSet(reqs []Requirement, o LoadOptions) (Set, error) {
	var s Set
	for _, r := range reqs {
		c, err := r.Load(o)
		if err != nil {
			return nil, err
		}
		s = append(s, c)
	}
	return s, nil
}

// Check verifies every requirement. It returns the results of those that
// held and, when any failed, an error joining their *Failures (errors.As
// finds the first; Failures lists them all).
func (s Set) Check(ctx context.Context, sigs *Signatures) ([]Result, error) {
	var results []Result
	var errs []error
	for _, c := range s {
		res, err := c.Check(ctx, sigs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, *res)
	}
	return results, errors.Join(errs...)
}

// Failures lists the *Failures in an error from Set.Check or Checker.Check.
func Failures(err error) []*Failure {
	var out []*Failure
	var walk func(error)
	walk = func(e error) {
		var f *Failure
		if errors.As(e, &f) && f == e {
			out = append(out, f)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(e, &f) {
			out = append(out, f)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// publicKey is a requirement key with the verifiers cosign and sigstore-go
// may have signed with.
type publicKey struct {
	fingerprint string
	pub         crypto.PublicKey
	// verifiers are built once, at Load: one per way the key may have
	// signed (keyVerifiers), each with trusted material holding the key.
	verifiers []keyVerifier
}

type keyVerifier struct {
	tm root.TrustedMaterial
	v  *verify.Verifier
}

func parsePublicKey(b []byte) (*publicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM public key")
	}
	var pub crypto.PublicKey
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &publicKey{fingerprint: "sha256:" + hex.EncodeToString(sum[:]), pub: pub}, nil
}

// identities compiles the keyless identities with sigstore-go's matchers.
func identities(ids []Identity) (verify.CertificateIdentities, error) {
	var out verify.CertificateIdentities
	for _, id := range ids {
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, err
		}
		out = append(out, ci)
	}
	return out, nil
}
