package relocate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
)

// Choosing what lands: import --include/--exclude select images by their
// original references (the policy's path patterns), and --map places
// images on names of the site's choosing.

// selection is what an import pushes: the images chosen, the bundles among
// them, and what was left out.
type selection struct {
	images   []layout.Image
	bundles  []layout.Bundle
	excluded []string
}

// checkSelection checks --include, --exclude and --map before the archive
// is read: patterns are the policy's, destinations are names in full.
func checkSelection(o ImportOptions) (map[string]string, error) {
	for _, p := range o.Include {
		if err := verify.CheckPattern(p); err != nil {
			return nil, fmt.Errorf("%w: --include: %v", ErrUsage, err)
		}
	}
	for _, p := range o.Exclude {
		if err := verify.CheckPattern(p); err != nil {
			return nil, fmt.Errorf("%w: --exclude: %v", ErrUsage, err)
		}
	}
	dests := map[string]string{}
	for from, to := range o.Map {
		key, err := name.ParseReference(from, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("%w: --map: %q is not a reference: %v", ErrUsage, from, err)
		}
		if prev, dup := dests[key.Name()]; dup && prev != to {
			return nil, fmt.Errorf("%w: --map names %s twice", ErrUsage, key.Name())
		}
		if err := checkDestination(to); err != nil {
			return nil, fmt.Errorf("%w: --map: destination of %s: %v", ErrUsage, from, err)
		}
		dests[key.Name()] = to
	}
	return dests, nil
}

// checkDestination accepts a destination that names its registry, a
// repository whose segments are names, and a tag or a digest: a map
// never tags :latest by default.
func checkDestination(to string) error {
	first, _, ok := strings.Cut(to, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return fmt.Errorf("%q names no registry: write it in full, e.g. registry.site.local/team/app:1.0", to)
	}
	if err := layout.CheckRef(to); err != nil {
		return fmt.Errorf("%q: %v", to, err)
	}
	if _, pinned, err := layout.PinnedDigest(to); err != nil {
		return err
	} else if !pinned && layout.TagOf(to) == "" {
		return fmt.Errorf("%q names neither a tag nor a digest", to)
	}
	if _, err := name.ParseReference(to, name.StrictValidation); err != nil {
		return fmt.Errorf("%q: %v", to, err)
	}
	return nil
}

// selectImages applies --include and --exclude to the archive's images.
// An image is selected when one of its names (its reference, or that of
// the index export --platform chose it from) matches an --include (or
// there is none) and none matches an --exclude. A selected bundle brings
// the images it names: excluding one of them while the bundle is selected
// is a usage error, since the bundle would name an image the site lacks.
// An --include that matches nothing is a usage error too (a misspelt
// pattern must not import less in silence).
func selectImages(toc *layout.TOC, include, exclude []string) (*selection, error) {
	match := func(patterns []string, im layout.Image) string {
		for _, p := range patterns {
			for _, n := range im.Names() {
				if verify.MatchPatterns([]string{p}, n) {
					return p
				}
			}
		}
		return ""
	}
	used := map[string]bool{}
	chosen := map[string]bool{}
	excludedBy := map[string]string{}
	byRef := map[string]layout.Image{}
	for _, im := range toc.Images {
		byRef[im.Ref] = im
		in := len(include) == 0
		if p := match(include, im); p != "" {
			in, used[p] = true, true
		}
		if p := match(exclude, im); p != "" {
			excludedBy[im.Ref] = p
			in = false
		}
		chosen[im.Ref] = in
	}
	for _, p := range include {
		if !used[p] {
			return nil, fmt.Errorf("%w: --include %q matches no image of the archive", ErrUsage, p)
		}
	}
	sel := &selection{}
	for _, b := range toc.Bundles {
		if !chosen[b.Ref] {
			continue
		}
		sel.bundles = append(sel.bundles, b)
		for _, bi := range b.Images {
			ref := bundleImageRef(bi.Ref)
			im, ok := byRef[ref]
			if !ok || im.Digest != bi.Digest {
				continue // carried inside the bundle's own graph
			}
			if p, ex := excludedBy[ref]; ex {
				return nil, fmt.Errorf("%w: --exclude %q leaves out %s, an image of bundle %s, which is selected: a bundle's images come with it; exclude the bundle too, or narrow the pattern", ErrUsage, p, ref, b.Ref)
			}
			chosen[ref] = true
		}
	}
	for _, im := range toc.Images {
		if chosen[im.Ref] {
			sel.images = append(sel.images, im)
		} else {
			sel.excluded = append(sel.excluded, im.Ref)
		}
	}
	if len(sel.images) == 0 {
		return nil, fmt.Errorf("%w: --include and --exclude leave no image of the archive to import", ErrUsage)
	}
	sort.Strings(sel.excluded)
	return sel, nil
}

func bundleImageRef(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		return r.Name()
	}
	return ref
}

// images are those trust and signatures apply to: the selected ones.
func (s *source) images() []layout.Image {
	if s.sel == nil {
		return s.TOC.Images
	}
	return s.sel.images
}

func (s *source) bundles() []layout.Bundle {
	if s.sel == nil {
		return s.TOC.Bundles
	}
	return s.sel.bundles
}

// selectedTOC is the table of contents as signature checks see it: the
// selected images only, everything else unchanged.
func (s *source) selectedTOC() *layout.TOC {
	if s.sel == nil {
		return s.TOC
	}
	t := *s.TOC
	t.Images, t.Bundles = s.sel.images, s.sel.bundles
	return &t
}

func (s *source) excluded() []string {
	if s == nil || s.sel == nil {
		return nil
	}
	return s.sel.excluded
}

// place is where one image lands: its --map destination, else under --to.
func place(c *mirror.Client, to string, dests map[string]string, im layout.Image) (name.Repository, string, error) {
	if d, ok := dests[im.Ref]; ok {
		ref, err := c.ParseReference(d)
		if err != nil {
			return name.Repository{}, "", fmt.Errorf("%w: --map: destination of %s: %v", ErrUsage, im.Ref, err)
		}
		if pin, pinned, _ := layout.PinnedDigest(d); pinned && pin != im.Digest {
			return name.Repository{}, "", fmt.Errorf("%w: --map places %s on %s, but the image is %s", ErrUsage, im.Ref, d, im.Digest)
		}
		return ref.Context(), layout.TagOf(d), nil
	}
	if to == "" {
		return name.Repository{}, "", fmt.Errorf("%w: %s is not in --map, and there is no --to to place it under", ErrUsage, im.Ref)
	}
	ref, err := name.ParseReference(im.Ref)
	if err != nil {
		return name.Repository{}, "", verify.Refuse(im.Ref, "not a valid reference: %v", err)
	}
	repo, err := c.ParseRepository(to + "/" + ref.Context().RepositoryStr())
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("destination for %s: %w", im.Ref, err)
	}
	return repo, layout.TagOf(im.Ref), nil
}

// checkMapKeys refuses a map that names an image the archive does not
// hold: a misspelt key would otherwise land the image under --to.
func checkMapKeys(dests map[string]string, toc *layout.TOC) error {
	have := map[string]bool{}
	for _, im := range toc.Images {
		have[im.Ref] = true
	}
	var missing []string
	for k := range dests {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: --map names %s, which the archive does not hold", ErrUsage, strings.Join(missing, ", "))
	}
	return nil
}
