package relocate

import (
	"errors"

	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// IsRefused reports whether err is a verification refusal (bad or hostile
// content: integrity, structure, trust; a foreign layer relocate may not
// fetch) rather than an operational failure.
func IsRefused(err error) bool {
	var ve *verify.Error
	var ae *archive.Error
	var ie *layout.IntegrityError
	var fe *mirror.ForeignLayerError
	return errors.As(err, &ve) || errors.As(err, &ae) || errors.As(err, &ie) || errors.As(err, &fe)
}

// Progress receives progress of long operations. Implementations must be safe
// for concurrent use; a nil Progress is allowed everywhere.
type Progress interface {
	// Stage starts a named stage that will process total bytes.
	Stage(name string, total int64)
	// Add records n more bytes done in the current stage.
	Add(n int64)
	// Done ends the current stage.
	Done()
}

type noProgress struct{}

func (noProgress) Stage(string, int64) {}
func (noProgress) Add(int64)           {}
func (noProgress) Done()               {}

func progressOr(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}

// progressWriter counts bytes written into a Progress.
type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) { w.p.Add(int64(len(b))); return len(b), nil }

// Problems lists the problems of a refusal, naming what is at fault (nil
// when err is not a refusal).
func Problems(err error) []verify.Problem { return problemsOf(err) }

// problemsOf lists the problems of a refusal, naming what is at fault.
func problemsOf(err error) []verify.Problem {
	var ve *verify.Error
	var ae *archive.Error
	var ie *layout.IntegrityError
	switch {
	case errors.As(err, &ve):
		return ve.Problems
	case errors.As(err, &ae):
		return []verify.Problem{archiveProblem(ae)}
	case errors.As(err, &ie):
		return []verify.Problem{{Subject: ie.Where, Reason: "content does not match " + ie.Want.String() + " (got " + ie.Got + ")"}}
	}
	return nil
}

// archiveProblem is an archive refusal as a problem: the entry at fault
// (or the archive as a whole) and the reason, without the entry prefix.
func archiveProblem(ae *archive.Error) verify.Problem {
	p := verify.Problem{Subject: ae.Entry, Reason: ae.Reason}
	if p.Subject == "" {
		p.Subject = "archive"
	}
	if ae.Err != nil {
		p.Reason += ": " + ae.Err.Error()
	}
	return p
}
