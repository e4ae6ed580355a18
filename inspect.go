package relocate

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
)

// InspectReport lists what an archive holds, from its table of contents.
type InspectReport struct {
	Archive     string           `json:"archive"`
	Compression string           `json:"compression"`
	Images      []InspectedImage `json:"images"`
	Bundles     []layout.Bundle  `json:"bundles,omitempty"`
	TUF         []layout.TUFRepo `json:"tuf,omitempty"`
	Notary      []layout.TUFRepo `json:"notary,omitempty"`
	Blobs       []layout.Blob    `json:"blobs"`
	Bytes       int64            `json:"bytes"`
}

// InspectedImage is an image and everything attached to it or to its
// child manifests, attachments of attachments included.
type InspectedImage struct {
	layout.Image
	Attached []layout.Attachment `json:"attached,omitempty"`
}

// Inspect reads an archive's metadata (not its layers) and reports its
// content. It checks nothing beyond what reading requires; use Verify for that.
func Inspect(ctx context.Context, path string, stdin io.Reader) (*InspectReport, error) {
	s, err := openArchive(path, stdin, VolumeOptions{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := &InspectReport{Archive: path, Compression: string(s.R.Compression()), Blobs: s.TOC.Blobs, Bytes: s.TOC.TotalBytes(),
		Bundles: s.TOC.Bundles, TUF: s.TOC.TUF, Notary: s.TOC.Notary}
	attached := s.TOC.AttachedTo()
	for _, im := range s.TOC.Images {
		ii := InspectedImage{Image: im}
		top := layout.Child{Descriptor: v1.Descriptor{Digest: im.Digest, Size: im.Size, MediaType: types.MediaType(im.MediaType)}, Kind: layout.KindOf(im.MediaType)}
		if c, err := layout.Walk(top, func(h v1.Hash) ([]byte, bool) { b, ok := s.Small[h]; return b, ok }, attached); err == nil {
			ii.Attached = c.Attached
		}
		rep.Images = append(rep.Images, ii)
	}
	return rep, nil
}
