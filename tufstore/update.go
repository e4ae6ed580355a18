package tufstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Trusted is what the site trusts for one repository before an import: the
// root to start from, and the metadata earlier imports recorded, which is the
// baseline against rollback (go-tuf's local metadata files).
type Trusted struct {
	Root  []byte
	Files map[string][]byte
}

// Session is one run of the TUF client workflow over an archive's copy of a
// repository. Close removes its scratch directory.
type Session struct {
	Name  string
	up    *updater.Updater
	dir   string
	files map[string][]byte
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
// targets; spec 5.3–5.6) over files, starting from t, with expiry judged at
// refTime. Signature thresholds (unique keys), version rollback against t,
// snapshot/targets consistency and size limits are go-tuf's checks.
func Update(name string, files map[string][]byte, t Trusted, refTime time.Time) (*Session, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "relocate-tuf-")
	if err != nil {
		return nil, err
	}
	s := &Session{Name: name, dir: dir, files: files}
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
	s.up.UnsafeSetRefTime(refTime)
	if err := s.up.Refresh(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close removes the session's scratch directory.
func (s *Session) Close() { os.RemoveAll(s.dir) }

func (s *Session) trusted() trustedmetadata.TrustedMetadata { return s.up.GetTrustedMetadataSet() }

// Target finds a target by the TUF delegation walk (pre-order, depth first,
// terminating roles stop it) and names the role that vouched for it.
func (s *Session) Target(path string) (*metadata.TargetFiles, string, error) {
	tf, err := s.up.GetTargetInfo(path)
	if err != nil {
		return nil, "", err
	}
	tm := s.trusted()
	for _, role := range s.loadedRoles() {
		if got, ok := tm.Targets[role].Signed.Targets[path]; ok && got.Equal(*tf) {
			return tf, role, nil
		}
	}
	return tf, "targets", nil
}

// loadedRoles lists the targets roles loaded so far, top-level first.
func (s *Session) loadedRoles() []string {
	var out []string
	for r := range s.trusted().Targets {
		if r != metadata.TARGETS {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return append([]string{metadata.TARGETS}, out...)
}

// Roles summarises every role trusted after the update: root, timestamp,
// snapshot and the targets roles loaded so far.
func (s *Session) Roles() []Role {
	tm := s.trusted()
	out := []Role{
		{Role: "root", Version: tm.Root.Signed.Version, Expires: tm.Root.Signed.Expires},
		{Role: "timestamp", Version: tm.Timestamp.Signed.Version, Expires: tm.Timestamp.Signed.Expires},
		{Role: "snapshot", Version: tm.Snapshot.Signed.Version, Expires: tm.Snapshot.Signed.Expires},
	}
	for _, r := range s.loadedRoles() {
		t := tm.Targets[r]
		out = append(out, Role{Role: r, Version: t.Signed.Version, Expires: t.Signed.Expires})
	}
	return out
}

// Expired lists the roles among root, targets and the loaded delegated roles
// that are expired at t: these never get a grace period.
func (s *Session) Expired(t time.Time) []string {
	tm := s.trusted()
	var out []string
	if tm.Root.Signed.IsExpired(t) {
		out = append(out, "root")
	}
	for _, r := range s.loadedRoles() {
		if tm.Targets[r].Signed.IsExpired(t) {
			out = append(out, r)
		}
	}
	return out
}

// RoleVouches checks that a delegated role (at any depth) lists the target
// with exactly these hashes and length and carries at least minSigs valid
// signatures from distinct keys that its delegator assigned to it. The role
// is loaded through its delegator like any other (snapshot version and hash,
// delegator's threshold, expiry).
func (s *Session) RoleVouches(role, path string, want *metadata.TargetFiles, minSigs int) error {
	parent, hops, err := s.find(s.trusted(), metadata.TARGETS, role, 0)
	if err != nil {
		return fmt.Errorf("role %s: %w", role, err)
	}
	// Every delegation on the way must cover the target: a role delegated
	// for other paths does not vouch for this one, whatever it lists.
	for _, h := range hops {
		if ok, err := h.IsDelegatedPath(path); err != nil || !ok {
			return fmt.Errorf("role %s is not trusted for %s: delegation %s covers other paths", role, path, h.Name)
		}
	}
	tm := s.trusted()
	md := tm.Targets[role]
	got, ok := md.Signed.Targets[path]
	if !ok {
		return fmt.Errorf("role %s does not list %s", role, path)
	}
	if got.Length != want.Length {
		return fmt.Errorf("role %s lists %s with length %d, not %d", role, path, got.Length, want.Length)
	}
	for alg, h := range want.Hashes {
		if g, ok := got.Hashes[alg]; !ok || g.String() != h.String() {
			return fmt.Errorf("role %s lists %s with another %s hash", role, path, alg)
		}
	}
	// go-tuf counts distinct valid keys against a threshold; ask it with the
	// policy's number instead of the delegation's.
	delegator := *tm.Targets[parent]
	dg := *delegator.Signed.Delegations
	dg.Roles = append([]metadata.DelegatedRole(nil), dg.Roles...)
	for i := range dg.Roles {
		if dg.Roles[i].Name == role {
			dg.Roles[i].Threshold = minSigs
		}
	}
	delegator.Signed.Delegations = &dg
	if err := delegator.VerifyDelegate(role, md); err != nil {
		return fmt.Errorf("role %s: fewer than %d valid signatures from distinct keys: %w", role, minSigs, err)
	}
	return nil
}

// find loads a delegated role through the delegation tree from parent and
// returns its delegator's name and the delegations leading to it.
func (s *Session) find(tm trustedmetadata.TrustedMetadata, parent, role string, depth int) (string, []metadata.DelegatedRole, error) {
	if depth > maxDelegations {
		return "", nil, fmt.Errorf("role %s: delegations nested too deeply", role)
	}
	p := tm.Targets[parent]
	if p.Signed.Delegations == nil {
		return "", nil, errNoRole
	}
	for _, d := range p.Signed.Delegations.Roles {
		if err := s.load(tm, d.Name, parent); err != nil {
			if d.Name == role {
				return "", nil, err
			}
			continue
		}
		if d.Name == role {
			return parent, []metadata.DelegatedRole{d}, nil
		}
		got, hops, err := s.find(tm, d.Name, role, depth+1)
		if err == nil {
			return got, append([]metadata.DelegatedRole{d}, hops...), nil
		}
		if !errors.Is(err, errNoRole) {
			return "", nil, err
		}
	}
	return "", nil, errNoRole
}

var errNoRole = errors.New("no such delegated role")

// load verifies and loads a delegated role from the archive's files.
func (s *Session) load(tm trustedmetadata.TrustedMetadata, role, parent string) error {
	if _, ok := tm.Targets[role]; ok {
		return nil
	}
	meta, ok := tm.Snapshot.Signed.Meta[role+".json"]
	if !ok {
		return fmt.Errorf("snapshot lists no %s", role)
	}
	file := fileName(role, meta.Version, tm.Root.Signed.ConsistentSnapshot)
	b, ok := s.files[file]
	if !ok {
		return fmt.Errorf("%s (role %s) is missing", file, role)
	}
	if int64(len(b)) > targetsMaxLength {
		return fmt.Errorf("%s is over the %d-byte limit", file, targetsMaxLength)
	}
	// tm shares its Targets map with the updater, so a role loaded here is
	// trusted for later lookups too.
	_, err := tm.UpdateDelegatedTargets(b, role, parent)
	return err
}

// NewState returns the metadata files the update persisted: the new trusted
// state for this repository once the import succeeds.
func (s *Session) NewState() (map[string][]byte, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}
