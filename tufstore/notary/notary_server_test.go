package notary

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testnotary"
)

func collect(t *testing.T, s *testnotary.Server, gun string) *Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Collect(ctx, s.Client, s.URL, gun)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canonicalID is the ID the notary CLI shows for an x509 delegation key:
// that of the bare public key, not of the certificate.
func canonicalID(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return keyID(keyECDSA, der)
}

func hexDigest(d [32]byte) string { return fmt.Sprintf("%x", d[:]) }

// TestNotaryServer publishes with the real notary client, collects from the
// real notary-server and verifies, then checks each refusal on that data.
func TestNotaryServer(t *testing.T) {
	srv := testnotary.Start(t)
	const gunA, gunB = "registry.example:5000/relocate/app", "registry.example:5000/relocate/other"
	relCert, relKey, relX509 := testnotary.DelegationKey(t, srv.Dir, "releases")

	// As `docker trust` does: keys made locally, snapshot key moved to the
	// server, targets/releases delegation holding the tag, and the same tag
	// with another digest in targets (so the preference is visible).
	srv.Notary(t, "init", "-p", gunA)
	srv.Notary(t, "key", "rotate", gunA, "snapshot", "-r")
	srv.Notary(t, "delegation", "add", "-p", gunA, roleReleases, relCert, "--all-paths")
	srv.Notary(t, "key", "import", relKey, "--role", roleReleases, "--gun", gunA)
	srv.Notary(t, "addhash", gunA, "v1", "1234", "--sha256", hexDigest(digestRel), "-r", roleReleases)
	srv.Notary(t, "addhash", gunA, "v1", "4321", "--sha256", hexDigest(digestTop))
	srv.Notary(t, "addhash", gunA, "only-top", "77", "--sha256", hexDigest(digestTop))
	srv.Notary(t, "publish", gunA)
	first := collect(t, srv, gunA)

	// Rotations: the targets key (client side) and the root key, then
	// another publish that leaves the root alone.
	srv.Notary(t, "key", "rotate", gunA, "targets")
	srv.Notary(t, "key", "rotate", gunA, "root")
	srv.Notary(t, "publish", gunA)
	rotated := collect(t, srv, gunA)
	srv.Notary(t, "addhash", "-p", gunA, "v2", "555", "--sha256", hexDigest(digestTop))
	cur := collect(t, srv, gunA)

	srv.Notary(t, "init", "-p", gunB)
	srv.Notary(t, "addhash", "-p", gunB, "v1", "10", "--sha256", hexDigest(digestTop))
	other := collect(t, srv, gunB)

	now := time.Now()
	pinned := Trusted{Root: first.Files["1.root.json"]}

	t.Run("collect", func(t *testing.T) {
		for _, f := range []string{"1.root.json", "2.root.json", "3.root.json", "4.root.json", "root.json",
			"timestamp.json", "snapshot.json", "targets.json", "targets%2Freleases.json"} {
			if cur.Files[f] == nil {
				t.Errorf("collected no %s", f)
			}
		}
		if cur.Files["5.root.json"] != nil || cur.GUN != gunA || cur.Server != srv.URL {
			t.Errorf("chain: GUN %q server %q, 5.root.json %v", cur.GUN, cur.Server, cur.Files["5.root.json"] != nil)
		}
		if r := cur.Roles[0]; r.Role != roleRoot || r.Version != 4 || r.File != fileRoot {
			t.Errorf("first role %+v, want root version 4", r)
		}
		if _, err := Collect(context.Background(), srv.Client, srv.URL, "registry.example:5000/relocate/none"); !errors.Is(err, ErrMissing) {
			t.Errorf("Collect of an unknown GUN: %v, want ErrMissing", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Collect(ctx, srv.Client, srv.URL, gunA); !errors.Is(err, context.Canceled) {
			t.Errorf("Collect with a canceled context: %v", err)
		}
	})

	t.Run("verify through rotations from the first root", func(t *testing.T) {
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		wantTarget(t, r, "v1", digestRel[:], 1234, roleReleases)
		wantTarget(t, r, "only-top", digestTop[:], 77, roleTargets)
		wantTarget(t, r, "v2", digestTop[:], 555, roleTargets)
		got := map[string]int64{}
		for _, ro := range r.Roles() {
			got[ro.Role] = ro.Version
		}
		if got[roleRoot] != 4 || got[roleReleases] != 1 || len(got) != 5 {
			t.Fatalf("roles %v", got)
		}
	})

	t.Run("tag pointing at another digest", func(t *testing.T) {
		// A registry (or an attacker) says v1 is the targets-role digest;
		// docker trusts targets/releases, and so does Target.
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		d, _, _, err := r.Target("v1")
		if err != nil {
			t.Fatal(err)
		}
		if hexDigest([32]byte(d)) == hexDigest(digestTop) {
			t.Fatal("Target returned the digest the targets role holds, not targets/releases'")
		}
	})

	t.Run("pinned current root, state from an earlier import", func(t *testing.T) {
		if _, err := Verify(gunA, cur.Files, Trusted{Root: cur.Files[fileRoot]}, now); err != nil {
			t.Fatal(err)
		}
		old, err := Verify(gunA, first.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Verify(gunA, cur.Files, Trusted{State: old.NewState()}, now)
		if err != nil {
			t.Fatal(err)
		}
		wantTarget(t, r, "v2", digestTop[:], 555, roleTargets)
	})

	t.Run("root CA", func(t *testing.T) {
		root, err := decodeEnvelope(cur.Files[fileRoot], MaxRootSize)
		if err != nil {
			t.Fatal(err)
		}
		var rs rootSigned
		_ = root.decodeAs(typeRoot, &rs)
		pool := x509.NewCertPool()
		certs, err := parseCertificates(rs.Keys[rs.Roles[roleRoot].KeyIDs[0]].Value.Public)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(certs[0]) // notary's root certificates are self-signed
		if _, err := Verify(gunA, cur.Files, Trusted{RootCA: pool}, now); err != nil {
			t.Fatal(err)
		}
		wrong := x509.NewCertPool()
		wrong.AddCert(relX509)
		_, err = Verify(gunA, cur.Files, Trusted{RootCA: wrong}, now)
		wantRoleErr(t, err, ErrCertificate, roleRoot)
	})

	t.Run("trust on first use refused", func(t *testing.T) {
		_, err := Verify(gunA, cur.Files, Trusted{}, now)
		wantRoleErr(t, err, ErrNoTrustAnchor, roleRoot)
	})

	t.Run("tampered targets", func(t *testing.T) {
		files := clone(cur.Files)
		files[fileTargets] = []byte(strings.Replace(string(files[fileTargets]), `"length":555`, `"length":556`, 1))
		if string(files[fileTargets]) == string(cur.Files[fileTargets]) {
			t.Fatal("nothing tampered")
		}
		_, err := Verify(gunA, files, pinned, now)
		wantRoleErr(t, err, ErrThreshold, roleTargets)
	})

	t.Run("older targets under the current snapshot", func(t *testing.T) {
		files := clone(cur.Files)
		files[fileTargets] = rotated.Files[fileTargets] // signed by the same key, not the listed one
		_, err := Verify(gunA, files, pinned, now)
		wantRoleErr(t, err, ErrHashMismatch, roleTargets)
	})

	t.Run("rollback", func(t *testing.T) {
		newer, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		// Same root version, older timestamp: the first role that went back.
		_, err = Verify(gunA, rotated.Files, Trusted{State: newer.NewState()}, now)
		wantRoleErr(t, err, ErrRollback, roleTimestamp)
		// Older root too.
		_, err = Verify(gunA, first.Files, Trusted{State: newer.NewState()}, now)
		wantRoleErr(t, err, ErrRollback, roleRoot)
	})

	t.Run("expired timestamp", func(t *testing.T) {
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		var tsExp time.Time
		for _, ro := range r.Roles() {
			if ro.Role == roleTimestamp {
				tsExp = ro.Expires
			}
		}
		late := tsExp.Add(time.Hour)
		_, err = Verify(gunA, cur.Files, pinned, late)
		wantRoleErr(t, err, ErrExpired, roleTimestamp)
		if _, err := VerifyWithGrace(gunA, cur.Files, pinned, late, 2*time.Hour); err != nil {
			t.Fatalf("within grace: %v", err)
		}
		if !r.TimestampExpired(late) || r.TimestampExpired(late.Add(-2*time.Hour)) || len(r.Expired(late)) != 0 {
			t.Fatal("expiry helpers disagree with the timestamp")
		}
		if _, err := Verify(gunA, cur.Files, pinned, now.AddDate(50, 0, 0)); !errors.Is(err, ErrExpired) {
			t.Fatalf("50 years on: %v, want ErrExpired", err)
		}
	})

	t.Run("root certificate for another GUN", func(t *testing.T) {
		_, err := Verify(gunB, other.Files, pinned, now) // GUN A's root pinned for GUN B
		wantRoleErr(t, err, ErrCertificate, roleRoot)
		_, err = Verify(gunA, other.Files, Trusted{Root: other.Files[fileRoot]}, now) // B's data as A's
		wantRoleErr(t, err, ErrCertificate, roleRoot)
		if _, err := Verify(gunB, other.Files, Trusted{Root: other.Files["1.root.json"]}, now); err != nil {
			t.Fatalf("GUN B itself: %v", err)
		}
	})

	// Last: it changes the repository. The delegation's key is replaced in
	// targets but targets/releases is not re-signed, which notary-server
	// accepts and the notary client then reports as below threshold.
	t.Run("delegation below threshold", func(t *testing.T) {
		newCert, _, _ := testnotary.DelegationKey(t, srv.Dir, "releases2")
		srv.Notary(t, "delegation", "add", gunA, roleReleases, newCert)
		srv.Notary(t, "delegation", "remove", "-p", gunA, roleReleases, canonicalID(t, relX509))
		broken := collect(t, srv, gunA)
		_, err := Verify(gunA, broken.Files, pinned, time.Now())
		wantRoleErr(t, err, ErrThreshold, roleReleases)
	})
}
