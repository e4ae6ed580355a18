package relocate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// isThick tells a thick bundle (a tar, usually gzipped) from bundle.json.
func isThick(path string) bool {
	for _, ext := range []string{".tgz", ".tar.gz", ".tar"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}

// thickLayout is a thick bundle's OCI layout, spooled to a directory: its
// blobs were checked against their digests while they were read.
type thickLayout struct{ dir string }

// openThick reads a thick bundle in one pass, spooling its layout's blobs to
// a temporary directory (removed by the caller) rather than into memory.
func openThick(path string) (*bundle.Bundle, *thickLayout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "relocate-thick-")
	if err != nil {
		return nil, nil, err
	}
	tl := &thickLayout{dir: dir}
	// Layers are compressed already, so a bundle barely shrinks in its
	// gzip: one that expands far beyond its size is a decompression bomb,
	// refused before it fills the disk.
	st, err := f.Stat()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	budget := 4*st.Size() + 64<<20
	b, err := bundle.OpenThick(f, func(name string, _ int64, r io.Reader) error {
		d, ok := layout.ParseBlobPath(name)
		if !ok {
			return nil // oci-layout, index.json: the bundle names its images itself
		}
		out, err := os.Create(tl.path(d))
		if err != nil {
			return err
		}
		n, err := io.Copy(out, io.LimitReader(r, budget+1))
		budget -= n
		if err == nil && budget < 0 {
			err = fmt.Errorf("expands to more than four times its size: refused as a decompression bomb")
		}
		if err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, verify.Refuse(path, "%v", err)
	}
	return b, tl, nil
}

func (tl *thickLayout) path(d v1.Hash) string { return filepath.Join(tl.dir, d.Algorithm+"-"+d.Hex) }

func (tl *thickLayout) read(d v1.Hash, max int64) ([]byte, error) {
	f, err := os.Open(tl.path(d))
	if err != nil {
		return nil, fmt.Errorf("thick bundle: blob %s missing from its layout", d)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("thick bundle: blob %s is over the %d-byte limit", d, max)
	}
	return b, err
}

// addThickImages adds every image a thick bundle names to the graph and the
// image list, from its spooled layout: each must be pinned by contentDigest,
// which is how a thick bundle's layout is addressed.
func addThickImages(c *mirror.Client, b *bundle.Bundle, tl *thickLayout, g *mirror.Graph) error {
	for _, bi := range b.Images() {
		if bi.ContentDigest == "" {
			return verify.Refuse(bi.Ref, "image %s of a thick bundle has no contentDigest to find it by", bi.Key)
		}
		ref, err := c.ParseReference(bi.Ref)
		if err != nil {
			return fmt.Errorf("bundle image %s: %w", bi.Key, err)
		}
		d, _ := v1.NewHash(bi.ContentDigest)
		raw, err := tl.read(d, layout.MaxManifestSize)
		if err != nil {
			return err
		}
		mt := bi.MediaType
		if mt == "" {
			mt = string(types.OCIManifestSchema1)
		}
		if err := tl.walk(g, v1.Descriptor{Digest: d, Size: int64(len(raw)), MediaType: types.MediaType(mt)}, raw, 0); err != nil {
			return fmt.Errorf("bundle image %s (%s): %w", bi.Key, bi.Ref, err)
		}
		g.Images = append(g.Images, layout.Image{Ref: ref.Name(), Digest: d, MediaType: mt, Size: int64(len(raw))})
	}
	return nil
}

// walk records a manifest from the layout and everything it names.
func (tl *thickLayout) walk(g *mirror.Graph, d v1.Descriptor, raw []byte, depth int) error {
	if depth > layout.MaxDepth {
		return fmt.Errorf("indexes nested more than %d deep at %s", layout.MaxDepth, d.Digest)
	}
	kids, err := layout.Children(string(d.MediaType), raw)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	g.Blobs[d.Digest] = &mirror.Node{Blob: layout.Blob{Digest: d.Digest, Size: d.Size, MediaType: string(d.MediaType), Kind: layout.KindOf(string(d.MediaType))}, Desc: d, Data: raw}
	for _, k := range kids {
		if _, done := g.Blobs[k.Digest]; done {
			continue
		}
		n := &mirror.Node{Blob: layout.Blob{Digest: k.Digest, Size: k.Size, MediaType: string(k.MediaType), Kind: k.Kind}, Desc: k.Descriptor}
		switch k.Kind {
		case layout.KindIndex, layout.KindManifest:
			b, err := tl.read(k.Digest, layout.MaxManifestSize)
			if err != nil {
				return err
			}
			if err := tl.walk(g, k.Descriptor, b, depth+1); err != nil {
				return err
			}
			continue
		case layout.KindConfig:
			if n.Data, err = tl.read(k.Digest, layout.MaxConfigSize); err != nil {
				return err
			}
		default:
			st, err := os.Stat(tl.path(k.Digest))
			if err != nil || st.Size() != k.Size {
				return fmt.Errorf("thick bundle: layer %s missing from its layout or of the wrong size", k.Digest)
			}
			n.File = tl.path(k.Digest)
		}
		g.Blobs[k.Digest] = n
	}
	return nil
}

// copyFile copies a spooled blob, checking it once more on the way.
func copyFile(n *mirror.Node, w io.Writer) error {
	f, err := os.Open(n.File)
	if err != nil {
		return err
	}
	defer f.Close()
	return mirror.CopyVerified(w, f, n.Desc, n.File)
}
