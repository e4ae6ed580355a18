package verify

import (
	"strings"
	"testing"
	"time"
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
		{"other.example/x@sha256:00", "c", false},
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
