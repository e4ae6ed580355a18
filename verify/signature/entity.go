package signature

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// legacyEntity presents cosign's annotation form to sigstore-go as a
// SignedEntity, the way sigstore-go's conformance client wraps raw cosign
// signatures: a message signature (or DSSE envelope), the certificate or a
// key, the Rekor entry with its signed entry timestamp, RFC 3161 timestamps.
// With asKey the certificate is ignored and the signature is checked against
// the requirement's keys, as `cosign verify --key` does.
type legacyEntity struct {
	l     *legacy
	asKey bool
}

var _ verify.SignedEntity = legacyEntity{}

func (e legacyEntity) entries() ([]*tlog.Entry, error) {
	if len(e.l.rekor) == 0 {
		return nil, nil
	}
	// cosign's `dev.sigstore.cosign/bundle`: Rekor's signed entry timestamp
	// over the entry it logged.
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal(e.l.rekor, &rb); err != nil {
		return nil, fmt.Errorf("%s annotation does not parse: %w", annRekorBundle, err)
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("rekor entry body is not base64: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("rekor log ID is not hex: %w", err)
	}
	//nolint:staticcheck // NewEntry is the constructor for a Rekor v1 entry with a SET, which is what cosign stores.
	ent, err := tlog.NewEntry(body, rb.Payload.IntegratedTime, rb.Payload.LogIndex, logID, rb.SignedEntryTimestamp, nil)
	if err != nil {
		return nil, fmt.Errorf("rekor entry: %w", err)
	}
	return []*tlog.Entry{ent}, nil
}

func (e legacyEntity) HasInclusionPromise() bool { return len(e.l.rekor) > 0 }
func (e legacyEntity) HasInclusionProof() bool   { return false }
func (e legacyEntity) Version() (string, error)  { return "v0.1", nil }

func (e legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return e.entries() }
func (e legacyEntity) Timestamps() ([][]byte, error)       { return e.l.timestamps, nil }

func (e legacyEntity) SignatureContent() (verify.SignatureContent, error) {
	if e.l.env != nil {
		return &bundle.Envelope{Envelope: e.l.env}, nil
	}
	sum := sha256.Sum256(e.l.payload)
	return bundle.NewMessageSignature(sum[:], "SHA2_256", e.l.sig), nil
}

func (e legacyEntity) VerificationContent() (verify.VerificationContent, error) {
	if e.l.cert != nil && !e.asKey {
		// A fresh copy: sigstore-go's Verify edits the certificate's
		// unhandled extensions, and Signatures may be checked concurrently.
		c, err := x509.ParseCertificate(e.l.cert.Raw)
		if err != nil {
			return nil, err
		}
		return &certContent{cert: c, intermediates: intermediatesOf(e.l.chain)}, nil
	}
	return keyContent{}, nil
}

// intermediatesOf drops the leaf and self-signed roots from a chain: roots
// come from the trusted root only.
func intermediatesOf(chain []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for i, c := range chain {
		if i == 0 && !c.IsCA {
			continue
		}
		if c.IsCA && c.CheckSignatureFrom(c) == nil {
			continue
		}
		out = append(out, c)
	}
	return out
}

// certContent is a certificate with the intermediates that travelled with it.
type certContent struct {
	cert          *x509.Certificate
	intermediates []*x509.Certificate
}

func (c *certContent) CompareKey(key any, _ root.TrustedMaterial) bool {
	x, ok := key.(*x509.Certificate)
	return ok && c.cert.Equal(x)
}
func (c *certContent) ValidAtTime(t time.Time, _ root.TrustedMaterial) bool {
	return !c.cert.NotAfter.Before(t) && !c.cert.NotBefore.After(t)
}
func (c *certContent) Certificate() *x509.Certificate      { return c.cert }
func (c *certContent) Intermediates() []*x509.Certificate  { return c.intermediates }
func (c *certContent) PublicKey() verify.PublicKeyProvider { return nil }

// keyContent is "signed by a key": the trusted material (one requirement
// key at a time) supplies it, whatever the hint.
type keyContent struct{}

func (keyContent) Hint() string { return "" }
func (keyContent) CompareKey(key any, tm root.TrustedMaterial) bool {
	v, err := tm.PublicKeyVerifier("")
	if err != nil {
		return false
	}
	pub, err := v.PublicKey()
	if err != nil {
		return false
	}
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}
func (keyContent) ValidAtTime(t time.Time, tm root.TrustedMaterial) bool {
	v, err := tm.PublicKeyVerifier("")
	return err == nil && v.ValidAtTime(t)
}
func (keyContent) Certificate() *x509.Certificate        { return nil }
func (keyContent) Intermediates() []*x509.Certificate    { return nil }
func (k keyContent) PublicKey() verify.PublicKeyProvider { return k }
