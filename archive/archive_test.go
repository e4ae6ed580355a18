package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func allowAll(string) bool { return true }

// planned writes entries through a Plan, both ways, and checks that the
// parallel (WriteAt) and sequential forms give the same bytes, which
// archive/tar reads back.
func TestPlanWritersAgree(t *testing.T) {
	names := []string{"oci-layout", "index.json", "blobs/sha256/a", "blobs/sha256/b"}
	contents := [][]byte{[]byte("{}"), bytes.Repeat([]byte("i"), 511), bytes.Repeat([]byte("x"), 512), bytes.Repeat([]byte("y"), 1500)}
	sizes := make([]int64, len(contents))
	for i, c := range contents {
		sizes[i] = int64(len(c))
	}
	plan, err := NewPlan(names, sizes)
	if err != nil {
		t.Fatal(err)
	}
	var seq bytes.Buffer
	w := NewWriter(&seq, plan)
	for _, c := range contents {
		if err := w.WriteNext(bytes.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "a.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := plan.WriteHeaders(f); err != nil {
		t.Fatal(err)
	}
	for i := len(contents) - 1; i >= 0; i-- { // any order
		if _, err := f.WriteAt(contents[i], plan.Entries[i].Offset); err != nil {
			t.Fatal(err)
		}
	}
	par, _ := os.ReadFile(f.Name())
	if !bytes.Equal(seq.Bytes(), par) {
		t.Fatalf("sequential (%d bytes) and parallel (%d bytes) archives differ", seq.Len(), len(par))
	}
	if int64(len(par)) != plan.Size {
		t.Errorf("plan size %d, file %d", plan.Size, len(par))
	}
	tr := tar.NewReader(bytes.NewReader(par))
	for i := range names {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		if h.Name != names[i] || !bytes.Equal(got, contents[i]) || !h.ModTime.Equal(epoch) {
			t.Errorf("entry %d: %s %d bytes %v", i, h.Name, len(got), h.ModTime)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("after last entry: %v", err)
	}
}

func TestWriterChecksSizes(t *testing.T) {
	plan, _ := NewPlan([]string{"a"}, []int64{10})
	w := NewWriter(io.Discard, plan)
	if err := w.WriteNext(strings.NewReader("short")); err == nil {
		t.Error("short content accepted")
	}
	if err := NewWriter(io.Discard, plan).Close(); err == nil {
		t.Error("Close with an entry missing accepted")
	}
}

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("z"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 3, Mode: 0o644}
}

func TestReaderRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdr  *tar.Header
		want string
	}{
		{"dot-dot", reg("../x"), "not clean"},
		{"inner dot-dot", reg("blobs/../../x"), "not clean"},
		{"absolute", reg("/etc/passwd"), "absolute"},
		{"backslash", reg(`blobs\..\x`), "absolute or malformed"},
		{"symlink", &tar.Header{Typeflag: tar.TypeSymlink, Name: "blobs/sha256/x", Linkname: "/etc/passwd"}, "link"},
		{"hard link", &tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "y"}, "link"},
		{"fifo", &tar.Header{Typeflag: tar.TypeFifo, Name: "x"}, "only regular files"},
		{"other directory", &tar.Header{Typeflag: tar.TypeDir, Name: "etc/"}, "unexpected directory"},
		{"name not allowed", reg("x"), "not an entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tarOf(t, tc.hdr)), func(n string) bool { return n != "x" })
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Next()
			var ae *Error
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error containing %q", err, tc.want)
			}
		})
	}
}

func TestReaderRefusesDuplicates(t *testing.T) {
	r, _ := NewReader(bytes.NewReader(tarOf(t, reg("a"), reg("a"))), allowAll)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestReaderCompressionAndOffsets(t *testing.T) {
	plain := tarOf(t, &tar.Header{Typeflag: tar.TypeDir, Name: "blobs/"}, reg("a"), reg("b"))
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	zw.Write(plain)
	zw.Close()
	path := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(path, plain, 0o644)
	f, _ := os.Open(path)
	defer f.Close()

	tests := []struct {
		name   string
		in     io.Reader
		comp   Compression
		random bool
	}{
		{"file", f, None, true},
		{"stream", bytes.NewReader(plain), None, true},
		{"pipe", io.MultiReader(bytes.NewReader(plain)), None, false},
		{"zstd", bytes.NewReader(zbuf.Bytes()), Zstd, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(tc.in, allowAll)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Compression() != tc.comp || r.RandomAccess() != tc.random {
				t.Fatalf("compression %s random %v", r.Compression(), r.RandomAccess())
			}
			var names []string
			for {
				e, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, e.Name)
				if tc.random {
					got, _ := io.ReadAll(r.SectionReader(e))
					if string(got) != "zzz" {
						t.Errorf("%s at offset %d: %q", e.Name, e.Offset, got)
					}
				}
			}
			if strings.Join(names, ",") != "a,b" {
				t.Errorf("entries %v", names)
			}
		})
	}
}

func TestReaderTruncated(t *testing.T) {
	data := tarOf(t, reg("a"), &tar.Header{Typeflag: tar.TypeReg, Name: "b", Size: 4096})
	// A cut inside the padding after an entry reads as a clean end to
	// archive/tar; relocate then finds the entries that follow missing from
	// the table of contents. Cuts inside a header or content are truncation.
	for _, cut := range []int{1100, 1600, 3000} {
		r, _ := NewReader(bytes.NewReader(data[:cut]), allowAll)
		var err error
		for err == nil {
			_, err = r.Next()
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
		}
		var ae *Error
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut at %d: %v, want a truncation *Error", cut, err)
		}
	}
}
