package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/relocate-dev/relocate/archive"
)

type entry struct {
	hdr  tar.Header
	body []byte
}

func file(name string, body []byte) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body}
}

// thickEntries makes a thick bundle as cnab-go's packager lays it out:
// "./"-prefixed names, directories, artifacts/layout/ before bundle.json.
func thickEntries(t *testing.T) []entry {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	for i, ref := range []string{"registry.example.com/app/installer:1.0", "registry.example.com/app/web:1.0", "docker.io/library/redis:7"} {
		img, err := random.Image(256, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	desc := func(img v1.Image) string {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		mt, err := img.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`"contentDigest":%q,"size":%d,"mediaType":%q`, d, len(m), mt)
	}
	bundleJSON := fmt.Sprintf(`{"schemaVersion":"v1.2.0","name":"app","version":"1.0.0",`+
		`"invocationImages":[{"imageType":"oci","image":"registry.example.com/app/installer:1.0",%s}],`+
		`"images":{"web":{"imageType":"oci","image":"registry.example.com/app/web:1.0",%s},`+
		`"cache":{"imageType":"oci","image":"docker.io/library/redis:7",%s}}}`, desc(imgs[0]), desc(imgs[1]), desc(imgs[2]))

	entries := []entry{
		{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}},
		{hdr: tar.Header{Name: "./artifacts/", Typeflag: tar.TypeDir, Mode: 0o755}},
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := "./" + path.Join(LayoutDir, filepath.ToSlash(rel))
		if d.IsDir() {
			entries = append(entries, entry{hdr: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755}})
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		entries = append(entries, file(name, b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(entries, file("./bundle.json", []byte(bundleJSON)))
}

func tgz(t *testing.T, entries []entry, compress bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if compress {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func find(entries []entry, suffix string) int {
	return slices.IndexFunc(entries, func(e entry) bool { return strings.HasSuffix(e.hdr.Name, suffix) })
}

func TestOpenThick(t *testing.T) {
	entries := thickEntries(t)
	bundleJSON := entries[len(entries)-1].body
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", compress), func(t *testing.T) {
			got := map[string][]byte{}
			b, err := OpenThick(bytes.NewReader(tgz(t, entries, compress)), func(name string, size int64, r io.Reader) error {
				body, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				if int64(len(body)) != size {
					return fmt.Errorf("size %d, read %d", size, len(body))
				}
				got[name] = body
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(bundleJSON)
			if !bytes.Equal(b.Raw, bundleJSON) || b.Digest.Hex != hex.EncodeToString(sum[:]) {
				t.Fatalf("bundle %s", b.Digest)
			}
			files := 0
			for _, e := range entries {
				rel, ok := strings.CutPrefix(e.hdr.Name, "./"+LayoutDir+"/")
				if !ok || e.hdr.Typeflag != tar.TypeReg {
					continue
				}
				files++
				if !bytes.Equal(got[rel], e.body) {
					t.Errorf("%s: not passed on intact", rel)
				}
			}
			if len(got) != files || got["index.json"] == nil || got["oci-layout"] == nil {
				t.Fatalf("callback saw %d files, want %d", len(got), files)
			}
			for _, img := range b.Images() {
				if got["blobs/sha256/"+strings.TrimPrefix(img.ContentDigest, "sha256:")] == nil {
					t.Errorf("image %s: manifest not seen", img.Key)
				}
			}
		})
	}
}

func TestOpenThickRefused(t *testing.T) {
	base := thickEntries(t)
	bundleAt := len(base) - 1
	var webManifest string
	{
		b := mustParse(t, base[bundleAt].body)
		for _, img := range b.Images() {
			if img.Key == "web" {
				webManifest = strings.TrimPrefix(img.ContentDigest, "sha256:")
			}
		}
	}
	edit := func(f func([]entry) []entry) []entry { return f(slices.Clone(base)) }
	insert := func(e entry) []entry {
		return edit(func(es []entry) []entry { return slices.Insert(es, 2, e) })
	}
	tests := []struct {
		name    string
		entries []entry
		each    func(string, int64, io.Reader) error
		want    string
	}{
		{name: "parent directory", entries: insert(file("../../etc/cron.d/evil", []byte("x"))), want: `entry "../../etc/cron.d/evil": path is not clean`},
		{name: "dot-dot inside the layout", entries: insert(file("./artifacts/layout/../../../evil", []byte("x"))), want: `entry "./artifacts/layout/../../../evil": path is not clean`},
		{name: "absolute path", entries: insert(file("/etc/passwd", []byte("x"))), want: `entry "/etc/passwd": absolute or malformed path`},
		{name: "long name", entries: insert(file("./artifacts/layout/"+strings.Repeat("a", 2000), []byte("x"))), want: "name longer than 1024 bytes"},
		{name: "backslash", entries: insert(file(`artifacts\..\..\evil`, []byte("x"))), want: "absolute or malformed path"},
		{name: "symlink", entries: insert(entry{hdr: tar.Header{Name: "./artifacts/layout/blobs/sha256/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}}),
			want: `is a link (to "/etc/shadow"); links are refused`},
		{name: "hard link", entries: insert(entry{hdr: tar.Header{Name: "./artifacts/layout/y", Typeflag: tar.TypeLink, Linkname: "bundle.json"}}),
			want: `is a link (to "bundle.json"); links are refused`},
		{name: "duplicate bundle.json", entries: edit(func(es []entry) []entry { return append(es, es[bundleAt]) }), want: `"./bundle.json": appears twice`},
		{name: "bundle.json too large", entries: edit(func(es []entry) []entry {
			es[bundleAt] = file("./bundle.json", bytes.Repeat([]byte(" "), MaxBundleJSONSize+1))
			return es
		}), want: "bundle.json: 16777217 bytes, limit 16777216"},
		{name: "tampered blob, read by the callback", entries: edit(func(es []entry) []entry {
			i := find(es, webManifest)
			es[i] = file(es[i].hdr.Name, []byte(`{"schemaVersion":2}`))
			return es
		}), each: func(_ string, _ int64, r io.Reader) error { _, err := io.ReadAll(r); return err },
			want: "blobs/sha256/" + webManifest + ": content has sha256:"},
		{name: "tampered blob, not read by the callback", entries: edit(func(es []entry) []entry {
			i := find(es, webManifest)
			es[i] = file(es[i].hdr.Name, []byte(`{"schemaVersion":2}`))
			return es
		}), want: "content has sha256:"},
		{name: "image manifest missing", entries: edit(func(es []entry) []entry { return slices.Delete(es, find(es, webManifest), find(es, webManifest)+1) }),
			want: "image web (registry.example.com/app/web:1.0): manifest sha256:" + webManifest + " not in the layout"},
		{name: "no bundle.json", entries: base[:bundleAt], want: "no bundle.json"},
		{name: "no index.json", entries: edit(func(es []entry) []entry { i := find(es, "/index.json"); return slices.Delete(es, i, i+1) }),
			want: "no artifacts/layout/index.json"},
		{name: "callback error", entries: base, each: func(name string, _ int64, _ io.Reader) error {
			if name == "oci-layout" {
				return errors.New("disk full")
			}
			return nil
		}, want: "thick bundle: artifacts/layout/oci-layout: disk full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenThick(bytes.NewReader(tgz(t, tc.entries, true)), tc.each)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := OpenThick(strings.NewReader(""), nil); err == nil {
		t.Fatal("empty input accepted")
	}
}

// The reader's limits and refusals hold for thick bundles: the entry count
// (every name is remembered), and a corrupt gzip stream, which is the
// archive's fault (an *archive.Error) saying where it was found, even past
// the last entry, where only the stream's checksum can tell.
func TestOpenThickReaderLimits(t *testing.T) {
	var many []entry
	for i := range MaxThickEntries + 1 {
		many = append(many, entry{hdr: tar.Header{Name: fmt.Sprintf("d%d/", i), Typeflag: tar.TypeDir, Mode: 0o755}})
	}
	_, err := OpenThick(bytes.NewReader(tgz(t, many, false)), nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d entries", MaxThickEntries)) {
		t.Fatalf("%d entries: %v, want the entry limit named", len(many), err)
	}

	good := tgz(t, thickEntries(t), true)
	for _, c := range []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		// Byte 10 opens the first deflate block (after gzip's 10-byte
		// header); BTYPE 11 is reserved, so the stream is corrupt whatever
		// the random layers hold. A flip further in may still inflate.
		{"reserved block type", func(b []byte) { b[10] |= 0x06 }, "corrupt gzip data (at the start of the archive, before its first entry): flate: corrupt input"},
		{"flipped CRC-32", func(b []byte) { b[len(b)-8] ^= 0x5a }, "corrupt gzip data (after the end-of-archive marker): gzip: invalid checksum"},
	} {
		data := bytes.Clone(good)
		c.mutate(data)
		_, err = OpenThick(bytes.NewReader(data), nil)
		var ae *archive.Error
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an *archive.Error saying %q", c.name, err, c.want)
		}
	}
}
