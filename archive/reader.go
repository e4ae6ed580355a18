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
	"sync/atomic"

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

// MaxNameLen bounds entry names: every name read is remembered.
const MaxNameLen = 1024

// maxTrailing bounds what a compressed stream may hold after the tar
// end-of-archive marker (tar writers pad to their record size, 10 KiB for
// GNU tar); it is read only to reach the stream's checksum.
const maxTrailing = 1 << 20

// Allowed reports whether an archive may hold a regular file of this name.
type Allowed func(name string) bool

// Options say which tar entries a Reader accepts. Whatever they say, a
// Reader refuses links, devices, sparse files, unclean or absolute names,
// a name twice, and content that does not match the bytes stored.
type Options struct {
	// File reports whether a regular file of this name may appear.
	File Allowed
	// Dir reports whether a directory of this name (without its trailing
	// slash) may appear; directories are checked and skipped, never
	// returned. Nil allows none.
	Dir func(name string) bool
	// DotSlash accepts names that begin with "./", as `tar -C dir .`
	// writes them; entries are reported without it.
	DotSlash bool
	// GlobalHeaders skips PAX global headers instead of refusing them.
	GlobalHeaders bool
	// MaxEntries bounds the headers read, directories included; 0 for no
	// bound.
	MaxEntries int
}

// LayoutDirs reports the directories an OCI image layout may have:
// blobs and blobs/<algorithm>.
func LayoutDirs(name string) bool {
	return name == "blobs" || strings.HasPrefix(name, "blobs/") && !strings.Contains(name[len("blobs/"):], "/")
}

// Reader reads a tar archive entry by entry: the one reader for every tar
// relocate reads (its archives, thick bundles). Content is read through
// Read; entries not read are skipped, by seeking when the input allows it.
//
// Every error is either an *Error (the archive is corrupt, truncated or
// hostile, whatever layer found it: the decompressor, the tar format or
// these checks), naming the entry being read, or an error of the
// underlying file or pipe (a failing disk), which is not an *Error.
type Reader struct {
	opts        Options
	tr          *tar.Reader
	cur         *Entry
	compression Compression
	at          io.ReaderAt // non-nil when entries can be read at their offsets
	medium      *medium
	dec         *decoder // nil for an uncompressed archive
	counter     *counter
	seen        map[string]bool
	headers     int    // headers archive/tar returned
	last        string // the name in the last of them
	lastEnd     int64  // where its content ends in the tar stream
	ended       bool
	err         error // the first failure: the stream cannot be read past it
	closers     []func()
}

// NewReader reads a relocate archive: regular files that allowed accepts,
// and the directories of an OCI image layout.
func NewReader(r io.Reader, allowed Allowed) (*Reader, error) {
	return Open(r, Options{File: allowed, Dir: LayoutDirs})
}

// Open detects the compression of r and reads the tar stream inside it.
// When r is an uncompressed io.ReaderAt and io.Seeker (a file), entries
// carry their offsets and unread content is skipped without reading it.
func Open(r io.Reader, o Options) (*Reader, error) {
	ar := &Reader{opts: o, seen: map[string]bool{}, medium: &medium{r: r}}
	var src io.Reader
	if rs, ok := r.(io.ReadSeeker); ok && isReaderAt(r) {
		var magic [4]byte
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
			ar.medium.s = rs
			ar.counter = &counter{r: ar.medium}
			ar.tr = tar.NewReader(&seekCounter{ar.counter, ar.medium})
			return ar, nil
		}
		src = ar.medium
	} else {
		br := bufio.NewReaderSize(ar.medium, 1<<20)
		peek, err := br.Peek(4)
		if err != nil && err != io.EOF {
			return nil, ar.fail(err, "reading its first bytes")
		}
		ar.compression = detect(peek)
		src = br
	}
	switch ar.compression {
	case Zstd:
		d, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, err // options only: the stream is read later
		}
		ar.closers = append(ar.closers, d.Close)
		ar.dec = &decoder{r: d, m: ar.medium, c: Zstd}
	case Gzip:
		// gzip reads its header here.
		g, err := gzip.NewReader(src)
		if err != nil {
			return nil, ar.fail((&decoder{m: ar.medium, c: Gzip}).wrap(err), "at the start of the archive, in the gzip header")
		}
		ar.dec = &decoder{r: g, m: ar.medium, c: Gzip}
	}
	if ar.dec != nil {
		ar.counter = &counter{r: ar.dec}
	} else {
		ar.counter = &counter{r: src}
	}
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
// allowed, clean name not seen before. It returns io.EOF at the end, once
// a compressed stream has been read to its end and its checksum verified.
func (r *Reader) Next() (*Entry, error) {
	e, err := r.next()
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return e, err
}

func (r *Reader) next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.cur = nil
	for {
		h, err := r.tr.Next()
		if err == io.EOF {
			return nil, r.finish()
		}
		if err != nil {
			return nil, r.fail(err, "")
		}
		r.headers++
		start := r.counter.n
		r.last, r.lastEnd = h.Name, start+h.Size
		if max := r.opts.MaxEntries; max > 0 && r.headers > max {
			return nil, &Error{Entry: h.Name, Reason: fmt.Sprintf("more than %d entries", max)}
		}
		name, err := r.check(h)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // a directory or a global header
		}
		if r.seen[name] {
			return nil, &Error{Entry: h.Name, Reason: "appears twice"}
		}
		r.seen[name] = true
		r.cur = &Entry{Name: name, Size: h.Size, Offset: -1}
		if r.at != nil {
			r.cur.Offset = start
		}
		return r.cur, nil
	}
}

// Read reads the current entry's content.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil {
		return 0, io.EOF
	}
	before := r.counter.n
	n, err := r.tr.Read(p)
	// archive/tar hands out stored bytes one for one, unless it expands a
	// sparse entry: a second guard behind the header checks of Next.
	if got := r.counter.n - before; got != int64(n) {
		r.err = &Error{Entry: r.cur.Name, Reason: fmt.Sprintf("content expanded beyond the bytes stored (%d bytes returned for %d read): sparse entries are refused", n, got)}
		return 0, r.err
	}
	if err != nil && err != io.EOF {
		r.err = r.fail(err, "in its content")
		return n, r.err
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

// finish reads a compressed stream past the end-of-archive marker to its
// end, so that its checksum (zstd's content checksum, gzip's CRC-32) is
// verified even where damage falls after the last entry. What follows the
// compressed stream (the rest of a device the archive was written to) is
// not the archive's, and is ignored.
func (r *Reader) finish() error {
	if r.ended || r.dec == nil {
		r.ended = true
		return io.EOF
	}
	r.ended = true
	n, err := io.Copy(io.Discard, io.LimitReader(r.dec, maxTrailing+1))
	if err != nil && !r.dec.pastEnd(err) {
		return r.fail(err, "after the end-of-archive marker")
	}
	if n > maxTrailing {
		return &Error{Reason: fmt.Sprintf("more than %d bytes follow the end-of-archive marker inside the %s stream", maxTrailing, r.compression)}
	}
	return io.EOF
}

// fail turns an error of the tar stream into an *Error naming where it
// happened, or passes on an error of the medium. where is empty in Next,
// which works it out.
func (r *Reader) fail(err error, where string) error {
	var me *mediumError
	if errors.As(err, &me) {
		return fmt.Errorf("reading the archive: %w", me.err)
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	entry := ""
	switch {
	case where != "" && r.cur != nil:
		entry = r.cur.Name
	case where != "":
	case r.headers == 0:
		where = "at the start of the archive, before its first entry"
	case r.counter.n < r.lastEnd:
		entry, where = r.last, "in its content"
	default:
		entry, where = r.last, "in the tar header after this entry"
	}
	var reason string
	var de *decodeError
	switch {
	case errors.As(err, &de):
		reason, err = de.reason(), de.err
	case r.counter != nil && r.headers == 0 && !looksLikeTar(r.counter.first[:r.counter.firstLen]):
		reason = "not a tar archive, so not a relocate archive"
		if r.compression != None {
			reason = "the " + string(r.compression) + " stream does not hold a tar archive, so not a relocate archive"
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		reason = "truncated archive"
	default:
		reason = "not a valid tar stream"
	}
	return &Error{Entry: entry, Reason: reason + " (" + where + ")", Err: err}
}

// looksLikeTar reports whether a stream starts with a USTAR, PAX or GNU
// tar header (all carry "ustar" at offset 257).
func looksLikeTar(first []byte) bool {
	return len(first) >= 262 && string(first[257:262]) == "ustar"
}

// check refuses anything that is not a plain file or an allowed directory
// with a clean relative name: links, devices, sparse files, absolute paths
// and ".." never pass. It returns the entry's name ("" for what is
// skipped: directories, and global headers when allowed).
func (r *Reader) check(h *tar.Header) (string, error) {
	if form := sparseForm(h); form != "" {
		return "", &Error{Entry: h.Name, Reason: "sparse entry refused (" + form + "): readers disagree on its content, which is not the bytes stored"}
	}
	if h.Typeflag == tar.TypeXGlobalHeader {
		if r.opts.GlobalHeaders {
			return "", nil
		}
		return "", &Error{Entry: h.Name, Reason: "PAX global header refused"}
	}
	name := h.Name
	if len(name) > MaxNameLen {
		return "", &Error{Entry: h.Name[:64] + "…", Reason: fmt.Sprintf("name longer than %d bytes", MaxNameLen)}
	}
	if r.opts.DotSlash {
		name = strings.TrimPrefix(name, "./")
		if h.Typeflag == tar.TypeDir && (name == "" || name == ".") {
			return "", nil // the root of the archive
		}
	}
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\"):
		return "", &Error{Entry: h.Name, Reason: "absolute or malformed path"}
	case path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../"):
		return "", &Error{Entry: h.Name, Reason: "path is not clean (contains .. or redundant elements)"}
	}
	switch h.Typeflag {
	case tar.TypeReg:
		if h.Size < 0 {
			return "", &Error{Entry: h.Name, Reason: "negative size"}
		}
		if err := r.checkStored(h); err != nil {
			return "", err
		}
		if r.opts.File == nil || !r.opts.File(name) {
			return "", &Error{Entry: h.Name, Reason: "not an entry of a relocate archive"}
		}
		return name, nil
	case tar.TypeDir:
		if r.opts.Dir != nil && r.opts.Dir(name) {
			return "", nil
		}
		return "", &Error{Entry: h.Name, Reason: "unexpected directory"}
	case tar.TypeSymlink, tar.TypeLink:
		return "", &Error{Entry: h.Name, Reason: fmt.Sprintf("is a link (to %q); links are refused", h.Linkname)}
	default:
		return "", &Error{Entry: h.Name, Reason: fmt.Sprintf("tar entry type %q is refused (only regular files)", h.Typeflag)}
	}
}

// sparseForm names the sparse format of an entry, or "" if it has none:
// the GNU 'S' type, or PAX GNU.sparse.* records of any version (0.0 and
// 0.1 keep the map in records, 1.0 at the start of the content). Readers
// expand these differently, or not at all: GNU tar would extract content
// that is not the bytes stored, and that a digest of them did not cover.
func sparseForm(h *tar.Header) string {
	if h.Typeflag == tar.TypeGNUSparse {
		return "GNU sparse type 'S'"
	}
	var keys []string
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			keys = append(keys, k)
		}
	}
	switch {
	case len(keys) == 0:
		return ""
	case h.PAXRecords["GNU.sparse.major"] != "":
		return fmt.Sprintf("GNU sparse PAX format %s.%s", h.PAXRecords["GNU.sparse.major"], h.PAXRecords["GNU.sparse.minor"])
	case h.PAXRecords["GNU.sparse.map"] != "":
		return "GNU sparse PAX format 0.0/0.1"
	}
	return "GNU.sparse PAX records"
}

// checkStored compares a regular file's size with the size stored in the
// raw header just before its content (or the PAX size record that
// overrides it): they differ when a reader expanded the entry. Nothing but
// the header may sit between header and content; a sparse map there fails.
func (r *Reader) checkStored(h *tar.Header) error {
	raw := r.counter.tail[:r.counter.tailLen]
	stored, ok := storedSize(raw)
	if !ok {
		return &Error{Entry: h.Name, Reason: "content does not directly follow a regular file's header"}
	}
	if s := h.PAXRecords["size"]; s != "" {
		stored = -1
		fmt.Sscan(s, &stored)
	}
	if stored != h.Size {
		return &Error{Entry: h.Name, Reason: fmt.Sprintf("%d bytes stored, %d bytes once read: entries that expand are refused", stored, h.Size)}
	}
	return nil
}

// storedSize parses the size field of a raw header block of a regular file,
// checking its checksum.
func storedSize(b []byte) (int64, bool) {
	if len(b) != block || (b[156] != tar.TypeReg && b[156] != 0) { // '0', or NUL in old archives
		return 0, false
	}
	var sum int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	want, ok := octal(b[148:156])
	if !ok || want != sum {
		return 0, false
	}
	f := b[124:136]
	if f[0] == 0x80 { // base-256, for sizes of 8 GiB and more
		var n int64
		for _, c := range f[1:] {
			if n > (1<<63-1)>>8 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		return n, true
	}
	return octal(f)
}

// octal parses a NUL- or space-terminated octal field.
func octal(f []byte) (int64, bool) {
	s := strings.Trim(string(f), " \x00")
	if s == "" {
		return 0, true
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '7' || n > (1<<63-1)>>3 {
			return 0, false
		}
		n = n<<3 | int64(c-'0')
	}
	return n, true
}

// medium is the file or pipe the archive comes from. Its errors are the
// machine's (a failing disk, a broken pipe), not the archive's: they are
// tagged so that they stay operational however deep they surface.
type medium struct {
	r      io.Reader
	s      io.Seeker // set when the archive is read at offsets
	failed atomic.Pointer[mediumError]
}

type mediumError struct{ err error }

func (e *mediumError) Error() string { return e.err.Error() }
func (e *mediumError) Unwrap() error { return e.err }

func (m *medium) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		return n, m.fail(err)
	}
	return n, err
}

func (m *medium) Seek(off int64, whence int) (int64, error) {
	n, err := m.s.Seek(off, whence)
	if err != nil {
		return n, m.fail(err)
	}
	return n, nil
}

func (m *medium) fail(err error) error {
	me := &mediumError{err}
	m.failed.CompareAndSwap(nil, me)
	return me
}

// decoder is the decompressor: its errors are the archive's (corrupt,
// truncated or too demanding data), unless the medium failed under it.
type decoder struct {
	r io.Reader
	m *medium
	c Compression
}

type decodeError struct {
	c   Compression
	err error
}

func (e *decodeError) Error() string { return e.reason() + ": " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func (e *decodeError) reason() string {
	switch {
	case errors.Is(e.err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("truncated archive, the %s stream ends early", e.c)
	case errors.Is(e.err, zstd.ErrWindowSizeExceeded):
		return fmt.Sprintf("the zstd stream asks for a window over relocate's %d MiB decoder limit: recompress it without --long, or with --long=26 at most", maxZstdWindow>>20)
	}
	return fmt.Sprintf("corrupt %s data", e.c)
}

func (d *decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.wrap(err)
	}
	return n, err
}

func (d *decoder) wrap(err error) error {
	if me := d.m.failed.Load(); me != nil {
		return me
	}
	var me *mediumError
	if errors.As(err, &me) {
		return me
	}
	return &decodeError{c: d.c, err: err}
}

// pastEnd reports whether a decoding error came from what follows the
// compressed stream, once the stream itself ended and passed its checksum:
// the next frame or member header is not one.
func (d *decoder) pastEnd(err error) bool {
	var de *decodeError
	if !errors.As(err, &de) {
		return false
	}
	switch d.c {
	case Zstd:
		return errors.Is(de.err, zstd.ErrMagicMismatch)
	case Gzip:
		return errors.Is(de.err, gzip.ErrHeader)
	}
	return false
}

// counter counts the bytes of the tar stream read, which gives the offset
// of every entry's content, and keeps the first block (to tell a stream
// that is no tar at all) and the last (the raw header before content).
type counter struct {
	r        io.Reader
	n        int64
	first    [block]byte
	firstLen int
	tail     [block]byte
	tailLen  int
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	b := p[:n]
	if c.firstLen < block {
		c.firstLen += copy(c.first[c.firstLen:], b)
	}
	if len(b) >= block {
		c.tailLen = copy(c.tail[:], b[len(b)-block:])
	} else {
		keep := min(c.tailLen, block-len(b))
		copy(c.tail[:], c.tail[c.tailLen-keep:c.tailLen])
		c.tailLen = keep + copy(c.tail[keep:], b)
	}
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
	if err == nil && n != s.counter.n {
		s.counter.n = n
		s.counter.tailLen = 0 // the bytes kept no longer precede the position
	}
	return n, err
}
