package layout

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func hashOf(c byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)} }

// A delta leaves out the layers the base carried and those the base itself
// expected (with the archive that carried them), keeps all metadata and
// what is new, and becomes schemaVersion 2; against a base it shares no
// layer with, an archive stays a full one.
func TestLeaveOut(t *testing.T) {
	mon, tue := hashOf('1'), hashOf('2')
	base := &TOC{SchemaVersion: DeltaSchemaVersion,
		Blobs:    []Blob{{Digest: hashOf('a'), Size: 10, Kind: KindLayer}, {Digest: hashOf('c'), Size: 5, Kind: KindConfig}, {Digest: hashOf('d'), Size: 9, Kind: KindLayer}},
		Expected: []Expected{{Digest: hashOf('b'), Size: 20, Kind: KindLayer, CarriedBy: mon}},
		Bases:    []Base{{TOC: mon, Name: "monday.tar"}}}
	toc := &TOC{SchemaVersion: TOCSchemaVersion, Blobs: []Blob{
		{Digest: hashOf('c'), Size: 5, Kind: KindConfig},  // metadata: travels
		{Digest: hashOf('a'), Size: 10, Kind: KindLayer},  // carried by tuesday
		{Digest: hashOf('b'), Size: 20, Kind: KindLayer},  // expected by tuesday, carried by monday
		{Digest: hashOf('d'), Size: 99, Kind: KindLayer},  // another size: not the same blob
		{Digest: hashOf('e'), Size: 30, Kind: KindLayer}}} // new
	if n := toc.LeaveOut(base, tue, "tuesday.tar"); n != 2 {
		t.Fatalf("left out %d blobs, want 2", n)
	}
	if toc.SchemaVersion != DeltaSchemaVersion || len(toc.Blobs) != 3 || toc.Blobs[0].Digest != hashOf('c') || toc.Blobs[2].Digest != hashOf('e') {
		t.Fatalf("delta: %+v", toc)
	}
	if toc.Expected[0].CarriedBy != tue || toc.Expected[1].CarriedBy != mon || toc.ExpectedBytes() != 30 {
		t.Errorf("expected: %+v", toc.Expected)
	}
	if len(toc.Bases) != 2 || toc.BaseOf(toc.Expected[1]).String() != "monday.tar (toc "+mon.String()+")" {
		t.Errorf("bases: %+v", toc.Bases)
	}
	raw, err := toc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTOC(raw); err != nil {
		t.Fatalf("a delta does not parse: %v", err)
	}
	full := &TOC{SchemaVersion: TOCSchemaVersion, Blobs: []Blob{{Digest: hashOf('f'), Size: 1, Kind: KindLayer}}}
	if n := full.LeaveOut(base, tue, "tuesday.tar"); n != 0 || full.SchemaVersion != TOCSchemaVersion || full.Bases != nil {
		t.Errorf("nothing in common, yet: %+v", full)
	}
}

func TestParseTOCDeltaRules(t *testing.T) {
	d := func(c byte) string { return `"` + hashOf(c).String() + `"` }
	exp := func(c byte, kind, by string) string {
		return `{"digest":` + d(c) + `,"size":3,"kind":"` + kind + `","carriedBy":` + by + `}`
	}
	bases := `"bases":[{"toc":` + d('1') + `,"name":"monday.tar"}]`
	tests := []struct{ name, doc, want string }{
		{"a full archive expects nothing", `{"schemaVersion":1,"expected":[` + exp('a', "layer", d('1')) + `],` + bases + `}`, "only a delta (schemaVersion 2)"},
		{"a delta expects something", `{"schemaVersion":2}`, "no expected blob"},
		{"metadata is never expected", `{"schemaVersion":2,"expected":[` + exp('a', "config", d('1')) + `],` + bases + `}`, "only layers may be expected"},
		{"carried by an unknown base", `{"schemaVersion":2,"expected":[` + exp('a', "layer", d('2')) + `],` + bases + `}`, "not among the bases"},
		{"carried and expected", `{"schemaVersion":2,"blobs":[{"digest":` + d('a') + `,"size":3,"kind":"layer"}],"expected":[` + exp('a', "layer", d('1')) + `],` + bases + `}`, "both carried and expected"},
		{"expected twice", `{"schemaVersion":2,"expected":[` + exp('a', "layer", d('1')) + `,` + exp('a', "layer", d('1')) + `],` + bases + `}`, "listed twice"},
		{"a base relied on by nothing", `{"schemaVersion":2,"expected":[` + exp('a', "layer", d('1')) + `],"bases":[{"toc":` + d('1') + `,"name":"a"},{"toc":` + d('2') + `,"name":"b"}]}`, "carried no expected blob"},
		{"a base name with a path", `{"schemaVersion":2,"expected":[` + exp('a', "layer", d('1')) + `],"bases":[{"toc":` + d('1') + `,"name":"../x"}]}`, "not a file name"},
		{"a version from the future", `{"schemaVersion":3}`, "schemaVersion 3, want 1 (or 2 for a delta)"},
	}
	for _, tc := range tests {
		_, err := ParseTOC([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
