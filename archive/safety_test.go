package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/internal/tartest"
)

// inputs are the ways an archive reaches the reader: a file (read at
// offsets), a pipe (read as a stream), and compressed streams.
func inputs(t *testing.T, plain []byte) map[string]func() io.Reader {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(path, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]func() io.Reader{
		"file": func() io.Reader {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		},
		"stream": func() io.Reader { return io.MultiReader(bytes.NewReader(plain)) },
		"zstd":   func() io.Reader { return bytes.NewReader(zstdOf(t, plain)) },
		"gzip":   func() io.Reader { return bytes.NewReader(gzipOf(t, plain)) },
	}
}

func zstdOf(t testing.TB, b []byte, opts ...zstd.EOption) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// readAll reads every entry through, as verify does from a stream.
func readEntries(r *Reader) (map[string][]byte, error) {
	got := map[string][]byte{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if got[e.Name], err = io.ReadAll(r); err != nil {
			return got, err
		}
	}
}

// Every sparse form is refused when its header is read, through a file
// (where content is read at its offset, and a raw section would have been
// hashed) as through a stream (where archive/tar would have expanded it),
// naming the entry and the form.
func TestReaderRefusesSparse(t *testing.T) {
	want := map[tartest.Form]string{
		tartest.PAX00:  "GNU sparse PAX format 0.0/0.1",
		tartest.PAX01:  "GNU sparse PAX format 0.0/0.1",
		tartest.PAX10:  "GNU sparse PAX format 1.0",
		tartest.GNUOld: "GNU sparse type 'S'",
	}
	for _, form := range tartest.Forms {
		plain := append(tartest.Regular("a", []byte("xyz")), tartest.Sparse(form, "b", []byte("stored bytes"), 1<<20)...)
		plain = append(plain, tartest.Trailer()...)
		for how, open := range inputs(t, plain) {
			t.Run(string(form)+"/"+how, func(t *testing.T) {
				r, err := NewReader(open(), allowAll)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if e, err := r.Next(); err != nil || e.Name != "a" {
					t.Fatalf("first entry: %v %v", e, err)
				}
				_, err = r.Next()
				var ae *Error
				if !errors.As(err, &ae) || ae.Entry != "b" || !strings.Contains(ae.Reason, "sparse entry refused ("+want[form]+")") {
					t.Fatalf("got %v, want entry b refused as %s", err, want[form])
				}
				if _, again := r.Next(); again != err {
					t.Errorf("the reader went on after a refusal: %v", again)
				}
			})
		}
	}
}

// The size stored in the raw header must be the size read: the guard
// against any expansion archive/tar might do that the sparse checks do not
// name.
func TestStoredSize(t *testing.T) {
	hdr := tartest.Header("x", 10, tar.TypeReg)
	if n, ok := storedSize(hdr); !ok || n != 10 {
		t.Fatalf("storedSize = %d %v", n, ok)
	}
	bad := bytes.Clone(hdr)
	bad[0] ^= 1
	if _, ok := storedSize(bad); ok {
		t.Error("a header with a wrong checksum accepted")
	}
	if _, ok := storedSize(tartest.Header("x", 10, tar.TypeGNUSparse)); ok {
		t.Error("a sparse header accepted as a regular file's")
	}
	if _, ok := storedSize(bytes.Repeat([]byte("1\n0\n"), 128)); ok {
		t.Error("a sparse map accepted as a header")
	}
	big := make([]byte, block)
	copy(big, hdr)
	big[124] = 0x80
	copy(big[125:136], []byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0}) // 8 GiB, base-256
	if n, ok := storedSize(tartestChecksum(big)); !ok || n != 8<<30 {
		t.Errorf("base-256 size = %d %v", n, ok)
	}

	r := &Reader{counter: &counter{}}
	r.counter.tailLen = copy(r.counter.tail[:], hdr)
	err := r.checkStored(&tar.Header{Name: "x", Size: 1 << 30})
	var ae *Error
	if !errors.As(err, &ae) || ae.Entry != "x" || !strings.Contains(ae.Reason, "10 bytes stored, 1073741824 bytes once read") {
		t.Fatalf("got %v, want an expansion refused", err)
	}
	if err := r.checkStored(&tar.Header{Name: "x", Size: 10}); err != nil {
		t.Fatal(err)
	}
}

func tartestChecksum(b []byte) []byte {
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// What is no tar at all says so, rather than "truncated", however it is
// compressed.
func TestReaderNotATar(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), garbage(4096)...)
	long := bytes.Repeat([]byte("This is a plain text file, not an archive.\n"), 100)
	tests := map[string][]byte{
		"png":         png,
		"short text":  []byte("hello\n"),
		"long text":   long,
		"zstd text":   zstdOf(t, long),
		"gzip text":   gzipOf(t, long),
		"zstd binary": zstdOf(t, png),
	}
	for name, data := range tests {
		for _, file := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/file=%v", name, file), func(t *testing.T) {
				var in io.Reader = io.MultiReader(bytes.NewReader(data))
				if file {
					path := filepath.Join(t.TempDir(), "x")
					os.WriteFile(path, data, 0o644)
					f, err := os.Open(path)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					in = f
				}
				r, err := NewReader(in, allowAll)
				if err == nil {
					_, err = r.Next()
				}
				var ae *Error
				if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "not a relocate archive") || !strings.Contains(ae.Reason, "tar archive") ||
					!strings.Contains(ae.Reason, "at the start of the archive") {
					t.Fatalf("got %v, want an *Error saying this is not a tar archive", err)
				}
			})
		}
	}
}

func garbage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sample is a plain tar of a few entries of incompressible content.
func sample(t testing.TB) (plain []byte, want map[string][]byte) {
	want = map[string][]byte{}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	r := rand.New(rand.NewPCG(3, 4))
	for i, size := range []int{100, 5000, 70000, 3, 200000} {
		name := fmt.Sprintf("e%d", i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32() % 16) // compressible, but not to nothing
		}
		want[name] = data
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(size), Mode: 0o644})
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes(), want
}

// named reports whether a refusal says where it happened: an entry, the
// start of the archive, or after its end.
func named(ae *Error) bool {
	return ae.Entry != "" || strings.Contains(ae.Reason, "at the start of the archive") || strings.Contains(ae.Reason, "after the end-of-archive marker")
}

// Any corruption of a compressed archive is refused as the archive's fault
// (an *Error, exit 3 for the CLI) naming where it was found, or decodes to
// exactly the original (a byte that no decoder reads, such as gzip's
// modification time): never an operational error, never altered content
// accepted. About one case in four used to be an operational error.
func TestReaderCorruptCompressed(t *testing.T) {
	plain, want := sample(t)
	for _, c := range []struct {
		name string
		data []byte
	}{{"zstd", zstdOf(t, plain)}, {"gzip", gzipOf(t, plain)}} {
		t.Run(c.name, func(t *testing.T) {
			refused := 0
			var offsets []int
			for i := 0; i < 64 && i < len(c.data); i++ {
				offsets = append(offsets, i) // every header byte
			}
			for i := 64; i < len(c.data); i += len(c.data) / 150 {
				offsets = append(offsets, i)
			}
			for i := max(64, len(c.data)-16); i < len(c.data); i++ {
				offsets = append(offsets, i) // checksums and trailers
			}
			for _, off := range offsets {
				for _, flip := range []byte{0x01, 0x80, 0xff} {
					bad := bytes.Clone(c.data)
					bad[off] ^= flip
					r, err := NewReader(bytes.NewReader(bad), allowAll)
					var got map[string][]byte
					if err == nil {
						got, err = readEntries(r)
						r.Close()
					}
					if err == nil {
						for name, w := range want {
							if !bytes.Equal(got[name], w) {
								t.Fatalf("byte %d ^ %#x: %s altered, and accepted", off, flip, name)
							}
						}
						continue
					}
					var ae *Error
					if !errors.As(err, &ae) {
						t.Fatalf("byte %d ^ %#x: %v (%T), want an *Error", off, flip, err, err)
					}
					if !named(ae) {
						t.Fatalf("byte %d ^ %#x: %v names no place", off, flip, err)
					}
					refused++
				}
			}
			if refused < len(offsets) {
				t.Errorf("only %d of %d corruptions refused", refused, 3*len(offsets))
			}
		})
	}
}

// A truncated compressed archive, cut anywhere, is refused as truncated or
// corrupt, naming where.
func TestReaderTruncatedCompressed(t *testing.T) {
	plain, _ := sample(t)
	for _, c := range []struct {
		name string
		data []byte
	}{{"zstd", zstdOf(t, plain)}, {"gzip", gzipOf(t, plain)}} {
		for _, cut := range []int{4, 11, 100, len(c.data) / 3, len(c.data) / 2, len(c.data) - 9, len(c.data) - 4, len(c.data) - 1} {
			r, err := NewReader(bytes.NewReader(c.data[:cut]), allowAll)
			if err == nil {
				_, err = readEntries(r)
				r.Close()
			}
			var ae *Error
			if !errors.As(err, &ae) || !named(ae) || !strings.Contains(ae.Reason, "truncated") && !strings.Contains(ae.Reason, "corrupt") {
				t.Errorf("%s cut at %d of %d: %v, want a truncation *Error naming where", c.name, cut, len(c.data), err)
			}
		}
	}
}

// A zstd frame that asks for a window over the decoder's memory cap (what
// `zstd --long=31` writes) is refused as such, not as an operational error.
func TestReaderHugeZstdWindow(t *testing.T) {
	plain, _ := sample(t)
	data := zstdOf(t, plain, zstd.WithWindowSize(256<<20))
	r, err := NewReader(bytes.NewReader(data), allowAll)
	if err == nil {
		_, err = readEntries(r)
		r.Close()
	}
	var ae *Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "window over relocate's 64 MiB decoder limit") || !strings.Contains(ae.Reason, "at the start of the archive") {
		t.Fatalf("got %v, want the window limit named", err)
	}
}

// failing is a medium that fails with EIO after n bytes.
type failing struct {
	r io.Reader
	n int
}

func (f *failing) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, syscall.EIO
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// An I/O error of the medium stays operational (not an *Error), whether it
// surfaces through the tar reader or a decompressor.
func TestReaderMediumError(t *testing.T) {
	plain, _ := sample(t)
	for _, c := range []struct {
		name string
		data []byte
	}{{"none", plain}, {"zstd", zstdOf(t, plain)}, {"gzip", gzipOf(t, plain)}} {
		for _, at := range []int{5, 600, len(c.data) / 2} {
			r, err := NewReader(&failing{r: bytes.NewReader(c.data), n: at}, allowAll)
			if err == nil {
				_, err = readEntries(r)
				r.Close()
			}
			var ae *Error
			if err == nil || errors.As(err, &ae) || !errors.Is(err, syscall.EIO) {
				t.Errorf("%s failing at %d: %v, want an operational error wrapping EIO", c.name, at, err)
			}
		}
	}
}

// Data after the compressed stream (the rest of the device the archive was
// written to) is not the archive's and is ignored; data inside the stream
// after the end-of-archive marker is read to reach the checksum, within
// a bound.
func TestReaderTrailingData(t *testing.T) {
	plain, want := sample(t)
	leftovers := garbage(3 << 20)
	for _, c := range []struct {
		name string
		data []byte
	}{{"zstd", zstdOf(t, plain)}, {"gzip", gzipOf(t, plain)}} {
		for _, tail := range [][]byte{leftovers, make([]byte, 4096)} {
			r, err := NewReader(io.MultiReader(bytes.NewReader(c.data), bytes.NewReader(tail)), allowAll)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readEntries(r)
			r.Close()
			if err != nil || !bytes.Equal(got["e4"], want["e4"]) {
				t.Errorf("%s followed by %d bytes: %v", c.name, len(tail), err)
			}
		}
	}
	padded := append(bytes.Clone(plain), make([]byte, 2<<20)...)
	r, _ := NewReader(bytes.NewReader(zstdOf(t, padded)), allowAll)
	_, err := readEntries(r)
	r.Close()
	var ae *Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "follow the end-of-archive marker") {
		t.Errorf("2 MiB inside the stream after the marker: %v", err)
	}
}

// Entries of 8 GiB and more are written with a PAX size record: the stored
// size check reads it, so such an entry is not mistaken for one that
// expands.
func TestReaderHugeEntryHeader(t *testing.T) {
	for _, size := range []int64{8<<30 - 1, 8 << 30, 9<<30 + 7} {
		h, err := Header("blobs/sha256/x", size)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(io.MultiReader(bytes.NewReader(h)), allowAll)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := r.Next(); err != nil || e.Size != size {
			t.Errorf("%d bytes: %v %v", size, e, err)
		}
	}
}
