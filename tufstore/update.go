package tufstore

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Trusted is what the site trusts for one repository before an import: the
// root to start from, and the metadata earlier imports recorded, which is the
// baseline against rollback (go-tuf's local metadata files).
type Trusted struct {
	Root  []byte
	Files map[string][]byte
}

// Grace is how long past its expiry a role is still accepted. A site's
// policy may give one to timestamp and snapshot, whose short lives an air
// gap outlasts; root and targets roles never get one.
type Grace struct {
	Timestamp, Snapshot time.Duration
}

// For is the grace of a role (zero for every role but timestamp and snapshot).
func (g Grace) For(role string) time.Duration {
	switch role {
	case metadata.TIMESTAMP:
		return g.Timestamp
	case metadata.SNAPSHOT:
		return g.Snapshot
	}
	return 0
}

// ExpiredError is a role that expired before the moment that counts, beyond
// any grace it has.
type ExpiredError struct {
	Repo    string
	Role    string
	Version int64
	Expires time.Time
	Grace   time.Duration
	At      time.Time
}

func (e *ExpiredError) Error() string {
	g := "no grace applies"
	if e.Grace > 0 {
		g = "beyond the policy's grace of " + e.Grace.String()
	}
	return fmt.Sprintf("role %s (version %d) of %s expired at %s, checked at %s (%s)", e.Role, e.Version, e.Repo,
		e.Expires.UTC().Format(time.RFC3339), e.At.UTC().Format(time.RFC3339), g)
}

// RolePath names a delegated targets role by the delegations that lead to
// it from the top-level targets role: ["release", "release-eu"] is the role
// release-eu that release delegates, which targets delegates. A role is
// never found by its name alone: two roles of one name delegated by
// different roles are different roles.
type RolePath []string

// String is the path joined by "/", or "targets" for the top-level role.
func (p RolePath) String() string {
	if len(p) == 0 {
		return metadata.TARGETS
	}
	return strings.Join(p, "/")
}

func (p RolePath) key() string { return strings.Join(p, "\x00") }

// Session is one run of the TUF client workflow over an archive's copy of a
// repository. Close removes its scratch directory.
type Session struct {
	Name  string
	up    *updater.Updater
	dir   string
	files map[string][]byte
	now   time.Time
	grace Grace
	// delegated holds the delegated roles verified so far, keyed by their
	// path: a role is trusted only in the context that delegated it.
	delegated map[string]*delegatedRole
	graced    []Role
}

type delegatedRole struct {
	path RolePath
	md   *metadata.Metadata[metadata.TargetsType]
	file string
}

// archiveFetcher serves metadata from an archive instead of the network. A
// missing file is an HTTP 404, which is how go-tuf learns that the newest
// root has been reached.
type archiveFetcher struct {
	prefix string
	files  map[string][]byte
}

func (f archiveFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	name := strings.TrimPrefix(urlPath, f.prefix)
	b, ok := f.files[name]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: urlPath}
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, over the %d-byte limit", name, len(b), maxLength)}
	}
	return b, nil
}

// Update runs the TUF client workflow (root rotation, timestamp, snapshot,
// top-level targets; spec 5.3–5.6) over files, starting from t. Signature
// thresholds (unique keys), version rollback against t, snapshot/targets
// consistency and size limits are go-tuf's checks. Expiry is decided here,
// role by role, at now: go-tuf runs on a clock set back by the largest
// grace, and then each role must be unexpired at now less its own grace.
// Delegated roles are verified later, on demand, by Target and RoleVouches.
func Update(name string, files map[string][]byte, t Trusted, now time.Time, grace Grace) (*Session, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "relocate-tuf-")
	if err != nil {
		return nil, err
	}
	s := &Session{Name: name, dir: dir, files: files, now: now, grace: grace, delegated: map[string]*delegatedRole{}}
	for f, b := range t.Files {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			s.Close()
			return nil, err
		}
	}
	prefix := "relocate-archive://" + name + "/"
	cfg, err := config.New(prefix, t.Root)
	if err != nil {
		s.Close()
		return nil, err
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	cfg.RemoteTargetsURL = prefix + "targets/"
	cfg.Fetcher = archiveFetcher{prefix: prefix, files: files}
	if s.up, err = updater.New(cfg); err != nil {
		s.Close()
		return nil, fmt.Errorf("trusted root of %s: %w", name, err)
	}
	s.up.UnsafeSetRefTime(now.Add(-max(grace.Timestamp, grace.Snapshot, 0)))
	if err := s.up.Refresh(); err != nil {
		s.Close()
		return nil, err
	}
	for _, r := range s.topLevel() {
		if err := s.checkExpiry(r, now); err != nil {
			s.Close()
			return nil, err
		}
		if !now.Before(r.Expires) {
			s.graced = append(s.graced, r)
		}
	}
	return s, nil
}

// checkExpiry refuses a role expired at t less its grace.
func (s *Session) checkExpiry(r Role, t time.Time) error {
	g := s.grace.For(r.Role)
	if len(r.Path) > 0 {
		g = 0 // a delegated role named "timestamp" is still a targets role
	}
	if !t.Add(-g).Before(r.Expires) {
		return &ExpiredError{Repo: s.Name, Role: r.Role, Version: r.Version, Expires: r.Expires, Grace: g, At: t}
	}
	return nil
}

// Close removes the session's scratch directory.
func (s *Session) Close() { os.RemoveAll(s.dir) }

func (s *Session) topLevel() []Role {
	tm := s.up.GetTrustedMetadataSet()
	return []Role{
		{Role: metadata.ROOT, Version: tm.Root.Signed.Version, Expires: tm.Root.Signed.Expires},
		{Role: metadata.TIMESTAMP, Version: tm.Timestamp.Signed.Version, Expires: tm.Timestamp.Signed.Expires},
		{Role: metadata.SNAPSHOT, Version: tm.Snapshot.Signed.Version, Expires: tm.Snapshot.Signed.Expires},
		{Role: metadata.TARGETS, Version: tm.Targets[metadata.TARGETS].Signed.Version, Expires: tm.Targets[metadata.TARGETS].Signed.Expires},
	}
}

// Roles summarises every role trusted so far: root, timestamp, snapshot,
// targets, and the delegated roles verified by lookups, by path.
func (s *Session) Roles() []Role {
	out := s.topLevel()
	keys := slices.Sorted(maps.Keys(s.delegated))
	for _, k := range keys {
		d := s.delegated[k]
		out = append(out, Role{Role: d.path.String(), Path: d.path, Version: d.md.Signed.Version, Expires: d.md.Signed.Expires, File: d.file})
	}
	return out
}

// Graced lists the roles that were accepted only thanks to their grace.
func (s *Session) Graced() []Role { return s.graced }

// GraceFor is the grace the session applies to a role.
func (s *Session) GraceFor(role string) time.Duration { return s.grace.For(role) }

// CheckFresh checks every role trusted so far against t, each with its
// grace: an import that outlives its metadata must not commit it as fresh.
func (s *Session) CheckFresh(t time.Time) error {
	for _, r := range s.Roles() {
		if err := s.checkExpiry(r, t); err != nil {
			return err
		}
	}
	return nil
}

// Target finds a target by the TUF delegation walk (spec 5.7.7: pre-order,
// depth first, terminating roles stop it) and names the role path that
// listed it. Every delegated role on the way is verified with the keys and
// threshold of the delegation that led to it, and only for the paths it was
// delegated.
func (s *Session) Target(path string) (*metadata.TargetFiles, RolePath, error) {
	type visit struct {
		path   RolePath
		parent *metadata.Metadata[metadata.TargetsType]
	}
	stack := []visit{{}}
	for visits := 0; len(stack) > 0; visits++ {
		if visits > maxDelegations {
			return nil, nil, fmt.Errorf("target %s: more than %d roles to search", path, maxDelegations)
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		md := s.up.GetTrustedMetadataSet().Targets[metadata.TARGETS]
		if v.parent != nil {
			var err error
			if md, err = s.delegate(v.parent, v.path); err != nil {
				return nil, nil, err
			}
		}
		if tf, ok := md.Signed.Targets[path]; ok {
			return tf, v.path, nil
		}
		if md.Signed.Delegations == nil {
			continue
		}
		var children []visit
		for _, r := range md.Signed.Delegations.GetRolesForTarget(path) {
			children = append(children, visit{path: append(append(RolePath{}, v.path...), r.Name), parent: md})
			if r.Terminating {
				stack = stack[:0]
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil, nil, fmt.Errorf("target %s not found", path)
}

// RoleVouches checks that the role at path lists target with exactly the
// hashes and length of want, that every delegation on the path is trusted
// for target, and that the role carries at least minSigs valid signatures
// from distinct keys that its own delegation assigned to it. A role of the
// same name delegated anywhere else never counts.
func (s *Session) RoleVouches(path RolePath, target string, want *metadata.TargetFiles, minSigs int) error {
	if len(path) == 0 {
		return fmt.Errorf("a policy role must be a delegated role, not the top-level targets")
	}
	md := s.up.GetTrustedMetadataSet().Targets[metadata.TARGETS]
	var parent *metadata.Metadata[metadata.TargetsType]
	for i := range path {
		hop := path[:i+1]
		d, ok := delegationOf(md, hop[i])
		if !ok {
			return fmt.Errorf("role %s: %s does not delegate %q", hop, RolePath(path[:i]), hop[i])
		}
		if ok, err := d.IsDelegatedPath(target); err != nil || !ok {
			return fmt.Errorf("role %s is not trusted for %s: the delegation to %s covers other paths", path, target, hop)
		}
		next, err := s.delegate(md, hop)
		if err != nil {
			return err
		}
		parent, md = md, next
	}
	got, ok := md.Signed.Targets[target]
	if !ok {
		return fmt.Errorf("role %s does not list %s", path, target)
	}
	if got.Length != want.Length {
		return fmt.Errorf("role %s lists %s with length %d, not %d", path, target, got.Length, want.Length)
	}
	for alg, h := range want.Hashes {
		if g, ok := got.Hashes[alg]; !ok || g.String() != h.String() {
			return fmt.Errorf("role %s lists %s with another %s hash", path, target, alg)
		}
	}
	if n := distinctSigners(parent, path[len(path)-1], md); n < minSigs {
		return fmt.Errorf("role %s: %d valid signature(s) from distinct keys, the policy requires %d", path, n, minSigs)
	}
	return nil
}

// delegationOf is the first delegation named name in md, as go-tuf's
// VerifyDelegate picks it.
func delegationOf(md *metadata.Metadata[metadata.TargetsType], name string) (*metadata.DelegatedRole, bool) {
	if md.Signed.Delegations == nil {
		return nil, false
	}
	for i := range md.Signed.Delegations.Roles {
		if d := &md.Signed.Delegations.Roles[i]; d.Name == name {
			return d, true
		}
	}
	return nil, false
}

// delegate verifies the role at path, delegated by parent: the file at the
// version the snapshot lists (with its length and hashes if listed), of
// type targets, signed by a threshold of the delegation's distinct keys, of
// that exact version, unexpired at the session's time (no grace: it is a
// targets role). The result is cached under its path, never its name.
func (s *Session) delegate(parent *metadata.Metadata[metadata.TargetsType], path RolePath) (*metadata.Metadata[metadata.TargetsType], error) {
	if d, ok := s.delegated[path.key()]; ok {
		return d.md, nil
	}
	role := path[len(path)-1]
	fail := func(format string, args ...any) error {
		return fmt.Errorf("role %s of %s: %s", path, s.Name, fmt.Sprintf(format, args...))
	}
	tm := s.up.GetTrustedMetadataSet()
	meta, ok := tm.Snapshot.Signed.Meta[role+".json"]
	if !ok {
		return nil, fail("the snapshot lists no %s.json", role)
	}
	file := fileName(role, meta.Version, tm.Root.Signed.ConsistentSnapshot)
	b, ok := s.files[file]
	if !ok {
		return nil, fail("%s is missing from the archive", file)
	}
	if int64(len(b)) > targetsMaxLength {
		return nil, fail("%s is over the %d-byte limit", file, targetsMaxLength)
	}
	if err := meta.VerifyLengthHashes(b); err != nil {
		return nil, fail("%s does not match the snapshot: %v", file, err)
	}
	md, err := metadata.Targets().FromBytes(b)
	if err != nil {
		return nil, fail("%s: %v", file, err)
	}
	if err := parent.VerifyDelegate(role, md); err != nil {
		return nil, fail("not signed by a threshold of the keys its delegation assigns: %v", err)
	}
	if md.Signed.Version != meta.Version {
		return nil, fail("version %d, the snapshot lists version %d", md.Signed.Version, meta.Version)
	}
	r := Role{Role: path.String(), Path: path, Version: md.Signed.Version, Expires: md.Signed.Expires, File: file}
	if err := s.checkExpiry(r, s.now); err != nil {
		return nil, err
	}
	s.delegated[path.key()] = &delegatedRole{path: append(RolePath{}, path...), md: md, file: file}
	return md, nil
}

// distinctSigners counts the distinct keys of role's delegation in parent
// that validly signed md. Each key is asked alone, through go-tuf's own
// VerifyDelegate on a one-key delegation, so that the count does not rely
// on how go-tuf counts towards a threshold; keys are told apart by their
// public value, not by the key IDs the delegator claims.
func distinctSigners(parent *metadata.Metadata[metadata.TargetsType], role string, md *metadata.Metadata[metadata.TargetsType]) int {
	d, ok := delegationOf(parent, role)
	if !ok {
		return 0
	}
	seen := map[string]bool{}
	for _, id := range d.KeyIDs {
		k, ok := parent.Signed.Delegations.Keys[id]
		if !ok {
			continue
		}
		value := k.Type + "\x00" + k.Value.PublicKey
		if seen[value] {
			continue
		}
		one := metadata.Targets(parent.Signed.Expires)
		one.Signed.Delegations = &metadata.Delegations{
			Keys:  map[string]*metadata.Key{id: k},
			Roles: []metadata.DelegatedRole{{Name: role, KeyIDs: []string{id}, Threshold: 1, Paths: []string{"*"}}},
		}
		if one.VerifyDelegate(role, md) == nil {
			seen[value] = true
		}
	}
	return len(seen)
}

// NewState returns the metadata files the update persisted (root,
// timestamp, snapshot, targets): the new trusted state for this repository
// once the import succeeds. Delegated roles are not part of it: the
// snapshot's versions are their rollback baseline.
func (s *Session) NewState() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		b, err := os.ReadFile(filepath.Join(s.dir, role+".json"))
		if err != nil {
			return nil, err
		}
		out[role+".json"] = b
	}
	return out, nil
}
