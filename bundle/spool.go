package bundle

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// IsThick tells a thick bundle (a tar, usually gzipped) from bundle.json.
func IsThick(path string) bool {
	for _, ext := range []string{".tgz", ".tar.gz", ".tar"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}

// Spool is a thick bundle's OCI layout, spooled to a directory rather than
// held in memory; its blobs were checked against their digests while they
// were read. Close removes it.
type Spool struct{ dir string }

// SpoolThick reads a thick bundle in one pass, spooling its layout's blobs.
// Layers are compressed already, so a bundle barely shrinks in its gzip:
// one that expands beyond four times its size (and 64 MiB) is a
// decompression bomb, refused before it fills the disk.
func SpoolThick(path string) (*Bundle, *Spool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "relocate-thick-")
	if err != nil {
		return nil, nil, err
	}
	sp := &Spool{dir: dir}
	budget := 4*st.Size() + 64<<20
	b, err := OpenThick(f, func(name string, _ int64, r io.Reader) error {
		d, ok := layout.ParseBlobPath(name)
		if !ok {
			return nil // oci-layout, index.json: the bundle names its images itself
		}
		out, err := os.Create(sp.Path(d))
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
		sp.Close()
		return nil, nil, err
	}
	return b, sp, nil
}

// Close removes the spooled layout.
func (sp *Spool) Close() error { return os.RemoveAll(sp.dir) }

// Path is where a blob of the layout is spooled.
func (sp *Spool) Path(d v1.Hash) string { return filepath.Join(sp.dir, d.Algorithm+"-"+d.Hex) }

// Read returns a spooled blob of at most max bytes.
func (sp *Spool) Read(d v1.Hash, max int64) ([]byte, error) {
	f, err := os.Open(sp.Path(d))
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

// Walk computes the closure of a manifest of the layout, with the walk
// every archive of relocate's gets.
func (sp *Spool) Walk(top layout.Child) (*layout.Closure, error) {
	return layout.Walk(top, func(h v1.Hash) ([]byte, bool) {
		b, err := sp.Read(h, layout.MaxManifestSize)
		return b, err == nil
	}, nil)
}
