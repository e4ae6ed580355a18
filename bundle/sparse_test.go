package bundle

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/internal/tartest"
)

// A sparse entry expands to as many zeros as it claims (here 1 TiB from a
// few bytes), and readers disagree on its content: every sparse form is
// refused before a byte of it is read, plain or gzipped, naming the entry.
func TestOpenThickRefusesSparse(t *testing.T) {
	blob := "artifacts/layout/blobs/sha256/" + strings.Repeat("a", 64)
	for _, form := range tartest.Forms {
		for _, gz := range []bool{false, true} {
			var tarball []byte
			tarball = append(tarball, tartest.Regular("artifacts/layout/oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))...)
			tarball = append(tarball, tartest.Sparse(form, blob, []byte("stored"), 1<<40)...)
			tarball = append(tarball, tartest.Trailer()...)
			if gz {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(tarball)
				zw.Close()
				tarball = buf.Bytes()
			}
			_, err := OpenThick(bytes.NewReader(tarball), nil)
			var ae *archive.Error
			if !errors.As(err, &ae) || ae.Entry != blob || !strings.Contains(err.Error(), "sparse entry refused") {
				t.Errorf("%s (gzip %v): got %v, want an *archive.Error refusing the sparse entry %s", form, gz, err, blob)
			}
		}
	}
}
