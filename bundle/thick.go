package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Limits of OpenThick. Blobs are streamed and not limited here: the
// callback decides what it accepts.
const (
	MaxBundleJSONSize = 16 << 20 // bundle.json is read into memory
	MaxThickEntries   = 1 << 16  // tar entries, directories included; every name is remembered
	maxEntryName      = 1024     // bytes; layout names are ~80, and every name is remembered
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
// Reading is defensive: entry names must be canonical relative paths that
// stay inside the archive; only regular files and directories are allowed
// (no links or devices); no name may repeat; bundle.json is limited to
// MaxBundleJSONSize and the archive to MaxThickEntries entries. A
// sha256 blob's content is hashed as it streams: a reader handed to each
// returns an error instead of io.EOF if the content does not match its
// name, and OpenThick drains what each left unread to check it all the
// same. What each received is trustworthy only once OpenThick returns nil.
// Other files outside the layout are skipped.
//
// At the end the layout must have oci-layout and index.json, and every
// image whose contentDigest bundle.json states must have that manifest
// among the layout's blobs.
func OpenThick(r io.Reader, each func(name string, size int64, r io.Reader) error) (*Bundle, error) {
	tr, closeFn, err := tarReader(r)
	if err != nil {
		return nil, fmt.Errorf("thick bundle: %w", err)
	}
	defer closeFn()

	seen := map[string]bool{}
	blobs := map[string]bool{} // "sha256:<hex>" of verified blobs
	var raw []byte
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("thick bundle: after %d entries: %w", n, err)
		}
		if n >= MaxThickEntries {
			return nil, fmt.Errorf("thick bundle: more than %d entries", MaxThickEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX global header: metadata, not a file
		}
		for k := range hdr.PAXRecords {
			// archive/tar expands PAX sparse files into zeros: a few bytes
			// could claim terabytes.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, fmt.Errorf("thick bundle: entry %q: sparse files are refused", hdr.Name)
			}
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, fmt.Errorf("thick bundle: entry %q: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("thick bundle: entry %q: type %q is not a regular file or directory", hdr.Name, hdr.Typeflag)
		}
		if seen[name] {
			return nil, fmt.Errorf("thick bundle: entry %q: appears twice", hdr.Name)
		}
		seen[name] = true

		switch rel, inLayout := strings.CutPrefix(name, LayoutDir+"/"); {
		case name == "bundle.json":
			if hdr.Size > MaxBundleJSONSize {
				return nil, fmt.Errorf("thick bundle: bundle.json: %d bytes, limit %d", hdr.Size, MaxBundleJSONSize)
			}
			if raw, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("thick bundle: bundle.json: %w", err)
			}
		case inLayout:
			body, digest := verifyBlob(rel, tr)
			if each != nil {
				if err := each(rel, hdr.Size, body); err != nil {
					return nil, fmt.Errorf("thick bundle: %s: %w", name, err)
				}
			}
			// Drain what each left, so that the digest is checked regardless.
			if _, err := io.Copy(io.Discard, body); err != nil {
				return nil, fmt.Errorf("thick bundle: %s: %w", name, err)
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

// tarReader accepts a gzipped or a plain tar, told apart by the gzip magic.
func tarReader(r io.Reader) (*tar.Reader, func() error, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil {
		return nil, nil, err
	}
	if magic[0] != 0x1f || magic[1] != 0x8b {
		return tar.NewReader(br), func() error { return nil }, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, err
	}
	zr.Multistream(false) // one gzip member; trailing data is not part of the bundle
	return tar.NewReader(zr), zr.Close, nil
}

// entryName turns a tar name into a canonical relative slash path,
// refusing anything that could leave the extraction directory.
func entryName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/") // directories
	switch {
	case len(n) > maxEntryName:
		return "", fmt.Errorf("name longer than %d bytes", maxEntryName)
	case n == "" || n == ".":
		return ".", nil
	case strings.Contains(n, `\`):
		return "", fmt.Errorf("backslash in name")
	case strings.HasPrefix(n, "/"):
		return "", fmt.Errorf("absolute path")
	case path.Clean(n) != n:
		return "", fmt.Errorf("not a canonical path")
	case n == ".." || strings.HasPrefix(n, "../"):
		return "", fmt.Errorf("path leaves the archive")
	}
	return n, nil
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
