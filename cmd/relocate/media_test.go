package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/internal/tartest"
)

// The tests of this file are about media: archives that are damaged,
// hostile or not archives at all. Each refusal must be exit 3 and say what
// is at fault and where.

// layerArchive is a small valid archive (one image: a manifest, its config
// and one layer) whose layer entry is written by layerEntry, given the
// entry's name and the layer's content as the table of contents lists it.
func layerArchive(t *testing.T, layer []byte, layerEntry func(name string, content []byte) []byte) (archive []byte, layerName string) {
	t.Helper()
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}},
	})
	mt := "application/vnd.oci.image.manifest.v1+json"
	ref := "registry.example/team/media:v1"
	toc, _ := json.Marshal(map[string]any{
		"schemaVersion": 1,
		"images":        []any{map[string]any{"ref": ref, "digest": digest(manifest), "mediaType": mt, "size": len(manifest)}},
		"blobs": []any{
			map[string]any{"digest": digest(manifest), "size": len(manifest), "kind": "manifest", "mediaType": mt},
			map[string]any{"digest": digest(config), "size": len(config), "kind": "config"},
			map[string]any{"digest": digest(layer), "size": len(layer), "kind": "layer"},
		},
	})
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{"mediaType": mt, "digest": digest(manifest), "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "v1"}}},
	})
	layerName = blobName(digest(layer))
	for _, e := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", idx}, {"relocate-toc.json", toc},
		{blobName(digest(manifest)), manifest}, {blobName(digest(config)), config}} {
		archive = append(archive, tartest.Regular(e.name, e.data)...)
	}
	archive = append(archive, layerEntry(layerName, layer)...)
	return append(archive, tartest.Trailer()...), layerName
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// refusedNaming asserts a run was refused (exit 3) with a message holding
// every one of want.
func refusedNaming(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	if r.code != exitRefused {
		t.Errorf("%s: exit %d, want %d\n%s", what, r.code, exitRefused, r.stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: the message lacks %q:\n%s", what, w, r.stderr)
		}
	}
}

// TestSparseEntriesRefused: a sparse layer entry was accepted by `verify
// FILE`, which hashed raw bytes at the entry's offset, and refused by
// `verify -` for another reason; GNU tar would have extracted a blob that
// does not match its name. Every sparse form is refused by both, naming
// the entry and the form. The layer is listed with its expanded content,
// what the stream path hashed.
func TestSparseEntriesRefused(t *testing.T) {
	stored := []byte("bytes actually stored in the archive")
	expanded := append(bytes.Clone(stored), make([]byte, 8192-len(stored))...)
	forms := map[tartest.Form]string{
		tartest.PAX00:  "GNU sparse PAX format 0.0/0.1",
		tartest.PAX01:  "GNU sparse PAX format 0.0/0.1",
		tartest.PAX10:  "GNU sparse PAX format 1.0",
		tartest.GNUOld: "GNU sparse type 'S'",
	}
	for _, form := range tartest.Forms {
		t.Run(string(form), func(t *testing.T) {
			data, layer := layerArchive(t, expanded, func(name string, content []byte) []byte {
				return tartest.Sparse(form, name, stored, int64(len(content)))
			})
			path := writeFile(t, "sparse.tar", data)
			want := []string{fmt.Sprintf("archive entry %q: sparse entry refused (%s)", layer, forms[form])}
			refusedNaming(t, "verify FILE", relocateCmd(t, nil, "verify", path), want...)
			refusedNaming(t, "verify -", relocateCmd(t, pipeFrom(t, path), "verify", "-"), want...)
		})
	}
	// The same archive with a plain layer entry passes: the refusals above
	// are for sparseness and nothing else.
	data, _ := layerArchive(t, expanded, tartest.Regular)
	if r := relocateCmd(t, nil, "verify", writeFile(t, "plain.tar", data)); r.code != 0 {
		t.Fatalf("the archive without a sparse entry: exit %d\n%s", r.code, r.stderr)
	}
}

// TestNotAnArchive: a file that is no archive at all says so, rather than
// "truncated", from a file and from a pipe.
func TestNotAnArchive(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), garbage(2048)...)
	for name, data := range map[string][]byte{
		"png":        png,
		"short text": []byte("just a note\n"),
		"text":       bytes.Repeat([]byte("Meeting notes, not an archive.\n"), 50),
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "site.tar", data)
			want := "not a tar archive, so not a relocate archive"
			refusedNaming(t, "verify FILE", relocateCmd(t, nil, "verify", path), want)
			refusedNaming(t, "verify -", relocateCmd(t, pipeFrom(t, path), "verify", "-"), want)
			if r := relocateCmd(t, nil, "verify", path); strings.Contains(r.stderr, "truncated") {
				t.Errorf("called truncated: %s", r.stderr)
			}
		})
	}
}

// TestTooManyImagesRefused: the table of contents may list at most 65,536
// images; beyond, the refusal names the limit.
func TestTooManyImagesRefused(t *testing.T) {
	var toc bytes.Buffer
	toc.WriteString(`{"schemaVersion":1,"images":[`)
	for i := range 65537 {
		if i > 0 {
			toc.WriteByte(',')
		}
		fmt.Fprintf(&toc, `{"ref":"r.example/a:%d","digest":"sha256:%064x","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1}`, i, i)
	}
	toc.WriteString(`],"blobs":[]}`)
	data := tartest.Regular("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	data = append(data, tartest.Regular("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))...)
	data = append(data, tartest.Regular("relocate-toc.json", toc.Bytes())...)
	data = append(data, tartest.Trailer()...)
	refusedNaming(t, "verify", relocateCmd(t, nil, "verify", writeFile(t, "many.tar", data)), "65537 images, over the limit of 65536 images")
}

// TestManifestMediaTypesAgreeWithRegistries: a manifest that its descriptor
// calls an index, with no mediaType of its own, passed verify and failed
// import with exit 1 when the registry refused it (400). Verify and import
// now refuse it alike, exit 3, naming the manifest, and nothing is pushed.
func TestManifestMediaTypesAgreeWithRegistries(t *testing.T) {
	tests := []struct {
		name, declared string
		doc            string
		want           string
	}{
		{"manifest declared as an index", "application/vnd.oci.image.index.v1+json",
			`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, "declared as an index"},
		{"docker manifest without mediaType", "application/vnd.docker.distribution.manifest.v2+json",
			`{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[]}`, "no mediaType field"},
	}
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			manifest := fmt.Appendf(nil, tc.doc, cd, len(config))
			d := fmt.Sprintf("sha256:%x", sha256.Sum256(manifest))
			es := synthetic(manifest, "manifest")
			es = edit(es, "relocate-toc.json", func(e *entry) {
				e.data = bytes.ReplaceAll(e.data, []byte("application/vnd.oci.image.manifest.v1+json"), []byte(tc.declared))
				e.data = bytes.Replace(e.data, []byte(`"blobs":[`), fmt.Appendf(nil, `"blobs":[{"digest":%q,"size":%d,"kind":"config"},`, cd, len(config)), 1)
			})
			es = edit(es, "index.json", func(e *entry) {
				e.data = bytes.ReplaceAll(e.data, []byte("application/vnd.oci.image.manifest.v1+json"), []byte(tc.declared))
			})
			es = append(es, regular(blobName(cd), config))
			path := filepath.Join(t.TempDir(), "site.tar")
			writeAll(t, path, es)
			refusedNaming(t, "verify", relocateCmd(t, nil, "verify", path), d, tc.want)
			if testing.Short() {
				return // import needs a registry
			}
			needRegistries(t)
			prefix := fmt.Sprintf("mediatype%d", i)
			refusedNaming(t, "import", relocateCmd(t, nil, "import", path, "--to", dst.Host+"/"+prefix, "--plain-http"), d, tc.want)
			if tags := tagsUnder(t, prefix); len(tags) != 0 {
				t.Errorf("refused import tagged %v", tags)
			}
		})
	}
}

// corruption is one damaged copy of an archive.
type corruption struct {
	name string
	data []byte
	// harmless: the damage is in bytes no decoder reads (gzip's
	// modification time): the archive says exactly what it said.
	harmless bool
}

// decodesTo reports whether a compressed archive decodes, as relocate's
// decoders would, to exactly plain.
func decodesTo(data, plain []byte, gz bool) bool {
	var r io.Reader
	if gz {
		g, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return false
		}
		r = g
	} else {
		d, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return false
		}
		defer d.Close()
		r = d
	}
	got, err := io.ReadAll(r)
	return err == nil && bytes.Equal(got, plain)
}

func corruptions(data, plain []byte, gz bool) []corruption {
	var out []corruption
	var offsets []int
	for i := range 24 { // the frame or member header, and the first block's
		offsets = append(offsets, i)
	}
	for i := 1; i < 12; i++ {
		offsets = append(offsets, i*len(data)/12)
	}
	for i := 12; i >= 1; i-- { // checksums, trailers, the last block
		offsets = append(offsets, len(data)-i)
	}
	for _, off := range offsets {
		bad := bytes.Clone(data)
		bad[off] ^= 0x5a
		out = append(out, corruption{name: fmt.Sprintf("byte %d flipped", off), data: bad, harmless: decodesTo(bad, plain, gz)})
	}
	for _, cut := range []int{len(data) / 5, len(data) / 2, len(data) - 6} {
		out = append(out, corruption{name: fmt.Sprintf("truncated to %d bytes", cut), data: data[:cut]})
	}
	return out
}

// TestCorruptMediaRefused flips bytes at many offsets of a zstd and a gzip
// archive, and truncates them: verify (from a file and a pipe) and import
// refuse every damaged copy with exit 3, naming where the damage was found
// (an entry, the start of the archive, or after its end), where about one
// case in four used to be an operational error (exit 1). A copy that still
// decodes to exactly the same archive passes.
func TestCorruptMediaRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("exports from and imports into real registries")
	}
	needRegistries(t)
	plainPath := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, plainPath)
	plain := mustRead(t, plainPath)
	names := tarNames(t, plainPath)
	n := 0
	for _, ext := range []string{"zst", "gz"} {
		path := filepath.Join(t.TempDir(), "site.tar."+ext)
		exportAll(t, path)
		data := mustRead(t, path)
		if !decodesTo(data, plain, ext == "gz") {
			t.Fatalf("the %s export is not the plain export compressed", ext)
		}
		for _, c := range corruptions(data, plain, ext == "gz") {
			t.Run(ext+"/"+c.name, func(t *testing.T) {
				bad := writeFile(t, "bad.tar."+ext, c.data)
				n++
				prefix := fmt.Sprintf("corrupt%d", n)
				runs := map[string]result{
					"verify FILE": relocateCmd(t, nil, "verify", bad),
					"verify -":    relocateCmd(t, pipeFrom(t, bad), "verify", "-"),
					"import":      relocateCmd(t, nil, "import", bad, "--to", dst.Host+"/"+prefix, "--plain-http"),
				}
				for what, r := range runs {
					if c.harmless {
						if r.code != 0 {
							t.Errorf("%s of a copy that decodes to the same archive: exit %d\n%s", what, r.code, r.stderr)
						}
						continue
					}
					refusedNaming(t, what, r)
					if !namesAPlace(r.stderr, names) {
						t.Errorf("%s: the refusal names no entry nor place:\n%s", what, r.stderr)
					}
				}
			})
		}
	}
}

// namesAPlace reports whether a refusal names an entry of the archive, or
// where in the stream the damage was found.
func namesAPlace(msg string, entries []string) bool {
	if strings.Contains(msg, `archive entry ""`) {
		return false
	}
	for _, place := range []string{"at the start of the archive", "after the end-of-archive marker"} {
		if strings.Contains(msg, place) {
			return true
		}
	}
	for _, e := range entries {
		if strings.Contains(msg, e) || strings.HasPrefix(e, "blobs/sha256/") && strings.Contains(msg, "sha256:"+strings.TrimPrefix(e, "blobs/sha256/")) {
			return true
		}
	}
	return false
}

// TestHugeZstdWindowRefused: a zstd frame that asks for a 2 GiB window
// (what `zstd --long=31` writes, over the decoder's 64 MiB memory cap) was
// an operational error; it is refused, saying why.
func TestHugeZstdWindowRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("exports from real registries and runs zstd")
	}
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar.zst")
	exportAll(t, path)
	data := mustRead(t, path)
	// By hand: the frame header's Window_Descriptor (after the magic and
	// the Frame_Header_Descriptor, which must not be single-segment) set to
	// 2^31 bytes.
	if data[4]&0x20 != 0 {
		t.Fatal("the export's frame is single-segment: it has no window descriptor to raise")
	}
	crafted := bytes.Clone(data)
	crafted[5] = (31 - 10) << 3
	cases := map[string][]byte{"crafted": crafted}
	if _, err := exec.LookPath("zstd"); err == nil {
		plain, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("zstd", "--long=31", "-q", "-c") // from a pipe: the size unknown, the window stays 2 GiB
		cmd.Stdin = plain.IOReadCloser()
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases["zstd --long=31"] = out
	}
	for name, z := range cases {
		t.Run(name, func(t *testing.T) {
			bad := writeFile(t, "long.tar.zst", z)
			want := "window over relocate's 64 MiB decoder limit"
			refusedNaming(t, "verify FILE", relocateCmd(t, nil, "verify", bad), want, "at the start of the archive")
			refusedNaming(t, "verify -", relocateCmd(t, pipeFrom(t, bad), "verify", "-"), want)
			refusedNaming(t, "import", relocateCmd(t, nil, "import", bad, "--to", dst.Host+"/longwindow", "--plain-http"), want)
		})
	}
}
