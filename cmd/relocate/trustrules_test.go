package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relocate-dev/relocate"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// resign lets edit change a targets role and signs it with signers.
func resign(t *testing.T, raw []byte, edit func(*metadata.Metadata[metadata.TargetsType]), signers ...signature.Signer) []byte {
	t.Helper()
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(md)
	return signed(t, md, signers...)
}

func signed[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], signers ...signature.Signer) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func targetOf(im testimages.Image) *metadata.TargetFiles {
	h, _ := hex.DecodeString(strings.TrimPrefix(im.Digest, "sha256:"))
	return &metadata.TargetFiles{Length: im.Size, Hashes: metadata.Hashes{"sha256": h}}
}

func metaOf(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	mf := metadata.MetaFile(version)
	mf.Length, mf.Hashes["sha256"] = int64(len(b)), sum[:]
	return mf
}

// compromiseCI publishes what an attacker holding ci's key (and the online
// snapshot and timestamp keys) can: ci lists im and delegates namesakes of
// qa and release to the attacker's key, and the files for qa and release
// are the attacker's, listing im. The real qa and release signed nothing.
func compromiseCI(t *testing.T, s *tufSite, im testimages.Image) map[string][]byte {
	t.Helper()
	files := s.repo.Files()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := metadata.KeyFromPublicKey(pub)
	id, _ := key.ID()
	attacker, err := signature.LoadED25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	snapV := s.repo.Version("snapshot")
	snap, err := metadata.Snapshot().FromBytes(files[fmt.Sprintf("%d.snapshot.json", snapV)])
	if err != nil {
		t.Fatal(err)
	}
	put := func(role string, v int64, b []byte) {
		files[fmt.Sprintf("%d.%s.json", v, role)] = b
		snap.Signed.Meta[role+".json"] = metaOf(v, b)
	}
	ciV := s.repo.Version("ci")
	b := resign(t, files[fmt.Sprintf("%d.ci.json", ciV)], func(md *metadata.Metadata[metadata.TargetsType]) {
		md.Signed.Version++
		md.Signed.Targets[im.Ref] = targetOf(im)
		md.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: key}, Roles: []metadata.DelegatedRole{
			{Name: "qa", KeyIDs: []string{id}, Threshold: 1, Paths: []string{"*/*/*"}},
			{Name: "release", KeyIDs: []string{id}, Threshold: 1, Paths: []string{"*/*/*"}},
		}}
	}, s.repo.Signer("ci", 0))
	put("ci", ciV+1, b)
	for _, role := range []string{"qa", "release"} {
		md := metadata.Targets(time.Now().Add(24 * time.Hour))
		md.Signed.Version = s.repo.Version(role) + 1
		md.Signed.Targets[im.Ref] = targetOf(im)
		b := signed(t, md, attacker)
		put(role, md.Signed.Version, b)
	}
	snap.Signed.Version++
	sb := signed(t, snap, s.repo.Signer("snapshot", 0))
	files[fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)] = sb
	ts, err := metadata.Timestamp().FromBytes(files["timestamp.json"])
	if err != nil {
		t.Fatal(err)
	}
	ts.Signed.Version++
	ts.Signed.Meta["snapshot.json"] = metaOf(snap.Signed.Version, sb)
	files["timestamp.json"] = signed(t, ts, s.repo.Signer("timestamp", 0))
	return files
}

// TestCompromisedRoleCannotImpersonate: with ci's key, an attacker
// delegates namesakes of qa and release and signs their files; a policy
// asking for ci AND qa AND release refuses the image whatever the order of
// the delegations, naming the real role whose keys did not sign.
func TestCompromisedRoleCannotImpersonate(t *testing.T) {
	for _, order := range [][]string{{"ci", "qa", "release"}, {"qa", "release", "ci"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			var dels []testtuf.Delegation
			for _, n := range append([]string{"releases"}, order...) {
				dels = append(dels, testtuf.Delegation{Name: n, Paths: []string{"*/*/*"}})
			}
			s := newTUFSite(t, testtuf.Options{Delegations: dels})
			s.accept(s.export(nil), "--trust", "team="+s.root)
			policy := writePolicy(t, `{"mapping":[{"paths":["`+src.Host+`/team/*"],"repositories":["team"],"threshold":1,"terminating":true,
				"roles":[{"role":"ci","minSignatures":1},{"role":"qa","minSignatures":1},{"role":"release","minSignatures":1}]}]}`)
			path := s.export(compromiseCI(t, s, images[0]))
			s.refuse(path, "role qa of team: not signed by a threshold of the keys its delegation assigns", "--policy", policy)
			// ci's own namesake is the role the policy path ["ci","qa"] names.
			nested := writePolicy(t, `{"mapping":[{"paths":["`+src.Host+`/team/*"],"repositories":["team"],"threshold":1,"terminating":true,
				"roles":[{"role":"ci","minSignatures":1},{"role":["ci","qa"],"minSignatures":1}]}]}`)
			mustRun(t, "verify", path, "--state", s.state, "--policy", nested)
		})
	}
}

// TestGracePerRole: a timestamp within its 1h grace and a snapshot within
// its 48h grace are accepted together, each said in the audit record; past
// its own grace the timestamp is refused, naming it.
func TestGracePerRole(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	s.accept(s.export(nil), "--trust", "team="+s.root)
	policy := writePolicy(t, `{"grace":{"timestamp":"1h","snapshot":"48h"}}`)
	s.repo.SetExpires("timestamp", time.Now().Add(-30*time.Minute))
	s.repo.SetExpires("snapshot", time.Now().Add(-24*time.Hour))
	s.repo.Publish()
	s.accept(s.export(nil), "--policy", policy)
	log, _ := os.ReadFile(filepath.Join(s.state, "audit.log"))
	last := lastAudit(t, log)
	if len(last.Grace) != 2 || !strings.HasPrefix(last.Grace[0], "timestamp") || !strings.HasPrefix(last.Grace[1], "snapshot") {
		t.Errorf("grace in the audit record: %q", last.Grace)
	}
	s.repo.SetExpires("timestamp", time.Now().Add(-2*time.Hour))
	s.repo.Publish()
	s.refuse(s.export(nil), "role timestamp (version "+fmt.Sprint(s.repo.Version("timestamp"))+") of team expired", "--policy", policy)
}

type auditLine struct {
	Verdict      string
	VerifiedAt   time.Time
	Repositories map[string]struct{ Before, After map[string]int64 }
	Grace        []string
	Unvouched    []string
	Reasons      []string
	Error        string
}

func lastAudit(t *testing.T, log []byte) auditLine {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	var a auditLine
	if err := json.Unmarshal(lines[len(lines)-1], &a); err != nil {
		t.Fatalf("audit log: %v\n%s", err, log)
	}
	return a
}

// clock answers the times given, then the last one for ever.
func clock(times ...time.Time) func() time.Time {
	return func() time.Time {
		t := times[0]
		if len(times) > 1 {
			times = times[1:]
		}
		return t
	}
}

// TestImportOutlivesMetadata: the timestamp expires while the import runs.
// Checked again before the first tag, nothing is tagged; checked again
// before the commit, the state stays as it was. Both are refusals, logged.
func TestImportOutlivesMetadata(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		clock  func() time.Time
		tagged bool
		want   string
	}{
		{"before the tags", clock(now, now.Add(2*time.Hour)), false, "nothing was tagged"},
		{"before the commit", clock(now, now, now.Add(2*time.Hour)), true, "the trusted state was not committed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTUFSite(t, testtuf.Options{TimestampExpires: now.Add(time.Hour)})
			path := s.export(nil)
			o := relocate.ImportOptions{Archive: path, To: dst.Host + "/" + s.prefix, Client: mirror.New(mirror.WithPlainHTTP(true)),
				Trust: relocate.TrustOptions{StateDir: s.state, Pins: map[string][]byte{"team": s.repo.Root(1)}, Clock: tc.clock}}
			_, err := relocate.Import(context.Background(), o)
			var ve *verify.Error
			want := fmt.Sprintf("role timestamp (version %d) expired at", s.repo.Version("timestamp"))
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal naming the timestamp and %q", err, tc.want)
			}
			if tags := tagsUnder(t, s.prefix); (len(tags) > 0) != tc.tagged {
				t.Errorf("tags after the refusal: %v", tags)
			}
			if _, err := os.Lstat(filepath.Join(s.state, "current")); err == nil {
				t.Error("the state was committed")
			}
			log, _ := os.ReadFile(filepath.Join(s.state, "audit.log"))
			if a := lastAudit(t, log); a.Verdict != "refused" || !strings.Contains(strings.Join(a.Reasons, "\n"), "role timestamp") {
				t.Errorf("audit record: %+v", a)
			}
		})
	}
}

// TestAuditRecords: an import refused, one that the registry fails after
// verification, and one that succeeds each leave one record, with the
// versions of the roles only the policy checked and the images the policy
// let in unvouched.
func TestAuditRecords(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{Delegations: []testtuf.Delegation{
		{Name: "releases", Paths: []string{"*/*/*"}}, {Name: "qa", Paths: []string{"*/*/*"}},
	}})
	s.vouch("qa", images[0])
	path := s.export(nil)
	policy := writePolicy(t, `{"mapping":[{"paths":["`+images[0].Ref+`"],"repositories":["team"],"threshold":1,"terminating":true,
		"roles":[{"role":"qa","minSignatures":1}]}],"allowUnvouched":["`+refs[1]+`"]}`)
	plain := filepath.Join(t.TempDir(), "both.tar")
	url := s.repo.Serve(t)
	mustRun(t, "export", "-o", plain, "--plain-http", "-q", refs[0], refs[1], "--tuf", "team="+url)
	logPath := filepath.Join(s.state, "audit.log")

	// Refused: no pinned root matches.
	r := relocateCmd(t, nil, s.importArgs(path, "--trust", "team="+otherRoot(t))...)
	if r.code != exitRefused {
		t.Fatalf("import with a wrong pin: exit %d\n%s", r.code, r.stderr)
	}
	log, _ := os.ReadFile(logPath)
	if a := lastAudit(t, log); a.Verdict != "refused" || len(a.Reasons) == 0 {
		t.Errorf("refused import: %+v", a)
	}
	// Failed at the registry after verification: exit 1, recorded.
	host := dstProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			http.Error(w, "registry on fire", http.StatusInternalServerError)
			return true
		}
		return false
	})
	r = relocateCmd(t, nil, "import", plain, "--to", host+"/"+s.prefix, "--plain-http", "--state", s.state, "--trust", "team="+s.root, "--policy", policy)
	if r.code != exitFailure {
		t.Fatalf("import into a failing registry: exit %d\n%s", r.code, r.stderr)
	}
	log, _ = os.ReadFile(logPath)
	if a := lastAudit(t, log); a.Verdict != "failed" || !strings.Contains(a.Error, "registry on fire") || a.VerifiedAt.IsZero() {
		t.Errorf("failed import: %+v", a)
	}
	// Accepted: qa (checked by the policy only) and the unvouched image.
	s.accept(plain, "--trust", "team="+s.root, "--policy", policy)
	log, _ = os.ReadFile(logPath)
	a := lastAudit(t, log)
	team := a.Repositories["team"]
	if a.Verdict != "ok" || team.After["qa"] != s.repo.Version("qa") || team.After["timestamp"] == 0 || len(team.Before) != 0 {
		t.Errorf("accepted import: %+v", a)
	}
	if len(a.Unvouched) != 1 || a.Unvouched[0] != refs[1] {
		t.Errorf("unvouched images in the audit record: %v", a.Unvouched)
	}
	if n := bytes.Count(log, []byte("\n")); n != 3 {
		t.Errorf("%d audit records, want 3:\n%s", n, log)
	}
}

// TestVerifyAt checks real Sigstore metadata, expired today, as of a
// moment within its validity; the report says the time it used. Import
// has no such flag.
func TestVerifyAt(t *testing.T) {
	needRegistries(t)
	url, dir := serveSigstore(t)
	pin := filepath.Join(dir, "root_history", "5.root.json")
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", refs[0], "--tuf", "sigstore="+url)
	policy := writePolicy(t, `{"allowUnvouched":["`+refs[0]+`"]}`)
	args := []string{"verify", path, "--state", t.TempDir(), "--trust", "sigstore=" + pin, "--policy", policy}
	r := relocateCmd(t, nil, args...)
	if r.code != exitRefused || !strings.Contains(r.stderr, "expired") {
		t.Fatalf("verify today: exit %d\n%s", r.code, r.stderr)
	}
	r = mustRun(t, append(args, "--at", "2026-08-22T00:00:00Z", "--json")...)
	var rep struct {
		Trust struct {
			CheckedAt time.Time
			AsOf      bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.Trust.AsOf || !rep.Trust.CheckedAt.Equal(time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("report of verify --at: %+v %v\n%s", rep, err, r.stdout)
	}
	if !strings.Contains(r.stderr, "as of 2026-08-22T00:00:00Z") {
		t.Errorf("verify --at does not say so:\n%s", r.stderr)
	}
	if r := relocateCmd(t, nil, "verify", path, "--at", "yesterday"); r.code != exitUsage {
		t.Errorf("verify --at yesterday: exit %d", r.code)
	}
	if r := relocateCmd(t, nil, "import", path, "--to", dst.Host+"/at", "--plain-http", "--at", "2026-08-22T00:00:00Z"); r.code != exitUsage {
		t.Errorf("import --at: exit %d\n%s", r.code, r.stderr)
	}
}

// TestReferencesAreNames: an archive naming an image with a ".." or empty
// segment, or pinned to another digest, is refused by verify and import,
// with nothing pushed, and no allowUnvouched pattern reaches across "..".
func TestReferencesAreNames(t *testing.T) {
	needRegistries(t)
	orig := filepath.Join(t.TempDir(), "one.tar")
	mustRun(t, "export", "-o", orig, "--plain-http", "-q", refs[0])
	es := readAll(t, orig)
	tests := []struct {
		ref, want string
	}{
		{src.Host + "/tools/../../victim/web:v1", `segment ".." is not a name component`},
		{src.Host + "/tools//web:v1", `segment "" is not a name component`},
		{src.Host + "/./web:v1", `segment "." is not a name component`},
		{src.Host + "/team/app-0@" + images[1].Digest, "the reference names digest " + images[1].Digest + ", the image it labels is " + images[0].Digest},
		{src.Host + "/team/app-0:v1@" + images[1].Digest, "the reference names digest " + images[1].Digest},
	}
	for i, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			rename := func(e *entry) { e.data = bytes.ReplaceAll(e.data, []byte(`"`+refs[0]+`"`), []byte(`"`+tc.ref+`"`)) }
			path := filepath.Join(t.TempDir(), "renamed.tar")
			writeAll(t, path, edit(edit(es, "relocate-toc.json", rename), "index.json", rename))
			policy := writePolicy(t, `{"allowUnvouched":["`+src.Host+`/tools/*"]}`)
			for _, args := range [][]string{
				{"verify", path, "--policy", policy},
				{"import", path, "--to", dst.Host + fmt.Sprintf("/names%d", i), "--plain-http", "--policy", policy, "--state", t.TempDir()},
			} {
				r := relocateCmd(t, nil, args...)
				if r.code != exitRefused || !strings.Contains(r.stderr, tc.ref) || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s: exit %d, want %d naming %s and %q\n%s", args[0], r.code, exitRefused, tc.ref, tc.want, r.stderr)
				}
			}
			if got := catalog(t, dst.Host, fmt.Sprintf("names%d", i)); len(got) != 0 {
				t.Errorf("refused import pushed into %v", got)
			}
		})
	}
	// A destination prefix must be a name too.
	for _, to := range []string{dst.Host + "/a/../b", dst.Host + "//b", "not a host/x"} {
		if r := relocateCmd(t, nil, "import", orig, "--to", to, "--plain-http"); r.code != exitUsage || !strings.Contains(r.stderr, "--to") {
			t.Errorf("--to %s: exit %d\n%s", to, r.code, r.stderr)
		}
	}
}
