package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// A volume set is one archive cut into files NAME.001, NAME.002, … of at
// most a fixed size, so that it fits the media, and an index
// NAME-volumes.json naming the bytes each holds and their sha256. The
// index's name does not match NAME.*: `cat NAME.* > NAME` (or `| relocate
// import -`) reassembles the archive from the volumes alone.

const (
	// VolumeIndexMediaType identifies a volume index.
	VolumeIndexMediaType = "application/vnd.relocate.volumes.v1+json"
	// VolumeIndexSuffix follows the archive's name in the index's.
	VolumeIndexSuffix = "-volumes.json"
	// MaxVolumes bounds a set: four digits at most, and files a reader
	// may have open.
	MaxVolumes = 9999
	// maxIndexSize bounds what a reader takes in as an index: 9,999
	// volumes take about 1.5 MiB.
	maxIndexSize = 4 << 20
	minWidth     = 3
)

// VolumeIndex describes a volume set.
type VolumeIndex struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	// Archive is the whole archive the volumes make up, end to end.
	Archive VolumeArchive `json:"archive"`
	// VolumeSize is the size asked for: every volume but the last has it.
	VolumeSize int64    `json:"volumeSize"`
	Volumes    []Volume `json:"volumes"`
}

// VolumeArchive is the archive a set makes up.
type VolumeArchive struct {
	Name        string      `json:"name"` // file name without directory
	Size        int64       `json:"size"`
	Digest      string      `json:"digest"` // sha256:<hex> of the whole archive
	Compression Compression `json:"compression"`
	// TOC is the digest of the archive's relocate-toc.json: what it
	// carries, without reading a volume.
	TOC string `json:"toc,omitempty"`
}

// Volume is one file of a set: the archive's bytes [Offset, Offset+Size).
type Volume struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"` // sha256:<hex>
}

// IndexPath is where the index of a set written at archive path goes.
func IndexPath(archivePath string) string { return archivePath + VolumeIndexSuffix }

// VolumeName is the file name of volume i (1-based) of count, of the
// archive named base: base.001, or base.0001 when a set needs four digits,
// so that the names sort in order.
func VolumeName(base string, i, count int) string {
	return fmt.Sprintf("%s.%0*d", base, width(count), i)
}

func width(count int) int { return max(minWidth, len(strconv.Itoa(count))) }

var volumeSuffix = regexp.MustCompile(`^(.+)\.([0-9]{3,})$`)

// SplitVolumeName parses a file name NAME.NNN into NAME and the volume
// number; ok is false for any other name.
func SplitVolumeName(name string) (base string, n int, ok bool) {
	m := volumeSuffix.FindStringSubmatch(name)
	if m == nil || len(m[2]) > len(strconv.Itoa(MaxVolumes)) {
		return "", 0, false
	}
	n, _ = strconv.Atoi(m[2])
	return m[1], n, n >= 1
}

// VolumeError is a volume set that does not hold what its index says: a
// missing, short, corrupt or swapped volume (bad media, not a failing
// disk), or an index that cannot be one.
type VolumeError struct {
	Volume int    // 1-based; 0 when the index itself is at fault
	Of     int    // volumes in the set
	Name   string // the volume's file name, or the index's
	Reason string
}

// Subject names the volume: "volume 2 of 3 (site.tar.002)".
func (e *VolumeError) Subject() string {
	if e.Volume == 0 {
		return "volume index " + e.Name
	}
	return fmt.Sprintf("volume %d of %d (%s)", e.Volume, e.Of, e.Name)
}

func (e *VolumeError) Error() string { return e.Subject() + ": " + e.Reason }

// ParseVolumeIndex reads an index, refusing (*VolumeError) one that is not
// a consistent description of a set: names NAME.NNN in order, volumes end
// to end from offset 0, each of the volume size but the last, sha256
// digests. name is the index's file name, for messages.
func ParseVolumeIndex(name string, b []byte) (*VolumeIndex, error) {
	bad := func(format string, args ...any) error {
		return &VolumeError{Name: name, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) > maxIndexSize {
		return nil, bad("%d bytes, over the %d-byte limit", len(b), maxIndexSize)
	}
	var ix VolumeIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, bad("not a volume index: %v", err)
	}
	switch {
	case ix.MediaType != VolumeIndexMediaType:
		return nil, bad("mediaType %q, want %s", ix.MediaType, VolumeIndexMediaType)
	case ix.SchemaVersion != 1:
		return nil, bad("unknown schemaVersion %d", ix.SchemaVersion)
	case ix.Archive.Name == "" || ix.Archive.Name == "." || ix.Archive.Name == ".." || strings.ContainsAny(ix.Archive.Name, "/\\\x00"):
		return nil, bad("archive name %q is not a file name", ix.Archive.Name)
	case len(ix.Volumes) == 0 || len(ix.Volumes) > MaxVolumes:
		return nil, bad("%d volumes: want 1 to %d", len(ix.Volumes), MaxVolumes)
	case ix.VolumeSize <= 0:
		return nil, bad("volume size %d", ix.VolumeSize)
	case !isDigest(ix.Archive.Digest):
		return nil, bad("archive digest %q is not sha256:<64 hex digits>", ix.Archive.Digest)
	}
	var off int64
	for i, v := range ix.Volumes {
		n := len(ix.Volumes)
		want := VolumeName(ix.Archive.Name, i+1, n)
		switch {
		case v.Name != want:
			return nil, bad("volume %d is named %q, want %q", i+1, v.Name, want)
		case v.Offset != off:
			return nil, bad("volume %d starts at %d, want %d (volumes follow each other)", i+1, v.Offset, off)
		case v.Size <= 0 || v.Size > ix.VolumeSize || i < n-1 && v.Size != ix.VolumeSize:
			return nil, bad("volume %d is %d bytes: every volume but the last has the volume size %d, the last at most that", i+1, v.Size, ix.VolumeSize)
		case !isDigest(v.Digest):
			return nil, bad("volume %d digest %q is not sha256:<64 hex digits>", i+1, v.Digest)
		}
		off += v.Size
	}
	if off != ix.Archive.Size {
		return nil, bad("volumes add up to %d bytes, the archive is %d", off, ix.Archive.Size)
	}
	return &ix, nil
}

func isDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// ParseSize reads a size: plain bytes, or a number (decimals allowed) with
// a decimal unit (KB, MB, GB, TB: 25GB for a BD-R, 4.7GB for a DVD) or a
// binary one (KiB, MiB, GiB, TiB: 4095MiB for FAT32). A bare K, M or G is
// refused: which one is meant matters on media that is full to the byte.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok || strings.ContainsAny(num, "eE/+-") || num == "" {
		return 0, fmt.Errorf("size %q: want bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // whole bytes, rounded down
	if !n.IsInt64() || n.Int64() <= 0 {
		return 0, fmt.Errorf("size %q: want at least 1 byte and at most 2^63-1", s)
	}
	return n.Int64(), nil
}

// VolumeWriter writes an archive as a volume set: sequentially (Write,
// for compressed streams) or at absolute offsets (WriteAt, for an
// uncompressed archive written in parallel), but not both. Volumes are
// temporary files until Commit moves them, and then the index, into place;
// Abort, or a failure, leaves nothing.
type VolumeWriter struct {
	dir, base string
	size      int64

	mu    sync.Mutex
	files []*os.File // temporary files, by volume; nil until written
	end   int64      // one past the furthest byte written
	at    bool       // WriteAt was used: digests are computed by reading back
	done  bool

	// Sequential writes are hashed as they go, beside the writing.
	pos  int64
	hash *seqHasher
}

// CreateVolumes starts a set for the archive path (volumes path.001, …),
// each at most size bytes.
func CreateVolumes(path string, size int64) (*VolumeWriter, error) {
	if size <= 0 {
		return nil, fmt.Errorf("volume size %d: want at least 1 byte", size)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		return nil, fmt.Errorf("%q names no file", path)
	}
	return &VolumeWriter{dir: dir, base: base, size: size}, nil
}

// file returns volume k's temporary file, creating it.
func (w *VolumeWriter) file(k int) (*os.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, errors.New("volumes: write after Commit or Abort")
	}
	return w.fileLocked(k)
}

func (w *VolumeWriter) fileLocked(k int) (*os.File, error) {
	if k >= MaxVolumes {
		return nil, fmt.Errorf("the archive needs more than %d volumes of %d bytes: choose a larger volume size", MaxVolumes, w.size)
	}
	for len(w.files) <= k {
		w.files = append(w.files, nil)
	}
	if w.files[k] == nil {
		// A leading dot keeps temporary files out of NAME.* globs.
		f, err := os.CreateTemp(w.dir, "."+w.base+".vol-*.tmp")
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		w.files[k] = f
	}
	return w.files[k], nil
}

// writeAt writes p at archive offset off, volume by volume.
func (w *VolumeWriter) writeAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("volumes: negative offset %d", off)
	}
	written := 0
	for len(p) > 0 {
		k, in := off/w.size, off%w.size
		n := int(min(int64(len(p)), w.size-in))
		f, err := w.file(int(k))
		if err != nil {
			return written, err
		}
		if _, err := f.WriteAt(p[:n], in); err != nil {
			return written, err
		}
		w.mu.Lock()
		w.end = max(w.end, off+int64(n))
		w.mu.Unlock()
		p, off, written = p[n:], off+int64(n), written+n
	}
	return written, nil
}

// WriteAt writes p at offset off of the archive; it is safe for concurrent
// use.
func (w *VolumeWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	if w.pos > 0 {
		w.mu.Unlock()
		return 0, errors.New("volumes: WriteAt after Write")
	}
	w.at = true
	w.mu.Unlock()
	return w.writeAt(p, off)
}

// Write appends p to the archive, hashing it on the way.
func (w *VolumeWriter) Write(p []byte) (int, error) {
	if w.at {
		return 0, errors.New("volumes: Write after WriteAt")
	}
	if w.hash == nil {
		w.hash = newSeqHasher()
	}
	written := 0
	for len(p) > 0 {
		k := int(w.pos / w.size)
		n := int(min(int64(len(p)), w.size-w.pos%w.size))
		m, err := w.writeAt(p[:n], w.pos)
		w.hash.add(k, p[:m])
		w.pos += int64(m)
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// seqHasher hashes what is written in order, each volume and the whole,
// in goroutines of its own: the writer does not wait for sha256 (on a
// machine without sha256 instructions, slower than a disk), and memory
// stays bounded by a few chunks.
type seqHasher struct {
	in    chan hashChunk
	free  chan []byte
	done  chan struct{}
	sums  []string // by volume, once done
	total string
}

type hashChunk struct {
	vol int
	b   []byte
}

const hashChunkSize, hashChunks = 1 << 20, 4

func newSeqHasher() *seqHasher {
	h := &seqHasher{in: make(chan hashChunk, hashChunks), free: make(chan []byte, hashChunks), done: make(chan struct{})}
	for range hashChunks {
		h.free <- make([]byte, 0, hashChunkSize)
	}
	go h.run()
	return h
}

// add queues a copy of b, which belongs to volume vol.
func (h *seqHasher) add(vol int, b []byte) {
	for len(b) > 0 {
		buf := <-h.free
		n := min(len(b), hashChunkSize)
		h.in <- hashChunk{vol, append(buf[:0], b[:n]...)}
		b = b[n:]
	}
}

func (h *seqHasher) run() {
	defer close(h.done)
	total, vol := sha256.New(), sha256.New()
	cur := 0
	var wg sync.WaitGroup
	for c := range h.in {
		if c.vol != cur {
			h.sums = append(h.sums, digestOf(vol))
			vol.Reset()
			cur = c.vol
		}
		wg.Add(1)
		go func() { total.Write(c.b); wg.Done() }()
		vol.Write(c.b)
		wg.Wait()
		h.free <- c.b
	}
	h.sums = append(h.sums, digestOf(vol))
	h.total = digestOf(total)
}

// finish waits for the hashes of everything added.
func (h *seqHasher) finish() ([]string, string) {
	close(h.in)
	<-h.done
	return h.sums, h.total
}

// Sync flushes every volume written so far to stable storage.
func (w *VolumeWriter) Sync() error {
	w.mu.Lock()
	files := append([]*os.File(nil), w.files...)
	w.mu.Unlock()
	for _, f := range files {
		if f != nil {
			if err := f.Sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size is the archive's size so far.
func (w *VolumeWriter) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.end
}

// Commit completes the set: it gives every volume its size (a region never
// written, such as the end-of-archive marker's zeros, reads as zeros),
// works out the digests, and moves the volumes, then the index, into
// place. The index is renamed last: without it a set is incomplete, and an
// index of an earlier export at the same path is removed first, so that
// it never describes the new volumes. Volumes NAME.NNN beyond the new set,
// left by an earlier export with more, are removed last. a gives the
// archive's compression and table of contents; the rest is filled in.
// Commit returns the index and its digest.
func (w *VolumeWriter) Commit(a VolumeArchive) (*VolumeIndex, string, error) {
	ix, data, err := w.finish(a)
	if err != nil {
		w.Abort()
		return nil, "", err
	}
	digest := "sha256:" + fmt.Sprintf("%x", sha256.Sum256(data))
	idx, err := os.CreateTemp(w.dir, "."+w.base+VolumeIndexSuffix+".tmp-*")
	if err == nil {
		if err = idx.Chmod(0o644); err == nil {
			if _, err = idx.Write(data); err == nil {
				err = idx.Sync()
			}
		}
		if cerr := idx.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(idx.Name())
		}
	}
	if err != nil {
		w.Abort()
		return nil, "", err
	}
	final := filepath.Join(w.dir, w.base+VolumeIndexSuffix)
	if err := os.Remove(final); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.Remove(idx.Name())
		w.Abort()
		return nil, "", err
	}
	w.mu.Lock()
	files := w.files
	w.files = nil
	w.mu.Unlock()
	for i, f := range files {
		if err := os.Rename(f.Name(), filepath.Join(w.dir, ix.Volumes[i].Name)); err != nil {
			for _, f := range files[i:] {
				os.Remove(f.Name())
			}
			os.Remove(idx.Name())
			return nil, "", err
		}
	}
	if err := os.Rename(idx.Name(), final); err != nil {
		os.Remove(idx.Name())
		return nil, "", err
	}
	if err := w.removeStale(len(files)); err != nil {
		return nil, "", err
	}
	return ix, digest, syncDir(w.dir)
}

// finish sizes, syncs, closes and hashes every volume, and builds the index.
func (w *VolumeWriter) finish(a VolumeArchive) (*VolumeIndex, []byte, error) {
	w.mu.Lock()
	w.done = true
	total, at := w.end, w.at
	w.mu.Unlock()
	if total == 0 {
		return nil, nil, errors.New("volumes: nothing was written")
	}
	n := int((total + w.size - 1) / w.size)
	ix := &VolumeIndex{SchemaVersion: 1, MediaType: VolumeIndexMediaType, VolumeSize: w.size, Archive: a}
	ix.Archive.Name, ix.Archive.Size = w.base, total
	for k := range n {
		size := min(w.size, total-int64(k)*w.size)
		w.mu.Lock()
		f, err := w.fileLocked(k) // a volume never written to is created
		w.mu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		// Extends a volume whose end was never written (zeros): it must
		// have its size.
		if err := f.Truncate(size); err != nil {
			return nil, nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, nil, err
		}
		ix.Volumes = append(ix.Volumes, Volume{Name: VolumeName(w.base, k+1, n), Offset: int64(k) * w.size, Size: size})
	}
	if at {
		// Written at offsets: read back, in order, for the digests.
		total := sha256.New()
		for k, v := range ix.Volumes {
			vh := sha256.New()
			if err := hashBoth(io.NewSectionReader(w.files[k], 0, v.Size), vh, total); err != nil {
				return nil, nil, fmt.Errorf("reading back volume %d: %w", k+1, err)
			}
			ix.Volumes[k].Digest = digestOf(vh)
		}
		ix.Archive.Digest = digestOf(total)
	} else {
		sums, total := w.hash.finish()
		w.hash = nil
		for k := range ix.Volumes {
			ix.Volumes[k].Digest = sums[k]
		}
		ix.Archive.Digest = total
	}
	for _, f := range w.files {
		if err := f.Close(); err != nil {
			return nil, nil, err
		}
	}
	data, err := json.MarshalIndent(ix, "", " ")
	return ix, append(data, '\n'), err
}

// removeStale removes volumes NAME.NNN numbered beyond the set's count:
// left there, they would join `cat NAME.*`.
func (w *VolumeWriter) removeStale(count int) error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		base, n, ok := SplitVolumeName(e.Name())
		if !ok || base != w.base || !e.Type().IsRegular() {
			continue
		}
		if n <= count && e.Name() == VolumeName(w.base, n, count) {
			continue
		}
		if err := os.Remove(filepath.Join(w.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s, a volume of an earlier export: %w", e.Name(), err)
		}
	}
	return nil
}

// Abort removes every temporary file; it is a no-op after Commit.
func (w *VolumeWriter) Abort() {
	w.mu.Lock()
	files := w.files
	w.files, w.done = nil, true
	w.mu.Unlock()
	if w.hash != nil {
		w.hash.finish()
		w.hash = nil
	}
	for _, f := range files {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// hashBoth feeds r to two hashes at once, reading the next chunk while
// they work: reading back a volume costs one pass, not three.
func hashBoth(r io.Reader, a, b hash.Hash) error {
	const chunk = 1 << 20
	bufs := [2][]byte{make([]byte, chunk), make([]byte, chunk)}
	var wg sync.WaitGroup
	for i := 0; ; i ^= 1 {
		n, err := io.ReadFull(r, bufs[i])
		wg.Wait() // the other buffer is free again
		if n > 0 {
			buf := bufs[i][:n]
			wg.Add(1)
			go func() { b.Write(buf); wg.Done() }()
			a.Write(buf)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			wg.Wait()
			return nil
		}
		if err != nil {
			wg.Wait()
			return err
		}
	}
}
