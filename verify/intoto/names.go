package intoto

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxSublayoutDepth bounds how deeply sublayouts may nest: a link name has
// at most this many directory components and Verify refuses a sublayout
// nested deeper. in-toto sets no bound; this one keeps a hostile chain from
// costing unbounded work.
const MaxSublayoutDepth = 8

// CheckName reports whether name is a plain relative name of slash-separated
// components: none empty, "." or "..", no leading slash, no backslash and no
// control character. Names are only ever looked up, never opened as paths;
// this keeps them unambiguous all the same.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%q is not UTF-8", name)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%q holds a backslash or a control character", name)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("%q is absolute", name)
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("%q has an empty, \".\" or \"..\" component", name)
		}
	}
	return nil
}

// CheckLinkName reports whether name is a link file name as in-toto lays
// links out relative to the root layout's link directory:
// "<step>.<keyid8>.link", under one "<step>.<keyid8>/" directory per
// enclosing sublayout (in-toto's SublayoutLinkDirFormat), at most
// MaxSublayoutDepth of them.
func CheckLinkName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	parts := strings.Split(name, "/")
	if len(parts)-1 > MaxSublayoutDepth {
		return fmt.Errorf("%q is nested %d sublayouts deep, at most %d", name, len(parts)-1, MaxSublayoutDepth)
	}
	for i, p := range parts {
		if i == len(parts)-1 {
			var ok bool
			if p, ok = strings.CutSuffix(p, ".link"); !ok {
				return fmt.Errorf("%q does not end in .link", name)
			}
		}
		if !stepDotKeyID8(p) {
			return fmt.Errorf("%q: %q is not <step>.<keyid8>", name, p)
		}
	}
	return nil
}

// stepDotKeyID8 reports whether s is "<step>.<8 lower-case hex digits>".
func stepDotKeyID8(s string) bool {
	step, id, ok := cutLast(s, ".")
	if !ok || step == "" || len(id) != 8 {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') })
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// LinkNames maps link files' delivery names (TUF target names such as
// "<bundle-sha256>/<step>.<keyid8>.link" or, for a sublayout's links,
// "<bundle-sha256>/<step>.<keyid8>/<substep>.<keyid8>.link") to their names
// relative to the root layout's link directory, the form Verify takes.
//
// The link directory is the directory of the shallowest name: the root
// layout's own links, sublayouts included, lie there and every sublayout's
// links below. Every name must lie under it and, relative to it, pass
// CheckLinkName; a refusal wraps ErrVerification.
func LinkNames(names []string) (map[string]string, error) {
	names = slices.Sorted(slices.Values(names))
	names = slices.Compact(names)
	out := make(map[string]string, len(names))
	if len(names) == 0 {
		return out, nil
	}
	for _, n := range names {
		if err := CheckName(n); err != nil {
			return nil, refuse("link "+n, "%v", err)
		}
	}
	shallowest := slices.MinFunc(names, func(a, b string) int {
		return strings.Count(a, "/") - strings.Count(b, "/")
	})
	dir, _, _ := cutLast(shallowest, "/")
	if !strings.Contains(shallowest, "/") {
		dir = ""
	}
	for _, n := range names {
		rel := n
		if dir != "" {
			var ok bool
			if rel, ok = strings.CutPrefix(n, dir+"/"); !ok {
				return nil, refuse("link "+n, "not under %s, the link directory (that of %s)", dir, shallowest)
			}
		}
		if err := CheckLinkName(rel); err != nil {
			return nil, refuse("link "+n, "%v", err)
		}
		out[n] = rel
	}
	return out, nil
}
