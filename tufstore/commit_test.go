package tufstore

import (
	"os"
	"path/filepath"
	"testing"
)

// Committing the state in force writes no new generation, and clears what
// a commit killed before (or just after) its swap left behind: an import
// killed at any moment and run again ends with the same state directory
// as one never killed.
func TestCommitSameStateIsANoOp(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	st := map[string]*RepoState{"repo": {Pinned: []byte("pin"), Files: map[string][]byte{"root.json": []byte("r1")}, Delegated: map[string]int64{"releases": 2}}}
	if err := s.Commit(st); err != nil {
		t.Fatal(err)
	}
	// Debris: a killed commit's next generation and temporary link, and
	// the previous generation a kill after the swap leaves.
	os.MkdirAll(filepath.Join(dir, "gen-000002", "repo"), 0o700)
	os.MkdirAll(filepath.Join(dir, "gen-000000"), 0o700)
	os.Symlink("gen-000002", filepath.Join(dir, "current.tmp"))
	same := map[string]*RepoState{"repo": {Pinned: []byte("pin"), Files: map[string][]byte{"root.json": []byte("r1")}, Delegated: map[string]int64{"releases": 2}}}
	if err := s.Commit(same); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "current")); l != "gen-000001" {
		t.Errorf("current -> %s after committing the same state, want gen-000001", l)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 3 { // current, gen-000001, lock
		t.Errorf("left in the state directory: %v", names)
	}
	st["repo"].Files["root.json"] = []byte("r2")
	if err := s.Commit(st); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "current")); l != "gen-000002" {
		t.Errorf("current -> %s after a new state, want gen-000002", l)
	}
}
