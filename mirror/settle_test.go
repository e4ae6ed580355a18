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
