package notary

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Trusted is what the site trusts before an import: a pinned root (Root,
// root.json bytes obtained out of band) or a CA the root certificates must
// chain to (RootCA), plus the metadata files recorded by earlier imports
// (State: Chain file names; nil on the first import). With State the walk
// starts from the state's root; otherwise from Root; with only RootCA from
// the first root on hand. Neither Root, RootCA nor a State root: refused.
type Trusted struct {
	Root   []byte
	RootCA *x509.CertPool
	State  map[string][]byte
}

// Result is a GUN's verified metadata.
type Result struct {
	gun   string
	roles []*verifiedRole // root, timestamp, snapshot, targets, then delegations breadth-first
	files map[string][]byte
}

type verifiedRole struct {
	Role
	targets  map[string]fileMeta // targets roles only
	paths    []string            // path prefixes the role may vouch for
	children []string            // delegations it declares, in order
}

// Verify runs the Notary client workflow over files (a Chain's Files) at time
// now: the root chain from the trusted root with every rotation signed by a
// threshold of the old and of the new root keys, root certificates issued to
// the GUN and valid at now, then timestamp, snapshot, targets and every
// delegation, each signed by a threshold of distinct keys, matching its
// parent's length and hashes, not older than t.State and not expired. It
// returns nil and a *RoleError on any failure.
func Verify(gun string, files map[string][]byte, t Trusted, now time.Time) (*Result, error) {
	return VerifyWithGrace(gun, files, t, now, 0)
}

// VerifyWithGrace is Verify except that the timestamp and snapshot may have
// expired up to grace before now: an air gap delays imports past the short
// life of a timestamp. Root, targets and delegations get no grace.
func VerifyWithGrace(gun string, files map[string][]byte, t Trusted, now time.Time, grace time.Duration) (*Result, error) {
	if err := validGUN(gun); err != nil {
		return nil, err
	}
	v := &verifier{gun: gun, files: files, now: now, grace: max(grace, 0),
		res: &Result{gun: gun, files: map[string][]byte{}}}
	if err := v.readState(t.State); err != nil {
		return nil, err
	}
	root, err := v.verifyRoots(t)
	if err != nil {
		return nil, err
	}
	ts, err := v.verifyTimestamp(root)
	if err != nil {
		return nil, err
	}
	sm, err := v.verifySnapshot(root, ts)
	if err != nil {
		return nil, err
	}
	if err := v.verifyTargets(root, sm); err != nil {
		return nil, err
	}
	return v.res, nil
}

type verifier struct {
	gun   string
	files map[string][]byte
	now   time.Time
	grace time.Duration
	state map[string]int64 // file name -> version recorded by earlier imports
	root  []byte           // state's root.json
	res   *Result
}

func (v *verifier) fail(role string, version int64, err error) error {
	return &RoleError{GUN: v.gun, Role: role, Version: version, Err: err}
}

// readState takes the versions of the recorded files: nothing may go below
// them. The state was verified when it was recorded, so only headers count.
func (v *verifier) readState(state map[string][]byte) error {
	v.state = map[string]int64{}
	for file, data := range state {
		role := roleOfFile(file)
		if role == "" {
			continue
		}
		limit := MaxMetaSize
		if role == roleRoot {
			limit = MaxRootSize
		}
		env, err := decodeEnvelope(data, limit)
		if err != nil {
			return v.fail(role, 0, fmt.Errorf("trusted state %s: %w", file, err))
		}
		v.state[file] = env.Version
	}
	v.root = state[fileRoot]
	return nil
}

// roleOfFile maps a state file name back to its role; "" for others (such as
// versioned roots, which the state does not need).
func roleOfFile(file string) string {
	switch file {
	case fileRoot:
		return roleRoot
	case fileTimestamp:
		return roleTimestamp
	case fileSnapshot:
		return roleSnapshot
	case fileTargets:
		return roleTargets
	}
	name, ok := strings.CutSuffix(file, ".json")
	if !ok {
		return ""
	}
	role, err := url.PathUnescape(name)
	if err != nil || !validDelegation(role) || RoleFile(role) != file {
		return ""
	}
	return role
}

// rootInfo is a parsed root.
type rootInfo struct {
	env   *envelope
	rs    rootSigned
	keys  map[string]*publicKey
	bytes []byte
}

// parseRoot decodes a root and checks its structure, its key IDs and that
// its root keys are certificates issued to the GUN. Signatures are checked by
// the caller, who knows which keys must have signed.
func (v *verifier) parseRoot(what string, data []byte) (*rootInfo, error) {
	env, err := decodeEnvelope(data, MaxRootSize)
	if err != nil {
		return nil, v.fail(roleRoot, 0, fmt.Errorf("%s: %w", what, err))
	}
	fail := func(format string, a ...any) error {
		return v.fail(roleRoot, env.Version, fmt.Errorf("%s: "+format, append([]any{what}, a...)...))
	}
	r := &rootInfo{env: env, bytes: data}
	if err := env.decodeAs(typeRoot, &r.rs); err != nil {
		return nil, fail("%w", err)
	}
	if r.keys, err = parseKeys(r.rs.Keys); err != nil {
		return nil, fail("%w", err)
	}
	for _, name := range []string{roleRoot, roleTargets, roleSnapshot, roleTimestamp} {
		spec, ok := r.rs.Roles[name]
		if !ok || spec.Threshold < 1 {
			return nil, fail("%w: role %s missing or threshold below 1", ErrMalformed, name)
		}
		for _, id := range spec.KeyIDs {
			if r.keys[id] == nil {
				return nil, fail("%w: role %s lists unknown key %s", ErrMalformed, name, shortID(id))
			}
		}
	}
	// Notary's root keys are certificates whose CN is the GUN: a root of
	// another repository must never pass for this one.
	for _, id := range r.rs.Roles[roleRoot].KeyIDs {
		k := r.keys[id]
		if k.certs == nil {
			return nil, fail("%w: root key %s is a %s key, not a certificate", ErrCertificate, shortID(id), k.typ)
		}
		if cn := k.certs[0].Subject.CommonName; cn != v.gun {
			return nil, fail("%w: root certificate %s is for %q, not GUN %q", ErrCertificate, shortID(id), cn, v.gun)
		}
	}
	return r, nil
}

// roleKeys returns a role's keys from this root, those keep accepts.
func (r *rootInfo) roleKeys(name string, keep func(*publicKey) bool) roleKeys {
	spec := r.rs.Roles[name]
	rk := roleKeys{keys: map[string]*publicKey{}, threshold: spec.Threshold}
	for _, id := range spec.KeyIDs {
		if k := r.keys[id]; keep == nil || keep(k) {
			rk.keys[id] = k
		}
	}
	return rk
}

// verifyRoots walks from the trusted root to the current one and returns it.
func (v *verifier) verifyRoots(t Trusted) (*rootInfo, error) {
	curData, ok := v.files[fileRoot]
	if !ok {
		return nil, v.fail(roleRoot, 0, fmt.Errorf("%w: no %s", ErrMissing, fileRoot))
	}
	cur, err := v.parseRoot(fileRoot, curData)
	if err != nil {
		return nil, err
	}

	// The anchor. Never the chain's own word alone: trust on first use
	// would accept any server's root.
	var what string
	var anchorData []byte
	switch {
	case v.root != nil:
		what, anchorData = "trusted state root", v.root
	case t.Root != nil:
		what, anchorData = "pinned root", t.Root
	case t.RootCA != nil:
		// CA pinning vouches for the final root's certificates (checked
		// below); the walk still starts as early as the chain allows.
		what, anchorData = rootVersionFile(1), v.files[rootVersionFile(1)]
		if anchorData == nil {
			what, anchorData = fileRoot, curData
		}
	default:
		return nil, v.fail(roleRoot, cur.env.Version, ErrNoTrustAnchor)
	}
	anchor, err := v.parseRoot(what, anchorData)
	if err != nil {
		return nil, err
	}
	av := anchor.env.Version
	if err := verifySignatures(anchor.env.canonical, anchor.env.sigs, anchor.roleKeys(roleRoot, nil)); err != nil {
		return nil, v.fail(roleRoot, av, fmt.Errorf("%s not signed by its own root keys: %w", what, err))
	}
	if cur.env.Version < av {
		return nil, v.fail(roleRoot, cur.env.Version, fmt.Errorf("%w: root.json is version %d, %s is version %d",
			ErrRollback, cur.env.Version, what, av))
	}
	// The chain's root of the anchor's version, if it has one, must be the
	// anchor itself: anything else is a fork.
	same := cur
	if data, ok := v.files[rootVersionFile(av)]; ok {
		if same, err = v.parseRoot(rootVersionFile(av), data); err != nil {
			return nil, err
		}
	}
	if same.env.Version == av && !bytes.Equal(same.env.canonical, anchor.env.canonical) {
		return nil, v.fail(roleRoot, av, fmt.Errorf("%w: the chain's version %d is not the %s", ErrPinMismatch, av, what))
	}

	// Rotations: each newer root signed by a threshold of the previous
	// root's root keys (so an attacker cannot start a chain of its own) and
	// of its own (so the new keys are held by whoever published it).
	prev := anchor
	for ver := av + 1; ver <= cur.env.Version; ver++ {
		if ver-av > maxRootVersions {
			return nil, v.fail(roleRoot, ver, fmt.Errorf("%w: more than %d rotations", ErrMalformed, maxRootVersions))
		}
		next := cur
		if data, ok := v.files[rootVersionFile(ver)]; ok {
			if next, err = v.parseRoot(rootVersionFile(ver), data); err != nil {
				return nil, err
			}
		} else if ver != cur.env.Version {
			return nil, v.fail(roleRoot, ver, fmt.Errorf("%w: %s (needed to rotate from version %d)", ErrMissing, rootVersionFile(ver), prev.env.Version))
		}
		if next.env.Version != ver {
			return nil, v.fail(roleRoot, next.env.Version, fmt.Errorf("%w: %s holds version %d", ErrMalformed, rootVersionFile(ver), next.env.Version))
		}
		if err := verifySignatures(next.env.canonical, next.env.sigs, prev.roleKeys(roleRoot, nil)); err != nil {
			return nil, v.fail(roleRoot, ver, fmt.Errorf("rotation not signed by version %d's root keys: %w", prev.env.Version, err))
		}
		if err := verifySignatures(next.env.canonical, next.env.sigs, next.roleKeys(roleRoot, nil)); err != nil {
			return nil, v.fail(roleRoot, ver, fmt.Errorf("rotation not signed by its own root keys: %w", err))
		}
		prev = next
	}
	final := prev
	if !bytes.Equal(final.env.canonical, cur.env.canonical) {
		return nil, v.fail(roleRoot, cur.env.Version, fmt.Errorf("%w: root.json differs from %s", ErrMalformed, rootVersionFile(cur.env.Version)))
	}

	// Expiry before certificates: long after both, the expired root is the
	// clearer reason.
	if err := v.expired(roleRoot, final.env, 0); err != nil {
		return nil, err
	}

	// The current root's own signatures must come from certificates valid
	// now (and issued under RootCA when one is pinned). Earlier roots are
	// exempt: rotation is how an expiring certificate gets replaced.
	acceptable, problems := v.rootCertificates(final, t.RootCA)
	if err := verifySignatures(final.env.canonical, final.env.sigs, final.roleKeys(roleRoot, acceptable)); err != nil {
		if len(problems) > 0 {
			err = fmt.Errorf("%w (%s): %w", ErrCertificate, strings.Join(problems, "; "), err)
		}
		return nil, v.fail(roleRoot, final.env.Version, err)
	}
	v.record(&verifiedRole{Role: Role{Role: roleRoot, Version: final.env.Version, Expires: final.env.Expires, File: fileRoot}}, curData)
	final.bytes = curData
	return final, nil
}

// rootCertificates says which root keys have a certificate valid at now and,
// with a CA, chaining to it, and why the others do not.
func (v *verifier) rootCertificates(r *rootInfo, ca *x509.CertPool) (func(*publicKey) bool, []string) {
	ok := map[*publicKey]bool{}
	var problems []string
	for _, id := range r.rs.Roles[roleRoot].KeyIDs {
		k := r.keys[id]
		leaf := k.certs[0]
		if v.now.Before(leaf.NotBefore) || v.now.After(leaf.NotAfter) {
			problems = append(problems, fmt.Sprintf("certificate %s valid %s to %s, not at %s", shortID(id),
				leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339), v.now.Format(time.RFC3339)))
			continue
		}
		if ca != nil {
			inter := x509.NewCertPool()
			for _, c := range k.certs[1:] {
				inter.AddCert(c)
			}
			opts := x509.VerifyOptions{Roots: ca, Intermediates: inter, CurrentTime: v.now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
			if _, err := leaf.Verify(opts); err != nil {
				problems = append(problems, fmt.Sprintf("certificate %s does not chain to the root CA: %v", shortID(id), err))
				continue
			}
		}
		ok[k] = true
	}
	return func(k *publicKey) bool { return ok[k] }, problems
}

// load decodes a role's file from the input.
func (v *verifier) load(role, file string, limit int) ([]byte, *envelope, error) {
	data, ok := v.files[file]
	if !ok {
		return nil, nil, v.fail(role, 0, fmt.Errorf("%w: no %s", ErrMissing, file))
	}
	env, err := decodeEnvelope(data, limit)
	if err != nil {
		return nil, nil, v.fail(role, 0, fmt.Errorf("%s: %w", file, err))
	}
	return data, env, nil
}

// checkRole runs what every non-root role must pass: its type, a threshold
// of its keys, its parent's length and hashes, no rollback below the state.
// Signatures come before hashes so that a tampered file is reported as such.
func (v *verifier) checkRole(role, file string, data []byte, env *envelope, typ string, out any, rk roleKeys, parent *fileMeta) error {
	fail := func(err error) error { return v.fail(role, env.Version, err) }
	if err := env.decodeAs(typ, out); err != nil {
		return fail(err)
	}
	if err := verifySignatures(env.canonical, env.sigs, rk); err != nil {
		return fail(err)
	}
	if parent != nil {
		if err := checkMeta(data, *parent); err != nil {
			return fail(err)
		}
	}
	if prev, ok := v.state[file]; ok && env.Version < prev {
		return fail(fmt.Errorf("%w: version %d, the site already trusts version %d", ErrRollback, env.Version, prev))
	}
	return nil
}

// expired refuses metadata expired at now less grace.
func (v *verifier) expired(role string, env *envelope, grace time.Duration) error {
	if isExpired(env.Expires, v.now.Add(-grace)) {
		return v.fail(role, env.Version, fmt.Errorf("%w at %s (expires %s, grace %s)", ErrExpired,
			v.now.Format(time.RFC3339), env.Expires.Format(time.RFC3339), grace))
	}
	return nil
}

func isExpired(expires, t time.Time) bool { return !t.Before(expires) }

func (v *verifier) record(r *verifiedRole, data []byte) {
	v.res.roles = append(v.res.roles, r)
	v.res.files[r.File] = data
}

func (v *verifier) verifyTimestamp(root *rootInfo) (*metaSigned, error) {
	data, env, err := v.load(roleTimestamp, fileTimestamp, MaxTimestampSize)
	if err != nil {
		return nil, err
	}
	var ts metaSigned // the timestamp has no parent meta: it is the entry point
	if err := v.checkRole(roleTimestamp, fileTimestamp, data, env, typeTimestamp, &ts, root.roleKeys(roleTimestamp, nil), nil); err != nil {
		return nil, err
	}
	if _, ok := ts.Meta[roleSnapshot]; !ok {
		return nil, v.fail(roleTimestamp, env.Version, fmt.Errorf("%w: no snapshot meta", ErrMalformed))
	}
	if err := v.expired(roleTimestamp, env, v.grace); err != nil {
		return nil, err
	}
	v.record(&verifiedRole{Role: Role{Role: roleTimestamp, Version: env.Version, Expires: env.Expires, File: fileTimestamp}}, data)
	return &ts, nil
}

func (v *verifier) verifySnapshot(root *rootInfo, ts *metaSigned) (*metaSigned, error) {
	data, env, err := v.load(roleSnapshot, fileSnapshot, MaxMetaSize)
	if err != nil {
		return nil, err
	}
	var sm metaSigned
	parent := ts.Meta[roleSnapshot]
	if err := v.checkRole(roleSnapshot, fileSnapshot, data, env, typeSnapshot, &sm, root.roleKeys(roleSnapshot, nil), &parent); err != nil {
		return nil, err
	}
	rm, ok := sm.Meta[roleRoot]
	if _, ok2 := sm.Meta[roleTargets]; !ok || !ok2 {
		return nil, v.fail(roleSnapshot, env.Version, fmt.Errorf("%w: no root or targets meta", ErrMalformed))
	}
	// The snapshot vouches for the root too: the root reached must be the one
	// the repository currently publishes.
	if err := checkMeta(root.bytes, rm); err != nil {
		return nil, v.fail(roleRoot, root.env.Version, fmt.Errorf("not the root snapshot version %d lists: %w", env.Version, err))
	}
	if err := v.expired(roleSnapshot, env, v.grace); err != nil {
		return nil, err
	}
	v.record(&verifiedRole{Role: Role{Role: roleSnapshot, Version: env.Version, Expires: env.Expires, File: fileSnapshot}}, data)
	return &sm, nil
}

// verifyTargets verifies targets and, breadth-first, every delegation the
// snapshot lists, with keys, threshold and paths from the delegating role.
func (v *verifier) verifyTargets(root *rootInfo, sm *metaSigned) error {
	type pending struct {
		name  string
		keys  roleKeys
		paths []string
	}
	queue := []pending{{roleTargets, root.roleKeys(roleTargets, nil), []string{""}}}
	declared := map[string]bool{roleTargets: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		file := fileTargets
		if p.name != roleTargets {
			file = RoleFile(p.name)
		}
		m, listed := sm.Meta[p.name]
		if !listed {
			if p.name == roleTargets {
				return v.fail(roleTargets, 0, fmt.Errorf("%w: snapshot lists no targets", ErrMissing))
			}
			// A role the site trusted before may not vanish: its parent still
			// declares it, and dropping it would fall back to older targets.
			if ver, trusted := v.state[file]; trusted {
				return v.fail(p.name, ver, fmt.Errorf("%w: the snapshot no longer lists %s, which the site trusted at version %d", ErrRollback, p.name, ver))
			}
			continue // declared but never published: vouches for nothing
		}
		data, env, err := v.load(p.name, file, MaxMetaSize)
		if err != nil {
			return err
		}
		var tg targetsSigned
		if err := v.checkRole(p.name, file, data, env, typeTargets, &tg, p.keys, &m); err != nil {
			return err
		}
		if err := v.expired(p.name, env, 0); err != nil {
			return err
		}
		fail := func(format string, a ...any) error {
			return v.fail(p.name, env.Version, fmt.Errorf(format, a...))
		}
		dkeys, err := parseKeys(tg.Delegations.Keys)
		if err != nil {
			return fail("delegation keys: %w", err)
		}
		vr := &verifiedRole{
			Role:    Role{Role: p.name, Version: env.Version, Expires: env.Expires, File: file},
			targets: tg.Targets,
			paths:   p.paths,
		}
		for _, d := range tg.Delegations.Roles {
			if !validDelegation(d.Name) || parentRole(d.Name) != p.name {
				return fail("%w: %q is not a delegation %s can make", ErrMalformed, d.Name, p.name)
			}
			if declared[d.Name] {
				return fail("%w: delegation %s declared twice", ErrMalformed, d.Name)
			}
			if len(declared) > maxDelegations {
				return fail("%w: more than %d delegations", ErrMalformed, maxDelegations)
			}
			declared[d.Name] = true
			rk := roleKeys{keys: map[string]*publicKey{}, threshold: d.Threshold}
			for _, id := range d.KeyIDs {
				k := dkeys[id]
				if k == nil {
					return fail("%w: delegation %s lists unknown key %s", ErrMalformed, d.Name, shortID(id))
				}
				rk.keys[id] = k
			}
			vr.children = append(vr.children, d.Name)
			queue = append(queue, pending{d.Name, rk, restrictPaths(d.Paths, p.paths)})
		}
		v.record(vr, data)
	}
	return nil
}

// Target looks a tag up as docker does: the targets/releases subtree first,
// then targets and its other delegations, each role before the roles it
// delegates to. A role vouches only for names under its path prefixes. It
// returns the target's sha256 and length (for an image tag, the manifest's
// digest and size) and the role that vouched.
func (r *Result) Target(tag string) (sha256 []byte, length int64, role string, err error) {
	for _, start := range []string{roleReleases, roleTargets} {
		skip := roleTargets
		if start == roleTargets {
			skip = roleReleases
		}
		vr, m := r.walk(start, skip, tag)
		if vr == nil {
			continue
		}
		h := m.Hashes["sha256"]
		if len(h) != 32 || m.Length < 0 {
			return nil, 0, vr.Role.Role, &RoleError{GUN: r.gun, Role: vr.Role.Role, Version: vr.Version,
				Err: fmt.Errorf("%w: target %q has no sha256 or a negative length", ErrMalformed, tag)}
		}
		return bytes.Clone(h), m.Length, vr.Role.Role, nil
	}
	return nil, 0, "", fmt.Errorf("notary: GUN %q: tag %q: %w", r.gun, tag, ErrNotFound)
}

// walk searches role's subtree pre-order, not entering skip.
func (r *Result) walk(role, skip, tag string) (*verifiedRole, fileMeta) {
	vr := r.role(role)
	if vr == nil {
		return nil, fileMeta{}
	}
	if m, ok := vr.targets[tag]; ok && pathAllowed(tag, vr.paths) {
		return vr, m
	}
	for _, c := range vr.children {
		if c == skip {
			continue
		}
		if found, m := r.walk(c, skip, tag); found != nil {
			return found, m
		}
	}
	return nil, fileMeta{}
}

func (r *Result) role(name string) *verifiedRole {
	for _, vr := range r.roles {
		if vr.Role.Role == name {
			return vr
		}
	}
	return nil
}

// GUN is the repository the result is for.
func (r *Result) GUN() string { return r.gun }

// Roles lists the version and expiry of every verified role: root,
// timestamp, snapshot, targets, then delegations.
func (r *Result) Roles() []Role {
	out := make([]Role, len(r.roles))
	for i, vr := range r.roles {
		out[i] = vr.Role
	}
	return out
}

// NewState returns the files to record as the site's new state: the current
// root, timestamp, snapshot, targets and every verified delegation.
func (r *Result) NewState() map[string][]byte {
	out := make(map[string][]byte, len(r.files))
	for name, data := range r.files {
		out[name] = bytes.Clone(data)
	}
	return out
}

// Expired lists the roles that never get grace (root, targets, delegations)
// expired at t. Verify already refused any expired at its now; this is for
// re-checking later, e.g. before serving.
func (r *Result) Expired(t time.Time) []Role {
	var out []Role
	for _, vr := range r.roles {
		if vr.Role.Role != roleTimestamp && vr.Role.Role != roleSnapshot && isExpired(vr.Expires, t) {
			out = append(out, vr.Role)
		}
	}
	return out
}

// TimestampExpired reports whether the timestamp is expired at t; a caller
// applying a site grace passes now minus the grace.
func (r *Result) TimestampExpired(t time.Time) bool { return r.expiredAt(roleTimestamp, t) }

// SnapshotExpired reports whether the snapshot is expired at t.
func (r *Result) SnapshotExpired(t time.Time) bool { return r.expiredAt(roleSnapshot, t) }

func (r *Result) expiredAt(role string, t time.Time) bool {
	vr := r.role(role)
	return vr == nil || isExpired(vr.Expires, t)
}
