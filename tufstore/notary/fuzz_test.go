package notary

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fixtureGUN = "registry.example:5000/fixture/app"

// fixtureAt is when the fixture's trust data is valid (see its README).
var fixtureAt = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)

func readFixture(tb testing.TB) map[string][]byte {
	tb.Helper()
	files := map[string][]byte{}
	paths, _ := filepath.Glob("testdata/notary-0.7.0/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	if len(files) == 0 {
		tb.Fatal("no fixture")
	}
	return files
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

// signedKey is "_type/version" of a metadata file and its canonical signed
// object: what a signature covers.
func signedKey(data []byte) (string, []byte, bool) {
	env, err := decodeEnvelope(data, MaxMetaSize)
	if err != nil {
		return "", nil, false
	}
	return fmt.Sprintf("%s/%d", env.Type, env.Version), env.canonical, true
}

// FuzzVerify runs the Notary client workflow over a real notary-server's
// trust data with one file replaced or removed, trusting a pinned root, the
// state an earlier import recorded, or a CA. The fuzzer cannot forge a
// signature, so what is accepted must be genuine: every file of the new
// state signed by the fixture's keys as it stands, and tag v1 resolved as
// docker resolves it.
func FuzzVerify(f *testing.F) {
	base := readFixture(f)
	first, err := Verify(fixtureGUN, base, Trusted{Root: base["1.root.json"]}, fixtureAt)
	if err != nil {
		f.Fatal(err)
	}
	ca := x509.NewCertPool()
	for _, name := range []string{"1.root.json", "2.root.json"} {
		env, err := decodeEnvelope(base[name], MaxRootSize)
		if err != nil {
			f.Fatal(err)
		}
		var rs rootSigned
		if err := env.decodeAs(typeRoot, &rs); err != nil {
			f.Fatal(err)
		}
		for _, k := range rs.Keys {
			if certs, err := parseCertificates(k.Value.Public); err == nil {
				ca.AddCert(certs[0])
			}
		}
	}
	trusts := []Trusted{
		{Root: base["1.root.json"]},
		{State: first.NewState()},
		{RootCA: ca},
	}
	for i, tr := range trusts {
		if _, err := Verify(fixtureGUN, base, tr, fixtureAt); err != nil {
			f.Fatalf("trust %d: %v", i, err)
		}
	}
	legit := map[string][]byte{}
	for name, data := range base {
		key, canon, ok := signedKey(data)
		if !ok {
			f.Fatalf("fixture %s", name)
		}
		legit[key] = canon
	}
	want := sha256.Sum256([]byte("release manifest"))

	for name, data := range base {
		f.Add(uint8(0), name, data)
	}
	f.Add(uint8(1), "timestamp.json", base["timestamp.json"])
	f.Add(uint8(2), "root.json", base["root.json"])
	f.Add(uint8(0), "targets%2Freleases.json", []byte(nil))
	f.Add(uint8(0), "2.root.json", base["1.root.json"])
	f.Fuzz(func(t *testing.T, which uint8, file string, data []byte) {
		tr := trusts[int(which)%len(trusts)]
		r, err := Verify(fixtureGUN, withFile(base, file, data), tr, fixtureAt)
		if err != nil {
			return
		}
		for name, data := range r.NewState() {
			key, canon, ok := signedKey(data)
			if !ok || !bytes.Equal(canon, legit[key]) {
				t.Fatalf("accepted %s (%s), which the fixture's keys never signed", name, key)
			}
		}
		if r.GUN() != fixtureGUN || len(r.Roles()) != 5 {
			t.Fatalf("result for %s with roles %+v", r.GUN(), r.Roles())
		}
		sum, length, role, err := r.Target("v1")
		if err != nil || !bytes.Equal(sum, want[:]) || length != 1234 || role != roleReleases {
			t.Fatalf("tag v1: %x %d %s %v", sum, length, role, err)
		}
	})
}

// FuzzCanonicalJSON re-encodes arbitrary JSON as Notary signs it. When the
// result is JSON (docker's encoder leaves control characters raw, so it
// need not be), it must be a fixed point with the same meaning: the
// verifier decodes what it trusts from these bytes.
func FuzzCanonicalJSON(f *testing.F) {
	for _, data := range readFixture(f) {
		var sf signedFile
		if json.Unmarshal(data, &sf) == nil {
			f.Add([]byte(sf.Signed))
		}
	}
	for _, s := range []string{`{"b":1,"a":[true,false,null,"x\u2028y"]}`, `{"a":1,"a":2}`, `1.5`, `-0`, `"\ud800"`, ` [ ] `, `{"é":"\u00e9","\"":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := canonicalJSON(data)
		if err != nil || !json.Valid(out) {
			return
		}
		again, err := canonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", out, again, err)
		}
		var a, b any
		da, db := json.NewDecoder(bytes.NewReader(data)), json.NewDecoder(bytes.NewReader(out))
		da.UseNumber()
		db.UseNumber()
		if da.Decode(&a) != nil || db.Decode(&b) != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", data, out)
		}
	})
}

// memNotary serves files in memory as notary-server does: by role name, by
// version for roots, and by checksum whatever the role in the request.
type memNotary map[string][]byte

func (m memNotary) RoundTrip(req *http.Request) (*http.Response, error) {
	body, ok := m.lookup(req.URL.Path)
	status := http.StatusOK
	if !ok {
		status, body = http.StatusNotFound, nil
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Header: http.Header{}, Request: req}, nil
}

func (m memNotary) lookup(path string) ([]byte, bool) {
	name, ok := strings.CutPrefix(path, "/v2/"+fixtureGUN+"/_trust/tuf/")
	if !ok {
		return nil, false
	}
	if data, ok := m[RoleFile(strings.TrimSuffix(name, ".json"))]; ok && !strings.Contains(name, "root.json") {
		return data, true
	}
	if data, ok := m[name]; ok {
		return data, true
	}
	if parts := strings.Split(name, "."); len(parts) >= 3 {
		for _, data := range m {
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) == parts[len(parts)-2] {
				return data, true
			}
		}
	}
	return nil, false
}

// FuzzCollect runs the export-side collection against a notary server
// holding the fixture with one file replaced or removed. A chain it returns
// holds only what the server served, every root version from 1 to the
// current one, and snapshot, targets and delegations that match their
// parents' lengths and hashes.
func FuzzCollect(f *testing.F) {
	base := readFixture(f)
	if _, err := Collect(context.Background(), &http.Client{Transport: memNotary(base)}, "https://notary.example.com", fixtureGUN); err != nil {
		f.Fatal(err)
	}
	for name, data := range base {
		f.Add(name, data)
	}
	f.Add("3.root.json", base["2.root.json"])
	f.Add("2.root.json", []byte(nil))
	f.Fuzz(func(t *testing.T, file string, data []byte) {
		served := memNotary(withFile(base, file, data))
		c, err := Collect(context.Background(), &http.Client{Transport: served}, "https://notary.example.com", fixtureGUN)
		if err != nil {
			return
		}
		var last int64
		for v := int64(1); ; v++ {
			b, ok := c.Files[rootVersionFile(v)]
			if !ok {
				break
			}
			if !bytes.Equal(b, served[rootVersionFile(v)]) {
				t.Fatalf("%s collected, not as served", rootVersionFile(v))
			}
			last = v
		}
		roles := map[string]Role{}
		for _, r := range c.Roles {
			if _, ok := c.Files[r.File]; !ok {
				t.Fatalf("role %s summarised from %s, which was not collected", r.Role, r.File)
			}
			roles[r.Role] = r
		}
		if last == 0 || roles[roleRoot].Version != last {
			t.Fatalf("roots 1..%d collected, root.json is version %d", last, roles[roleRoot].Version)
		}
		meta := func(file, role string) fileMeta {
			// Collect checks structure only; signatures may not even decode.
			var m metaSigned
			var sf struct{ Signed json.RawMessage }
			if json.Unmarshal(c.Files[file], &sf) != nil || json.Unmarshal(sf.Signed, &m) != nil {
				t.Fatalf("%s collected but does not parse", file)
			}
			return m.Meta[role]
		}
		if err := checkMeta(c.Files[fileSnapshot], meta(fileTimestamp, roleSnapshot)); err != nil {
			t.Fatalf("snapshot collected: %v", err)
		}
		for _, r := range c.Roles {
			if r.Role == roleRoot || r.Role == roleTimestamp || r.Role == roleSnapshot {
				continue
			}
			if err := checkMeta(c.Files[r.File], meta(fileSnapshot, r.Role)); err != nil {
				t.Fatalf("%s collected: %v", r.Role, err)
			}
		}
	})
}
