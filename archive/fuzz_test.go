package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/layout"
)

// maxFuzzOutput bounds what one fuzz input may expand to: a few bytes of
// zstd or gzip can claim gigabytes, and the fuzzer must stay fast.
const maxFuzzOutput = 32 << 20

// relocateNames is the name rule the root package applies: the three
// layout files and canonical blob paths.
func relocateNames(name string) bool {
	if name == layout.LayoutFile || name == layout.IndexFile || name == layout.TOCFile {
		return true
	}
	_, ok := layout.ParseBlobPath(name)
	return ok
}

// readEntry is what one pass over an archive saw of an entry.
type readEntry struct {
	name    string
	size    int64
	content []byte
	section []byte // content read at the entry's offset, when random access
}

// readAll reads every entry and its content through a Reader, stopping at
// the first error. big reports that the input expanded past maxFuzzOutput.
func readAll(t *testing.T, in io.Reader) (entries []readEntry, comp Compression, random bool, err error, big bool) {
	t.Helper()
	r, err := NewReader(in, relocateNames)
	if err != nil {
		return nil, "", false, err, false
	}
	defer r.Close()
	var total int64
	for {
		e, err := r.Next()
		if err == io.EOF {
			return entries, r.Compression(), r.RandomAccess(), nil, false
		}
		if err != nil {
			return entries, r.Compression(), r.RandomAccess(), err, false
		}
		if e.Size > maxFuzzOutput-total {
			return entries, r.Compression(), r.RandomAccess(), nil, true
		}
		total += e.Size
		re := readEntry{name: e.Name, size: e.Size}
		re.content, err = io.ReadAll(io.LimitReader(r, e.Size+1))
		if err != nil {
			return entries, r.Compression(), r.RandomAccess(), err, false
		}
		if r.RandomAccess() {
			re.section, _ = io.ReadAll(r.SectionReader(e))
		}
		entries = append(entries, re)
	}
}

var errTooBig = errors.New("too big")

// decompress undoes the compression independently of Reader.
func decompress(data []byte, c Compression) ([]byte, error) {
	var zr io.Reader
	switch c {
	case Gzip:
		g, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		zr = g
	case Zstd:
		d, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		zr = d
	default:
		return data, nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxFuzzOutput+1))
	if len(out) > maxFuzzOutput {
		return nil, errTooBig
	}
	// What follows the compressed stream is not the archive's (the rest of
	// a device it was written to): Reader ignores it, and so does this.
	if errors.Is(err, zstd.ErrMagicMismatch) || errors.Is(err, gzip.ErrHeader) {
		err = nil
	}
	return out, err
}

// FuzzReader feeds arbitrary bytes to the archive reader, as a file (random
// access) and as a pipe (streaming). Whatever it accepts must be safe and
// must mean the same thing however it is read:
//   - every entry has an allowed, clean name, seen once;
//   - its content is exactly its size;
//   - content read at the entry's offset equals the streamed content (the
//     importer hashes and pushes a plain file's layers through
//     SectionReader, other readers see the stream);
//   - file and pipe, and a compressed archive and its decompressed bytes,
//     give the same entries and the same verdict.
func FuzzReader(f *testing.F) {
	for _, seed := range readerSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fileEntries, comp, random, fileErr, big := readAll(t, bytes.NewReader(data))
		if big {
			return
		}
		pipeEntries, pcomp, prandom, pipeErr, big := readAll(t, struct{ io.Reader }{bytes.NewReader(data)})
		if big {
			return
		}
		if prandom || (comp == None) != random || pcomp != comp {
			t.Fatalf("file: %s random %v; pipe: %s random %v", comp, random, pcomp, prandom)
		}
		if (fileErr == nil) != (pipeErr == nil) {
			t.Fatalf("file and pipe disagree: file %v, pipe %v", fileErr, pipeErr)
		}
		for _, err := range []error{fileErr, pipeErr} {
			var ae *Error
			// In memory nothing can fail but the data: every error must
			// be an *Error, which callers report as a refusal (exit 3),
			// not as an operational failure (exit 1).
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("malformed input reported as an operational error: %T %v", err, err)
			}
		}
		if fileErr != nil {
			return
		}
		checkEntries(t, fileEntries, random)
		checkEntries(t, pipeEntries, false)
		sameEntries(t, "file", fileEntries, "pipe", pipeEntries)

		// Compression is transparent: the decompressed stream reads the same.
		if comp != None {
			plain, err := decompress(data, comp)
			if errors.Is(err, errTooBig) {
				return
			}
			if err != nil {
				t.Fatalf("%s archive accepted, but the stream does not decompress: %v", comp, err)
			}
			plainEntries, _, _, plainErr, big := readAll(t, bytes.NewReader(plain))
			if big {
				return
			}
			if plainErr != nil {
				t.Fatalf("%s archive accepted, its decompressed bytes refused: %v", comp, plainErr)
			}
			sameEntries(t, string(comp), fileEntries, "decompressed", plainEntries)
		}
	})
}

func checkEntries(t *testing.T, entries []readEntry, random bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range entries {
		if !relocateNames(e.name) || path.Clean(e.name) != e.name || strings.HasPrefix(e.name, "/") || strings.Contains(e.name, "..") {
			t.Fatalf("entry %q accepted", e.name)
		}
		if seen[e.name] {
			t.Fatalf("entry %q accepted twice", e.name)
		}
		seen[e.name] = true
		if int64(len(e.content)) != e.size {
			t.Fatalf("entry %q: %d bytes of content, size %d", e.name, len(e.content), e.size)
		}
		if random && !bytes.Equal(e.section, e.content) {
			t.Fatalf("entry %q: content at its offset (%d bytes, sha256 %x) differs from the stream (%d bytes, sha256 %x)",
				e.name, len(e.section), sha256.Sum256(e.section), len(e.content), sha256.Sum256(e.content))
		}
	}
}

func sameEntries(t *testing.T, an string, a []readEntry, bn string, b []readEntry) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d entries, %s: %d", an, len(a), bn, len(b))
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].content, b[i].content) {
			t.Fatalf("entry %d: %s has %q (%d bytes), %s has %q (%d bytes)", i, an, a[i].name, len(a[i].content), bn, b[i].name, len(b[i].content))
		}
	}
}

// readerSeeds are realistic archives: what the package's own writer makes
// (plain, zstd, gzip), with directories, and a few near misses.
func readerSeeds(tb testing.TB) [][]byte {
	blob := func(b []byte) string { return fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(b)) }
	small, large := []byte(`{"schemaVersion":2}`), bytes.Repeat([]byte("layer"), 300)
	names := []string{layout.LayoutFile, layout.IndexFile, layout.TOCFile, blob(small), blob(large)}
	contents := [][]byte{[]byte(layout.LayoutVersion), []byte(`{"schemaVersion":2,"manifests":[]}`), []byte(`{"schemaVersion":1}`), small, large}
	sizes := make([]int64, len(contents))
	for i, c := range contents {
		sizes[i] = int64(len(c))
	}
	plan, err := NewPlan(names, sizes)
	if err != nil {
		tb.Fatal(err)
	}
	var plain bytes.Buffer
	w := NewWriter(&plain, plan)
	for _, c := range contents {
		if err := w.WriteNext(bytes.NewReader(c)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}

	var zbuf, gbuf bytes.Buffer
	zw, err := zstd.NewWriter(&zbuf)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Write(plain.Bytes())
	zw.Close()
	gw := gzip.NewWriter(&gbuf)
	gw.Write(plain.Bytes())
	gw.Close()

	// With the directories other tools add, in PAX and GNU formats.
	var dirs bytes.Buffer
	tw := tar.NewWriter(&dirs)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755, Format: tar.FormatPAX, PAXRecords: map[string]string{"mtime": "1.5"}},
		{Typeflag: tar.TypeDir, Name: "blobs/sha256/", Mode: 0o755, Format: tar.FormatGNU},
		{Typeflag: tar.TypeReg, Name: blob(small), Size: int64(len(small)), Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "x"}},
	} {
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(small)
		}
	}
	tw.Close()

	p := plain.Bytes()
	return [][]byte{p, zbuf.Bytes(), gbuf.Bytes(), dirs.Bytes(), sparseArchive(tb), p[:len(p)/2], p[:1024], nil}
}

// sparseArchive holds a PAX sparse entry (format 0.1): three bytes stored,
// 1000 claimed, then another entry. archive/tar expands the holes with
// zeros; the bytes at the entry's offset are those of the entries after it.
func sparseArchive(tb testing.TB) []byte {
	records := ""
	for _, kv := range []string{"GNU.sparse.numblocks=1", "GNU.sparse.map=0,3", "GNU.sparse.size=1000"} {
		n := len(kv) + 3
		for len(fmt.Sprintf("%d %s\n", n, kv)) != n {
			n = len(fmt.Sprintf("%d %s\n", n, kv))
		}
		records += fmt.Sprintf("%d %s\n", n, kv)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// The PAX header is written as a regular file and retyped below:
	// archive/tar will not write GNU.sparse records itself.
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "PaxHeaders/blob", Size: int64(len(records)), Mode: 0o644},
		{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + strings.Repeat("a", 64), Size: 3, Mode: 0o644},
		{Typeflag: tar.TypeReg, Name: layout.IndexFile, Size: 600, Mode: 0o644},
	}
	bodies := [][]byte{[]byte(records), []byte("abc"), bytes.Repeat([]byte("i"), 600)}
	for i, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		tw.Write(bodies[i])
	}
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// TestReaderChecksCompressedEnd is the regression test for what the root
// package's FuzzVerify found: a .tar.gz cut inside its footer, after the
// last tar block, was accepted, its CRC never checked. Compressed streams
// are now read to their end; damage there is refused, a clean end is not,
// nor what follows the stream.
func TestReaderChecksCompressedEnd(t *testing.T) {
	seeds := readerSeeds(t)
	zst, gz := seeds[1], seeds[2]
	tests := []struct {
		name string
		data []byte
		want string // "" = accepted
	}{
		{"gzip", gz, ""},
		{"gzip without its footer", gz[:len(gz)-8], "truncated"},
		{"gzip with a wrong CRC", append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, 0, 0, 0, 0), "corrupt gzip data"},
		// What follows the compressed stream is the rest of the device the
		// archive was written to, not the archive's.
		{"gzip with a device's zeros after it", append(append([]byte{}, gz...), make([]byte, 4096)...), ""},
		{"zstd", zst, ""},
		{"zstd without its checksum", zst[:len(zst)-4], "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err, _ := readAll(t, bytes.NewReader(tc.data))
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			var ae *Error
			if tc.want != "" && (!errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an *Error containing %q", err, tc.want)
			}
		})
	}
}
