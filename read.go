package relocate

import (
	"errors"
	"io"

	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/verify"
)

// source is an archive being read, as package archive reads it, and the
// problems found in it so far.
type source struct {
	*archive.Layout
	ps   *verify.Problems
	vols *volumeInput // a volume set read as one archive
	// sel is what an import selected (select.go); nil means everything.
	sel *selection
}

// openArchive opens path ("-" for in; a path may name a volume set) and
// reads everything before the first layer (see archive.OpenLayout). A
// refusal carries every problem found before it.
func openArchive(path string, in io.Reader, vo VolumeOptions) (*source, error) {
	s := &source{ps: &verify.Problems{}}
	var l *archive.Layout
	var err error
	if path != "-" {
		s.vols, err = openVolumes(path, vo)
	}
	switch {
	case err != nil:
		return nil, err
	case s.vols != nil:
		l, err = archive.ReadLayout(s.vols.r, s.vols, s.ps)
	default:
		l, err = archive.OpenLayout(path, in, s.ps)
	}
	if err != nil {
		return nil, s.streamErr(err)
	}
	s.Layout = l
	return s, nil
}

// nextLayer returns the next layer entry of a streamed archive, or io.EOF.
func (s *source) nextLayer() (*archive.Entry, layout.Blob, error) {
	e, b, err := s.NextLayer()
	return e, b, s.streamErr(err)
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
	var ie *layout.IntegrityError
	if errors.As(err, &ie) {
		return ie.Reason()
	}
	var ae *archive.Error
	if errors.As(err, &ae) {
		return archiveProblem(ae).Reason
	}
	return err.Error()
}
