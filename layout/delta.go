package layout

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A delta is an archive that leaves out the layers an earlier archive
// carried (export --since): the site has them already, from importing that
// archive. Its table of contents has schemaVersion 2 (a relocate that
// predates deltas refuses it on that) and lists what it leaves out under
// "expected", each blob with the earlier archive that carried it, named
// under "bases". Metadata always travels (indexes, manifests, configs,
// trust metadata, signature blobs): verify walks every image's graph and
// decides signatures from the archive alone, and only layers are expected.

// DeltaSchemaVersion is the table of contents version of a delta.
const DeltaSchemaVersion = 2

// Base is an earlier archive that a delta relies on.
type Base struct {
	// TOC is the sha256 of the earlier archive's relocate-toc.json, which
	// names every blob it carried: it identifies the archive.
	TOC v1.Hash `json:"toc"`
	// Name is its file name when the delta was made, for people.
	Name string `json:"name"`
}

// Expected is a blob a delta leaves out: the site must hold it already.
type Expected struct {
	Digest    v1.Hash `json:"digest"`
	Size      int64   `json:"size"`
	MediaType string  `json:"mediaType,omitempty"`
	Kind      Kind    `json:"kind"`
	// CarriedBy is the TOC digest of the base that carried the blob.
	CarriedBy v1.Hash `json:"carriedBy"`
}

// IsDelta reports whether the archive expects blobs at the site.
func (t *TOC) IsDelta() bool { return len(t.Expected) > 0 }

// ExpectedBytes is the sum of the expected blobs' sizes.
func (t *TOC) ExpectedBytes() int64 {
	var n int64
	for _, e := range t.Expected {
		n += e.Size
	}
	return n
}

// BaseOf is the base that carried an expected blob.
func (t *TOC) BaseOf(e Expected) Base {
	for _, b := range t.Bases {
		if b.TOC == e.CarriedBy {
			return b
		}
	}
	return Base{TOC: e.CarriedBy}
}

// String names a base for messages: "monday.tar (toc sha256:…)".
func (b Base) String() string {
	if b.Name == "" {
		return "toc " + b.TOC.String()
	}
	return b.Name + " (toc " + b.TOC.String() + ")"
}

// LeaveOut makes t a delta against an earlier archive's table of contents
// old, whose own relocate-toc.json has the digest oldTOC and which is
// called name: every layer old carried, or expected itself (the site has
// those too, carried by old's bases), leaves t.Blobs for t.Expected. It
// reports how many blobs were left out; t stays a full archive
// (schemaVersion 1) when none was.
func (t *TOC) LeaveOut(old *TOC, oldTOC v1.Hash, name string) int {
	carried := make(map[v1.Hash]Blob, len(old.Blobs))
	for _, b := range old.Blobs {
		carried[b.Digest] = b
	}
	before := make(map[v1.Hash]Expected, len(old.Expected))
	for _, e := range old.Expected {
		before[e.Digest] = e
	}
	bases := map[v1.Hash]Base{}
	kept := t.Blobs[:0:0]
	for _, b := range t.Blobs {
		e := Expected{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType, Kind: b.Kind}
		if c, ok := carried[b.Digest]; b.Kind == KindLayer && ok && c.Size == b.Size {
			e.CarriedBy = oldTOC
			bases[oldTOC] = Base{TOC: oldTOC, Name: name}
		} else if p, ok := before[b.Digest]; b.Kind == KindLayer && ok && p.Size == b.Size {
			e.CarriedBy = p.CarriedBy
			bases[p.CarriedBy] = old.BaseOf(p)
		} else {
			kept = append(kept, b)
			continue
		}
		t.Expected = append(t.Expected, e)
	}
	if len(t.Expected) == 0 {
		return 0
	}
	t.Blobs = kept
	t.SchemaVersion = DeltaSchemaVersion
	for _, b := range bases {
		t.Bases = append(t.Bases, b)
	}
	sort.Slice(t.Bases, func(i, j int) bool { return t.Bases[i].TOC.String() < t.Bases[j].TOC.String() })
	sort.Slice(t.Expected, func(i, j int) bool { return t.Expected[i].Digest.String() < t.Expected[j].Digest.String() })
	return len(t.Expected)
}

// checkDelta holds a table of contents to the delta rules: expected blobs
// only in schemaVersion 2 and at least one there, layers only, none also
// carried or listed twice, each carried by a listed base, and every base
// named and relied on.
func checkDelta(t *TOC, carried map[v1.Hash]bool) error {
	if t.SchemaVersion != DeltaSchemaVersion {
		if len(t.Expected) > 0 || len(t.Bases) > 0 {
			return fmt.Errorf("expected blobs or bases in a table of contents of schemaVersion %d: only a delta (schemaVersion %d) has them", t.SchemaVersion, DeltaSchemaVersion)
		}
		return nil
	}
	if len(t.Expected) == 0 {
		return fmt.Errorf("schemaVersion %d (a delta) but no expected blob", DeltaSchemaVersion)
	}
	if len(t.Expected)+len(t.Blobs) > MaxBlobs {
		return fmt.Errorf("%d blobs carried and expected, over the limit of %d", len(t.Expected)+len(t.Blobs), MaxBlobs)
	}
	bases := map[v1.Hash]bool{}
	for _, b := range t.Bases {
		if err := CheckDigest(b.TOC); err != nil {
			return fmt.Errorf("base %q: %w", b.Name, err)
		}
		if bases[b.TOC] {
			return fmt.Errorf("base %s listed twice", b.TOC)
		}
		if err := checkBaseName(b.Name); err != nil {
			return fmt.Errorf("base %s: %w", b.TOC, err)
		}
		bases[b.TOC] = false
	}
	seen := map[v1.Hash]bool{}
	for _, e := range t.Expected {
		if err := CheckDigest(e.Digest); err != nil {
			return fmt.Errorf("expected blob: %w", err)
		}
		switch {
		case e.Size < 0:
			return fmt.Errorf("expected blob %s has negative size", e.Digest)
		case e.Kind != KindLayer:
			return fmt.Errorf("expected blob %s is a %s: only layers may be expected, metadata travels in every archive", e.Digest, e.Kind)
		case carried[e.Digest]:
			return fmt.Errorf("blob %s both carried and expected", e.Digest)
		case seen[e.Digest]:
			return fmt.Errorf("expected blob %s listed twice", e.Digest)
		}
		used, ok := bases[e.CarriedBy]
		if !ok {
			return fmt.Errorf("expected blob %s carried by %s, which is not among the bases", e.Digest, e.CarriedBy)
		}
		if !used {
			bases[e.CarriedBy] = true
		}
		seen[e.Digest] = true
	}
	for toc, used := range bases {
		if !used {
			return fmt.Errorf("base %s carried no expected blob", toc)
		}
	}
	return nil
}

// checkBaseName accepts a file name: printable, without a directory.
func checkBaseName(n string) error {
	if n == "" || len(n) > 255 || strings.ContainsAny(n, "/\\") || strings.IndexFunc(n, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("name %q is not a file name", n)
	}
	return nil
}
