package testtuf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

const (
	appRef  = "127.0.0.1:5000/team/app:v1"
	baseRef = "127.0.0.1:5000/base/os:1"
)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// client runs go-tuf's real client from root against url, caching in dir.
func client(t *testing.T, url string, root []byte, dir string) (*updater.Updater, error) {
	t.Helper()
	cfg, err := config.New(url, root)
	if err != nil {
		t.Fatalf("config.New: %v", err)
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatalf("updater.New: %v", err)
	}
	return up, up.Refresh()
}

// newRepo is a repository with a target in "targets" and one in the
// delegated role "releases".
func newRepo(t *testing.T, opts Options) *Repo {
	t.Helper()
	if opts.Delegations == nil {
		opts.Delegations = []Delegation{{Name: "releases", Paths: []string{"127.0.0.1:5000/team/*"}, Terminating: true}}
	}
	r, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.AddTarget("targets", baseRef, digest("base"), 100, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.AddTarget(opts.Delegations[0].Name, appRef, digest("app"), 200, json.RawMessage(`{"mediaType":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return r
}

func wantTarget(t *testing.T, up *updater.Updater, name, content string, length int64) {
	t.Helper()
	tf, err := up.GetTargetInfo(name)
	if err != nil {
		t.Fatalf("GetTargetInfo(%q): %v", name, err)
	}
	if got := hex.EncodeToString(tf.Hashes["sha256"]); got != digest(content) || tf.Length != length {
		t.Fatalf("GetTargetInfo(%q) = sha256 %s length %d, want %s %d", name, got, tf.Length, digest(content), length)
	}
}

func TestClientFindsTargets(t *testing.T) {
	for _, role := range []string{"releases", "team/releases"} {
		t.Run(role, func(t *testing.T) {
			r := newRepo(t, Options{Delegations: []Delegation{{Name: role, Paths: []string{"127.0.0.1:5000/team/*"}}}})
			up, err := client(t, r.Serve(t), r.Root(1), t.TempDir())
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			wantTarget(t, up, baseRef, "base", 100)
			wantTarget(t, up, appRef, "app", 200)
			tf, _ := up.GetTargetInfo(appRef)
			// go-tuf re-indents custom when it encodes metadata; compare compacted.
			var custom bytes.Buffer
			if tf.Custom == nil || json.Compact(&custom, *tf.Custom) != nil || custom.String() != `{"mediaType":"x"}` {
				t.Errorf("custom = %s", custom.String())
			}
			if _, err := up.GetTargetInfo("127.0.0.1:5000/team/other:v1"); err == nil {
				t.Error("GetTargetInfo of an unknown target succeeded")
			}
		})
	}
}

func TestFiles(t *testing.T) {
	r := newRepo(t, Options{Delegations: []Delegation{{Name: "team/releases", Paths: []string{"*"}}}})
	r.RemoveTarget("targets", baseRef) // targets changes, team/releases does not
	if err := r.Publish(); err != nil {
		t.Fatal(err)
	}
	files := r.Files()
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{
		"1.root.json", "1.snapshot.json", "1.targets.json", "1.team%2Freleases.json",
		"2.snapshot.json", "2.targets.json", "2.team%2Freleases.json",
		"3.snapshot.json", "3.targets.json",
		"root.json", "timestamp.json",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files = %q, want %q", names, want)
	}
	if !bytes.Equal(files["1.root.json"], r.Root(1)) || r.Root(2) != nil {
		t.Error("Root(v) disagrees with the files")
	}
	for role, v := range map[string]int64{"root": 1, "targets": 3, "team/releases": 2, "snapshot": 3, "timestamp": 3} {
		if got := r.Version(role); got != v {
			t.Errorf("Version(%q) = %d, want %d", role, got, v)
		}
	}
	var snap metadata.Metadata[metadata.SnapshotType]
	if _, err := snap.FromBytes(files["3.snapshot.json"]); err != nil {
		t.Fatal(err)
	}
	if m := snap.Signed.Meta["team/releases.json"]; m == nil || m.Version != 2 || m.VerifyLengthHashes(files["2.team%2Freleases.json"]) != nil {
		t.Errorf("snapshot meta for team/releases = %+v", m)
	}

	// Files and Save are copies.
	s := r.Save()
	files["timestamp.json"][0] = 'x'
	r.FilesOf(s)["timestamp.json"][0] = 'x'
	if r.Files()["timestamp.json"][0] == 'x' || r.FilesOf(s)["timestamp.json"][0] == 'x' {
		t.Error("Files or FilesOf shares memory with the repository")
	}
}

func TestSigner(t *testing.T) {
	r := newRepo(t, Options{RootKeys: 2, RootThreshold: 2})
	var root metadata.Metadata[metadata.RootType]
	if _, err := root.FromBytes(r.Root(1)); err != nil {
		t.Fatal(err)
	}
	// Signing root by hand with both keys satisfies its own threshold.
	root.ClearSignatures()
	for i := range 2 {
		if _, err := root.Sign(r.Signer("root", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.VerifyDelegate("root", &root); err != nil {
		t.Fatalf("hand-signed root: %v", err)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		rotate   func(r *Repo) error
		wantRoot int64
	}{{
		name: "root 1-of-1 to new 2-of-3 and timestamp key",
		rotate: func(r *Repo) error {
			if err := r.RotateRoot(3, 2); err != nil {
				return err
			}
			return r.RotateKeys("timestamp", 1, 1)
		},
		wantRoot: 2,
	}, {
		name:     "root 1-of-1 to 2-of-3 keeping the old key",
		rotate:   func(r *Repo) error { return r.RotateRootKeep(1, 2, 2) },
		wantRoot: 2,
	}, {
		name: "root 2-of-3 to new 1-of-1, twice",
		opts: Options{RootKeys: 3, RootThreshold: 2},
		rotate: func(r *Repo) error {
			if err := r.RotateRoot(1, 1); err != nil {
				return err
			}
			if err := r.Publish(); err != nil {
				return err
			}
			return r.RotateRoot(1, 1)
		},
		wantRoot: 3,
	}, {
		name: "snapshot, targets and delegated keys",
		rotate: func(r *Repo) error {
			for _, role := range []string{"snapshot", "targets", "releases"} {
				if err := r.RotateKeys(role, 2, 2); err != nil {
					return err
				}
			}
			return nil
		},
		wantRoot: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t, tt.opts)
			url := r.Serve(t)
			cached := t.TempDir()
			if _, err := client(t, url, r.Root(1), cached); err != nil {
				t.Fatalf("Refresh before rotation: %v", err)
			}
			if err := tt.rotate(r); err != nil {
				t.Fatalf("rotate: %v", err)
			}
			if err := r.Publish(); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			// A fresh client walks the chain from root v1; one that trusted
			// the old state moves on from its cache.
			for _, dir := range []string{t.TempDir(), cached} {
				up, err := client(t, url, r.Root(1), dir)
				if err != nil {
					t.Fatalf("Refresh after rotation: %v", err)
				}
				if v := up.GetTrustedMetadataSet().Root.Signed.Version; v != tt.wantRoot {
					t.Errorf("trusted root version %d, want %d", v, tt.wantRoot)
				}
				wantTarget(t, up, appRef, "app", 200)
			}
		})
	}
}

func TestAttacksFail(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		opts Options
		// attack changes r after a client trusted its first state (in dir)
		// and returns the URL to refresh from.
		attack func(t *testing.T, r *Repo, dir string) string
		// target, if set, is looked up after Refresh succeeds; else Refresh
		// itself must fail.
		target  string
		wantErr bool
	}{{
		name:   "honest publish (control)",
		attack: func(t *testing.T, r *Repo, _ string) string { return r.Serve(t) },
		target: appRef,
	}, {
		name: "one signature duplicated to fake a 2-of-2 threshold",
		opts: Options{TargetsKeys: 2, TargetsThreshold: 2},
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.SignWith("targets", []int{0, 0})
			return publishAndServe(t, r)
		},
		wantErr: true,
	}, {
		name: "targets below threshold",
		opts: Options{TargetsKeys: 2, TargetsThreshold: 2},
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.SignWith("targets", []int{1})
			return publishAndServe(t, r)
		},
		wantErr: true,
	}, {
		name: "delegated role below threshold",
		opts: Options{Delegations: []Delegation{{Name: "releases", Keys: 2, Threshold: 2, Paths: []string{"127.0.0.1:5000/team/*"}}}},
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.SignWith("releases", []int{0})
			return publishAndServe(t, r)
		},
		target:  appRef,
		wantErr: true,
	}, {
		name: "rollback to a saved state",
		attack: func(t *testing.T, r *Repo, dir string) string {
			old := r.Save()
			r.RemoveTarget("releases", appRef)
			if _, err := client(t, publishAndServe(t, r), r.Root(1), dir); err != nil {
				t.Fatalf("Refresh of the newer state: %v", err)
			}
			return ServeFiles(t, r.FilesOf(old))
		},
		wantErr: true,
	}, {
		name: "freeze: expired timestamp",
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.SetExpires("timestamp", past)
			return publishAndServe(t, r)
		},
		wantErr: true,
	}, {
		name: "freeze: expired targets",
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.SetExpires("targets", past)
			return publishAndServe(t, r)
		},
		wantErr: true,
	}, {
		name: "mix-and-match: old targets under new snapshot",
		attack: func(t *testing.T, r *Repo, _ string) string {
			r.RemoveTarget("targets", baseRef)
			if err := r.Publish(); err != nil {
				t.Fatal(err)
			}
			files := r.Files()
			v := r.Version("targets")
			files[fmt.Sprintf("%d.targets.json", v)] = files[fmt.Sprintf("%d.targets.json", v-1)]
			return ServeFiles(t, files)
		},
		wantErr: true,
	}, {
		name: "root rotation without the old root's signatures",
		attack: func(t *testing.T, r *Repo, _ string) string {
			if err := r.RotateRoot(1, 1); err != nil {
				t.Fatal(err)
			}
			r.SignRootWithOld([]int{})
			return publishAndServe(t, r)
		},
		wantErr: true,
	}, {
		name: "root rotation below the new threshold",
		attack: func(t *testing.T, r *Repo, _ string) string {
			if err := r.RotateRootKeep(1, 2, 2); err != nil {
				t.Fatal(err)
			}
			r.SignWith("root", []int{0})
			return publishAndServe(t, r)
		},
		wantErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t, tt.opts)
			dir := t.TempDir()
			if _, err := client(t, r.Serve(t), r.Root(1), dir); err != nil {
				t.Fatalf("Refresh of the honest state: %v", err)
			}
			url := tt.attack(t, r, dir)
			up, err := client(t, url, r.Root(1), dir)
			if tt.target != "" {
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				_, err = up.GetTargetInfo(tt.target)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				t.Logf("rejected: %v", err)
			}
		})
	}
}

func publishAndServe(t *testing.T, r *Repo) string {
	t.Helper()
	if err := r.Publish(); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return r.Serve(t)
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{RootKeys: -1},
		{Delegations: []Delegation{{Name: ""}}},
		{Delegations: []Delegation{{Name: "snapshot"}}},
		{Delegations: []Delegation{{Name: "a"}, {Name: "a"}}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
}
