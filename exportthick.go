package relocate

import (
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// addThickImages adds every image a thick bundle names to the graph and the
// image list, from its spooled layout: each must be pinned by contentDigest,
// which is how a thick bundle's layout is addressed.
func addThickImages(c *mirror.Client, b *bundle.Bundle, sp *bundle.Spool, g *mirror.Graph) error {
	for _, bi := range b.Images() {
		if bi.ContentDigest == "" {
			return verify.Refuse(bi.Ref, "image %s of a thick bundle has no contentDigest to find it by", bi.Key)
		}
		ref, err := c.ParseReference(bi.Ref)
		if err != nil {
			return fmt.Errorf("bundle image %s: %w", bi.Key, err)
		}
		d, _ := v1.NewHash(bi.ContentDigest)
		raw, err := sp.Read(d, layout.MaxManifestSize)
		if err != nil {
			return err
		}
		mt := bi.MediaType
		if mt == "" {
			mt = string(types.OCIManifestSchema1)
		}
		top := layout.Child{Descriptor: v1.Descriptor{Digest: d, Size: int64(len(raw)), MediaType: types.MediaType(mt)}, Kind: layout.KindOf(mt)}
		if err := addSpooled(g, sp, top); err != nil {
			return fmt.Errorf("bundle image %s (%s): %w", bi.Key, bi.Ref, err)
		}
		g.Images = append(g.Images, layout.Image{Ref: ref.Name(), Digest: d, MediaType: mt, Size: int64(len(raw))})
	}
	return nil
}

// addSpooled adds an image of a spooled layout and everything it names to
// the export's graph: manifests and configs in memory, layers by file.
func addSpooled(g *mirror.Graph, sp *bundle.Spool, top layout.Child) error {
	c, err := sp.Walk(top)
	if err != nil {
		return err
	}
	for _, k := range append(append([]layout.Child{}, c.Manifests...), c.Blobs...) {
		have, done := g.Blobs[k.Digest]
		if done && !k.Kind.Outranks(have.Kind) {
			continue
		}
		n := &mirror.Node{Blob: layout.Blob{Digest: k.Digest, Size: k.Size, MediaType: string(k.MediaType), Kind: k.Kind}, Desc: k.Descriptor}
		switch {
		case k.Kind.Small():
			max := int64(layout.MaxManifestSize)
			if k.Kind == layout.KindConfig {
				max = layout.MaxConfigSize
			}
			if n.Data, err = sp.Read(k.Digest, max); err != nil {
				return err
			}
		default:
			st, err := os.Stat(sp.Path(k.Digest))
			if err != nil || st.Size() != k.Size {
				return fmt.Errorf("thick bundle: layer %s missing from its layout or of the wrong size", k.Digest)
			}
			n.File = sp.Path(k.Digest)
		}
		if done {
			have.Settle(n)
			continue
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
	return layout.CopyVerified(w, f, n.Desc, n.File)
}
