package testimages

import (
	"archive/tar"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestLayerStreams checks, without a registry, that regenerated streams
// match the precomputed digests and that identities give distinct content.
func TestLayerStreams(t *testing.T) {
	id := layerID{seed: 1, image: 2, platform: 1, index: 3}
	c, err := newContent(id, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	l := layer{content: c, mediaType: ociTypes.layer}

	rc, _ := l.Compressed()
	digest, size, err := v1.SHA256(rc)
	rc.Close()
	if err != nil || digest != c.digest || size != c.csize {
		t.Fatalf("compressed stream: %s/%d (%v), precomputed %s/%d", digest, size, err, c.digest, c.csize)
	}

	rc, _ = l.Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != id.fileName() || hdr.Size != 100_000 {
		t.Fatalf("tar entry %+v: %v", hdr, err)
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("want a single tar entry, got err %v", err)
	}

	again, _ := newContent(id, 100_000)
	other, _ := newContent(layerID{seed: 2, image: 2, platform: 1, index: 3}, 100_000)
	if again.digest != c.digest || other.digest == c.digest {
		t.Errorf("digests: same id %s vs %s, other seed %s", again.digest, c.digest, other.digest)
	}

	// Closing early must not leave the generator goroutine blocked.
	rc2, _ := l.Compressed()
	rc2.Close()
}
