package intoto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"
)

// fuzzChain is a supply chain Verify accepts: in-toto 1.3.1's own output.
type fuzzChain struct {
	layout []byte
	keys   map[string][]byte
	links  map[string][]byte
	steps  []string
}

// signedPart is the signed object of in-toto metadata, re-marshalled so
// that whitespace and key order do not count.
func signedPart(b []byte) ([]byte, bool) {
	var m struct {
		Signed map[string]any `json:"signed"`
	}
	if json.Unmarshal(b, &m) != nil || m.Signed == nil {
		return nil, false
	}
	out, err := json.Marshal(m.Signed)
	return out, err == nil
}

// FuzzVerify verifies a real in-toto supply chain — a root layout with two
// steps, and one whose step is a sublayout — with its layout, its layout
// key or one link replaced (or a link removed or added). Nobody can sign
// for the fuzzer, so an accepted chain must be the genuine one: the layout
// and every link that stands in for a genuine one with the signed content
// the functionaries signed, the layout key the owner's, the same steps
// verified, and the wanted final product the genuine one.
func FuzzVerify(f *testing.F) {
	product := read(f, "artifacts/dist/app.tar.gz")
	sum := sha256.Sum256(product)
	want := map[string]string{"dist/app.tar.gz": "sha256:" + hex.EncodeToString(sum[:])}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	owner := map[string][]byte{"owner.pub": read(f, "keys/owner.pub")}
	ownerKeys, err := parseKeys(owner)
	if err != nil {
		f.Fatal(err)
	}
	chains := []fuzzChain{
		{layout: read(f, "root.layout"), keys: owner, links: readLinks(f, "links")},
		{layout: read(f, "super/super.layout"), keys: owner, links: readLinks(f, "super")},
	}
	for i := range chains {
		c := &chains[i]
		res, err := Verify(c.layout, c.keys, c.links, Options{Now: now, Want: want})
		if err != nil {
			f.Fatalf("chain %d: %v", i, err)
		}
		c.steps = res.Steps
	}

	for i, c := range chains {
		f.Add(uint8(i), "layout", c.layout)
		f.Add(uint8(i), "owner.pub", c.keys["owner.pub"])
		for name, b := range c.links {
			f.Add(uint8(i), name, b)
		}
	}
	f.Add(uint8(0), "build.3b3e8310.link", []byte(nil))
	f.Add(uint8(0), "owner.pub", read(f, "keys/carol.pub"))
	f.Add(uint8(1), "supply.44d5223e.link", read(f, "links/build.3b3e8310.link"))
	f.Fuzz(func(t *testing.T, which uint8, name string, data []byte) {
		c := chains[int(which)%len(chains)]
		layout, keys, links := c.layout, maps.Clone(c.keys), maps.Clone(c.links)
		switch {
		case name == "layout":
			layout = data
		case name == "owner.pub":
			keys[name] = data
		case len(data) == 0:
			delete(links, name)
		default:
			links[name] = data
		}
		res, err := Verify(layout, keys, links, Options{Now: now, Want: want})
		if err != nil {
			return
		}
		if !slices.Equal(res.Steps, c.steps) {
			t.Fatalf("steps %v verified, the genuine chain has %v", res.Steps, c.steps)
		}
		var genuine []byte
		switch {
		case name == "layout":
			genuine = c.layout
		case name == "owner.pub":
			got, err := parseKeys(keys)
			if err != nil || !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(ownerKeys))) {
				t.Fatalf("layout accepted with another key: %v", err)
			}
			return
		default:
			genuine = c.links[name]
		}
		if genuine == nil || len(data) == 0 {
			return // a file no step reads, or one the chain did without
		}
		a, ok := signedPart(data)
		b, _ := signedPart(genuine)
		if !ok || !bytes.Equal(a, b) {
			t.Fatalf("accepted %s with content its signer never signed:\n%s", name, data)
		}
	})
}
