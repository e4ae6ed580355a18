package verify

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, doc, want string // want: error substring, "" = valid
	}{
		{"empty", `{}`, ""},
		{"full", `{"mapping":[{"paths":["reg/*"],"repositories":["a","b"],"threshold":2,"terminating":true,
			"roles":[{"role":"qa","minSignatures":2}]}],"allowUnvouched":["x/*"],"grace":{"timestamp":"48h","snapshot":"1h"},
			"cnabMinSecurityLevel":2}`, ""},
		{"misspelt key", `{"mappings":[]}`, "unknown field"},
		{"second document", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1}]}
			{"mapping":[{"paths":["*"],"repositories":["a","b"],"threshold":2}]}`, "data after the JSON document"},
		{"grace for targets", `{"grace":{"targets":"1h"}}`, "only timestamp and snapshot"},
		{"grace for root", `{"grace":{"root":"1h"}}`, "only timestamp and snapshot"},
		{"bad duration", `{"grace":{"timestamp":"soon"}}`, "not a duration"},
		{"negative grace", `{"grace":{"timestamp":"-1h"}}`, "not a duration"},
		{"threshold above repositories", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":2}]}`, "threshold 2"},
		{"zero threshold", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":0}]}`, "threshold 0"},
		{"no paths", `{"mapping":[{"repositories":["a"],"threshold":1}]}`, "needs paths"},
		{"role without signatures", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1,"roles":[{"role":"qa"}]}]}`, "minSignatures"},
		{"nested role path", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1,"roles":[{"role":["release","release-eu"],"minSignatures":1}]}]}`, ""},
		{"role path through targets", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1,"roles":[{"role":["targets","qa"],"minSignatures":1}]}]}`, `"targets" is not a delegated role name`},
		{"empty role path", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1,"roles":[{"role":[],"minSignatures":1}]}]}`, "needs a name"},
		{"role of another type", `{"mapping":[{"paths":["*"],"repositories":["a"],"threshold":1,"roles":[{"role":3,"minSignatures":1}]}]}`, "a name or an array"},
		{"dot-dot in a path pattern", `{"mapping":[{"paths":["reg/tools/../*"],"repositories":["a"],"threshold":1}]}`, "'..' segments are refused"},
		{"empty segment in allowUnvouched", `{"allowUnvouched":["reg//*"]}`, "'..' segments are refused"},
		{"allowUnvouched overlapping a terminating mapping", `{"mapping":[{"paths":["reg/prod/*"],"repositories":["a"],"threshold":1,"terminating":true}],
			"allowUnvouched":["reg/*/tools:*"]}`, `allowUnvouched "reg/*/tools:*" overlaps "reg/prod/*" of terminating mapping 0`},
		{"allowUnvouched beside a terminating mapping", `{"mapping":[{"paths":["reg/prod/*"],"repositories":["a"],"threshold":1,"terminating":true}],
			"allowUnvouched":["reg/tools/*"]}`, ""},
		{"allowUnvouched overlapping a non-terminating mapping", `{"mapping":[{"paths":["reg/*"],"repositories":["a"],"threshold":1}],
			"allowUnvouched":["reg/tools/*"]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.doc))
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPolicyMatching(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"mapping":[
		{"paths":["reg.example/prod/*"],"repositories":["a"],"threshold":1},
		{"paths":["reg.example/*:v?"],"repositories":["b"],"threshold":1},
		{"paths":["*"],"repositories":["c"],"threshold":1}],
		"allowUnvouched":["reg.example/tools/*"],"grace":{"snapshot":"2h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref   string
		repos string
		allow bool
	}{
		{"reg.example/prod/app:1.2", "a c", false},
		{"reg.example/dev/app:v1", "b c", false},
		{"reg.example/tools/jq:1", "c", true},
		{"other.example/x@sha256:0000000000000000000000000000000000000000000000000000000000000000", "c", false},
		{"reg.example/tools/../prod/app:1", "", false},
		{"reg.example/tools//x:1", "", false},
	}
	for _, tc := range tests {
		var got []string
		for _, m := range p.mappingsFor(tc.ref) {
			got = append(got, m.Repositories...)
		}
		if strings.Join(got, " ") != tc.repos || p.allowsUnvouched(tc.ref) != tc.allow {
			t.Errorf("%s: mappings %v allow %v, want %s %v", tc.ref, got, p.allowsUnvouched(tc.ref), tc.repos, tc.allow)
		}
	}
	if p.GraceFor("snapshot") != 2*time.Hour || p.GraceFor("timestamp") != 0 || (*Policy)(nil).GraceFor("snapshot") != 0 {
		t.Error("grace lookup")
	}
}

func TestNotaryStateName(t *testing.T) {
	a, b := NotaryStateName("reg.example:5000/team/app"), NotaryStateName("reg.example:5000/team_app")
	if a == b || strings.ContainsAny(a, "/:") || !strings.HasPrefix(a, "notary.") {
		t.Errorf("state names %q %q", a, b)
	}
}

func TestGlobsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"reg/prod/*", "reg/*/tools:*", true},
		{"reg/prod/*", "reg/tools/*", false},
		{"*", "anything", true},
		{"a?c", "abc", true},
		{"a?c", "ab", false},
		{"*x", "y*", true},
		{"x*", "y*", false},
		{"reg/a:1", "reg/a:1", true},
		{"reg/a:1", "reg/a:2", false},
		{"*/*", "reg", false},
	}
	for _, tc := range tests {
		if got := globsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("%q ∩ %q: %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := globsOverlap(tc.b, tc.a); got != tc.want {
			t.Errorf("%q ∩ %q: %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	other := strings.Repeat("b", 64)
	tests := []struct {
		ref, want string // want: reason substring, "" = accepted
	}{
		{"reg.example/team/app:1", ""},
		{"reg.example:5000/team/app@" + d.String(), ""},
		{"reg.example/team/app:1@" + d.String(), ""},
		{"reg.example/a/../../victim/web:1", `segment ".." is not a name component`},
		{"reg.example/a//b:1", `segment "" is not a name component`},
		{"reg.example/./a:1", `segment "." is not a name component`},
		{"reg.example/team/app@sha256:" + other, "names digest sha256:" + other},
		{"reg.example/team/app:1@sha256:" + other, "the image it labels is " + d.String()},
	}
	for _, tc := range tests {
		ps := &Problems{}
		Names(&layout.TOC{Images: []layout.Image{{Ref: tc.ref, Digest: d}}}, ps)
		got := ps.List()
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s refused: %v", tc.ref, got)
		case tc.want != "" && (len(got) != 1 || got[0].Subject != tc.ref || !strings.Contains(got[0].Reason, tc.want)):
			t.Errorf("%s: got %v, want a refusal containing %q", tc.ref, got, tc.want)
		}
	}
}
