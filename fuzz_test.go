package relocate

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/relocate-dev/relocate/layout"
)

// FuzzVerify runs the whole offline check (relocate verify) over arbitrary
// archive bytes, read from a file (random access) and from a pipe. The
// property is the one the archive exists for: an archive that Verify
// accepts holds, for every blob entry, bytes that hash to the digest its
// name claims, and every blob the table of contents lists, once. Refusals
// must be refusals (exit 3), never operational errors, and the file and
// the pipe must get the same verdict.
func FuzzVerify(f *testing.F) {
	seeds, pins, vouched := verifySeeds(f)
	for _, seed := range seeds {
		f.Add(seed.data, seed.pinned)
	}
	state := filepath.Join(f.TempDir(), "state") // never created: an empty trusted state
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte, pinned bool) {
		path := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// With a pinned root, every image must be vouched for by TUF.
		trust := TrustOptions{StateDir: state, At: now}
		if pinned {
			trust.Pins = pins
		}
		fileRep, fileErr := Verify(context.Background(), VerifyOptions{Archive: path, Jobs: 1, Trust: trust})
		pipeRep, pipeErr := Verify(context.Background(), VerifyOptions{Archive: "-", Stdin: struct{ io.Reader }{bytes.NewReader(data)}, Jobs: 1, Trust: trust})
		for _, err := range []error{fileErr, pipeErr} {
			if err != nil && !IsRefused(err) {
				t.Fatalf("bad archive reported as an operational failure: %v", err)
			}
		}
		if (fileErr == nil) != (pipeErr == nil) {
			t.Fatalf("file and pipe disagree: file %v, pipe %v", fileErr, pipeErr)
		}
		if fileErr != nil {
			return
		}
		if fileRep.Verdict != "ok" || pipeRep.Verdict != "ok" {
			t.Fatalf("no error but verdicts %s, %s", fileRep.Verdict, pipeRep.Verdict)
		}
		toc := checkAccepted(t, data, fileRep)
		// The fuzzer cannot sign TUF targets: with the root pinned, only
		// the image the genuine repository vouches for can pass.
		if pinned {
			for _, im := range toc.Images {
				if !vouched[im.Digest] {
					t.Fatalf("image %s (%s) accepted, which no genuine TUF target vouches for", im.Ref, im.Digest)
				}
			}
		}
	})
}

// checkAccepted re-reads an accepted archive with archive/tar alone, not
// relocate's reader, and holds it to what Verify promised. It returns the
// table of contents.
func checkAccepted(t *testing.T, data []byte, rep *VerifyReport) *layout.TOC {
	t.Helper()
	plain := data
	switch archive.Compression(rep.Compression) {
	case archive.Gzip:
		g, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("accepted gzip archive: %v", err)
		}
		plain, err = io.ReadAll(g)
		if err != nil && !errors.Is(err, gzip.ErrHeader) { // what follows the stream is not the archive's
			t.Fatalf("accepted gzip archive: %v", err)
		}
	case archive.Zstd:
		d, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("accepted zstd archive: %v", err)
		}
		defer d.Close()
		plain, err = io.ReadAll(d)
		if err != nil && !errors.Is(err, zstd.ErrMagicMismatch) { // what follows the stream is not the archive's
			t.Fatalf("accepted zstd archive: %v", err)
		}
	}
	tr := tar.NewReader(bytes.NewReader(plain))
	var names []string
	blobs := map[string]bool{}
	var toc *layout.TOC
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("accepted archive does not read as a tar: %v", err)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("accepted archive: %s: %v", h.Name, err)
		}
		if int64(len(content)) != h.Size {
			t.Fatalf("accepted archive: %s: %d bytes, header says %d", h.Name, len(content), h.Size)
		}
		names = append(names, h.Name)
		if h.Name == layout.TOCFile {
			if toc, err = layout.ParseTOC(content); err != nil {
				t.Fatalf("accepted archive: %v", err)
			}
			continue
		}
		d, ok := layout.ParseBlobPath(h.Name)
		if !ok {
			continue
		}
		var got string
		switch d.Algorithm {
		case "sha256":
			s := sha256.Sum256(content)
			got = hex.EncodeToString(s[:])
		case "sha512":
			s := sha512.Sum512(content)
			got = hex.EncodeToString(s[:])
		}
		if got != d.Hex {
			t.Fatalf("accepted archive: entry %s holds content with %s %s", h.Name, d.Algorithm, got)
		}
		if blobs[d.String()] {
			t.Fatalf("accepted archive: %s twice", h.Name)
		}
		blobs[d.String()] = true
	}
	if len(names) < 3 || names[0] != layout.LayoutFile || names[1] != layout.IndexFile || names[2] != layout.TOCFile || toc == nil {
		t.Fatalf("accepted archive starts with %v", names)
	}
	if len(blobs) != len(toc.Blobs) || rep.Blobs != len(toc.Blobs) {
		t.Fatalf("accepted archive: %d blob entries, the table of contents lists %d, the report says %d", len(blobs), len(toc.Blobs), rep.Blobs)
	}
	for _, b := range toc.Blobs {
		if !blobs[b.Digest.String()] {
			t.Fatalf("accepted archive: %s listed but absent", b.Digest)
		}
	}
	return toc
}

type verifySeed struct {
	data   []byte
	pinned bool // verify with the TUF root pinned
}

// verifySeeds are archives as export writes them — a two-platform index
// with a referrer attached, plain, zstd and gzip; a single image; and one
// carrying a TUF repository that vouches for its image, verified with that
// repository's root pinned (returned).
func verifySeeds(tb testing.TB) ([]verifySeed, map[string][]byte, map[v1.Hash]bool) {
	tb.Helper()
	vouchedFor := map[v1.Hash]bool{}
	multi := buildArchive(tb, true, nil)
	single := buildArchive(tb, false, nil)
	var pins map[string][]byte
	vouched := buildArchive(tb, false, func(im layout.Image) (layout.TUFRepo, *layout.Packed) {
		repo, err := testtuf.New(testtuf.Options{Delegations: []testtuf.Delegation{{Name: "ci", Paths: []string{"registry.example/*"}}}})
		if err != nil {
			tb.Fatal(err)
		}
		for _, role := range []string{"targets", "ci"} {
			if err := repo.AddTarget(role, im.Ref, im.Digest.Hex, im.Size, nil); err != nil {
				tb.Fatal(err)
			}
		}
		if err := repo.Publish(); err != nil {
			tb.Fatal(err)
		}
		pins = map[string][]byte{"team": repo.Root(1)}
		vouchedFor[im.Digest] = true
		p, err := layout.PackTrust(layout.TUFArtifactType, "team", "https://tuf.example.com", repo.Files())
		if err != nil {
			tb.Fatal(err)
		}
		return layout.TUFRepo{Name: "team", URL: "https://tuf.example.com", Manifest: p.Digest, Verified: true}, p
	})
	var zbuf, gbuf bytes.Buffer
	zw, err := zstd.NewWriter(&zbuf)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Write(multi)
	zw.Close()
	gw := gzip.NewWriter(&gbuf)
	gw.Write(single)
	gw.Close()
	return []verifySeed{{data: multi}, {data: single}, {data: zbuf.Bytes()}, {data: gbuf.Bytes()}, {data: vouched, pinned: true}}, pins, vouchedFor
}

// buildArchive lays out an archive the way Export does (toc.Sort, BuildIndex,
// archive.Plan), without a registry; tuf, if given, packs a TUF repository
// for the image.
func buildArchive(tb testing.TB, multi bool, tuf func(layout.Image) (layout.TUFRepo, *layout.Packed)) []byte {
	tb.Helper()
	data := map[v1.Hash][]byte{}
	toc := &layout.TOC{SchemaVersion: layout.TOCSchemaVersion}
	add := func(b []byte, mt types.MediaType, k layout.Kind) v1.Descriptor {
		h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
		if _, dup := data[h]; !dup {
			data[h] = b
			toc.Blobs = append(toc.Blobs, layout.Blob{Digest: h, Size: int64(len(b)), MediaType: string(mt), Kind: k})
		}
		return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h}
	}
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	image := func(arch string) v1.Descriptor {
		cfg := add([]byte(`{"architecture":"`+arch+`","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON, layout.KindConfig)
		layer := add(bytes.Repeat([]byte("layer of "+arch+" "), 100), types.OCILayer, layout.KindLayer)
		d := add(marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}}), types.OCIManifestSchema1, layout.KindManifest)
		d.Platform = &v1.Platform{OS: "linux", Architecture: arch}
		return d
	}
	top := image("amd64")
	im := layout.Image{Ref: "registry.example/team/app:1.0", Digest: top.Digest, MediaType: string(top.MediaType), Size: top.Size}
	if multi {
		arm := image("arm64")
		top = add(marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{top, arm}}), types.OCIImageIndex, layout.KindIndex)
		im = layout.Image{Ref: "registry.example/team/app:2.0", Digest: top.Digest, MediaType: string(top.MediaType), Size: top.Size, Platforms: []string{"linux/amd64", "linux/arm64"}}
		// A signature referrer of the index.
		sigCfg := add([]byte("{}"), types.OCIEmptyJSON, layout.KindConfig)
		sigBlob := add([]byte("signature bytes"), "application/jose+json", layout.KindLayer)
		subject := top
		subject.Platform = nil
		ann := map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": `["abc"]`}
		sig := add(marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/vnd.cncf.notary.signature",
			Config: sigCfg, Layers: []v1.Descriptor{sigBlob}, Subject: &subject, Annotations: ann}), types.OCIManifestSchema1, layout.KindManifest)
		toc.Attachments = append(toc.Attachments, layout.Attachment{Subject: top.Digest, Digest: sig.Digest, MediaType: string(sig.MediaType),
			Size: sig.Size, Kind: layout.AttachReferrer, ArtifactType: "application/vnd.cncf.notary.signature", Annotations: ann})
	}
	toc.Images = []layout.Image{im}
	if tuf != nil {
		repo, p := tuf(im)
		for _, b := range p.Blobs {
			add(p.Data[b.Digest], types.MediaType(b.MediaType), b.Kind)
		}
		toc.TUF = []layout.TUFRepo{repo}
	}
	toc.Sort()
	indexJSON, err := layout.BuildIndex(toc)
	if err != nil {
		tb.Fatal(err)
	}
	tocJSON, err := toc.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	names := []string{layout.LayoutFile, layout.IndexFile, layout.TOCFile}
	contents := [][]byte{[]byte(layout.LayoutVersion), indexJSON, tocJSON}
	for _, b := range toc.Blobs {
		names = append(names, layout.BlobPath(b.Digest))
		contents = append(contents, data[b.Digest])
	}
	sizes := make([]int64, len(contents))
	for i, c := range contents {
		sizes[i] = int64(len(c))
	}
	plan, err := archive.NewPlan(names, sizes)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	w := archive.NewWriter(&buf, plan)
	for _, c := range contents {
		if err := w.WriteNext(bytes.NewReader(c)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestVerifySeedsAccepted keeps the seeds honest: a fuzzer that starts from
// refused archives never reaches the checks after the structure.
func TestVerifySeedsAccepted(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	seeds, pins, _ := verifySeeds(t)
	for i, seed := range seeds {
		path := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(path, seed.data, 0o600); err != nil {
			t.Fatal(err)
		}
		trust := TrustOptions{StateDir: state}
		if seed.pinned {
			trust.Pins = pins
		}
		rep, err := Verify(context.Background(), VerifyOptions{Archive: path, Jobs: 1, Trust: trust})
		if err != nil {
			t.Fatalf("seed %d refused: %v %+v", i, err, rep)
		}
		if seed.pinned && (rep.Trust == nil || len(rep.Trust.Images) != 1 || len(rep.Trust.Images[0].VouchedBy) == 0) {
			t.Fatalf("seed %d: image not vouched for: %+v", i, rep.Trust)
		}
		checkAccepted(t, seed.data, rep)
	}
}
