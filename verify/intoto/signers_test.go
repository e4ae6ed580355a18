package intoto

import (
	"testing"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// One certificate holder must not meet a threshold of two by filing the
// same link under a second, claimed key ID.
func TestDistinctSigners(t *testing.T) {
	link := func(sigs ...in_toto.Signature) in_toto.Metadata { return &in_toto.Metablock{Signatures: sigs} }
	step := in_toto.Step{PubKeys: []string{"alice", "bob"}}
	tests := []struct {
		name  string
		links map[string]in_toto.Metadata
		want  int
	}{
		{"two keys", map[string]in_toto.Metadata{"alice": link(in_toto.Signature{KeyID: "alice"}), "bob": link(in_toto.Signature{KeyID: "bob"})}, 2},
		{"one certificate under two claimed IDs", map[string]in_toto.Metadata{
			"real8":    link(in_toto.Signature{KeyID: "real8", Certificate: "CERT-C"}),
			"deadbeef": link(in_toto.Signature{KeyID: "real8", Certificate: "CERT-C"}, in_toto.Signature{KeyID: "deadbeef", Certificate: "CERT-C\n"}),
		}, 1},
		{"two certificates", map[string]in_toto.Metadata{
			"c1": link(in_toto.Signature{KeyID: "c1", Certificate: "CERT-1"}),
			"c2": link(in_toto.Signature{KeyID: "c2", Certificate: "CERT-2"}),
		}, 2},
		{"a claimed ID with no signature of its own", map[string]in_toto.Metadata{"alice": link(in_toto.Signature{KeyID: "bob"})}, 0},
		{"a key the step does not authorize", map[string]in_toto.Metadata{"mallory": link(in_toto.Signature{KeyID: "mallory"})}, 0},
	}
	for _, tc := range tests {
		if got := distinctSigners(step, tc.links); got != tc.want {
			t.Errorf("%s: %d signers, want %d", tc.name, got, tc.want)
		}
	}
}
