package verify

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify/intoto"
)

// InTotoProduct is the final product a bundle's root layout must record:
// bundle.json, with the digest TUF vouched for.
const InTotoProduct = "bundle.json"

// bundleInToto runs CNAB Security's in-toto check for a bundle that the TUF
// repository in v vouched for: the target's custom "in-toto" field names the
// root layout, its keys and the links, all TUF targets of that repository;
// each file is checked against its target's hashes, then the supply chain
// is verified, and its final product must be bundle.json with the bundle's
// digest. It returns ("", nil) when the target names no in-toto files.
//
// The names are TUF target names and stay names: each is looked up in the
// repository's carried files by its escaped form, never opened as a path.
// Link names keep their directories, since a sublayout's links live in
// "<step>.<keyid8>/" below the root layout's link directory (conventionally
// "<bundle-sha256>/"); intoto.LinkNames finds that directory and refuses
// any name that is not in-toto's layout of link files under it.
func bundleInToto(b layout.Bundle, v Vouch, in TrustInput, sessions map[string]*tufstore.Session) (string, error) {
	s, ok := sessions[v.Repository]
	if !ok {
		return "", nil
	}
	tf, _, err := s.Target(b.Ref)
	if err != nil || tf.Custom == nil {
		return "", nil
	}
	names := tufstore.InTotoTargets(json.RawMessage(*tf.Custom))
	if len(names) == 0 {
		return "", nil
	}
	var rootLayout []byte
	keys, linkFiles := map[string][]byte{}, map[string][]byte{}
	for _, n := range names {
		if err := intoto.CheckName(n); err != nil {
			return "", fmt.Errorf("in-toto file %s: %v", n, err)
		}
		ttf, _, err := s.Target(n)
		if err != nil {
			return "", fmt.Errorf("in-toto file %s is not a target of %s: %v", n, v.Repository, err)
		}
		data, ok := in.Repos[v.Repository][tufstore.TargetFileName(n)]
		if !ok {
			return "", fmt.Errorf("in-toto file %s is missing from the archive", n)
		}
		if err := ttf.VerifyLengthHashes(data); err != nil {
			return "", fmt.Errorf("in-toto file %s does not match its TUF target: %v", n, err)
		}
		switch {
		case strings.HasSuffix(n, ".layout"):
			if rootLayout != nil {
				return "", fmt.Errorf("more than one root layout (%s)", n)
			}
			rootLayout = data
		case strings.HasSuffix(n, ".link"):
			linkFiles[n] = data
		default:
			// By full name: two keys with one base name are two keys.
			keys[n] = data
		}
	}
	if rootLayout == nil {
		return "", fmt.Errorf("the in-toto files name no root layout (*.layout)")
	}
	rel, err := intoto.LinkNames(slices.Collect(maps.Keys(linkFiles)))
	if err != nil {
		return "", err
	}
	links := make(map[string][]byte, len(rel))
	for n, r := range rel {
		links[r] = linkFiles[n]
	}
	res, err := intoto.Verify(rootLayout, keys, links, intoto.Options{Now: in.Now, RunInspections: in.RunInspections,
		Want: map[string]string{InTotoProduct: b.Digest.String()}})
	if err != nil {
		return "", err
	}
	note := "verified: steps " + strings.Join(res.Steps, ", ")
	if len(res.InspectionsNotRun) > 0 {
		note += "; inspections not run (use --run-inspections): " + strings.Join(res.InspectionsNotRun, ", ")
	}
	if len(res.InspectionsRun) > 0 {
		note += "; inspections run: " + strings.Join(res.InspectionsRun, ", ")
	}
	return note, nil
}
