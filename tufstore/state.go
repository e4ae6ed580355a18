package tufstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relocate-dev/relocate/internal/atomicfile"
	"github.com/relocate-dev/relocate/internal/pause"
)

// The store's layout:
//
//	DIR/lock              flock(2)ed by an import for its whole run
//	DIR/current           symlink to the generation in force
//	DIR/gen-<n>/<repo>/   go-tuf's local metadata of each repository,
//	                      pinned-root.json, the root the site pinned first,
//	                      and %delegated.json, the versions of the delegated
//	                      roles the last import verified (for the audit log)
//	DIR/audit.log         one JSON line per import, appended and synced
//
// A commit writes a whole new generation beside the current one, syncs it,
// and swaps the symlink with rename(2): a crash leaves the old generation or
// the new one in force, never a mix.
const (
	currentLink = "current"
	lockFile    = "lock"
	auditFile   = "audit.log"
	pinnedFile  = "pinned-root.json"
	delegFile   = "%delegated.json" // "%" is never in a name go-tuf writes (it escapes it)
)

// Store is the site's trusted TUF state.
type Store struct {
	dir  string
	lock *os.File
}

// RepoState is what the site trusts for one repository.
type RepoState struct {
	Pinned []byte            // the root pinned out of band, first
	Files  map[string][]byte // go-tuf's local metadata: root.json (newest trusted), timestamp.json, ...
	// Delegated holds the version of each delegated role verified, by its
	// delegation path ("release/release-eu"). The snapshot is the rollback
	// baseline of these roles; this is the record of what was seen.
	Delegated map[string]int64
}

// Open opens the store in dir without locking or creating it: for reading,
// as verify does. A store that does not exist yet is empty.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("no state directory")
	}
	return &Store{dir: dir}, nil
}

// Dir is where the store lives.
func (s *Store) Dir() string { return s.dir }

// Lock creates the store if needed and takes its exclusive lock, failing at
// once if another process holds it: two imports must not race on the state.
func (s *Store) Lock() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("state %s is locked by another import (%w)", s.dir, err)
	}
	s.lock = f
	return nil
}

// Unlock releases the lock.
func (s *Store) Unlock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

func (s *Store) current() (string, int, error) {
	target, err := os.Readlink(filepath.Join(s.dir, currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(target, "gen-"))
	if err != nil || !strings.HasPrefix(target, "gen-") {
		return "", 0, fmt.Errorf("state %s: %s points at %q", s.dir, currentLink, target)
	}
	return filepath.Join(s.dir, target), n, nil
}

// Load returns the trusted state of every repository the site knows.
func (s *Store) Load() (map[string]*RepoState, error) {
	dir, _, err := s.current()
	if err != nil || dir == "" {
		return map[string]*RepoState{}, err
	}
	repos, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*RepoState{}
	for _, r := range repos {
		if !r.IsDir() || checkStateName(r.Name()) != nil {
			continue
		}
		rs := &RepoState{Files: map[string][]byte{}}
		files, err := os.ReadDir(filepath.Join(dir, r.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, r.Name(), f.Name()))
			if err != nil {
				return nil, err
			}
			switch f.Name() {
			case pinnedFile:
				rs.Pinned = b
			case delegFile:
				if err := json.Unmarshal(b, &rs.Delegated); err != nil {
					return nil, fmt.Errorf("state %s: %s: %w", r.Name(), delegFile, err)
				}
			default:
				rs.Files[f.Name()] = b
			}
		}
		out[r.Name()] = rs
	}
	return out, nil
}

// Commit makes state the trusted state, atomically. The caller must hold the lock.
func (s *Store) Commit(state map[string]*RepoState) error {
	if s.lock == nil {
		return errors.New("commit without the state lock")
	}
	cur, n, err := s.current()
	if err != nil {
		return err
	}
	// A commit of the state in force writes nothing: an import killed
	// after its commit and run again ends with the same state, generation
	// included, as one that was never killed.
	if cur != "" {
		if old, err := s.Load(); err == nil && sameState(old, state) {
			os.Remove(filepath.Join(s.dir, currentLink+".tmp"))
			s.prune(filepath.Base(cur))
			return nil
		}
	}
	next := fmt.Sprintf("gen-%06d", n+1)
	gen := filepath.Join(s.dir, next)
	os.RemoveAll(gen) // debris of a commit that crashed before its swap
	names := slices.Sorted(maps.Keys(state))
	for _, name := range names {
		if err := checkStateName(name); err != nil {
			return err
		}
		rd := filepath.Join(gen, name)
		if err := os.MkdirAll(rd, 0o700); err != nil {
			return err
		}
		rs := state[name]
		files := map[string][]byte{pinnedFile: rs.Pinned}
		for f, b := range rs.Files {
			files[f] = b
		}
		if len(rs.Delegated) > 0 {
			b, err := json.Marshal(rs.Delegated)
			if err != nil {
				return err
			}
			files[delegFile] = b
		}
		for f, b := range files {
			if strings.ContainsAny(f, `/\`) || f == ".." {
				return fmt.Errorf("state file name %q", f)
			}
			if err := writeSynced(filepath.Join(rd, f), b); err != nil {
				return err
			}
		}
		if err := atomicfile.SyncDir(rd); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(gen, 0o700); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(gen); err != nil {
		return err
	}
	pause.At("state-written")
	tmp := filepath.Join(s.dir, currentLink+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(next, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, currentLink)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return err
	}
	pause.At("state-swapped")
	s.prune(next)
	return nil
}

// sameState reports whether two states hold the same bytes.
func sameState(a, b map[string]*RepoState) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || !bytes.Equal(x.Pinned, y.Pinned) || len(x.Files) != len(y.Files) || len(x.Delegated) != len(y.Delegated) {
			return false
		}
		for f, c := range x.Files {
			if d, ok := y.Files[f]; !ok || !bytes.Equal(c, d) {
				return false
			}
		}
		for r, v := range x.Delegated {
			if w, ok := y.Delegated[r]; !ok || v != w {
				return false
			}
		}
	}
	return true
}

// prune removes generations other than keep; a failure only leaves debris.
func (s *Store) prune(keep string) {
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gen-") && e.Name() != keep {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time          time.Time `json:"time"`
	Operation     string    `json:"operation"`
	Archive       string    `json:"archive"`
	ArchiveDigest string    `json:"archiveDigest,omitempty"`
	To            string    `json:"to,omitempty"`
	// Verdict is "ok", "refused", or "failed" (the registry failed after
	// the archive was verified).
	Verdict string `json:"verdict"`
	// VerifiedAt is the moment expiry was judged at.
	VerifiedAt time.Time `json:"verifiedAt,omitzero"`
	// Repositories has the versions of every role checked, delegated roles
	// (by path) included, before and after the import.
	Repositories map[string]AuditVersions `json:"repositories,omitempty"`
	Policy       string                   `json:"policy,omitempty"`
	Grace        []string                 `json:"grace,omitempty"`
	// Unvouched lists the images the policy admitted without TUF.
	Unvouched []string `json:"unvouched,omitempty"`
	// Excluded lists the archive's images the import left out (--include,
	// --exclude): verified with the archive, neither bound nor pushed.
	Excluded []string `json:"excluded,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// AuditVersions are a repository's role versions before and after.
type AuditVersions struct {
	Before map[string]int64 `json:"before"`
	After  map[string]int64 `json:"after"`
}

// Audit appends a record to the audit log and syncs it.
func (s *Store) Audit(r AuditRecord) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, auditFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// Versions reads the role versions out of a repository's state files.
func Versions(files map[string][]byte) map[string]int64 {
	out := map[string]int64{}
	for name, b := range files {
		var v struct {
			Signed struct {
				Version int64 `json:"version"`
			} `json:"signed"`
		}
		if json.Unmarshal(b, &v) == nil {
			out[strings.TrimSuffix(name, ".json")] = v.Signed.Version
		}
	}
	return out
}

// SameRoot reports whether two root documents are the same bytes.
func SameRoot(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }
