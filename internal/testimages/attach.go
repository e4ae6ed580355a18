package testimages

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of cosign's legacy signature format.
const (
	CosignPayloadType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	CosignSigAnnotation = "dev.cosignproject.cosign/signature"
)

// rawManifest lets remote.Put write exact bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// SimpleSigning is cosign's signed payload: it binds a repository to a
// manifest digest.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]string `json:"optional"`
}

// Sign attaches a cosign-style signature of subject (a digest in repo,
// "HOST/path") under the tag sha256-<hex>.sig, signed with key (ECDSA P-256,
// SHA-256, ASN.1), as `cosign sign --key` does. It returns the signature
// manifest's digest.
func Sign(ctx context.Context, repo, subject string, key *ecdsa.PrivateKey) (string, error) {
	var p SimpleSigning
	p.Critical.Identity.DockerReference = repo
	p.Critical.Image.DockerManifestDigest = subject
	p.Critical.Type = "cosign container image signature"
	payload, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	tag := strings.Replace(subject, ":", "-", 1) + ".sig"
	return push(ctx, repo, tag, nil, "", types.OCIConfigJSON, CosignPayloadType, payload,
		map[string]string{CosignSigAnnotation: base64.StdEncoding.EncodeToString(sig)})
}

// Attach pushes an OCI 1.1 referrer of subject with the given artifact type
// and one layer holding payload. go-containerregistry keeps the fallback tag
// sha256-<hex> up to date on registries without the referrers API, as
// oras and cosign do.
func Attach(ctx context.Context, repo string, subject v1.Descriptor, artifactType, layerType string, payload []byte) (string, error) {
	return push(ctx, repo, "", &subject, artifactType, types.OCIEmptyJSON, types.MediaType(layerType), payload, map[string]string{"org.opencontainers.image.title": artifactType})
}

func push(ctx context.Context, repoName, tag string, subject *v1.Descriptor, artifactType string, configType, layerType types.MediaType, payload []byte, layerAnn map[string]string) (string, error) {
	repo, err := name.NewRepository(repoName, name.Insecure)
	if err != nil {
		return "", err
	}
	opts := []remote.Option{remote.WithContext(ctx)}
	config := []byte("{}")
	cfg := static.NewLayer(config, configType)
	layer := static.NewLayer(payload, layerType)
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return "", fmt.Errorf("testimages: pushing a blob to %s: %w", repo, err)
		}
	}
	desc := func(l v1.Layer, ann map[string]string) v1.Descriptor {
		d, _ := l.Digest()
		s, _ := l.Size()
		mt, _ := l.MediaType()
		return v1.Descriptor{MediaType: mt, Digest: d, Size: s, Annotations: ann}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        desc(cfg, nil),
		Layers:        []v1.Descriptor{desc(layer, layerAnn)},
		Subject:       subject,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	var ref name.Reference = repo.Digest(d)
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return "", fmt.Errorf("testimages: pushing %s: %w", ref, err)
	}
	return d, nil
}
