package tufstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sigstore serves Sigstore's real root-signing metadata (testdata) as a TUF
// repository with consistent snapshots, as its README describes.
func sigstore(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "sigstore-root-signing", "metadata")
	files := map[string][]byte{}
	hist, err := filepath.Glob(filepath.Join(dir, "root_history", "*.root.json"))
	if err != nil || len(hist) != 15 {
		t.Fatalf("root history: %v %d", err, len(hist))
	}
	for _, p := range hist {
		files[filepath.Base(p)] = mustRead(t, p)
	}
	files["timestamp.json"] = mustRead(t, filepath.Join(dir, "timestamp.json"))
	files["165.snapshot.json"] = mustRead(t, filepath.Join(dir, "snapshot.json"))
	files["14.targets.json"] = mustRead(t, filepath.Join(dir, "targets.json"))
	files["8.registry.npmjs.org.json"] = mustRead(t, filepath.Join(dir, "registry.npmjs.org.json"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, files
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCollectSigstore(t *testing.T) {
	url, files := sigstore(t)
	c, err := Collect(context.Background(), http.DefaultClient, "sigstore", url)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != len(files) {
		t.Errorf("collected %d files, the repository serves %d", len(c.Files), len(files))
	}
	for name := range files {
		if _, ok := c.Files[name]; !ok {
			t.Errorf("%s not collected", name)
		}
	}
	got := map[string]int64{}
	for _, r := range c.Roles {
		got[r.Role] = r.Version
	}
	want := map[string]int64{"root": 15, "timestamp": got["timestamp"], "snapshot": 165, "targets": 14, "registry.npmjs.org": 8}
	for role, v := range want {
		if got[role] != v {
			t.Errorf("%s: version %d, want %d", role, got[role], v)
		}
	}
	// Snapshot's legacy entries are not delegated: not fetched.
	if _, ok := got["rekor"]; ok {
		t.Error("collected the undelegated legacy role rekor")
	}
	if e, _ := c.Earliest(); e.Role != "timestamp" {
		t.Errorf("earliest expiry %+v, want the timestamp", e)
	}
}

func TestUpdateSigstore(t *testing.T) {
	_, files := sigstore(t)
	pin := files["5.root.json"]
	tests := []struct {
		name string
		at   time.Time
		want string // error substring; "" = success
	}{
		{"within validity walks roots 5 to 15", time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC), ""},
		{"today: the final root is expired", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Update("sigstore", files, Trusted{Root: pin}, tc.at, Grace{})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tf, role, err := s.Target("registry.npmjs.org/keys.json")
			if err != nil || role.String() != "registry.npmjs.org" || tf.Length == 0 {
				t.Fatalf("delegated target: %v %s %v", tf, role, err)
			}
			if _, role, err := s.Target("trusted_root.json"); err != nil || role.String() != "targets" {
				t.Fatalf("top-level target: %s %v", role, err)
			}
			roles := map[string]int64{}
			for _, r := range s.Roles() {
				roles[r.Role] = r.Version
			}
			if roles["root"] != 15 || roles["snapshot"] != 165 {
				t.Errorf("trusted roles %v", roles)
			}
			st, err := s.NewState()
			if err != nil || st["root.json"] == nil || st["timestamp.json"] == nil {
				t.Fatalf("new state: %v %v", keys(st), err)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestStoreCommitAndLock(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if st, err := s.Load(); err != nil || len(st) != 0 {
		t.Fatalf("empty store: %v %v", st, err)
	}
	if err := s.Commit(map[string]*RepoState{}); err == nil {
		t.Fatal("commit without the lock accepted")
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	other, _ := Open(dir)
	if err := other.Lock(); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second lock: %v", err)
	}
	for v := 1; v <= 3; v++ {
		st := map[string]*RepoState{"repo": {Pinned: []byte("pin"), Files: map[string][]byte{"timestamp.json": []byte(`{"signed":{"version":` + string(rune('0'+v)) + `}}`)}}}
		if err := s.Commit(st); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil || Versions(got["repo"].Files)["timestamp"] != int64(v) || string(got["repo"].Pinned) != "pin" {
			t.Fatalf("after commit %d: %+v %v", v, got["repo"], err)
		}
	}
	gens, _ := filepath.Glob(filepath.Join(dir, "gen-*"))
	if len(gens) != 1 {
		t.Errorf("old generations left: %v", gens)
	}
	if err := s.Commit(map[string]*RepoState{"../escape": {}}); err == nil {
		t.Error("a repository name with a path accepted")
	}
	s.Unlock()
	if err := other.Lock(); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	other.Unlock()
	if err := s.Audit(AuditRecord{Operation: "import", Verdict: "ok"}); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, auditFile))
	if !strings.Contains(string(log), `"verdict":"ok"`) {
		t.Errorf("audit log: %s", log)
	}
}
