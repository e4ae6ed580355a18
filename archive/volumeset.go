package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
)

// VolumeSet reads the volumes an index lists as one archive: as a stream
// (Stream, hashing each volume on the way) or at offsets (ReadAt, for an
// uncompressed archive read in parallel). Only the volumes listed are
// ever opened: a stale NAME.004 of an earlier, longer export is not read.
type VolumeSet struct {
	Index *VolumeIndex
	dir   string
	stem  string // the volumes are stem.NNN in dir

	mu    sync.Mutex
	files []*os.File // opened on first use
}

// OpenVolumes reads the set ix describes from the files stem.001, … in dir
// (stem is the archive's name unless the set was renamed). Nothing is
// opened yet: Stat says what is missing.
func OpenVolumes(ix *VolumeIndex, dir, stem string) *VolumeSet {
	return &VolumeSet{Index: ix, dir: dir, stem: stem, files: make([]*os.File, len(ix.Volumes))}
}

// Count is the number of volumes.
func (s *VolumeSet) Count() int { return len(s.Index.Volumes) }

// Name is the file name of volume i (1-based).
func (s *VolumeSet) Name(i int) string { return VolumeName(s.stem, i, s.Count()) }

// Path is the file of volume i (1-based).
func (s *VolumeSet) Path(i int) string { return filepath.Join(s.dir, s.Name(i)) }

// Size is the archive's size.
func (s *VolumeSet) Size() int64 { return s.Index.Archive.Size }

func (s *VolumeSet) fail(i int, format string, args ...any) *VolumeError {
	return &VolumeError{Volume: i, Of: s.Count(), Name: s.Name(i), Reason: fmt.Sprintf(format, args...)}
}

// Stat checks that every volume is there with the size the index gives,
// before anything is read: one missing or cut short is named at once. The
// error is an I/O failure other than absence.
func (s *VolumeSet) Stat() ([]*VolumeError, error) {
	var bad []*VolumeError
	for i, v := range s.Index.Volumes {
		st, err := os.Stat(s.Path(i + 1))
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad = append(bad, s.fail(i+1, "missing (no %s in %s)", s.Name(i+1), s.dir))
		case err != nil:
			return nil, err
		case !st.Mode().IsRegular():
			bad = append(bad, s.fail(i+1, "not a regular file"))
		case st.Size() != v.Size:
			bad = append(bad, s.fail(i+1, "%d bytes, the index says %d: cut short, or not this volume", st.Size(), v.Size))
		}
	}
	return bad, nil
}

func (s *VolumeSet) open(k int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		return nil, os.ErrClosed
	}
	if s.files[k] == nil {
		f, err := os.Open(s.Path(k + 1))
		if err != nil {
			return nil, err
		}
		s.files[k] = f
	}
	return s.files[k], nil
}

// Close closes every volume opened.
func (s *VolumeSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f != nil {
			f.Close()
		}
	}
	s.files = nil
	return nil
}

// ReadAt reads the archive's bytes at off, across volumes; it is safe for
// concurrent use. A volume shorter than the index says reads as the end
// of the archive cut short (io.ErrUnexpectedEOF).
func (s *VolumeSet) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("volumes: negative offset %d", off)
	}
	vs := s.Index.Volumes
	read := 0
	for len(p) > 0 {
		if off >= s.Size() {
			return read, io.EOF
		}
		k := sort.Search(len(vs), func(i int) bool { return vs[i].Offset+vs[i].Size > off })
		v := vs[k]
		f, err := s.open(k)
		if err != nil {
			return read, err
		}
		want := int(min(int64(len(p)), v.Offset+v.Size-off))
		n, err := f.ReadAt(p[:want], off-v.Offset)
		read, p, off = read+n, p[n:], off+int64(n)
		if err == io.EOF && n < want {
			return read, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return read, err
		}
	}
	return read, nil
}

// Compression detects how the archive is compressed from its first bytes.
func (s *VolumeSet) Compression() (Compression, error) {
	var magic [4]byte
	n, err := s.ReadAt(magic[:], 0)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", err
	}
	return detect(magic[:n]), nil
}

// mismatch is the reason a volume's content fails its index entry,
// telling a swapped or misnamed volume (whose digest the index gives to
// another) from a corrupt one.
func (s *VolumeSet) mismatch(i int, got string) *VolumeError {
	want := s.Index.Volumes[i-1].Digest
	e := s.fail(i, "sha256 %s does not match the index (sha256 %s)", hexOf(got), hexOf(want))
	for j, v := range s.Index.Volumes {
		if j+1 != i && v.Digest == got {
			e.Reason += fmt.Sprintf(": it holds the bytes of volume %d (%s), so volumes are swapped or misnamed", j+1, s.Name(j+1))
			return e
		}
	}
	e.Reason += ": the volume is corrupt, or of another export"
	return e
}

func hexOf(d string) string { return d[len("sha256:"):] }

// CheckVolume checks volume i (1-based) alone against the index: its size
// and its sha256. path is where it is (a single volume may have been
// copied anywhere). It returns nil when the volume is good; the error is
// an I/O failure.
func (s *VolumeSet) CheckVolume(ctx context.Context, i int, path string) (*VolumeError, error) {
	v := s.Index.Volumes[i-1]
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return s.fail(i, "missing (no %s)", path), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != v.Size {
		return s.fail(i, "%d bytes, the index says %d: cut short, or not this volume", st.Size(), v.Size), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, io.NewSectionReader(f, 0, v.Size)}); err != nil {
		return nil, err
	}
	if got := digestOf(h); got != v.Digest {
		return s.mismatch(i, got), nil
	}
	return nil, nil
}

// Check hashes every volume, jobs at a time, and names each that does not
// match the index (it stats them first: a missing one is named without
// reading the rest).
func (s *VolumeSet) Check(ctx context.Context, jobs int) ([]*VolumeError, error) {
	bad, err := s.Stat()
	if err != nil || len(bad) > 0 {
		return bad, err
	}
	var mu sync.Mutex
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(jobs, 1))
	for i := range s.Index.Volumes {
		eg.Go(func() error {
			e, err := s.CheckVolume(ctx, i+1, s.Path(i+1))
			if e != nil {
				mu.Lock()
				bad = append(bad, e)
				mu.Unlock()
			}
			return err
		})
	}
	err = eg.Wait()
	sort.Slice(bad, func(i, j int) bool { return bad[i].Volume < bad[j].Volume })
	return bad, err
}

// ctxReader stops a long read when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Stream reads the set from its start, in order, hashing each volume as
// it goes: reading it through checks every volume once, with no second
// pass. A mismatch does not stop the stream (the reader above names the
// damage it meets in the content too); Finish reports it.
func (s *VolumeSet) Stream() *VolumeStream {
	return &VolumeStream{s: s, h: sha256.New()}
}

// VolumeStream is a VolumeSet read in order. It is safe for concurrent
// use, as a decompressor reading ahead in a goroutine of its own may use
// it while Finish reads what is left.
type VolumeStream struct {
	mu  sync.Mutex
	s   *VolumeSet
	k   int   // the volume being read
	in  int64 // bytes of it read
	h   hash.Hash
	bad []*VolumeError
}

func (r *VolumeStream) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.s.Index.Volumes
	for r.k < len(vs) && r.in == vs[r.k].Size {
		r.next()
	}
	if r.k == len(vs) {
		return 0, io.EOF
	}
	f, err := r.s.open(r.k)
	if err != nil {
		return 0, err
	}
	p = p[:min(int64(len(p)), vs[r.k].Size-r.in)]
	n, err := f.ReadAt(p, r.in)
	r.h.Write(p[:n])
	r.in += int64(n)
	if err == io.EOF {
		if r.in < vs[r.k].Size {
			return n, io.ErrUnexpectedEOF // shortened since Stat
		}
		err = nil
	}
	return n, err
}

// next closes the hash of the volume read through and moves on.
func (r *VolumeStream) next() {
	if got := digestOf(r.h); got != r.s.Index.Volumes[r.k].Digest {
		r.bad = append(r.bad, r.s.mismatch(r.k+1, got))
	}
	r.h.Reset()
	r.k, r.in = r.k+1, 0
}

// Finish reads what the reader above left (the end of the last volume
// after the end-of-archive marker, or every volume after a failure) and
// names each volume that did not match the index.
func (r *VolumeStream) Finish(ctx context.Context) ([]*VolumeError, error) {
	_, err := io.Copy(io.Discard, ctxReader{ctx, r})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad, err
}
