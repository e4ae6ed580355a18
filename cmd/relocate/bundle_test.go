package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	neturl "net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ocilayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testtuf"
)

// bundleJSON names images[0] as the invocation image and images[1] and the
// multi-platform images[3] as components, pinned by contentDigest unless
// pins overrides a digest.
func bundleJSON(t *testing.T, pins map[string]string) []byte {
	t.Helper()
	pin := func(i int) string {
		if d, ok := pins[images[i].Ref]; ok {
			return d
		}
		return images[i].Digest
	}
	doc := map[string]any{
		"schemaVersion": "v1.2.0", "name": "shop", "version": "1.0.0",
		"invocationImages": []any{map[string]any{"imageType": "docker", "image": images[0].Ref, "contentDigest": pin(0), "mediaType": images[0].MediaType}},
		"images": map[string]any{
			"web": map[string]any{"imageType": "docker", "image": images[1].Ref, "contentDigest": pin(1), "mediaType": images[1].MediaType},
			"db":  map[string]any{"imageType": "oci", "image": images[3].Ref, "contentDigest": pin(3), "mediaType": images[3].MediaType},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

func writeBundle(t *testing.T, raw []byte) string {
	p := filepath.Join(t.TempDir(), "bundle.json")
	os.WriteFile(p, raw, 0o644)
	return p
}

// readBundle reads a relocated bundle with go-containerregistry, as a CNAB
// client reads the cnab-to-oci form, independent of relocate's code paths.
func readBundle(t *testing.T, ref string) *bundle.Stored {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("bundle %s: %v", ref, err)
	}
	stored, err := bundle.ParseStored(desc.Manifest, func(h v1.Hash) ([]byte, error) {
		if d, err := remote.Get(r.Context().Digest(h.String())); err == nil {
			return d.Manifest, nil
		}
		l, err := remote.Layer(r.Context().Digest(h.String()))
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		return buf.Bytes(), err
	})
	if err != nil {
		t.Fatalf("bundle %s does not read back: %v", ref, err)
	}
	return stored
}

func TestBundleFromFile(t *testing.T) {
	needRegistries(t)
	raw := bundleJSON(t, nil)
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	ref := "registry.example.com/shop/bundle:1.0.0"
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", "--bundle", writeBundle(t, raw)+"="+ref)

	r := mustRun(t, "verify", path, "--json")
	var vrep struct {
		Images  []struct{ Ref string }
		Bundles []struct{ Ref, SecurityLevel string }
	}
	json.Unmarshal([]byte(r.stdout), &vrep)
	if len(vrep.Bundles) != 1 || vrep.Bundles[0].SecurityLevel != "0" || len(vrep.Images) != 4 {
		t.Fatalf("verify: %+v", vrep)
	}
	maps := t.TempDir()
	mustRun(t, "import", path, "--to", dst.Host+"/cnab", "--plain-http", "--relocation-mapping", maps)
	moved := dst.Host + "/cnab/shop/bundle"
	stored := readBundle(t, moved+":1.0.0")
	if stored.Bundle.Digest.String() != sum || !bytes.Equal(stored.Bundle.Raw, raw) {
		t.Fatalf("bundle.json at destination: %s, want %s", stored.Bundle.Digest, sum)
	}
	for key, i := range map[string]int{"invocation-0": 0, "web": 1, "db": 3} {
		if got := stored.Images[key].Digest.String(); got != images[i].Digest {
			t.Errorf("image %s: %s at destination, want %s", key, got, images[i].Digest)
		}
	}
	// The images also keep their own names.
	checkTag(t, "cnab", images[1])
	// relocation-mapping.json: every image of the bundle, to the bundle's repository by digest.
	data, err := os.ReadFile(filepath.Join(maps, "registry.example.com_shop_bundle_1.0.0.relocation-mapping.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	json.Unmarshal(data, &m)
	for _, i := range []int{0, 1, 3} {
		if want := moved + "@" + images[i].Digest; m[images[i].Ref] != want {
			t.Errorf("mapping[%s] = %q, want %q", images[i].Ref, m[images[i].Ref], want)
		}
	}
	// ... and attached to the bundle.
	sub, _ := name.NewDigest(moved+"@"+descOf(t, moved, stored.Config.Digest.String()).Digest.String(), name.Insecure)
	_ = sub
	idx, _ := name.ParseReference(moved+":1.0.0", name.Insecure)
	top, _ := remote.Head(idx)
	refs, err := remote.Referrers(idx.Context().Digest(top.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := refs.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].ArtifactType != "application/vnd.cnab.relocation-mapping.v1+json" {
		t.Errorf("bundle referrers: %+v", im.Manifests)
	}
}

func TestBundleFromRegistry(t *testing.T) {
	needRegistries(t)
	raw := bundleJSON(t, nil)
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Store the bundle the cnab-to-oci way in the source: images copied into
	// the bundle's repository by digest, bundle.json, the config manifest, the index.
	repo, _ := name.NewRepository(src.Host+"/stored/shop", name.Insecure)
	descs := map[string]v1.Descriptor{}
	for key, i := range map[string]int{"invocation-0": 0, "web": 1, "db": 3} {
		from, _ := name.ParseReference(images[i].Ref, name.Insecure)
		d, err := remote.Get(from)
		if err != nil {
			t.Fatal(err)
		}
		if d.MediaType.IsIndex() {
			idx, _ := d.ImageIndex()
			err = remote.WriteIndex(repo.Digest(d.Digest.String()), idx)
		} else {
			img, _ := d.Image()
			err = remote.Write(repo.Digest(d.Digest.String()), img)
		}
		if err != nil {
			t.Fatal(err)
		}
		descs[key] = d.Descriptor
	}
	index, config, err := bundle.BuildStored(b, descs)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repo, static.NewLayer(raw, bundle.ConfigMediaType)); err != nil {
		t.Fatal(err)
	}
	cd := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
	if err := remote.Put(repo.Digest(cd), rawManifest(config, types.OCIManifestSchema1)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Tag("1.0.0"), rawManifest(index, types.OCIImageIndex)); err != nil {
		t.Fatal(err)
	}
	indexDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(index))

	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", "--bundle", repo.Tag("1.0.0").String())
	mustRun(t, "import", path, "--to", dst.Host+"/cnab2", "--plain-http")
	moved := dst.Host + "/cnab2/stored/shop:1.0.0"
	if got := headDigest(t, dst.Host, "cnab2/stored/shop", "1.0.0"); got != indexDigest {
		t.Errorf("bundle index digest %s at destination, want %s (unchanged)", got, indexDigest)
	}
	if stored := readBundle(t, moved); stored.Bundle.Digest != b.Digest {
		t.Errorf("bundle.json digest %s, want %s", stored.Bundle.Digest, b.Digest)
	}
}

type rawM struct {
	raw []byte
	mt  types.MediaType
}

func (r rawM) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawM) MediaType() (types.MediaType, error) { return r.mt, nil }

func rawManifest(b []byte, mt types.MediaType) rawM { return rawM{b, mt} }

// TestBundleContentDigestMismatch: an image that is not the manifest its
// contentDigest pins is refused at export, and nothing is written.
func TestBundleContentDigestMismatch(t *testing.T) {
	needRegistries(t)
	wrong := "sha256:" + strings.Repeat("0", 64)
	raw := bundleJSON(t, map[string]string{images[1].Ref: wrong})
	dir := t.TempDir()
	r := relocateCmd(t, nil, "export", "-o", filepath.Join(dir, "site.tar"), "--plain-http", "--bundle", writeBundle(t, raw)+"=registry.example.com/shop/bundle:1.0.0")
	if r.code != exitRefused || !strings.Contains(r.stderr, images[1].Ref) || !strings.Contains(r.stderr, wrong) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused export left %v", ents)
	}
}

// TestBundleUnderTUF: the bundle is vouched for by a TUF target named after
// it with bundle.json's hashes; its pinned images are vouched for through it
// (CNAB Security level 2), and a policy can demand more.
func TestBundleUnderTUF(t *testing.T) {
	needRegistries(t)
	raw := bundleJSON(t, nil)
	ref := "registry.example.com/shop/bundle:1.0.0"
	repo, err := testtuf.New(testtuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(raw))
	repo.AddTarget("targets", ref, sum, int64(len(raw)), nil)
	repo.Publish()
	root := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(root, repo.Root(1), 0o644)
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", "--bundle", writeBundle(t, raw)+"="+ref, "--tuf", "shop="+repo.Serve(t))

	state := t.TempDir()
	r := mustRun(t, "verify", path, "--state", state, "--trust", "shop="+root, "--json")
	var rep struct {
		Bundles []struct{ SecurityLevel string }
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	if len(rep.Bundles) != 1 || rep.Bundles[0].SecurityLevel != "2" {
		t.Fatalf("security level: %+v\n%s", rep.Bundles, r.stderr)
	}
	policy := writePolicy(t, `{"cnabMinSecurityLevel": 3}`)
	r = relocateCmd(t, nil, "import", path, "--to", dst.Host+"/cnab3", "--plain-http", "--state", state, "--trust", "shop="+root, "--policy", policy)
	if r.code != exitRefused || !strings.Contains(r.stderr, "below the policy's minimum 3") {
		t.Fatalf("import below the minimum level: exit %d\n%s", r.code, r.stderr)
	}
	if tags := tagsUnder(t, "cnab3"); len(tags) != 0 {
		t.Errorf("tagged %v", tags)
	}
	// The bundle vouches for its images under their own names only: the same
	// digest under another name is not vouched for.
	from, _ := name.ParseReference(images[1].Ref, name.Insecure)
	desc, err := remote.Get(from)
	if err != nil {
		t.Fatal(err)
	}
	alias, _ := name.ParseReference(src.Host+"/team/alias:prod", name.Insecure)
	img, _ := desc.Image()
	if err := remote.Write(alias, img); err != nil {
		t.Fatal(err)
	}
	withAlias := filepath.Join(t.TempDir(), "alias.tar")
	mustRun(t, "export", "-o", withAlias, "--plain-http", "-q", "--bundle", writeBundle(t, raw)+"="+ref, alias.String(), "--tuf", "shop="+repo.Serve(t))
	r = relocateCmd(t, nil, "verify", withAlias, "--state", t.TempDir(), "--trust", "shop="+root)
	if r.code != exitRefused || !strings.Contains(r.stderr, alias.String()+": not vouched for") {
		t.Fatalf("an alias of a pinned image: exit %d\n%s", r.code, r.stderr)
	}

	// A bundle.json TUF does not vouch for is refused.
	other := bundleJSON(t, nil)
	other = bytes.Replace(other, []byte(`"1.0.0"`), []byte(`"1.0.1"`), 1)
	path2 := filepath.Join(t.TempDir(), "other.tar")
	mustRun(t, "export", "-o", path2, "--plain-http", "-q", "--bundle", writeBundle(t, other)+"="+ref, "--tuf", "shop="+repo.Serve(t))
	r = relocateCmd(t, nil, "verify", path2, "--state", state, "--trust", "shop="+root)
	if r.code != exitRefused || !strings.Contains(r.stderr, "bundle not vouched for") {
		t.Fatalf("unvouched bundle: exit %d\n%s", r.code, r.stderr)
	}
	_ = context.Background
	_ = testimages.Image{}
}

// TestBundleInToto: CNAB Security with real in-toto chains made by the
// Debian in-toto tools: the bundle's TUF target names the root layout, its
// key and the links as TUF targets; the chain's final product must be
// bundle.json with the digest TUF vouched for. One chain has a sublayout,
// whose links travel as "<bundle-sha256>/supply.<keyid8>/<substep>.<keyid8>.link".
func TestBundleInToto(t *testing.T) {
	needRegistries(t)
	if _, err := exec.LookPath("in-toto-run"); err != nil {
		if os.Getenv("RELOCATE_REQUIRE_INTOTO") == "1" {
			t.Fatal("in-toto-run not found and RELOCATE_REQUIRE_INTOTO=1 (apt-get install in-toto)")
		}
		t.Skip("in-toto-run not found (apt-get install in-toto)")
	}
	raw := bundleJSON(t, nil)
	file := writeBundle(t, raw)
	ref := "registry.example.com/shop/bundle:1.0.0"
	sum := fmt.Sprintf("%x", sha256.Sum256(raw))

	// record runs a chain script and names its files as the bundle's TUF
	// target would: the layout and key under in-toto/, the links (with
	// their sublayout directories) under <bundle-sha256>/.
	record := func(script string) (files map[string][]byte, names []string, chain string) {
		chain = t.TempDir()
		if out, err := exec.Command("../../testdata/intoto/"+script, file, chain).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		files = map[string][]byte{}
		for _, f := range []string{"root.layout", "owner.pub"} {
			b, err := os.ReadFile(filepath.Join(chain, f))
			if err != nil {
				t.Fatal(err)
			}
			files["in-toto/"+f] = b
		}
		linkDir := chain
		if _, err := os.Stat(filepath.Join(chain, "links")); err == nil {
			linkDir = filepath.Join(chain, "links")
		}
		err := filepath.WalkDir(linkDir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".link") {
				return err
			}
			rel, _ := filepath.Rel(linkDir, p)
			files[sum+"/"+filepath.ToSlash(rel)], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files, slices.Sorted(maps.Keys(files)), chain
	}
	flat, flatNames, _ := record("bundle-chain.sh")
	sub, subNames, subChain := record("sublayout-chain.sh")
	keyID8 := map[string]string{}
	ids, _ := os.ReadFile(filepath.Join(subChain, "keyids"))
	for _, l := range strings.Split(strings.TrimSpace(string(ids)), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			keyID8[k] = v
		}
	}
	variant := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(subChain, "variants", p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	supply := "supply." + keyID8["carol"]
	subLink := sum + "/" + supply + ".link"
	fetch := sum + "/" + supply + "/fetch." + keyID8["alice"] + ".link"
	pkg := sum + "/" + supply + "/package." + keyID8["bob"] + ".link"
	malloryPkg := sum + "/" + supply + "/package." + keyID8["mallory"] + ".link"
	dotdot := sum + "/" + supply + "/../" + supply + "/package." + keyID8["bob"] + ".link"
	// with returns files with some replaced or added, and their names.
	with := func(files map[string][]byte, del string, add map[string][]byte) (map[string][]byte, []string) {
		files = maps.Clone(files)
		delete(files, del)
		maps.Copy(files, add)
		return files, slices.Sorted(maps.Keys(files))
	}
	without := func(names []string, n string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == n })
	}

	// serve publishes the in-toto files as targets and the bundle's target
	// naming names.
	serve := func(t *testing.T, bundleRaw []byte, files map[string][]byte, names []string) (url, root string) {
		repo, err := testtuf.New(testtuf.Options{})
		if err != nil {
			t.Fatal(err)
		}
		targets := map[string][]byte{}
		for n, b := range files {
			s := fmt.Sprintf("%x", sha256.Sum256(b))
			repo.AddTarget("targets", n, s, int64(len(b)), nil)
			// Consistent-snapshot name: the hash prefixes the base name.
			dir, base := path.Split(n)
			targets["targets/"+dir+s+"."+base] = b
		}
		custom, _ := json.Marshal(map[string]any{"in-toto": names})
		repo.AddTarget("targets", ref, fmt.Sprintf("%x", sha256.Sum256(bundleRaw)), int64(len(bundleRaw)), custom)
		repo.Publish()
		all := repo.Files()
		for n, b := range targets {
			all[neturl.PathEscape(n)] = b
		}
		root = filepath.Join(t.TempDir(), "root.json")
		os.WriteFile(root, repo.Root(1), 0o644)
		return testtuf.ServeFiles(t, all), root
	}
	var flatLink string
	for n := range flat {
		if strings.HasSuffix(n, ".link") {
			flatLink = n
		}
	}
	expiredFiles, expiredNames := with(sub, subLink, map[string][]byte{subLink: variant("expired/" + supply + ".link")})
	malloryFiles, malloryNames := with(sub, pkg, map[string][]byte{malloryPkg: variant("mallory/package." + keyID8["mallory"] + ".link")})
	dotdotFiles, dotdotNames := with(sub, pkg, map[string][]byte{dotdot: sub[pkg]})

	tests := []struct {
		name   string
		bundle []byte
		files  map[string][]byte
		names  []string
		want   string // "" = accepted
		steps  string // accepted: the steps the report lists
	}{
		{"good chain", raw, flat, flatNames, "", "steps package;"},
		{"bundle.json is not the chain's product", bytes.Replace(raw, []byte(`"1.0.0"`), []byte(`"1.0.1"`), 1), flat, flatNames,
			"in-toto: in-toto verification failed: final product bundle.json: sha256:", ""},
		{"missing link", raw, flat, without(flatNames, flatLink),
			"root layout: step 'package' requires '1' link metadata file(s), found '0'; no valid " + path.Base(flatLink), ""},
		{"good chain with a sublayout", raw, sub, subNames, "",
			"steps " + supply + "/fetch, " + supply + "/package, supply;"},
		{"missing sublayout link", raw, sub, without(subNames, fetch),
			"sublayout " + supply + ": step 'fetch' requires '1' link metadata file(s), found '0'; no valid " + supply + "/fetch." + keyID8["alice"] + ".link", ""},
		{"sublayout link by an unauthorized key", raw, malloryFiles, malloryNames,
			"sublayout " + supply + ": step 'package' requires '1' link metadata file(s). '0' out of '1' available link(s) have a valid signature", ""},
		{"expired sublayout", raw, expiredFiles, expiredNames, "sublayout " + supply + ": expired at 2021-01-01T00:00:00Z", ""},
		{"dot-dot in a sublayout link's name", raw, dotdotFiles, dotdotNames,
			"in-toto file " + dotdot + `: "` + dotdot + `" has an empty, "." or ".." component`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, root := serve(t, tc.bundle, tc.files, tc.names)
			path := filepath.Join(t.TempDir(), "site.tar")
			mustRun(t, "export", "-o", path, "--plain-http", "-q", "--bundle", writeBundle(t, tc.bundle)+"="+ref, "--tuf", "shop="+url)
			r := relocateCmd(t, nil, "verify", path, "--state", t.TempDir(), "--trust", "shop="+root, "--json")
			if tc.want != "" {
				if r.code != exitRefused || !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("exit %d, want %d and %q\n%s", r.code, exitRefused, tc.want, r.stderr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			var rep struct {
				Bundles []struct{ SecurityLevel, InToto string }
			}
			json.Unmarshal([]byte(r.stdout), &rep)
			if len(rep.Bundles) != 1 || rep.Bundles[0].SecurityLevel != "3b" ||
				!strings.Contains(rep.Bundles[0].InToto, tc.steps) || !strings.Contains(rep.Bundles[0].InToto, "inspections not run") {
				t.Fatalf("bundles: %+v", rep.Bundles)
			}
			r = mustRun(t, "verify", path, "--state", t.TempDir(), "--trust", "shop="+root, "--run-inspections", "--json")
			if !strings.Contains(r.stdout, "inspections run: check") {
				t.Errorf("--run-inspections did not run the inspection:\n%s", r.stdout)
			}
		})
	}
}

// TestBundleThick exports a thick bundle (.tgz with bundle.json and an OCI
// layout of its images, as cnab-go's packager makes it) without any
// registry, and imports it with the same digests.
func TestBundleThick(t *testing.T) {
	needRegistries(t)
	raw := bundleJSON(t, nil)
	dir := t.TempDir()
	lp, err := ocilayout.Write(filepath.Join(dir, "artifacts", "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3} {
		ref, _ := name.ParseReference(images[i].Ref, name.Insecure)
		d, err := remote.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		if d.MediaType.IsIndex() {
			idx, _ := d.ImageIndex()
			err = lp.AppendIndex(idx)
		} else {
			img, _ := d.Image()
			err = lp.AppendImage(img)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "bundle.json"), raw, 0o644)
	thick := filepath.Join(t.TempDir(), "shop.tgz")
	if out, err := exec.Command("tar", "-czf", thick, "-C", dir, "bundle.json", "artifacts").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	ref := "registry.example.com/shop/thick:1.0.0"
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "-q", "--bundle", thick+"="+ref)
	mustRun(t, "verify", path)
	mustRun(t, "import", path, "--to", dst.Host+"/thick", "--plain-http")
	stored := readBundle(t, dst.Host+"/thick/shop/thick:1.0.0")
	if !bytes.Equal(stored.Bundle.Raw, raw) {
		t.Fatal("bundle.json changed")
	}
	for key, i := range map[string]int{"invocation-0": 0, "web": 1, "db": 3} {
		if got := stored.Images[key].Digest.String(); got != images[i].Digest {
			t.Errorf("image %s: %s, want %s", key, got, images[i].Digest)
		}
	}

	// A thick bundle whose layout lacks a pinned image is refused.
	os.RemoveAll(filepath.Join(dir, "artifacts", "layout", "blobs", "sha256", strings.TrimPrefix(images[1].Digest, "sha256:")))
	broken := filepath.Join(t.TempDir(), "broken.tgz")
	exec.Command("tar", "-czf", broken, "-C", dir, "bundle.json", "artifacts").Run()
	r := relocateCmd(t, nil, "export", "-o", filepath.Join(t.TempDir(), "x.tar"), "--bundle", broken+"="+ref)
	if r.code != exitRefused || !strings.Contains(r.stderr, images[1].Digest) {
		t.Fatalf("thick bundle without a pinned image: exit %d\n%s", r.code, r.stderr)
	}
}
