package layout

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// pathComponent is a repository path component as the distribution
// reference grammar defines it: no empty, "." or ".." segment can match, so
// a name can never act as a path once a proxy or a registry cleans it.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// CheckRepositoryPath accepts a repository path ("team/app") whose every
// "/"-separated segment is a name component.
func CheckRepositoryPath(repo string) error {
	for _, seg := range strings.Split(repo, "/") {
		if !pathComponent.MatchString(seg) {
			return fmt.Errorf("repository %q: segment %q is not a name component (lower-case letters and digits joined by '.', '_', '__' or '-'; empty, '.' and '..' segments are refused)", repo, seg)
		}
	}
	return nil
}

// CheckRef accepts an image reference only when it is a name and never a
// path: it parses, and every segment of its repository is a name component.
func CheckRef(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("not a valid reference: %w", err)
	}
	// go-containerregistry accepts "a//b" and "a/../b" as repositories.
	return CheckRepositoryPath(r.Context().RepositoryStr())
}

// PinnedDigest is the digest a reference names after "@" (repo@sha256:…
// or repo:tag@sha256:…), if any.
func PinnedDigest(ref string) (v1.Hash, bool, error) {
	_, d, ok := strings.Cut(ref, "@")
	if !ok {
		return v1.Hash{}, false, nil
	}
	h, err := v1.NewHash(d)
	if err != nil {
		return v1.Hash{}, true, fmt.Errorf("reference %s: %q is not a digest: %w", ref, d, err)
	}
	return h, true, nil
}

// GlobRegexp turns a path pattern into a regular expression: "*" matches
// any run of characters, "/" and ":" included, "?" one character, anything
// else itself. Policies, selections and TUF target patterns share it.
func GlobRegexp(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
