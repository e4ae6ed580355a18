// Package testsigstore gives tests sigstore-go's virtual Fulcio, Rekor,
// CT log and TSA together with the trusted_root.json a site would receive
// for them. Never the public Sigstore.
package testsigstore

import (
	"encoding/hex"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// New starts a virtual Sigstore and returns it with its trusted root as
// trusted_root.json bytes.
func New(t testing.TB) (*ca.VirtualSigstore, []byte) {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	// The virtual logs are keyed by hex IDs; a trusted_root.json holds the
	// raw key IDs that entries name.
	rawIDs := func(m map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
		out := map[string]*root.TransparencyLog{}
		for k, l := range m {
			c := *l
			c.ID, _ = hex.DecodeString(k)
			out[k] = &c
		}
		return out
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), rawIDs(vs.CTLogs()),
		vs.TimestampingAuthorities(), rawIDs(vs.RekorLogs()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return vs, b
}
