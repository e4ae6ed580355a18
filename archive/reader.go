package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Error is a malformed or unsafe archive: what a corrupt or hostile medium
// produces, as opposed to a failing disk.
type Error struct {
	Entry  string // the tar entry at fault, if known
	Reason string
	Err    error
}

func (e *Error) Error() string {
	msg := e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Entry != "" {
		return fmt.Sprintf("archive entry %q: %s", e.Entry, msg)
	}
	return "archive: " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Compression of an archive stream.
type Compression string

const (
	None Compression = "none"
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
)

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// maxZstdWindow bounds the decoder's memory whatever the stream claims.
const maxZstdWindow = 64 << 20

// Allowed reports whether an archive may hold an entry of this name.
type Allowed func(name string) bool

// Reader reads a relocate archive entry by entry. Content is read through
// Read; entries not read are skipped, by seeking when the input allows it.
type Reader struct {
	tr          *tar.Reader
	cur         *Entry
	compression Compression
	at          io.ReaderAt // non-nil when entries can be read at their offsets
	counter     *counter
	allowed     Allowed
	seen        map[string]bool
	closers     []func()
	finished    bool
}

// NewReader detects the compression of r and reads the tar stream inside it.
// When r is an uncompressed io.ReaderAt and io.Seeker (a file), entries carry
// their offsets and unread content is skipped without reading it.
func NewReader(r io.Reader, allowed Allowed) (*Reader, error) {
	ar := &Reader{allowed: allowed, seen: map[string]bool{}}
	var magic [4]byte
	var src io.Reader
	if rs, ok := r.(io.ReadSeeker); ok && isReaderAt(r) {
		n, err := io.ReadFull(rs, magic[:])
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, err
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		ar.compression = detect(magic[:n])
		if ar.compression == None {
			ar.at = r.(io.ReaderAt)
			ar.counter = &counter{r: rs}
			ar.tr = tar.NewReader(&seekCounter{ar.counter, rs})
			return ar, nil
		}
		src = rs
	} else {
		br := bufio.NewReaderSize(r, 1<<20)
		peek, err := br.Peek(4)
		if err != nil && err != io.EOF {
			return nil, err
		}
		ar.compression = detect(peek)
		src = br
	}
	medium := &mediumReader{r: src}
	switch ar.compression {
	case Zstd:
		d, err := zstd.NewReader(medium, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, &Error{Reason: "zstd", Err: err}
		}
		ar.closers = append(ar.closers, d.Close)
		src = &decoderReader{r: d, medium: medium, c: Zstd}
	case Gzip:
		g, err := gzip.NewReader(medium)
		if err != nil {
			return nil, &Error{Reason: "gzip", Err: err}
		}
		src = &decoderReader{r: g, medium: medium, c: Gzip}
	}
	ar.counter = &counter{r: src}
	ar.tr = tar.NewReader(ar.counter)
	return ar, nil
}

func isReaderAt(r io.Reader) bool { _, ok := r.(io.ReaderAt); return ok }

func detect(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, zstdMagic):
		return Zstd
	case bytes.HasPrefix(b, gzipMagic):
		return Gzip
	}
	return None
}

// Compression reports how the stream was compressed.
func (r *Reader) Compression() Compression { return r.compression }

// RandomAccess reports whether SectionReader can be used.
func (r *Reader) RandomAccess() bool { return r.at != nil }

// SectionReader reads an entry's content at its offset, independently of the
// stream position; it is safe for concurrent use.
func (r *Reader) SectionReader(e *Entry) *io.SectionReader {
	return io.NewSectionReader(r.at, e.Offset, e.Size)
}

// Next advances to the next entry, checking that it is a regular file with an
// allowed, clean name not seen before. It returns io.EOF at the end.
func (r *Reader) Next() (*Entry, error) {
	for {
		h, err := r.tr.Next()
		if err == io.EOF {
			r.cur = nil
			if err := r.finish(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		if err != nil {
			name := ""
			if r.cur != nil {
				name = r.cur.Name
			}
			return nil, wrapStreamErr(name, "in or just after this entry", err)
		}
		if err := check(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		if !r.allowed(h.Name) {
			return nil, &Error{Entry: h.Name, Reason: "not an entry of a relocate archive"}
		}
		if r.seen[h.Name] {
			return nil, &Error{Entry: h.Name, Reason: "appears twice"}
		}
		r.seen[h.Name] = true
		r.cur = &Entry{Name: h.Name, Size: h.Size, Offset: -1}
		if r.at != nil {
			r.cur.Offset = r.counter.n
		}
		return r.cur, nil
	}
}

// maxTrailing bounds what may follow the end-of-archive marker inside a
// compressed stream: tar writers pad to their record size (10 KiB for GNU
// tar), nothing more.
const maxTrailing = 1 << 20

// finish reads a compressed stream to its end once the tar trailer is
// reached, so that the decompressor checks the stream's own checksum and
// length (gzip's footer comes after the last tar block): a truncated or
// corrupt .tar.gz or .tar.zst is refused even when the damage lies after
// the last entry.
func (r *Reader) finish() error {
	if r.compression == None || r.finished {
		return nil
	}
	r.finished = true
	n, err := io.Copy(io.Discard, io.LimitReader(r.counter, maxTrailing+1))
	if err != nil {
		return wrapStreamErr("", "after the end of the archive", err)
	}
	if n > maxTrailing {
		return &Error{Reason: fmt.Sprintf("more than %d bytes after the end of the archive", maxTrailing)}
	}
	return nil
}

// Read reads the current entry's content.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		name := ""
		if r.cur != nil {
			name = r.cur.Name
		}
		err = wrapStreamErr(name, "reading content", err)
	}
	return n, err
}

// Close releases the decompressor.
func (r *Reader) Close() error {
	for _, c := range r.closers {
		c()
	}
	return nil
}

func wrapStreamErr(entry, what string, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Entry: entry, Reason: "truncated archive (" + what + ")", Err: err}
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath),
		errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return &Error{Entry: entry, Reason: "not a valid tar stream (" + what + ")", Err: err}
	}
	if strings.HasPrefix(err.Error(), "zstd") || strings.Contains(err.Error(), "archive/tar") {
		return &Error{Entry: entry, Reason: "corrupt stream (" + what + ")", Err: err}
	}
	return fmt.Errorf("archive entry %q: %s: %w", entry, what, err)
}

// check refuses anything that is not a plain file or directory with a clean
// relative name: links, devices, absolute paths and ".." never pass.
func check(h *tar.Header) error {
	name := h.Name
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\"):
		return &Error{Entry: h.Name, Reason: "absolute or malformed path"}
	case path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../"):
		return &Error{Entry: h.Name, Reason: "path is not clean (contains .. or redundant elements)"}
	}
	for k := range h.PAXRecords {
		// archive/tar expands a PAX sparse file's holes into zeros: a few
		// stored bytes could claim any size, and the bytes at the entry's
		// offset (what SectionReader reads) would not be its content.
		// relocate never writes sparse entries.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return &Error{Entry: h.Name, Reason: "sparse files are refused"}
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if h.Size < 0 {
			return &Error{Entry: h.Name, Reason: "negative size"}
		}
		return nil
	case tar.TypeDir:
		if name == "blobs" || strings.HasPrefix(name, "blobs/") && !strings.Contains(name[len("blobs/"):], "/") {
			return nil
		}
		return &Error{Entry: h.Name, Reason: "unexpected directory"}
	case tar.TypeSymlink, tar.TypeLink:
		return &Error{Entry: h.Name, Reason: fmt.Sprintf("is a link (to %q); links are refused", h.Linkname)}
	default:
		return &Error{Entry: h.Name, Reason: fmt.Sprintf("tar entry type %q is refused (only regular files)", h.Typeflag)}
	}
}

// mediumReader remembers whether reading the medium itself failed.
type mediumReader struct {
	r   io.Reader
	err error
}

func (m *mediumReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		m.err = err
	}
	return n, err
}

// decoderReader makes a decompressor's errors *Errors. The decoders report
// corrupt input with errors of their own ("unknown dictionary", "flate:
// corrupt input …") that wrapStreamErr cannot recognise by name, and a
// corrupt medium must be refused (exit 3), not reported as an operational
// failure. Errors of the medium below pass through unchanged, and a
// truncation stays an io.ErrUnexpectedEOF for wrapStreamErr to name.
type decoderReader struct {
	r      io.Reader
	medium *mediumReader
	c      Compression
}

func (d *decoderReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && d.medium.err == nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = &Error{Reason: "corrupt " + string(d.c) + " stream", Err: err}
	}
	return n, err
}

// counter counts the bytes read from the underlying stream, which gives the
// offset of every entry's content.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// seekCounter lets archive/tar skip content by seeking, keeping the count right.
type seekCounter struct {
	*counter
	s io.Seeker
}

func (s *seekCounter) Seek(off int64, whence int) (int64, error) {
	n, err := s.s.Seek(off, whence)
	if err == nil {
		s.counter.n = n
	}
	return n, err
}
