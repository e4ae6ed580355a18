package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func readFixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/bundle.json")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fuzzDescriptors gives every image of b a manifest descriptor: its pinned
// digest where it parses, else one made up from its key.
func fuzzDescriptors(b *Bundle) map[string]v1.Descriptor {
	m := map[string]v1.Descriptor{}
	for _, img := range b.Images() {
		h, err := v1.NewHash(img.ContentDigest)
		if err != nil {
			sum := sha256.Sum256([]byte(img.Key))
			h = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		}
		m[img.Key] = v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 100, Digest: h}
	}
	return m
}

// FuzzParse parses arbitrary bundle.json documents. An accepted bundle
// keeps its exact bytes (their digest is what TUF signs), has an
// invocation image and a reference for every image, and — when it has the
// one invocation image the cnab-to-oci form holds — survives being stored
// in that form and read back: what export writes, import must read.
func FuzzParse(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte(`{"schemaVersion":"v1.2.0","name":"app","version":"1.0.0","invocationImages":[{"imageType":"oci","image":"registry.example.com/app/installer:1.0"}]}`))
	f.Add([]byte(`{"name":"app","version":"1.0.0","invocationImages":[{"image":"a"},{"image":"b","contentDigest":"sha256:` + strings.Repeat("ab", 32) + `"}],"images":{"invocation-7":{"image":"c"}}}`))
	f.Add([]byte(`{"name":"app","version":"1.0.0","invocationImages":[{"image":"a"}],"images":{"":{"image":"c"}}}`))
	f.Add([]byte(`{"name":"app","version":"1.0.0","invocationImages":[{"image":"a"}],"images":{"x":{"image":""}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := bytes.Clone(raw)
		b, err := Parse(in)
		if err != nil {
			return
		}
		for i := range in {
			in[i] ^= 0xff // the caller's buffer is not the bundle's
		}
		sum := sha256.Sum256(raw)
		if !bytes.Equal(b.Raw, raw) || b.Digest.String() != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Fatalf("bundle.json not kept byte for byte: digest %s", b.Digest)
		}
		images := b.Images()
		if len(b.Def.InvocationImages) == 0 || len(images) != len(b.Def.InvocationImages)+len(b.Def.Images) {
			t.Fatalf("%d invocation images, %d images listed", len(b.Def.InvocationImages), len(images))
		}
		keys := map[string]bool{}
		for _, img := range images {
			if keys[img.Key] || img.Ref == "" || img.Invocation != strings.HasPrefix(img.Key, invocationPrefix) && isInvocationKey(img.Key) {
				t.Fatalf("image %+v accepted", img)
			}
			keys[img.Key] = true
		}
		m, err := RelocationMapping(b, func(ref string) (string, error) { return "relocated.example/" + ref, nil })
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range images {
			if m[img.Ref] != "relocated.example/"+img.Ref {
				t.Fatalf("image %s not mapped", img.Key)
			}
		}
		if len(b.Def.InvocationImages) != 1 {
			return
		}
		descs := fuzzDescriptors(b)
		index, cm, err := BuildStored(b, descs)
		if err != nil {
			return // a pinned digest that is not a canonical sha256
		}
		s := store{}
		s.put(b.Raw)
		s.put(cm)
		got, err := ParseStored(index, s.get)
		if err != nil {
			t.Fatalf("a bundle stored in the cnab-to-oci form does not read back: %v", err)
		}
		if !bytes.Equal(got.Bundle.Raw, raw) || len(got.Images) != len(descs) {
			t.Fatalf("stored form read back as another bundle")
		}
		for key, d := range descs {
			if got.Images[key].Digest != d.Digest {
				t.Fatalf("image %s read back as %s, stored as %s", key, got.Images[key].Digest, d.Digest)
			}
		}
	})
}

// FuzzParseStored reads arbitrary cnab-to-oci indexes, with a config
// manifest and a bundle.json available by digest. What it accepts is
// bound to bundle.json as signed: the bundle read is content that hashes
// to its digest, reached through descriptors it matches, and every image
// bundle.json names has exactly the manifest it pins.
func FuzzParseStored(f *testing.F) {
	b, err := Parse(readFixture(f))
	if err != nil {
		f.Fatal(err)
	}
	index, cm, err := BuildStored(b, descriptors(b))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(index, cm, b.Raw)
	single := []byte(`{"name":"app","version":"1.0.0","invocationImages":[{"image":"registry.example.com/app/installer:1.0"}]}`)
	if sb, err := Parse(single); err == nil {
		if index, cm, err := BuildStored(sb, fuzzDescriptors(sb)); err == nil {
			f.Add(index, cm, single)
		}
	}
	f.Fuzz(func(t *testing.T, index, cm, raw []byte) {
		s := store{}
		s.put(cm)
		s.put(raw)
		got, err := ParseStored(index, s.get)
		if err != nil {
			return
		}
		if !IsStoredIndex(index) || !bytes.Equal(got.Index, index) {
			t.Fatal("accepted index that is not the cnab-to-oci form")
		}
		if h, _, _ := v1.SHA256(bytes.NewReader(got.Bundle.Raw)); h != got.Bundle.Digest {
			t.Fatalf("bundle.json has digest %s, reported %s", h, got.Bundle.Digest)
		}
		if raw, ok := s[got.Bundle.Digest]; !ok || !bytes.Equal(raw, got.Bundle.Raw) {
			t.Fatal("bundle.json is not the stored content")
		}
		cmRaw, ok := s[got.Config.Digest]
		if !ok || int64(len(cmRaw)) != got.Config.Size {
			t.Fatalf("config manifest %s not the stored content", got.Config.Digest)
		}
		var m v1.Manifest
		if err := json.Unmarshal(cmRaw, &m); err != nil || m.Config.Digest != got.Bundle.Digest || m.Config.Size != int64(len(got.Bundle.Raw)) {
			t.Fatalf("config manifest does not name bundle.json: %v", err)
		}
		images := got.Bundle.Images()
		if len(images) != len(got.Images) {
			t.Fatalf("%d images in bundle.json, %d in the index", len(images), len(got.Images))
		}
		for _, img := range images {
			d, ok := got.Images[img.Key]
			if !ok || d.Size <= 0 || (img.ContentDigest != "" && img.ContentDigest != d.Digest.String()) {
				t.Fatalf("image %s (pins %q) bound to %+v", img.Key, img.ContentDigest, d)
			}
		}
	})
}

// FuzzOpenThick reads arbitrary thick bundles, with a callback that reads
// all, some or none of each file. When OpenThick accepts, the archive,
// re-read independently, holds only layout blobs whose bytes hash to
// their names, bundle.json as returned, and every pinned manifest; and the
// callback got each file's true size and, if it read it, its content.
func FuzzOpenThick(f *testing.F) {
	plain, gz := thickSeed(f)
	f.Add(gz, uint8(0))
	f.Add(plain, uint8(1))
	f.Add(gz, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		seen := map[string][]byte{}
		b, err := OpenThick(bytes.NewReader(data), func(name string, size int64, r io.Reader) error {
			var body []byte
			var err error
			switch mode % 3 {
			case 0: // all of it
				body, err = io.ReadAll(io.LimitReader(r, 1<<20))
			case 1: // a little
				body = make([]byte, min(size, 7))
				_, err = io.ReadFull(r, body)
			}
			if err != nil {
				return err
			}
			if mode%3 == 0 && int64(len(body)) != size {
				return fmt.Errorf("%d bytes, size %d", len(body), size)
			}
			seen[name] = body
			return nil
		})
		if err != nil {
			return
		}
		files, err := rereadThick(data)
		if err != nil {
			t.Fatalf("accepted thick bundle does not read back: %v", err)
		}
		if !bytes.Equal(files["bundle.json"], b.Raw) {
			t.Fatal("bundle.json returned is not the archive's")
		}
		for name, content := range files {
			rel, ok := strings.CutPrefix(name, LayoutDir+"/")
			if !ok {
				continue
			}
			if hx, ok := strings.CutPrefix(rel, "blobs/sha256/"); ok {
				if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != hx {
					t.Fatalf("accepted %s holding content with sha256 %x", name, sum)
				}
			}
			got, ok := seen[rel]
			if !ok || !bytes.HasPrefix(content, got) || (mode%3 == 0 && !bytes.Equal(content, got)) {
				t.Fatalf("callback got %d bytes of %s (%d bytes)", len(got), rel, len(content))
			}
		}
		for _, img := range b.Images() {
			if img.ContentDigest != "" && files[LayoutDir+"/blobs/"+strings.Replace(img.ContentDigest, ":", "/", 1)] == nil {
				t.Fatalf("image %s: pinned manifest %s not in the layout", img.Key, img.ContentDigest)
			}
		}
	})
}

// rereadThick reads a thick bundle with archive/tar alone: every regular
// file by its cleaned name.
func rereadThick(data []byte) (map[string][]byte, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		r = zr
	}
	tr := tar.NewReader(r)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
}

// thickSeed is a small thick bundle laid out as cnab-go's packager does
// ("./" names, directories, the layout before bundle.json), plain and
// gzipped: an invocation image and a component, both pinned.
func thickSeed(tb testing.TB) (plain, gz []byte) {
	tb.Helper()
	type file struct {
		name string
		body []byte
	}
	var files []file
	blob := func(b []byte) v1.Descriptor {
		sum := sha256.Sum256(b)
		files = append(files, file{"./" + LayoutDir + "/blobs/sha256/" + hex.EncodeToString(sum[:]), b})
		return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, Size: int64(len(b))}
	}
	var manifests []v1.Descriptor
	for _, name := range []string{"installer", "web"} {
		cfg := blob([]byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"name":"` + name + `"}}}`))
		cfg.MediaType = types.OCIConfigJSON
		layer := blob([]byte("layer of " + name))
		layer.MediaType = types.OCILayer
		raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
		if err != nil {
			tb.Fatal(err)
		}
		d := blob(raw)
		d.MediaType = types.OCIManifestSchema1
		manifests = append(manifests, d)
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: manifests})
	if err != nil {
		tb.Fatal(err)
	}
	files = append(files,
		file{"./" + LayoutDir + "/oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		file{"./" + LayoutDir + "/index.json", index},
		file{"./bundle.json", []byte(fmt.Sprintf(`{"schemaVersion":"v1.2.0","name":"app","version":"1.0.0",`+
			`"invocationImages":[{"imageType":"oci","image":"registry.example.com/app/installer:1.0","contentDigest":%q,"size":%d,"mediaType":%q}],`+
			`"images":{"web":{"imageType":"oci","image":"registry.example.com/app/web:1.0","contentDigest":%q,"size":%d,"mediaType":%q}}}`,
			manifests[0].Digest, manifests[0].Size, manifests[0].MediaType, manifests[1].Digest, manifests[1].Size, manifests[1].MediaType))},
	)
	slices.SortStableFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"./", "./artifacts/", "./" + LayoutDir + "/", "./" + LayoutDir + "/blobs/", "./" + LayoutDir + "/blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			tb.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(buf.Bytes())
	zw.Close()
	if _, err := OpenThick(bytes.NewReader(zbuf.Bytes()), nil); err != nil {
		tb.Fatalf("seed refused: %v", err)
	}
	return buf.Bytes(), zbuf.Bytes()
}
