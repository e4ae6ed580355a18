package tufstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxFileSize bounds any metadata file collected; the site's verification
// applies TUF's tighter per-role limits.
const MaxFileSize = 16 << 20

// Limits on metadata sizes, go-tuf's client defaults: endless data is an attack.
const (
	rootMaxLength      = 512000
	timestampMaxLength = 16384
	snapshotMaxLength  = 2000000
	targetsMaxLength   = 5000000
	maxDelegations     = 32
)

// maxRoots bounds root rotations, as go-tuf does.
const maxRoots = 256

// Role describes one role's metadata as it was collected.
type Role struct {
	Role string `json:"role"`
	// Path is a delegated role's delegation path from targets.
	Path    RolePath  `json:"path,omitempty"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	File    string    `json:"file"`
}

// Chain is a TUF repository's metadata: file names as the repository serves
// them (N.root.json, timestamp.json, V.snapshot.json, V.targets.json,
// V.<role>.json with consistent snapshots), with a summary of each role.
type Chain struct {
	Name  string            `json:"name"`
	URL   string            `json:"url"`
	Files map[string][]byte `json:"-"`
	Roles []Role            `json:"roles"`
	// Missing lists delegated roles that could not be collected: images
	// they should vouch for will be refused at the site.
	Missing []string `json:"missing,omitempty"`
}

// Earliest is the role that expires first.
func (c *Chain) Earliest() (Role, bool) {
	var out Role
	for _, r := range c.Roles {
		if out.Role == "" || r.Expires.Before(out.Expires) {
			out = r
		}
	}
	return out, out.Role != ""
}

// collected is the part of any role's metadata that collection needs. It is
// read leniently: collection packs what the repository serves, and the TUF
// client workflow at the site decides whether it is valid.
type collected struct {
	Signed struct {
		Version            int64                              `json:"version"`
		Expires            time.Time                          `json:"expires"`
		ConsistentSnapshot bool                               `json:"consistent_snapshot"`
		Meta               map[string]struct{ Version int64 } `json:"meta"`
		Delegations        *struct {
			Roles []struct{ Name string } `json:"roles"`
		} `json:"delegations"`
	} `json:"signed"`
}

// Collect fetches a repository's chain over HTTP: every root from 1.root.json
// up to the newest (so a site that pinned an old root can walk the
// rotation), timestamp, snapshot, targets, and every delegated targets role
// reachable from targets, by the names consistent snapshots give them.
// Delegated roles the repository does not publish are reported in Missing.
// It checks structure, not signatures: the site's verification does that.
func Collect(ctx context.Context, client *http.Client, name, base string) (*Chain, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	base = strings.TrimSuffix(base, "/")
	c := &Chain{Name: name, URL: base, Files: map[string][]byte{}}
	get := func(file string) (*collected, error) {
		b, err := fetch(ctx, client, base+"/"+file, MaxFileSize)
		if err != nil {
			return nil, err
		}
		var m collected
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: not TUF metadata: %w", file, err)
		}
		c.Files[file] = b
		return &m, nil
	}
	role := func(r string, m *collected, file string) {
		c.Roles = append(c.Roles, Role{Role: r, Version: m.Signed.Version, Expires: m.Signed.Expires, File: file})
	}

	var root *collected
	var rootFile string
	for v := 1; ; v++ {
		if v > maxRoots {
			return nil, fmt.Errorf("tuf %s: more than %d root versions", name, maxRoots)
		}
		file := fmt.Sprintf("%d.root.json", v)
		m, err := get(file)
		if errors.Is(err, errNotFound) && v > 1 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tuf %s: %s: %w", name, file, err)
		}
		root, rootFile = m, file
	}
	// Only the newest root is summarised; older ones are there for the walk.
	role("root", root, rootFile)
	consistent := root.Signed.ConsistentSnapshot

	ts, err := get("timestamp.json")
	if err != nil {
		return nil, fmt.Errorf("tuf %s: timestamp.json: %w", name, err)
	}
	role("timestamp", ts, "timestamp.json")
	sm, ok := ts.Signed.Meta["snapshot.json"]
	if !ok {
		return nil, fmt.Errorf("tuf %s: timestamp lists no snapshot", name)
	}
	file := fileName("snapshot", sm.Version, consistent)
	snap, err := get(file)
	if err != nil {
		return nil, fmt.Errorf("tuf %s: %s: %w", name, file, err)
	}
	role("snapshot", snap, file)

	// Follow delegations, not snapshot entries: a snapshot may list legacy
	// roles that nothing delegates to and that are not published.
	queue := []string{"targets"}
	seen := map[string]bool{"targets": true}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		meta, ok := snap.Signed.Meta[r+".json"]
		if !ok {
			// Without the top-level targets role nothing can be vouched
			// for: fail here, as when its file is not published, rather
			// than export a chain the site can only refuse.
			if r == "targets" {
				return nil, fmt.Errorf("tuf %s: %s lists no targets.json", name, file)
			}
			c.Missing = append(c.Missing, r+" (not in the snapshot)")
			continue
		}
		file := fileName(r, meta.Version, consistent)
		t, err := get(file)
		if errors.Is(err, errNotFound) && r != "targets" {
			c.Missing = append(c.Missing, r+" ("+file+" not published)")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tuf %s: %s: %w", name, file, err)
		}
		role(r, t, file)
		if d := t.Signed.Delegations; d != nil {
			for _, dr := range d.Roles {
				if !seen[dr.Name] && len(seen) < maxDelegations {
					seen[dr.Name] = true
					queue = append(queue, dr.Name)
				}
			}
		}
	}
	return c, nil
}

// fileName is how a repository names a role's file.
func fileName(role string, version int64, consistent bool) string {
	if consistent {
		return fmt.Sprintf("%d.%s.json", version, url.PathEscape(role))
	}
	return url.PathEscape(role) + ".json"
}

var errNotFound = errors.New("not found")

func fetch(ctx context.Context, client *http.Client, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden {
		return nil, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, max)
	}
	return b, nil
}

// CheckName accepts repository names that are safe as file names. Names
// starting with "notary." are kept for Notary v1 GUNs' state.
func CheckName(name string) error {
	if strings.HasPrefix(name, "notary.") {
		return fmt.Errorf("TUF repository name %q: names starting with \"notary.\" are reserved", name)
	}
	return checkStateName(name)
}

func checkStateName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 128 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return fmt.Errorf("TUF repository name %q: use letters, digits, '.', '-' and '_'", name)
	}
	return nil
}
