package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/internal/testimages"
)

// manifestAccept lists what the registry may answer for a manifest.
var manifestAccept = strings.Join([]string{
	string(types.OCIManifestSchema1), string(types.OCIImageIndex),
	string(types.DockerManifestSchema2), string(types.DockerManifestList),
}, ", ")

// dataset is the pushed image set and what it holds, each blob once.
type dataset struct {
	spec          testimages.Spec
	images        []testimages.Image
	blobs         []blob
	blobBytes     int64
	manifestBytes int64
	pushSecs      float64
}

// blob is one unique config or layer, with a repository that serves it.
type blob struct {
	repo   string
	digest string
	size   int64
}

// uniqueBytes is what any tool must move at least once: every blob and
// manifest counted once. Throughputs are this divided by wall time.
func (d *dataset) uniqueBytes() int64 { return d.blobBytes + d.manifestBytes }

// refs are the source references, as given to the tools.
func (d *dataset) refs() []string {
	out := make([]string, len(d.images))
	for i, im := range d.images {
		out[i] = im.Ref
	}
	return out
}

// pushSet fills the source registry and reads back the manifests to learn
// every blob's size (testimages reports digests, not per-blob sizes).
func pushSet(ctx context.Context, host string, spec testimages.Spec) (*dataset, error) {
	start := time.Now()
	images, err := testimages.Push(ctx, host, spec)
	if err != nil {
		return nil, fmt.Errorf("push image set: %w", err)
	}
	d := &dataset{spec: spec, images: images, pushSecs: time.Since(start).Seconds()}
	seen := map[string]bool{}
	for _, im := range images {
		if err := d.addImage(ctx, host, im, seen); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *dataset) addImage(ctx context.Context, host string, im testimages.Image, seen map[string]bool) error {
	repo := repoPath(im.Ref)
	m, err := fetchManifest(ctx, host, repo, im.Digest)
	if err != nil {
		return err
	}
	d.manifestBytes += im.Size
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		dg := desc.Digest.String()
		if seen[dg] {
			continue
		}
		seen[dg] = true
		d.blobs = append(d.blobs, blob{repo: repo, digest: dg, size: desc.Size})
		d.blobBytes += desc.Size
	}
	return nil
}

func fetchManifest(ctx context.Context, host, repo, digest string) (*v1.Manifest, error) {
	url := fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", url, err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", url, err)
	}
	// Indexes would need a walk over children; the bench pushes only images.
	if mt := types.MediaType(resp.Header.Get("Content-Type")); mt.IsIndex() {
		return nil, fmt.Errorf("manifest %s: is an index (%s); the bench expects single images", url, mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", url, err)
	}
	return m, nil
}

// checkDigests confirms that every image landed on host under its original
// path and tag with its original digest, so a fast import is not a wrong one.
func checkDigests(ctx context.Context, host string, images []testimages.Image) error {
	var bad []string
	for _, im := range images {
		got, err := headDigest(ctx, host, repoPath(im.Ref), tagOf(im.Ref))
		if err != nil {
			return err
		}
		if got != im.Digest {
			bad = append(bad, fmt.Sprintf("%s: %s, want %s", im.Ref, got, im.Digest))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d images changed digest on %s: %s", len(bad), len(images), host, strings.Join(bad, "; "))
	}
	return nil
}

func headDigest(ctx context.Context, host, repo, tag string) (string, error) {
	url := fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return "", fmt.Errorf("check %s: %w", url, err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("check %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("check %s: %s", url, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// repoPath is the repository of "HOST/path/name:tag", without the host.
func repoPath(ref string) string {
	_, rest, _ := strings.Cut(ref, "/")
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// tagOf is the tag of "HOST/path/name:tag".
func tagOf(ref string) string {
	_, rest, _ := strings.Cut(ref, "/")
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		return rest[i+1:]
	}
	return "latest"
}

// onHost moves a source reference to another registry, keeping path and tag.
func onHost(host, ref string) string {
	_, rest, _ := strings.Cut(ref, "/")
	return host + "/" + rest
}
