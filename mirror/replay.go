package mirror

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Replay lets content that can be read only once (a streamed archive) be
// read again from its start, as an upload that starts over must: what has
// been read is kept in a temporary file, as large as the content at most.
// If the file cannot be written the content can still be read once.
type Replay struct {
	mu       sync.Mutex
	src      io.Reader
	spool    *os.File
	spooled  int64 // bytes kept in the spool
	consumed int64 // bytes read from src
	spoolErr error
	gen      int
}

// NewReplay wraps src; Close removes what it kept.
func NewReplay(src io.Reader) *Replay { return &Replay{src: src} }

// Open returns a reader of the content from its start. A reader opened
// earlier stops working.
func (r *Replay) Open() (io.Reader, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.consumed > r.spooled {
		return nil, fmt.Errorf("cannot read the content again: keeping a copy failed: %w", r.spoolErr)
	}
	r.gen++
	return &replayReader{r: r, gen: r.gen}, nil
}

// Close removes the copy.
func (r *Replay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	if r.spool == nil {
		return nil
	}
	r.spool.Close()
	err := os.Remove(r.spool.Name())
	r.spool = nil
	return err
}

var errSuperseded = errors.New("superseded by a new read from the start")

type replayReader struct {
	r   *Replay
	gen int
	off int64
}

func (rr *replayReader) Read(p []byte) (int, error) {
	r := rr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr.gen != r.gen {
		return 0, errSuperseded
	}
	if rr.off < r.spooled {
		n, err := r.spool.ReadAt(p[:min(int64(len(p)), r.spooled-rr.off)], rr.off)
		rr.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	n, err := r.src.Read(p)
	if n > 0 {
		r.consumed += int64(n)
		rr.off += int64(n)
		r.keep(p[:n])
	}
	return n, err
}

func (r *Replay) keep(p []byte) {
	if r.spoolErr != nil {
		return
	}
	if r.spool == nil {
		if r.spool, r.spoolErr = os.CreateTemp("", "relocate-replay-"); r.spoolErr != nil {
			r.spool = nil
			return
		}
	}
	if _, err := r.spool.WriteAt(p, r.spooled); err != nil {
		r.spoolErr = err
		return
	}
	r.spooled += int64(len(p))
}
