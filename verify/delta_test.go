package verify

import (
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/layout"
)

// An image whose layer a delta expects passes structure (the layer is at
// the site); one whose expected blob is listed with another size, or that
// uses it as its config, is refused.
func TestStructureExpected(t *testing.T) {
	delta := func(mutate func(*layout.Expected)) *synthetic {
		s := buildSynthetic(t, 2, 0)
		base := digestOf([]byte("monday toc"))
		var kept []layout.Blob
		for _, b := range s.toc.Blobs {
			if b.Kind != layout.KindLayer {
				kept = append(kept, b)
				continue
			}
			e := layout.Expected{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType, Kind: b.Kind, CarriedBy: base}
			mutate(&e)
			s.toc.Expected = append(s.toc.Expected, e)
		}
		s.toc.Blobs, s.toc.SchemaVersion = kept, layout.DeltaSchemaVersion
		s.toc.Bases = []layout.Base{{TOC: base, Name: "monday.tar"}}
		return s
	}
	s := delta(func(*layout.Expected) {})
	var ps Problems
	if c := Structure(s.toc, s.index, s.small, &ps); ps.Err() != nil || len(c) != 2 {
		t.Fatalf("a delta's images: %v, %d closures", ps.Err(), len(c))
	}
	s = delta(func(e *layout.Expected) { e.Size++ })
	ps = Problems{}
	Structure(s.toc, s.index, s.small, &ps)
	if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "expected at the site, but listed with size") {
		t.Errorf("an expected blob of another size: %v", err)
	}
	// The config expected (and no longer carried): used as config.
	s = buildSynthetic(t, 1, 0)
	var cfg layout.Blob
	var kept []layout.Blob
	for _, b := range s.toc.Blobs {
		if b.Kind == layout.KindConfig {
			cfg = b
			continue
		}
		kept = append(kept, b)
	}
	s.toc.Blobs = kept
	s.toc.Expected = []layout.Expected{{Digest: cfg.Digest, Size: cfg.Size, Kind: layout.KindLayer, CarriedBy: digestOf(nil)}}
	ps = Problems{}
	Structure(s.toc, s.index, s.small, &ps)
	if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "expected at the site, but used as config") {
		t.Errorf("an expected blob used as a config: %v", err)
	}
}
