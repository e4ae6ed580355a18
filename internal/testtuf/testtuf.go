package testtuf

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Options configures New. Zero values take the documented defaults.
type Options struct {
	RootKeys, RootThreshold       int // default 1, 1
	TargetsKeys, TargetsThreshold int // default 1, 1
	// Delegations are delegated roles of the top-level targets role, in
	// delegation order (the order go-tuf's client searches them).
	Delegations []Delegation
	// Expires is the expiry of root, targets, snapshot and every delegated
	// role; default now+7 days.
	Expires time.Time
	// TimestampExpires is the expiry of timestamp; default now+24 hours.
	TimestampExpires time.Time
}

// Delegation describes a delegated targets role.
type Delegation struct {
	Name        string
	Keys        int // default 1
	Threshold   int // default 1
	Paths       []string
	Terminating bool
}

// State is a deep copy of a Repo's published files, taken by Save.
type State struct {
	files map[string][]byte
}

// Repo is an in-memory TUF repository with consistent snapshots. Its methods
// are safe for concurrent use, so a test may change and Publish while Serve
// answers a client.
type Repo struct {
	mu sync.Mutex

	root      *metadata.Metadata[metadata.RootType]
	targets   map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and every delegated role
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	delegated []string // delegated role names, in delegation order

	keys     map[string][]ed25519.PrivateKey // current keys of every role
	expires  map[string]time.Time
	signWith map[string][]int

	// While a root rotation is pending, the next root must also carry the
	// signatures of the last published root's keys (spec 5.3.4).
	rotating         bool
	oldRootKeys      []ed25519.PrivateKey
	oldRootThreshold int
	oldRootSign      []int // nil: the old threshold
	oldRootSignSet   bool

	dirty     map[string]bool
	published bool
	latest    map[string][]byte // newest bytes of every targets role, for snapshot's hashes
	roots     [][]byte          // roots[v-1] is root version v
	files     map[string][]byte
}

// New creates root (version 1), targets, snapshot, timestamp and the
// delegated roles of opts, each with fresh ed25519 keys, and publishes
// version 1 of everything.
func New(opts Options) (*Repo, error) {
	now := time.Now().UTC().Truncate(time.Second)
	exp := opts.Expires
	if exp.IsZero() {
		exp = now.AddDate(0, 0, 7)
	}
	tsExp := opts.TimestampExpires
	if tsExp.IsZero() {
		tsExp = now.Add(24 * time.Hour)
	}
	exp, tsExp = exp.UTC(), tsExp.UTC()

	r := &Repo{
		root:      metadata.Root(exp),
		targets:   map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: metadata.Targets(exp)},
		snapshot:  metadata.Snapshot(exp),
		timestamp: metadata.Timestamp(tsExp),
		keys:      map[string][]ed25519.PrivateKey{},
		expires: map[string]time.Time{
			metadata.ROOT: exp, metadata.TARGETS: exp, metadata.SNAPSHOT: exp, metadata.TIMESTAMP: tsExp,
		},
		signWith: map[string][]int{},
		dirty:    map[string]bool{},
		latest:   map[string][]byte{},
		files:    map[string][]byte{},
	}
	r.root.Signed.ConsistentSnapshot = true

	top := []struct {
		role         string
		n, threshold int
	}{
		{metadata.ROOT, opts.RootKeys, opts.RootThreshold},
		{metadata.TARGETS, opts.TargetsKeys, opts.TargetsThreshold},
		{metadata.SNAPSHOT, 1, 1},
		{metadata.TIMESTAMP, 1, 1},
	}
	for _, t := range top {
		n, th, err := keyCount(t.n, t.threshold)
		if err != nil {
			return nil, fmt.Errorf("testtuf: %s: %w", t.role, err)
		}
		if err := r.setTopLevelKeys(t.role, n, th); err != nil {
			return nil, err
		}
	}

	if len(opts.Delegations) > 0 {
		r.targets[metadata.TARGETS].Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	for _, d := range opts.Delegations {
		if err := r.addDelegation(d, exp); err != nil {
			return nil, err
		}
	}

	for role := range r.expires {
		r.dirty[role] = true
	}
	if err := r.publish(); err != nil {
		return nil, err
	}
	return r, nil
}

func keyCount(n, threshold int) (int, int, error) {
	if n < 0 || threshold < 0 {
		return 0, 0, fmt.Errorf("negative key count %d or threshold %d", n, threshold)
	}
	return max(n, 1), max(threshold, 1), nil
}

func (r *Repo) addDelegation(d Delegation, exp time.Time) error {
	switch {
	case d.Name == "":
		return fmt.Errorf("testtuf: delegation without a name")
	case slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], d.Name):
		return fmt.Errorf("testtuf: delegation %q: name of a top-level role", d.Name)
	case r.targets[d.Name] != nil:
		return fmt.Errorf("testtuf: delegation %q: duplicate name", d.Name)
	}
	n, th, err := keyCount(d.Keys, d.Threshold)
	if err != nil {
		return fmt.Errorf("testtuf: delegation %q: %w", d.Name, err)
	}
	privs, err := newKeys(n)
	if err != nil {
		return fmt.Errorf("testtuf: delegation %q: %w", d.Name, err)
	}
	dels := r.targets[metadata.TARGETS].Signed.Delegations
	role := metadata.DelegatedRole{
		Name:        d.Name,
		KeyIDs:      []string{},
		Threshold:   th,
		Terminating: d.Terminating,
		Paths:       slices.Clone(d.Paths),
	}
	for _, priv := range privs {
		key, id, err := publicKey(priv)
		if err != nil {
			return fmt.Errorf("testtuf: delegation %q: %w", d.Name, err)
		}
		dels.Keys[id] = key
		role.KeyIDs = append(role.KeyIDs, id)
	}
	dels.Roles = append(dels.Roles, role)
	r.keys[d.Name] = privs
	r.targets[d.Name] = metadata.Targets(exp)
	r.expires[d.Name] = exp
	r.delegated = append(r.delegated, d.Name)
	return nil
}

// setTopLevelKeys replaces role's keys in root with n fresh keys.
func (r *Repo) setTopLevelKeys(role string, n, threshold int) error {
	privs, err := newKeys(n)
	if err != nil {
		return fmt.Errorf("testtuf: %s: %w", role, err)
	}
	for _, id := range slices.Clone(r.root.Signed.Roles[role].KeyIDs) {
		if err := r.root.Signed.RevokeKey(id, role); err != nil {
			return fmt.Errorf("testtuf: revoke %s key: %w", role, err)
		}
	}
	for _, priv := range privs {
		key, _, err := publicKey(priv)
		if err != nil {
			return fmt.Errorf("testtuf: %s: %w", role, err)
		}
		if err := r.root.Signed.AddKey(key, role); err != nil {
			return fmt.Errorf("testtuf: add %s key: %w", role, err)
		}
	}
	r.root.Signed.Roles[role].Threshold = threshold
	r.keys[role] = privs
	return nil
}

func newKeys(n int) ([]ed25519.PrivateKey, error) {
	privs := make([]ed25519.PrivateKey, n)
	for i := range privs {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		privs[i] = priv
	}
	return privs, nil
}

func publicKey(priv ed25519.PrivateKey) (*metadata.Key, string, error) {
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, "", fmt.Errorf("convert public key: %w", err)
	}
	id, err := key.ID()
	if err != nil {
		return nil, "", fmt.Errorf("key id: %w", err)
	}
	return key, id, nil
}

func loadSigner(priv ed25519.PrivateKey) (signature.Signer, error) {
	// crypto.Hash(0): ed25519 signs the message itself, as go-tuf expects.
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	return s, nil
}

// mustRole panics on an unknown role: naming one is a bug in the test.
func (r *Repo) mustRole(role string) {
	if _, ok := r.keys[role]; !ok {
		panic(fmt.Sprintf("testtuf: unknown role %q", role))
	}
}

// AddTarget adds (or replaces) target name in role ("targets" or a delegated
// role) with the given sha256 (hex) and length and optional custom JSON. It
// does not check role's delegated paths, so a test can place a target where
// the client must not find it. Changes take effect at the next Publish.
func (r *Repo) AddTarget(role, name, sha256Hex string, length int64, custom json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	md, ok := r.targets[role]
	if !ok {
		return fmt.Errorf("testtuf: add target %q: no targets role %q", name, role)
	}
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil {
		return fmt.Errorf("testtuf: add target %q: sha256: %w", name, err)
	}
	if len(sum) != sha256.Size {
		return fmt.Errorf("testtuf: add target %q: sha256 is %d bytes, want %d", name, len(sum), sha256.Size)
	}
	if length < 0 {
		return fmt.Errorf("testtuf: add target %q: negative length %d", name, length)
	}
	tf := metadata.TargetFile()
	tf.Path = name
	tf.Length = length
	tf.Hashes["sha256"] = sum
	if custom != nil {
		if !json.Valid(custom) {
			return fmt.Errorf("testtuf: add target %q: custom is not valid JSON", name)
		}
		c := json.RawMessage(bytes.Clone(custom))
		tf.Custom = &c
	}
	md.Signed.Targets[name] = tf
	r.dirty[role] = true
	return nil
}

// RemoveTarget removes target name from role, if present. It panics if role
// is not a targets role.
func (r *Repo) RemoveTarget(role, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	md, ok := r.targets[role]
	if !ok {
		panic(fmt.Sprintf("testtuf: unknown targets role %q", role))
	}
	if _, ok := md.Signed.Targets[name]; ok {
		delete(md.Signed.Targets, name)
		r.dirty[role] = true
	}
}

// SetExpires sets role's expiry for subsequent publishes and marks it
// changed, so the next Publish re-signs it (for freeze tests: a time in the
// past yields expired metadata). It panics on an unknown role.
func (r *Repo) SetExpires(role string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustRole(role)
	r.expires[role] = t.UTC()
	r.dirty[role] = true
}

// SignWith makes Publish sign role with only these indexes (0-based) of its
// current keys, in this order; an index may repeat, which puts the same
// keyid and signature in the list twice (a faked threshold). nil resets to
// all keys. The selection stays until reset; the role is marked changed so
// the next Publish re-signs it. It panics on an unknown role; an index out
// of range makes Publish fail.
func (r *Repo) SignWith(role string, keyIdx []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustRole(role)
	if keyIdx == nil {
		delete(r.signWith, role)
	} else {
		r.signWith[role] = slices.Clone(keyIdx)
	}
	r.dirty[role] = true
}

// SignRootWithOld chooses which keys of the last published root (0-based)
// also sign the next root while a root rotation is pending. nil restores the
// default, the old root's threshold; an empty non-nil slice adds no old
// signature, a rotation clients must reject. It applies to the next Publish
// only.
func (r *Repo) SignRootWithOld(keyIdx []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.oldRootSign = slices.Clone(keyIdx)
	r.oldRootSignSet = keyIdx != nil
}

// RotateRoot replaces all root keys with n new keys and sets the root
// threshold. The next Publish writes root version+1 signed by the new keys
// and by the old root's threshold of old keys, as the specification
// requires.
func (r *Repo) RotateRoot(newKeys, threshold int) error {
	return r.RotateRootKeep(0, newKeys, threshold)
}

// RotateRootKeep keeps the first keep current root keys, adds add new ones
// and sets the root threshold, e.g. RotateRootKeep(1, 2, 2) turns a 1-of-1
// root into 2-of-3. Signing is as for RotateRoot.
func (r *Repo) RotateRootKeep(keep, add, threshold int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.keys[metadata.ROOT]
	if keep < 0 || keep > len(cur) || add < 0 || keep+add == 0 || threshold < 1 {
		return fmt.Errorf("testtuf: rotate root: invalid keep %d, add %d, threshold %d with %d keys", keep, add, threshold, len(cur))
	}
	added, err := newKeys(add)
	if err != nil {
		return fmt.Errorf("testtuf: rotate root: %w", err)
	}
	if !r.rotating {
		r.rotating = true
		r.oldRootKeys = slices.Clone(cur)
		r.oldRootThreshold = r.root.Signed.Roles[metadata.ROOT].Threshold
	}
	for _, priv := range cur[keep:] {
		_, id, err := publicKey(priv)
		if err != nil {
			return fmt.Errorf("testtuf: rotate root: %w", err)
		}
		if err := r.root.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			return fmt.Errorf("testtuf: rotate root: %w", err)
		}
	}
	for _, priv := range added {
		key, _, err := publicKey(priv)
		if err != nil {
			return fmt.Errorf("testtuf: rotate root: %w", err)
		}
		if err := r.root.Signed.AddKey(key, metadata.ROOT); err != nil {
			return fmt.Errorf("testtuf: rotate root: %w", err)
		}
	}
	r.root.Signed.Roles[metadata.ROOT].Threshold = threshold
	r.keys[metadata.ROOT] = append(slices.Clone(cur[:keep]), added...)
	r.dirty[metadata.ROOT] = true
	return nil
}

// RotateKeys replaces the keys of role with n new keys and threshold. For
// "timestamp", "snapshot" and "targets" that is a new root version; for a
// delegated role, a new version of the top-level targets role. "root" is
// RotateRoot.
func (r *Repo) RotateKeys(role string, n, threshold int) error {
	if role == metadata.ROOT {
		return r.RotateRoot(n, threshold)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 1 || threshold < 1 {
		return fmt.Errorf("testtuf: rotate %s keys: invalid count %d or threshold %d", role, n, threshold)
	}
	switch role {
	case metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS:
		if err := r.setTopLevelKeys(role, n, threshold); err != nil {
			return err
		}
		r.dirty[metadata.ROOT] = true
	default:
		if _, ok := r.keys[role]; !ok {
			return fmt.Errorf("testtuf: rotate keys: unknown role %q", role)
		}
		if err := r.setDelegatedKeys(role, n, threshold); err != nil {
			return err
		}
		r.dirty[metadata.TARGETS] = true
	}
	r.dirty[role] = true
	return nil
}

func (r *Repo) setDelegatedKeys(role string, n, threshold int) error {
	privs, err := newKeys(n)
	if err != nil {
		return fmt.Errorf("testtuf: rotate %s keys: %w", role, err)
	}
	signed := &r.targets[metadata.TARGETS].Signed
	i := slices.IndexFunc(signed.Delegations.Roles, func(d metadata.DelegatedRole) bool { return d.Name == role })
	for _, id := range slices.Clone(signed.Delegations.Roles[i].KeyIDs) {
		if err := signed.RevokeKey(id, role); err != nil {
			return fmt.Errorf("testtuf: rotate %s keys: %w", role, err)
		}
	}
	for _, priv := range privs {
		key, _, err := publicKey(priv)
		if err != nil {
			return fmt.Errorf("testtuf: rotate %s keys: %w", role, err)
		}
		if err := signed.AddKey(key, role); err != nil {
			return fmt.Errorf("testtuf: rotate %s keys: %w", role, err)
		}
	}
	signed.Delegations.Roles[i].Threshold = threshold
	r.keys[role] = privs
	return nil
}

// Publish bumps the version of every changed role, and always of snapshot
// and timestamp, re-signs them and records their files. Snapshot lists
// targets and every delegated role with version, length and sha256;
// timestamp lists snapshot likewise, so clients check hashes. Files of
// older versions stay available, as a real repository keeps them.
func (r *Repo) Publish() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publish()
}

func (r *Repo) publish() error {
	// Stage the files so that a failure publishes nothing.
	staged := map[string][]byte{}
	var newRoot []byte
	latest := maps.Clone(r.latest)

	if r.dirty[metadata.ROOT] {
		md := r.root
		if r.published {
			md.Signed.Version++
		}
		md.Signed.Expires = r.expires[metadata.ROOT]
		md.ClearSignatures()
		if err := signMeta(md, r.keys[metadata.ROOT], r.signWith[metadata.ROOT]); err != nil {
			return fmt.Errorf("testtuf: sign root: %w", err)
		}
		if r.rotating {
			if err := r.signWithOldRoot(); err != nil {
				return fmt.Errorf("testtuf: sign root with old keys: %w", err)
			}
		}
		b, err := md.ToBytes(true)
		if err != nil {
			return fmt.Errorf("testtuf: encode root: %w", err)
		}
		newRoot = b
		staged[fmt.Sprintf("%d.root.json", md.Signed.Version)] = b
		staged["root.json"] = b
	}

	for _, role := range append([]string{metadata.TARGETS}, r.delegated...) {
		if !r.dirty[role] {
			continue
		}
		md := r.targets[role]
		if r.published {
			md.Signed.Version++
		}
		md.Signed.Expires = r.expires[role]
		md.ClearSignatures()
		if err := signMeta(md, r.keys[role], r.signWith[role]); err != nil {
			return fmt.Errorf("testtuf: sign %s: %w", role, err)
		}
		b, err := md.ToBytes(true)
		if err != nil {
			return fmt.Errorf("testtuf: encode %s: %w", role, err)
		}
		latest[role] = b
		// go-tuf requests "<version>.<url.PathEscape(role)>.json".
		staged[fmt.Sprintf("%d.%s.json", md.Signed.Version, url.PathEscape(role))] = b
	}

	snap := r.snapshot
	if r.published {
		snap.Signed.Version++
	}
	snap.Signed.Expires = r.expires[metadata.SNAPSHOT]
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for _, role := range append([]string{metadata.TARGETS}, r.delegated...) {
		// Snapshot's meta is keyed by the unescaped role name.
		snap.Signed.Meta[role+".json"] = metaFile(r.targets[role].Signed.Version, latest[role])
	}
	snap.ClearSignatures()
	if err := signMeta(snap, r.keys[metadata.SNAPSHOT], r.signWith[metadata.SNAPSHOT]); err != nil {
		return fmt.Errorf("testtuf: sign snapshot: %w", err)
	}
	snapBytes, err := snap.ToBytes(true)
	if err != nil {
		return fmt.Errorf("testtuf: encode snapshot: %w", err)
	}
	staged[fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)] = snapBytes

	ts := r.timestamp
	if r.published {
		ts.Signed.Version++
	}
	ts.Signed.Expires = r.expires[metadata.TIMESTAMP]
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(snap.Signed.Version, snapBytes)}
	ts.ClearSignatures()
	if err := signMeta(ts, r.keys[metadata.TIMESTAMP], r.signWith[metadata.TIMESTAMP]); err != nil {
		return fmt.Errorf("testtuf: sign timestamp: %w", err)
	}
	tsBytes, err := ts.ToBytes(true)
	if err != nil {
		return fmt.Errorf("testtuf: encode timestamp: %w", err)
	}
	staged["timestamp.json"] = tsBytes

	maps.Copy(r.files, staged)
	if newRoot != nil {
		r.roots = append(r.roots, newRoot)
	}
	r.latest = latest
	r.published = true
	r.rotating, r.oldRootKeys, r.oldRootSign, r.oldRootSignSet = false, nil, nil, false
	clear(r.dirty)
	return nil
}

// signWithOldRoot adds the last published root's signatures to the new
// root: by default its threshold of keys, skipping keys that signed already
// (a kept key counts for both old and new threshold).
func (r *Repo) signWithOldRoot() error {
	if r.oldRootSignSet {
		return signMeta(r.root, r.oldRootKeys, r.oldRootSign)
	}
	signed := 0
	for _, priv := range r.oldRootKeys {
		if signed == r.oldRootThreshold {
			break
		}
		_, id, err := publicKey(priv)
		if err != nil {
			return err
		}
		signed++
		if slices.ContainsFunc(r.root.Signatures, func(s metadata.Signature) bool { return s.KeyID == id }) {
			continue
		}
		if err := signMeta(r.root, []ed25519.PrivateKey{priv}, nil); err != nil {
			return err
		}
	}
	return nil
}

// signMeta appends signatures of keys (all, or only the indexes idx) to md.
func signMeta[T metadata.Roles](md *metadata.Metadata[T], keys []ed25519.PrivateKey, idx []int) error {
	if idx == nil {
		idx = make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
	}
	for _, i := range idx {
		if i < 0 || i >= len(keys) {
			return fmt.Errorf("key index %d out of range (%d keys)", i, len(keys))
		}
		s, err := loadSigner(keys[i])
		if err != nil {
			return err
		}
		if _, err := md.Sign(s); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
	}
	return nil
}

func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(b))
	mf.Hashes["sha256"] = sum[:]
	return mf
}

// Version returns the last published version of role. It panics on an
// unknown role.
func (r *Repo) Version(role string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustRole(role)
	switch role {
	case metadata.ROOT:
		return int64(len(r.roots))
	case metadata.SNAPSHOT:
		return r.snapshot.Signed.Version
	case metadata.TIMESTAMP:
		return r.timestamp.Signed.Version
	}
	// Versions are bumped only by Publish, so this is the published one.
	return r.targets[role].Signed.Version
}

// Files returns a copy of every published file by name.
func (r *Repo) Files() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneFiles(r.files)
}

// Root returns the bytes of root version v (1-based), or nil if v was never
// published.
func (r *Repo) Root(v int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v < 1 || v > len(r.roots) {
		return nil
	}
	return bytes.Clone(r.roots[v-1])
}

// Save returns a deep copy of the published files, to replay later in
// rollback and mix-and-match tests.
func (r *Repo) Save() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return State{files: cloneFiles(r.files)}
}

// FilesOf returns a copy of the files of a saved state.
func (r *Repo) FilesOf(s State) map[string][]byte {
	return cloneFiles(s.files)
}

// Signer returns a signer for key idx (0-based) of role's current keys, for
// tests that sign metadata by hand. It panics on an unknown role or index.
func (r *Repo) Signer(role string, idx int) signature.Signer {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mustRole(role)
	keys := r.keys[role]
	if idx < 0 || idx >= len(keys) {
		panic(fmt.Sprintf("testtuf: %s has no key %d (%d keys)", role, idx, len(keys)))
	}
	s, err := loadSigner(keys[idx])
	if err != nil {
		panic(fmt.Sprintf("testtuf: %s key %d: %v", role, idx, err))
	}
	return s
}

// Serve serves the repository's files over HTTP on 127.0.0.1 as they are
// when each request arrives (so a later Publish is visible), 404 for
// anything else. The server is closed by t.Cleanup. It returns the base URL
// without a trailing slash.
func (r *Repo) Serve(t testing.TB) string {
	t.Helper()
	return serve(t, func(name string) ([]byte, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		b, ok := r.files[name]
		return b, ok
	})
}

// ServeFiles serves a fixed set of files, such as FilesOf a saved State or a
// tampered copy of Files, like Repo.Serve.
func ServeFiles(t testing.TB, files map[string][]byte) string {
	t.Helper()
	files = cloneFiles(files)
	return serve(t, func(name string) ([]byte, bool) {
		b, ok := files[name]
		return b, ok
	})
}

func serve(t testing.TB, lookup func(string) ([]byte, bool)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// File names hold the role path-escaped, as go-tuf requests them;
		// escaping the decoded request path yields the same name however
		// the client escaped it.
		b, ok := lookup(url.PathEscape(strings.TrimPrefix(req.URL.Path, "/")))
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func cloneFiles(files map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		out[name] = bytes.Clone(b)
	}
	return out
}
