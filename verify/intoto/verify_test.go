package intoto

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// The fixtures are real in-toto 1.3.1 (Python) output made by testdata/make.sh.

func read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// readLinks returns every *.link under testdata/dir by its slash path relative to dir.
func readLinks(tb testing.TB, dir string) map[string][]byte {
	return readTree(tb, filepath.Join("testdata", dir), ".link")
}

// linkName finds the one link of step in links.
func linkName(t *testing.T, links map[string][]byte, step string) string {
	t.Helper()
	for name := range links {
		if strings.HasPrefix(name, step+".") {
			return name
		}
	}
	t.Fatalf("no link for step %s", step)
	return ""
}

func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func otherRSAKey(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	layout := read(t, "root.layout")
	owner := map[string][]byte{"owner.pub": read(t, "keys/owner.pub")}
	links := readLinks(t, "links")
	product := read(t, "artifacts/dist/app.tar.gz")
	want := map[string]string{"dist/app.tar.gz": sha256Of(product)}
	mallory := readLinks(t, "mallory")
	buildLink, packageLink := linkName(t, links, "build"), linkName(t, links, "package")

	without := func(m map[string][]byte, name string) map[string][]byte {
		m = maps.Clone(m)
		delete(m, name)
		return m
	}
	with := func(m map[string][]byte, name string, b []byte) map[string][]byte {
		m = maps.Clone(m)
		m[name] = b
		return m
	}
	var productHash struct {
		Signed struct {
			Products map[string]map[string]string `json:"products"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(links[packageLink], &productHash); err != nil {
		t.Fatal(err)
	}
	realHash := productHash.Signed.Products["dist/app.tar.gz"]["sha256"]
	tamperedLink := bytes.Replace(links[packageLink], []byte(realHash), []byte(strings.Repeat("0", 64)), 1)
	if bytes.Equal(tamperedLink, links[packageLink]) {
		t.Fatal("product hash not found in package link")
	}
	tamperedLayout := bytes.Replace(layout, []byte("fixture: build"), []byte("fixture: BUILD"), 1)
	other := otherRSAKey(t)

	tests := []struct {
		name    string
		layout  []byte
		keys    map[string][]byte
		links   map[string][]byte
		o       Options
		wantErr string // "" = must pass; refusals must wrap ErrVerification
	}{
		{name: "good chain", layout: layout, keys: owner, links: links, o: Options{Want: want}},
		{name: "good chain, threshold 1 of owner and a stranger", layout: layout,
			keys: map[string][]byte{"owner.pub": owner["owner.pub"], "other.pub": other}, links: links,
			o: Options{Threshold: 1}},
		{name: "all given keys must sign by default", layout: layout,
			keys: map[string][]byte{"owner.pub": owner["owner.pub"], "other.pub": other}, links: links,
			wantErr: "1 of 2 required layout signatures"},
		{name: "layout signed by another key", layout: layout, keys: map[string][]byte{"other.pub": other},
			links: links, wantErr: "0 of 1 required layout signatures"},
		{name: "tampered layout", layout: tamperedLayout, keys: owner, links: links,
			wantErr: "required layout signatures"},
		{name: "tampered final product", layout: layout, keys: owner, links: links,
			o:       Options{Want: map[string]string{"dist/app.tar.gz": sha256Of([]byte("evil"))}},
			wantErr: "final product dist/app.tar.gz"},
		{name: "wanted product not produced", layout: layout, keys: owner, links: links,
			o:       Options{Want: map[string]string{"bundle.json": sha256Of(product)}},
			wantErr: "final product bundle.json: not among the products"},
		{name: "tampered product hash in a link", layout: layout, keys: owner,
			links: with(links, packageLink, tamperedLink), wantErr: `step 'package' requires '1' link`},
		{name: "missing link", layout: layout, keys: owner, links: without(links, packageLink),
			wantErr: `step 'package' requires '1' link metadata file(s), found '0'`},
		{name: "link by an unauthorized functionary", layout: layout, keys: owner,
			links:   with(without(links, buildLink), linkName(t, mallory, "build"), mallory[linkName(t, mallory, "build")]),
			wantErr: `step 'build' requires '1' link metadata file(s). '0' out of '1'`},
		{name: "unauthorized link under the functionary's file name", layout: layout, keys: owner,
			links:   with(links, buildLink, mallory[linkName(t, mallory, "build")]),
			wantErr: `step 'build' requires '1' link metadata file(s), found '0'`},
		{name: "expired layout", layout: read(t, "expired.layout"), keys: owner, links: links,
			wantErr: "root layout: expired at 2021-01-01T00:00:00Z"},
		{name: "layout expired by Options.Now", layout: layout, keys: owner, links: links,
			o: Options{Now: time.Now().AddDate(20, 0, 0)}, wantErr: "root layout: expired"},
		{name: "link name leaving the directory", layout: layout, keys: owner,
			links: with(links, "../build.3b3e8310.link", links[buildLink]), wantErr: `link ../build.3b3e8310.link: "../build.3b3e8310.link" has an empty, "." or ".." component`},
		{name: "link name that is not <step>.<keyid8>.link", layout: layout, keys: owner,
			links: with(links, "build.link", links[buildLink]), wantErr: `link build.link: "build.link": "build" is not <step>.<keyid8>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.layout, tc.keys, tc.links, tc.o)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("verified; want error %q", tc.wantErr)
				}
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want ErrVerification containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Steps, []string{"build", "package"}) ||
				!slices.Equal(res.InspectionsNotRun, []string{"untar"}) ||
				len(res.InspectionsRun) != 0 || len(res.Warnings) != 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestVerifyOptionErrors(t *testing.T) {
	owner := map[string][]byte{"owner.pub": read(t, "keys/owner.pub")}
	tests := []struct {
		name string
		keys map[string][]byte
		o    Options
		want string
	}{
		{"threshold above keys", owner, Options{Threshold: 2}, "threshold 2 with 1"},
		{"no keys", nil, Options{}, "no layout keys"},
		{"not a key", map[string][]byte{"x.pub": []byte("nope")}, Options{}, "layout key x.pub"},
		{"key id of another key", map[string][]byte{strings.Repeat("ab", 32): owner["owner.pub"]}, Options{}, "the key's id is"},
		{"malformed want", owner, Options{Want: map[string]string{"dist/app.tar.gz": "deadbeef"}}, "not <alg>:<hex>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(read(t, "root.layout"), tc.keys, readLinks(t, "links"), tc.o)
			if err == nil || errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want an operational error containing %q", err, tc.want)
			}
		})
	}
}

func TestVerifyKeyFormats(t *testing.T) {
	// The securesystemslib JSON form in-toto-keygen writes for ed25519 keys,
	// here used as layout key of the sublayout's signer.
	carol, err := parseKeys(map[string][]byte{"carol.pub": read(t, "keys/carol.pub")})
	if err != nil {
		t.Fatal(err)
	}
	links := readLinks(t, "super")
	for id := range carol {
		if _, ok := links["supply."+id[:8]+".link"]; !ok {
			t.Fatalf("computed key id %s does not name carol's sublayout link", id)
		}
	}
}

func TestVerifySublayout(t *testing.T) {
	layout := read(t, "super/super.layout")
	owner := map[string][]byte{"owner.pub": read(t, "keys/owner.pub")}
	links := readLinks(t, "super")
	want := map[string]string{"dist/app.tar.gz": sha256Of(read(t, "artifacts/dist/app.tar.gz"))}

	res, err := Verify(layout, owner, links, Options{Want: want})
	if err != nil {
		t.Fatal(err)
	}
	var sub string
	for name := range links {
		if d, _, ok := strings.Cut(name, "/"); ok {
			sub = d
		}
	}
	if !slices.Equal(res.Steps, []string{sub + "/build", sub + "/package", "supply"}) {
		t.Fatalf("steps %v", res.Steps)
	}
	// The summary link's command is the last substep's, the layout expects
	// none: in-toto warns, so do we.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `step "supply"`) {
		t.Fatalf("warnings %q", res.Warnings)
	}

	missing := maps.Clone(links)
	delete(missing, sub+"/"+linkName(t, readLinks(t, "links"), "package"))
	_, err = Verify(layout, owner, missing, Options{})
	if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "sublayout "+sub+": step 'package'") {
		t.Fatalf("sublayout without its package link: %v", err)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyRunInspections(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar:", err)
	}
	layout := read(t, "root.layout")
	owner := map[string][]byte{"owner.pub": read(t, "keys/owner.pub")}
	links := readLinks(t, "links")
	good := read(t, "artifacts/dist/app.tar.gz")
	// A well-formed archive with other contents: tar succeeds, the rules refuse it.
	evil := tarGz(t, map[string]string{"src/app.sh": "#!/bin/sh\nrm -rf /\n", "src/config.json": "{}\n"})

	tests := []struct {
		name    string
		product []byte
		wantErr string
	}{
		{"delivered product", good, ""},
		{"tampered product", evil, "materials [dist/app.tar.gz] disallowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := fstest.MapFS{"dist/app.tar.gz": {Data: tc.product, Mode: 0o644}}
			res, err := Verify(layout, owner, links, Options{RunInspections: true, InspectionFiles: files, InspectionTimeout: time.Minute})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.InspectionsRun, []string{"untar"}) || len(res.InspectionsNotRun) != 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// signedLayout makes a layout signed by a fresh ed25519 key with in-toto-golang,
// for cases no Python fixture covers; it returns the layout and the public key PEM.
func signedLayout(t *testing.T, lay in_toto.Layout) ([]byte, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var key in_toto.Key
	if err := key.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	mb := in_toto.Metablock{Signed: lay}
	if err := mb.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(mb)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}

func TestVerifyInspectionTimeoutAndFailure(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh:", err)
	}
	inspection := func(run ...string) in_toto.Layout {
		return in_toto.Layout{
			Type:    "layout",
			Expires: time.Now().AddDate(1, 0, 0).UTC().Format(in_toto.ISO8601DateSchema),
			Keys:    map[string]in_toto.Key{},
			Steps:   []in_toto.Step{},
			Inspect: []in_toto.Inspection{{
				Type:            "inspection",
				Run:             run,
				SupplyChainItem: in_toto.SupplyChainItem{Name: "check", ExpectedMaterials: [][]string{}, ExpectedProducts: [][]string{}},
			}},
		}
	}
	// Only the timeout case has a short timeout: a loaded machine may take
	// longer than that to start a shell.
	tests := []struct {
		name    string
		run     []string
		run2    bool
		timeout time.Duration
		wantErr string
	}{
		{"not run by default", []string{"sh", "-c", "exit 1"}, false, time.Minute, ""},
		{"passes in an empty directory", []string{"sh", "-c", "test -z \"$(ls -A)\""}, true, time.Minute, ""},
		{"non-zero exit refused", []string{"sh", "-c", "echo broken >&2; exit 3"}, true, time.Minute, "exited with 3: broken"},
		{"timeout", []string{"sh", "-c", "sleep 30"}, true, 300 * time.Millisecond, "timed out after 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layout, pub := signedLayout(t, inspection(tc.run...))
			start := time.Now()
			res, err := Verify(layout, map[string][]byte{"k.pub": pub}, nil,
				Options{RunInspections: tc.run2, InspectionTimeout: tc.timeout})
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
			if tc.wantErr != "" {
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.run2 != (len(res.InspectionsRun) == 1) || tc.run2 == (len(res.InspectionsNotRun) == 1) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
