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
// pipes and compressors. A compressed archive is a sequence of frames (zstd
// frames, gzip members), which every decoder reads as one stream: one for
// the metadata at the start, one for each fetched entry (a layer), one for
// the end-of-archive marker. Frames are what lets a compressed export that
// was interrupted resume (see Partial): one that ended is never written
// again, and starting the next one needs no state of the compressor.
func WriteStream(ctx context.Context, w io.Writer, comp Compression, plan *Plan, c Content) error {
	return writeFrames(ctx, w, comp, plan, c, 0, nil)
}

// framer compresses one frame at a time into w.
type framer struct {
	w    io.Writer
	cur  io.Writer // the compressor of the open frame, or w
	zw   *zstd.Encoder
	gw   *gzip.Writer
	comp Compression
}

func newFramer(w io.Writer, comp Compression) (*framer, error) {
	f := &framer{w: w, cur: w, comp: comp}
	switch comp {
	case Zstd:
		// Every frame declares its window, small ones too (the encoder
		// would write a frame that fits one block as single-segment): a
		// reader holds every frame to the same window limit.
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithSingleSegment(false))
		if err != nil {
			return nil, err
		}
		f.zw = zw
	case Gzip:
		f.gw = gzip.NewWriter(nil)
	case None:
	default:
		return nil, fmt.Errorf("unknown compression %q (want zstd, gzip or none)", comp)
	}
	return f, nil
}

func (f *framer) begin() {
	switch {
	case f.zw != nil:
		f.zw.Reset(f.w)
		f.cur = f.zw
	case f.gw != nil:
		f.gw.Reset(f.w)
		f.cur = f.gw
	}
}

// end closes the frame: everything written so far is then in w.
func (f *framer) end() error {
	switch {
	case f.zw != nil:
		return f.zw.Close()
	case f.gw != nil:
		return f.gw.Close()
	}
	return nil
}

func (f *framer) Write(p []byte) (int, error) { return f.cur.Write(p) }

// frame is a run of entries that WriteStream compresses as one frame.
type frame struct{ first, last int }

// framesOf cuts a plan into frames: each entry that is fetched (a layer)
// alone, the runs of entries held in memory between them together.
func framesOf(plan *Plan, c Content) []frame {
	var out []frame
	for i := range plan.Entries {
		if c.Data(i) == nil || len(out) == 0 || c.Data(out[len(out)-1].last) == nil {
			out = append(out, frame{i, i})
			continue
		}
		out[len(out)-1].last = i
	}
	return out
}

// writeFrames writes plan's entries from entry from on (the first entry
// of a frame), then the end-of-archive marker in a frame of its own.
// frameEnd, if set, learns the last entry of each frame once the frame is
// in w.
func writeFrames(ctx context.Context, w io.Writer, comp Compression, plan *Plan, c Content, from int, frameEnd func(last int) error) error {
	f, err := newFramer(w, comp)
	if err != nil {
		return err
	}
	tw := NewWriter(f, plan)
	tw.next = from
	for _, fr := range framesOf(plan, c) {
		if fr.last < from {
			continue
		}
		if fr.first != from && fr.first < from {
			return fmt.Errorf("archive: entry %d is not the first of a frame", from)
		}
		f.begin()
		for i := fr.first; i <= fr.last; i++ {
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
		if err := f.end(); err != nil {
			return err
		}
		if frameEnd != nil {
			if err := frameEnd(fr.last); err != nil {
				return err
			}
		}
	}
	f.begin()
	if err := tw.Close(); err != nil {
		return err
	}
	return f.end()
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
