package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// Reporter records a problem with one part of an archive, so that reading
// goes on and every problem is named, not just the first.
type Reporter interface {
	Add(subject, format string, args ...any)
}

// Layout is a relocate archive being read: its metadata, read and checked
// against its digests up front, and its layers, either at known offsets (an
// uncompressed file) or still to come in the stream (stdin, compressed
// files). It is the archive as a content source for verify and import.
type Layout struct {
	// R reads the archive's entries; a streamed layer is read from it.
	R      *Reader
	closer io.Closer

	TOC   *layout.TOC
	Index *v1.IndexManifest
	Blobs map[v1.Hash]layout.Blob // the table of contents, by digest
	Small map[v1.Hash][]byte      // metadata blobs, checked against their digests
	// Layers holds every layer entry of a random-access archive.
	Layers map[v1.Hash]*Entry
	// TOCDigest identifies the archive's content: the table of contents
	// names every blob by digest.
	TOCDigest string

	pending *Entry // streaming: the first layer entry, already reached
	seen    map[v1.Hash]bool
	ended   bool
	ps      Reporter
}

func layoutEntry(name string) bool {
	if name == layout.LayoutFile || name == layout.IndexFile || name == layout.TOCFile {
		return true
	}
	_, ok := layout.ParseBlobPath(name)
	return ok
}

// OpenLayout opens path ("-" for stdin) and reads everything before the
// first layer: the layout marker, index.json, the table of contents and
// every manifest, config and signature blob. Problems with individual
// blobs go to ps; a stream that cannot be read further is an error.
func OpenLayout(path string, stdin io.Reader, ps Reporter) (*Layout, error) {
	if path == "-" {
		return ReadLayout(stdin, nil, ps)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return ReadLayout(f, f, ps)
}

// ReadLayout is OpenLayout of an archive already open: r is read at
// offsets when it is a regular file or another io.ReaderAt and io.Seeker
// (a volume set), else as a stream; c, if not nil, is closed with the
// Layout (or at once on failure).
func ReadLayout(r io.Reader, c io.Closer, ps Reporter) (*Layout, error) {
	l := &Layout{Blobs: map[v1.Hash]layout.Blob{}, Small: map[v1.Hash][]byte{}, Layers: map[v1.Hash]*Entry{}, seen: map[v1.Hash]bool{}, ps: ps, closer: c}
	// Only a regular file can be read at offsets; a pipe, FIFO or device
	// (stdin across a data diode) is read as a stream.
	if f, ok := r.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			l.Close()
			return nil, err
		}
		if !st.Mode().IsRegular() {
			r = struct{ io.Reader }{f}
		}
	}
	// Every entry is a blob the table of contents lists, a file of the
	// layout or one of its directories: more entries than that are refused
	// before they are remembered.
	ar, err := Open(r, Options{File: layoutEntry, Dir: LayoutDirs, MaxEntries: layout.MaxBlobs + 8})
	if err != nil {
		l.Close()
		return nil, err
	}
	l.R = ar
	if err := l.readHead(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close closes the archive.
func (l *Layout) Close() {
	if l.R != nil {
		l.R.Close()
	}
	if l.closer != nil {
		l.closer.Close()
	}
}

// readFixed reads the current entry whole, refusing it if it is over max.
func (l *Layout) readFixed(e *Entry, max int64) ([]byte, error) {
	if e.Size > max {
		return nil, &Error{Entry: e.Name, Reason: fmt.Sprintf("%d bytes, over the %d-byte limit for this entry", e.Size, max)}
	}
	return io.ReadAll(io.LimitReader(l.R, max))
}

func (l *Layout) expect(name string, max int64) ([]byte, error) {
	e, err := l.R.Next()
	if err == io.EOF {
		return nil, &Error{Reason: fmt.Sprintf("empty or truncated: %s missing (is this a relocate archive?)", name)}
	}
	if err != nil {
		return nil, err
	}
	if e.Name != name {
		return nil, &Error{Entry: e.Name, Reason: fmt.Sprintf("found where %s must be (is this a relocate archive?)", name)}
	}
	return l.readFixed(e, max)
}

func (l *Layout) readHead() error {
	lf, err := l.expect(layout.LayoutFile, layout.MaxLayoutSize)
	if err != nil {
		return err
	}
	var v struct {
		Version string `json:"imageLayoutVersion"`
	}
	if json.Unmarshal(lf, &v) != nil || v.Version != "1.0.0" {
		return &Error{Entry: layout.LayoutFile, Reason: "not an OCI image layout 1.0.0 marker"}
	}
	ib, err := l.expect(layout.IndexFile, layout.MaxIndexSize)
	if err != nil {
		return err
	}
	if l.Index, err = layout.ParseIndex(ib); err != nil {
		return &Error{Entry: layout.IndexFile, Reason: err.Error()}
	}
	tb, err := l.expect(layout.TOCFile, layout.MaxTOCSize)
	if err != nil {
		return err
	}
	l.TOCDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(tb))
	if l.TOC, err = layout.ParseTOC(tb); err != nil {
		return &Error{Entry: layout.TOCFile, Reason: err.Error()}
	}
	for _, b := range l.TOC.Blobs {
		l.Blobs[b.Digest] = b
	}
	for {
		e, b, err := l.nextBlob()
		if err == io.EOF {
			l.CheckMissing()
			return nil
		}
		if err != nil {
			return err
		}
		if !b.Kind.Small() {
			if !l.R.RandomAccess() {
				l.pending = e
				return nil
			}
			l.Layers[b.Digest] = e
			continue
		}
		if len(l.Layers) > 0 {
			l.ps.Add(e.Name, "%s after the first layer: metadata must come first", b.Kind)
		}
		data, err := l.readFixed(e, b.Kind.MaxSize())
		if err != nil {
			return err
		}
		if err := layout.CopyVerified(io.Discard, bytes.NewReader(data), v1.Descriptor{Digest: b.Digest, Size: b.Size}, e.Name); err != nil {
			l.ps.Add(e.Name, "%s", err.(*layout.IntegrityError).Reason())
			continue
		}
		l.Small[b.Digest] = data
	}
}

// nextBlob advances to the next blob entry that the table of contents lists
// with this size, recording a problem for (and skipping) any other.
func (l *Layout) nextBlob() (*Entry, layout.Blob, error) {
	for {
		e, err := l.R.Next()
		if err != nil {
			return nil, layout.Blob{}, err
		}
		d, ok := layout.ParseBlobPath(e.Name)
		if !ok {
			l.ps.Add(e.Name, "unexpected entry after the table of contents")
			continue
		}
		b, ok := l.Blobs[d]
		switch {
		case !ok:
			l.ps.Add(e.Name, "not listed in the table of contents")
			continue
		case e.Size != b.Size:
			l.ps.Add(e.Name, "entry is %d bytes, the table of contents says %d", e.Size, b.Size)
			l.seen[d] = true
			continue
		}
		l.seen[d] = true
		return e, b, nil
	}
}

// NextLayer returns the next layer entry of a streamed archive, whose
// content is then read from R, or io.EOF.
func (l *Layout) NextLayer() (*Entry, layout.Blob, error) {
	if e := l.pending; e != nil {
		l.pending = nil
		d, _ := layout.ParseBlobPath(e.Name)
		return e, l.Blobs[d], nil
	}
	for {
		e, b, err := l.nextBlob()
		if err == io.EOF {
			l.CheckMissing()
		}
		if err != nil {
			return nil, b, err
		}
		if b.Kind.Small() {
			l.ps.Add(e.Name, "%s after the first layer: metadata must come first", b.Kind)
			continue
		}
		return e, b, nil
	}
}

// CheckMissing records every listed blob that the archive did not hold,
// once the end of the archive is reached.
func (l *Layout) CheckMissing() {
	if l.ended {
		return
	}
	l.ended = true
	for _, b := range l.TOC.Blobs {
		if !l.seen[b.Digest] {
			l.ps.Add(layout.BlobPath(b.Digest), "listed in the table of contents (%s, %d bytes) but missing from the archive", b.Kind, b.Size)
		}
	}
}
