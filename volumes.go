package relocate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/verify"
)

// Volume sets: an archive cut to fit the media (export --volume-size), read
// back as one archive by verify, import and inspect, each volume checked
// against the set's index; see archive.VolumeWriter and docs/format.md.

// VolumeOptions say where a volume set's index is and what it must be.
type VolumeOptions struct {
	// Index is the index file, when it is not next to the volumes
	// (NAME-volumes.json beside NAME.001).
	Index string
	// IndexDigest, "sha256:<hex>", is the index's digest as the export
	// reported it, carried apart: an index with another is refused.
	IndexDigest string
	// Single checks only the volume named, even the first (verify).
	Single bool
}

// VolumesReport describes a volume set written or read.
type VolumesReport struct {
	Index       string `json:"index"`       // the index file
	IndexDigest string `json:"indexDigest"` // its sha256: carry it apart to check the index
	Count       int    `json:"count"`
	VolumeSize  int64  `json:"volumeSize"`
	// Archive is the whole archive: size, sha256 (of `cat NAME.*`),
	// compression, table of contents.
	Archive VolumeArchive `json:"archive"`
	Volumes []Volume      `json:"volumes,omitempty"`
	// Only is the one volume verify checked (verify NAME.NNN); the
	// archive's content was not read.
	Only int `json:"only,omitempty"`
	// First is the set's first volume, as found (what to verify to check
	// the archive's content).
	First string `json:"first"`
}

// The parts of a volume index that reports name.
type (
	// VolumeArchive is the whole archive a volume set makes up.
	VolumeArchive = archive.VolumeArchive
	// Volume is one volume: its file name, offset, size and sha256.
	Volume = archive.Volume
)

// ParseSize reads a volume size: bytes, or a number with KB, MB, GB, TB
// (decimal) or KiB, MiB, GiB, TiB (binary).
func ParseSize(s string) (int64, error) { return archive.ParseSize(s) }

// checkVolumeOptions refuses a volume size where volumes cannot be written.
func checkVolumeOptions(o ExportOptions) error {
	switch {
	case o.VolumeSize < 0:
		return fmt.Errorf("%w: volume size %d", ErrUsage, o.VolumeSize)
	case o.VolumeSize > 0 && o.Output == "-":
		return fmt.Errorf("%w: volumes are files: --volume-size needs -o FILE, not -o -", ErrUsage)
	}
	return nil
}

// exportVolumes writes the planned archive as a volume set at o.Output:
// in parallel at offsets when uncompressed, else as one compressed stream
// cut into volumes, so that the volumes concatenated are, byte for byte,
// the archive an unsplit export writes.
func exportVolumes(ctx context.Context, o ExportOptions, rep *ExportReport, plan *archive.Plan, c archive.Content, tocJSON []byte) error {
	w, err := archive.CreateVolumes(o.Output, o.VolumeSize)
	if err != nil {
		return err
	}
	defer w.Abort()
	if o.Compression == archive.None {
		err = archive.WriteParallel(ctx, w, plan, c, o.Jobs)
	} else {
		err = archive.WriteStream(ctx, w, o.Compression, plan, c)
	}
	if err != nil {
		return err
	}
	ix, digest, err := w.Commit(archive.VolumeArchive{Compression: o.Compression, TOC: fmt.Sprintf("sha256:%x", sha256.Sum256(tocJSON))})
	if err != nil {
		return fmt.Errorf("writing the volumes of %s: %w", o.Output, err)
	}
	rep.ArchiveSize = ix.Archive.Size
	rep.Volumes = &VolumesReport{Index: archive.IndexPath(o.Output), IndexDigest: digest, Count: len(ix.Volumes), VolumeSize: ix.VolumeSize,
		Archive: ix.Archive, Volumes: ix.Volumes, First: filepath.Join(filepath.Dir(o.Output), ix.Volumes[0].Name)}
	return nil
}

// volumeRef is a volume set an archive argument names: its index, and the
// volume named (0 for the index itself).
type volumeRef struct {
	set         *archive.VolumeSet
	indexPath   string
	indexDigest string
	number      int
	path        string
}

// findVolumes works out whether path names a volume set: its index
// (NAME-volumes.json, or any path with opts.Index), one of its volumes
// (NAME.NNN, the index next to it unless opts.Index says where), or NAME
// itself when only the set is there. It returns nil for anything else,
// an archive in one file.
func findVolumes(path string, o VolumeOptions) (*volumeRef, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ref := &volumeRef{path: path, indexPath: o.Index}
	var stem string
	if vb, n, ok := archive.SplitVolumeName(base); ok {
		stem, ref.number = vb, n
		if ref.indexPath == "" {
			ref.indexPath = filepath.Join(dir, vb+archive.VolumeIndexSuffix)
			if _, err := os.Stat(ref.indexPath); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s looks like volume %d of a volume set, but its index %s is not next to it: give --volume-index FILE (or, if %s is a whole archive, rename it)", path, n, ref.indexPath, base)
			}
		}
	} else if s, ok := strings.CutSuffix(base, archive.VolumeIndexSuffix); ok && s != "" {
		stem, ref.indexPath = s, path
	} else if ref.indexPath != "" {
		stem = base // the set's name: NAME.NNN in NAME's directory
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// NAME given for a set NAME.001, … with its index.
		ref.indexPath = path + archive.VolumeIndexSuffix
		if _, err := os.Stat(ref.indexPath); err != nil {
			return nil, nil
		}
		stem = base
	} else {
		return nil, nil
	}
	raw, err := readIndex(ref.indexPath)
	if err != nil {
		return nil, err
	}
	ref.indexDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	if o.IndexDigest != "" && o.IndexDigest != ref.indexDigest {
		return nil, verify.Refuse("volume index "+ref.indexPath, "%s is not the digest given (%s): not the index the export wrote", ref.indexDigest, o.IndexDigest)
	}
	ix, err := archive.ParseVolumeIndex(ref.indexPath, raw)
	if err != nil {
		return nil, volumeRefusal(err)
	}
	ref.set = archive.OpenVolumes(ix, dir, stem)
	if n := ref.number; n > 0 && (n > ref.set.Count() || base != ref.set.Name(n)) {
		return nil, verify.Refuse(base, "not a volume of the set %s describes (%d volumes, %s to %s): left from an earlier export?", ref.indexPath, ref.set.Count(), ref.set.Name(1), ref.set.Name(ref.set.Count()))
	}
	return ref, nil
}

// notASet refuses volume options given for an archive in one file: the
// user meant a set.
func notASet(path string, o VolumeOptions) error {
	switch {
	case o.IndexDigest != "":
		return fmt.Errorf("%w: --volume-index-digest given, but %s is not a volume set (no %s beside it)", ErrUsage, path, archive.IndexPath(path))
	case o.Single:
		return fmt.Errorf("%w: --single-volume given, but %s is not a volume of a set", ErrUsage, path)
	}
	return nil
}

// readIndex reads an index file, bounded: it comes from the media.
func readIndex(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the volume index: %w", err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 8<<20)) // ParseVolumeIndex refuses what is over its own limit
}

// volumeRefusal is a volume error as a refusal naming the volume.
func volumeRefusal(err error) error {
	var ve *archive.VolumeError
	if errors.As(err, &ve) {
		return verify.Refuse(ve.Subject(), "%s", ve.Reason)
	}
	return err
}

func (v *volumeRef) report() *VolumesReport {
	ix := v.set.Index
	return &VolumesReport{Index: v.indexPath, IndexDigest: v.indexDigest, Count: len(ix.Volumes), VolumeSize: ix.VolumeSize, Archive: ix.Archive,
		First: v.set.Path(1)}
}

// openVolumes opens the volume set an archive argument names, as one
// archive: at offsets when uncompressed (so layers are read in parallel),
// else as a stream that hashes each volume on the way. It returns nil when
// the argument names an archive in one file.
func openVolumes(path string, o VolumeOptions) (*volumeInput, error) {
	v, err := findVolumes(path, o)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, notASet(path, o)
	}
	if v.number > 1 || o.Single {
		return nil, fmt.Errorf("%w: %s is volume %d of %d: the archive is read from all its volumes: give the first (%s) or the index (%s)", ErrUsage, path, v.number, v.set.Count(), v.set.Name(1), v.indexPath)
	}
	bad, err := v.set.Stat()
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, volumeProblems(bad)
	}
	comp, err := v.set.Compression()
	if err != nil {
		return nil, err
	}
	in := &volumeInput{volumeRef: v}
	if comp == archive.None {
		in.r = io.NewSectionReader(v.set, 0, v.set.Size())
	} else {
		in.stream = v.set.Stream()
		in.r = in.stream
	}
	return in, nil
}

// volumeProblems is a refusal naming each bad volume.
func volumeProblems(bad []*archive.VolumeError) error {
	var ps verify.Problems
	for _, b := range bad {
		ps.Add(b.Subject(), "%s", b.Reason)
	}
	return ps.Err()
}

// volumeInput is a volume set being read as an archive.
type volumeInput struct {
	*volumeRef
	r      io.Reader             // the archive
	stream *archive.VolumeStream // nil when read at offsets

	once   sync.Once
	bad    []*archive.VolumeError
	err    error
	mu     sync.Mutex
	cancel context.CancelFunc
	closed bool
	// diagnosed: a refusal was traced to the volumes already.
	diagnosed bool
}

// verdict checks every volume against the index, once: what the stream
// hashed on the way, after reading what is left of it; or, read at
// offsets, a pass over every volume.
func (in *volumeInput) verdict(ctx context.Context, jobs int) ([]*archive.VolumeError, error) {
	in.once.Do(func() {
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			in.err = os.ErrClosed
			return
		}
		ctx, in.cancel = context.WithCancel(ctx)
		defer in.cancel()
		in.mu.Unlock()
		if in.stream != nil {
			in.bad, in.err = in.stream.Finish(ctx)
		} else {
			in.bad, in.err = in.set.Check(ctx, jobs)
		}
	})
	return in.bad, in.err
}

// Close stops a check under way and closes the volumes.
func (in *volumeInput) Close() error {
	in.mu.Lock()
	in.closed = true
	if in.cancel != nil {
		in.cancel()
	}
	in.mu.Unlock()
	return in.set.Close()
}

// checkVolumes starts checking the volumes of a set read at offsets while
// the layers are read (a stream checks them as it is read), and returns
// what waits for the verdict: nil, a refusal naming every bad volume (also
// recorded in s.ps), or an I/O error. Nothing for an archive in one file.
func (s *source) checkVolumes(ctx context.Context, jobs int) func() error {
	in := s.vols
	if in == nil {
		return func() error { return nil }
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if in.stream == nil {
			// Hashing is the work: more readers than CPUs only make a
			// disc seek.
			in.verdict(ctx, min(jobs, runtime.NumCPU()))
		}
	}()
	return func() error {
		<-done
		bad, err := in.verdict(ctx, jobs)
		if err != nil {
			return fmt.Errorf("checking the volumes: %w", err)
		}
		for _, b := range bad {
			if p := (verify.Problem{Subject: b.Subject(), Reason: b.Reason}); !s.ps.Has(p) {
				s.ps.Add(p.Subject, "%s", p.Reason)
			}
		}
		if len(bad) > 0 {
			return s.ps.Err()
		}
		return nil
	}
}

// diagnoseVolumes names the bad volumes behind a refusal of a set (a
// swapped first volume is no tar at all; a corrupt one breaks a header):
// the volume is what the operator replaces. It checks every volume,
// afresh: the stream may be stuck part way. The refusal is returned as it
// was when every volume matches.
func (s *source) diagnoseVolumes(err error) error {
	if s.vols == nil || s.vols.diagnosed || !IsRefused(err) {
		return err
	}
	s.vols.diagnosed = true // once is enough
	bad, cerr := s.vols.set.Check(context.Background(), runtime.NumCPU())
	if cerr != nil || len(bad) == 0 {
		return err
	}
	for _, p := range append(problemsOf(volumeProblems(bad)), problemsOf(err)...) {
		if !s.ps.Has(p) {
			s.ps.Add(p.Subject, "%s", p.Reason)
		}
	}
	return s.ps.Err()
}

// verifyOneVolume checks the volume an argument names, alone, against
// its set's index (size and sha256): at the copy station, one disc at a
// time. ok is false when the argument names a whole archive or set.
func verifyOneVolume(ctx context.Context, o VerifyOptions) (rep *VerifyReport, err error, ok bool) {
	if o.Archive == "-" {
		return nil, nil, false
	}
	v, err := findVolumes(o.Archive, o.Volumes)
	if err != nil {
		return refusedVerify(o.Archive, err), err, true
	}
	if v == nil || v.number == 0 || v.number == 1 && !o.Volumes.Single {
		if o.Volumes.Single && v != nil {
			err = fmt.Errorf("%w: --single-volume checks one volume: give it (%s, …), not the index", ErrUsage, v.set.Name(1))
			return nil, err, true
		}
		return nil, nil, false
	}
	bad, err := v.set.CheckVolume(ctx, v.number, o.Archive)
	if err != nil {
		return nil, err, true
	}
	rep = &VerifyReport{Archive: o.Archive, Verdict: "ok", Volumes: v.report()}
	rep.Volumes.Only = v.number
	rep.Volumes.Volumes = []archive.Volume{v.set.Index.Volumes[v.number-1]}
	if bad != nil {
		err = volumeProblems([]*archive.VolumeError{bad})
		rep.Verdict, rep.Problems = "refused", problemsOf(err)
	}
	return rep, err, true
}
