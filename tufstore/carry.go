package tufstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/relocate-dev/relocate/layout"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// consistent reports whether the chain's newest root asks for consistent
// snapshots (hash-prefixed target file names).
func (c *Chain) consistent() bool {
	for _, r := range c.Roles {
		if r.Role == metadata.ROOT {
			var m collected
			if json.Unmarshal(c.Files[r.File], &m) == nil {
				return m.Signed.ConsistentSnapshot
			}
		}
	}
	return false
}

// TargetGlob matches target names: "*" matches any run of characters, "/"
// included (so "*" is every target), "?" one character.
func TargetGlob(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, fmt.Errorf("an empty target pattern")
	}
	return layout.GlobRegexp(glob), nil
}

// CollectTargets fetches the target files whose names match glob from
// targetsURL, by their consistent-snapshot names (<sha256>.<basename>)
// when the root asks for them, checks each against the length and sha256
// its targets metadata lists, and adds it to the chain's files (as
// TargetFileName). It returns the names, sorted; none when nothing matches.
// The metadata is read as collected: a site verifies every carried target
// through its verified TUF session, and export does too given a root.
func (c *Chain) CollectTargets(ctx context.Context, client *http.Client, targetsURL, glob string) ([]string, error) {
	re, err := TargetGlob(glob)
	if err != nil {
		return nil, err
	}
	consistent := c.consistent()
	all := c.targets()
	var names []string
	for n := range all {
		if re.MatchString(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.fetchTarget(ctx, client, targetsURL, n, all[n], consistent, "target"); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// fetchTarget fetches one target file from targetsURL (by its
// consistent-snapshot name <sha256>.<basename> when consistent), checks it
// against the length and sha256 its targets metadata lists, and adds it to
// the chain's files under TargetFileName. what names it in errors.
func (c *Chain) fetchTarget(ctx context.Context, client *http.Client, targetsURL, n string, e targetEntry, consistent bool, what string) error {
	sum := e.Hashes["sha256"]
	if sum == "" {
		return fmt.Errorf("tuf %s: %s %s lists no sha256", c.Name, what, n)
	}
	if e.Length < 0 || e.Length > MaxFileSize {
		return fmt.Errorf("tuf %s: %s %s is %d bytes, over the %d-byte limit for a carried target", c.Name, what, n, e.Length, MaxFileSize)
	}
	remote := n
	if consistent {
		dir, base := path.Split(n)
		remote = dir + sum + "." + base
	}
	u := strings.TrimSuffix(targetsURL, "/") + "/" + escapePath(remote)
	b, err := fetch(ctx, client, u, MaxFileSize)
	if err != nil {
		return fmt.Errorf("tuf %s: %s %s: %w", c.Name, what, n, err)
	}
	got := sha256.Sum256(b)
	if int64(len(b)) != e.Length || hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("tuf %s: %s %s from %s does not match its length and sha256 in the targets metadata", c.Name, what, n, u)
	}
	c.Files[TargetFileName(n)] = b
	return nil
}

// escapePath escapes each segment of a slash-separated path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// CarriedTargets lists the target names whose files travel among files.
func CarriedTargets(files map[string][]byte) []string {
	var out []string
	for f := range files {
		if esc, ok := strings.CutPrefix(f, TargetFilePrefix); ok {
			if n, err := url.PathUnescape(esc); err == nil {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// VerifyTarget checks a carried target file through the verified session:
// the target is found by the delegation walk (every role on the way
// verified) and data must have its length and every hash it lists.
func (s *Session) VerifyTarget(name string, data []byte) (*metadata.TargetFiles, RolePath, error) {
	tf, role, err := s.Target(name)
	if err != nil {
		return nil, nil, fmt.Errorf("carried target %s: %w", name, err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, nil, fmt.Errorf("carried target %s does not match its TUF target (role %s): %v", name, role, err)
	}
	return tf, role, nil
}

// VerifyCarried checks every target file carried among the session's files.
func (s *Session) VerifyCarried() error {
	for _, n := range CarriedTargets(s.files) {
		if _, _, err := s.VerifyTarget(n, s.files[TargetFileName(n)]); err != nil {
			return err
		}
	}
	return nil
}

// File is the carried content of a target (nil when it did not travel).
func (s *Session) File(target string) []byte { return s.files[TargetFileName(target)] }
