package layout

import (
	"encoding/json"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Artifact types of attachments that hold signatures: what a site verifies
// (verify/signature reads the same forms).
const (
	ArtifactCosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	ArtifactInToto          = "application/vnd.in-toto+json"
	ArtifactDSSE            = "application/vnd.dsse.envelope.v1+json"
	ArtifactSigstorePrefix  = "application/vnd.dev.sigstore.bundle"
	ArtifactNotation        = "application/vnd.cncf.notary.signature"
)

// SignatureAttachment reports whether an attachment claims to hold
// signatures or attestations: cosign `.sig` and `.att` tags, and referrers
// of a cosign signature, in-toto, DSSE, Sigstore bundle or notation
// signature artifact type. SBOMs and other artifacts do not.
func SignatureAttachment(a Attachment) bool {
	switch {
	case a.Kind == AttachCosignSignature, a.Kind == AttachCosignAttestation:
		return true
	case a.Kind != AttachReferrer:
		return false
	}
	switch a.ArtifactType {
	case ArtifactCosignSignature, ArtifactInToto, ArtifactDSSE, ArtifactNotation:
		return true
	}
	return strings.HasPrefix(a.ArtifactType, ArtifactSigstorePrefix)
}

// SignatureLayers lists the layers of a signature attachment's manifest
// (raw) that travel as KindSignature blobs: all of them up to
// MaxSignatureSize. It depends on content only, so archives stay
// reproducible; nil for other attachments or a manifest that does not parse.
func SignatureLayers(a Attachment, raw []byte) []v1.Descriptor {
	if !SignatureAttachment(a) {
		return nil
	}
	var m struct {
		Layers []v1.Descriptor `json:"layers"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []v1.Descriptor
	for _, l := range m.Layers {
		if l.Size >= 0 && l.Size <= MaxSignatureSize && CheckDigest(l.Digest) == nil {
			out = append(out, l)
		}
	}
	return out
}
