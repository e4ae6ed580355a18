package signature

import (
	"fmt"
	"strings"
)

// Reason names why a requirement refused an image: the words a site reads in
// a report and a script can match.
type Reason string

// The reasons of a refusal, roughly in the order verification reaches them:
// a Failure names the reason of the signature that came closest to passing.
const (
	// No signature of the kind the requirement asks for is attached.
	ReasonNoSignature Reason = "no signature"
	// An attachment claims to be a signature (by its artifact or media type)
	// but is not one that parses: junk, truncated or of an unknown form.
	ReasonNotSignature Reason = "not a signature"
	// The signature does not verify with any key the requirement names.
	ReasonWrongKey Reason = "wrong key"
	// The signature does not verify with the key its own certificate holds
	// (tampered envelope or payload).
	ReasonInvalidSignature Reason = "invalid signature"
	// The signing certificate does not chain to a trusted root or CA.
	ReasonUntrustedCertificate Reason = "untrusted certificate"
	// The Rekor entry is missing, tampered, not signed by a trusted log, or
	// its inclusion proof does not verify.
	ReasonBadTransparencyLog Reason = "bad transparency-log proof"
	// An RFC 3161 timestamp is missing, or does not verify.
	ReasonBadTimestamp Reason = "bad timestamp"
	// The certificate has expired and no verified timestamp (Rekor's
	// integrated time or a TSA's) shows it was valid when it signed.
	ReasonCertificateExpired Reason = "certificate expired and no timestamp"
	// The signature's own expiry (notation) has passed.
	ReasonSignatureExpired Reason = "signature expired"
	// The certificate is valid but names another identity than required.
	ReasonIdentityMismatch Reason = "identity mismatch"
	// A valid signature over another digest than the image's.
	ReasonDigestMismatch Reason = "digest mismatch"
	// Some of the required keys signed, not enough of them.
	ReasonThreshold Reason = "threshold not met"
)

// rank orders reasons by how far verification got, so that a report names
// the most telling failure among several signatures.
func (r Reason) rank() int {
	switch r {
	case ReasonNoSignature:
		return 0
	case ReasonNotSignature:
		return 1
	case ReasonWrongKey:
		return 2
	case ReasonInvalidSignature:
		return 3
	case ReasonUntrustedCertificate:
		return 4
	case ReasonBadTransparencyLog:
		return 5
	case ReasonBadTimestamp:
		return 6
	case ReasonCertificateExpired:
		return 7
	case ReasonSignatureExpired:
		return 8
	case ReasonIdentityMismatch:
		return 9
	case ReasonDigestMismatch:
		return 10
	case ReasonThreshold:
		return 11
	}
	return -1
}

// Attempt is one attached signature a requirement tried, and why it did
// not count.
type Attempt struct {
	// Signature names it: the attachment manifest's digest, with "#<layer>"
	// when that manifest holds several signatures.
	Signature string `json:"signature"`
	Format    Format `json:"format"`
	Reason    Reason `json:"reason"`
	Detail    string `json:"detail,omitempty"`
}

func (a Attempt) String() string {
	s := a.Signature + " (" + string(a.Format) + "): " + string(a.Reason)
	if a.Detail != "" {
		s += ": " + a.Detail
	}
	return s
}

// Failure is a requirement's refusal of an image. It is the error a
// Checker returns when the signatures do not satisfy it.
type Failure struct {
	Requirement string `json:"requirement"`
	Reason      Reason `json:"reason"`
	Detail      string `json:"detail,omitempty"`
	// Attempts lists every signature tried, best first.
	Attempts []Attempt `json:"attempts,omitempty"`
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", f.Requirement, f.Reason)
	if f.Detail != "" {
		b.WriteString(": " + f.Detail)
	}
	if len(f.Attempts) > 1 {
		fmt.Fprintf(&b, " (%d signatures tried:", len(f.Attempts))
		for i, a := range f.Attempts {
			if i > 0 {
				b.WriteString(";")
			}
			b.WriteString(" " + a.String())
		}
		b.WriteString(")")
	}
	return b.String()
}

// attemptErr is one signature's refusal, before it is folded into a Failure.
type attemptErr struct {
	reason Reason
	detail string
}

func (e *attemptErr) Error() string { return string(e.reason) + ": " + e.detail }

func refuse(r Reason, format string, args ...any) *attemptErr {
	// Library messages may span lines; a report wants one.
	return &attemptErr{reason: r, detail: strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")}
}
