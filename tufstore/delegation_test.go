package tufstore

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The image every test role vouches for, as a TUF target.
const image = "reg.example/prod/app:1"

var imageTarget = func() *metadata.TargetFiles {
	tf, _ := metadata.TargetFile().FromBytes(image, []byte("manifest"), "sha256")
	return tf
}()

// key is one ed25519 key with its TUF form.
type key struct {
	priv ed25519.PrivateKey
	pub  *metadata.Key
}

func newKey(t *testing.T) key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key{priv: priv, pub: k}
}

func (k key) id() string { id, _ := k.pub.ID(); return id }

// repo builds a repository file by file, so that a test can publish what an
// attacker would: roles signed by keys their delegator never named.
type repo struct {
	t                               *testing.T
	root, timestamp, snapshot, top  key
	targets                         *metadata.Metadata[metadata.TargetsType]
	roles                           map[string]*metadata.Metadata[metadata.TargetsType] // published delegated roles, by file name
	signers                         map[string][]key
	expires, tsExpires, snapExpires time.Time
	rootExpires, targetsExpires     time.Time
	snapshotHashes                  bool
}

func newRepo(t *testing.T) *repo {
	exp := time.Now().Add(24 * time.Hour)
	r := &repo{t: t, root: newKey(t), timestamp: newKey(t), snapshot: newKey(t), top: newKey(t),
		roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, signers: map[string][]key{},
		expires: exp, tsExpires: exp, snapExpires: exp, rootExpires: exp, targetsExpires: exp}
	r.targets = metadata.Targets(exp)
	return r
}

// delegate makes parent delegate name to keys.
func (r *repo) delegate(parent *metadata.Metadata[metadata.TargetsType], name string, threshold int, paths []string, keys ...key) {
	if parent.Signed.Delegations == nil {
		parent.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := metadata.DelegatedRole{Name: name, Threshold: threshold, Paths: paths}
	for _, k := range keys {
		parent.Signed.Delegations.Keys[k.id()] = k.pub
		d.KeyIDs = append(d.KeyIDs, k.id())
	}
	parent.Signed.Delegations.Roles = append(parent.Signed.Delegations.Roles, d)
}

// publish makes name's file the given metadata, signed by signers.
func (r *repo) publish(name string, md *metadata.Metadata[metadata.TargetsType], signers ...key) {
	r.roles[name] = md
	r.signers[name] = signers
}

// role is a fresh delegated role's metadata listing the image.
func (r *repo) role(lists bool) *metadata.Metadata[metadata.TargetsType] {
	md := metadata.Targets(r.expires)
	if lists {
		md.Signed.Targets[image] = imageTarget
	}
	return md
}

func sign[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], keys ...key) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, k := range keys {
		s, err := signature.LoadSigner(k.priv, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
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

func metaFor(version int64, b []byte, hashes bool) *metadata.MetaFiles {
	mf := metadata.MetaFile(version)
	if hashes {
		sum := sha256.Sum256(b)
		mf.Length, mf.Hashes["sha256"] = int64(len(b)), sum[:]
	}
	return mf
}

// files signs and lays out everything with consistent snapshots.
func (r *repo) files() (map[string][]byte, []byte) {
	t := r.t
	root := metadata.Root(r.rootExpires)
	root.Signed.ConsistentSnapshot = true
	for role, k := range map[string]key{"root": r.root, "timestamp": r.timestamp, "snapshot": r.snapshot, "targets": r.top} {
		if err := root.Signed.AddKey(k.pub, role); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{}
	rootB := sign(t, root, r.root)
	out["1.root.json"] = rootB
	snap := metadata.Snapshot(r.snapExpires)
	r.targets.Signed.Expires = r.targetsExpires
	tb := sign(t, r.targets, r.top)
	out["1.targets.json"] = tb
	snap.Signed.Meta["targets.json"] = metaFor(1, tb, r.snapshotHashes)
	for name, md := range r.roles {
		b := sign(t, md, r.signers[name]...)
		out[fmt.Sprintf("1.%s.json", name)] = b
		snap.Signed.Meta[name+".json"] = metaFor(1, b, r.snapshotHashes)
	}
	sb := sign(t, snap, r.snapshot)
	out["1.snapshot.json"] = sb
	ts := metadata.Timestamp(r.tsExpires)
	ts.Signed.Meta["snapshot.json"] = metaFor(1, sb, true)
	out["timestamp.json"] = sign(t, ts, r.timestamp)
	return out, rootB
}

func (r *repo) session(now time.Time, g Grace) (*Session, error) {
	files, root := r.files()
	return Update("team", files, Trusted{Root: root}, now, g)
}

func mustSession(t *testing.T, r *repo) *Session {
	t.Helper()
	s, err := r.session(time.Now(), Grace{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// compromisedCI is a repository whose ci key the attacker holds: ci
// delegates namesakes of qa and release to the attacker's key, and the
// files published for qa and release are the attacker's, signed by it and
// listing the image. The real qa and release keys signed nothing. The
// snapshot lists versions without hashes, as go-tuf's defaults write it.
func compromisedCI(t *testing.T, order []string) *repo {
	r := newRepo(t)
	ci, qa, release, attacker := newKey(t), newKey(t), newKey(t), newKey(t)
	real := map[string]key{"ci": ci, "qa": qa, "release": release}
	for _, name := range order {
		r.delegate(r.targets, name, 1, []string{"reg.example/*/*"}, real[name])
	}
	ciMD := r.role(true)
	r.delegate(ciMD, "qa", 1, []string{"reg.example/*/*"}, attacker)
	r.delegate(ciMD, "release", 1, []string{"reg.example/*/*"}, attacker)
	r.publish("ci", ciMD, ci)
	r.publish("qa", r.role(true), attacker)
	r.publish("release", r.role(true), attacker)
	return r
}

func TestPolicyRoleIsItsDelegationPath(t *testing.T) {
	for _, order := range [][]string{{"ci", "qa", "release"}, {"qa", "release", "ci"}, {"release", "ci", "qa"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			s := mustSession(t, compromisedCI(t, order))
			if err := s.RoleVouches(RolePath{"ci"}, image, imageTarget, 1); err != nil {
				t.Fatalf("ci itself vouches: %v", err)
			}
			for _, role := range []string{"qa", "release"} {
				err := s.RoleVouches(RolePath{role}, image, imageTarget, 1)
				want := "role " + role + " of team: not signed by a threshold of the keys its delegation assigns"
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("policy role %s answered by ci's namesake: got %v, want %q", role, err, want)
				}
			}
			// The namesakes are roles too, under their own path only.
			if err := s.RoleVouches(RolePath{"ci", "qa"}, image, imageTarget, 1); err != nil {
				t.Errorf("ci/qa is the role ci delegated: %v", err)
			}
		})
	}
}

// A namesake deeper in the tree neither counts for the real role nor
// shadows it, whichever was verified first.
func TestNamesakeDoesNotShadow(t *testing.T) {
	r := newRepo(t)
	ci, qa, attacker := newKey(t), newKey(t), newKey(t)
	r.delegate(r.targets, "ci", 1, []string{"reg.example/*/*"}, ci)
	r.delegate(r.targets, "qa", 1, []string{"reg.example/*/*"}, qa)
	ciMD := r.role(false)
	r.delegate(ciMD, "qa", 1, []string{"reg.example/*/*"}, attacker)
	r.publish("ci", ciMD, ci)
	r.publish("qa", r.role(true), qa)
	r.snapshotHashes = true
	s := mustSession(t, r)
	// Verifying the namesake first must not poison the real role.
	if err := s.RoleVouches(RolePath{"ci", "qa"}, image, imageTarget, 1); err == nil || !strings.Contains(err.Error(), "role ci/qa of team: not signed") {
		t.Errorf("ci/qa verified with the real qa's signature: %v", err)
	}
	if err := s.RoleVouches(RolePath{"qa"}, image, imageTarget, 1); err != nil {
		t.Errorf("the real qa: %v", err)
	}
	got := map[string]int64{}
	for _, ro := range s.Roles() {
		got[ro.Role] = ro.Version
	}
	if _, ok := got["qa"]; !ok {
		t.Errorf("roles trusted %v: qa missing", got)
	}
	if _, ok := got["ci/qa"]; ok {
		t.Errorf("roles trusted %v: the namesake that failed is listed", got)
	}
}

func TestNestedPolicyPath(t *testing.T) {
	r := newRepo(t)
	release, eu, other := newKey(t), newKey(t), newKey(t)
	r.delegate(r.targets, "release", 1, []string{"reg.example/*/*"}, release)
	relMD := r.role(false)
	r.delegate(relMD, "release-eu", 1, []string{"reg.example/prod/*"}, eu)
	r.delegate(relMD, "release-us", 1, []string{"reg.example/us/*"}, other)
	r.publish("release", relMD, release)
	r.publish("release-eu", r.role(true), eu)
	r.publish("release-us", r.role(true), other)
	s := mustSession(t, r)
	tests := []struct {
		path RolePath
		want string // error substring, "" = vouches
	}{
		{RolePath{"release", "release-eu"}, ""},
		{RolePath{"release-eu"}, `targets does not delegate "release-eu"`},
		{RolePath{"qa", "release-eu"}, `targets does not delegate "qa"`},
		{RolePath{"release", "release-us"}, "role release/release-us is not trusted for " + image},
		{RolePath{"release"}, "role release does not list " + image},
		{RolePath{}, "not the top-level targets"},
	}
	for _, tc := range tests {
		err := s.RoleVouches(tc.path, image, imageTarget, 1)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: got %v, want %q", tc.path, err, tc.want)
		}
	}
	// The client walk finds the image through the same path.
	if _, path, err := s.Target(image); err != nil || path.String() != "release/release-eu" {
		t.Errorf("walk: %v %v", path, err)
	}
}

func TestMinimumSignatures(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	tests := []struct {
		name    string
		signers []key
		min     int
		want    string
	}{
		{"two of three", []key{k1, k2}, 2, ""},
		{"two is not three", []key{k1, k2}, 3, "2 valid signature(s) from distinct keys, the policy requires 3"},
		{"a duplicated signature is refused", []key{k1, k1}, 2, "multiple signatures found for key ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			r.delegate(r.targets, "qa", 1, []string{"reg.example/*/*"}, k1, k2, k3)
			r.publish("qa", r.role(true), tc.signers...)
			s := mustSession(t, r)
			err := s.RoleVouches(RolePath{"qa"}, image, imageTarget, tc.min)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// One public key listed under two key IDs is one key.
	t.Run("one key under two IDs", func(t *testing.T) {
		r := newRepo(t)
		r.delegate(r.targets, "qa", 1, []string{"reg.example/*/*"}, k1)
		dg := r.targets.Signed.Delegations
		dg.Keys["alias"] = k1.pub
		dg.Roles[0].KeyIDs = append(dg.Roles[0].KeyIDs, "alias")
		md := r.role(true)
		r.publish("qa", md, k1)
		files, root := r.files()
		// Add a second copy of the signature under the alias.
		qa, _ := metadata.Targets().FromBytes(files["1.qa.json"])
		qa.Signatures = append(qa.Signatures, metadata.Signature{KeyID: "alias", Signature: qa.Signatures[0].Signature})
		files["1.qa.json"], _ = qa.ToBytes(false)
		s, err := Update("team", files, Trusted{Root: root}, time.Now(), Grace{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.RoleVouches(RolePath{"qa"}, image, imageTarget, 2); err == nil || !strings.Contains(err.Error(), "1 valid signature(s)") {
			t.Fatalf("an aliased key counted twice: %v", err)
		}
	})
}

func TestExpiryRoleByRole(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	graces := Grace{Timestamp: time.Hour, Snapshot: 48 * time.Hour}
	tests := []struct {
		name   string
		set    func(r *repo)
		grace  Grace
		role   string // the role refused, "" = accepted
		graced []string
	}{
		{"timestamp and snapshot within their own graces", func(r *repo) {
			r.tsExpires, r.snapExpires = now.Add(-30*time.Minute), now.Add(-24*time.Hour)
		}, graces, "", []string{"timestamp", "snapshot"}},
		{"timestamp beyond its grace while snapshot is within its", func(r *repo) {
			r.tsExpires, r.snapExpires = now.Add(-2*time.Hour), now.Add(-24*time.Hour)
		}, graces, "timestamp", nil},
		{"snapshot's grace is not the timestamp's", func(r *repo) {
			r.tsExpires = now.Add(-2 * time.Hour)
		}, Grace{Snapshot: 48 * time.Hour}, "timestamp", nil},
		{"root never gets a grace", func(r *repo) { r.rootExpires = now.Add(-time.Minute) }, graces, "root", nil},
		{"targets never gets a grace", func(r *repo) { r.targetsExpires = now.Add(-time.Minute) }, graces, "targets", nil},
		{"no grace, all fresh", func(r *repo) {}, Grace{}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			tc.set(r)
			s, err := r.session(now, tc.grace)
			if tc.role == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var got []string
				for _, g := range s.Graced() {
					got = append(got, g.Role)
				}
				if strings.Join(got, ",") != strings.Join(tc.graced, ",") {
					t.Errorf("graced %v, want %v", got, tc.graced)
				}
				return
			}
			var ee *ExpiredError
			if !errors.As(err, &ee) || ee.Role != tc.role {
				t.Fatalf("got %v, want role %s expired", err, tc.role)
			}
		})
	}
}

// A delegated role gets no grace, even one named like a top-level role,
// and an import that outlives a role is caught by CheckFresh.
func TestDelegatedExpiryAndFreshness(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	r := newRepo(t)
	k := newKey(t)
	r.delegate(r.targets, "timestamp-team", 1, []string{"reg.example/*/*"}, k)
	md := r.role(true)
	md.Signed.Expires = now.Add(time.Hour)
	r.publish("timestamp-team", md, k)
	r.tsExpires = now.Add(10 * time.Minute)
	s, err := r.session(now, Grace{Timestamp: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RoleVouches(RolePath{"timestamp-team"}, image, imageTarget, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFresh(now.Add(30 * time.Minute)); err != nil {
		t.Errorf("timestamp within its grace: %v", err)
	}
	var ee *ExpiredError
	if err := s.CheckFresh(now.Add(41 * time.Minute)); !errors.As(err, &ee) || ee.Role != "timestamp" {
		t.Errorf("timestamp past its grace: %v", err)
	}
	s.grace.Timestamp = 10 * time.Hour
	if err := s.CheckFresh(now.Add(61 * time.Minute)); !errors.As(err, &ee) || ee.Role != "timestamp-team" {
		t.Errorf("delegated role past its expiry: %v", err)
	}
}
