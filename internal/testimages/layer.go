package testimages

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerMtime is fixed so tar headers do not depend on when we ran.
var layerMtime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// layerID identifies a layer's content. Shared layers ignore image and
// platform so that every image gets byte-identical base layers.
type layerID struct {
	seed     int64
	shared   bool
	image    int
	platform int
	index    int
}

// chachaSeed derives an independent PRNG key per layer identity.
func (id layerID) chachaSeed() [32]byte {
	h := sha256.New()
	h.Write([]byte("relocate/testimages/layer/v1\x00"))
	var shared int64
	if id.shared {
		shared = 1
	}
	for _, v := range []int64{id.seed, shared, int64(id.image), int64(id.platform), int64(id.index)} {
		_ = binary.Write(h, binary.BigEndian, v)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (id layerID) fileName() string {
	if id.shared {
		return fmt.Sprintf("base/layer-%d.bin", id.index)
	}
	return fmt.Sprintf("app/image-%d/platform-%d/layer-%d.bin", id.image, id.platform, id.index)
}

// content is a layer's deterministic content and its precomputed hashes.
// It is shared between images; media types are attached by layer.
type content struct {
	id     layerID
	size   int64 // payload bytes inside the tar
	digest v1.Hash
	diffID v1.Hash
	csize  int64 // compressed size
}

// newContent generates the layer once to learn its digests, discarding the
// bytes; uploads regenerate them.
func newContent(id layerID, size int64) (*content, error) {
	c := &content{id: id, size: size}
	tarHash, gzHash := sha256.New(), sha256.New()
	cw := &countWriter{w: gzHash}
	if err := c.writeCompressed(cw, tarHash); err != nil {
		return nil, fmt.Errorf("generate layer %s: %w", id.fileName(), err)
	}
	c.csize = cw.n
	c.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", gzHash.Sum(nil))}
	c.diffID = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", tarHash.Sum(nil))}
	return c, nil
}

// writeTar writes the uncompressed tar: one regular file with the payload.
func (c *content) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     c.id.fileName(),
		Size:     c.size,
		Mode:     0o644,
		ModTime:  layerMtime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	rng := rand.NewChaCha8(c.id.chachaSeed())
	if _, err := io.CopyN(tw, rng, c.size); err != nil {
		return err
	}
	return tw.Close()
}

// writeCompressed writes the gzip stream to w, also teeing the
// uncompressed tar to raw if non-nil. NoCompression is deterministic and
// fastest, and the payload would not shrink anyway.
func (c *content) writeCompressed(w, raw io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return err
	}
	// The zero Header leaves name and mtime empty, as reproducibility needs.
	var dst io.Writer = zw
	if raw != nil {
		dst = io.MultiWriter(zw, raw)
	}
	if err := c.writeTar(dst); err != nil {
		return err
	}
	return zw.Close()
}

// stream runs gen in a goroutine feeding a pipe. Closing the reader early
// makes gen's writes fail, so the goroutine always ends.
func stream(gen func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(gen(pw)) }()
	return pr
}

// layer is content with a media type; it implements v1.Layer.
type layer struct {
	*content
	mediaType types.MediaType
}

var _ v1.Layer = layer{}

func (l layer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l layer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l layer) Size() (int64, error)                 { return l.csize, nil }
func (l layer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }
func (l layer) Uncompressed() (io.ReadCloser, error) { return stream(l.writeTar), nil }
func (l layer) Compressed() (io.ReadCloser, error) {
	return stream(func(w io.Writer) error { return l.writeCompressed(w, nil) }), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
