package layout

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// File names at the root of the layout.
const (
	LayoutFile = "oci-layout"
	IndexFile  = "index.json"
	TOCFile    = "relocate-toc.json"
)

// LayoutVersion is the content of the oci-layout file.
const LayoutVersion = `{"imageLayoutVersion":"1.0.0"}`

// Size limits for entries that are read into memory. Manifests follow the
// distribution spec's 4 MiB; configs are JSON documents of a few KiB in practice.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 16 << 20
	MaxIndexSize    = 64 << 20
	MaxTOCSize      = 64 << 20
	MaxLayoutSize   = 1 << 10
	MaxMetadataSize = 16 << 20
	// MaxSignatureSize bounds a signature blob: signatures, envelopes and
	// bundles are kilobytes; a larger layer of a signature attachment stays
	// a layer (and a site that must verify it refuses it).
	MaxSignatureSize = 4 << 20
	// MaxSmallTotal bounds all metadata together (it is held in memory
	// while the archive is read), MaxBlobs the number of entries.
	MaxSmallTotal = 256 << 20
	MaxBlobs      = 1 << 20
	// MaxImages bounds the images an archive lists (in index.json and the
	// table of contents) and MaxAttachments what is attached to them:
	// relocate holds every image's graph in memory from verification to the
	// end of an import. MaxWalked bounds those graphs added up (manifests,
	// blobs and attachments; a blob that n images share counts n times).
	MaxImages      = 1 << 16
	MaxAttachments = 1 << 18
	MaxWalked      = 1 << 21
)

// Kind says what role a blob plays in the graph.
type Kind string

const (
	KindIndex    Kind = "index"
	KindManifest Kind = "manifest"
	KindConfig   Kind = "config"
	KindMetadata Kind = "metadata" // trust metadata files (TUF roles), small and read first
	// KindSignature is a layer of a signature attachment (SignatureLayers):
	// a signed payload, DSSE envelope, Sigstore bundle or notation envelope.
	// It travels with the metadata so that a site verifies signatures
	// before it reads, or pushes, a single image layer.
	KindSignature Kind = "signature"
	KindLayer     Kind = "layer"
)

// Small reports whether blobs of this kind are metadata, held in memory and
// written before any layer.
func (k Kind) Small() bool { return k != KindLayer }

// known reports whether a table of contents may name this kind.
func (k Kind) known() bool {
	switch k {
	case KindIndex, KindManifest, KindConfig, KindMetadata, KindSignature, KindLayer:
		return true
	}
	return false
}

// Outranks says which kind a blob that plays two parts is listed with:
// one whose content is needed in memory wins over a layer, else the one
// written earlier in the archive. The table of contents then depends on the
// blob's parts, not on which walk reached it first. (The OCI empty
// descriptor is both the config and the one layer of many artifacts, and
// one image's config can be another's layer.)
func (k Kind) Outranks(o Kind) bool {
	if k.Small() != o.Small() {
		return k.Small()
	}
	return k.rank() < o.rank()
}

func (k Kind) rank() int {
	switch k {
	case KindIndex:
		return 0
	case KindManifest:
		return 1
	case KindConfig:
		return 2
	case KindMetadata:
		return 3
	case KindSignature:
		return 4
	default:
		return 5
	}
}

// MaxSize is the largest size accepted for a blob of this kind, or -1 for no limit.
func (k Kind) MaxSize() int64 {
	switch k {
	case KindIndex, KindManifest:
		return MaxManifestSize
	case KindConfig:
		return MaxConfigSize
	case KindMetadata:
		return MaxMetadataSize
	case KindSignature:
		return MaxSignatureSize
	default:
		return -1
	}
}

// Blob is one content-addressed entry of the archive.
type Blob struct {
	Digest    v1.Hash `json:"digest"`
	Size      int64   `json:"size"`
	MediaType string  `json:"mediaType,omitempty"`
	Kind      Kind    `json:"kind"`
}

// Image is one exported reference and the manifest it resolved to.
type Image struct {
	Ref       string   `json:"ref"`
	Digest    v1.Hash  `json:"digest"`
	MediaType string   `json:"mediaType"`
	Size      int64    `json:"size"`
	Platforms []string `json:"platforms,omitempty"`
	// Index is set when export --platform chose this manifest out of a
	// multi-platform index: the manifest travels alone under its own
	// digest, and the index it came from travels (not as an image) so the
	// site can vouch for it through the index (platform.go).
	Index *IndexOrigin `json:"index,omitempty"`
}

// Kinds of attachment: cosign's legacy tags in the subject's repository, and
// OCI 1.1 referrers (manifests whose subject is the attached-to manifest).
const (
	AttachCosignSignature   = "cosign-signature"   // tag sha256-<hex>.sig
	AttachCosignAttestation = "cosign-attestation" // tag sha256-<hex>.att
	AttachCosignSBOM        = "cosign-sbom"        // tag sha256-<hex>.sbom
	AttachReferrer          = "referrer"
)

// CosignSuffixes maps cosign tag suffixes to attachment kinds.
var CosignSuffixes = map[string]string{
	".sig":  AttachCosignSignature,
	".att":  AttachCosignAttestation,
	".sbom": AttachCosignSBOM,
}

// CosignTag is the tag cosign gives an attachment of this kind to subject.
func CosignTag(subject v1.Hash, kind string) string {
	for suffix, k := range CosignSuffixes {
		if k == kind {
			return subject.Algorithm + "-" + subject.Hex + suffix
		}
	}
	return ""
}

// FallbackTag is the OCI 1.1 referrers tag schema's tag for a subject.
func FallbackTag(subject v1.Hash) string { return subject.Algorithm + "-" + subject.Hex }

// Attachment is an artifact attached to a manifest of the archive: a
// signature, SBOM, attestation or any other referrer. Its manifest and blobs
// are ordinary blobs of the archive; it lives in its subject's repository.
type Attachment struct {
	Subject      v1.Hash `json:"subject"`
	Digest       v1.Hash `json:"digest"`
	MediaType    string  `json:"mediaType"`
	Size         int64   `json:"size"`
	Kind         string  `json:"kind"`
	ArtifactType string  `json:"artifactType,omitempty"`
	// Tag is the cosign tag (derived from the subject), empty for referrers.
	Tag string `json:"tag,omitempty"`
	// Annotations of the attachment's manifest, as referrers listings show them.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Signature reports whether an attachment is a signature, as opposed to an
// SBOM or an attestation.
func (a Attachment) Signature() bool {
	switch a.ArtifactType {
	case "application/vnd.cncf.notary.signature", "application/vnd.dev.cosign.artifact.sig.v1+json":
		return true
	}
	return a.Kind == AttachCosignSignature || strings.HasPrefix(a.ArtifactType, "application/vnd.dev.sigstore.bundle")
}

// TOCSchemaVersion is the version of the table of contents format written.
const TOCSchemaVersion = 1

// TOC is the archive's table of contents: every image and every blob, in the
// order the blobs appear in the archive, so a reader knows every size before
// it reads a byte of content.
type TOC struct {
	SchemaVersion int          `json:"schemaVersion"`
	Images        []Image      `json:"images"`
	Blobs         []Blob       `json:"blobs"`
	Attachments   []Attachment `json:"attachments,omitempty"`
	TUF           []TUFRepo    `json:"tuf,omitempty"`
	Notary        []TUFRepo    `json:"notary,omitempty"`
	Bundles       []Bundle     `json:"bundles,omitempty"`
	// Expected and Bases make a delta (schemaVersion 2, see delta.go).
	Expected []Expected `json:"expected,omitempty"`
	Bases    []Base     `json:"bases,omitempty"`
}

// AttachedTo indexes attachments by subject.
func (t *TOC) AttachedTo() map[v1.Hash][]Attachment {
	m := map[v1.Hash][]Attachment{}
	for _, a := range t.Attachments {
		m[a.Subject] = append(m[a.Subject], a)
	}
	return m
}

// TotalBytes is the sum of all blob sizes.
func (t *TOC) TotalBytes() int64 {
	var n int64
	for _, b := range t.Blobs {
		n += b.Size
	}
	return n
}

// Sort puts images in reference order and blobs in archive order: metadata
// first (indexes, manifests, configs), then layers, each by digest. The order
// depends only on content, so the same content gives the same archive.
func (t *TOC) Sort() {
	sort.Slice(t.Images, func(i, j int) bool { return t.Images[i].Ref < t.Images[j].Ref })
	sort.Slice(t.Attachments, func(i, j int) bool {
		a, b := t.Attachments[i], t.Attachments[j]
		if a.Subject != b.Subject {
			return a.Subject.String() < b.Subject.String()
		}
		return a.Digest.String()+a.Tag < b.Digest.String()+b.Tag
	})
	sort.Slice(t.Blobs, func(i, j int) bool {
		a, b := t.Blobs[i], t.Blobs[j]
		if a.Kind.rank() != b.Kind.rank() {
			return a.Kind.rank() < b.Kind.rank()
		}
		return a.Digest.String() < b.Digest.String()
	})
}

// Marshal encodes the table of contents deterministically.
func (t *TOC) Marshal() ([]byte, error) { return json.MarshalIndent(t, "", " ") }

// ParseTOC decodes and checks a table of contents.
func ParseTOC(b []byte) (*TOC, error) {
	var t TOC
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", TOCFile, err)
	}
	// The decoder stops after the first value: anything after it would be
	// ignored here and refused by other readers of the layout.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: not valid JSON: data after the document", TOCFile)
	}
	if t.SchemaVersion != TOCSchemaVersion && t.SchemaVersion != DeltaSchemaVersion {
		return nil, fmt.Errorf("%s: schemaVersion %d, want %d (or %d for a delta)", TOCFile, t.SchemaVersion, TOCSchemaVersion, DeltaSchemaVersion)
	}
	if len(t.Blobs) > MaxBlobs {
		return nil, fmt.Errorf("%s: %d blobs, over the limit of %d", TOCFile, len(t.Blobs), MaxBlobs)
	}
	if len(t.Images) > MaxImages {
		return nil, fmt.Errorf("%s: %d images, over the limit of %d images", TOCFile, len(t.Images), MaxImages)
	}
	if len(t.Attachments) > MaxAttachments {
		return nil, fmt.Errorf("%s: %d attachments, over the limit of %d attachments", TOCFile, len(t.Attachments), MaxAttachments)
	}
	var small int64
	seen := map[v1.Hash]bool{}
	for _, b := range t.Blobs {
		if b.Kind.Small() {
			if small += b.Size; small > MaxSmallTotal {
				return nil, fmt.Errorf("%s: metadata blobs add up to more than %d bytes", TOCFile, MaxSmallTotal)
			}
		}
		if err := CheckDigest(b.Digest); err != nil {
			return nil, fmt.Errorf("%s: %w", TOCFile, err)
		}
		if b.Size < 0 {
			return nil, fmt.Errorf("%s: blob %s has negative size", TOCFile, b.Digest)
		}
		if max := b.Kind.MaxSize(); max >= 0 && b.Size > max {
			return nil, fmt.Errorf("%s: %s %s is %d bytes, over the %d limit", TOCFile, b.Kind, b.Digest, b.Size, max)
		}
		if !b.Kind.known() {
			return nil, fmt.Errorf("%s: blob %s has unknown kind %q", TOCFile, b.Digest, b.Kind)
		}
		if seen[b.Digest] {
			return nil, fmt.Errorf("%s: blob %s listed twice", TOCFile, b.Digest)
		}
		seen[b.Digest] = true
	}
	if err := checkDelta(&t, seen); err != nil {
		return nil, fmt.Errorf("%s: %w", TOCFile, err)
	}
	for _, im := range t.Images {
		if err := CheckDigest(im.Digest); err != nil {
			return nil, fmt.Errorf("%s: image %s: %w", TOCFile, im.Ref, err)
		}
	}
	names := map[string]bool{}
	for _, r := range t.TUF {
		if err := checkRepoName(r.Name); err != nil || names[r.Name] {
			return nil, fmt.Errorf("%s: TUF repository name %q is invalid or listed twice", TOCFile, r.Name)
		}
		names[r.Name] = true
		if !seen[r.Manifest] {
			return nil, fmt.Errorf("%s: TUF repository %s: its manifest %s is not among the blobs", TOCFile, r.Name, r.Manifest)
		}
	}
	guns := map[string]bool{}
	for _, r := range t.Notary {
		if r.Name == "" || len(r.Name) > 255 || strings.ContainsAny(r.Name, " \t\n\\") || strings.Contains(r.Name, "..") || guns[r.Name] {
			return nil, fmt.Errorf("%s: Notary GUN %q is invalid or listed twice", TOCFile, r.Name)
		}
		guns[r.Name] = true
		if !seen[r.Manifest] {
			return nil, fmt.Errorf("%s: Notary GUN %s: its manifest %s is not among the blobs", TOCFile, r.Name, r.Manifest)
		}
	}
	refs := map[string]bool{}
	for _, im := range t.Images {
		refs[im.Ref] = true
	}
	for _, b := range t.Bundles {
		if err := b.check(refs); err != nil {
			return nil, fmt.Errorf("%s: %w", TOCFile, err)
		}
	}
	for _, a := range t.Attachments {
		if err := a.check(seen); err != nil {
			return nil, fmt.Errorf("%s: attachment %s of %s: %w", TOCFile, a.Digest, a.Subject, err)
		}
	}
	return &t, nil
}

var hexRE = map[string]*regexp.Regexp{
	"sha256": regexp.MustCompile(`^[a-f0-9]{64}$`),
	"sha512": regexp.MustCompile(`^[a-f0-9]{128}$`),
}

// CheckDigest accepts only the algorithms relocate can verify, in canonical form.
func CheckDigest(h v1.Hash) error {
	re, ok := hexRE[h.Algorithm]
	if !ok {
		return fmt.Errorf("digest %q: unsupported algorithm", h.String())
	}
	if !re.MatchString(h.Hex) {
		return fmt.Errorf("digest %q: malformed", h.String())
	}
	return nil
}

// BlobPath is where a blob lives in the layout.
func BlobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// ParseBlobPath returns the digest named by a blob path, or false if the name
// is not a canonical blob path.
func ParseBlobPath(name string) (v1.Hash, bool) {
	rest, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return v1.Hash{}, false
	}
	alg, hex, ok := strings.Cut(rest, "/")
	if !ok {
		return v1.Hash{}, false
	}
	h := v1.Hash{Algorithm: alg, Hex: hex}
	if CheckDigest(h) != nil {
		return v1.Hash{}, false
	}
	return h, true
}

// TagOf returns the tag of a reference such as host/repo:tag or
// host/repo:tag@digest, or "" when it has none.
func TagOf(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon > slash {
		return ref[colon+1:]
	}
	return ""
}

// check refuses attachments that could do more than attach: a cosign tag must
// be the one derived from its subject (an archive must not be able to move
// an arbitrary tag), and a referrer carries no tag.
func (a Attachment) check(listed map[v1.Hash]bool) error {
	if err := CheckDigest(a.Subject); err != nil {
		return err
	}
	if !listed[a.Digest] || !listed[a.Subject] {
		return fmt.Errorf("its manifest or its subject is not among the blobs")
	}
	switch a.Kind {
	case AttachReferrer:
		if a.Tag != "" {
			return fmt.Errorf("a referrer with tag %q", a.Tag)
		}
	case AttachCosignSignature, AttachCosignAttestation, AttachCosignSBOM:
		if want := CosignTag(a.Subject, a.Kind); a.Tag != want {
			return fmt.Errorf("tag %q, but a %s of this subject is tagged %q", a.Tag, a.Kind, want)
		}
	default:
		return fmt.Errorf("unknown kind %q", a.Kind)
	}
	return nil
}
