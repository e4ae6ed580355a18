package verify

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Problem is one reason to refuse, naming what is at fault: an archive entry,
// a digest or a reference.
type Problem struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
}

func (p Problem) String() string { return p.Subject + ": " + p.Reason }

// Error is a verification refusal: the content is bad or hostile, as opposed
// to an operational failure.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "verification failed: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verification failed (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Refuse is a one-problem Error.
func Refuse(subject, format string, args ...any) *Error {
	return &Error{Problems: []Problem{{Subject: subject, Reason: fmt.Sprintf(format, args...)}}}
}

// Problems collects findings from concurrent checks.
type Problems struct {
	mu   sync.Mutex
	list []Problem
}

// Add records a problem.
func (ps *Problems) Add(subject, format string, args ...any) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, Problem{Subject: subject, Reason: fmt.Sprintf(format, args...)})
}

// Has reports whether this very problem was recorded already.
func (ps *Problems) Has(p Problem) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, q := range ps.list {
		if q == p {
			return true
		}
	}
	return false
}

// Len is the number of problems so far.
func (ps *Problems) Len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.list)
}

// List returns the problems in a stable order.
func (ps *Problems) List() []Problem {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := append([]Problem(nil), ps.list...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out
}

// Err returns nil when there is no problem, else an *Error listing them all.
func (ps *Problems) Err() error {
	if ps.Len() == 0 {
		return nil
	}
	return &Error{Problems: ps.List()}
}
