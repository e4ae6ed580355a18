package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

// The end-to-end tests share two real registries (CNCF distribution, the
// Debian docker-registry) started once: src holds the images, every test
// imports under its own prefix of dst.
var (
	src, dst *testregistry.Registry
	images   []testimages.Image
	refs     []string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// No processes under -short: the end-to-end tests skip.
		return m.Run()
	}
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil && os.Getenv("RELOCATE_REQUIRE_REGISTRY") != "1" {
		fmt.Fprintln(os.Stderr, "docker-registry not installed: end-to-end tests skipped")
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "relocate-e2e-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// The default state directory must not be the user's.
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	ctx := context.Background()
	if src, err = testregistry.Start(ctx, filepath.Join(dir, "src")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer src.Stop()
	if dst, err = testregistry.Start(ctx, filepath.Join(dir, "dst")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer dst.Stop()
	specs := []testimages.Spec{
		// Docker media types, a base layer shared by all three.
		{Repo: "team/app-{i}", Tag: "v1", Count: 3, Layers: 3, LayerSize: 96 << 10, Shared: 1, Docker: true, Seed: 1},
		// OCI multi-platform index.
		{Repo: "team/multi", Tag: "v2", Count: 1, Layers: 2, LayerSize: 64 << 10, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 2},
		// Docker manifest list.
		{Repo: "other/list", Tag: "latest", Count: 1, Layers: 1, LayerSize: 32 << 10, Platforms: []string{"linux/amd64", "linux/arm/v7"}, Docker: true, Seed: 3},
	}
	for _, s := range specs {
		ims, err := testimages.Push(ctx, src.Host, s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		images = append(images, ims...)
	}
	for _, im := range images {
		refs = append(refs, im.Ref)
	}
	return m.Run()
}

func needRegistries(t *testing.T) {
	t.Helper()
	if src == nil {
		t.Skip("no registries: docker-registry not installed, or -short")
	}
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func relocateCmd(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := run(context.Background(), append([]string{"relocate"}, args...), stdin, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := relocateCmd(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("relocate %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func exportAll(t *testing.T, out string) {
	t.Helper()
	mustRun(t, append([]string{"export", "-o", out, "--plain-http", "-q"}, refs...)...)
}

// headDigest asks a registry what a tag or digest resolves to ("" if absent).
func headDigest(t *testing.T, host, repo, ref string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s/%s:%s: %s", host, repo, ref, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// catalog lists the repositories of a registry under a prefix.
func catalog(t *testing.T, host, prefix string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/_catalog?n=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range c.Repositories {
		if strings.HasPrefix(r, prefix+"/") {
			out = append(out, r)
		}
	}
	return out
}

// tagsUnder lists every tag in every repository under prefix at dst.
func tagsUnder(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, repo := range catalog(t, dst.Host, prefix) {
		resp, err := http.Get("http://" + dst.Host + "/v2/" + repo + "/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		var tl struct{ Tags []string }
		json.NewDecoder(resp.Body).Decode(&tl)
		resp.Body.Close()
		for _, tag := range tl.Tags {
			out = append(out, repo+":"+tag)
		}
	}
	return out
}

func repoTag(ref string) (repo, tag string) {
	_, rest, _ := strings.Cut(ref, "/")
	repo, tag, _ = strings.Cut(rest, ":")
	return repo, tag
}

func TestRoundTrip(t *testing.T) {
	needRegistries(t)
	tests := []struct {
		name, file string
		stdin      bool
	}{
		{"plain tar", "site.tar", false},
		{"zstd", "site.tar.zst", false},
		{"gzip", "site.tar.gz", false},
		{"zstd through a pipe", "site.tar.zst", true},
		{"plain tar through a pipe", "site.tar", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			exportAll(t, path)
			prefix := fmt.Sprintf("rt%d", i)
			arg := path
			var stdin io.Reader
			if tc.stdin {
				stdin, arg = pipeFrom(t, path), "-"
			}
			v := relocateCmd(t, stdin, "verify", arg, "--json")
			if v.code != 0 {
				t.Fatalf("verify: exit %d: %s", v.code, v.stderr)
			}
			var vrep struct {
				Verdict string
				Images  []struct{ Ref string }
				Blobs   int
			}
			if err := json.Unmarshal([]byte(v.stdout), &vrep); err != nil {
				t.Fatalf("verify --json: %v\n%s", err, v.stdout)
			}
			if vrep.Verdict != "ok" || len(vrep.Images) != len(images) {
				t.Fatalf("verify report: %+v", vrep)
			}
			if tc.stdin {
				stdin = pipeFrom(t, path)
			}
			mapping := filepath.Join(t.TempDir(), "mapping.json")
			r := relocateCmd(t, stdin, "import", arg, "--to", dst.Host+"/"+prefix, "--plain-http", "--mapping", mapping)
			if r.code != 0 {
				t.Fatalf("import: exit %d: %s", r.code, r.stderr)
			}
			checkDestination(t, prefix)
			var m map[string]string
			data, err := os.ReadFile(mapping)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			for _, im := range images {
				repo, tag := repoTag(im.Ref)
				if want := dst.Host + "/" + prefix + "/" + repo + ":" + tag; m[im.Ref] != want {
					t.Errorf("mapping[%s] = %q, want %q", im.Ref, m[im.Ref], want)
				}
			}
		})
	}
}

// pipeFrom feeds a file through a real pipe, as stdin is across a data
// diode: not seekable, not a regular file.
func pipeFrom(t *testing.T, path string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.Open(path)
		if err == nil {
			io.Copy(w, f)
			f.Close()
		}
		w.Close()
	}()
	t.Cleanup(func() { r.Close() })
	return r
}

// checkDestination asserts every image landed under prefix with its digest,
// and every child manifest of an index is there by digest.
func checkDestination(t *testing.T, prefix string) {
	t.Helper()
	for _, im := range images {
		repo, tag := repoTag(im.Ref)
		if got := headDigest(t, dst.Host, prefix+"/"+repo, tag); got != im.Digest {
			t.Errorf("%s at destination: digest %q, want %s", im.Ref, got, im.Digest)
		}
		for _, c := range im.Children {
			if got := headDigest(t, dst.Host, prefix+"/"+repo, c); got != c {
				t.Errorf("%s child %s missing at destination", im.Ref, c)
			}
		}
	}
}

func TestReimportSkipsEverything(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, path)
	to := dst.Host + "/reimport"
	mustRun(t, "import", path, "--to", to, "--plain-http")
	r := mustRun(t, "import", "--plain-http", "--json", path, "--to", to)
	var rep struct {
		BlobsPushed, BlobsMounted int
		BytesPushed               int64
		Images                    []struct{ Status string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.BlobsPushed != 0 || rep.BlobsMounted != 0 || rep.BytesPushed != 0 {
		t.Errorf("re-import pushed %d blobs (%d bytes), mounted %d; want nothing", rep.BlobsPushed, rep.BytesPushed, rep.BlobsMounted)
	}
	for _, im := range rep.Images {
		if im.Status != "unchanged" {
			t.Errorf("re-import status %q, want unchanged", im.Status)
		}
	}
	checkDestination(t, "reimport")
}

func TestExportIsReproducible(t *testing.T) {
	needRegistries(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	exportAll(t, a)
	// Reverse order: the archive must depend on content only.
	rev := append([]string(nil), refs...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	mustRun(t, append([]string{"export", "--plain-http", "-q", "-o", b}, rev...)...)
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if len(da) == 0 || !bytes.Equal(da, db) {
		t.Fatalf("two exports of the same content differ (%d vs %d bytes)", len(da), len(db))
	}
	// Small entries come first, layers last.
	names := tarNames(t, a)
	if names[0] != "oci-layout" || names[1] != "index.json" || names[2] != "relocate-toc.json" {
		t.Errorf("archive starts with %v", names[:3])
	}
	var idx struct {
		Manifests []struct{ Annotations map[string]string }
	}
	readEntry(t, a, "index.json", &idx)
	got := map[string]bool{}
	for _, m := range idx.Manifests {
		got[m.Annotations["io.containerd.image.name"]] = true
	}
	for _, r := range refs {
		if !got[r] {
			t.Errorf("index.json does not name %s", r)
		}
	}
}

func TestExportToStdout(t *testing.T) {
	needRegistries(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"relocate", "export", "-o", "-", "--plain-http", refs[0]}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	r := relocateCmd(t, bytes.NewReader(out.Bytes()), "verify", "-")
	if r.code != 0 {
		t.Fatalf("verify of stdout export: exit %d: %s", r.code, r.stderr)
	}
}

func TestImagesFileAndDryRun(t *testing.T) {
	needRegistries(t)
	dir := t.TempDir()
	list := filepath.Join(dir, "images.txt")
	os.WriteFile(list, []byte("# the set\n"+strings.Join(refs, "\n")+"\n"), 0o644)
	path := filepath.Join(dir, "site.tar")
	mustRun(t, "export", "--images-file", list, "-o", path, "--plain-http", "-q")
	r := mustRun(t, "import", path, "--to", dst.Host+"/dryrun", "--dry-run", "--plain-http")
	if !strings.Contains(r.stderr, "planned") {
		t.Errorf("dry run printed no plan: %s", r.stderr)
	}
	if repos := catalog(t, dst.Host, "dryrun"); len(repos) != 0 {
		t.Errorf("dry run created repositories: %v", repos)
	}
}

func TestInspect(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar.zst")
	exportAll(t, path)
	r := mustRun(t, "inspect", path, "--json")
	var rep struct {
		Compression string
		Images      []struct {
			Ref       string
			Platforms []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Compression != "zstd" || len(rep.Images) != len(images) {
		t.Fatalf("inspect: %+v", rep)
	}
	text := mustRun(t, "inspect", path).stdout
	if !strings.Contains(text, "linux/arm64/v8") || !strings.Contains(text, refs[0]) {
		t.Errorf("inspect text lacks platforms or references:\n%s", text)
	}
}

func TestExportFailureLeavesNoFile(t *testing.T) {
	needRegistries(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "site.tar")
	r := relocateCmd(t, nil, "export", "-o", out, "--plain-http", refs[0], src.Host+"/team/absent:v1")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "team/absent:v1") {
		t.Errorf("error does not name the reference: %s", r.stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed export left files: %v", ents)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"export without output", []string{"export", "reg/x:1"}, "-o FILE"},
		{"export without refs", []string{"export", "-o", "x.tar"}, "image reference"},
		{"import without destination", []string{"import", "x.tar"}, "--to"},
		{"verify two archives", []string{"verify", "a.tar", "b.tar"}, "exactly one"},
		{"unknown flag", []string{"verify", "--bogus", "a.tar"}, "bogus"},
		{"bad compression", []string{"export", "-o", "x", "--compress", "lz4", "r/x:1"}, "lz4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := relocateCmd(t, nil, tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
		})
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	forEachEntry(t, path, func(h *tar.Header, _ []byte) { names = append(names, h.Name) })
	return names
}

func readEntry(t *testing.T, path, name string, v any) {
	t.Helper()
	forEachEntry(t, path, func(h *tar.Header, data []byte) {
		if h.Name == name {
			if err := json.Unmarshal(data, v); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func forEachEntry(t *testing.T, path string, fn func(*tar.Header, []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h, data)
	}
}

// TestNameConflict: two images that would land on one name are a usage
// error (exit 2): the user picks another --to or imports them apart.
func TestNameConflict(t *testing.T) {
	needRegistries(t)
	// The same repository and tag on a second registry.
	other, _ := name.ParseReference(dst.Host+"/team/app-0:v1", name.Insecure)
	from, _ := name.ParseReference(refs[0], name.Insecure)
	img, err := remote.Image(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(other, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", refs[0], other.String())
	r := relocateCmd(t, nil, "import", path, "--to", dst.Host+"/conflict", "--plain-http")
	if r.code != exitUsage || !strings.Contains(r.stderr, "would both land on") {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	if tags := tagsUnder(t, "conflict"); len(tags) != 0 {
		t.Errorf("tagged %v", tags)
	}
}
