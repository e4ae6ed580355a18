package testsigstore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
)

// RekorBundle is cosign's `dev.sigstore.cosign/bundle` annotation: a Rekor
// entry and the log's signed entry timestamp (SET) over it.
type RekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// NewRekorBundle has the virtual log sign an entry of body.
func NewRekorBundle(t testing.TB, vs *ca.VirtualSigstore, body []byte, integratedTime, logIndex int64, logID string) RekorBundle {
	t.Helper()
	var rb RekorBundle
	rb.Payload.Body = base64.StdEncoding.EncodeToString(body)
	rb.Payload.IntegratedTime, rb.Payload.LogIndex, rb.Payload.LogID = integratedTime, logIndex, logID
	set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: rb.Payload.Body, IntegratedTime: integratedTime, LogIndex: logIndex, LogID: logID})
	if err != nil {
		t.Fatal(err)
	}
	rb.SignedEntryTimestamp = set
	return rb
}

// entryBundle is the Rekor bundle of a transparency log entry.
func entryBundle(t testing.TB, vs *ca.VirtualSigstore, tle *protorekor.TransparencyLogEntry) RekorBundle {
	return NewRekorBundle(t, vs, tle.CanonicalizedBody, tle.IntegratedTime, tle.LogIndex, hex.EncodeToString(tle.LogId.KeyId))
}

// CosignAnnotations signs payload keyless as `cosign sign` does and returns
// the annotations of its `.sig` layer: the signature, the Fulcio
// certificate and chain, and the Rekor bundle, which tamper (if set) may
// change first.
func CosignAnnotations(t testing.TB, vs *ca.VirtualSigstore, identity, issuer string, payload []byte, tamper func(*RekorBundle)) map[string]string {
	t.Helper()
	ent, err := vs.Sign(identity, issuer, payload)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := ent.VerificationContent()
	sc, _ := ent.SignatureContent()
	entries, _ := ent.TlogEntries()
	rb := entryBundle(t, vs, entries[0].TransparencyLogEntry())
	if tamper != nil {
		tamper(&rb)
	}
	rbJSON, _ := json.Marshal(rb)
	var chain []byte
	for _, c := range vs.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority).Intermediates {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sc.Signature()),
		"dev.sigstore.cosign/certificate":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw})),
		"dev.sigstore.cosign/chain":          string(chain),
		"dev.sigstore.cosign/bundle":         string(rbJSON),
	}
}

// Bundle signs an in-toto statement keyless as `cosign attest
// --new-bundle-format` does: a v0.3 Sigstore bundle with a DSSE envelope,
// the certificate, the Rekor entry with its inclusion proof and SET, and a
// TSA timestamp.
func Bundle(t testing.TB, vs *ca.VirtualSigstore, identity, issuer string, stmt []byte) *protobundle.Bundle {
	t.Helper()
	ent, err := vs.AttestAtTime(identity, issuer, stmt, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := ent.VerificationContent()
	sc, _ := ent.SignatureContent()
	env := sc.EnvelopeContent().RawEnvelope()
	entries, _ := ent.TlogEntries()
	tle := entries[0].TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: entryBundle(t, vs, tle).SignedEntryTimestamp}
	stamps, _ := ent.Timestamps()
	payload, _ := env.DecodeB64Payload()
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	return &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: stamps[0]}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
}
