package main

// Choosing what lands, end to end against the real registries: import
// --include/--exclude/--map, export --platform (against the OCI index
// team/multi:v2 and the Docker manifest list other/list:latest of the
// harness), the disk-space check and the debris of killed exports.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
	"github.com/relocate-dev/relocate/internal/testtuf"
)

// importReport is what these tests read of import --json.
type importReport struct {
	Verdict  string
	Excluded []string
	Mapping  map[string]string
	Images   []struct {
		Ref, Target, Digest, Status string
		Index                       *struct{ Ref, Digest, Platform string }
	}
	Signatures *struct {
		Images []struct{ Ref, Verdict, Through string }
	}
	Trust *struct {
		Images []struct{ Ref, Through string }
	}
}

func parseImport(t *testing.T, r result) importReport {
	t.Helper()
	var rep importReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("import --json: %v\n%s", err, r.stdout)
	}
	return rep
}

// usage expects exit 2 and a message holding every want.
func usage(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}

func TestImportSubset(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, path)
	to := dst.Host + "/subset"
	r := mustRun(t, "import", path, "--to", to, "--plain-http", "--json",
		"--include", src.Host+"/team/*", "--exclude", "*/app-1:*")
	rep := parseImport(t, r)
	if want := []string{images[4].Ref, images[1].Ref}; !slices.Equal(rep.Excluded, want) { // sorted: other/ < team/
		t.Errorf("excluded %v, want %v", rep.Excluded, want)
	}
	got := tagsUnder(t, "subset")
	slices.Sort(got)
	want := []string{"subset/team/app-0:v1", "subset/team/app-2:v1", "subset/team/multi:v2"}
	if !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	human := mustRun(t, "import", path, "--to", to, "--plain-http", "--exclude", "*/other/*")
	if !strings.Contains(human.stderr, "left out (--include/--exclude): "+images[4].Ref) {
		t.Errorf("import does not say what it left out:\n%s", human.stderr)
	}

	usage(t, relocateCmd(t, nil, "import", path, "--to", to, "--plain-http", "--include", "nowhere/*"), `--include "nowhere/*" matches no image`)
	usage(t, relocateCmd(t, nil, "import", path, "--to", to, "--plain-http", "--exclude", src.Host+"/team/../other/*"), "--exclude", "'..'")
	usage(t, relocateCmd(t, nil, "import", path, "--to", to, "--plain-http", "--exclude", "*"), "leave no image")
}

// TestSubsetUnderTUF: trust verifies the whole archive's metadata, but
// binding applies to the images imported only; the audit log lists what
// was left out.
func TestSubsetUnderTUF(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{}) // vouches for images[0] only
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", refs[0], refs[1], "--tuf", "team="+s.repo.Serve(t))
	s.refuse(path, "not vouched for", "--trust", "team="+s.root)
	s.accept(path, "--trust", "team="+s.root, "--exclude", refs[1])
	checkTag(t, s.prefix, images[0])
	if tags := tagsUnder(t, s.prefix); len(tags) != 1 {
		t.Errorf("tags %v, want %s only", tags, refs[0])
	}
	log, _ := os.ReadFile(filepath.Join(s.state, "audit.log"))
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	var rec struct {
		Verdict  string
		Excluded []string
	}
	json.Unmarshal(lines[len(lines)-1], &rec)
	if rec.Verdict != "ok" || !slices.Equal(rec.Excluded, []string{refs[1]}) {
		t.Errorf("audit record %s", lines[len(lines)-1])
	}
}

// TestMapPlacesImages: --map resolves the conflict between two names of
// one registry (localhost:PORT and 127.0.0.1:PORT) that would land on one
// destination; destinations are names, and two images may not share one.
func TestMapPlacesImages(t *testing.T) {
	needRegistries(t)
	im := pushOne(t, "sel/a", 1301)
	port := strings.TrimPrefix(src.Host, "127.0.0.1:")
	byIP, byName := src.Host+"/sel/a:v1", "localhost:"+port+"/sel/a:v1"
	dir := t.TempDir()
	path := filepath.Join(dir, "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", byIP, byName)
	mapFile := func(m map[string]string) string {
		b, _ := json.Marshal(m)
		f := filepath.Join(t.TempDir(), "map.json")
		os.WriteFile(f, b, 0o644)
		return f
	}

	r := relocateCmd(t, nil, "import", path, "--to", dst.Host+"/mapconflict", "--plain-http")
	usage(t, r, "would both land on", byIP, byName, "--map")

	local := dst.Host + "/mapped/local/a:v1"
	mapping := filepath.Join(dir, "mapping.json")
	rep := parseImport(t, mustRun(t, "import", path, "--to", dst.Host+"/mapped", "--plain-http", "--json",
		"--map", mapFile(map[string]string{byName: local}), "--mapping", mapping))
	if rep.Mapping[byName] != local || rep.Mapping[byIP] != dst.Host+"/mapped/sel/a:v1" {
		t.Errorf("mapping %v", rep.Mapping)
	}
	for _, at := range [][2]string{{"mapped/local/a", "v1"}, {"mapped/sel/a", "v1"}} {
		if got := headDigest(t, dst.Host, at[0], at[1]); got != im.Digest {
			t.Errorf("%s:%s is %q, want %s", at[0], at[1], got, im.Digest)
		}
	}
	// The mapping import writes places the images again, without --to.
	mustRun(t, "import", path, "--plain-http", "--map", mapping)

	// Everything by the map, one of them by digest.
	both := mapFile(map[string]string{byName: dst.Host + "/maponly/x:1", byIP: dst.Host + "/maponly/y@" + im.Digest})
	mustRun(t, "import", path, "--plain-http", "--map", both)
	if got := headDigest(t, dst.Host, "maponly/x", "1"); got != im.Digest {
		t.Errorf("maponly/x:1 is %q", got)
	}
	if got := headDigest(t, dst.Host, "maponly/y", im.Digest); got != im.Digest {
		t.Errorf("maponly/y@%s is %q", im.Digest, got)
	}
	if tags := tagsUnder(t, "maponly"); !slices.Equal(tags, []string{"maponly/x:1"}) {
		t.Errorf("tags %v: a digest destination must not be tagged", tags)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		want  []string
		place string
	}{
		{"not covered and no --to", []string{"--map", mapFile(map[string]string{byName: local})}, []string{byIP, "not in --map"}, ""},
		{"two on one name", []string{"--to", dst.Host + "/mapclash", "--map", mapFile(map[string]string{byName: dst.Host + "/mapclash/sel/a:v1"})}, []string{"would both land on", byIP, byName}, "mapclash"},
		{"no registry", []string{"--to", dst.Host + "/mapbad", "--map", mapFile(map[string]string{byName: "team/a:1"})}, []string{"names no registry"}, "mapbad"},
		{"a path, not a name", []string{"--to", dst.Host + "/mapbad", "--map", mapFile(map[string]string{byName: dst.Host + "/mapbad/../a:1"})}, []string{"'..'"}, "mapbad"},
		{"neither tag nor digest", []string{"--to", dst.Host + "/mapbad", "--map", mapFile(map[string]string{byName: dst.Host + "/mapbad/a"})}, []string{"tag"}, "mapbad"},
		{"another digest", []string{"--to", dst.Host + "/mapbad", "--map", mapFile(map[string]string{byName: dst.Host + "/mapbad/a@" + images[0].Digest})}, []string{"but the image is " + im.Digest}, "mapbad"},
		{"an image the archive lacks", []string{"--to", dst.Host + "/mapbad", "--map", mapFile(map[string]string{src.Host + "/sel/absent:v1": dst.Host + "/mapbad/a:1"})}, []string{src.Host + "/sel/absent:v1", "does not hold"}, "mapbad"},
		{"not JSON", []string{"--to", dst.Host + "/mapbad", "--map", writeFile(t, "bad.json", []byte("[1,2]"))}, []string{"JSON object"}, "mapbad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			usage(t, relocateCmd(t, nil, append([]string{"import", path, "--plain-http"}, tc.args...)...), tc.want...)
			if tc.place != "" {
				if repos := catalog(t, dst.Host, tc.place); len(repos) != 0 {
					t.Errorf("pushed %v", repos)
				}
			}
		})
	}
}

// exportPlatforms exports refs with --platform flags and returns the path
// and the report.
func exportPlatforms(t *testing.T, platforms []string, refs ...string) (string, result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.tar")
	args := []string{"export", "-o", path, "--plain-http", "--json"}
	for _, p := range platforms {
		args = append(args, "--platform", p)
	}
	return path, relocateCmd(t, nil, append(args, refs...)...)
}

type exportReport struct {
	Platforms []string
	Images    []struct {
		Ref, Digest string
		Platforms   []string
		Index       *struct{ Ref, Digest, Platform string }
	}
	RemovedTemporaryFiles []string
}

func parseExport(t *testing.T, r result) exportReport {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
	}
	var rep exportReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("export --json: %v\n%s", err, r.stdout)
	}
	return rep
}

// TestExportPlatform: the chosen platform manifests travel alone under
// their own digests, land under the tag (one chosen) or by digest
// (several), and verify and import accept what export writes.
func TestExportPlatform(t *testing.T) {
	needRegistries(t)
	multi, list := images[3], images[4]

	t.Run("one platform lands under the tag", func(t *testing.T) {
		path, r := exportPlatforms(t, []string{"linux/amd64"}, multi.Ref, list.Ref)
		rep := parseExport(t, r)
		if len(rep.Images) != 2 {
			t.Fatalf("images %+v", rep.Images)
		}
		for i, im := range []testimages.Image{list, multi} { // in reference order
			got := rep.Images[i]
			if got.Ref != im.Ref || got.Digest != im.Children[0] || got.Index == nil || got.Index.Digest != im.Digest || got.Index.Platform != "linux/amd64" {
				t.Errorf("image %d: %+v", i, got)
			}
		}
		blobs := strings.Join(blobsOf(t, path), "\n")
		for _, im := range []testimages.Image{multi, list} {
			if !strings.Contains(blobs, im.Digest+" index") {
				t.Errorf("the index %s does not travel", im.Digest)
			}
			if strings.Contains(blobs, im.Children[1]) {
				t.Errorf("the platform left out, %s, travels", im.Children[1])
			}
		}
		mustRun(t, "verify", path)
		if v := relocateCmd(t, pipeFrom(t, path), "verify", "-"); v.code != 0 { // streamed too
			t.Errorf("verify -: exit %d\n%s", v.code, v.stderr)
		}
		imp := parseImport(t, mustRun(t, "import", path, "--to", dst.Host+"/plat1", "--plain-http", "--json"))
		if imp.Images[0].Index == nil || imp.Images[0].Index.Platform != "linux/amd64" {
			t.Errorf("import report does not say the image was chosen from an index: %+v", imp.Images[0])
		}
		for _, im := range []testimages.Image{multi, list} {
			repo, tag := repoTag(im.Ref)
			if got := headDigest(t, dst.Host, "plat1/"+repo, tag); got != im.Children[0] {
				t.Errorf("%s lands as %q, want the linux/amd64 manifest %s", im.Ref, got, im.Children[0])
			}
			for _, absent := range []string{im.Digest, im.Children[1]} {
				if got := headDigest(t, dst.Host, "plat1/"+repo, absent); got != "" {
					t.Errorf("%s is at the destination", absent)
				}
			}
		}
	})

	t.Run("several platforms land by digest", func(t *testing.T) {
		path, r := exportPlatforms(t, []string{"linux/amd64", "linux/arm64"}, multi.Ref)
		rep := parseExport(t, r)
		if len(rep.Images) != 2 {
			t.Fatalf("images %+v", rep.Images)
		}
		repo := strings.TrimSuffix(multi.Ref, ":v2")
		for _, im := range rep.Images {
			if !slices.Contains(multi.Children, im.Digest) || im.Ref != repo+"@"+im.Digest {
				t.Errorf("image %+v", im)
			}
		}
		mustRun(t, "import", path, "--to", dst.Host+"/plat2", "--plain-http")
		for _, c := range multi.Children {
			if got := headDigest(t, dst.Host, "plat2/team/multi", c); got != c {
				t.Errorf("%s missing", c)
			}
		}
		if tags := tagsUnder(t, "plat2"); len(tags) != 0 {
			t.Errorf("tagged %v: one tag cannot name several manifests", tags)
		}
	})

	t.Run("variants", func(t *testing.T) {
		_, r := exportPlatforms(t, []string{"linux/arm/v7"}, list.Ref)
		if rep := parseExport(t, r); rep.Images[0].Digest != list.Children[1] {
			t.Errorf("linux/arm/v7 chose %s", rep.Images[0].Digest)
		}
		_, r = exportPlatforms(t, []string{"linux/arm/v6"}, list.Ref)
		if r.code != exitFailure || !strings.Contains(r.stderr, list.Ref) || !strings.Contains(r.stderr, "linux/arm/v7") {
			t.Errorf("exit %d, want %d naming the image and its platforms\n%s", r.code, exitFailure, r.stderr)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		dir := t.TempDir()
		r := relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "a.tar"), "--plain-http", "--platform", "linux/arm64", list.Ref)
		if r.code != exitFailure || !strings.Contains(r.stderr, "has none of the platforms asked for (linux/arm64): it has linux/amd64, linux/arm/v7") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		r = relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "b.tar"), "--plain-http", "--platform", "linux/arm64", images[0].Ref)
		if r.code != exitFailure || !strings.Contains(r.stderr, "linux/amd64 (a single-platform image)") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		usage(t, relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "c.tar"), "--plain-http", "--platform", "linux", list.Ref), "--platform", "os/arch")
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left %v", ents)
		}
	})
}

// TestPlatformSignaturesTravel: the attachments of the chosen platform
// manifest and of the index travel, those of the platforms left out do
// not; the chosen manifest's land discoverable at the destination.
func TestPlatformSignaturesTravel(t *testing.T) {
	needRegistries(t)
	s := pushSignedSet(t, src.Host, "sel/signed", 1302)
	path, r := exportPlatforms(t, []string{"linux/amd64"}, s.ref)
	parseExport(t, r)
	var toc struct{ Attachments []struct{ Digest string } }
	readEntry(t, path, "relocate-toc.json", &toc)
	carried := map[string]bool{}
	for _, a := range toc.Attachments {
		carried[a.Digest] = true
	}
	chosen := s.index.Children[0]
	sboms := map[string]string{} // SBOM digest → subject
	for _, a := range s.attached {
		if a.what == "SBOM" {
			sboms[a.digest] = a.subject
		}
	}
	var atChosen []attached
	for _, a := range s.attached {
		subject := a.subject
		if sub, ok := sboms[subject]; ok {
			subject = sub // an attachment of an SBOM belongs with the SBOM
		}
		want := subject == chosen || subject == s.index.Digest
		if carried[a.digest] != want {
			t.Errorf("%s of %s: carried %v, want %v", a.what, a.subject, carried[a.digest], want)
		}
		if subject == chosen {
			atChosen = append(atChosen, a)
		}
	}
	if len(atChosen) == 0 {
		t.Fatal("nothing attached to the chosen platform: the test proves nothing")
	}
	mustRun(t, "import", path, "--to", dst.Host+"/platsig", "--plain-http")
	checkAttached(t, dst.Host+"/platsig/sel/signed", atChosen)
}

// TestPlatformVouchedThroughIndex: a platform manifest chosen out of an
// index is vouched for by the index's signature and TUF target.
func TestPlatformVouchedThroughIndex(t *testing.T) {
	needRegistries(t)
	ctx := context.Background()
	ims, err := testimages.Push(ctx, src.Host, testimages.Spec{Repo: "sel/indexsigned", Tag: "v1", Count: 1, Layers: 1, LayerSize: 8 << 10, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 1303})
	if err != nil {
		t.Fatal(err)
	}
	im := ims[0]
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := testimages.Sign(ctx, src.Host+"/sel/indexsigned", im.Digest, key); err != nil { // the index only, as cosign signs by default
		t.Fatal(err)
	}
	path, r := exportPlatforms(t, []string{"linux/arm64"}, im.Ref)
	parseExport(t, r)

	site := newSigSite(t)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(site.dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	p := site.policy(`{"signatures": [{"paths": ["` + src.Host + `/sel/indexsigned:*"], "require": [{"cosign": {"keys": ["release.pub"]}}]}]}`)
	args := []string{"--policy", p, "--state", t.TempDir(), "--json"}
	rep := parseImport(t, site.accept(path, args...))
	if rep.Signatures == nil || len(rep.Signatures.Images) != 1 || rep.Signatures.Images[0].Verdict != "ok" || rep.Signatures.Images[0].Through != im.Ref+"@"+im.Digest {
		t.Errorf("signatures: %+v", rep.Signatures)
	}
	if got := headDigest(t, dst.Host, site.prefix+"/sel/indexsigned", "v1"); got != im.Children[1] {
		t.Errorf("lands as %q, want the linux/arm64 manifest %s", got, im.Children[1])
	}
	// Unsigned: refused, and nothing pushed.
	other := newSigSite(t)
	os.WriteFile(filepath.Join(other.dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	p2 := other.policy(`{"signatures": [{"paths": ["` + src.Host + `/team/*"], "require": [{"cosign": {"keys": ["release.pub"]}}]}]}`)
	path2, r2 := exportPlatforms(t, []string{"linux/amd64"}, images[3].Ref)
	parseExport(t, r2)
	other.refuse(path2, images[3].Ref, []string{"--policy", p2, "--state", t.TempDir()}, "no signature")

	// TUF: the target names the index; the chosen manifest is vouched for
	// through it.
	ts := newTUFSite(t, testtuf.Options{})
	ts.vouch("releases", images[3])
	path3 := filepath.Join(t.TempDir(), "tuf.tar")
	mustRun(t, "export", "-o", path3, "--plain-http", "-q", "--platform", "linux/amd64", refs[3], "--tuf", "team="+ts.repo.Serve(t))
	rep3 := parseImport(t, ts.accept(path3, "--trust", "team="+ts.root, "--json"))
	if rep3.Trust == nil || len(rep3.Trust.Images) != 1 || rep3.Trust.Images[0].Through != refs[3]+"@"+images[3].Digest {
		t.Errorf("trust: %+v", rep3.Trust)
	}
	repo, tag := repoTag(refs[3])
	if got := headDigest(t, dst.Host, ts.prefix+"/"+repo, tag); got != images[3].Children[0] {
		t.Errorf("lands as %q", got)
	}
}

// TestSparseIndexRefusedByRegistry records why --platform does not carry
// the index with only the chosen children: CNCF distribution (2.8, the
// registry of these tests, and so Harbor) refuses an index one of whose
// children it does not hold.
func TestSparseIndexRefusedByRegistry(t *testing.T) {
	needRegistries(t)
	multi := images[3]
	get := func(ref string) []byte {
		req, _ := http.NewRequest(http.MethodGet, "http://"+src.Host+"/v2/team/multi/manifests/"+ref, nil)
		req.Header.Set("Accept", multi.MediaType+", application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	// One platform's image, complete, in a fresh repository; then the index.
	path, r := exportPlatforms(t, []string{"linux/amd64"}, multi.Ref)
	parseExport(t, r)
	mustRun(t, "import", path, "--plain-http", "--map", writeFile(t, "map.json", []byte(`{"`+multi.Ref+`": "`+dst.Host+`/sparse/multi@`+multi.Children[0]+`"}`)))
	req, _ := http.NewRequest(http.MethodPut, "http://"+dst.Host+"/v2/sparse/multi/manifests/v2", bytes.NewReader(get(multi.Digest)))
	req.Header.Set("Content-Type", multi.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") || !strings.Contains(string(body), multi.Children[1]) {
		t.Fatalf("the registry took a sparse index: %s %s", resp.Status, body)
	}
}

// TestExportChecksSpace: without room for the archive the export fails
// (exit 1) before a layer is fetched, naming the bytes needed and free.
func TestExportChecksSpace(t *testing.T) {
	needRegistries(t)
	var blobGETs atomic.Int32
	proxy := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			blobGETs.Add(1)
		}
		return false
	}})
	ref := proxy.Host + strings.TrimPrefix(refs[0], src.Host)
	freeSpace = func(string) (uint64, error) { return 4096, nil }
	t.Cleanup(func() { freeSpace = nil })
	dir := t.TempDir()
	r := relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "site.tar"), "--plain-http", "--no-referrers", ref)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "not enough free space in "+dir) || !strings.Contains(r.stderr, "and 4096 bytes (4.0 KiB) are free") || !strings.Contains(r.stderr, "the archive needs ") {
		t.Errorf("message:\n%s", r.stderr)
	}
	if n := blobGETs.Load(); n != 1 {
		t.Errorf("%d blob requests before the check, want 1 (the config)", n)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	// To stdout, there is no file system to ask.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"relocate", "export", "-o", "-", "--plain-http", refs[0]}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Errorf("-o -: exit %d\n%s", code, errb.String())
	}
	freeSpace = func(string) (uint64, error) { return 1 << 40, nil }
	mustRun(t, "export", "-o", filepath.Join(dir, "site.tar"), "--plain-http", "-q", refs[0])
}

// TestKilledExportDebrisRemoved kills a real export with SIGKILL while it
// fetches layers: its temporary file stays behind, and the next export in
// that directory removes it, but never the temporary file of an export
// still running there.
func TestKilledExportDebrisRemoved(t *testing.T) {
	needRegistries(t)
	bin := filepath.Join(t.TempDir(), "relocate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	temps := func(out string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "."+out+".*.relocate-tmp"))
		return m
	}
	// Layer requests wait, once the export's temporary file exists (configs
	// are fetched before), until the test lets them go.
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	stalled := make(chan string, 16)
	slow := func(out string) string {
		return testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && len(temps(out)) > 0 {
				select {
				case stalled <- out:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done(): // the export was killed
				}
			}
			return false
		}}).Host
	}
	start := func(out string) *exec.Cmd {
		ref := slow(out) + strings.TrimPrefix(refs[0], src.Host)
		cmd := exec.Command(bin, "export", "-o", filepath.Join(dir, out), "--plain-http", "-q", ref)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		timeout := time.After(30 * time.Second)
		for {
			select {
			case got := <-stalled:
				if got == out {
					return cmd
				}
			case <-timeout:
				t.Fatalf("export %s never fetched a layer", out)
			}
		}
	}

	// b runs on while a starts (and cleans up: b's file is live) and dies.
	live := start("b.tar")
	killed := start("a.tar")
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	debris := temps("a.tar")
	if len(debris) != 1 || len(temps("b.tar")) != 1 {
		t.Fatalf("a killed export left %v, want its temporary file; b has %v", debris, temps("b.tar"))
	}

	rep := parseExport(t, relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "c.tar"), "--plain-http", "--json", refs[0]))
	if !slices.Equal(rep.RemovedTemporaryFiles, debris) {
		t.Errorf("removed %v, want %v", rep.RemovedTemporaryFiles, debris)
	}
	if left := temps("a.tar"); len(left) != 0 {
		t.Errorf("debris left: %v", left)
	}
	if len(temps("b.tar")) != 1 {
		t.Fatal("the temporary file of a live export was removed")
	}
	once.Do(func() { close(release) })
	if err := live.Wait(); err != nil {
		t.Fatalf("the live export failed: %v", err)
	}
	mustRun(t, "verify", filepath.Join(dir, "b.tar"), "-q")
	if ents, _ := filepath.Glob(filepath.Join(dir, ".*")); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}
