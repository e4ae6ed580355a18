package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relocate-dev/relocate"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/tufstore"
)

// tufSite is a TUF repository vouching for images[0] and a site that
// imports it: its pinned root, state directory and destination prefix.
type tufSite struct {
	t      *testing.T
	repo   *testtuf.Repo
	root   string // root v1, as pinned out of band
	state  string
	prefix string
}

var tufSites int

func newTUFSite(t *testing.T, opts testtuf.Options) *tufSite {
	t.Helper()
	needRegistries(t)
	if opts.Delegations == nil {
		opts.Delegations = []testtuf.Delegation{{Name: "releases", Paths: []string{"*/*/*"}}}
	}
	r, err := testtuf.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tufSites++
	s := &tufSite{t: t, repo: r, state: t.TempDir(), prefix: fmt.Sprintf("tuf%d", tufSites)}
	s.root = filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(s.root, r.Root(1), 0o644)
	s.vouch("releases", images[0])
	return s
}

// vouch adds images' targets to role and publishes.
func (s *tufSite) vouch(role string, ims ...testimages.Image) {
	s.t.Helper()
	for _, im := range ims {
		if err := s.repo.AddTarget(role, im.Ref, strings.TrimPrefix(im.Digest, "sha256:"), im.Size, nil); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := s.repo.Publish(); err != nil {
		s.t.Fatal(err)
	}
}

// export packs images[0] with the metadata served from files (the repository
// as it is now when nil).
func (s *tufSite) export(files map[string][]byte) string {
	s.t.Helper()
	url := ""
	if files == nil {
		url = s.repo.Serve(s.t)
	} else {
		url = testtuf.ServeFiles(s.t, files)
	}
	path := filepath.Join(s.t.TempDir(), "site.tar")
	mustRun(s.t, "export", "-o", path, "--plain-http", "-q", refs[0], "--tuf", "team="+url)
	return path
}

func (s *tufSite) importArgs(path string, extra ...string) []string {
	return append([]string{"import", path, "--to", dst.Host + "/" + s.prefix, "--plain-http", "--state", s.state}, extra...)
}

// accept imports an archive and expects success.
func (s *tufSite) accept(path string, extra ...string) result {
	s.t.Helper()
	r := relocateCmd(s.t, nil, s.importArgs(path, extra...)...)
	if r.code != 0 {
		s.t.Fatalf("import: exit %d\n%s", r.code, r.stderr)
	}
	return r
}

// refuse expects verify and import to refuse an archive with exit 3 and a
// message containing want, with nothing tagged and the state unchanged
// (but for a "refused" line in the audit log).
func (s *tufSite) refuse(path, want string, extra ...string) {
	s.t.Helper()
	before := snapshotState(s.t, s.state)
	tagsBefore := len(tagsUnder(s.t, s.prefix))
	v := relocateCmd(s.t, nil, append([]string{"verify", path, "--state", s.state}, extra...)...)
	if v.code != exitRefused || !strings.Contains(v.stderr, want) {
		s.t.Errorf("verify: exit %d, want %d and %q\n%s", v.code, exitRefused, want, v.stderr)
	}
	r := relocateCmd(s.t, nil, s.importArgs(path, extra...)...)
	if r.code != exitRefused || !strings.Contains(r.stderr, want) {
		s.t.Errorf("import: exit %d, want %d and %q\n%s", r.code, exitRefused, want, r.stderr)
	}
	if got := len(tagsUnder(s.t, s.prefix)); got != tagsBefore {
		s.t.Errorf("refused import changed tags: %d before, %d after", tagsBefore, got)
	}
	after := snapshotState(s.t, s.state)
	if before != after {
		s.t.Errorf("refused import changed the trusted state")
	}
	if log, _ := os.ReadFile(filepath.Join(s.state, "audit.log")); !bytes.Contains(log, []byte(`"verdict":"refused"`)) {
		s.t.Errorf("refused import not in the audit log")
	}
}

// snapshotState renders the state directory (symlink targets and file
// contents, the audit log aside) to compare it byte for byte.
func snapshotState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() == "audit.log" || d.Name() == "lock" {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, "%s -> %s\n", rel, l)
		case d.Type().IsRegular():
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %x\n", rel, c)
		}
		return nil
	})
	return b.String()
}

func (s *tufSite) versions() map[string]int64 {
	s.t.Helper()
	r := mustRun(s.t, "verify", s.export(nil), "--state", s.state, "--json")
	var rep struct {
		Trust struct {
			Repositories []struct {
				Before map[string]int64
			}
		}
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	return rep.Trust.Repositories[0].Before
}

func TestTUFGoodPaths(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	first := s.export(nil)
	r := s.accept(first, "--trust", "team="+s.root)
	if !strings.Contains(r.stderr, "vouched: "+refs[0]+" by team/releases") {
		t.Errorf("import does not say who vouched:\n%s", r.stderr)
	}
	checkTag(t, s.prefix, images[0])

	// Successive imports advance the state, without --trust.
	s.vouch("releases", images[1])
	s.accept(s.export(nil))
	if v := s.versions(); v["timestamp"] != s.repo.Version("timestamp") || v["releases"] != s.repo.Version("releases") {
		t.Errorf("state after two imports: %v", v)
	}

	// Root rotation 1 -> 3 with a threshold change, and a new timestamp key.
	if err := s.repo.RotateRootKeep(1, 2, 2); err != nil {
		t.Fatal(err)
	}
	s.repo.Publish()
	if err := s.repo.RotateKeys("timestamp", 1, 1); err != nil {
		t.Fatal(err)
	}
	s.repo.Publish()
	s.accept(s.export(nil))
	if v := s.versions(); v["root"] != 3 {
		t.Errorf("root after rotation: %v", v)
	}
	// The original pin is still accepted alongside the state.
	s.accept(s.export(nil), "--trust", "team="+s.root)

	// verify --json says per image which role vouched and with which version.
	out := mustRun(t, "verify", s.export(nil), "--state", s.state, "--json").stdout
	var rep struct {
		Trust struct {
			Images []struct {
				Ref       string
				VouchedBy []struct {
					Repository, Role string
					Version          int64
				}
			}
			Repositories []struct {
				Roles []struct {
					Role    string
					Version int64
					Expires time.Time
				}
			}
		}
	}
	json.Unmarshal([]byte(out), &rep)
	if len(rep.Trust.Images) != 1 || len(rep.Trust.Images[0].VouchedBy) != 1 || rep.Trust.Images[0].VouchedBy[0].Role != "releases" || rep.Trust.Images[0].VouchedBy[0].Version == 0 {
		t.Errorf("verify --json vouches: %+v", rep.Trust.Images)
	}
	if len(rep.Trust.Repositories) != 1 || len(rep.Trust.Repositories[0].Roles) < 5 {
		t.Errorf("verify --json roles: %+v", rep.Trust.Repositories)
	}
	log, _ := os.ReadFile(filepath.Join(s.state, "audit.log"))
	if n := bytes.Count(log, []byte(`"verdict":"ok"`)); n != 4 {
		t.Errorf("audit log has %d ok imports, want 4:\n%s", n, log)
	}
}

func checkTag(t *testing.T, prefix string, im testimages.Image) {
	t.Helper()
	repo, tag := repoTag(im.Ref)
	if got := headDigest(t, dst.Host, prefix+"/"+repo, tag); got != im.Digest {
		t.Errorf("%s at destination: %q, want %s", im.Ref, got, im.Digest)
	}
}

func TestTUFAttacks(t *testing.T) {
	needRegistries(t)
	past := time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		opts testtuf.Options
		// attack builds the hostile archive after one good import.
		attack func(s *tufSite) string
		want   string
		extra  []string
	}{
		{name: "rollback to an older archive", attack: func(s *tufSite) string {
			old := s.repo.Save()
			s.vouch("releases", images[1])
			s.accept(s.export(nil))
			return s.export(s.repo.FilesOf(old))
		}, want: "tuf:team: bad version number error: new timestamp version"},
		{name: "rollback of targets under a newer snapshot", attack: func(s *tufSite) string {
			old := s.repo.FilesOf(s.repo.Save())
			s.repo.AddTarget("targets", "other", strings.Repeat("ab", 32), 1, nil)
			s.repo.Publish()
			files := s.repo.Files()
			files[fmt.Sprintf("%d.targets.json", s.repo.Version("targets"))] = old["1.targets.json"]
			return s.export(files)
		}, want: "tuf:team: length/hash verification error: hash verification failed"},
		{name: "rollback of a delegated role", attack: func(s *tufSite) string {
			old := s.repo.FilesOf(s.repo.Save())
			s.vouch("releases", images[1])
			files := s.repo.Files()
			files[fmt.Sprintf("%d.releases.json", s.repo.Version("releases"))] = old["1.releases.json"]
			return s.export(files)
		}, want: "role releases of team: 3.releases.json does not match the snapshot: length/hash verification error"},
		{name: "freeze: expired timestamp", attack: func(s *tufSite) string {
			s.repo.SetExpires("timestamp", past)
			s.repo.Publish()
			return s.export(nil)
		}, want: "tuf:team: expired metadata error: timestamp.json is expired"},
		{name: "freeze: expired targets even with a grace", attack: func(s *tufSite) string {
			s.repo.SetExpires("targets", past)
			s.repo.Publish()
			return s.export(nil)
		}, want: "role targets (version 2) of team expired at", extra: []string{"--policy", writePolicy(t, `{"grace":{"timestamp":"48h","snapshot":"48h"}}`)}},
		{name: "mix and match", attack: func(s *tufSite) string {
			old := s.repo.FilesOf(s.repo.Save())
			s.vouch("releases", images[1])
			files := s.repo.Files()
			files[fmt.Sprintf("%d.snapshot.json", s.repo.Version("snapshot"))] = old["1.snapshot.json"]
			return s.export(files)
		}, want: "tuf:team: length/hash verification error: hash verification failed"},
		{name: "wrong root: an attacker's repository under the same name", attack: func(s *tufSite) string {
			evil, _ := testtuf.New(testtuf.Options{Delegations: []testtuf.Delegation{{Name: "releases", Paths: []string{"*/*/*"}}}})
			evil.AddTarget("releases", images[0].Ref, strings.TrimPrefix(images[0].Digest, "sha256:"), images[0].Size, nil)
			evil.Publish()
			return s.export(evil.Files())
		}, want: "tuf:team: unsigned metadata error: Verifying timestamp failed, not enough signatures, got 0, want 1"},
		{name: "below threshold", opts: testtuf.Options{TargetsKeys: 3, TargetsThreshold: 2}, attack: func(s *tufSite) string {
			s.repo.SignWith("targets", []int{0})
			s.repo.AddTarget("targets", "x", strings.Repeat("cd", 32), 1, nil)
			s.repo.Publish()
			return s.export(nil)
		}, want: "tuf:team: unsigned metadata error: Verifying targets failed, not enough signatures, got 1, want 2"},
		{name: "one key's signature duplicated", opts: testtuf.Options{TargetsKeys: 3, TargetsThreshold: 2}, attack: func(s *tufSite) string {
			s.repo.SignWith("targets", []int{0, 0})
			s.repo.AddTarget("targets", "x", strings.Repeat("cd", 32), 1, nil)
			s.repo.Publish()
			return s.export(nil)
		}, want: "tuf:team: value error: multiple signatures found for key ID"},
		{name: "target hash differs from the image", attack: func(s *tufSite) string {
			s.repo.AddTarget("releases", images[0].Ref, strings.Repeat("00", 32), images[0].Size, nil)
			s.repo.Publish()
			return s.export(nil)
		}, want: fmt.Sprintf("(role releases) has length %d and hashes sha256:%s, the image is %s", images[0].Size, strings.Repeat("00", 32), images[0].Digest)},
		{name: "target length differs from the image", attack: func(s *tufSite) string {
			s.repo.AddTarget("releases", images[0].Ref, strings.TrimPrefix(images[0].Digest, "sha256:"), images[0].Size+1, nil)
			s.repo.Publish()
			return s.export(nil)
		}, want: fmt.Sprintf("(role releases) has length %d and hashes %s, the image is %s (%d bytes)", images[0].Size+1, images[0].Digest, images[0].Digest, images[0].Size)},
		{name: "image no target vouches for", attack: func(s *tufSite) string {
			s.repo.RemoveTarget("releases", images[0].Ref)
			s.repo.Publish()
			return s.export(nil)
		}, want: fmt.Sprintf("no target %s (target %s not found)", refs[0], refs[0])},
		{name: "missing delegated role", attack: func(s *tufSite) string {
			s.vouch("releases", images[1])
			files := s.repo.Files()
			delete(files, fmt.Sprintf("%d.releases.json", s.repo.Version("releases")))
			return s.export(files)
		}, want: ".releases.json is missing from the archive"},
		{name: "oversized metadata", attack: func(s *tufSite) string {
			files := s.repo.Files()
			files["timestamp.json"] = append(files["timestamp.json"], bytes.Repeat([]byte(" "), 20000)...)
			return s.export(files)
		}, want: "bytes, over the 16384-byte limit"},
		{name: "pinned root conflicts with the state", attack: func(s *tufSite) string {
			return s.export(nil)
		}, want: "tuf:team: the root given with --trust team=... conflicts with the root this site pinned earlier", extra: []string{"--trust", "team=" + otherRoot(t)}},
		{name: "policy role missing", attack: func(s *tufSite) string {
			return s.export(nil)
		}, want: `role security: targets does not delegate "security"`, extra: []string{"--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1,"roles":[{"role":"security","minSignatures":1}]}]}`)}},
		{name: "policy role delegated for other paths", opts: testtuf.Options{Delegations: []testtuf.Delegation{{Name: "releases", Paths: []string{"*/*/*"}}, {Name: "qa", Paths: []string{"elsewhere/*/*"}}}}, attack: func(s *tufSite) string {
			s.vouch("qa", images[0])
			return s.export(nil)
		}, want: "role qa is not trusted for " + refs[0] + ": the delegation to qa covers other paths", extra: []string{"--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1,"roles":[{"role":"qa","minSignatures":1}]}]}`)}},
		{name: "policy role under its signature count", opts: testtuf.Options{Delegations: []testtuf.Delegation{{Name: "releases", Paths: []string{"*/*/*"}}, {Name: "qa", Keys: 3, Threshold: 1, Paths: []string{"*/*/*"}}}}, attack: func(s *tufSite) string {
			s.repo.SignWith("qa", []int{0})
			s.vouch("qa", images[0])
			return s.export(nil)
		}, want: "role qa: 1 valid signature(s) from distinct keys, the policy requires 2", extra: []string{"--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1,"roles":[{"role":"qa","minSignatures":2}]}]}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTUFSite(t, tc.opts)
			s.accept(s.export(nil), "--trust", "team="+s.root)
			s.refuse(tc.attack(s), tc.want, tc.extra...)
		})
	}
}

func TestTUFTrustOnFirstUseRefused(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	path := s.export(nil)
	r := relocateCmd(t, nil, s.importArgs(path)...)
	if r.code != exitRefused || !strings.Contains(r.stderr, "--trust team=root.json") {
		t.Fatalf("import without a pinned root: exit %d\n%s", r.code, r.stderr)
	}
	if tags := tagsUnder(t, s.prefix); len(tags) != 0 {
		t.Errorf("tagged %v", tags)
	}
	if _, err := os.Lstat(filepath.Join(s.state, "current")); err == nil {
		t.Error("state written")
	}
}

func TestTUFPolicy(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{Delegations: []testtuf.Delegation{
		{Name: "releases", Paths: []string{"*/*/*"}},
		{Name: "ci", Paths: []string{"*/*/*"}},
		{Name: "qa", Keys: 3, Threshold: 1, Paths: []string{"*/*/*"}},
	}})
	s.vouch("ci", images[0])
	s.vouch("qa", images[0])
	policy := writePolicy(t, `{"mapping":[{"paths":["`+src.Host+`/team/*"],"repositories":["team"],"threshold":1,"terminating":true,
		"roles":[{"role":"ci","minSignatures":1},{"role":"qa","minSignatures":2},{"role":"releases","minSignatures":1}]}]}`)
	r := s.accept(s.export(nil), "--trust", "team="+s.root, "--policy", policy)
	for _, want := range []string{"team/ci", "team/qa", "team/releases"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("import output lacks %s:\n%s", want, r.stderr)
		}
	}

	// A grace for an expired timestamp is accepted, said and logged.
	s.repo.SetExpires("timestamp", time.Now().Add(-time.Hour))
	s.repo.Publish()
	grace := writePolicy(t, `{"grace":{"timestamp":"48h"}}`)
	r = s.accept(s.export(nil), "--policy", grace)
	if !strings.Contains(r.stderr, "grace") {
		t.Errorf("grace not reported:\n%s", r.stderr)
	}
	log, _ := os.ReadFile(filepath.Join(s.state, "audit.log"))
	if !bytes.Contains(log, []byte(`"grace":["timestamp (version `)) || !bytes.Contains(log, []byte(`accepted within the policy's 48h0m0s grace`)) {
		t.Errorf("grace not in the audit log:\n%s", log)
	}
	// Grace for root or targets is refused as a usage error.
	r = relocateCmd(t, nil, "verify", "x.tar", "--policy", writePolicy(t, `{"grace":{"targets":"48h"}}`))
	if r.code != exitUsage || !strings.Contains(r.stderr, "only timestamp and snapshot") {
		t.Errorf("targets grace: exit %d\n%s", r.code, r.stderr)
	}
	// Images no repository vouches for pass only where the policy says so.
	plain := filepath.Join(t.TempDir(), "plain.tar")
	mustRun(t, "export", "-o", plain, "--plain-http", "-q", refs[1])
	r = relocateCmd(t, nil, "verify", plain, "--state", s.state, "--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1}]}`))
	if r.code != exitRefused || !strings.Contains(r.stderr, refs[1]) {
		t.Errorf("unvouched image under a policy: exit %d\n%s", r.code, r.stderr)
	}
	// allowUnvouched admits only images that no mapping matched.
	mustRun(t, "verify", plain, "--state", s.state, "--policy", writePolicy(t, `{"mapping":[{"paths":["`+src.Host+`/team/app-0:*"],"repositories":["team"],"threshold":1}],"allowUnvouched":["`+refs[1]+`"]}`))
	r = relocateCmd(t, nil, "verify", plain, "--state", s.state, "--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1}],"allowUnvouched":["`+refs[1]+`"]}`))
	if r.code != exitRefused || !strings.Contains(r.stderr, refs[1]+": not vouched for: 0 of 1 required repositories agree") {
		t.Errorf("a mapping matched, failed, and allowUnvouched let the image in: exit %d\n%s", r.code, r.stderr)
	}
	r = relocateCmd(t, nil, "verify", plain, "--state", s.state, "--policy", writePolicy(t, `{"mapping":[{"paths":["*"],"repositories":["team"],"threshold":1,"terminating":true}],"allowUnvouched":["`+refs[1]+`"]}`))
	if r.code != exitUsage || !strings.Contains(r.stderr, `allowUnvouched "`+refs[1]+`" overlaps "*" of terminating mapping 0`) {
		t.Errorf("allowUnvouched overlapping a terminating mapping: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTUFCrashBetweenPushAndCommit: a failure after the push and before the
// commit leaves the old state; a rerun commits.
func TestTUFCrashBetweenPushAndCommit(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	s.accept(s.export(nil), "--trust", "team="+s.root)
	s.vouch("releases", images[1])
	path := s.export(nil)
	before := snapshotState(t, s.state)
	o := relocate.ImportOptions{Archive: path, To: dst.Host + "/" + s.prefix, Client: mirror.New(mirror.WithPlainHTTP(true)),
		Trust:        relocate.TrustOptions{StateDir: s.state},
		BeforeCommit: func() error { return fmt.Errorf("power cut") }}
	if _, err := relocate.Import(context.Background(), o); err == nil || !strings.Contains(err.Error(), "power cut") {
		t.Fatalf("import with a failing commit: %v", err)
	}
	if snapshotState(t, s.state) != before {
		t.Fatal("state changed although the commit failed")
	}
	o.BeforeCommit = nil
	if _, err := relocate.Import(context.Background(), o); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if snapshotState(t, s.state) == before {
		t.Fatal("rerun did not commit")
	}
}

// writePolicy writes a policy file that goes away with the test.
func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "policy-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(doc); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func otherRoot(t *testing.T) string {
	r, err := testtuf.New(testtuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-root.json")
	os.WriteFile(p, r.Root(1), 0o644)
	return p
}

// TestTUFKilledDuringImport kills a real relocate process with SIGKILL in the
// middle of an import: the state stays valid (old or new, never a mix), the
// lock dies with the process, and a rerun finishes the job.
func TestTUFKilledDuringImport(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	path := s.export(nil)
	bin := filepath.Join(t.TempDir(), "relocate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	uploading := make(chan struct{}, 100)
	slow := dstProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploading <- struct{}{}
			time.Sleep(2 * time.Second)
		}
		return false
	})
	to := slow + "/" + s.prefix
	cmd := exec.Command(bin, "import", path, "--to", to, "--plain-http", "--state", s.state, "--trust", "team="+s.root, "-q")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-uploading:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the import never started uploading")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	store, _ := tufstore.Open(s.state)
	if _, err := store.Load(); err != nil {
		t.Fatalf("state unreadable after SIGKILL: %v", err)
	}
	if err := store.Lock(); err != nil {
		t.Fatalf("lock still held after the process died: %v", err)
	}
	store.Unlock()
	if tags := tagsUnder(t, s.prefix); len(tags) != 0 {
		t.Errorf("killed import left tags: %v", tags)
	}
	s.accept(path, "--trust", "team="+s.root)
	checkTag(t, s.prefix, images[0])
}

// TestTUFDowngradeRefused: once a site relies on TUF, an archive stripped of
// its metadata is refused, unless the site's policy lets the image in.
func TestTUFDowngradeRefused(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	s.accept(s.export(nil), "--trust", "team="+s.root)
	plain := filepath.Join(t.TempDir(), "plain.tar")
	mustRun(t, "export", "-o", plain, "--plain-http", "-q", refs[1])
	s.refuse(plain, "carries none that vouches for this image")
	r := s.accept(plain, "--policy", writePolicy(t, `{"allowUnvouched":["`+refs[1]+`"]}`))
	if !strings.Contains(r.stderr, "unvouched: "+refs[1]) {
		t.Errorf("the allowed image is not reported as unvouched:\n%s", r.stderr)
	}
}
