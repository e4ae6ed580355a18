package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"time"
)

const block = 512

// epoch is the fixed modification time of every entry: archives must not
// depend on when they were made.
var epoch = time.Unix(0, 0).UTC()

// Header returns the tar header bytes for a regular file of the given size,
// with fixed owner, mode and time. It is a USTAR header unless the size needs PAX.
func Header(name string, size int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(header(name, size)); err != nil {
		return nil, fmt.Errorf("tar header for %s: %w", name, err)
	}
	// The header is written eagerly; Flush would demand the content.
	return buf.Bytes(), nil
}

func header(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
}

// padding is the number of zero bytes that follow content of this size.
func padding(size int64) int64 { return (block - size%block) % block }

// trailer is the end-of-archive marker: two zero blocks.
const trailer = 2 * block

// Entry is one file of a planned archive.
type Entry struct {
	Name string
	Size int64
	// Offset of the first content byte in the uncompressed tar stream.
	Offset int64
	header []byte
}

// Plan is the byte layout of a whole archive, known before any content is
// fetched, so that content can be written at its offset by parallel workers.
type Plan struct {
	Entries []Entry
	Size    int64
}

// NewPlan lays out entries in the given order.
func NewPlan(names []string, sizes []int64) (*Plan, error) {
	p := &Plan{Entries: make([]Entry, len(names))}
	var off int64
	for i, n := range names {
		h, err := Header(n, sizes[i])
		if err != nil {
			return nil, err
		}
		off += int64(len(h))
		p.Entries[i] = Entry{Name: n, Size: sizes[i], Offset: off, header: h}
		off += sizes[i] + padding(sizes[i])
	}
	p.Size = off + trailer
	return p, nil
}

// WriteHeaders writes every header, and the zero padding after every entry,
// at its offset. Content is written separately, at Entry.Offset.
func (p *Plan) WriteHeaders(w io.WriterAt) error {
	var zeros [block]byte
	for _, e := range p.Entries {
		if _, err := w.WriteAt(e.header, e.Offset-int64(len(e.header))); err != nil {
			return err
		}
		if pad := padding(e.Size); pad > 0 {
			if _, err := w.WriteAt(zeros[:pad], e.Offset+e.Size); err != nil {
				return err
			}
		}
	}
	// The trailer: writing its last byte extends the file; the rest is a hole of zeros.
	_, err := w.WriteAt([]byte{0}, p.Size-1)
	return err
}

// Writer writes a planned archive sequentially, for pipes and compressors.
type Writer struct {
	w    io.Writer
	plan *Plan
	next int
}

// NewWriter writes plan's entries to w in order.
func NewWriter(w io.Writer, plan *Plan) *Writer { return &Writer{w: w, plan: plan} }

// WriteNext writes the next planned entry, copying exactly its size from r.
func (tw *Writer) WriteNext(r io.Reader) error {
	if tw.next >= len(tw.plan.Entries) {
		return fmt.Errorf("archive: more entries than planned")
	}
	e := tw.plan.Entries[tw.next]
	tw.next++
	if _, err := tw.w.Write(e.header); err != nil {
		return err
	}
	n, err := io.Copy(tw.w, io.LimitReader(r, e.Size))
	if err != nil {
		return err
	}
	if n != e.Size {
		return fmt.Errorf("archive: %s: wrote %d of %d bytes", e.Name, n, e.Size)
	}
	_, err = tw.w.Write(make([]byte, padding(e.Size)))
	return err
}

// Close writes the end-of-archive marker after checking every entry was written.
func (tw *Writer) Close() error {
	if tw.next != len(tw.plan.Entries) {
		return fmt.Errorf("archive: %d of %d entries written", tw.next, len(tw.plan.Entries))
	}
	_, err := tw.w.Write(make([]byte, trailer))
	return err
}
