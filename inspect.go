package relocate

import (
	"context"
	"io"

	"github.com/relocate-dev/relocate/layout"
)

// InspectReport lists what an archive holds, from its table of contents.
type InspectReport struct {
	Archive     string         `json:"archive"`
	Compression string         `json:"compression"`
	Images      []layout.Image `json:"images"`
	Blobs       []layout.Blob  `json:"blobs"`
	Bytes       int64          `json:"bytes"`
}

// Inspect reads an archive's metadata (not its layers) and reports its
// content. It checks nothing beyond what reading requires; use Verify for that.
func Inspect(ctx context.Context, path string, stdin io.Reader) (*InspectReport, error) {
	s, err := openArchive(path, stdin)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return &InspectReport{Archive: path, Compression: string(s.r.Compression()), Images: s.toc.Images, Blobs: s.toc.Blobs, Bytes: s.toc.TotalBytes()}, nil
}
