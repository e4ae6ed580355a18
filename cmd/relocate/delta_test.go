package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/internal/testimages"
)

// deltaTOC reads an uncompressed archive's table of contents, raw and parsed.
func deltaTOC(t *testing.T, path string) ([]byte, tocDoc) {
	t.Helper()
	var raw []byte
	forEachEntry(t, path, func(h *tar.Header, b []byte) {
		if h.Name == "relocate-toc.json" {
			raw = append([]byte(nil), b...)
		}
	})
	var doc tocDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw, doc
}

type tocDoc struct {
	SchemaVersion int
	Blobs         []struct{ Digest, Kind string }
	Expected      []struct {
		Digest, Kind, CarriedBy string
		Size                    int64
	}
	Bases []struct{ TOC, Name string }
}

// TestDelta: a daily update where one image is new. The delta carries only
// the new layers and expects the rest, naming the archive that carried
// them; it is reproducible, and the same whether --since names the earlier
// archive or just its table of contents. verify lists what it expects.
// Where the earlier archive was imported, the delta imports, mounting an
// expected layer into the new image's repository; where it was not, the
// import is refused (exit 3) before anything is pushed, naming the missing
// blobs and the archive that carried them.
func TestDelta(t *testing.T) {
	needRegistries(t)
	// delta/app-3 is new; it shares its first layer with team/app-*, which
	// the earlier archive carried.
	ims, err := testimages.Push(context.Background(), src.Host, testimages.Spec{Repo: "delta/app-{i}", Tag: "v2", Count: 4, Layers: 3, LayerSize: 96 << 10, Shared: 1, Docker: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	changed := ims[3]
	dir := t.TempDir()
	base := filepath.Join(dir, "base.tar")
	exportAll(t, base)
	baseTOC, baseDoc := deltaTOC(t, base)
	carried := map[string]bool{}
	for _, b := range baseDoc.Blobs {
		carried[b.Digest] = true
	}

	delta := filepath.Join(dir, "delta.tar")
	daily := append(append([]string(nil), refs...), changed.Ref)
	r := mustRun(t, append([]string{"export", "-o", delta, "--since", base, "--plain-http", "--json"}, daily...)...)
	var rep struct {
		Blobs int
		Delta struct {
			Expected      []json.RawMessage
			ExpectedBytes int64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, "delta: left out") || !strings.Contains(r.stderr, "base.tar (toc sha256:") {
		t.Errorf("export does not say what it left out:\n%s", r.stderr)
	}
	_, doc := deltaTOC(t, delta)
	wantBase := fmt.Sprintf("sha256:%x", sha256.Sum256(baseTOC))
	if doc.SchemaVersion != 2 || len(doc.Bases) != 1 || doc.Bases[0].TOC != wantBase || doc.Bases[0].Name != "base.tar" {
		t.Fatalf("delta's table of contents: schemaVersion %d, bases %+v; want 2, [{%s base.tar}]", doc.SchemaVersion, doc.Bases, wantBase)
	}
	for _, e := range doc.Expected {
		if !carried[e.Digest] || e.Kind != "layer" || e.CarriedBy != wantBase {
			t.Errorf("expected %+v: not a layer the base carried", e)
		}
	}
	var newLayers []string
	for _, b := range doc.Blobs {
		if b.Kind == "layer" {
			newLayers = append(newLayers, b.Digest)
			if carried[b.Digest] {
				t.Errorf("layer %s carried again", b.Digest)
			}
		}
	}
	var baseLayers int
	for _, b := range baseDoc.Blobs {
		if b.Kind == "layer" {
			baseLayers++
		}
	}
	// The new image's two own layers travel; its shared first layer and
	// every layer of the others are expected.
	if len(newLayers) != 2 || len(doc.Expected) != baseLayers || len(rep.Delta.Expected) != baseLayers {
		t.Fatalf("delta carries %d layers and expects %d; want 2 and %d", len(newLayers), len(doc.Expected), baseLayers)
	}

	// Reproducible, and the same from the table of contents alone (named
	// as the archive was, so that the bases match byte for byte).
	again := filepath.Join(t.TempDir(), "again.tar")
	mustRun(t, append([]string{"export", "-o", again, "--since", base, "--plain-http", "-q"}, daily...)...)
	tocOnly := filepath.Join(t.TempDir(), "base.tar")
	os.WriteFile(tocOnly, baseTOC, 0o644)
	fromTOC := filepath.Join(t.TempDir(), "from-toc.tar")
	mustRun(t, append([]string{"export", "-o", fromTOC, "--since", tocOnly, "--plain-http", "-q"}, daily...)...)
	// And the same from the earlier archive as a volume set, by its index
	// or by a volume (named as the set's archive is).
	volDir := t.TempDir()
	mustRun(t, append([]string{"export", "-o", filepath.Join(volDir, "base.tar"), "--volume-size", "300000", "--plain-http", "-q"}, refs...)...)
	fromIndex := filepath.Join(t.TempDir(), "from-index.tar")
	mustRun(t, append([]string{"export", "-o", fromIndex, "--since", filepath.Join(volDir, "base.tar-volumes.json"), "--plain-http", "-q"}, daily...)...)
	fromVolume := filepath.Join(t.TempDir(), "from-volume.tar")
	mustRun(t, append([]string{"export", "-o", fromVolume, "--since", filepath.Join(volDir, "base.tar.001"), "--plain-http", "-q"}, daily...)...)
	if r := relocateCmd(t, nil, append([]string{"export", "-o", fromVolume, "--since", filepath.Join(volDir, "base.tar.002"), "--plain-http", "-q"}, daily...)...); r.code != exitUsage ||
		!strings.Contains(r.stderr, "--since "+filepath.Join(volDir, "base.tar.002")+": usage: ") || !strings.Contains(r.stderr, "give the first (base.tar.001) or the index") {
		t.Errorf("--since a volume other than the first: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	notes := writeFile(t, "notes.txt", []byte("not an archive"))
	if r := relocateCmd(t, nil, append([]string{"export", "-o", fromVolume, "--since", notes, "--plain-http", "-q"}, daily...)...); r.code != exitUsage ||
		!strings.Contains(r.stderr, "--since "+notes+": ") || !strings.Contains(r.stderr, "not a tar archive") {
		t.Errorf("--since a file that is no archive: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	want, _ := os.ReadFile(delta)
	for _, p := range []string{again, fromTOC, fromIndex, fromVolume} {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the first delta", filepath.Base(p))
		}
	}

	v := mustRun(t, "verify", delta)
	if !strings.Contains(v.stderr, fmt.Sprintf("delta: expects %d layer(s)", baseLayers)) || !strings.Contains(v.stderr, doc.Expected[0].Digest+" layer") || !strings.Contains(v.stderr, "from base.tar") {
		t.Errorf("verify does not list what the delta expects:\n%s", v.stderr)
	}

	// Refused where the base was never imported: exit 3, the missing blobs
	// and the base named, nothing pushed (a dry run says so too).
	for _, extra := range [][]string{{"--dry-run"}, nil} {
		r := relocateCmd(t, nil, append([]string{"import", delta, "--to", dst.Host + "/delta-none", "--plain-http", "--json"}, extra...)...)
		if r.code != exitRefused || !strings.Contains(r.stderr, doc.Expected[0].Digest) || !strings.Contains(r.stderr, "expected at the site") ||
			!strings.Contains(r.stderr, "carried by base.tar (toc "+wantBase+")) but no repository this import pushes to at "+dst.Host+" holds it") || !strings.Contains(r.stderr, "import base.tar there first") {
			t.Errorf("import %v of a delta without its base: exit %d, want %d naming the missing blobs and base.tar\n%s", extra, r.code, exitRefused, r.stderr)
		}
		var ir struct {
			Verdict  string
			Problems []struct{ Subject string }
		}
		json.Unmarshal([]byte(r.stdout), &ir)
		var missing []string
		for _, p := range ir.Problems {
			missing = append(missing, p.Subject)
		}
		for _, e := range doc.Expected {
			if !slices.Contains(missing, e.Digest) {
				t.Errorf("the report does not name missing blob %s", e.Digest)
			}
		}
		if ir.Verdict != "refused" {
			t.Errorf("verdict %q", ir.Verdict)
		}
		if repos := catalog(t, dst.Host, "delta-none"); len(repos) != 0 {
			t.Fatalf("a refused delta import pushed into %v", repos)
		}
	}

	// Imported where the base was.
	mustRun(t, "import", base, "--to", dst.Host+"/delta-ok", "--plain-http", "-q")
	r = mustRun(t, "import", delta, "--to", dst.Host+"/delta-ok", "--plain-http", "--json")
	var ir struct {
		BlobsPushed, BlobsMounted int
	}
	json.Unmarshal([]byte(r.stdout), &ir)
	if !strings.Contains(r.stderr, fmt.Sprintf("delta: the %d blob(s) it expects", baseLayers)) || ir.BlobsMounted < 1 {
		t.Errorf("delta import: %d mounted (want the shared layer mounted into delta/app-3)\n%s", ir.BlobsMounted, r.stderr)
	}
	for _, im := range append(append([]testimages.Image(nil), images...), changed) {
		checkTag(t, "delta-ok", im)
	}
	// What it pushed is only what it carried.
	if ir.BlobsPushed > len(doc.Blobs) {
		t.Errorf("pushed %d blobs, the delta carries %d", ir.BlobsPushed, len(doc.Blobs))
	}
}
