package relocate

import (
	"fmt"

	"github.com/relocate-dev/relocate/layout"
)

// platformOptions reads export --platform values. Bundles travel whole:
// their images are pinned by digest, which choosing a platform would change.
func platformOptions(list []string, bundles []bundleSource) ([]layout.Platform, map[string]bool, error) {
	if len(list) == 0 {
		return nil, nil, nil
	}
	var out []layout.Platform
	seen := map[string]bool{}
	for _, s := range list {
		p, err := layout.ParsePlatform(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: --platform: %v", ErrUsage, err)
		}
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p)
		}
	}
	whole := map[string]bool{}
	for _, r := range bundleRefs(bundles) {
		whole[r] = true
	}
	return out, whole, nil
}
