package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/relocate-dev/relocate/internal/testregistry"
)

// entry is one tar entry of an archive being tampered with.
type entry struct {
	hdr  *tar.Header
	data []byte
}

func readAll(t *testing.T, path string) []entry {
	t.Helper()
	var out []entry
	forEachEntry(t, path, func(h *tar.Header, data []byte) { out = append(out, entry{hdr: h, data: data}) })
	return out
}

func writeAll(t *testing.T, path string, es []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := *e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tocOf decodes the table of contents of an entry list.
func tocOf(t *testing.T, es []entry) (toc struct {
	Images []struct{ Ref, Digest string }
	Blobs  []struct {
		Digest, Kind string
		Size         int64
	}
}) {
	t.Helper()
	for _, e := range es {
		if e.hdr.Name == "relocate-toc.json" {
			if err := json.Unmarshal(e.data, &toc); err != nil {
				t.Fatal(err)
			}
		}
	}
	return toc
}

func blobName(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// uniqueLayer is a layer of images[1] that no other image uses.
func uniqueLayer(t *testing.T, es []entry) string {
	t.Helper()
	others := map[string]bool{}
	for i, im := range images {
		if i != 1 {
			for _, b := range im.Blobs {
				others[b] = true
			}
		}
	}
	toc := tocOf(t, es)
	for _, b := range toc.Blobs {
		if b.Kind == "layer" && slices.Contains(images[1].Blobs, b.Digest) && !others[b.Digest] {
			return b.Digest
		}
	}
	t.Fatal("no layer unique to images[1]")
	return ""
}

func edit(es []entry, name string, fn func(*entry)) []entry {
	out := slices.Clone(es)
	for i := range out {
		if out[i].hdr.Name == name {
			e := out[i]
			e.data = slices.Clone(e.data)
			fn(&e)
			out[i] = e
		}
	}
	return out
}

func regular(name string, data []byte) entry {
	return entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, data: data}
}

// synthetic builds a small archive around one manifest blob whose content
// is given, with a table of contents and index.json that agree with it.
func synthetic(manifest []byte, kind string) []entry {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(manifest))
	mt := "application/vnd.oci.image.manifest.v1+json"
	ref := "registry.example/team/bad:v1"
	toc, _ := json.Marshal(map[string]any{
		"schemaVersion": 1,
		"images":        []any{map[string]any{"ref": ref, "digest": d, "mediaType": mt, "size": len(manifest)}},
		"blobs":         []any{map[string]any{"digest": d, "size": len(manifest), "kind": kind, "mediaType": mt}},
	})
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{"mediaType": mt, "digest": d, "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "v1"}}},
	})
	return []entry{
		regular("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		regular("index.json", idx),
		regular("relocate-toc.json", toc),
		regular(blobName(d), manifest),
	}
}

func TestRefusals(t *testing.T) {
	needRegistries(t)
	base := filepath.Join(t.TempDir(), "good.tar")
	exportAll(t, base)
	good := readAll(t, base)
	layer := uniqueLayer(t, good)
	manifest := blobName(images[1].Digest)
	head := good[:3]

	tests := []struct {
		name string
		// build returns the bad archive's bytes, or entries to write.
		entries []entry
		raw     []byte
		want    string
		// partial: only images[1] is affected; the others may be imported.
		partial bool
	}{
		{name: "truncated", raw: mustRead(t, base)[:len(mustRead(t, base))/2], want: "truncated"},
		{name: "garbage", raw: garbage(1 << 20), want: "not a tar archive"},
		{name: "empty file", raw: []byte{}, want: "oci-layout missing"},
		{name: "flipped byte in a layer", entries: edit(good, blobName(layer), func(e *entry) { e.data[len(e.data)/2] ^= 0x40 }), want: layer[len("sha256:"):], partial: true},
		{name: "flipped byte in a manifest", entries: edit(good, manifest, func(e *entry) { e.data[10] ^= 0x01 }), want: manifest},
		{name: "path traversal", entries: append(slices.Clone(head), regular("../evil", []byte("x"))), want: `"../evil"`},
		{name: "absolute path", entries: append(slices.Clone(head), regular("/etc/relocate-evil", []byte("x"))), want: "/etc/relocate-evil"},
		{name: "symlink", entries: append(slices.Clone(head), entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: blobName(layer), Linkname: "/etc/passwd"}}), want: "link"},
		{name: "hard link", entries: append(slices.Clone(head), entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: blobName(layer), Linkname: "oci-layout"}}), want: "link"},
		{name: "device", entries: append(slices.Clone(head), entry{hdr: &tar.Header{Typeflag: tar.TypeChar, Name: blobName(layer), Devmajor: 1, Devminor: 3}}), want: "refused"},
		{name: "unknown entry", entries: append(slices.Clone(good), regular("run-me.sh", []byte("#!/bin/sh"))), want: "run-me.sh"},
		{name: "blob missing", entries: slices.DeleteFunc(slices.Clone(good), func(e entry) bool { return e.hdr.Name == blobName(layer) }), want: "missing from the archive", partial: true},
		{name: "entry larger than listed", entries: edit(good, blobName(layer), func(e *entry) { e.data = append(e.data, make([]byte, 4096)...) }), want: "the table of contents says"},
		{name: "blob not listed", entries: append(slices.Clone(good), regular(blobName(fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("extra")))), []byte("extra"))), want: "not listed in the table of contents"},
		{name: "manifest not JSON", entries: synthetic([]byte("this is not JSON"), "manifest"), want: "not valid JSON"},
		{name: "oversized manifest", entries: synthetic(bytes.Repeat([]byte(" "), 5<<20), "manifest"), want: "limit"},
		{name: "index disagrees with table of contents", entries: edit(good, "index.json", func(e *entry) {
			var idx map[string]any
			json.Unmarshal(e.data, &idx)
			idx["manifests"] = idx["manifests"].([]any)[1:]
			e.data, _ = json.Marshal(idx)
		}), want: "not in index.json"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar")
			if tc.entries != nil {
				writeAll(t, bad, tc.entries)
			} else if err := os.WriteFile(bad, tc.raw, 0o644); err != nil {
				t.Fatal(err)
			}
			v := relocateCmd(t, nil, "verify", bad, "--json")
			if v.code != exitRefused {
				t.Fatalf("verify: exit %d, want %d\n%s", v.code, exitRefused, v.stderr)
			}
			var rep struct {
				Verdict  string
				Problems []struct{ Subject, Reason string }
			}
			if err := json.Unmarshal([]byte(v.stdout), &rep); err != nil || rep.Verdict != "refused" || len(rep.Problems) == 0 {
				t.Errorf("verify --json of a refused archive: %v %+v\n%s", err, rep, v.stdout)
			}
			if !strings.Contains(v.stderr, tc.want) {
				t.Errorf("verify message lacks %q:\n%s", tc.want, v.stderr)
			}
			prefix := fmt.Sprintf("refused%d", i)
			r := relocateCmd(t, nil, "import", bad, "--to", dst.Host+"/"+prefix, "--plain-http")
			if r.code != exitRefused {
				t.Fatalf("import: exit %d, want %d\n%s", r.code, exitRefused, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("import message lacks %q:\n%s", tc.want, r.stderr)
			}
			tags := tagsUnder(t, prefix)
			if !tc.partial && len(tags) != 0 {
				t.Errorf("refused import tagged %v", tags)
			}
			repo, tag := repoTag(images[1].Ref)
			if slices.Contains(tags, prefix+"/"+repo+":"+tag) {
				t.Errorf("the affected image %s was tagged", images[1].Ref)
			}
			// Through a pipe, the same archive is refused too.
			if s := relocateCmd(t, pipeFrom(t, bad), "verify", "-"); s.code != exitRefused {
				t.Errorf("verify -: exit %d, want %d\n%s", s.code, exitRefused, s.stderr)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func garbage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRegistryFailsMidImport puts a proxy in front of the destination that
// refuses blob uploads after the first few: the import fails with exit 1,
// no tag points anywhere, and a rerun finishes the job.
func TestRegistryFailsMidImport(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, path)
	var uploads atomic.Int32
	proxyHost := dstProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && uploads.Add(1) > 3 {
			http.Error(w, "disk full", http.StatusInternalServerError)
			return true
		}
		return false
	})

	r := relocateCmd(t, nil, "import", path, "--to", proxyHost+"/flaky", "--plain-http", "--jobs", "1", "--retries", "1")
	if r.code != exitFailure {
		t.Fatalf("import through a failing registry: exit %d, want %d\n%s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "disk full") {
		t.Errorf("error does not carry the registry's message: %s", r.stderr)
	}
	if tags := tagsUnder(t, "flaky"); len(tags) != 0 {
		t.Fatalf("failed import left tags: %v", tags)
	}
	mustRun(t, "import", path, "--to", dst.Host+"/flaky", "--plain-http")
	checkDestination(t, "flaky")
}

// TestStreamedImportWithoutMounts: a registry that declines cross-repository
// mounts makes a streamed import upload a shared layer more than once; the
// stream is read once, so the second upload comes from a spooled copy.
func TestStreamedImportWithoutMounts(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar.zst")
	exportAll(t, path)
	var declined atomic.Int32
	host := dstProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if q := r.URL.Query(); q.Has("mount") {
			declined.Add(1)
			q.Del("mount")
			q.Del("from")
			r.URL.RawQuery = q.Encode()
		}
		return false
	})
	r := relocateCmd(t, pipeFrom(t, path), "import", "-", "--to", host+"/nomount", "--plain-http")
	if r.code != 0 {
		t.Fatalf("streamed import through a registry without mounts: exit %d\n%s", r.code, r.stderr)
	}
	if declined.Load() == 0 {
		t.Fatal("no mount was attempted: the test proves nothing")
	}
	checkDestination(t, "nomount")
}

// dstProxy puts a proxy in front of the destination registry and returns
// its host; intercept sees every request first and answers it itself by
// returning true. The proxy is closed when the test ends.
func dstProxy(t *testing.T, intercept func(http.ResponseWriter, *http.Request) bool) string {
	t.Helper()
	return testregistry.NewProxy(t, dst.Host, testregistry.ProxyOptions{Intercept: intercept}).Host
}
