package intoto

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// subChain is one run of testdata/intoto/sublayout-chain.sh.
type subChain struct {
	dir    string
	bundle []byte
	keyID8 map[string]string // functionary → keyid8
}

// readTree returns every file under root whose name ends in suffix, by its
// slash path relative to root.
func readTree(tb testing.TB, root, suffix string) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, suffix) {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// recordSublayoutChain records a fresh chain with the Debian in-toto tools
// (a few seconds of Python, so not under -short).
func recordSublayoutChain(t *testing.T) subChain {
	t.Helper()
	if testing.Short() {
		t.Skip("records an in-toto chain with the in-toto tools")
	}
	if _, err := exec.LookPath("in-toto-run"); err != nil {
		if os.Getenv("RELOCATE_REQUIRE_INTOTO") == "1" {
			t.Fatal("in-toto-run not found and RELOCATE_REQUIRE_INTOTO=1 (apt-get install in-toto)")
		}
		t.Skip("in-toto-run not found (apt-get install in-toto)")
	}
	c := subChain{dir: t.TempDir(), bundle: []byte(`{"schemaVersion":"v1.2.0","name":"shop","version":"1.0.0"}`), keyID8: map[string]string{}}
	in := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(in, c.bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("../../testdata/intoto/sublayout-chain.sh", in, c.dir).CombinedOutput(); err != nil {
		t.Fatalf("sublayout-chain.sh: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(c.dir, "keyids"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if name, id, ok := strings.Cut(sc.Text(), " "); ok {
			c.keyID8[name] = id
		}
	}
	return c
}

// TestVerifySublayoutChain verifies a chain recorded by the in-toto tools
// whose one root step is carol's sublayout, and its broken variants; every
// refusal must say where (root layout or sublayout, step, file) and why.
func TestVerifySublayoutChain(t *testing.T) {
	c := recordSublayoutChain(t)
	layout, err := os.ReadFile(filepath.Join(c.dir, "root.layout"))
	if err != nil {
		t.Fatal(err)
	}
	owner, err := os.ReadFile(filepath.Join(c.dir, "owner.pub"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{"owner.pub": owner}
	links := readTree(t, filepath.Join(c.dir, "links"), "")
	variants := readTree(t, filepath.Join(c.dir, "variants"), "")
	want := map[string]string{"bundle.json": sha256Of(c.bundle)}

	sub := "supply." + c.keyID8["carol"]
	subLink := sub + ".link"
	fetch := sub + "/fetch." + c.keyID8["alice"] + ".link"
	pkg := sub + "/package." + c.keyID8["bob"] + ".link"
	malloryPkg := sub + "/package." + c.keyID8["mallory"] + ".link"
	if !slices.Equal(slices.Sorted(maps.Keys(links)), []string{subLink, fetch, pkg}) {
		t.Fatalf("recorded links %v", slices.Sorted(maps.Keys(links)))
	}
	edit := func(del []string, add map[string][]byte) map[string][]byte {
		m := maps.Clone(links)
		for _, d := range del {
			delete(m, d)
		}
		maps.Copy(m, add)
		return m
	}

	tests := []struct {
		name    string
		links   map[string][]byte
		now     time.Time
		wantErr string // "" = must pass
	}{
		{name: "good chain", links: links},
		{name: "sublayout link signed by an unauthorized key",
			links:   edit([]string{pkg}, map[string][]byte{malloryPkg: variants["mallory/package."+c.keyID8["mallory"]+".link"]}),
			wantErr: "sublayout " + sub + ": step 'package' requires '1' link metadata file(s). '0' out of '1' available link(s) have a valid signature from an authorized signer"},
		{name: "sublayout link by an unauthorized key under the functionary's name",
			links: edit(nil, map[string][]byte{pkg: variants["mallory/package."+c.keyID8["mallory"]+".link"]}),
			wantErr: "sublayout " + sub + ": step 'package' requires '1' link metadata file(s), found '0'; no valid " + pkg +
				"; no signature under the key id their name gives: " + pkg},
		{name: "sublayout signed by another key than the functionary's",
			links: edit(nil, map[string][]byte{subLink: variants["mallory/"+subLink]}),
			wantErr: "root layout: step 'supply' requires '1' link metadata file(s), found '0'; no valid " + subLink +
				"; no signature under the key id their name gives: " + subLink},
		{name: "missing sublayout link",
			links:   edit([]string{fetch}, nil),
			wantErr: "sublayout " + sub + ": step 'fetch' requires '1' link metadata file(s), found '0'; no valid " + fetch},
		{name: "missing sublayout",
			links:   edit([]string{subLink}, nil),
			wantErr: "root layout: step 'supply' requires '1' link metadata file(s), found '0'; no valid " + subLink},
		{name: "sublayout's links outside its directory",
			links:   map[string][]byte{subLink: links[subLink], "fetch." + c.keyID8["alice"] + ".link": links[fetch], "package." + c.keyID8["bob"] + ".link": links[pkg]},
			wantErr: "sublayout " + sub + ": step 'fetch' requires '1' link metadata file(s), found '0'; no valid " + fetch},
		{name: "expired sublayout",
			links:   edit(nil, map[string][]byte{subLink: variants["expired/"+subLink]}),
			wantErr: "sublayout " + sub + ": expired at 2021-01-01T00:00:00Z"},
		{name: "sublayout expired at the verification time",
			// The root layout is valid for 10 years, the sublayout for one.
			links: links, now: time.Now().AddDate(2, 0, 0),
			wantErr: "sublayout " + sub + ": expired at "},
		{name: "dot-dot in a sublayout link name",
			links:   edit([]string{pkg}, map[string][]byte{sub + "/../" + sub + "/package." + c.keyID8["bob"] + ".link": links[pkg]}),
			wantErr: "link " + sub + "/../" + sub + "/package." + c.keyID8["bob"] + `.link: "` + sub + "/../" + sub + "/package." + c.keyID8["bob"] + `.link" has an empty, "." or ".." component`},
		{name: "absolute sublayout link name",
			links:   edit([]string{pkg}, map[string][]byte{"/" + pkg: links[pkg]}),
			wantErr: `link /` + pkg + `: "/` + pkg + `" is absolute`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(layout, keys, tc.links, Options{Now: tc.now, Want: want})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v;\nwant ErrVerification containing %q", err, tc.wantErr)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Steps, []string{sub + "/fetch", sub + "/package", "supply"}) ||
				!slices.Equal(res.InspectionsNotRun, []string{"check"}) || len(res.InspectionsRun) != 0 {
				t.Fatalf("result %+v", res)
			}
			// The summary link carries the last substep's command, the root
			// step expects none: in-toto-verify warns, so do we.
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `step "supply"`) {
				t.Fatalf("warnings %q", res.Warnings)
			}
		})
	}

	// The bundle.json the chain produced, and no other, is its final product.
	_, err = Verify(layout, keys, links, Options{Want: map[string]string{"bundle.json": sha256Of([]byte("{}"))}})
	if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "final product bundle.json: sha256:") {
		t.Fatalf("another bundle.json: %v", err)
	}
}

// testKey is an ed25519 in-toto key pair made in Go.
type testKey struct {
	priv in_toto.Key
	pub  in_toto.Key
	pem  []byte // public key, PKIX PEM
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var k testKey
	if err := k.priv.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	k.pub = k.priv
	k.pub.KeyVal.Private = ""
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return k
}

func signLayout(t *testing.T, k testKey, lay in_toto.Layout) []byte {
	t.Helper()
	mb := in_toto.Metablock{Signed: lay}
	if err := mb.Sign(k.priv); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(mb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifySublayoutDepth nests sublayouts, each one step "s" delegated to
// the next layout's signer, down to a layout without steps: as deep as
// MaxSublayoutDepth verifies, one deeper is refused.
func TestVerifySublayoutDepth(t *testing.T) {
	nested := func(depth int) ([]byte, map[string][]byte, map[string][]byte) {
		keys := make([]testKey, depth+1)
		for i := range keys {
			keys[i] = newTestKey(t)
		}
		expires := time.Now().AddDate(1, 0, 0).UTC().Format(in_toto.ISO8601DateSchema)
		links := map[string][]byte{}
		var root []byte
		prefix := ""
		for i := 0; i <= depth; i++ {
			lay := in_toto.Layout{Type: "layout", Expires: expires, Keys: map[string]in_toto.Key{}, Steps: []in_toto.Step{}, Inspect: []in_toto.Inspection{}}
			if i < depth {
				next := keys[i+1].pub
				lay.Keys[next.KeyID] = next
				lay.Steps = []in_toto.Step{{Type: "step", PubKeys: []string{next.KeyID}, Threshold: 1,
					SupplyChainItem: in_toto.SupplyChainItem{Name: "s", ExpectedMaterials: [][]string{}, ExpectedProducts: [][]string{}}}}
			}
			signed := signLayout(t, keys[i], lay)
			if i == 0 {
				root = signed
				continue
			}
			links[prefix+fmt.Sprintf(in_toto.LinkNameFormat, "s", keys[i].pub.KeyID)] = signed
			prefix += fmt.Sprintf(in_toto.SublayoutLinkDirFormat, "s", keys[i].pub.KeyID) + "/"
		}
		return root, map[string][]byte{"root.pub": keys[0].pem}, links
	}

	root, keys, links := nested(MaxSublayoutDepth)
	res, err := Verify(root, keys, links, Options{})
	if err != nil {
		t.Fatalf("%d nested sublayouts: %v", MaxSublayoutDepth, err)
	}
	// Innermost first: the step of the deepest layout that has one.
	if len(res.Steps) != MaxSublayoutDepth || strings.Count(res.Steps[0], "/") != MaxSublayoutDepth-1 || res.Steps[len(res.Steps)-1] != "s" {
		t.Fatalf("steps %q", res.Steps)
	}

	root, keys, links = nested(MaxSublayoutDepth + 1)
	_, err = Verify(root, keys, links, Options{})
	if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), fmt.Sprintf("nested deeper than %d sublayouts", MaxSublayoutDepth)) {
		t.Fatalf("%d nested sublayouts: %v", MaxSublayoutDepth+1, err)
	}
}
