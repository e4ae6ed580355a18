package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/archive"
)

// Limits of OpenThick. Blobs are streamed and not limited here: the
// callback decides what it accepts.
const (
	MaxBundleJSONSize = 16 << 20 // bundle.json is read into memory
	MaxThickEntries   = 1 << 16  // tar entries, directories included; every name is remembered
)

// LayoutDir is where a thick bundle keeps its OCI image layout.
const LayoutDir = "artifacts/layout"

// OpenThick reads a thick bundle: a tar (gzipped, as cnab-go's packager
// writes it, or plain) holding bundle.json and an OCI image layout under
// artifacts/layout/. It makes one pass, so nothing large is buffered:
// each is called for every regular file of the layout, in archive order,
// with its name relative to the layout ("oci-layout", "index.json",
// "blobs/sha256/<hex>"), its size and its content. each may be nil.
//
// Reading is defensive, through the same reader as relocate's archives
// (archive.Open): entry names must be canonical relative paths, "./"
// allowed, that stay inside the archive; only regular files and
// directories are allowed (no links, devices or sparse files); no name may
// repeat; a corrupt stream is an *archive.Error naming the entry; bundle.json
// is limited to MaxBundleJSONSize and the archive to MaxThickEntries
// entries. A sha256 blob's content is hashed as it streams: a reader handed
// to each returns an error instead of io.EOF if the content does not match
// its name, and OpenThick drains what each left unread to check it all the
// same. What each received is trustworthy only once OpenThick returns nil.
// Other files outside the layout are skipped.
//
// At the end the layout must have oci-layout and index.json, and every
// image whose contentDigest bundle.json states must have that manifest
// among the layout's blobs.
func OpenThick(r io.Reader, each func(name string, size int64, r io.Reader) error) (*Bundle, error) {
	ar, err := archive.Open(r, archive.Options{
		File:          func(string) bool { return true },
		Dir:           func(string) bool { return true },
		DotSlash:      true,
		GlobalHeaders: true,
		MaxEntries:    MaxThickEntries,
	})
	if err != nil {
		return nil, fmt.Errorf("thick bundle: %w", err)
	}
	defer ar.Close()

	seen := map[string]bool{}
	blobs := map[string]bool{} // "sha256:<hex>" of verified blobs
	var raw []byte
	for {
		e, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("thick bundle: %w", err)
		}
		seen[e.Name] = true
		switch rel, inLayout := strings.CutPrefix(e.Name, LayoutDir+"/"); {
		case e.Name == "bundle.json":
			if e.Size > MaxBundleJSONSize {
				return nil, fmt.Errorf("thick bundle: bundle.json: %d bytes, limit %d", e.Size, MaxBundleJSONSize)
			}
			if raw, err = io.ReadAll(ar); err != nil {
				return nil, fmt.Errorf("thick bundle: bundle.json: %w", err)
			}
		case inLayout:
			body, digest := verifyBlob(rel, ar)
			if each != nil {
				if err := each(rel, e.Size, body); err != nil {
					return nil, fmt.Errorf("thick bundle: %s: %w", e.Name, err)
				}
			}
			// Drain what each left, so that the digest is checked regardless.
			if _, err := io.Copy(io.Discard, body); err != nil {
				return nil, fmt.Errorf("thick bundle: %s: %w", e.Name, err)
			}
			if digest != "" {
				blobs[digest] = true
			}
		}
	}

	if raw == nil {
		return nil, fmt.Errorf("thick bundle: no bundle.json")
	}
	for _, f := range []string{"oci-layout", "index.json"} {
		if !seen[LayoutDir+"/"+f] {
			return nil, fmt.Errorf("thick bundle: no %s/%s", LayoutDir, f)
		}
	}
	b, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("thick bundle: %w", err)
	}
	for _, img := range b.Images() {
		if img.ContentDigest != "" && !blobs[img.ContentDigest] {
			return nil, fmt.Errorf("thick bundle %s: image %s (%s): manifest %s not in the layout", b.name(), img.Key, img.Ref, img.ContentDigest)
		}
	}
	return b, nil
}

// verifyBlob wraps a layout entry named blobs/sha256/<hex> in a reader that
// checks its content at EOF, and returns that digest; other entries pass
// through unchecked (an OCI layout may use other algorithms).
func verifyBlob(rel string, r io.Reader) (io.Reader, string) {
	h, ok := strings.CutPrefix(rel, "blobs/sha256/")
	if !ok {
		return r, ""
	}
	if _, err := v1.NewHash("sha256:" + h); err != nil {
		return r, ""
	}
	return &digestReader{r: r, h: sha256.New(), want: h}, "sha256:" + h
}

type digestReader struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != d.want {
			return n, fmt.Errorf("content has sha256:%s, not the digest in its name", got)
		}
	}
	return n, err
}
