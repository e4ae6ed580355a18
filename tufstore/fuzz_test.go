package tufstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testtuf"
)

// sigstoreFiles is Sigstore's real metadata (testdata) under the names a
// consistent-snapshot repository serves, as sigstore() serves it.
func sigstoreFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	dir := filepath.Join("..", "testdata", "sigstore-root-signing", "metadata")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	files := map[string][]byte{}
	hist, err := filepath.Glob(filepath.Join(dir, "root_history", "*.root.json"))
	if err != nil || len(hist) == 0 {
		tb.Fatalf("root history: %v", err)
	}
	for _, p := range hist {
		files[filepath.Base(p)] = read(p)
	}
	files["timestamp.json"] = read(filepath.Join(dir, "timestamp.json"))
	files["165.snapshot.json"] = read(filepath.Join(dir, "snapshot.json"))
	files["14.targets.json"] = read(filepath.Join(dir, "targets.json"))
	files["8.registry.npmjs.org.json"] = read(filepath.Join(dir, "registry.npmjs.org.json"))
	return files
}

// memTransport serves files as a TUF repository's HTTP server would, in
// memory: no listener, so the fuzz functions run under -short.
type memTransport map[string][]byte

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b, ok := m[url.PathEscape(strings.TrimPrefix(req.URL.Path, "/"))]
	status := http.StatusOK
	if !ok {
		status, b = http.StatusNotFound, nil
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)), Header: http.Header{}, Request: req}, nil
}

// withFile is base with file replaced by data, or removed when data is empty.
func withFile(base map[string][]byte, file string, data []byte) map[string][]byte {
	files := maps.Clone(base)
	if len(data) == 0 {
		delete(files, file)
	} else {
		files[file] = data
	}
	return files
}

// FuzzCollect runs the export-side collection, which reads what a TUF
// repository serves leniently, over Sigstore's repository with one file
// replaced or removed. What it returns must be what was served: no file
// invented or altered, the newest root of an unbroken run from 1.root.json,
// and every summarised role's file among the collected ones.
func FuzzCollect(f *testing.F) {
	base := sigstoreFiles(f)
	for name, b := range base {
		f.Add(name, b)
	}
	f.Add("16.root.json", base["15.root.json"])
	f.Add("timestamp.json", []byte(`{"signed":{"version":1,"meta":{"snapshot.json":{"version":165}}}}`))
	f.Add("14.targets.json", []byte(`{"signed":{"delegations":{"roles":[{"name":"a"},{"name":"a/../b"},{"name":"targets"}]}}}`))
	f.Add("3.root.json", []byte(nil))
	f.Fuzz(func(t *testing.T, file string, data []byte) {
		served := withFile(base, file, data)
		c, err := Collect(context.Background(), &http.Client{Transport: memTransport(served)}, "sigstore", "https://tuf.example.com/")
		if err != nil {
			return
		}
		for name, b := range c.Files {
			if !bytes.Equal(served[url.PathEscape(name)], b) {
				t.Fatalf("collected %s, which was not served as such", name)
			}
		}
		var newest int
		for v := 1; served[fmt.Sprintf("%d.root.json", v)] != nil; v++ {
			newest = v
		}
		if len(c.Roles) < 4 || c.Roles[0].Role != "root" || c.Roles[0].File != fmt.Sprintf("%d.root.json", newest) {
			t.Fatalf("roles %+v, newest root served %d", c.Roles, newest)
		}
		if len(c.Roles) > 3+maxDelegations {
			t.Fatalf("%d roles collected", len(c.Roles))
		}
		for _, r := range c.Roles {
			b, ok := c.Files[r.File]
			if !ok {
				t.Fatalf("role %s summarised from %s, which was not collected", r.Role, r.File)
			}
			var m collected
			if err := json.Unmarshal(b, &m); err != nil || m.Signed.Version != r.Version {
				t.Fatalf("role %s: version %d, its file says %d (%v)", r.Role, r.Version, m.Signed.Version, err)
			}
		}
	})
}

// updateCase is a repository, the site's trust in it, and the clock.
type updateCase struct {
	name    string
	files   map[string][]byte
	trusted Trusted
	at      time.Time
	target  string
	sha256  string            // the target's genuine sha256 (hex)
	legit   map[string][]byte // every role's signed part the keys' holders signed, by "role/version"
	vouch   map[string]int    // delegated roles that vouch for target, with their signatures
}

// legitSigned indexes the signed parts of genuine metadata by role and
// version, in a canonical form (re-marshalled), for comparison.
func legitSigned(tb testing.TB, sets ...map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, files := range sets {
		for name, b := range files {
			role, sig, ok := signedOf(name, b)
			if !ok {
				tb.Fatalf("legit file %s does not parse", name)
			}
			out[role] = sig
		}
	}
	return out
}

var versioned = regexp.MustCompile(`^([0-9]+)\.(.+)\.json$`)

// signedOf returns "role/version" of a metadata file and its signed part,
// re-marshalled so that insignificant differences (whitespace, key order)
// do not count.
func signedOf(name string, b []byte) (string, []byte, bool) {
	var m struct {
		Signed map[string]any `json:"signed"`
	}
	if json.Unmarshal(b, &m) != nil || m.Signed == nil {
		return "", nil, false
	}
	role := strings.TrimSuffix(name, ".json")
	if s := versioned.FindStringSubmatch(name); s != nil {
		role = s[2]
	}
	sig, err := json.Marshal(m.Signed)
	if err != nil {
		return "", nil, false
	}
	return fmt.Sprintf("%s/%v", role, m.Signed["version"]), sig, true
}

// updateCases are the two repositories FuzzUpdate starts from: one built
// here with testtuf (root rotated from 1-of-1 to 2-of-2 keys, delegated
// roles, a trusted state from an earlier update), and Sigstore's real one
// pinned at root 5 on a day when it was valid (ECDSA keys, 3-of-5
// thresholds, ten rotations).
func updateCases(tb testing.TB) []updateCase {
	tb.Helper()
	repo, err := testtuf.New(testtuf.Options{Delegations: []testtuf.Delegation{
		{Name: "ci", Paths: []string{"app/*"}},
		{Name: "qa", Keys: 2, Threshold: 2, Paths: []string{"app/*"}, Terminating: true},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256([]byte("app manifest"))
	sha := hex.EncodeToString(sum[:])
	for _, role := range []string{"targets", "ci", "qa"} {
		if err := repo.AddTarget(role, "app/x", sha, 12, json.RawMessage(`{"in-toto":["app.layout"]}`)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := repo.Publish(); err != nil {
		tb.Fatal(err)
	}
	at := time.Now()
	first := repo.Files()
	s, err := Update("team", first, Trusted{Root: repo.Root(1)}, at, Grace{})
	if err != nil {
		tb.Fatal(err)
	}
	state, err := s.NewState()
	s.Close()
	if err != nil {
		tb.Fatal(err)
	}
	if err := repo.RotateRootKeep(1, 1, 2); err != nil {
		tb.Fatal(err)
	}
	if err := repo.Publish(); err != nil {
		tb.Fatal(err)
	}
	files := repo.Files()

	sig := sigstoreFiles(tb)
	cases := []updateCase{
		{name: "team", files: files, trusted: Trusted{Root: repo.Root(1), Files: state}, at: at, target: "app/x", sha256: sha,
			legit: legitSigned(tb, files, state), vouch: map[string]int{"ci": 1, "qa": 2}},
		{name: "sigstore", files: sig, trusted: Trusted{Root: sig["5.root.json"]}, at: time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC),
			target: "registry.npmjs.org/keys.json", legit: legitSigned(tb, sig)},
	}
	// Fuzzing must start from repositories that pass.
	for i := range cases {
		c := &cases[i]
		s, err := Update(c.name, c.files, c.trusted, c.at, Grace{})
		if err != nil {
			tb.Fatalf("%s: %v", c.name, err)
		}
		tf, _, err := s.Target(c.target)
		if err != nil {
			tb.Fatalf("%s: %v", c.name, err)
		}
		if c.sha256 == "" {
			c.sha256 = tf.Hashes["sha256"].String()
		}
		for role, min := range c.vouch {
			if err := s.RoleVouches(RolePath{role}, c.target, tf, min); err != nil {
				tb.Fatalf("%s: %v", c.name, err)
			}
		}
		s.Close()
	}
	return cases
}

// FuzzUpdate runs the TUF client workflow over a repository with one file
// replaced or removed, from a fixed trusted root and state. The fuzzer
// cannot forge a signature, so whatever the update accepts must be genuine:
// every role it now trusts has a signed part that the repository's keys
// signed, no role went below the trusted state, and the target it finds
// has the genuine hashes.
func FuzzUpdate(f *testing.F) {
	cases := updateCases(f)
	for i, c := range cases {
		for name, b := range c.files {
			// Sigstore's roots 1–4 precede the pin and 7–14 are alike:
			// seeding them would only slow the seed run.
			if v := versioned.FindStringSubmatch(name); c.name == "sigstore" && v != nil && v[2] == "root" && v[1] != "5" && v[1] != "6" && v[1] != "15" {
				continue
			}
			f.Add(uint8(i), name, b)
		}
		f.Add(uint8(i), "timestamp.json", []byte(nil))
	}
	f.Fuzz(func(t *testing.T, which uint8, file string, data []byte) {
		c := cases[int(which)%len(cases)]
		s, err := Update(c.name, withFile(c.files, file, data), c.trusted, c.at, Grace{})
		if err != nil {
			return
		}
		defer s.Close()
		st, err := s.NewState()
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range st {
			role, sig, ok := signedOf(name, b)
			if !ok {
				t.Fatalf("trusted state %s does not parse", name)
			}
			if want, ok := c.legit[role]; !ok || !bytes.Equal(sig, want) {
				t.Fatalf("accepted %s (%s) that its keys never signed:\n%s", name, role, sig)
			}
		}
		was := Versions(c.trusted.Files)
		for _, r := range s.Roles() {
			if r.Version < was[r.Role] {
				t.Fatalf("role %s rolled back to version %d from %d", r.Role, r.Version, was[r.Role])
			}
			if r.Expires.Before(c.at) && r.Role != "timestamp" && r.Role != "snapshot" {
				t.Fatalf("expired role %s trusted", r.Role)
			}
		}
		// A delegated role is only loaded when a lookup needs it, so the
		// lookup may still refuse; what it finds must be genuine.
		tf, _, err := s.Target(c.target)
		if err != nil {
			return
		}
		if tf.Hashes["sha256"].String() != c.sha256 {
			t.Fatalf("target %s with sha256 %s", c.target, tf.Hashes["sha256"])
		}
		// The policy's per-role check loads delegated roles on its own.
		for role, min := range c.vouch {
			if err := s.RoleVouches(RolePath{role}, c.target, tf, min); err != nil {
				continue
			}
			meta := s.up.GetTrustedMetadataSet().Snapshot.Signed.Meta[role+".json"]
			name := fileName(role, meta.Version, true)
			key, sig, ok := signedOf(name, withFile(c.files, file, data)[name])
			if want := c.legit[key]; !ok || !bytes.Equal(sig, want) {
				t.Fatalf("role %s vouched with %s, which its keys never signed", role, name)
			}
		}
	})
}
