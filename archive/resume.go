package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/layout"
	"golang.org/x/sync/errgroup"
)

// A resumable export writes the archive for NAME into a partial file
// beside it, .NAME.relocate-partial, and keeps a journal,
// .NAME.relocate-resume, of the entries that are complete in it and
// synced to disk. An export that dies (killed, network down, disk full)
// leaves both; the next export of the same plan checks every entry the
// journal lists against its digest, keeps those that match and writes only
// the rest, so that the archive is the same, byte for byte, as one written
// in a single run. Nothing is trusted without that check: the journal only
// says where to look.
//
// An uncompressed partial is written at the plan's offsets, so reused
// entries stay where they are. A compressed one is a sequence of frames
// (see WriteStream): the frames that check out are kept, the file is cut
// after the last of them, and writing goes on from the next entry.
//
// A partial of another plan (the source changed) is removed and the export
// starts over. Both files belong to the export of NAME: the partial is
// flock(2)ed while an export uses it, and they go away when the export
// completes, or when it fails before anything in them could be reused.
const (
	PartialSuffix = ".relocate-partial"
	JournalSuffix = ".relocate-resume"

	journalKind = "relocate-export-resume"
	// writerTag names how archives are cut into frames and compressed: a
	// partial written any other way is not resumed.
	writerTag = "frames-1"
)

// PartialPaths are the partial file and the journal of an archive written
// at path.
func PartialPaths(path string) (partial, journal string) {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+PartialSuffix), filepath.Join(dir, "."+base+JournalSuffix)
}

// PartialOptions say how a resumable archive is written.
type PartialOptions struct {
	Compression Compression
	// Key identifies the plan (what the archive will hold): a partial left
	// with another key is stale.
	Key  string
	Jobs int
	// Checked, if set, learns how many bytes of reused content were
	// checked against their digests, as they are.
	Checked func(n int64)
}

// Partial is an archive being written through a partial file.
type Partial struct {
	path, partial, journal string
	o                      PartialOptions
	plan                   *Plan
	c                      Content
	f                      *os.File // the partial, locked
	j                      *os.File // the journal, appended to
	jerr                   error    // the journal failed: no more records

	done   []bool // uncompressed: entries in place already
	from   int    // compressed: the entry to go on from
	cut    int64  // compressed: where the frames kept end
	reused int
	rbytes int64

	syncMu  sync.Mutex // one sync at a time: records go to the journal in order
	mu      sync.Mutex
	pending []record // complete, not yet known to be synced
	durable int      // records of layers in the journal
	closed  bool
}

type journalHeader struct {
	Kind        string      `json:"kind"`
	Output      string      `json:"output"`
	Plan        string      `json:"plan"`
	Compression Compression `json:"compression"`
	Writer      string      `json:"writer"`
	Size        int64       `json:"size"`
	Entries     int         `json:"entries"`
}

// record is one entry (uncompressed) or frame (compressed, by its last
// entry) complete in the partial, and where it ends there.
type record struct {
	Entry  int    `json:"entry"`
	Digest string `json:"digest,omitempty"`
	End    int64  `json:"end"`
}

// ErrPartialBusy is a partial another export is writing.
var ErrPartialBusy = errors.New("another export is writing this archive")

// OpenPartial prepares writing plan at path through its partial file:
// it resumes the partial an earlier run of the same plan left, after
// checking what its journal lists, or starts a new one.
func OpenPartial(ctx context.Context, path string, plan *Plan, c Content, o PartialOptions) (*Partial, error) {
	if _, err := newFramer(io.Discard, o.Compression); err != nil {
		return nil, err
	}
	p := &Partial{path: path, o: o, plan: plan, c: c, done: make([]bool, len(plan.Entries))}
	p.partial, p.journal = PartialPaths(path)
	f, err := os.OpenFile(p.partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// A file system without locks (some NFS mounts) only loses the guard
	// against two exports to one file at once.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s is locked)", path, ErrPartialBusy, p.partial)
	}
	p.f = f
	kept, err := p.resume(ctx)
	if err != nil {
		f.Close()
		return nil, err
	}
	if len(kept) == 0 {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := p.startJournal(kept); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

func (p *Partial) header() journalHeader {
	return journalHeader{Kind: journalKind, Output: filepath.Base(p.path), Plan: p.o.Key, Compression: p.o.Compression,
		Writer: writerTag, Size: p.plan.Size, Entries: len(p.plan.Entries)}
}

// readJournal reads a journal: its header, and the records that parse (a
// line torn by a crash or a full disk is skipped; what the records say is
// checked anyway).
func readJournal(path string) (*journalHeader, []record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var h *journalHeader
	var recs []record
	for sc.Scan() {
		if h == nil {
			h = &journalHeader{}
			if json.Unmarshal(sc.Bytes(), h) != nil {
				return nil, nil, nil
			}
			continue
		}
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			recs = append(recs, r)
		}
	}
	if sc.Err() != nil {
		return nil, nil, nil // an unreadable journal: start over
	}
	return h, recs, nil
}

// resume checks the partial against its journal and returns the records
// of what is kept.
func (p *Partial) resume(ctx context.Context) ([]record, error) {
	h, recs, err := readJournal(p.journal)
	if err != nil || h == nil || *h != p.header() || len(recs) == 0 {
		return nil, err
	}
	if p.o.Compression == None {
		return p.checkEntries(ctx, recs)
	}
	return p.checkFrames(ctx, recs)
}

func (p *Partial) progress() io.Writer {
	if p.o.Checked == nil {
		return io.Discard
	}
	return progressFunc(p.o.Checked)
}

type progressFunc func(int64)

func (f progressFunc) Write(b []byte) (int, error) { f(int64(len(b))); return len(b), nil }

// blobOf is the descriptor of a fetched entry, from its name.
func (p *Partial) blobOf(i int) (v1.Descriptor, bool) {
	if i < 0 || i >= len(p.plan.Entries) || p.c.Data(i) != nil {
		return v1.Descriptor{}, false
	}
	e := p.plan.Entries[i]
	d, ok := layout.ParseBlobPath(e.Name)
	return v1.Descriptor{Digest: d, Size: e.Size}, ok
}

// checkEntries re-hashes, at their offsets, the entries an uncompressed
// partial's journal lists.
func (p *Partial) checkEntries(ctx context.Context, recs []record) ([]record, error) {
	ok := make([]bool, len(recs))
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(p.o.Jobs, 1))
	seen := map[int]bool{}
	for k, r := range recs {
		desc, isBlob := p.blobOf(r.Entry)
		if !isBlob || seen[r.Entry] || desc.Digest.String() != r.Digest || r.End != p.plan.Entries[r.Entry].Offset+desc.Size {
			continue
		}
		seen[r.Entry] = true
		e := p.plan.Entries[r.Entry]
		eg.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			err := layout.CopyVerified(p.progress(), io.NewSectionReader(p.f, e.Offset, e.Size), desc, e.Name)
			ok[k] = err == nil
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	var kept []record
	for k, r := range recs {
		if ok[k] {
			kept = append(kept, r)
			p.done[r.Entry] = true
			p.reused++
			p.rbytes += p.plan.Entries[r.Entry].Size
		}
	}
	return kept, nil
}

// checkFrames decodes, each on its own, the frames a compressed partial's
// journal lists, compares them with what the plan says they hold (headers,
// metadata, layers by digest), and keeps the frames up to the first that
// does not check out; the file is cut there.
func (p *Partial) checkFrames(ctx context.Context, recs []record) ([]record, error) {
	frames := framesOf(p.plan, p.c)
	n := min(len(recs), len(frames))
	ok := make([]bool, n)
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(p.o.Jobs, 1))
	var start int64
	for k := 0; k < n; k++ {
		r, fr := recs[k], frames[k]
		if r.Entry != fr.last || r.End <= start {
			n = k // the frames that follow cannot be placed
			break
		}
		from := start
		eg.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			ok[k] = p.checkFrame(io.NewSectionReader(p.f, from, r.End-from), fr) == nil
			return nil
		})
		start = r.End
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	var kept []record
	for k := 0; k < n && ok[k]; k++ {
		kept = append(kept, recs[k])
		for i := frames[k].first; i <= frames[k].last; i++ {
			if p.c.Data(i) == nil {
				p.reused++
				p.rbytes += p.plan.Entries[i].Size
			}
		}
	}
	if len(kept) > 0 {
		last := kept[len(kept)-1]
		p.from, p.cut = last.Entry+1, last.End
		if err := p.f.Truncate(p.cut); err != nil {
			return nil, err
		}
	}
	return kept, nil
}

// checkFrame reads one frame alone and checks that it holds exactly the
// frame's entries as the plan lays them out.
func (p *Partial) checkFrame(r io.Reader, fr frame) error {
	var dec io.Reader
	switch p.o.Compression {
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		defer d.Close()
		dec = d
	case Gzip:
		g, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		dec = g
	default:
		return fmt.Errorf("compression %q", p.o.Compression)
	}
	br := bufio.NewReaderSize(dec, 256<<10)
	var zeros [block]byte
	for i := fr.first; i <= fr.last; i++ {
		e := p.plan.Entries[i]
		if err := expect(br, e.header); err != nil {
			return err
		}
		if data := p.c.Data(i); data != nil {
			if err := expect(br, data); err != nil {
				return err
			}
		} else {
			desc, ok := p.blobOf(i)
			if !ok {
				return fmt.Errorf("%s: not a blob", e.Name)
			}
			if err := layout.CopyVerified(p.progress(), io.LimitReader(br, e.Size), desc, e.Name); err != nil {
				return err
			}
		}
		if err := expect(br, zeros[:padding(e.Size)]); err != nil {
			return err
		}
	}
	// The frame ends here, its checksum verified by the decoder.
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return fmt.Errorf("frame of entries %d–%d holds more than they", fr.first, fr.last)
	}
	return nil
}

// expect reads len(want) bytes and compares them with want.
func expect(r io.Reader, want []byte) error {
	buf := make([]byte, min(len(want), 64<<10))
	for len(want) > 0 {
		n, err := io.ReadFull(r, buf[:min(len(buf), len(want))])
		if !bytes.Equal(buf[:n], want[:n]) {
			return errors.New("content differs from the plan")
		}
		if err != nil {
			return err
		}
		want = want[n:]
	}
	return nil
}

// startJournal writes the journal anew (its header and the records kept)
// and opens it for appending.
func (p *Partial) startJournal(kept []record) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.Encode(p.header())
	for _, r := range kept {
		enc.Encode(r)
	}
	tmp := p.journal + ".tmp"
	if err := writeSynced(tmp, b.Bytes()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p.journal); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(filepath.Dir(p.journal)); err != nil {
		return err
	}
	j, err := os.OpenFile(p.journal, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.j, p.durable = j, layers(kept)
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// complete records an entry or frame as complete in the partial; it goes
// to the journal once a sync has covered it.
func (p *Partial) complete(r record) {
	p.mu.Lock()
	p.pending = append(p.pending, r)
	p.mu.Unlock()
}

// Sync syncs the partial, then journals what was complete before it.
func (p *Partial) Sync() error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	recs := p.pending
	p.pending = nil
	p.mu.Unlock()
	if err := p.f.Sync(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jerr != nil {
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		enc.Encode(r)
	}
	// The journal only saves work: when it cannot be written (a full
	// disk), the export goes on without it.
	if _, err := p.j.Write(b.Bytes()); err != nil {
		p.jerr = err
		return nil
	}
	if err := p.j.Sync(); err != nil {
		p.jerr = err
		return nil
	}
	p.durable += layers(recs)
	return nil
}

// layers counts the records that hold a layer: what is worth keeping.
func layers(recs []record) int {
	n := 0
	for _, r := range recs {
		if r.Digest != "" {
			n++
		}
	}
	return n
}

// WriteAt writes into the partial.
func (p *Partial) WriteAt(b []byte, off int64) (int, error) { return p.f.WriteAt(b, off) }

// Reused is what was taken from an earlier run: entries and bytes.
func (p *Partial) Reused() (int, int64) { return p.reused, p.rbytes }

// journalEvery is how often the journal catches up while an export runs,
// besides the syncs every flushEvery bytes: on a slow link, what a kill
// loses is then seconds of transfer, not 64 MiB.
var journalEvery = time.Second

// Write writes what the partial lacks: in parallel at the plan's offsets
// when uncompressed, else frame after frame from the first one missing.
func (p *Partial) Write(ctx context.Context) error {
	stop := make(chan struct{})
	ticked := make(chan struct{})
	var tickErr error // a write-back error is reported to one fsync only: it fails the export
	go func() {
		defer close(ticked)
		t := time.NewTicker(journalEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				due := len(p.pending) > 0
				p.mu.Unlock()
				if due && tickErr == nil {
					if err := p.Sync(); err != nil {
						tickErr = fmt.Errorf("syncing the archive: %w", err)
					}
				}
			}
		}
	}()
	err := p.write(ctx)
	close(stop)
	<-ticked
	if err == nil {
		err = tickErr
	}
	return err
}

func (p *Partial) write(ctx context.Context) error {
	if p.o.Compression == None {
		return WriteParallel(ctx, p, p.plan, resumeContent{p}, p.o.Jobs)
	}
	if _, err := p.f.Seek(p.cut, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(p.f, 1<<20)
	cw := &countWriter{w: bw, n: p.cut}
	fl := startFlusher(p)
	last := p.cut
	err := writeFrames(ctx, cw, p.o.Compression, p.plan, p.c, p.from, func(lastEntry int) error {
		if err := bw.Flush(); err != nil {
			return err
		}
		r := record{Entry: lastEntry, End: cw.n}
		if d, ok := p.blobOf(lastEntry); ok {
			r.Digest = d.Digest.String()
		}
		p.complete(r)
		fl.wrote(cw.n - last)
		last = cw.n
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if ferr := fl.stop(); err == nil {
		err = ferr
	}
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// resumeContent skips the entries in place already and records those
// written.
type resumeContent struct{ p *Partial }

func (rc resumeContent) Data(i int) []byte { return rc.p.c.Data(i) }

func (rc resumeContent) Fetch(ctx context.Context, i int, w io.Writer) error {
	p := rc.p
	if p.done[i] {
		return nil
	}
	if err := p.c.Fetch(ctx, i, w); err != nil {
		return err
	}
	e := p.plan.Entries[i]
	r := record{Entry: i, End: e.Offset + e.Size}
	d, ok := p.blobOf(i)
	if !ok {
		return nil // not a blob: never reused
	}
	r.Digest = d.Digest.String()
	p.complete(r)
	return nil
}

// Commit publishes the archive at its path: synced, renamed into place,
// the directory synced; then the journal goes.
func (p *Partial) Commit() error {
	if p.closed {
		return fmt.Errorf("%s: already closed", p.path)
	}
	p.closed = true
	defer p.f.Close()
	defer p.j.Close()
	if err := p.f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(p.partial, p.path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(p.path)); err != nil {
		return err
	}
	os.Remove(p.journal)
	return nil
}

// Size is the partial's size.
func (p *Partial) Size() (int64, error) {
	st, err := p.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Kept describes a partial left for the next run.
type Kept struct {
	Partial, Journal string
	Layers           int // layers a rerun may reuse, once checked
}

// Abandon ends a run that failed: what is complete is synced and
// journaled, and the partial is kept for the next run if it holds
// anything that run could reuse; otherwise both files go. It is a no-op
// after Commit.
func (p *Partial) Abandon() *Kept {
	if p.closed {
		return nil
	}
	p.closed = true
	p.Sync() // best effort: what it cannot record is fetched again
	p.f.Close()
	p.j.Close()
	if p.durable == 0 {
		os.Remove(p.partial)
		os.Remove(p.journal)
		return nil
	}
	return &Kept{Partial: p.partial, Journal: p.journal, Layers: p.durable}
}

// RemovePartial removes what an interrupted export of path left, unless
// an export is writing it.
func RemovePartial(path string) error {
	partial, journal := PartialPaths(path)
	f, err := os.OpenFile(partial, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		os.Remove(journal)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s: %w (%s is locked)", path, ErrPartialBusy, partial)
	}
	os.Remove(journal)
	return os.Remove(partial)
}
