package notary

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

// wantRoleErr checks err is a *RoleError for role wrapping want.
func wantRoleErr(t *testing.T, err error, want error, role string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified; want %v for role %s", want, role)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q; want %v", err, want)
	}
	var re *RoleError
	if !errors.As(err, &re) || re.Role != role {
		t.Fatalf("error %q; want it to name role %s", err, role)
	}
	if !strings.Contains(err.Error(), "role "+role) {
		t.Fatalf("message %q does not name role %s", err, role)
	}
}

func wantTarget(t *testing.T, r *Result, tag string, digest []byte, length int64, role string) {
	t.Helper()
	d, l, by, err := r.Target(tag)
	if err != nil {
		t.Fatalf("Target(%q): %v", tag, err)
	}
	if !bytes.Equal(d, digest) || l != length || by != role {
		t.Fatalf("Target(%q) = %x, %d, %s; want %x, %d, %s", tag, d, l, by, digest, length, role)
	}
}

func TestVerifySynthetic(t *testing.T) {
	type tc struct {
		name    string
		setup   func(t *testing.T, s *synthRepo)                              // before build
		files   func(t *testing.T, s *synthRepo, f map[string][]byte)         // after build
		trusted func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted // default: pin 1.root.json
		at      func(s *synthRepo) time.Time                                  // default: s.now
		grace   time.Duration
		err     error
		role    string
		check   func(t *testing.T, s *synthRepo, r *Result)
	}
	secondRoot := func(t *testing.T, s *synthRepo, signers func(old, new *tkey) []*tkey) {
		old := s.roots[0].keys[0]
		nk := newRootKey(t, s.gun, s.now)
		s.roots = append(s.roots, synthRoot{keys: []*tkey{nk}, threshold: 1, signers: signers(old, nk), expires: s.now.AddDate(10, 0, 0)})
	}
	cases := []tc{
		{
			name: "valid repository, releases preferred",
			check: func(t *testing.T, s *synthRepo, r *Result) {
				wantTarget(t, r, "v1", digestRel[:], 1234, roleReleases)
				wantTarget(t, r, "only-top", digestTop[:], 3000, roleTargets)
				if _, _, _, err := r.Target("missing"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Target(missing) = %v", err)
				}
				var got []string
				for _, ro := range r.Roles() {
					got = append(got, ro.Role)
				}
				if strings.Join(got, ",") != "root,timestamp,snapshot,targets,targets/releases" {
					t.Fatalf("Roles = %v", got)
				}
				st := r.NewState()
				for _, f := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json", "targets%2Freleases.json"} {
					if st[f] == nil {
						t.Errorf("NewState lacks %s", f)
					}
				}
				if len(r.Expired(s.now)) != 0 || r.TimestampExpired(s.now) || r.SnapshotExpired(s.now) {
					t.Fatalf("nothing should be expired at now")
				}
			},
		},
		{
			name: "rsa, rsa-x509 and ed25519 keys in the roles",
			setup: func(t *testing.T, s *synthRepo) {
				s.ts = newKey(t, keyED25519)
				s.snap = newKey(t, keyRSA)
				s.targ = newCertKey(t, keyRSAX509, rsaKey(), certOpts{cn: "targets", notBefore: s.now.Add(-time.Hour), notAfter: s.now.Add(time.Hour)})
				rk := newCertKey(t, keyRSAX509, rsaKey(), certOpts{cn: s.gun, notBefore: s.now.Add(-time.Hour), notAfter: s.now.AddDate(1, 0, 0)})
				s.roots[0].keys, s.roots[0].signers = []*tkey{rk}, []*tkey{rk}
			},
			check: func(t *testing.T, s *synthRepo, r *Result) { wantTarget(t, r, "v1", digestRel[:], 1234, roleReleases) },
		},
		{
			name:    "trust on first use refused",
			trusted: func(*testing.T, *synthRepo, map[string][]byte) Trusted { return Trusted{} },
			err:     ErrNoTrustAnchor, role: roleRoot,
		},
		{
			name:  "root key ID not the hash of the key",
			setup: func(t *testing.T, s *synthRepo) { s.badRootKeyID = true },
			err:   ErrKeyID, role: roleRoot,
		},
		{
			name: "signature whose keyid claims the targets key",
			setup: func(t *testing.T, s *synthRepo) {
				imposter := newKey(t, keyECDSA)
				imposter.id = s.targ.id
				s.targSigners = []*tkey{imposter}
			},
			err: ErrThreshold, role: roleTargets,
		},
		{
			name: "root keys must be certificates",
			setup: func(t *testing.T, s *synthRepo) {
				k := newKey(t, keyECDSA)
				s.roots[0].keys, s.roots[0].signers = []*tkey{k}, []*tkey{k}
			},
			err: ErrCertificate, role: roleRoot,
		},
		{
			name: "root certificate expired",
			setup: func(t *testing.T, s *synthRepo) {
				k := newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: s.gun, notBefore: s.now.AddDate(-2, 0, 0), notAfter: s.now.Add(-time.Hour)})
				s.roots[0].keys, s.roots[0].signers = []*tkey{k}, []*tkey{k}
			},
			err: ErrCertificate, role: roleRoot,
		},
		{
			name: "expired root certificate replaced by rotation",
			setup: func(t *testing.T, s *synthRepo) {
				k := newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: s.gun, notBefore: s.now.AddDate(-2, 0, 0), notAfter: s.now.Add(-time.Hour)})
				s.roots[0].keys, s.roots[0].signers = []*tkey{k}, []*tkey{k}
				secondRoot(t, s, func(o, n *tkey) []*tkey { return []*tkey{o, n} })
			},
			check: func(t *testing.T, s *synthRepo, r *Result) {
				if v := r.Roles()[0].Version; v != 2 {
					t.Fatalf("root version %d, want 2", v)
				}
			},
		},
		{
			name: "root rotation signed by old and new keys",
			setup: func(t *testing.T, s *synthRepo) {
				secondRoot(t, s, func(o, n *tkey) []*tkey { return []*tkey{o, n} })
			},
		},
		{
			name: "root rotation signed by the new keys only",
			setup: func(t *testing.T, s *synthRepo) {
				secondRoot(t, s, func(o, n *tkey) []*tkey { return []*tkey{n} })
			},
			err: ErrThreshold, role: roleRoot,
		},
		{
			name: "root rotation signed by the old keys only",
			setup: func(t *testing.T, s *synthRepo) {
				secondRoot(t, s, func(o, n *tkey) []*tkey { return []*tkey{o} })
			},
			err: ErrThreshold, role: roleRoot,
		},
		{
			name: "intermediate root missing",
			setup: func(t *testing.T, s *synthRepo) {
				secondRoot(t, s, func(o, n *tkey) []*tkey { return []*tkey{o, n} })
				s.roots = append(s.roots, synthRoot{keys: s.roots[1].keys, threshold: 1, signers: s.roots[1].keys, expires: s.now.AddDate(10, 0, 0)})
			},
			files: func(t *testing.T, s *synthRepo, f map[string][]byte) { delete(f, "2.root.json") },
			err:   ErrMissing, role: roleRoot,
		},
		{
			name: "pinned root is not the chain's first root",
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				other := *s
				rk := newRootKey(t, s.gun, s.now)
				other.roots = []synthRoot{{keys: []*tkey{rk}, threshold: 1, signers: []*tkey{rk}, expires: s.now.AddDate(1, 0, 0)}}
				return Trusted{Root: other.rootFile(t, 1, other.roots[0])}
			},
			err: ErrPinMismatch, role: roleRoot,
		},
		{
			name: "root certificates chain to the pinned CA",
			setup: func(t *testing.T, s *synthRepo) {
				ca := newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: "site CA", notBefore: s.now.AddDate(-1, 0, 0), notAfter: s.now.AddDate(5, 0, 0), isCA: true})
				k := newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: s.gun, notBefore: s.now.Add(-time.Hour), notAfter: s.now.AddDate(1, 0, 0), issuer: ca})
				s.roots[0].keys, s.roots[0].signers = []*tkey{k}, []*tkey{k}
				s.ca = ca
			},
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				pool := x509.NewCertPool()
				pool.AddCert(s.ca.cert)
				return Trusted{RootCA: pool}
			},
		},
		{
			name: "root certificates do not chain to the pinned CA",
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				ca := newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: "other CA", notBefore: s.now.AddDate(-1, 0, 0), notAfter: s.now.AddDate(5, 0, 0), isCA: true})
				pool := x509.NewCertPool()
				pool.AddCert(ca.cert)
				return Trusted{RootCA: pool}
			},
			err: ErrCertificate, role: roleRoot,
		},
		{
			name: "root of another GUN",
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				other := newSynth(t)
				other.gun = "registry.example:5000/team/other"
				rk := newRootKey(t, other.gun, s.now)
				other.roots[0].keys, other.roots[0].signers = []*tkey{rk}, []*tkey{rk}
				return Trusted{Root: other.rootFile(t, 1, other.roots[0])}
			},
			err: ErrCertificate, role: roleRoot,
		},
		{
			name: "delegation below threshold",
			setup: func(t *testing.T, s *synthRepo) {
				d := s.delegs[0]
				d.keys = append(d.keys, newKey(t, keyECDSA))
				d.threshold = 2
			},
			err: ErrThreshold, role: roleReleases,
		},
		{
			name: "delegation threshold met by two keys",
			setup: func(t *testing.T, s *synthRepo) {
				d := s.delegs[0]
				d.keys = append(d.keys, newKey(t, keyED25519))
				d.threshold, d.signers = 2, d.keys
			},
			check: func(t *testing.T, s *synthRepo, r *Result) { wantTarget(t, r, "v1", digestRel[:], 1234, roleReleases) },
		},
		{
			name: "one key under two IDs counts once",
			setup: func(t *testing.T, s *synthRepo) {
				d := s.delegs[0]
				same := newCertKey(t, keyECDSAX509, d.keys[0].signer, certOpts{cn: "releases", notBefore: s.now.Add(-time.Hour), notAfter: s.now.AddDate(1, 0, 0)})
				d.keys = append(d.keys, same)
				d.threshold, d.signers = 2, d.keys
			},
			err: ErrThreshold, role: roleReleases,
		},
		{
			name: "delegation vouches only under its path prefixes",
			setup: func(t *testing.T, s *synthRepo) {
				d := s.delegs[0]
				d.paths = []string{"release/"}
				d.targets["release/v1"] = targetMeta(digestRel[:], 99)
				// The child asks for more than its parent has: only release/v9 is kept.
				s.delegs = append(s.delegs, &synthDeleg{name: "targets/releases/sub", keys: d.keys, threshold: 1,
					paths: []string{"release/v9", "other/", ""}, signers: d.signers, version: 1, expires: d.expires,
					targets: map[string]any{"v9": targetMeta(digestRel[:], 9), "release/v9": targetMeta(digestRel[:], 9),
						"other/x": targetMeta(digestRel[:], 9)}})
			},
			check: func(t *testing.T, s *synthRepo, r *Result) {
				wantTarget(t, r, "v1", digestTop[:], 2000, roleTargets) // outside releases' paths
				wantTarget(t, r, "release/v1", digestRel[:], 99, roleReleases)
				wantTarget(t, r, "release/v9", digestRel[:], 9, "targets/releases/sub")
				for _, tag := range []string{"v9", "other/x"} {
					if _, _, role, err := r.Target(tag); !errors.Is(err, ErrNotFound) {
						t.Fatalf("%s vouched by %s beyond its parent's paths (%v)", tag, role, err)
					}
				}
			},
		},
		{
			name:  "delegation declared but never published",
			setup: func(t *testing.T, s *synthRepo) { s.delegs[0].omit = true },
			check: func(t *testing.T, s *synthRepo, r *Result) { wantTarget(t, r, "v1", digestTop[:], 2000, roleTargets) },
		},
		{
			name: "targets validly signed but not the one the snapshot lists",
			files: func(t *testing.T, s *synthRepo, f map[string][]byte) {
				s.targets["extra"] = targetMeta(digestTop[:], 1)
				f[fileTargets] = s.targetsFile(t, roleTargets, s.targVersion, s.targExpires, s.targets, []*tkey{s.targ})
			},
			err: ErrHashMismatch, role: roleTargets,
		},
		{
			name: "tampered targets",
			files: func(t *testing.T, s *synthRepo, f map[string][]byte) {
				f[fileTargets] = bytes.Replace(f[fileTargets], []byte(`"length":2000`), []byte(`"length":2001`), 1)
			},
			err: ErrThreshold, role: roleTargets,
		},
		{
			name: "snapshot in the timestamp's place",
			files: func(t *testing.T, s *synthRepo, f map[string][]byte) {
				f[fileTimestamp] = f[fileSnapshot]
			},
			err: ErrWrongType, role: roleTimestamp,
		},
		{
			name: "oversized timestamp",
			files: func(t *testing.T, s *synthRepo, f map[string][]byte) {
				f[fileTimestamp] = append(f[fileTimestamp], bytes.Repeat([]byte(" "), MaxTimestampSize)...)
			},
			err: ErrTooLarge, role: roleTimestamp,
		},
		{
			name:  "expired targets get no grace",
			setup: func(t *testing.T, s *synthRepo) { s.targExpires = s.now.Add(-time.Minute) },
			grace: 365 * 24 * time.Hour,
			err:   ErrExpired, role: roleTargets,
		},
		{
			name:  "expired delegation",
			setup: func(t *testing.T, s *synthRepo) { s.delegs[0].expires = s.now.Add(-time.Minute) },
			grace: time.Hour,
			err:   ErrExpired, role: roleReleases,
		},
		{
			name:  "expired snapshot",
			setup: func(t *testing.T, s *synthRepo) { s.snapExpires = s.now.Add(-time.Minute) },
			err:   ErrExpired, role: roleSnapshot,
		},
		{
			name:  "expired snapshot within grace",
			setup: func(t *testing.T, s *synthRepo) { s.snapExpires = s.now.Add(-time.Minute) },
			grace: time.Hour,
			check: func(t *testing.T, s *synthRepo, r *Result) {
				if !r.SnapshotExpired(s.now) || r.SnapshotExpired(s.now.Add(-time.Hour)) || r.TimestampExpired(s.now) {
					t.Fatal("SnapshotExpired/TimestampExpired disagree with the metadata")
				}
				if len(r.Expired(s.now)) != 0 {
					t.Fatalf("Expired = %v, want none (snapshot is graced separately)", r.Expired(s.now))
				}
			},
		},
		{
			name: "rollback of a delegation",
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				newer := *s
				d := *s.delegs[0]
				d.version = 7
				newer.delegs = []*synthDeleg{&d}
				return Trusted{Root: f[rootVersionFile(1)], State: newer.build(t)}
			},
			err: ErrRollback, role: roleReleases,
		},
		{
			name: "a trusted delegation dropped from a newer snapshot",
			setup: func(t *testing.T, s *synthRepo) {
				s.delegs[0].omit = true // the server's snapshot key re-signs without it
			},
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				older := *s
				d := *s.delegs[0]
				d.omit = false
				older.delegs = []*synthDeleg{&d}
				older.tsVersion, older.snapVersion = 1, 1
				return Trusted{Root: f[rootVersionFile(1)], State: older.build(t)}
			},
			err: ErrRollback, role: roleReleases,
		},
		{
			name: "state from an earlier import",
			trusted: func(t *testing.T, s *synthRepo, f map[string][]byte) Trusted {
				older := *s
				older.tsVersion, older.snapVersion = 1, 1
				return Trusted{State: older.build(t)}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSynth(t)
			if c.setup != nil {
				c.setup(t, s)
			}
			files := s.build(t)
			if c.files != nil {
				c.files(t, s, files)
			}
			trusted := pin(files)
			if c.trusted != nil {
				trusted = c.trusted(t, s, files)
			}
			now := s.now
			if c.at != nil {
				now = c.at(s)
			}
			r, err := VerifyWithGrace(s.gun, files, trusted, now, c.grace)
			if c.err != nil {
				wantRoleErr(t, err, c.err, c.role)
				if r != nil {
					t.Fatal("a refused chain returned a Result")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, s, r)
			}
		})
	}
}

func TestVerifyGUNAndInputs(t *testing.T) {
	s := newSynth(t)
	files := s.build(t)
	for _, gun := range []string{"", "../etc", "a//b", "a/./b", "a/b/", "a b"} {
		if _, err := Verify(gun, files, pin(files), s.now); err == nil {
			t.Errorf("Verify accepted GUN %q", gun)
		}
	}
	noTS := map[string][]byte{}
	for k, v := range files {
		noTS[k] = v
	}
	delete(noTS, fileTimestamp)
	_, err := Verify(s.gun, noTS, pin(files), s.now)
	wantRoleErr(t, err, ErrMissing, roleTimestamp)
}

func TestRoleFile(t *testing.T) {
	for _, c := range []struct{ role, file string }{
		{"targets", "targets.json"},
		{"targets/releases", "targets%2Freleases.json"},
		{"targets/a/b", "targets%2Fa%2Fb.json"},
	} {
		if got := RoleFile(c.role); got != c.file {
			t.Errorf("RoleFile(%q) = %q, want %q", c.role, got, c.file)
		}
		if c.role != roleTargets {
			if got := roleOfFile(c.file); got != c.role {
				t.Errorf("roleOfFile(%q) = %q, want %q", c.file, got, c.role)
			}
		}
	}
	for _, bad := range []string{"targets/../x", "targets/", "releases", "targets/a b", "targets//a"} {
		if validDelegation(bad) {
			t.Errorf("validDelegation(%q) = true", bad)
		}
	}
}
