package relocate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// source is an archive being read: its metadata, read and checked up front,
// and its layers, either at known offsets (an uncompressed file) or still to
// come in the stream (stdin, compressed files).
type source struct {
	r      *archive.Reader
	closer io.Closer

	toc   *layout.TOC
	index *v1.IndexManifest
	blobs map[v1.Hash]layout.Blob // the table of contents, by digest
	small map[v1.Hash][]byte      // metadata blobs, checked against their digests

	layers  map[v1.Hash]*archive.Entry // random access: every layer entry
	pending *archive.Entry             // streaming: the first layer entry, already reached
	seen    map[v1.Hash]bool
	ended   bool
	// tocDigest identifies the archive's content: the table of contents
	// names every blob by digest.
	tocDigest string
	ps        *verify.Problems
	vols      *volumeInput // a volume set read as one archive
}

func allowed(name string) bool {
	if name == layout.LayoutFile || name == layout.IndexFile || name == layout.TOCFile {
		return true
	}
	_, ok := layout.ParseBlobPath(name)
	return ok
}

// openArchive opens path ("-" for in; a path may name a volume set) and
// reads everything before the first layer: the layout marker, index.json,
// the table of contents and every manifest and config. Problems with
// individual blobs are collected in s.ps; a stream that cannot be read
// further is an error.
func openArchive(path string, in io.Reader, vo VolumeOptions) (*source, error) {
	s := &source{blobs: map[v1.Hash]layout.Blob{}, small: map[v1.Hash][]byte{}, layers: map[v1.Hash]*archive.Entry{}, seen: map[v1.Hash]bool{}, ps: &verify.Problems{}}
	var r io.Reader = in
	if path != "-" {
		var err error
		if r, s.closer, s.vols, err = openInput(path, vo); err != nil {
			return nil, err
		}
	}
	// Only a regular file can be read at offsets; a pipe, FIFO or device
	// (stdin across a data diode) is read as a stream.
	if f, ok := r.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			s.Close()
			return nil, err
		}
		if !st.Mode().IsRegular() {
			r = struct{ io.Reader }{f}
		}
	}
	// Every entry is a blob the table of contents lists, a file of the
	// layout or one of its directories: more entries than that are refused
	// before they are remembered.
	ar, err := archive.Open(r, archive.Options{File: allowed, Dir: archive.LayoutDirs, MaxEntries: layout.MaxBlobs + 8})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.r = ar
	if err := s.readHead(); err != nil {
		err = s.diagnoseVolumes(err)
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *source) Close() {
	if s.r != nil {
		s.r.Close()
	}
	if s.closer != nil {
		s.closer.Close()
	}
}

// readFixed reads the current entry whole, refusing it if it is over max.
func (s *source) readFixed(e *archive.Entry, max int64) ([]byte, error) {
	if e.Size > max {
		return nil, &archive.Error{Entry: e.Name, Reason: fmt.Sprintf("%d bytes, over the %d-byte limit for this entry", e.Size, max)}
	}
	return io.ReadAll(io.LimitReader(s.r, max))
}

func (s *source) expect(name string, max int64) ([]byte, error) {
	e, err := s.r.Next()
	if err == io.EOF {
		return nil, &archive.Error{Reason: fmt.Sprintf("empty or truncated: %s missing (is this a relocate archive?)", name)}
	}
	if err != nil {
		return nil, err
	}
	if e.Name != name {
		return nil, &archive.Error{Entry: e.Name, Reason: fmt.Sprintf("found where %s must be (is this a relocate archive?)", name)}
	}
	return s.readFixed(e, max)
}

func (s *source) readHead() error {
	lf, err := s.expect(layout.LayoutFile, layout.MaxLayoutSize)
	if err != nil {
		return err
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if json.Unmarshal(lf, &l) != nil || l.Version != "1.0.0" {
		return &archive.Error{Entry: layout.LayoutFile, Reason: "not an OCI image layout 1.0.0 marker"}
	}
	ib, err := s.expect(layout.IndexFile, layout.MaxIndexSize)
	if err != nil {
		return err
	}
	if s.index, err = layout.ParseIndex(ib); err != nil {
		return verify.Refuse(layout.IndexFile, "%v", err)
	}
	tb, err := s.expect(layout.TOCFile, layout.MaxTOCSize)
	if err != nil {
		return err
	}
	s.tocDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(tb))
	if s.toc, err = layout.ParseTOC(tb); err != nil {
		return verify.Refuse(layout.TOCFile, "%v", err)
	}
	for _, b := range s.toc.Blobs {
		s.blobs[b.Digest] = b
	}
	for {
		e, b, err := s.nextBlob()
		if err == io.EOF {
			s.checkMissing()
			return nil
		}
		if err != nil {
			return err
		}
		if !b.Kind.Small() {
			if !s.r.RandomAccess() {
				s.pending = e
				return nil
			}
			s.layers[b.Digest] = e
			continue
		}
		if len(s.layers) > 0 {
			s.ps.Add(e.Name, "%s after the first layer: metadata must come first", b.Kind)
		}
		data, err := s.readFixed(e, b.Kind.MaxSize())
		if err != nil {
			return s.streamErr(err)
		}
		if err := mirror.CopyVerified(io.Discard, bytes.NewReader(data), v1.Descriptor{Digest: b.Digest, Size: b.Size}, e.Name); err != nil {
			s.ps.Add(e.Name, "%s", reason(err))
			continue
		}
		s.small[b.Digest] = data
	}
}

// nextBlob advances to the next blob entry that the table of contents lists
// with this size, recording a problem for (and skipping) any other.
func (s *source) nextBlob() (*archive.Entry, layout.Blob, error) {
	for {
		e, err := s.r.Next()
		if err != nil {
			return nil, layout.Blob{}, s.streamErr(err)
		}
		d, ok := layout.ParseBlobPath(e.Name)
		if !ok {
			s.ps.Add(e.Name, "unexpected entry after the table of contents")
			continue
		}
		b, ok := s.blobs[d]
		switch {
		case !ok:
			s.ps.Add(e.Name, "not listed in the table of contents")
			continue
		case e.Size != b.Size:
			s.ps.Add(e.Name, "entry is %d bytes, the table of contents says %d", e.Size, b.Size)
			s.seen[d] = true
			continue
		}
		s.seen[d] = true
		return e, b, nil
	}
}

// nextLayer returns the next layer entry of a streamed archive, or io.EOF.
func (s *source) nextLayer() (*archive.Entry, layout.Blob, error) {
	if e := s.pending; e != nil {
		s.pending = nil
		d, _ := layout.ParseBlobPath(e.Name)
		return e, s.blobs[d], nil
	}
	for {
		e, b, err := s.nextBlob()
		if err == io.EOF {
			s.checkMissing()
		}
		if err != nil {
			return nil, b, err
		}
		if b.Kind.Small() {
			s.ps.Add(e.Name, "%s after the first layer: metadata must come first", b.Kind)
			continue
		}
		return e, b, nil
	}
}

// checkMissing records every listed blob that the archive did not hold, once
// the end of the archive is reached.
func (s *source) checkMissing() {
	if s.ended {
		return
	}
	s.ended = true
	for _, b := range s.toc.Blobs {
		if !s.seen[b.Digest] {
			s.ps.Add(layout.BlobPath(b.Digest), "listed in the table of contents (%s, %d bytes) but missing from the archive", b.Kind, b.Size)
		}
	}
}

// streamErr is how reading a stream ends when it cannot go further: a
// refusal carries every problem found before it too, since damage that a
// decompressor detects only late (a checksum at the end of the stream) has
// often been named already, by the digest of the blob it altered. Alone,
// it stays what it is (an *archive.Error).
func (s *source) streamErr(err error) error {
	err = s.diagnoseVolumes(err)
	if err == io.EOF || !IsRefused(err) || s.ps.Len() == 0 {
		return err
	}
	for _, p := range problemsOf(err) {
		if !s.ps.Has(p) {
			s.ps.Add(p.Subject, "%s", p.Reason)
		}
	}
	return s.ps.Err()
}

// reason is the message of an integrity error without the location prefix,
// which the problem's subject already names.
func reason(err error) string {
	var ie *mirror.IntegrityError
	if errors.As(err, &ie) {
		return "content does not match its digest (got " + ie.Got + ")"
	}
	var ae *archive.Error
	if errors.As(err, &ae) {
		return archiveProblem(ae).Reason
	}
	return err.Error()
}
