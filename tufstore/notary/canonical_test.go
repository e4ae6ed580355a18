package notary

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		bad            bool
	}{
		{name: "keys sorted bytewise, whitespace dropped", in: "{ \"b\" : 1, \"a\" : [ true , false , null ], \"B\": {} }", want: `{"B":{},"a":[true,false,null],"b":1}`},
		{name: "nested objects sorted", in: `{"z":{"y":1,"x":{"b":2,"a":3}}}`, want: `{"z":{"x":{"a":3,"b":2},"y":1}}`},
		{name: "only quote and backslash escaped", in: `"a\"b\\c\/d\u0041\n<>&é"`, want: "\"a\\\"b\\\\c/dA\n<>&é\""},
		{name: "line and paragraph separators escaped", in: `"\u2028\u2029"`, want: `"\u2028\u2029"`},
		{name: "integers", in: `[0,-1,1234567,9007199254740993]`, want: `[0,-1,1234567,9007199254740993]`},
		{name: "empty containers", in: `{"a":[],"b":{}}`, want: `{"a":[],"b":{}}`},
		{name: "float refused", in: `{"a":1.5}`, bad: true},
		{name: "exponent refused", in: `1e3`, bad: true},
		{name: "negative zero refused", in: `-0`, bad: true},
		{name: "duplicate key refused", in: `{"a":1,"a":2}`, bad: true},
		{name: "trailing data refused", in: `{} {}`, bad: true},
		{name: "invalid JSON refused", in: `{"a":}`, bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := canonicalJSON([]byte(c.in))
			if c.bad {
				if err == nil {
					t.Fatalf("canonicalJSON(%s) = %s, want an error", c.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("canonicalJSON(%s) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

// TestCanonicalJSONMatchesNotary: notary-server stores the signed object as
// the client's canonical bytes, so re-encoding must reproduce them exactly.
func TestCanonicalJSONMatchesNotary(t *testing.T) {
	paths, _ := filepath.Glob("testdata/notary-0.7.0/*.json")
	if len(paths) == 0 {
		t.Fatal("no fixtures")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var sf signedFile
		if err := json.Unmarshal(data, &sf); err != nil {
			t.Fatal(err)
		}
		got, err := canonicalJSON(sf.Signed)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if string(got) != string(sf.Signed) {
			t.Errorf("%s: canonical form differs from what notary signed", p)
		}
	}
}
