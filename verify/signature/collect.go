package signature

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/relocate-dev/relocate/layout"
)

// Fetcher gives the bytes of a manifest or blob of the archive by digest.
// Collect checks every byte it is given against the digest, so a Fetcher
// may read straight from untrusted media.
type Fetcher interface {
	Fetch(v1.Hash) ([]byte, error)
}

// FetchFunc adapts a function to a Fetcher.
type FetchFunc func(v1.Hash) ([]byte, error)

// Fetch calls f.
func (f FetchFunc) Fetch(h v1.Hash) ([]byte, error) { return f(h) }

// Subject is the image whose signatures are verified.
type Subject struct {
	// Ref is the image's reference as exported (registry/repository:tag):
	// notation trust policies select a policy by its repository.
	Ref string
	// Digest, MediaType and Size describe the image's manifest or index, as
	// notation's signed payload names it.
	Digest    v1.Hash
	MediaType string
	Size      int64
}

// Format is the form a signature travels in.
type Format string

// The signature formats Collect recognises.
const (
	// A simple-signing layer of a cosign signature manifest: the
	// `sha256-<hex>.sig` tag, or the same manifest as an OCI referrer.
	FormatCosignSignature Format = "cosign-signature"
	// A DSSE layer of a cosign attestation manifest (`.att` tag or referrer).
	FormatCosignAttestation Format = "cosign-attestation"
	// A Sigstore bundle attached as an OCI referrer (cosign
	// --new-bundle-format, for signatures and attestations alike).
	FormatSigstoreBundle Format = "sigstore-bundle"
	// A notation (Notary Project) JWS or COSE envelope.
	FormatNotation Format = "notation"
)

// Media and artifact types of the formats.
const (
	mtSimpleSigning      = "application/vnd.dev.cosign.simplesigning.v1+json"
	mtDSSE               = "application/vnd.dsse.envelope.v1+json"
	atCosignSigReferrer  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	atIntoto             = "application/vnd.in-toto+json"
	atBundlePrefix       = "application/vnd.dev.sigstore.bundle"
	atNotation           = "application/vnd.cncf.notary.signature"
	mtJWS                = "application/jose+json"
	mtCOSE               = "application/cose"
	annSignature         = "dev.cosignproject.cosign/signature"
	annCertificate       = "dev.sigstore.cosign/certificate"
	annChain             = "dev.sigstore.cosign/chain"
	annRekorBundle       = "dev.sigstore.cosign/bundle"
	annRFC3161           = "dev.sigstore.cosign/rfc3161timestamp"
	annPredicateType     = "predicateType"
	cosignSignatureType  = "cosign container image signature"
	cosignSignPredicate  = "https://sigstore.dev/cosign/sign/v1"
	maxSignatureBlobSize = 4 << 20 // a signature, bundle or payload is small; refuse to hold more
)

// Signatures are the signatures attached to one subject, parsed once and
// checked by any number of requirements.
type Signatures struct {
	Subject Subject
	items   []*item
}

// Count says how many signatures of each format are attached (unparseable
// ones included), for reports.
func (s *Signatures) Count() map[Format]int {
	m := map[Format]int{}
	for _, it := range s.items {
		m[it.format]++
	}
	return m
}

// item is one attached signature.
type item struct {
	name   string // attachment digest, "#layer" when the manifest holds several
	format Format
	// invalid says why the attachment is not a signature; the rest is unset.
	invalid string
	// tlogInvalid: a bundle that parses except for its transparency-log
	// entries, which is a bad proof rather than junk.
	tlogInvalid string

	// Sigstore material (cosign and bundle forms).
	bundle *bundle.Bundle // bundle form
	legacy *legacy        // cosign annotation form
	// payload is what is signed: the simple-signing JSON, or the DSSE
	// payload (an in-toto statement).
	payload []byte
	dsse    bool
	// digests the signed payload names for its subject (algorithm:hex).
	subjects      []string
	predicateType string
	// bundleMessageDigest: a bundle signing a message, whose digest must be
	// the image's.
	bundleMessageDigest string

	// Notation.
	envelope     []byte
	envelopeType string
}

// Collect gathers the signatures attached to s among attached (the
// archive's attachments, layout.TOC.Attachments or one subject's share of
// them), reading manifests and blobs through f. Attachments that are not
// signatures (SBOMs, other artifacts) are left out; attachments that claim
// to be signatures but do not parse are kept, to be refused as "not a
// signature". The error is an operational one: f failed, or gave bytes that
// do not match their digest.
func Collect(s Subject, attached []layout.Attachment, f Fetcher) (*Signatures, error) {
	sigs := &Signatures{Subject: s}
	for _, a := range attached {
		if a.Subject != s.Digest {
			continue
		}
		items, err := collectOne(s, a, f)
		if err != nil {
			return nil, err
		}
		sigs.items = append(sigs.items, items...)
	}
	return sigs, nil
}

// fetch reads a blob and checks it against its digest and size limit.
func fetch(f Fetcher, d v1.Hash) ([]byte, error) {
	b, err := f.Fetch(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	if len(b) > maxSignatureBlobSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a signature's %d", d, len(b), maxSignatureBlobSize)
	}
	if d.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s: unsupported digest algorithm", d)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Hex {
		return nil, fmt.Errorf("%s: content does not match its digest", d)
	}
	return b, nil
}

type manifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       v1.Descriptor     `json:"config"`
	Layers       []v1.Descriptor   `json:"layers"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

func collectOne(s Subject, a layout.Attachment, f Fetcher) ([]*item, error) {
	raw, err := fetch(f, a.Digest)
	if err != nil {
		return nil, fmt.Errorf("attachment %s: %w", a.Digest, err)
	}
	art := layout.ArtifactOf(raw)
	format := formatOf(a, art.Type)
	if format == "" {
		return nil, nil // an SBOM or another artifact: not ours to judge
	}
	name := a.Digest.String()
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return []*item{{name: name, format: format, invalid: "manifest does not parse: " + err.Error()}}, nil
	}
	// A referrer names its subject; one listed under this image that names
	// another is a signature of something else.
	if a.Kind == layout.AttachReferrer && (m.Subject == nil || m.Subject.Digest != s.Digest) {
		got := "none"
		if m.Subject != nil {
			got = m.Subject.Digest.String()
		}
		return []*item{{name: name, format: format, invalid: "referrer's subject is " + got + ", not " + s.Digest.String()}}, nil
	}
	var items []*item
	for i, l := range m.Layers {
		it := &item{name: name, format: format}
		if len(m.Layers) > 1 {
			it.name = fmt.Sprintf("%s#%d", name, i)
		}
		if want := layerType(format); want != "" && string(l.MediaType) != want && !(format == FormatNotation && string(l.MediaType) == mtCOSE) {
			// cosign tags may carry other layers; they are not signatures.
			if format == FormatCosignSignature || format == FormatCosignAttestation {
				continue
			}
			it.invalid = fmt.Sprintf("layer media type %s, want %s", l.MediaType, want)
			items = append(items, it)
			continue
		}
		if l.Size > maxSignatureBlobSize {
			// Too big to be a signature; never read into memory.
			it.invalid = fmt.Sprintf("layer %s is %d bytes, more than a signature's %d", l.Digest, l.Size, maxSignatureBlobSize)
			items = append(items, it)
			continue
		}
		blob, err := fetch(f, l.Digest)
		if err != nil {
			return nil, fmt.Errorf("attachment %s layer %d: %w", a.Digest, i, err)
		}
		switch format {
		case FormatCosignSignature:
			parseSimpleSigning(it, blob, l.Annotations)
		case FormatCosignAttestation:
			parseCosignAttestation(it, blob, l.Annotations)
		case FormatSigstoreBundle:
			parseBundle(it, blob)
		case FormatNotation:
			it.envelope, it.envelopeType = blob, string(l.MediaType)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		items = append(items, &item{name: name, format: format, invalid: "no signature layer"})
	}
	return items, nil
}

// formatOf says which signature format an attachment claims to be, or ""
// for one that is not a signature.
func formatOf(a layout.Attachment, artifactType string) Format {
	switch {
	case a.Kind == layout.AttachCosignSignature, artifactType == atCosignSigReferrer:
		return FormatCosignSignature
	case a.Kind == layout.AttachCosignAttestation, artifactType == atIntoto, artifactType == mtDSSE:
		return FormatCosignAttestation
	case strings.HasPrefix(artifactType, atBundlePrefix):
		return FormatSigstoreBundle
	case artifactType == atNotation:
		return FormatNotation
	}
	return ""
}

func layerType(f Format) string {
	switch f {
	case FormatCosignSignature:
		return mtSimpleSigning
	case FormatCosignAttestation:
		return mtDSSE
	case FormatNotation:
		return mtJWS // or COSE, allowed by the caller
	}
	return "" // bundles: the media type carries the bundle version
}

// parseSimpleSigning reads a cosign simple-signing layer: the payload, and
// the signature, certificate, chain, Rekor bundle and timestamp from the
// layer's annotations.
func parseSimpleSigning(it *item, payload []byte, ann map[string]string) {
	var p struct {
		Critical struct {
			Type  string `json:"type"`
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		it.invalid = "simple-signing payload does not parse: " + err.Error()
		return
	}
	if p.Critical.Type != cosignSignatureType {
		it.invalid = fmt.Sprintf("payload type %q, want %q", p.Critical.Type, cosignSignatureType)
		return
	}
	it.payload = payload
	it.subjects = []string{p.Critical.Image.Digest}
	l, err := parseLegacy(ann)
	if err != nil {
		it.invalid = err.Error()
		return
	}
	sig, err := base64.StdEncoding.DecodeString(ann[annSignature])
	if err != nil || len(sig) == 0 {
		it.invalid = "no valid " + annSignature + " annotation"
		return
	}
	l.sig, l.payload = sig, payload
	it.legacy = l
}

// parseCosignAttestation reads a cosign attestation layer: a DSSE envelope
// over an in-toto statement, with the same annotations as a signature.
func parseCosignAttestation(it *item, blob []byte, ann map[string]string) {
	var env dsse.Envelope
	if err := json.Unmarshal(blob, &env); err != nil {
		it.invalid = "DSSE envelope does not parse: " + err.Error()
		return
	}
	if len(env.Signatures) != 1 {
		it.invalid = fmt.Sprintf("DSSE envelope has %d signatures, want 1", len(env.Signatures))
		return
	}
	if !parseStatement(it, &env) {
		return
	}
	l, err := parseLegacy(ann)
	if err != nil {
		it.invalid = err.Error()
		return
	}
	l.env = &env
	it.legacy = l
}

// parseStatement decodes a DSSE envelope's in-toto statement: its subjects
// and predicate type.
func parseStatement(it *item, env *dsse.Envelope) bool {
	if env.PayloadType != atIntoto {
		it.invalid = fmt.Sprintf("DSSE payload type %q, want %q", env.PayloadType, atIntoto)
		return false
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		it.invalid = "DSSE payload is not base64: " + err.Error()
		return false
	}
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		it.invalid = "in-toto statement does not parse: " + err.Error()
		return false
	}
	if !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") {
		it.invalid = fmt.Sprintf("statement type %q is not in-toto's", st.Type)
		return false
	}
	it.payload, it.dsse, it.predicateType = payload, true, st.PredicateType
	for _, s := range st.Subject {
		for alg, h := range s.Digest {
			it.subjects = append(it.subjects, alg+":"+h)
		}
	}
	return true
}

// parseBundle reads a Sigstore bundle. A bundle that parses but for its
// transparency-log entries is kept as a bad proof, not as junk.
func parseBundle(it *item, blob []byte) {
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(blob, &pb); err != nil {
		it.invalid = "Sigstore bundle does not parse: " + err.Error()
		return
	}
	b, err := bundle.NewBundle(&pb)
	if err != nil {
		stripped := proto.Clone(&pb).(*protobundle.Bundle)
		if stripped.VerificationMaterial != nil && len(stripped.VerificationMaterial.TlogEntries) > 0 {
			stripped.VerificationMaterial.TlogEntries = nil
			if _, err2 := bundle.NewBundle(stripped); err2 == nil {
				it.tlogInvalid = err.Error()
				return
			}
		}
		it.invalid = "invalid Sigstore bundle: " + err.Error()
		return
	}
	it.bundle = b
	switch c := pb.Content.(type) {
	case *protobundle.Bundle_DsseEnvelope:
		env, err := b.Envelope()
		if err != nil {
			it.invalid = "bundle envelope: " + err.Error()
			return
		}
		if len(env.Signatures) != 1 {
			it.invalid = fmt.Sprintf("bundle DSSE envelope has %d signatures, want 1", len(env.Signatures))
			return
		}
		parseStatement(it, env.Envelope)
	case *protobundle.Bundle_MessageSignature:
		md := c.MessageSignature.GetMessageDigest()
		if md == nil {
			it.invalid = "bundle message signature has no digest"
			return
		}
		alg := map[string]string{"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}[md.Algorithm.String()]
		it.bundleMessageDigest = alg + ":" + hex.EncodeToString(md.Digest)
		it.subjects = []string{it.bundleMessageDigest}
	}
}

// legacy is the Sigstore material cosign keeps in a signature layer's
// annotations.
type legacy struct {
	sig     []byte         // message signature (simple signing)
	payload []byte         // what sig signs
	env     *dsse.Envelope // attestation: the envelope instead of sig/payload
	cert    *x509.Certificate
	chain   []*x509.Certificate
	// rekor is the raw Rekor bundle annotation (SET and entry), parsed at
	// verification so that a bad one is a bad proof, not junk.
	rekor      []byte
	timestamps [][]byte
}

func parseLegacy(ann map[string]string) (*legacy, error) {
	l := &legacy{}
	if c := ann[annCertificate]; c != "" {
		certs, err := parsePEMCerts([]byte(c))
		if err != nil || len(certs) != 1 {
			return nil, fmt.Errorf("%s annotation is not one PEM certificate", annCertificate)
		}
		l.cert = certs[0]
		if ch := ann[annChain]; ch != "" {
			chain, err := parsePEMCerts([]byte(ch))
			if err != nil {
				return nil, fmt.Errorf("%s annotation: %v", annChain, err)
			}
			l.chain = chain
		}
	}
	if b := ann[annRekorBundle]; b != "" {
		l.rekor = []byte(b)
	}
	if t := ann[annRFC3161]; t != "" {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(t), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
			return nil, fmt.Errorf("%s annotation does not parse", annRFC3161)
		}
		l.timestamps = [][]byte{ts.SignedRFC3161Timestamp}
	}
	return l, nil
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bytes.TrimSpace(b)
	for len(rest) > 0 {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("not PEM")
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		rest = bytes.TrimSpace(rest)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return out, nil
}

// boundTo reports whether the signed payload names the subject's digest.
func (it *item) boundTo(d v1.Hash) bool {
	for _, s := range it.subjects {
		if s == d.String() {
			return true
		}
	}
	return false
}

// subjectList is the digests a payload names, for a refusal's detail.
func (it *item) subjectList() string {
	if len(it.subjects) == 0 {
		return "no digest"
	}
	return strings.Join(it.subjects, ", ")
}
