package relocate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// bundleSource is a --bundle argument: a reference to a bundle stored the
// cnab-to-oci way, or a bundle.json file with the reference it goes by.
type bundleSource struct {
	arg   string
	file  *bundle.Bundle // a bundle read from a file
	thick *bundle.Spool  // its images, when the file is a thick bundle
	ref   string         // the bundle's reference
}

// cleanup removes what reading the bundles spooled.
func cleanup(srcs []bundleSource) {
	for _, s := range srcs {
		if s.thick != nil {
			s.thick.Close()
		}
	}
}

// parseBundles reads --bundle arguments: FILE[=REF] for a bundle.json or a
// thick bundle (.tgz; REF defaults to localhost/<name>:<version>), else a
// registry reference. The caller must cleanup the result.
func parseBundles(args []string) ([]bundleSource, error) {
	var out []bundleSource
	for _, a := range args {
		path, ref, _ := strings.Cut(a, "=")
		if _, err := os.Stat(path); os.IsNotExist(err) && ref == "" {
			out = append(out, bundleSource{arg: a, ref: a})
			continue
		}
		src := bundleSource{arg: a}
		var err error
		if bundle.IsThick(path) {
			src.file, src.thick, err = bundle.SpoolThick(path)
			// Bad content is refused; a disk that fills while the bundle
			// is spooled is an operational failure.
			if err != nil && !errors.As(err, new(*fs.PathError)) {
				err = verify.Refuse(path, "%v", err)
			}
		} else {
			var raw []byte
			if raw, err = os.ReadFile(path); err == nil {
				if src.file, err = bundle.Parse(raw); err != nil {
					err = verify.Refuse(path, "%v", err)
				}
			}
		}
		if err != nil {
			cleanup(out)
			return nil, err
		}
		if ref == "" {
			ref = "localhost/" + src.file.Def.Name + ":" + src.file.Def.Version
		}
		src.ref = ref
		out = append(out, src)
	}
	return out, nil
}

// bundleRefs are the references Walk must resolve for the bundles: the
// bundle itself when it is in a registry, else every image it names.
func bundleRefs(srcs []bundleSource) []string {
	var refs []string
	for _, s := range srcs {
		switch {
		case s.file == nil:
			refs = append(refs, s.ref)
			continue
		case s.thick != nil:
			continue // its images come from its own layout
		}
		for _, im := range s.file.Images() {
			refs = append(refs, im.Ref)
		}
	}
	return refs
}

// addBundles records every bundle in the table of contents after the walk.
// A bundle from a registry was walked as an index; one from a file gets its
// cnab-to-oci form built here around the images the walk resolved, each of
// which must be the manifest its contentDigest pins, if any.
func addBundles(c *mirror.Client, srcs []bundleSource, g *mirror.Graph, toc *layout.TOC) error {
	for _, s := range srcs {
		if s.thick != nil {
			if err := addThickImages(c, s.file, s.thick, g); err != nil {
				return err
			}
		}
	}
	toc.Images = g.Images
	images := map[string]layout.Image{}
	for _, im := range g.Images {
		images[im.Ref] = im
	}
	for _, s := range srcs {
		ref, err := c.ParseReference(s.ref)
		if err != nil {
			return fmt.Errorf("bundle reference %q: %w", s.ref, err)
		}
		if s.file == nil {
			im := images[ref.Name()]
			stored, err := bundle.ParseStored(g.Blobs[im.Digest].Data, func(h v1.Hash) ([]byte, error) {
				if n, ok := g.Blobs[h]; ok && n.Data != nil {
					return n.Data, nil
				}
				return nil, fmt.Errorf("%s not in the graph", h)
			})
			if err != nil {
				return verify.Refuse(s.ref, "not a CNAB bundle in the cnab-to-oci form: %v", err)
			}
			toc.Bundles = append(toc.Bundles, entry(ref.Name(), stored.Bundle, func(key string) (v1.Hash, bool) {
				d, ok := stored.Images[key]
				return d.Digest, ok
			}))
			continue
		}
		b := s.file
		descs := map[string]v1.Descriptor{}
		for _, bi := range b.Images() {
			r, err := c.ParseReference(bi.Ref)
			if err != nil {
				return fmt.Errorf("bundle %s: image %s: %w", s.ref, bi.Key, err)
			}
			im := images[r.Name()]
			if bi.ContentDigest != "" && bi.ContentDigest != im.Digest.String() {
				return verify.Refuse(bi.Ref, "bundle %s pins %s to %s, but the registry serves %s", s.ref, bi.Key, bi.ContentDigest, im.Digest)
			}
			descs[bi.Key] = v1.Descriptor{MediaType: types.MediaType(im.MediaType), Size: im.Size, Digest: im.Digest}
		}
		index, config, err := bundle.BuildStored(b, descs)
		if err != nil {
			return err
		}
		idx := addSmall(g, index, string(types.OCIImageIndex), layout.KindIndex)
		addSmall(g, config, string(types.OCIManifestSchema1), layout.KindManifest)
		addSmall(g, b.Raw, bundle.ConfigMediaType, layout.KindConfig)
		toc.Images = append(toc.Images, layout.Image{Ref: ref.Name(), Digest: idx, MediaType: string(types.OCIImageIndex), Size: int64(len(index))})
		toc.Bundles = append(toc.Bundles, entry(ref.Name(), b, func(key string) (v1.Hash, bool) {
			d, ok := descs[key]
			return d.Digest, ok
		}))
	}
	return nil
}

func entry(ref string, b *bundle.Bundle, digest func(key string) (v1.Hash, bool)) layout.Bundle {
	e := layout.Bundle{Ref: ref, Digest: b.Digest, Size: int64(len(b.Raw))}
	for _, bi := range b.Images() {
		d, _ := digest(bi.Key)
		e.Images = append(e.Images, layout.BundleImage{Key: bi.Key, Ref: bi.Ref, Digest: d, Pinned: bi.ContentDigest != ""})
	}
	return e
}

// addSmall adds metadata made here (not fetched) to the graph.
func addSmall(g *mirror.Graph, data []byte, mediaType string, kind layout.Kind) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(data))
	if _, ok := g.Blobs[h]; !ok {
		g.Blobs[h] = &mirror.Node{Blob: layout.Blob{Digest: h, Size: int64(len(data)), MediaType: mediaType, Kind: kind}, Data: data}
	}
	return h
}
