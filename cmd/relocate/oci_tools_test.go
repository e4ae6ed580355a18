package main

// The archive is an OCI image layout that the ecosystem's own tools read:
// each image by its full original reference (three of them share the tag
// v1), with its signatures and other referrers found where those tools look
// for them in a layout. skopeo and podman (containers/image), oras and
// notation (oras-go's OCI store), containerd's ctr, and go-containerregistry's
// layout package (crane's library) run against an exported archive, with the
// commands docs/format.md gives.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testtools"
	"github.com/relocate-dev/relocate/layout"
)

// ociFixture is an exported archive and what the source registry says of
// its images.
type ociFixture struct {
	archive string // site.tar
	dir     string // site.tar extracted with tar -x
	images  []testimages.Image
	oci     []testimages.Image // OCI media types: containers/image finds only these by name
	docker  []testimages.Image // Docker media types
	// referrers maps a manifest digest to the digests of its referrers, as
	// the source registry lists them (sorted).
	referrers map[string][]string
	notation  []testimages.Image // signed with the real notation
	unsigned  testimages.Image   // signed with cosign only: notation finds nothing
	caPath    string             // the notation signer's CA
	// note is an annotation-only artifact that oras attached to app-0:
	// the OCI empty descriptor is its config and its one layer, and the
	// config of app-0's notation signature.
	note string
}

func newOCIFixture(t *testing.T) *ociFixture {
	t.Helper()
	ctx := t.Context()
	notation := testtools.Need(t, testtools.Notation)
	f := &ociFixture{referrers: map[string][]string{}}
	for _, s := range []testimages.Spec{
		// Three images that share the tag v1: the ambiguity a tag-only name had.
		{Repo: "ocitools/team/app-{i}", Tag: "v1", Count: 3, Layers: 2, LayerSize: 16 << 10, Shared: 1, Seed: 2101},
		{Repo: "ocitools/team/multi", Tag: "v2", Count: 1, Layers: 1, LayerSize: 16 << 10, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 2102},
		{Repo: "ocitools/legacy/app", Tag: "v1", Count: 1, Layers: 1, LayerSize: 16 << 10, Docker: true, Seed: 2103},
		{Repo: "ocitools/legacy/list", Tag: "v1", Count: 1, Layers: 1, LayerSize: 16 << 10, Platforms: []string{"linux/amd64", "linux/arm/v7"}, Docker: true, Seed: 2104},
	} {
		ims, err := testimages.Push(ctx, src.Host, s)
		if err != nil {
			t.Fatal(err)
		}
		f.images = append(f.images, ims...)
		if s.Docker {
			f.docker = append(f.docker, ims...)
		} else {
			f.oci = append(f.oci, ims...)
		}
	}
	app := f.oci[:3]

	// notation signs app-0, app-1, multi and the Docker image; app-1 also
	// has an SBOM, itself signed (a referrer of a referrer); app-2 has a
	// cosign signature (a tag, not a referrer).
	pki := testtools.NewNotationPKI(t, "release.example")
	f.caPath = pki.CAPath
	signEnv := pki.SignerEnv(t)
	sign := func(repo, digest string) {
		testtools.Run(t, ctx, signEnv, notation,
			"sign", "--insecure-registry", "--signature-format", "jws", repo+"@"+digest)
	}
	f.notation = []testimages.Image{app[0], app[1], f.oci[3], f.docker[0]}
	for _, im := range f.notation {
		sign(repoOf(im), im.Digest)
	}
	sbom, err := testimages.Attach(ctx, repoOf(app[1]), descOf(t, repoOf(app[1]), app[1].Digest), "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
	if err != nil {
		t.Fatal(err)
	}
	sign(repoOf(app[1]), sbom)
	oras := testtools.Need(t, testtools.Oras)
	out := testtools.Run(t, ctx, nil, oras, "attach", "--plain-http", "--artifact-type", "application/vnd.example.note", "--annotation", "note=reviewed", app[0].Ref)
	for _, line := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(line, "Digest: "); ok {
			f.note = strings.TrimSpace(d)
		}
	}
	if raw := stdoutOf(t, nil, oras, "manifest", "fetch", "--plain-http", repoOf(app[0])+"@"+f.note); !bytes.Contains(raw, []byte(`"layers":[{"mediaType":"application/vnd.oci.empty.v1+json"`)) {
		t.Fatalf("oras attach %s: not the empty descriptor as a layer:\n%s", f.note, raw)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := testimages.Sign(ctx, repoOf(app[2]), app[2].Digest, key); err != nil {
		t.Fatal(err)
	}
	f.unsigned = app[2]

	// What the registry lists, walked down from every image, is what a tool
	// must find in the layout.
	var walk func(repo, digest string)
	walk = func(repo, digest string) {
		d, err := name.NewDigest(repo+"@"+digest, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(d)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		for _, r := range m.Manifests {
			f.referrers[digest] = append(f.referrers[digest], r.Digest.String())
			walk(repo, r.Digest.String())
		}
		slices.Sort(f.referrers[digest])
	}
	for _, im := range f.images {
		walk(repoOf(im), im.Digest)
	}
	if len(f.referrers[app[1].Digest]) != 2 || len(f.referrers[sbom]) != 1 {
		t.Fatalf("source referrers %v: want a notation signature and an SBOM of app-1, and a signature of the SBOM", f.referrers)
	}
	for _, im := range f.images {
		if repo, tag := repoTag(im.Ref); headDigest(t, src.Host, repo, tag) != im.Digest {
			t.Fatalf("%s is not %s at the source", im.Ref, im.Digest)
		}
	}

	var refs []string
	for _, im := range f.images {
		refs = append(refs, im.Ref)
	}
	f.archive = exportRefs(t, refs...)
	mustRun(t, "verify", f.archive)
	// Byte-reproducible with the attachments listed: another export, the
	// references in reverse order, gives the same bytes.
	again := filepath.Join(t.TempDir(), "again.tar")
	slices.Reverse(refs)
	mustRun(t, append([]string{"export", "-o", again, "--plain-http", "-q"}, refs...)...)
	a, _ := os.ReadFile(f.archive)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Fatalf("two exports of the same content differ (%d and %d bytes)", len(a), len(b))
	}
	f.dir = t.TempDir()
	testtools.Run(t, ctx, nil, "tar", "-xf", f.archive, "-C", f.dir)
	return f
}

// stdoutOf runs a tool and returns its standard output alone (the raw
// manifest a tool prints must not be mixed with warnings), failing t with
// both streams when it exits non-zero.
func stdoutOf(t *testing.T, env []string, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.Bytes()
}

// repoOf is the repository of an image pushed by tag (HOST/path).
func repoOf(im testimages.Image) string { return im.Ref[:strings.LastIndex(im.Ref, ":")] }

func sha256Digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// referrerLines renders the referrers reachable from digest, one
// "subject -> [referrers]" line per manifest that has any, sorted.
func referrerLines(referrers map[string][]string, digest string) string {
	var lines []string
	var walk func(string)
	walk = func(d string) {
		if rs := referrers[d]; len(rs) > 0 {
			lines = append(lines, fmt.Sprintf("%s -> %v", d, rs))
			for _, r := range rs {
				walk(r)
			}
		}
	}
	walk(digest)
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// discovered is oras discover's JSON tree.
type discovered struct {
	Digest    string       `json:"digest"`
	Referrers []discovered `json:"referrers"`
}

func (d discovered) flatten(into map[string][]string) map[string][]string {
	for _, r := range d.Referrers {
		into[d.Digest] = append(into[d.Digest], r.Digest)
		r.flatten(into)
	}
	slices.Sort(into[d.Digest])
	return into
}

func TestArchiveInOCITools(t *testing.T) {
	needRegistries(t)
	f := newOCIFixture(t)
	ctx := t.Context()

	t.Run("index.json", func(t *testing.T) {
		var idx v1.IndexManifest
		readEntry(t, f.archive, layout.IndexFile, &idx)
		var toc layout.TOC
		readEntry(t, f.archive, layout.TOCFile, &toc)
		named := map[string]string{}
		var unnamed []string
		for _, d := range idx.Manifests {
			ref, ok := d.Annotations[layout.AnnotationImageName]
			if !ok {
				unnamed = append(unnamed, d.Digest.String())
				continue
			}
			if d.Annotations[layout.AnnotationRefName] != ref {
				t.Errorf("%s: ref.name %q, want the full reference", ref, d.Annotations[layout.AnnotationRefName])
			}
			named[ref] = d.Digest.String()
		}
		for _, im := range f.images {
			if named[im.Ref] != im.Digest {
				t.Errorf("index.json names %s %q, the source registry %s", im.Ref, named[im.Ref], im.Digest)
			}
		}
		var attached []string
		for _, a := range toc.Attachments {
			attached = append(attached, a.Digest.String())
		}
		slices.Sort(attached)
		attached = slices.Compact(attached)
		if len(named) != len(f.images) || !slices.Equal(unnamed, attached) {
			t.Errorf("index.json: %d named entries and unnamed %v; want %d images and every attached manifest %v", len(named), unnamed, len(f.images), attached)
		}
	})

	// index.json is what other tools read: relocate refuses one that would
	// lead them elsewhere than the table of contents says.
	t.Run("misleading index.json refused", func(t *testing.T) {
		good := readAll(t, f.archive)
		var toc layout.TOC
		readEntry(t, f.archive, layout.TOCFile, &toc)
		var notationSig string
		for _, a := range toc.Attachments {
			if a.ArtifactType == "application/vnd.cncf.notary.signature" && a.Subject.String() == f.oci[0].Digest {
				notationSig = a.Digest.String()
			}
		}
		editIndex := func(fn func(ms []v1.Descriptor) []v1.Descriptor) []entry {
			return edit(good, layout.IndexFile, func(e *entry) {
				var idx v1.IndexManifest
				if err := json.Unmarshal(e.data, &idx); err != nil {
					t.Fatal(err)
				}
				idx.Manifests = fn(idx.Manifests)
				e.data, _ = json.Marshal(idx)
			})
		}
		find := func(ms []v1.Descriptor, digest string) *v1.Descriptor {
			i := slices.IndexFunc(ms, func(d v1.Descriptor) bool { return d.Digest.String() == digest })
			if i < 0 {
				t.Fatalf("index.json lists no %s", digest)
			}
			return &ms[i]
		}
		for i, tc := range []struct {
			name    string
			entries []entry
			subject string
			want    string
		}{
			{"an image under another's name", editIndex(func(ms []v1.Descriptor) []v1.Descriptor {
				find(ms, f.oci[0].Digest).Annotations[layout.AnnotationRefName] = f.oci[1].Ref
				return ms
			}), f.oci[0].Ref, "another tool would find it under that name"},
			{"a signature under an image's name", editIndex(func(ms []v1.Descriptor) []v1.Descriptor {
				find(ms, notationSig).Annotations = map[string]string{layout.AnnotationRefName: f.oci[0].Ref}
				return ms
			}), notationSig, "it must carry no name"},
			{"a signature left out", editIndex(func(ms []v1.Descriptor) []v1.Descriptor {
				return slices.DeleteFunc(ms, func(d v1.Descriptor) bool { return d.Digest.String() == notationSig })
			}), notationSig, "not in index.json"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bad := filepath.Join(t.TempDir(), "bad.tar")
				writeAll(t, bad, tc.entries)
				prefix := fmt.Sprintf("ocitools-refused%d", i)
				for _, args := range [][]string{{"verify", bad}, {"import", bad, "--to", dst.Host + "/" + prefix, "--plain-http"}} {
					r := relocateCmd(t, nil, args...)
					if r.code != exitRefused || !strings.Contains(r.stderr, tc.subject+": ") || !strings.Contains(r.stderr, tc.want) {
						t.Errorf("%s: exit %d, want %d naming %s: %s\n%s", args[0], r.code, exitRefused, tc.subject, tc.want, r.stderr)
					}
				}
				if repos := catalog(t, dst.Host, prefix); len(repos) != 0 {
					t.Errorf("refused import pushed to %v", repos)
				}
			})
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		skopeo := testtools.Need(t, "skopeo")
		env := []string{"TMPDIR=" + t.TempDir()} // oci-archive: unpacks there
		for _, im := range f.oci {
			for _, ref := range []string{"oci-archive:" + f.archive + ":" + im.Ref, "oci:" + f.dir + ":" + im.Ref} {
				if got := sha256Digest(stdoutOf(t, env, skopeo, "inspect", "--raw", ref)); got != im.Digest {
					t.Errorf("skopeo inspect --raw %s: %s, want %s", ref, got, im.Digest)
				}
			}
		}
		// The tag alone names nothing: it used to name three images.
		if out, err := testtools.Output(ctx, env, skopeo, "inspect", "--raw", "oci:"+f.dir+":v1"); err == nil {
			t.Errorf("skopeo found an image named v1:\n%s", out)
		}
		// containers/image looks names up among OCI media types only; the
		// documentation says so, and says what to use instead.
		for _, im := range f.docker {
			out, err := testtools.Output(ctx, env, skopeo, "inspect", "--raw", "oci:"+f.dir+":"+im.Ref)
			if err == nil || !strings.Contains(out, "no descriptor found") {
				t.Errorf("skopeo reads the Docker-media-type image %s from a layout (err %v): update docs/format.md\n%s", im.Ref, err, out)
			}
		}
		// A copy reads every blob and keeps the digest.
		policy := writeFile(t, "policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
		im := f.oci[1]
		testtools.Run(t, ctx, env, skopeo, "--policy", policy, "copy", "--preserve-digests", "--dest-tls-verify=false",
			"oci-archive:"+f.archive+":"+im.Ref, "docker://"+dst.Host+"/ocitools-skopeo/app-1:v1")
		if got := headDigest(t, dst.Host, "ocitools-skopeo/app-1", "v1"); got != im.Digest {
			t.Errorf("skopeo copy landed %s, want %s", got, im.Digest)
		}
	})

	// The annotation-only artifact lands with its digest: its one blob is
	// its config and its layer at once, and a notation signature's config.
	t.Run("import", func(t *testing.T) {
		const prefix = "ocitools-import"
		mustRun(t, "import", f.archive, "--to", dst.Host+"/"+prefix, "--plain-http", "-q")
		app0 := f.oci[0]
		repo, tag := repoTag(app0.Ref)
		if got := headDigest(t, dst.Host, prefix+"/"+repo, tag); got != app0.Digest {
			t.Errorf("%s at the destination: %q, want %s", app0.Ref, got, app0.Digest)
		}
		if got := headDigest(t, dst.Host, prefix+"/"+repo, f.note); got != f.note {
			t.Errorf("the oras note %s of %s at the destination: %q", f.note, app0.Ref, got)
		}
	})

	t.Run("oras", func(t *testing.T) {
		oras := testtools.Need(t, testtools.Oras)
		for _, im := range f.images {
			// --oci-layout-path takes the layout (directory or tar) apart
			// from the reference: --oci-layout DIR:REF splits at the last
			// colon, which a full reference holds.
			for _, l := range []string{f.dir, f.archive} {
				if got := sha256Digest(stdoutOf(t, nil, oras, "manifest", "fetch", "--oci-layout-path", l, im.Ref)); got != im.Digest {
					t.Errorf("oras manifest fetch --oci-layout-path %s %s: %s, want %s", l, im.Ref, got, im.Digest)
				}
			}
			// The digest docs/format.md gives notation.
			if got := strings.TrimSpace(string(stdoutOf(t, nil, oras, "resolve", "--oci-layout-path", f.dir, im.Ref))); got != im.Digest {
				t.Errorf("oras resolve --oci-layout-path %s %s: %s, want %s", f.dir, im.Ref, got, im.Digest)
			}
			var tree discovered
			if err := json.Unmarshal(stdoutOf(t, nil, oras, "discover", "--format", "json", "--oci-layout-path", f.dir, im.Ref), &tree); err != nil {
				t.Fatal(err)
			}
			if got, want := referrerLines(tree.flatten(map[string][]string{}), im.Digest), referrerLines(f.referrers, im.Digest); got != want {
				t.Errorf("oras discover %s in the layout:\n%s\nthe source registry lists:\n%s", im.Ref, got, want)
			}
		}
		// A recursive copy out of the layout carries the referrers.
		im := f.oci[1]
		to := dst.Host + "/ocitools-oras/app-1:v1"
		testtools.Run(t, ctx, nil, oras, "cp", "-r", "--from-oci-layout-path", f.dir, "--to-plain-http", im.Ref, to)
		var tree discovered
		if err := json.Unmarshal(stdoutOf(t, nil, oras, "discover", "--format", "json", "--plain-http", to), &tree); err != nil {
			t.Fatal(err)
		}
		if got, want := referrerLines(tree.flatten(map[string][]string{}), im.Digest), referrerLines(f.referrers, im.Digest); tree.Digest != im.Digest || got != want || want == "" {
			t.Errorf("after oras cp -r, %s (%s) has referrers:\n%s\nwant:\n%s", to, tree.Digest, got, want)
		}
	})

	t.Run("notation", func(t *testing.T) {
		notation := testtools.Need(t, testtools.Notation)
		site := t.TempDir()
		store := filepath.Join(site, "notation", "truststore", "x509", "ca", "site")
		os.MkdirAll(store, 0o700)
		ca, _ := os.ReadFile(f.caPath)
		os.WriteFile(filepath.Join(store, "ca.pem"), ca, 0o600)
		os.WriteFile(filepath.Join(site, "notation", "trustpolicy.json"), []byte(notationTrustPolicy(notationIdentity)), 0o600)
		// notation reads a layout directory, by digest (DIR@DIGEST: a full
		// reference after DIR: would split at its last colon), under
		// NOTATION_EXPERIMENTAL with a trust policy scope.
		env := []string{"XDG_CONFIG_HOME=" + site, "HOME=" + site, "NOTATION_EXPERIMENTAL=1"}
		verify := func(im testimages.Image) (string, error) {
			return testtools.Output(ctx, env, notation, "verify", "--oci-layout", "--scope", repoOf(im), f.dir+"@"+im.Digest)
		}
		for _, im := range f.notation {
			if out, err := verify(im); err != nil || !strings.Contains(out, "Successfully verified") {
				t.Errorf("notation verify --oci-layout %s (%s): %v\n%s", im.Digest, im.Ref, err, out)
			}
		}
		if out, err := verify(f.unsigned); err == nil || !strings.Contains(out, "no signature is associated") {
			t.Errorf("notation verify of %s, which it never signed: %v\n%s", f.unsigned.Ref, err, out)
		}
	})

	t.Run("go-containerregistry layout and crane", func(t *testing.T) {
		// crane's library reads the layout: each image found by its
		// ref.name, once, and every blob checked against its digest.
		p, err := ggcrlayout.FromPath(f.dir)
		if err != nil {
			t.Fatal(err)
		}
		ii, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		m, err := ii.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.images {
			var found []v1.Descriptor
			for _, d := range m.Manifests {
				if d.Annotations[layout.AnnotationRefName] == im.Ref {
					found = append(found, d)
				}
			}
			if len(found) != 1 || found[0].Digest.String() != im.Digest {
				t.Errorf("%s: found %v, want %s once", im.Ref, found, im.Digest)
				continue
			}
			if found[0].MediaType.IsIndex() {
				child, err := ii.ImageIndex(found[0].Digest)
				if err == nil {
					err = validate.Index(child)
				}
				if err != nil {
					t.Errorf("%s: %v", im.Ref, err)
				}
				continue
			}
			img, err := ii.Image(found[0].Digest)
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("%s: %v", im.Ref, err)
			}
		}
		// The crane CLI has no command that picks an image out of a layout
		// (crane push reads a layout of one entry, or all of it as one
		// index); the documentation says so.
		crane := testtools.Need(t, testtools.Crane)
		out, err := testtools.Output(ctx, nil, crane, "push", "--insecure", f.dir, dst.Host+"/ocitools-crane/app:v1")
		if err == nil || !strings.Contains(out, "consider --index") {
			t.Errorf("crane push of a layout of many entries: %v: update docs/format.md\n%s", err, out)
		}
	})

	t.Run("ctr", func(t *testing.T) {
		containerd, ctr := testtools.Need(t, "containerd"), testtools.Need(t, "ctr")
		if os.Geteuid() != 0 {
			t.Skip("containerd runs as root")
		}
		sock := startContainerd(t, containerd, ctr)
		base := []string{"--address", sock, "--namespace", "relocate-test"}
		// --no-unpack: unpacking needs a snapshotter that mounts, which says
		// nothing about the archive.
		testtools.Run(t, ctx, nil, ctr, append(base, "images", "import", "--all-platforms", "--no-unpack", f.archive)...)
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(stdoutOf(t, nil, ctr, append(base, "images", "ls")...))), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) >= 3 {
				got[fs[0]] = fs[2]
			}
		}
		want := map[string]string{}
		for _, im := range f.images {
			want[im.Ref] = im.Digest
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ctr images ls after import:\n%v\nwant:\n%v", got, want)
		}
	})

	t.Run("podman", func(t *testing.T) {
		podman := testtools.Need(t, "podman")
		if os.Geteuid() != 0 {
			t.Skip("podman runs as root here (rootless needs subordinate ids)")
		}
		root := t.TempDir()
		policy := writeFile(t, "policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
		base := []string{"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run"), "--tmpdir", filepath.Join(root, "tmp"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
		env := []string{"TMPDIR=" + t.TempDir()}
		// Two of the three images tagged v1, each by its full name.
		for _, im := range []testimages.Image{f.oci[0], f.oci[2]} {
			testtools.Run(t, ctx, env, podman, append(base, "pull", "--signature-policy", policy, "oci-archive:"+f.archive+":"+im.Ref)...)
			if got := strings.TrimSpace(string(stdoutOf(t, env, podman, append(base, "image", "inspect", "--format", "{{.Digest}}", im.Ref)...))); got != im.Digest {
				t.Errorf("podman image %s: digest %s, want %s", im.Ref, got, im.Digest)
			}
		}
	})
}

// startContainerd runs a containerd of its own for t, on a socket and
// directories of its own (the default ones may belong to a system daemon),
// and stops it when t ends.
func startContainerd(t *testing.T, containerd, ctr string) string {
	t.Helper()
	// A short directory: a unix socket path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := testtools.Output(t.Context(), nil, ctr, "--address", sock, "version"); err == nil {
			return sock
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not answer on %s within 30s:\n%s", sock, log)
		}
	}
}
