package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// Content supplies what each entry of a plan holds: Data returns the bytes
// of an entry kept in memory (metadata) or nil; Fetch writes an entry that
// is not (a layer), checking it against its digest on the way.
type Content interface {
	Data(i int) []byte
	Fetch(ctx context.Context, i int, w io.Writer) error
}

// File is where WriteParallel writes: a regular file, or anything that
// takes writes at offsets and can be synced.
type File interface {
	io.WriterAt
	Sync() error
}

// WriteParallel writes an uncompressed archive: headers and metadata first,
// then layers fetched by jobs workers, each written straight to its
// precomputed offset, so the result equals a sequential write. The file is
// synced in the background while layers arrive, so that the disk works
// while the network does and the final sync has little left.
func WriteParallel(ctx context.Context, f File, plan *Plan, c Content, jobs int) error {
	if err := plan.WriteHeaders(f); err != nil {
		return err
	}
	flush := startFlusher(f)
	err := writeEntries(ctx, f, plan, c, jobs, flush)
	if ferr := flush.stop(); err == nil {
		err = ferr // a failed background sync fails the write
	}
	return err
}

func writeEntries(ctx context.Context, f File, plan *Plan, c Content, jobs int, flush *flusher) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(jobs, 1))
	for i, e := range plan.Entries {
		if data := c.Data(i); data != nil {
			if _, err := f.WriteAt(data, e.Offset); err != nil {
				return err
			}
			continue
		}
		eg.Go(func() error {
			if err := c.Fetch(ctx, i, io.NewOffsetWriter(f, e.Offset)); err != nil {
				return err
			}
			flush.wrote(e.Size)
			return nil
		})
	}
	return eg.Wait()
}

// WriteStream writes the archive sequentially, compressed as asked: for
// pipes and compressors.
func WriteStream(ctx context.Context, w io.Writer, comp Compression, plan *Plan, c Content) error {
	var closer io.Closer
	switch comp {
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return err
		}
		w, closer = zw, zw
	case Gzip:
		gw := gzip.NewWriter(w)
		w, closer = gw, gw
	case None:
	default:
		return fmt.Errorf("unknown compression %q (want zstd, gzip or none)", comp)
	}
	tw := NewWriter(w, plan)
	for i := range plan.Entries {
		if data := c.Data(i); data != nil {
			if err := tw.WriteNext(bytes.NewReader(data)); err != nil {
				return err
			}
			continue
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(c.Fetch(ctx, i, pw)) }()
		err := tw.WriteNext(pr)
		pr.CloseWithError(err)
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if closer != nil {
		return closer.Close()
	}
	return nil
}

// ParseCompression reads a compression name: zstd, gzip or none.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Zstd, Gzip, None:
		return c, nil
	}
	return "", fmt.Errorf("compression %q: want zstd, gzip or none", s)
}

// flusher syncs a file in the background while it is being written.
type flusher struct {
	kick chan struct{}
	done chan struct{}
	mu   sync.Mutex
	n    int64
	// err is the first failed sync: on Linux a write-back error is reported
	// to one fsync only, so the final sync may not see it again.
	err error
}

// flushEvery is how much new data starts a background sync.
const flushEvery = 64 << 20

func startFlusher(f interface{ Sync() error }) *flusher {
	fl := &flusher{kick: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		for range fl.kick {
			if fl.err != nil {
				continue
			}
			if err := f.Sync(); err != nil {
				fl.err = fmt.Errorf("syncing the archive: %w", err)
			}
		}
	}()
	return fl
}

func (fl *flusher) wrote(n int64) {
	fl.mu.Lock()
	fl.n += n
	due := fl.n >= flushEvery
	if due {
		fl.n = 0
	}
	fl.mu.Unlock()
	if due {
		select {
		case fl.kick <- struct{}{}:
		default: // a sync is already pending
		}
	}
}

// stop waits for the last sync and returns the first that failed.
func (fl *flusher) stop() error {
	close(fl.kick)
	<-fl.done
	return fl.err
}
