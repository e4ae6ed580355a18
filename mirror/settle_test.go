package mirror

import (
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// TestBlobMediaTypeIndependentOfOrder: a blob that two manifests name under
// different media types is recorded with the same one whichever walk
// reaches it first, through claim (one walk) and merge (sibling attachment
// walks): the table of contents, so the archive, depends on content only.
func TestBlobMediaTypeIndependentOfOrder(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
	node := func(mt string) *Node {
		return &Node{Blob: layout.Blob{Digest: d, Size: 2, MediaType: mt, Kind: layout.KindConfig}}
	}
	const notation, oci = "application/vnd.cncf.notary.signature", "application/vnd.oci.image.config.v1+json"
	for _, order := range [][2]string{{notation, oci}, {oci, notation}} {
		w := &walker{mu: &sync.Mutex{}, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}}
		w.claim(node(order[0]))
		w.claim(node(order[1]))
		if got := w.g.Blobs[d].MediaType; got != notation {
			t.Errorf("claimed as %v: recorded as %s, want %s", order, got, notation)
		}

		w = &walker{mu: &sync.Mutex{}, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}}
		a, b := w.child(), w.child()
		a.claim(node(order[0]))
		b.claim(node(order[1]))
		w.merge(a)
		w.merge(b)
		if got := w.g.Blobs[d].MediaType; got != notation {
			t.Errorf("merged as %v: recorded as %s, want %s", order, got, notation)
		}
	}
}

// TestBlobKindIndependentOfOrder: a blob that is a layer of one manifest
// and the config of another (the OCI empty descriptor is both in many
// artifacts) is recorded as the config, with its content, whichever walk
// reaches it first: the site needs it in memory.
func TestBlobKindIndependentOfOrder(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
	const emptyType = "application/vnd.oci.empty.v1+json"
	layer := func() *Node {
		return &Node{Blob: layout.Blob{Digest: d, Size: 2, MediaType: "application/vnd.oci.image.layer.v1.tar", Kind: layout.KindLayer}}
	}
	config := func() *Node {
		return &Node{Blob: layout.Blob{Digest: d, Size: 2, MediaType: emptyType, Kind: layout.KindConfig}, Data: []byte("{}")}
	}
	for _, order := range [][2]func() *Node{{layer, config}, {config, layer}} {
		w := &walker{mu: &sync.Mutex{}, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}}
		w.claim(order[0]())
		w.claim(order[1]())
		m := &walker{mu: &sync.Mutex{}, g: &Graph{Blobs: map[v1.Hash]*Node{}}, seen: map[string]bool{}}
		a, b := m.child(), m.child()
		a.claim(order[0]())
		b.claim(order[1]())
		m.merge(a)
		m.merge(b)
		for how, g := range map[string]*Graph{"claimed": w.g, "merged": m.g} {
			n := g.Blobs[d]
			if n.Kind != layout.KindConfig || n.MediaType != emptyType || string(n.Data) != "{}" {
				t.Errorf("%s config first %v: recorded as %s %s with %q, want the config with its content", how, order[0]().Kind == layout.KindConfig, n.Kind, n.MediaType, n.Data)
			}
		}
	}
}
