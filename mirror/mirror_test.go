package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

func desc(content string) v1.Descriptor {
	return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256([]byte(content)))}, Size: int64(len(content))}
}

func TestCopyVerified(t *testing.T) {
	good := desc("hello world")
	tests := []struct {
		name, content string
		d             v1.Descriptor
		want          string // "" = success
	}{
		{"exact", "hello world", good, ""},
		{"short", "hello", good, "5 bytes instead of 11"},
		{"long", "hello world!", good, "more than 11 bytes"},
		{"flipped", "hellO world", good, "got sha256:"},
		{"empty", "", desc(""), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := layout.CopyVerified(&out, strings.NewReader(tc.content), tc.d, "x")
			if tc.want == "" {
				if err != nil || out.String() != tc.content {
					t.Fatalf("err %v, out %q", err, out.String())
				}
				return
			}
			var ie *layout.IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want layout.IntegrityError containing %q", err, tc.want)
			}
		})
	}
}

// The verifying reader must withhold the final bytes of a mismatching body,
// so that an upload never completes with wrong content.
func TestVerifyingReaderWithholdsBadTail(t *testing.T) {
	d := desc("abcdef")
	vr, _ := layout.NewVerifyingReader(strings.NewReader("abcdeX"), d, "x")
	got, err := io.ReadAll(vr)
	if err == nil || int64(len(got)) == d.Size {
		t.Fatalf("read %q, err %v: the whole wrong body was released", got, err)
	}
	if vr.Err() == nil {
		t.Error("Err() is nil after a mismatch")
	}
}

// TestPushAndFetch round-trips a blob and a manifest through the in-memory
// registry: upload, existence, mount, fetch with verification.
func TestPushAndFetch(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(WithPlainHTTP(true))
	ctx := context.Background()
	a, _ := c.ParseRepository(host + "/team/a")
	b, _ := c.ParseRepository(host + "/team/b")
	content := "layer content"
	d := desc(content)

	if ok, err := c.BlobExists(ctx, a, d.Digest); err != nil || ok {
		t.Fatalf("exists before push: %v %v", ok, err)
	}
	up, err := c.PushBlob(ctx, a, Blob{Desc: d, Open: func() (io.Reader, error) { return strings.NewReader(content), nil }}, "")
	if err != nil || up != Uploaded {
		t.Fatalf("push: %v %v", up, err)
	}
	// go-containerregistry's registry cannot mount: it takes the content.
	if out, err := c.PushBlob(ctx, b, Blob{Desc: d, Open: func() (io.Reader, error) { return strings.NewReader(content), nil }}, a.RepositoryStr()); err != nil || out != Uploaded {
		t.Fatalf("mount: %v %v", out, err)
	}
	var out bytes.Buffer
	if err := c.FetchBlob(ctx, b, d, &out); err != nil || out.String() != content {
		t.Fatalf("fetch: %q %v", out.String(), err)
	}
	wrong := d
	wrong.Size++
	if err := c.FetchBlob(ctx, b, wrong, io.Discard); !errors.As(err, new(*layout.IntegrityError)) {
		t.Errorf("fetch with the wrong size: %v", err)
	}

	missing := desc("nope")
	var nf *NotFoundError
	if err := c.FetchBlob(ctx, a, missing, io.Discard); !errors.As(err, &nf) {
		t.Errorf("fetch of a missing blob: %v", err)
	}

	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d.Digest.String() + `","size":13},"layers":[]}`)
	md := desc(string(raw))
	if err := c.PutManifest(ctx, a, md.Digest.String(), "application/vnd.oci.image.manifest.v1+json", raw); err != nil {
		t.Fatal(err)
	}
	if err := c.PutManifest(ctx, a, "v1", "application/vnd.oci.image.manifest.v1+json", raw); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.ManifestDigest(ctx, a, "v1")
	if err != nil || !ok || got != md.Digest {
		t.Fatalf("ManifestDigest: %v %v %v", got, ok, err)
	}
	ref, _ := c.ParseReference(host + "/team/a:v1")
	m, err := c.GetManifest(ctx, ref)
	if err != nil || !bytes.Equal(m.Raw, raw) || m.Digest != md.Digest {
		t.Fatalf("GetManifest: %v", err)
	}
}
